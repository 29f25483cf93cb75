"""Event Grid's delivery retry policy: which answers are retried, and when."""
from __future__ import annotations

# Azure's documented schedule: 10 s, 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, 3 h, 6 h, then every 12 h.
SCHEDULE_SECONDS = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600)
THEN_EVERY_SECONDS = 43200
# Answers Event Grid never retries: the event is dead-lettered (or dropped) at once.
NOT_RETRIED = frozenset({400, 401, 403, 413})

_OUTCOMES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
             408: "TimedOut", 413: "PayloadTooLarge", 429: "Busy", 503: "Busy"}


def delay_after(attempt: int, scale: float = 1.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based). `scale` compresses the
    schedule for local runs (0.01 turns 10 s into 0.1 s)."""
    base = SCHEDULE_SECONDS[attempt - 1] if attempt <= len(SCHEDULE_SECONDS) else THEN_EVERY_SECONDS
    return base * scale


def is_success(status: int) -> bool:
    return 200 <= status <= 204


def outcome_name(status: int | None) -> str:
    """Event Grid's name for a delivery outcome, as in `lastDeliveryOutcome`."""
    if status is None:
        return "Aborted"
    if is_success(status):
        return "Succeeded"
    return _OUTCOMES.get(status, "GenericError")
