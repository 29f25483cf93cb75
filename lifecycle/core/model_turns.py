"""A model's own schedule on an app's timer: the Functions timer (RETRAIN_SCHEDULE, MONITOR_SCHEDULE) ticks for
the whole app, and a model with a schedule of its own (the models file) takes only the ticks after which an
occurrence of its schedule has come since its last turn."""
from __future__ import annotations

from datetime import datetime


def turn_due(schedule: str, last_turn: datetime | None, now: datetime) -> bool:
    """Whether the model acts on this tick. No schedule: every tick. No turn yet: not now; its schedule counts
    from this tick (the timer must tick at least as often as the model's schedule asks)."""
    if not schedule:
        return True
    if last_turn is None:
        return False
    from croniter import croniter  # only when a model has its own schedule: cold start stays light
    return croniter(schedule, last_turn, second_at_beginning=True).get_next(datetime) <= now
