"""Taking a model's turn of an app timer: due by its own schedule (lifecycle.core.model_turns), recorded once,
so that two overlapping ticks take one turn."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from lifecycle.core.model_turns import turn_due
from lifecycle.core.state_records import TimerTurn
from lifecycle.core.times import iso, parse_time
from lifecycle.ports import UsesPolicies, UsesState


class TurnPorts(UsesPolicies, UsesState, Protocol):
    """What taking a turn uses of the platform."""


def take_turn(p: TurnPorts, timer: str, schedule: str, now: datetime) -> bool:
    """Whether the scoped model acts on this tick of `timer`; a due turn is recorded (compare-and-swap)."""
    if not schedule:
        return True
    model = p.policies.model.name
    key = TimerTurn(timer=timer, model=model, last="").key
    seen = p.state.get(TimerTurn, key)
    if seen is None:
        p.state.create(TimerTurn(timer=timer, model=model, last=iso(now)))      # its schedule counts from now
        return False
    if not turn_due(schedule, parse_time(seen.last), now):
        return False
    taken = p.state.update(TimerTurn, key, lambda t: replace(t, last=iso(now)) if t and t.last == seen.last else None)
    return taken is not None and taken.last == iso(now)
