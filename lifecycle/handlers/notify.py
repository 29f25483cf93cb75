"""The notify trigger: each decision on the app's MLOps.* topic posted to every webhook NOTIFY_WEBHOOKS lists.

Runs in its own function off the topic, never inside the step that decides, so a slow or failing webhook
never slows the chain. Each webhook gets each event once: what it took is recorded per event and webhook,
so a redelivered event posts only what is missing. A webhook is tried a few times (connection errors,
408, 429, 5xx; Retry-After honoured up to a cap) and then dead-lettered: recorded with the event, the
webhook without its secrets, the last error and the attempts (`dead_letters`), and not tried again. One
webhook failing neither stops the others nor fails the invocation, so Event Grid does not redeliver to
those that took it."""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from lifecycle import clock
from lifecycle.core import notifications as told
from lifecycle.core.incoming_events import LifecycleEvent
from lifecycle.core.notifications import (
    Notice,
    NotificationDeadLetter,
    NotificationSent,
    Webhook,
    WebhookUnreachable,
    delivery_key,
)
from lifecycle.core.times import iso
from lifecycle.dispatch import Rejected
from lifecycle.ports import Notifier, UsesState

log = logging.getLogger("lifecycle.notify")
DECISION_LOG = "mlops-decision"      # what the Azure Monitor log alert rule looks for (infra/subscriptions.bicep)
LOG_TARGET = "log"                   # the decision's log line is written once per event too


@dataclass(frozen=True)
class Delivery:
    webhook: str                     # the webhook's id
    outcome: str                     # sent | already | dead-lettered
    attempts: int = 0


def notify(event: object, n: Notifier, now: datetime | None = None) -> list[Delivery]:
    """An MLOps.* event: a decision is told to every webhook that has not taken it yet; any other is ignored."""
    if not isinstance(event, LifecycleEvent):
        raise Rejected(f"expected an MLOps.* event, got {getattr(event, 'event_type', type(event).__name__)}")
    if not told.is_decision(event.event_type):
        log.info("%s is not a decision people are told of", event.event_type)
        return []
    data = dict(event.data) if isinstance(event.data, Mapping) else {}
    at = iso(event.event_time or now or clock.now())
    note = told.notice(event.id, event.event_type, event.subject, at, data)
    if n.state.create(NotificationSent(event_id=event.id, webhook=LOG_TARGET, event_type=event.event_type,
                                       attempts=1, sent_at=iso(now or clock.now()))):
        log.warning("%s: %s: %s", DECISION_LOG, note.title, note.summary)
    pending = [w for w in n.targets if not _done(n, event.id, w)]
    if not pending:
        return [Delivery(w.id, "already") for w in n.targets]
    with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="notify") as pool:
        done = list(pool.map(lambda w: _deliver(n, w, note, now), pending))
    return [Delivery(w.id, "already") for w in n.targets if w not in pending] + done


def _done(n: Notifier, event_id: str, hook: Webhook) -> bool:
    key = delivery_key(event_id, hook.id)
    return n.state.get(NotificationSent, key) is not None or n.state.get(NotificationDeadLetter, key) is not None


def _deliver(n: Notifier, hook: Webhook, note: Notice, now: datetime | None) -> Delivery:
    body = told.payload(hook.format, note)
    sleep = n.sleep if n.sleep is not None else time.sleep
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        status: int | None = None
        header: str | None = None
        try:
            answer = n.webhooks.post(hook.url, body, n.delivery.timeout_seconds)
            status, header = answer.status, answer.retry_after
            if 200 <= status < 300:
                n.state.create(NotificationSent(event_id=note.event_id, webhook=hook.id, event_type=note.event_type,
                                                attempts=attempt, sent_at=iso(now or clock.now())))
                log.info("told %s of %s %s (attempt %d)", hook.shown, note.event_type, note.event_id, attempt)
                return Delivery(hook.id, "sent", attempt)
            error = f"HTTP {status}" + (f": {answer.detail}" if answer.detail else "")
        except WebhookUnreachable as unreachable:
            error = str(unreachable)
        delay = told.next_delay(attempt, status, header, n.delivery, time.monotonic() - started)
        if delay is None:
            return _dead_letter(n, hook, note, attempt, status, error, now)
        log.info("%s did not take %s %s (%s): attempt %d in %.1f s", hook.shown, note.event_type, note.event_id,
                 error, attempt + 1, delay)
        sleep(delay)


def _dead_letter(n: Notifier, hook: Webhook, note: Notice, attempts: int, status: int | None, error: str,
                 now: datetime | None) -> Delivery:
    record = NotificationDeadLetter(
        event_id=note.event_id, webhook=hook.id, target=hook.shown, event_type=note.event_type,
        subject=note.subject, summary=note.summary, event=told.json_payload(note), attempts=attempts,
        last_status=status, last_error=error[:500], dead_lettered_at=iso(now or clock.now()))
    n.state.create(record)
    log.error("dead-lettered the notification of %s %s to %s after %d attempt(s): %s (kept in the state "
              "container under %s/)", note.event_type, note.event_id, hook.shown, attempts, error,
              NotificationDeadLetter.COLLECTION)
    return Delivery(hook.id, "dead-lettered", attempts)


def dead_letters(p: UsesState) -> list[NotificationDeadLetter]:
    """The notifications a webhook did not take, newest first."""
    return sorted(p.state.list(NotificationDeadLetter), key=lambda r: r.dead_lettered_at, reverse=True)
