"""The wall clock, read at the edges (entry points, handlers, adapters), never in lifecycle/core/:
the core is handed `now`, so a test or a simulation can run it at any time. `mlops simulate` sets the
source to its simulated clock, so the few edges that read the clock themselves read simulated time too."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from lifecycle.core.times import iso


def _wall() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _wall


def now() -> datetime:
    return _source()


def utcnow() -> str:
    """Now, as the records store times."""
    return iso(now())


def use(source: Callable[[], datetime] | None) -> None:
    """Read time from `source` from now on (None: the wall clock again). For a simulated run only."""
    global _source
    _source = source or _wall
