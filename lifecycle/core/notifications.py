"""Telling people what the lifecycle decided: which `MLOps.*` events are decisions, the one-line summary a
person on call reads for each, the webhook payloads (Slack, Teams, plain JSON), which webhook answers are
worth another try, and the records that make a redelivered event post nothing twice.

Pure: time and policy values are passed in. The handler (lifecycle/handlers/notify.py) does the posting."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from lifecycle.core.state_records import Record

# -- the decisions ----------------------------------------------------------------------------------------
TRAINING_STARTED = "MLOps.TrainingStarted"
TRAINING_FAILED = "MLOps.TrainingFailed"
MODEL_REGISTERED = "MLOps.ModelRegistered"
MODEL_REJECTED = "MLOps.ModelRejected"
MODEL_HELD = "MLOps.ModelHeld"
ROLLOUT_STARTED = "MLOps.RolloutStarted"
MODEL_PROMOTED = "MLOps.ModelPromoted"
ROLLOUT_ROLLED_BACK = "MLOps.RolloutRolledBack"
MODEL_SHARED = "MLOps.ModelShared"
PROMOTION_AWAITING_APPROVAL = "MLOps.PromotionAwaitingApproval"
PROMOTION_APPROVED = "MLOps.PromotionApproved"
PROMOTION_REJECTED = "MLOps.PromotionRejected"
DRIFT_DETECTED = "MLOps.DriftDetected"
PERFORMANCE_DEGRADED = "MLOps.PerformanceDegraded"
TRAINING_SLOWED = "MLOps.TrainingSlowed"

# event type -> (title, severity); severity: info | good | warning | critical
DECISIONS: dict[str, tuple[str, str]] = {
    TRAINING_STARTED: ("Training started", "info"),
    TRAINING_FAILED: ("Training failed", "warning"),
    MODEL_REGISTERED: ("Model registered", "good"),
    MODEL_REJECTED: ("Model rejected", "warning"),
    MODEL_HELD: ("Model held for a person", "warning"),
    ROLLOUT_STARTED: ("Rollout started", "info"),
    MODEL_PROMOTED: ("Model promoted", "good"),
    ROLLOUT_ROLLED_BACK: ("Rollout rolled back", "critical"),
    MODEL_SHARED: ("Model shared to production", "info"),
    PROMOTION_AWAITING_APPROVAL: ("Promotion awaiting approval", "warning"),
    PROMOTION_APPROVED: ("Promotion approved", "good"),
    PROMOTION_REJECTED: ("Promotion rejected", "warning"),
    DRIFT_DETECTED: ("Drift alert", "critical"),
    PERFORMANCE_DEGRADED: ("Performance alert", "critical"),
    TRAINING_SLOWED: ("Training slowed", "warning"),
}
ALERT_TYPES = (DRIFT_DETECTED, PERFORMANCE_DEGRADED)
TEAMS_COLOURS = {"info": "Accent", "good": "Good", "warning": "Warning", "critical": "Attention"}
EMOJI = {"info": ":information_source:", "good": ":white_check_mark:", "warning": ":warning:",
         "critical": ":rotating_light:"}


def is_decision(event_type: str) -> bool:
    return event_type in DECISIONS


def _text(value: Any, limit: int = 300) -> str:
    text = "; ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value or "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _ref(data: Mapping[str, Any]) -> str:
    """name:version of the event's model, however the event names it."""
    model, version = str(data.get("model") or ""), str(data.get("version") or "")
    return f"{model}:{version}" if version and ":" not in model else model


def _metric(data: Mapping[str, Any]) -> str:
    name = str(data.get("metric") or "")
    value = (data.get("metrics") or {}).get(name) if isinstance(data.get("metrics"), Mapping) else None
    return f" ({name} {value:.3f})" if name and isinstance(value, int | float) else ""


def _condition(data: Mapping[str, Any]) -> str:
    return str(data.get("condition") or "Fired")


def summary(event_type: str, data: Mapping[str, Any]) -> str:
    """One sentence for the person on call: which model, what was decided, why, and what to do (if anything)."""
    d = data
    job, model, reasons = str(d.get("job") or ""), _ref(d), _text(d.get("reasons") or d.get("reason"))
    why = f": {reasons}" if reasons else ""
    if event_type == TRAINING_STARTED:
        new = d.get("newBatches")
        return (f"Training of {model} started as job {job} ({d.get('trigger') or 'data'}"
                + (f", {new} new data batch(es)" if new else "") + "); "
                + (f"it will be compared with {d['champion']}." if d.get("champion") else "there is no champion yet."))
    if event_type == TRAINING_FAILED:
        error = _text(d.get("error")) or "no error message"
        return (f"Training job {job} of {model} ended {d.get('status') or 'Failed'}: {error}. Look at the job's "
                f"log (`mlops status`); the data it took is offered again or kept out.")
    if event_type == MODEL_REGISTERED:
        by = f", approved by {d['by']}" if d.get("by") else ""
        return (f"{model} registered from job {job}{_metric(d)}{by}; its rollout starts next"
                + (f" (champion {d['champion']})." if d.get("champion") else "."))
    if event_type == MODEL_REJECTED:
        who = f"by {d['by']}" if d.get("by") else "by the registration gate"
        return f"The model of job {job} ({model}) was rejected {who}{_metric(d)}{why}. The champion stays live."
    if event_type == MODEL_HELD:
        return (f"The model of job {job} ({model}) is held for a person{why}. "
                f"Decide: `mlops approve {job}` or `mlops reject {job}`.")
    endpoint = str(d.get("endpoint") or "")
    if event_type == ROLLOUT_STARTED:
        base = f", against {d['baselineModel']}" if d.get("baselineModel") else ""
        return (f"Rollout of {model} to endpoint {endpoint} started on deployment {d.get('deployment')}{base}; "
                f"the canary judge decides at each step (`mlops status`).")
    if event_type == MODEL_PROMOTED:
        return f"{model} was promoted on endpoint {endpoint} and takes all traffic{why}."
    if event_type == ROLLOUT_ROLLED_BACK:
        live = f"{d['baselineModel']} keeps serving" if d.get("baselineModel") else "the old deployment keeps serving"
        return (f"Rollout of {model} on endpoint {endpoint} was rolled back{why}; {live}. "
                f"See the judge's evidence in `mlops status`.")
    if event_type == MODEL_SHARED:
        return (f"{model} was shared into registry {d.get('registry')} for production; production rolls it out "
                f"(or asks for approval).")
    if event_type == PROMOTION_AWAITING_APPROVAL:
        return (f"{model} from registry {d.get('registry')} awaits approval for production. Decide: "
                f"`mlops promote approve {model}` or `mlops promote reject {model}`.")
    if event_type == PROMOTION_APPROVED:
        return (f"The promotion of {model} to production was approved by {d.get('by') or 'a person'}; "
                f"its rollout starts.")
    if event_type == PROMOTION_REJECTED:
        return (f"The promotion of {model} to production was rejected by {d.get('by') or 'a person'}; "
                f"production is unchanged.")
    if event_type in ALERT_TYPES:
        kind = "Drift" if event_type == DRIFT_DETECTED else "Performance"
        signal = str(d.get("signal") or kind.lower()).replace("_", " ")
        on = f" on {model}" + (f" (endpoint {endpoint})" if endpoint else "")
        said = _text(d.get("summary"))
        if _condition(d) == "Resolved":
            return f"{kind} alert resolved{on}: {signal} is back within its thresholds."
        return (f"{kind} alert fired{on}: {signal}" + (f" — {said}" if said else "")
                + ". Retraining starts if there is fresh data and no cooldown; see `mlops status`.")
    if event_type == TRAINING_SLOWED:
        return (f"Training job {job} of {model} took {d.get('duration')}, {d.get('factor')}x its usual "
                f"{d.get('usual')}{why}. Look at its data size and the cluster (`mlops status`, Training compute).")
    return f"{event_type} for {model or d.get('subject') or 'the lifecycle'}."


@dataclass(frozen=True)
class Notice:
    """One decision as people are told of it."""
    event_id: str
    event_type: str
    subject: str
    time: str
    data: Mapping[str, Any]
    title: str
    severity: str
    summary: str
    facts: tuple[tuple[str, str], ...] = ()


FACT_KEYS = (("model", "Model"), ("version", "Version"), ("job", "Job"), ("endpoint", "Endpoint"),
             ("deployment", "Deployment"), ("registry", "Registry"), ("signal", "Signal"),
             ("condition", "Condition"), ("trigger", "Trigger"), ("by", "By"))


def notice(event_id: str, event_type: str, subject: str, time: str, data: Mapping[str, Any]) -> Notice:
    title, severity = DECISIONS.get(event_type, (event_type.removeprefix("MLOps."), "info"))
    if event_type in ALERT_TYPES and _condition(data) == "Resolved":
        title, severity = f"{title} resolved", "good"
    elif event_type in ALERT_TYPES:
        title = f"{title} fired"
    facts = tuple((label, _text(data.get(key), 120)) for key, label in FACT_KEYS if data.get(key))
    return Notice(event_id, event_type, subject, time, data, title, severity, summary(event_type, data), facts)


# -- payloads ---------------------------------------------------------------------------------------------
FORMATS = ("slack", "teams", "json")


def slack_payload(n: Notice) -> dict:
    """A Slack incoming webhook message: `text` (the notification's fallback) and Block Kit blocks."""
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in n.facts[:10]]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{n.title}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{EMOJI[n.severity]} {n.summary}"[:3000]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                    "text": f"`{n.event_type}` · {n.subject} · {n.time}"[:3000]}]})
    return {"text": f"{n.title}: {n.summary}", "blocks": blocks}


def teams_payload(n: Notice) -> dict:
    """An Adaptive Card in the message envelope, which both Teams Workflows webhooks ("Send webhook alerts to a
    channel") and the older Office 365 connector webhooks accept."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {"type": "TextBlock", "text": n.title, "weight": "Bolder", "size": "Medium", "wrap": True,
             "color": TEAMS_COLOURS[n.severity]},
            {"type": "TextBlock", "text": n.summary, "wrap": True},
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in n.facts]},
            {"type": "TextBlock", "text": f"{n.event_type} · {n.subject} · {n.time}", "wrap": True,
             "isSubtle": True, "size": "Small"},
        ],
    }
    return {"type": "message", "summary": f"{n.title}: {n.summary}"[:250],
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


def json_payload(n: Notice) -> dict:
    return {"id": n.event_id, "type": n.event_type, "subject": n.subject, "time": n.time, "title": n.title,
            "severity": n.severity, "summary": n.summary, "data": dict(n.data)}


def payload(fmt: str, n: Notice) -> dict:
    return {"slack": slack_payload, "teams": teams_payload, "json": json_payload}[fmt](n)


# -- the webhooks a setting lists -------------------------------------------------------------------------
@dataclass(frozen=True)
class Webhook:
    format: str
    url: str = field(repr=False)        # a secret: never logged or stored whole

    @property
    def id(self) -> str:
        """Stable and secret-free: what records and logs name the webhook by."""
        return f"{self.format}-{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"

    @property
    def shown(self) -> str:
        return f"{self.format} {redact(self.url)}"


def redact(url: str) -> str:
    """The URL without its secrets: no query or user info, and long path segments (Slack's token, a Teams
    workflow's id) cut to their first characters."""
    parts = urlsplit(url)
    segments = [s if len(s) <= 12 else s[:4] + "…" for s in parts.path.split("/")]
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{'/'.join(segments)}" + ("?…" if parts.query else "")


def parse_webhooks(text: str) -> tuple[Webhook, ...]:
    """`format=url` entries separated by commas, spaces or new lines (format: slack | teams | json); a bare URL
    is json. Raises ValueError naming the entry by its position, never by its URL."""
    found = []
    for position, entry in enumerate((e for e in re.split(r"[\s,;]+", text or "") if e), start=1):
        fmt, sep, url = entry.partition("=")
        if not sep or fmt.lower().startswith("http"):
            fmt, url = "json", entry
        fmt = fmt.strip().lower()
        if fmt not in FORMATS:
            raise ValueError(f"webhook {position}: format {fmt!r} is not one of {', '.join(FORMATS)}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook {position} ({fmt}): not an http(s) URL")
        found.append(Webhook(fmt, url))
    return tuple(dict.fromkeys(found))


# -- posting --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookAnswer:
    """What a webhook answered: its status, its Retry-After header, and the start of its body (for the record)."""
    status: int
    retry_after: str | None = None
    detail: str = ""


class WebhookUnreachable(Exception):
    """No answer: the connection failed or timed out (the message never holds the URL)."""


# -- retries ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard one invocation tries a webhook. The whole of it stays within `budget_seconds`, under the 30 s
    Event Grid waits for an answer, so the trigger is not redelivered because a webhook was slow."""
    attempts: int = 4                # posts per webhook and event before it is dead-lettered
    backoff_seconds: float = 1.0     # 1, 2, 4, ... between attempts
    max_backoff_seconds: float = 8.0
    max_retry_after_seconds: float = 8.0    # a longer Retry-After is waited for this long only
    timeout_seconds: float = 5.0     # one post
    budget_seconds: float = 25.0     # no retry starts that could end after this (from the first post)


def retryable(status: int | None) -> bool:
    """None is a connection error or a timeout; 408, 429 and 5xx are worth another try; other answers are not."""
    return status is None or status in (408, 429) or status >= 500


def retry_after(header: str | None) -> float | None:
    """Retry-After in seconds (an HTTP date is not honoured: the backoff applies)."""
    try:
        return max(0.0, float(header)) if header not in (None, "") else None
    except ValueError:
        return None


def next_delay(attempt: int, status: int | None, retry_after_header: str | None, policy: DeliveryPolicy,
               elapsed: float = 0.0) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to stop: the answer is not worth a retry, the
    attempts are used, or the retry could not end within the budget (`elapsed` since the first post)."""
    if not retryable(status) or attempt >= policy.attempts:
        return None
    asked = retry_after(retry_after_header)
    delay = (min(asked, policy.max_retry_after_seconds) if asked is not None
             else min(policy.backoff_seconds * 2 ** (attempt - 1), policy.max_backoff_seconds))
    return delay if elapsed + delay + policy.timeout_seconds <= policy.budget_seconds else None


# -- records ----------------------------------------------------------------------------------------------
def delivery_key(event_id: str, webhook_id: str) -> str:
    return f"{event_id}-{webhook_id}"


@dataclass(frozen=True)
class NotificationSent(Record):
    """A webhook took an event's notification: a redelivery of the event posts it no more."""
    COLLECTION: ClassVar[str] = "notifications-sent"
    event_id: str
    webhook: str                 # the webhook's id (format and a hash of its URL)
    event_type: str
    attempts: int
    sent_at: str

    @property
    def key(self) -> str:
        return delivery_key(self.event_id, self.webhook)


@dataclass(frozen=True)
class NotificationDeadLetter(Record):
    """A notification a webhook did not take after its attempts (or refused): kept for a person to see,
    not tried again."""
    COLLECTION: ClassVar[str] = "notifications-deadletter"
    event_id: str
    webhook: str                 # the webhook's id
    target: str                  # its format and URL without secrets
    event_type: str
    subject: str
    summary: str
    event: dict
    attempts: int
    last_status: int | None
    last_error: str
    dead_lettered_at: str

    @property
    def key(self) -> str:
        return delivery_key(self.event_id, self.webhook)


CLAIM_SECONDS = 60.0


@dataclass(frozen=True)
class Announcement(Record):
    """An MLOps.* event a step publishes once for one decision: created (claimed) before the publish, marked sent
    after, so a replayed or concurrent trigger publishes it no more (and one cut short in between is published
    again once its claim is stale)."""
    COLLECTION: ClassVar[str] = "announcements"
    name: str                    # event type and the decision's own key
    event_type: str
    subject: str
    sent: bool = False
    claim: str = ""              # the invocation publishing it (a concurrent one leaves it to that one)...
    claimed_at: str = ""         # ...unless the claim is older than CLAIM_SECONDS: that invocation was cut short

    @property
    def key(self) -> str:
        return self.name
