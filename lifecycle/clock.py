"""The wall clock, read at the edges (entry points, handlers, adapters), never in lifecycle/core/:
the core is handed `now`, so a test or a simulation can run it at any time."""
from __future__ import annotations

from datetime import UTC, datetime

from lifecycle.core.times import iso


def now() -> datetime:
    return datetime.now(UTC)


def utcnow() -> str:
    """Now, as the records store times."""
    return iso(now())
