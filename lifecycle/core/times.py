"""Times as the records store them: ISO 8601 in UTC with a Z, to the second (or the millisecond where a
window opens and closes within one second). The one place that formats and parses them."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def iso(moment: datetime, timespec: Literal["seconds", "milliseconds"] = "seconds") -> str:
    """`moment` as stored: UTC, 'Z'. A naive datetime is taken as UTC."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A stored time (or any ISO 8601 time; 'Z' or an offset) as an aware datetime; a naive one is UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
