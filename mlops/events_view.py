"""`mlops events`: the delivery timeline, filtered (type, function, outcome, since; timer ticks hidden unless
asked) and shown in a table that fits 80 columns. The command in cli.py only parses arguments and prints."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich import box
from rich.markup import escape
from rich.table import Table

from emulator.timeline import Delivery

OUTCOMES = ("delivered", "failed", "dead-lettered", "rejected", "skipped", "dropped", "unmatched")
_COLOURS = {"delivered": "green", "failed": "yellow", "dead-lettered": "red", "dropped": "red", "rejected": "red",
            "unmatched": "dim", "skipped": "dim"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_BLOB_PREFIX = "/blobServices/default/containers/"


class BadFilter(ValueError):
    """A filter that cannot be read; the message says what is possible."""


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: a duration back from now (90s, 10m, 2h, 1d, 1w, or several: 1h30m) or an ISO 8601 time
    (2026-11-30T12:00:00Z, 2026-11-30 12:00, 2026-11-30; without an offset, UTC as the records are)."""
    text = text.strip()
    if not text:
        raise BadFilter("--since is empty: give a duration (10m, 2h, 1d) or an ISO time (2026-11-30T12:00Z)")
    if _DURATION.fullmatch(text) or re.fullmatch(r"(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+", text, re.IGNORECASE):
        span = timedelta()
        for amount, unit in _DURATION.findall(text):
            span += timedelta(**{_UNITS[unit.lower()]: float(amount)})
        return now - span
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadFilter(f"--since {text!r}: give a duration (90s, 10m, 2h, 1d, 1h30m) or an ISO time "
                        "(2026-11-30T12:00:00Z; UTC without an offset)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _record_time(record: Delivery) -> datetime | None:
    try:
        moment = datetime.fromisoformat(record.time.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_tick(record: Delivery) -> bool:
    """A timer trigger's invocation (the reconciler, the monitor): most of the timeline on a quiet stack."""
    return record.source == "timer" or record.event_type == "Timer"


@dataclass(frozen=True)
class Filters:
    event_type: str | None = None     # a part of the type, any case: BlobCreated, MLOps.Model
    function: str | None = None       # a part of the function's name
    outcomes: tuple[str, ...] = ()    # any of these
    since: datetime | None = None
    ticks: bool = False               # keep timer ticks

    @classmethod
    def parse(cls, event_type: str | None, function: str | None, outcome: str | None, since: str | None,
              ticks: bool, now: datetime) -> Filters:
        outcomes = tuple(o.strip().lower() for o in (outcome or "").split(",") if o.strip())
        unknown = [o for o in outcomes if o not in OUTCOMES]
        if unknown:
            raise BadFilter(f"--outcome {', '.join(unknown)}: one or more of {', '.join(OUTCOMES)} (comma-separated)")
        return cls(event_type or None, function or None, outcomes,
                   parse_since(since, now) if since is not None else None, ticks)

    def keep(self, r: Delivery) -> bool:
        if not self.ticks and is_tick(r):
            return False
        if self.event_type and self.event_type.lower() not in r.event_type.lower():
            return False
        if self.function and self.function.lower() not in (r.function or "").lower():
            return False
        if self.outcomes and r.outcome not in self.outcomes:
            return False
        if self.since is not None:
            moment = _record_time(r)
            if moment is None or moment < self.since:
                return False
        return True


def select(records, filters: Filters, limit: int) -> tuple[list[Delivery], int, int]:
    """(the last `limit` records kept (0: all), how many the filters kept, how many ticks they hid)."""
    kept, ticks = [], 0
    for r in records:
        if filters.keep(r):
            kept.append(r)
        elif not filters.ticks and is_tick(r):
            ticks += 1
    return (kept[-limit:] if limit else kept), len(kept), ticks


def short_subject(subject: str) -> str:
    """A subject relative to its container: a blob's /blobServices/default/containers/data/blobs/x/y → data/x/y,
    an Azure ML run's experiments/<id>/runs/<job> → runs/<job>; others as they are."""
    if subject.startswith(_BLOB_PREFIX):
        container, _, blob = subject[len(_BLOB_PREFIX):].partition("/blobs/")
        return f"{container}/{blob}" if blob else container
    run = re.fullmatch(r"experiments/[^/]+/(runs/.+)", subject)
    return run.group(1) if run else subject


def short_type(event_type: str) -> str:
    """Azure's types without their namespace (Microsoft.Storage.BlobCreated → BlobCreated); ours (MLOps.*) whole."""
    return event_type.rsplit(".", 1)[-1] if event_type.startswith("Microsoft.") else event_type


def table(records: list[Delivery]) -> Table:
    """Time, outcome (and the attempt, after the first), and the event: its type → the function, with its
    subject (relative to its container) and the reason for anything not delivered on lines below. 80 columns
    hold it, and a long subject or reason folds instead of being cut."""
    shown = Table("time", "outcome", "event → function", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    shown.columns[2].overflow = "fold"
    for r in records:
        event = f"{escape(short_type(r.event_type))} → [bold]{escape(r.function or '-')}[/]"
        if r.subject:
            event += f"\n[dim]{escape(short_subject(r.subject))}[/]"
        if r.detail:
            event += f"\n[{_COLOURS.get(r.outcome, 'yellow')}]{escape(r.detail)}[/]"
        status = f" {r.status}" if r.status and r.outcome != "delivered" else ""
        attempt = f"\n[dim]try {r.attempt}[/]" if r.attempt > 1 else ""
        shown.add_row(r.time[11:19], f"[{_COLOURS.get(r.outcome, 'white')}]{escape(r.outcome)}[/]{status}{attempt}",
                      event)
    return shown
