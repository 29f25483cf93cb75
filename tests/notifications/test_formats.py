"""The pure part of notifications: which events are decisions, the summary a person reads, the Slack, Teams
and JSON payloads, the NOTIFY_WEBHOOKS setting, URLs without their secrets, and when to try again."""
from __future__ import annotations

import json

import pytest

from lifecycle.core import notifications as told
from lifecycle.settings import Settings, SettingsError
from tests.notifications.samples import RESOLVED, SAMPLES

ROUTING = json.loads((__import__("pathlib").Path(__file__).resolve().parents[2] / "infra" /
                      "event-subscriptions.json").read_text())


def notice(event_type: str, subject: str = "", data: dict | None = None) -> told.Notice:
    if data is None:
        subject, data = SAMPLES[event_type]
    return told.notice("e-1", event_type, subject, "2026-11-30T10:00:00Z", data)


def test_every_decision_has_a_sample_and_the_notify_subscription_takes_exactly_the_decisions():
    assert set(SAMPLES) == set(told.DECISIONS)
    (route,) = [s for s in ROUTING["subscriptions"] if s["function"] == "on_decision"]
    assert route["topic"] == "lifecycle"
    assert set(route["filter"]["includedEventTypes"]) == set(told.DECISIONS)
    assert "MLOps.RolloutProgressed" not in told.DECISIONS     # a canary step is progress, not a decision


@pytest.mark.parametrize("event_type, words", [
    (told.TRAINING_STARTED, ["tabular-classifier", "train-1", "2 new data batch", "tabular-classifier:2"]),
    (told.TRAINING_FAILED, ["train-1", "Failed", "column label not found"]),
    (told.MODEL_REGISTERED, ["tabular-classifier:3", "train-1", "f1 0.910"]),
    (told.MODEL_REJECTED, ["train-1", "rejected by the registration gate", "below the floor", "champion stays"]),
    (told.MODEL_HELD, ["train-1", "a leak?", "`mlops approve train-1`", "`mlops reject train-1`"]),
    (told.ROLLOUT_STARTED, ["tabular-classifier:3", "mlops-endpoint", "green", "tabular-classifier:2"]),
    (told.MODEL_PROMOTED, ["tabular-classifier:3", "promoted", "all traffic"]),
    (told.ROLLOUT_ROLLED_BACK, ["tabular-classifier:3", "rolled back", "error rate 12%", "tabular-classifier:2 keeps"]),
    (told.MODEL_SHARED, ["tabular-classifier:3", "mlops-registry"]),
    (told.PROMOTION_AWAITING_APPROVAL, ["`mlops promote approve tabular-classifier:3`", "mlops-registry"]),
    (told.PROMOTION_APPROVED, ["tabular-classifier:3", "approved by ana"]),
    (told.PROMOTION_REJECTED, ["tabular-classifier:3", "rejected by ana", "unchanged"]),
    (told.DRIFT_DETECTED, ["Drift alert fired", "tabular-classifier:2", "data drift", "income drifted"]),
    (told.PERFORMANCE_DEGRADED, ["Performance alert fired", "concept drift", "f1 0.61"]),
    (told.TRAINING_SLOWED, ["train-7", "tabular-classifier", "9m30s", "3.1x", "3m05s", "`mlops status`"]),
])
def test_each_summary_says_which_model_what_why_and_what_to_do(event_type, words):
    said = notice(event_type).summary
    assert "\n" not in said and len(said) < 400
    for word in words:
        assert word in said, (word, said)


def test_a_resolved_alert_is_said_to_be_resolved():
    n = notice(told.DRIFT_DETECTED, *RESOLVED)
    assert n.summary.startswith("Drift alert resolved on tabular-classifier:2")
    assert (n.title, n.severity) == ("Drift alert resolved", "good")
    assert notice(told.DRIFT_DETECTED).title == "Drift alert fired"


@pytest.mark.parametrize("event_type", sorted(told.DECISIONS))
def test_the_slack_payload_is_text_and_blocks(event_type):
    n = notice(event_type)
    body = told.payload("slack", n)
    assert set(body) == {"text", "blocks"} and n.summary in body["text"]
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds[0] == "header" and kinds[1] == "section" and kinds[-1] == "context"
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": n.title}
    assert n.summary in body["blocks"][1]["text"]["text"]
    assert event_type in body["blocks"][-1]["elements"][0]["text"]
    fields = next(b for b in body["blocks"] if b["type"] == "section" and "fields" in b)["fields"]
    assert 0 < len(fields) <= 10 and all(f["type"] == "mrkdwn" for f in fields)   # Slack's limit on fields
    json.dumps(body)


@pytest.mark.parametrize("event_type", sorted(told.DECISIONS))
def test_the_teams_payload_is_an_adaptive_card_in_a_message(event_type):
    n = notice(event_type)
    body = told.payload("teams", n)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [b.get("text") for b in card["body"]]
    assert texts[0] == n.title and n.summary in texts
    facts = next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    assert {"title": "Model", "value": n.data["model"]} in facts
    json.dumps(body)


@pytest.mark.parametrize("event_type", sorted(told.DECISIONS))
def test_the_json_payload_is_the_event_and_its_summary(event_type):
    subject, data = SAMPLES[event_type]
    body = told.payload("json", notice(event_type))
    assert body == {"id": "e-1", "type": event_type, "subject": subject, "time": "2026-11-30T10:00:00Z",
                    "title": told.DECISIONS[event_type][0] + (" fired" if event_type in told.ALERT_TYPES else ""),
                    "severity": body["severity"], "summary": told.summary(event_type, data), "data": data}


def test_the_setting_lists_webhooks_by_format():
    text = ("slack=https://hooks.slack.com/services/T0/B0/abcdefghijklmnopqrstuvwx, "
            "teams=https://prod-1.westeurope.logic.azure.com/workflows/0123456789abcdef/triggers/manual?sig=S3CR3T\n"
            "json=http://127.0.0.1:9000/hook https://example.org/plain")
    hooks = told.parse_webhooks(text)
    assert [h.format for h in hooks] == ["slack", "teams", "json", "json"]
    assert told.parse_webhooks("") == () == Settings(storage_connection="x").webhooks()
    assert told.parse_webhooks("json=http://a/x json=http://a/x") == (told.Webhook("json", "http://a/x"),)
    assert len({h.id for h in hooks}) == 4 and all("S3CR3T" not in h.id for h in hooks)


@pytest.mark.parametrize("text, said", [
    ("email=https://hooks.example/SECRET", "webhook 1: format 'email' is not one of slack, teams, json"),
    ("json=https://ok.example/x slack=ftp://hooks.example/SECRET", "webhook 2 (slack): not an http(s) URL"),
])
def test_a_wrong_setting_names_the_entry_never_its_url(text, said):
    with pytest.raises(SettingsError) as error:
        Settings(storage_connection="x", notify_webhooks=text).webhooks()
    assert said in str(error.value) and "SECRET" not in str(error.value)
    assert Settings.from_env({"AzureWebJobsStorage": "x", "NOTIFY_WEBHOOKS": text}).notify_webhooks == text


def test_a_webhook_is_shown_without_its_secrets():
    slack = told.Webhook("slack", "https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/abcdefghijklmnopqrstuvwx")
    teams = told.Webhook("teams", "https://prod-1.logic.azure.com:443/workflows/0123456789abcdef0123/triggers/"
                                  "manual/paths/invoke?api-version=2016-06-01&sp=x&sig=S3CR3T")
    assert slack.shown == "slack https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/abcd…"
    assert teams.shown == "teams https://prod-1.logic.azure.com:443/workflows/0123…/triggers/manual/paths/invoke?…"
    assert "S3CR3T" not in repr(teams) and "abcdefghijklmnopqrstuvwx" not in repr(slack)


@pytest.mark.parametrize("status, retry", [(None, True), (408, True), (429, True), (500, True), (503, True),
                                           (400, False), (401, False), (403, False), (404, False), (410, False),
                                           (301, False)])
def test_what_is_worth_another_try(status, retry):
    assert told.retryable(status) is retry


def test_backoff_retry_after_attempts_and_budget():
    policy = told.DeliveryPolicy(attempts=4, backoff_seconds=1, max_backoff_seconds=8, max_retry_after_seconds=8,
                                 timeout_seconds=5, budget_seconds=25)
    assert [told.next_delay(a, 500, None, policy) for a in (1, 2, 3, 4)] == [1, 2, 4, None]
    assert told.next_delay(1, 429, "3", policy) == 3                  # Retry-After honoured
    assert told.next_delay(1, 429, "120", policy) == 8                # up to the cap
    assert told.next_delay(1, 503, "Wed, 21 Oct 2026 07:28:00 GMT", policy) == 1   # a date: the backoff
    assert told.next_delay(1, 400, None, policy) is None              # not worth a retry
    assert told.next_delay(2, None, None, policy, elapsed=19) is None  # 19 + 2 + 5 > 25: no time left
    assert told.next_delay(2, None, None, policy, elapsed=17) == 2
