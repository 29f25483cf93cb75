"""The notify handler against a webhook receiver on loopback: each decision arrives once in its format, a
redelivered event posts nothing twice, a failing webhook is retried and dead-lettered without holding the
others back, and the deciding step never waits on a webhook."""
from __future__ import annotations

import logging
import socket
import threading

import pytest

from lifecycle.adapters.webhooks import HttpWebhooks
from lifecycle.core import notifications as told
from lifecycle.core.notifications import DeliveryPolicy, NotificationDeadLetter, NotificationSent, Webhook
from lifecycle.dispatch import Rejected
from lifecycle.handlers.notify import dead_letters, notify
from lifecycle.ports import Notifier
from tests.fakes import MemoryState
from tests.notifications import receiver as receiving
from tests.notifications.samples import SAMPLES, event, sample

SLACK, TEAMS, JSON = "/slack/T01/B01/abcdefghijklmnopqrstuvwx", "/teams/workflows/0123456789abcdef", "/json"


@pytest.fixture
def receiver():
    r = receiving.start()
    yield r
    for held in r.holds.values():
        held.set()
    r.server.shutdown()
    r.server.server_close()


class Sleeps(list):
    """time.sleep for the handler: the delays asked for are recorded, none is waited."""
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def notifier(*hooks: Webhook) -> Notifier:
    return Notifier(state=MemoryState(), webhooks=HttpWebhooks(), targets=hooks, delivery=DeliveryPolicy(),
                    sleep=Sleeps())


def hooks(r: receiving.Receiver) -> tuple[Webhook, ...]:
    return (Webhook("slack", r.url(SLACK)), Webhook("teams", r.url(TEAMS) + "?sig=S3CR3T"),
            Webhook("json", r.url(JSON)))


def test_each_decision_reaches_each_webhook_once_in_its_format(receiver):
    n = notifier(*hooks(receiver))
    for event_type in SAMPLES:
        outcomes = notify(sample(event_type, f"id-{event_type}"), n)
        assert [d.outcome for d in outcomes] == ["sent"] * 3
    assert len(receiver.received) == 3 * len(SAMPLES)
    for event_type, (subject, data) in SAMPLES.items():
        said = told.summary(event_type, data)
        (slack,) = [r.body for r in receiver.at(SLACK) if said in r.body["text"]]
        assert slack["blocks"][0]["type"] == "header"
        (teams,) = [r.body for r in receiver.at(TEAMS) if said in r.body["summary"] or
                    said in r.body["attachments"][0]["content"]["body"][1]["text"]]
        assert teams["type"] == "message" and teams["attachments"][0]["content"]["type"] == "AdaptiveCard"
        (plain,) = [r.body for r in receiver.at(JSON) if r.body["type"] == event_type]
        assert (plain["id"], plain["subject"], plain["data"], plain["summary"]) == (f"id-{event_type}", subject, data,
                                                                                    said)
    assert all(r.headers["Content-Type"] == "application/json" for r in receiver.received)


def test_a_redelivered_event_posts_nothing_twice(receiver):
    n = notifier(*hooks(receiver))
    first = sample(told.MODEL_PROMOTED, "same-id")
    notify(first, n)
    again = notify(sample(told.MODEL_PROMOTED, "same-id"), n)
    assert [d.outcome for d in again] == ["already"] * 3
    assert len(receiver.received) == 3
    notify(sample(told.MODEL_PROMOTED, "another-id"), n)       # another event of the same kind is told
    assert len(receiver.received) == 6


def test_a_failing_webhook_is_retried_then_dead_lettered_and_the_others_get_their_message_once(receiver, caplog):
    receiver.script("/down", 500, 502, (503, {"Retry-After": "3"}), 500, 500)
    good, down = Webhook("json", receiver.url(JSON)), Webhook("slack", receiver.url("/down") + "?token=S3CR3T")
    n = notifier(good, down)
    caplog.set_level(logging.INFO, "lifecycle.notify")
    outcomes = {d.webhook: d for d in notify(sample(told.ROLLOUT_ROLLED_BACK, "rb-1"), n)}
    assert (outcomes[good.id].outcome, outcomes[good.id].attempts) == ("sent", 1)
    assert (outcomes[down.id].outcome, outcomes[down.id].attempts) == ("dead-lettered", 4)
    assert len(receiver.at(JSON)) == 1 and len(receiver.at("/down")) == 4
    assert n.sleep == [1, 2, 3]                   # backoff 1 s, 2 s, then the Retry-After
    (dead,) = dead_letters(n)
    assert (dead.event_id, dead.event_type, dead.attempts, dead.last_status) == ("rb-1", told.ROLLOUT_ROLLED_BACK, 4,
                                                                                   500)
    assert dead.last_error.startswith("HTTP 500") and dead.webhook == down.id
    assert dead.target == f"slack {receiver.base}/down?…" and dead.event["type"] == told.ROLLOUT_ROLLED_BACK
    assert "rolled back" in dead.summary
    # redelivered (the trigger failed for another reason): neither webhook is posted to again
    assert [d.outcome for d in notify(sample(told.ROLLOUT_ROLLED_BACK, "rb-1"), n)] == ["already", "already"]
    assert len(receiver.received) == 5
    assert "S3CR3T" not in caplog.text and "S3CR3T" not in str(n.state.list(NotificationDeadLetter))
    assert "dead-lettered the notification of MLOps.RolloutRolledBack rb-1" in caplog.text


def test_a_refusal_is_not_retried(receiver):
    receiver.script("/bad", 400)
    n = notifier(Webhook("json", receiver.url("/bad")))
    (delivery,) = notify(sample(told.MODEL_REJECTED), n)
    assert (delivery.outcome, delivery.attempts) == ("dead-lettered", 1)
    assert len(receiver.at("/bad")) == 1 and n.sleep == []
    (dead,) = dead_letters(n)
    assert dead.last_status == 400 and "scripted failure" in dead.last_error


def test_a_webhook_that_answers_after_a_retry_is_sent_once(receiver):
    receiver.script("/flaky", (429, {"Retry-After": "120"}), 500)
    n = notifier(Webhook("teams", receiver.url("/flaky")))
    (delivery,) = notify(sample(told.MODEL_HELD), n)
    assert (delivery.outcome, delivery.attempts) == ("sent", 3)
    assert n.sleep == [8, 2]                      # Retry-After capped at 8 s, then the backoff
    assert dead_letters(n) == [] and len(n.state.list(NotificationSent)) == 2     # the webhook, and the log line


def test_a_webhook_nobody_listens_on_is_retried_then_dead_lettered():
    with socket.socket() as s:                    # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = notifier(Webhook("json", f"http://127.0.0.1:{port}/hook"))
    (delivery,) = notify(sample(told.TRAINING_STARTED), n)
    assert (delivery.outcome, delivery.attempts) == ("dead-lettered", 4)
    (dead,) = dead_letters(n)
    assert dead.last_status is None and dead.last_error.startswith("no connection")


def test_no_webhooks_posts_nothing_and_other_events_are_ignored(receiver, caplog):
    n = notifier()
    caplog.set_level(logging.WARNING, "lifecycle.notify")
    assert notify(sample(told.MODEL_PROMOTED), n) == []
    assert "mlops-decision: Model promoted: tabular-classifier:3 was promoted" in caplog.text   # for Azure Monitor
    assert notify(event("MLOps.RolloutProgressed", "endpoints/e/rollouts/m:1", {"model": "m:1"}), n) == []
    with pytest.raises(Rejected):
        notify(object(), n)


def test_the_decision_log_line_is_written_once_per_event(caplog):
    n = notifier()
    caplog.set_level(logging.WARNING, "lifecycle.notify")
    notify(sample(told.MODEL_PROMOTED, "x"), n)
    notify(sample(told.MODEL_PROMOTED, "x"), n)
    assert caplog.text.count("mlops-decision:") == 1


def test_one_slow_webhook_does_not_hold_back_the_others(receiver):
    """The webhooks are posted to side by side: one that hangs has not stopped the fast one from getting its
    message (shown by order: the fast one received it while the slow one was still held)."""
    hang = receiver.hold("/slow")
    n = notifier(Webhook("json", receiver.url("/slow")), Webhook("json", receiver.url(JSON)))
    worker = threading.Thread(target=notify, args=(sample(told.MODEL_REGISTERED), n))
    worker.start()
    assert receiver.wait_for(2)                   # both arrived: the fast one did not wait for the slow one
    assert len(receiver.at(JSON)) == 1 and worker.is_alive()
    hang.set()
    worker.join(30)
    assert len(n.state.list(NotificationSent)) == 3


def test_the_deciding_step_publishes_without_waiting_for_webhooks(receiver):
    """The gate decides and publishes through the events port and returns; the webhook (which hangs) is posted to
    only when the notify function takes the event off the topic: by then the decision is stored already."""
    from lifecycle.core.state_records import Decision
    from lifecycle.steps.model_registration import gate_and_register
    from tests.fakes import fake_platform
    hang = receiver.hold("/hang")
    p = fake_platform()
    p.jobs.evaluations["train-9"] = {"metrics": {"f1": 0.2}, "champion": None}
    decision = gate_and_register(p, "train-9")    # returns: nothing of notifications runs in the deciding step
    assert decision.outcome == "rejected" and receiver.received == []
    assert p.state.get(Decision, "train-9") is not None
    ((event_type, subject, data),) = [e for e in p.events.published if e[0] == told.MODEL_REJECTED]
    n = notifier(Webhook("json", receiver.url("/hang")))
    worker = threading.Thread(target=notify, args=(event(event_type, subject, data), n))
    worker.start()                                # the notify function, off the topic
    assert receiver.wait_for(1) and worker.is_alive()
    assert receiver.received[0].body["type"] == told.MODEL_REJECTED
    hang.set()
    worker.join(30)

