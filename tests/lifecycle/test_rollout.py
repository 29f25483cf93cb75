"""Blue/green rollouts with in-memory fakes: steps, the judge's verdicts, duplicates, overrides."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.core import incoming_events as events
from lifecycle.core.platform_values import Invocation, NoTrafficLogs
from lifecycle.core.rollout_machine import Rollout, RolloutEvent
from lifecycle.handlers.rollout import model_registered, override
from lifecycle.steps.rollouts import advance, tick
from tests.fakes import fake_platform

EP = "mlops-endpoint"


def now() -> datetime:
    return datetime.now(UTC)


def registered(p, version: str):
    p.registry.register("tabular-classifier", f"job-{version}", {})
    return model_registered(events.parse({
        "id": str(uuid.uuid4()), "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "subject": f"models/tabular-classifier:{version}", "eventTime": "2026-11-23T10:00:00Z", "dataVersion": "2",
        "data": {"ModelName": "tabular-classifier", "ModelVersion": version}}), p)


def rollout(p) -> Rollout:
    return p.state.get(Rollout, EP)


def run_ticks(p, n: int = 1) -> Rollout:
    for _ in range(n):
        tick(p, now())
    return rollout(p)


def live(p, version: str = "1") -> None:
    """Model `version` rolled out as the first model: it serves all traffic from blue."""
    registered(p, version)
    p.endpoints.ready(EP, "blue")
    assert run_ticks(p, 2).phase == "promoted"


def at_first_canary_step(p) -> Rollout:
    """Model 1 live on blue, model 2 on green at its first canary step."""
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green")
    return run_ticks(p, 2)


def test_the_first_model_is_smoke_tested_then_takes_all_traffic():
    p = fake_platform()
    r = registered(p, "1")
    assert (r.phase, r.colour, r.baseline) == ("deploying", "blue", "")
    assert ("create", EP, "blue", "tabular-classifier:1") in p.endpoints.calls
    assert p.events.types() == ["MLOps.RolloutStarted"]
    assert p.registry.get("tabular-classifier", "1").tags["mlops.alias"] == "challenger"
    assert run_ticks(p).phase == "deploying"                      # still creating
    p.endpoints.ready(EP, "blue")
    assert run_ticks(p).phase == "smoke"
    r = run_ticks(p)
    assert r.phase == "promoted" and p.endpoints.get(EP).traffic == {"blue": 100}
    assert ("invoke", EP, "blue") in p.endpoints.calls
    assert p.registry.get("tabular-classifier", "1").tags["mlops.alias"] == "champion"
    assert p.events.types()[-1] == "MLOps.ModelPromoted"
    assert p.state.get(RolloutEvent, r.rollout_id).outcome == "promoted"


def test_a_good_challenger_earns_its_traffic_step_by_step_and_the_old_colour_retires():
    p = fake_platform()
    live(p)
    r = registered(p, "2")
    assert (r.colour, r.baseline, r.baseline_model) == ("green", "blue", "tabular-classifier:1")
    p.endpoints.ready(EP, "green")
    assert run_ticks(p, 2).phase == "canary"
    assert p.endpoints.get(EP).traffic == {"green": 10, "blue": 90}
    assert run_ticks(p).step == 0                                  # no requests yet: inconclusive, waits
    assert "waiting" in rollout(p).judgement["summary"]
    p.metrics.serve("blue", 400)
    p.metrics.serve("green", 100)
    assert run_ticks(p).step == 1 and p.endpoints.get(EP).traffic == {"green": 50, "blue": 50}
    r = run_ticks(p)                                               # 50% passed: the next share is 100%
    assert r.phase == "promoted" and r.retire == "blue" and p.endpoints.get(EP).traffic == {"green": 100}
    assert p.registry.get("tabular-classifier", "1").tags["mlops.alias"] == "previous"
    run_ticks(p)                                                   # retention 0: the old colour goes
    assert ("delete", EP, "blue") in p.endpoints.calls and rollout(p).retire == ""
    assert "MLOps.RolloutProgressed" in p.events.types() and p.events.types()[-1] == "MLOps.ModelPromoted"


@pytest.mark.parametrize("green, why", [
    (dict(requests=100, errors=20), "error"),
    (dict(requests=100, latency_ms=15.0), "latenc"),
])
def test_a_bad_challenger_is_rolled_back_with_the_evidence(green, why):
    p = fake_platform()
    at_first_canary_step(p)
    p.metrics.serve("blue", 400)
    p.metrics.serve("green", **green)
    r = run_ticks(p)
    assert r.phase == "rolled_back" and why in r.reason.lower()
    assert r.judgement["outcome"] == "fail" and r.judgement["checks"]
    assert p.endpoints.get(EP).traffic == {"blue": 100}
    assert ("delete", EP, "green") in p.endpoints.calls
    assert p.registry.get("tabular-classifier", "2").tags["mlops.alias"] == "rolled-back"
    assert p.events.types()[-1] == "MLOps.RolloutRolledBack"
    assert p.state.get(RolloutEvent, r.rollout_id).outcome == "rolled_back"


def test_collapsed_predictions_are_rolled_back():
    p = fake_platform()
    at_first_canary_step(p)
    p.metrics.serve("blue", 400)
    p.metrics.serve("green", 100)
    p.collected.outputs = {"blue": [0, 1] * 100, "green": [1] * 100}
    r = run_ticks(p)
    assert r.phase == "rolled_back" and "prediction" in r.reason.lower()


def test_a_failed_smoke_test_rolls_back_before_any_traffic():
    p = fake_platform()
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green")
    p.endpoints.answers["green"] = Invocation(500, 5.0, '{"error": "model failed"}')
    r = run_ticks(p, 2)
    assert r.phase == "rolled_back" and "smoke test failed" in r.reason
    assert all(c[2].get("green", 0) == 0 for c in p.endpoints.calls if c[0] == "traffic")


def test_a_smoke_test_that_times_out_while_the_deployment_warms_up_is_asked_again(monkeypatch):
    import lifecycle.steps.rollouts as handler
    monkeypatch.setattr(handler, "SMOKE_RETRY_SECONDS", 0.0)
    p = fake_platform()
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green")
    p.endpoints.answers["green"] = Invocation(408, 5000.0, '{"error": "did not answer within 5 s"}')
    invoke = p.endpoints.invoke
    timeouts = iter(range(2))

    def warming_up(endpoint, deployment, body):
        if next(timeouts, None) is None:
            p.endpoints.answers.pop("green", None)          # warm now: answers
        return invoke(endpoint, deployment, body)
    monkeypatch.setattr(p.endpoints, "invoke", warming_up)
    assert run_ticks(p, 2).phase == "canary"

    p = fake_platform()                                              # one that never warms up is rolled back
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green")
    p.endpoints.answers["green"] = Invocation(408, 5000.0, '{"error": "did not answer within 5 s"}')
    r = run_ticks(p, 2)
    assert r.phase == "rolled_back" and "408" in r.reason
    assert sum(1 for c in p.endpoints.calls if c[0] == "invoke" and c[2] == "green") == handler.SMOKE_ATTEMPTS


def test_a_tick_leaves_a_smoke_test_that_another_tick_is_running_alone():
    from dataclasses import replace
    p = fake_platform()
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green")
    assert run_ticks(p).phase == "smoke"
    lease = (now() + timedelta(seconds=60)).isoformat(timespec="seconds").replace("+00:00", "Z")
    p.state.update(Rollout, EP, lambda r: replace(r, smoke_lease=lease))      # as the other tick left it
    calls = len(p.endpoints.calls)
    assert run_ticks(p).phase == "smoke" and len(p.endpoints.calls) == calls   # nothing sent, nothing moved
    p.state.update(Rollout, EP, lambda r: replace(r, smoke_lease="2026-01-01T00:00:00Z"))   # that tick died
    assert run_ticks(p).phase == "canary"


def test_a_deployment_that_fails_to_start_is_rolled_back():
    p = fake_platform()
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green", state="Failed", error="init() failed")
    r = run_ticks(p)
    assert r.phase == "rolled_back" and "init() failed" in r.reason


def test_duplicate_events_and_stale_ticks_never_double_a_step():
    p = fake_platform()
    live(p)
    first = registered(p, "2")
    assert registered(p, "2") == first                              # duplicate ModelRegistered: same rollout
    assert p.events.types().count("MLOps.RolloutStarted") == 2      # model 1's and model 2's, once each
    # a replay re-asks for the same deployment (idempotent), in case the first delivery died before asking
    assert {c for c in p.endpoints.calls if c[0] == "create"} == {("create", EP, "blue", "tabular-classifier:1"),
                                                                  ("create", EP, "green", "tabular-classifier:2")}
    p.endpoints.ready(EP, "green")
    run_ticks(p, 2)
    p.metrics.serve("blue", 400)
    p.metrics.serve("green", 100)
    stale = rollout(p)
    assert advance(p, stale, now()).step == 1
    assert advance(p, stale, now()) is None                         # a duplicate tick with the old state: nothing
    assert rollout(p).step == 1


def test_a_model_registered_during_a_rollout_waits_its_turn():
    p = fake_platform()
    live(p)
    registered(p, "2")
    r = registered(p, "3")
    assert r.model == "tabular-classifier:2" and r.queued == ("tabular-classifier:3",)
    override(p, EP, "rollback")
    r = run_ticks(p)
    assert r.model == "tabular-classifier:3" and r.phase == "deploying" and r.baseline == "blue"


def test_of_several_models_waiting_the_newest_rolls_out_next_and_the_older_are_dropped():
    p = fake_platform()
    live(p)
    registered(p, "2")
    registered(p, "3")
    r = registered(p, "4")
    assert r.queued == ("tabular-classifier:3", "tabular-classifier:4")
    override(p, EP, "rollback")
    r = run_ticks(p)
    assert r.model == "tabular-classifier:4" and r.queued == ()
    assert any("superseded in the queue: tabular-classifier:3" in entry["note"] for entry in r.history)


def test_supersede_rolls_back_the_current_rollout_for_the_newer_model():
    p = fake_platform(rollout_on_new_model="supersede")
    live(p)
    registered(p, "2")
    r = registered(p, "3")
    assert r.phase == "rolled_back" and "superseded" in r.reason
    assert run_ticks(p).model == "tabular-classifier:3"


def test_overrides_pause_resume_and_promote():
    p = fake_platform()
    at_first_canary_step(p)
    override(p, EP, "pause")
    p.metrics.serve("blue", 400)
    p.metrics.serve("green", 100)
    assert run_ticks(p).step == 0                                   # paused: nothing moves
    override(p, EP, "resume")
    r = override(p, EP, "promote")
    assert r.phase == "promoted" and p.endpoints.get(EP).traffic == {"green": 100}
    with pytest.raises(ValueError, match="no rollout in progress"):
        override(p, EP, "rollback")


def test_a_step_inconclusive_for_too_long_rolls_back():
    p = fake_platform(rollout_max_step_seconds=60)
    at_first_canary_step(p)
    r = rollout(p)
    later = datetime.fromisoformat(r.phase_started.replace("Z", "+00:00")) + timedelta(seconds=61)
    assert advance(p, r, later).phase == "rolled_back"


def test_live_model_feeds_the_next_training_run():
    from lifecycle.steps.training_runs import live_model
    p = fake_platform()
    assert live_model(p) == ""
    live(p)
    assert live_model(p) == "tabular-classifier:1"
    registered(p, "2")
    assert live_model(p) == "tabular-classifier:1"                  # the challenger is not live yet


# -- exactly once: history decides, whatever event arrives -----------------------------------------------
def promoted(p, version: str) -> Rollout:
    """Model `version` rolled out beside the live one and promoted by hand."""
    registered(p, version)
    colour = rollout(p).colour
    p.endpoints.ready(EP, colour)
    run_ticks(p, 2)
    return override(p, EP, "promote")


def test_a_replayed_model_registered_never_rolls_an_older_version_out_again():
    p = fake_platform()
    live(p)
    promoted(p, "2")
    calls, published = len(p.endpoints.calls), len(p.events.published)
    for version in ("1", "2", "1"):                  # redelivered, or a tag update raising it again
        r = registered(p, version)
        assert r.model == "tabular-classifier:2" and r.phase == "promoted"
    assert [c for c in p.endpoints.calls[calls:] if c[0] in ("create", "traffic", "delete")] == []
    assert len(p.events.published) == published
    assert p.endpoints.get(EP).traffic == {"green": 100}
    assert p.registry.get("tabular-classifier", "2").tags["mlops.alias"] == "champion"


def test_a_rolled_back_version_never_rolls_out_again_and_an_older_unseen_one_is_superseded():
    p = fake_platform()
    live(p)
    registered(p, "2")
    override(p, EP, "rollback")
    assert registered(p, "2").phase == "rolled_back"            # its history says rolled back
    p.registry.register("tabular-classifier", "job-3", {})      # version 3: its event is late
    r = promoted(p, "4")
    assert r.model == "tabular-classifier:4" and r.phase == "promoted"
    r = model_registered(events.parse({
        "id": str(uuid.uuid4()), "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "subject": "models/tabular-classifier:3", "eventTime": "2026-11-23T10:00:00Z", "dataVersion": "2",
        "data": {"ModelName": "tabular-classifier", "ModelVersion": "3"}}), p)
    assert r.model == "tabular-classifier:4"                    # 3 is older than the live 4: superseded


def test_an_end_cut_short_by_a_crash_is_settled_by_the_next_tick():
    p = fake_platform()
    live(p)
    registered(p, "2")
    p.endpoints.ready(EP, "green")
    r = run_ticks(p, 2)
    # what a kill right after the promotion was stored leaves behind: the state, none of its acts
    from lifecycle.core import rollout_machine as rm
    p.state.update(Rollout, EP, lambda current: rm.promote(current, "promoted by hand", now()))
    assert rollout(p).settling and p.endpoints.get(EP).traffic == {"green": 10, "blue": 90}
    assert p.state.get(RolloutEvent, r.rollout_id) is None
    r = run_ticks(p)
    assert not r.settling and p.endpoints.get(EP).traffic == {"green": 100}
    assert p.state.get(RolloutEvent, r.rollout_id).outcome == "promoted"
    assert p.registry.get("tabular-classifier", "2").tags["mlops.alias"] == "champion"
    assert p.events.types()[-1] == "MLOps.ModelPromoted"
    announced = p.events.types().count("MLOps.ModelPromoted")
    run_ticks(p, 2)
    assert p.events.types().count("MLOps.ModelPromoted") == announced


def test_a_rollout_stored_before_its_deployment_was_asked_for_asks_again():
    p = fake_platform()
    live(p)
    p.registry.register("tabular-classifier", "job-2", {})
    from lifecycle.core import rollout_machine as rm
    p.state.update(Rollout, EP, lambda current: rm.start(EP, "tabular-classifier:2", current, now()))
    assert p.endpoints.get(EP).deployment("green") is None
    run_ticks(p)
    assert ("create", EP, "green", "tabular-classifier:2") in p.endpoints.calls


def test_a_registered_version_whose_event_was_lost_is_offered_by_reconcile():
    from lifecycle.core.state_records import Decision
    from lifecycle.steps.rollouts import catch_up
    p = fake_platform()
    live(p)
    version = p.registry.register("tabular-classifier", "job-2", {}).version
    p.state.create(Decision(job_name="job-2", model_name="tabular-classifier", outcome="registered", version=version))
    p.state.create(Decision(job_name="job-0", model_name="tabular-classifier", outcome="registered", version="1"))
    (r,) = catch_up(p, now())
    assert r.model == "tabular-classifier:2" and r.phase == "deploying"
    assert catch_up(p, now()) == []                                    # offered once


class UnloggedMetrics:
    """Azure Monitor without the endpoint's diagnostic setting: no request of the endpoint is logged."""

    def window(self, endpoint, deployment, since, until=None):
        raise NoTrafficLogs(f"no traffic logs for {endpoint} in Log Analytics workspace 5b8f2c1d-3e4a-4b6c-9d7e-"
                            "8f0a1b2c3d4e: is the endpoint's diagnostic setting there (AmlOnlineEndpointTrafficLog)?")


def test_an_endpoint_without_traffic_logs_is_said_at_once_then_held_for_a_person_never_rolled_back():
    p = fake_platform(rollout_max_step_seconds=3600)
    at_first_canary_step(p)
    unlogged = replace(p, metrics=UnloggedMetrics())
    started = datetime.fromisoformat(rollout(p).phase_started.replace("Z", "+00:00"))

    assert advance(unlogged, rollout(p), started + timedelta(seconds=30)) is None
    r = rollout(p)
    assert not r.paused and r.phase == "canary"
    assert r.judgement["summary"].startswith("no traffic logs for mlops-endpoint in Log Analytics workspace")
    assert [c["detail"] for c in r.judgement["checks"]] == [r.judgement["summary"]]     # what `mlops status` lists

    r = advance(unlogged, r, started + timedelta(minutes=16))                 # past Log Analytics' ingestion delay
    assert r.paused and (r.phase, r.step) == ("canary", 0)
    assert r.history[-1]["note"].startswith("held for a person: no traffic logs for mlops-endpoint")
    assert "is the endpoint's diagnostic setting there (AmlOnlineEndpointTrafficLog)?" in r.history[-1]["note"]
    assert advance(unlogged, r, started + timedelta(hours=5)) is None          # waits for the person, however long
    assert p.state.get(RolloutEvent, r.rollout_id) is None and p.endpoints.get(EP).traffic == {"green": 10, "blue": 90}

    override(p, EP, "resume")                                                  # the setting was added: logs come in
    p.metrics.serve("blue", 400)
    p.metrics.serve("green", 100)
    assert run_ticks(p).step == 1


def test_without_traffic_logs_a_short_step_deadline_holds_instead_of_rolling_back():
    p = fake_platform(rollout_max_step_seconds=60)
    at_first_canary_step(p)
    r = rollout(p)
    later = datetime.fromisoformat(r.phase_started.replace("Z", "+00:00")) + timedelta(seconds=61)
    held = advance(replace(p, metrics=UnloggedMetrics()), r, later)
    assert held.paused and held.phase == "canary"
