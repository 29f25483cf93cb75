"""The monitor timer (and its HTTP twin): a monitoring pass over each model's live deployment's recent traffic."""
from __future__ import annotations

from datetime import datetime

from lifecycle.core.state_records import MonitorRun
from lifecycle.model_scope import each_model, for_model
from lifecycle.steps.model_turns import take_turn
from lifecycle.steps.monitoring_runs import MonitoringPorts, start_pass


def monitor(p: MonitoringPorts, now: datetime) -> MonitorRun | None:
    """Submit the window's monitoring job (or say why not) and return; the job's end event stores its result."""
    return start_pass(p, now)


def monitor_models(p: MonitoringPorts, now: datetime, model: str = "") -> list[MonitorRun]:
    """A pass for the named model, or for each model in turn ("" on an app of several)."""
    if model:
        run = monitor(for_model(p, model), now)
        return [run] if run else []
    def turn(q: MonitoringPorts) -> MonitorRun | None:
        if not take_turn(q, "monitor", q.policies.monitor.schedule, now):
            return None                # not this model's turn: its own schedule (the models file)
        return monitor(q, now)
    return [run for run in each_model(p, turn, "the monitor timer") if run]
