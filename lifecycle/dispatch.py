"""From a trigger's binding to a handler: parse the event once, and turn an event the app cannot
act on into a recorded rejection instead of an error that delivery would retry forever."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lifecycle.clock import utcnow
from lifecycle.core import incoming_events as events
from lifecycle.core.state_records import Rejection
from lifecycle.ports import Platform, UsesState

if TYPE_CHECKING:
    import azure.functions as func

log = logging.getLogger("lifecycle")


class Rejected(Exception):
    """Raised by a handler for an event that is permanently unusable (not for transient failures)."""


def event_grid(binding: func.EventGridEvent | func.CloudEvent, handler: Callable[[Any, Platform], object],
               platform: Callable[[], Platform]) -> None:
    p = platform()
    try:
        handler(events.from_binding(binding), p)
    except (events.EventParseError, Rejected) as error:
        reject(p, _raw(binding), handler.__name__, str(error))


def _raw(binding: func.EventGridEvent | func.CloudEvent) -> dict:
    # The worker hands CloudEvents deliveries over as func.CloudEvent, which names its fields differently.
    return {"id": binding.id, "subject": binding.subject, "data": binding.get_json(),
            "eventType": getattr(binding, "event_type", None) or getattr(binding, "type", None),
            "topic": getattr(binding, "topic", None) or getattr(binding, "source", None)}


def reject(p: UsesState, raw: dict, function: str, reason: str) -> None:
    rejection = Rejection(
        event_id=str(raw.get("id") or ""), event_type=str(raw.get("eventType") or ""),
        subject=str(raw.get("subject") or ""), function=function, reason=reason, event=raw, rejected_at=utcnow())
    if p.state.create(rejection):
        log.warning("rejected event %s (%s) in %s: %s", rejection.event_id, rejection.event_type, function, reason)
