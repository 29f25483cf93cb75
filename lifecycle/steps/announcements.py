"""Publishing a decision's MLOps.* event once. An Announcement record is created (the claim) before the publish
and marked sent after it: a replayed trigger finds it sent and publishes nothing; a concurrent one (the reconcile
timer and the event for the same drop) finds it claimed and leaves it to its claimant; and one cut short between
the claim and the mark is published again by the next caller once the claim is stale (at least once, rather
than never)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from lifecycle import clock
from lifecycle.core.notifications import CLAIM_SECONDS, Announcement
from lifecycle.core.times import iso, parse_time
from lifecycle.ports import UsesEvents, UsesState

log = logging.getLogger("lifecycle.announcements")


class AnnouncePorts(UsesState, UsesEvents, Protocol):
    """What announcing a decision uses of the platform."""


def announce(p: AnnouncePorts, event_type: str, subject: str, data: dict[str, Any], key: str,
             unfinished_only: bool = False, now: datetime | None = None) -> bool:
    """Publish `event_type` for the decision `key` unless it was published (or is being published) already; True
    if published now. `unfinished_only`: publish only one begun and cut short (a replay of an older decision)."""
    name = f"{event_type}/{key}"
    moment = now or clock.now()
    claim = Announcement(name=name, event_type=event_type, subject=subject, claim=uuid.uuid4().hex,
                         claimed_at=iso(moment))
    if unfinished_only or not p.state.create(claim):
        existing = p.state.get(Announcement, name)
        if existing is None or existing.sent:
            return False
        if existing.claimed_at and parse_time(existing.claimed_at) > moment - timedelta(seconds=CLAIM_SECONDS):
            log.info("%s for %s is being published by another invocation", event_type, key)
            return False
        taken = p.state.update(Announcement, name, lambda r: replace(r, claim=claim.claim, claimed_at=claim.claimed_at)
                               if r is not None and not r.sent and r.claim == existing.claim else None)
        if taken is None or taken.claim != claim.claim:
            return False
    p.events.publish(event_type, subject, data)
    p.state.update(Announcement, name, lambda r: replace(r, sent=True) if r is not None and not r.sent else None)
    return True
