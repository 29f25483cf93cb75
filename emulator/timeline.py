"""The delivery timeline: one JSON line per function invocation, written by the local Event Grid
(deliveries) and the local Functions host (timers, HTTP). `mlops events` reads it.

Lines are appended with O_APPEND in a single write, so two processes can share the file."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lifecycle.clock import now
from lifecycle.core.times import iso


def utcnow_iso() -> str:
    return iso(now(), "milliseconds")


@dataclass(frozen=True)
class Delivery:
    """One attempt to hand one event (or one timer tick, one HTTP request) to one function."""
    event_id: str
    event_type: str
    subject: str
    function: str
    attempt: int
    outcome: str                      # delivered | failed | dead-lettered | rejected | skipped
    source: str = "eventgrid"         # eventgrid | timer | http
    detail: str = ""                  # the reason, for anything but delivered
    status: int | None = None         # HTTP status the function answered with, where there is one
    duration_ms: float | None = None
    subscription: str = ""            # the Event Grid subscription that delivered it, if any
    time: str = field(default_factory=utcnow_iso)


class Timeline:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, delivery: Delivery) -> None:
        line = (json.dumps(asdict(delivery), separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self) -> Iterator[Delivery]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                line = line.strip()
                if line:
                    yield Delivery(**json.loads(line))
