"""The simulation decides with the function app's own code: a policy value changed in the app settings changes the
simulated outcome the way it changes the live decision (here the live handlers on in-memory ports)."""
from __future__ import annotations

import pytest

from lifecycle.core.state_records import Decision
from lifecycle.handlers.azureml_runs import run_completed
from lifecycle.handlers.data import data_arrived
from mlops.simulation.engine import HANDLERS, Candidate, SimOptions, run_policy
from mlops.simulation.histories import generate
from tests.fakes import fake_platform
from tests.lifecycle.test_handlers import blob, run_event

pytestmark = pytest.mark.slow
HISTORY = generate("sea", days=11, seed=3, drifts="none", rows_per_day=300)
OPTIONS = SimOptions(warmup_days=5)


@pytest.fixture(scope="module")
def as_the_app_ships():
    return run_policy(HISTORY, Candidate("defaults", {}), OPTIONS)


def live_gate(**settings) -> str:
    """The live handlers' decision on a challenger scoring f1 0.93 (with no champion)."""
    p = fake_platform(**settings)
    data_arrived(blob("day.csv"), p)
    job = p.jobs.submitted[0].job_name
    p.jobs.finish(job, metrics={"metrics": {"accuracy": 0.95, "f1": 0.93}, "champion": None, "champion_error": None})
    run_completed(run_event("RunCompleted", job), p)
    decision = p.state.get(Decision, job)
    assert decision is not None
    return decision.outcome


def test_a_gate_floor_above_what_the_model_reaches_rejects_live_and_in_the_simulation(as_the_app_ships):
    assert live_gate() == "registered" and live_gate(gate_floor=0.995) == "rejected"
    strict = run_policy(HISTORY, Candidate("strict", {"GATE_FLOOR": "0.995"}), OPTIONS)
    assert as_the_app_ships.registered > 0 and as_the_app_ships.daily[0].metric is not None
    # nothing passes the gate, not even the first model: nothing serves, so no day has a metric
    assert strict.registered == 0 and strict.rejected == strict.trainings > 0
    assert all(day.metric is None for day in strict.daily)


def test_retrain_on_never_stops_training_on_new_data_live_and_in_the_simulation(as_the_app_ships):
    live, never = fake_platform(), fake_platform(retrain_on="never")
    data_arrived(blob("day.csv"), live)
    data_arrived(blob("day.csv"), never)
    assert len(live.jobs.submitted) == 1 and never.jobs.submitted == []
    idle = run_policy(HISTORY, Candidate("never", {"RETRAIN_ON": "never"}), OPTIONS)
    assert as_the_app_ships.trainings >= len(HISTORY.days) - OPTIONS.warmup_days - 1   # each day's drop trains
    assert idle.trainings == 0 and idle.registered == 0
    assert all(day.metric is not None for day in idle.daily)        # the first model serves throughout


def test_every_function_the_routing_table_names_has_its_handler_in_the_simulation():
    from emulator.eventgrid.routing import load_routing_table
    from mlops.simulation.engine import NOT_SIMULATED
    functions = {s.function for s in load_routing_table().subscriptions}
    assert functions == set(HANDLERS) | set(NOT_SIMULATED)
