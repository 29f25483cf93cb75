"""The delivery timeline as the dashboard lists it: the records `emulator.timeline.Timeline` reads, filtered by
type, function, outcome and time, timer ticks hidden unless asked for."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from emulator.timeline import Delivery
from lifecycle.core.times import parse_time

DEFAULT_LIMIT = 500
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class EventFilter:
    type: str = ""          # the event type, or a part of it ("Rollout" matches MLOps.RolloutPromoted)
    function: str = ""      # the function's name, exactly
    outcome: str = ""       # delivered | failed | dead-lettered | rejected | skipped
    since: datetime | None = None
    ticks: bool = False     # timer ticks (source "timer") shown
    limit: int = DEFAULT_LIMIT

    def keeps(self, d: Delivery) -> bool:
        if d.source == "timer" and not self.ticks:
            return False
        if self.type and self.type.lower() not in d.event_type.lower():
            return False
        if self.function and d.function != self.function:
            return False
        if self.outcome and d.outcome != self.outcome:
            return False
        if self.since is not None:
            try:
                return parse_time(d.time) >= self.since
            except ValueError:
                return False
        return True


def parse_since(text: str, now: datetime) -> datetime | None:
    """An ISO 8601 time, or a span back from now ("90s", "10m", "2h", "1d"); None for ''. ValueError otherwise."""
    if not text.strip():
        return None
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: float(relative.group(1))})
    return parse_time(text.strip())


def listing(records: Iterable[Delivery], shown: EventFilter) -> dict:
    """The newest `limit` records the filter keeps (oldest first), with what the filters can choose from."""
    records = list(records)
    kept = [d for d in records if shown.keeps(d)]
    limit = max(shown.limit, 0)
    return {"events": [asdict(d) for d in kept[max(len(kept) - limit, 0):]] if limit else [],
            "matched": len(kept), "total": len(records),
            "ticks_hidden": 0 if shown.ticks else sum(d.source == "timer" for d in records),
            "facets": {"type": sorted({d.event_type for d in records}),
                       "function": sorted({d.function for d in records}),
                       "outcome": sorted({d.outcome for d in records})}}
