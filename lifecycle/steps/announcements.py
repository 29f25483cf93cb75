"""Publishing a decision's MLOps.* event once: an Announcement record is created before the publish and marked
sent after it, so a replayed trigger (Event Grid delivers at least once) publishes nothing twice, and one cut
short between the publish and the mark publishes again rather than never."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Protocol

from lifecycle.core.notifications import Announcement
from lifecycle.ports import UsesEvents, UsesState

log = logging.getLogger("lifecycle.announcements")


class AnnouncePorts(UsesState, UsesEvents, Protocol):
    """What announcing a decision uses of the platform."""


def announce(p: AnnouncePorts, event_type: str, subject: str, data: dict[str, Any], key: str,
             unfinished_only: bool = False) -> bool:
    """Publish `event_type` for the decision `key` unless it was published already; True if published now.
    `unfinished_only`: publish only one that was begun and cut short (a replay of a decision made before)."""
    name = f"{event_type}/{key}"
    existing = p.state.get(Announcement, name)
    if existing is not None and existing.sent:
        log.info("%s for %s was published already", event_type, key)
        return False
    if existing is None and unfinished_only:
        return False
    if existing is None:
        p.state.create(Announcement(name=name, event_type=event_type, subject=subject))
    p.events.publish(event_type, subject, data)
    p.state.update(Announcement, name, lambda r: replace(r, sent=True) if r is not None and not r.sent else None)
    return True
