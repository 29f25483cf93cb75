"""On the whole local stack: a real decision (a drop of data starts training, the gate registers the model)
reaches a webhook on loopback through the local Event Grid and the Functions host's notify function, once each,
while the webhook's dead letter and the chain's own records stay where a person finds them."""
from __future__ import annotations

import pytest

from lifecycle.core import notifications as told
from lifecycle.core.notifications import NotificationSent
from mlops.demo_data import loan_csv
from tests.conftest import start_local_stack, wait_until
from tests.notifications import receiver as receiving

pytestmark = [pytest.mark.stack, pytest.mark.chains]     # a whole chain on the local stack (make chains)


@pytest.fixture(scope="module")
def hook():
    r = receiving.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, hook):
    settings = {"RECONCILE_SCHEDULE": "*/1 * * * * *", "RETRAIN_COOLDOWN_MINUTES": "0",
                "NOTIFY_WEBHOOKS": f"json={hook.url('/json')} slack={hook.url('/slack')}?token=S3CR3T"}
    stack, info, p, data = start_local_stack(tmp_path_factory, "notify", settings)
    yield stack, p, data
    stack.stop()


def test_a_real_decision_reaches_the_webhooks_once_through_the_local_event_grid(stack, hook):
    _, p, data = stack
    data.upload_blob("loans/day1/part-0000.csv", loan_csv(400, seed=3))
    data.upload_blob("loans/day1/_SUCCESS", b"")

    def arrived(event_type: str) -> list[dict]:
        return [r.body for r in hook.at("/json") if r.body["type"] == event_type]
    started = wait_until(lambda: arrived(told.TRAINING_STARTED), timeout=60, what="TrainingStarted at the webhook")[0]
    assert started["data"]["model"] == "tabular-classifier" and started["summary"].startswith("Training of")
    job = started["data"]["job"]
    decided = wait_until(lambda: arrived(told.MODEL_REGISTERED) or arrived(told.MODEL_REJECTED), timeout=180,
                         what="the gate's decision at the webhook")
    assert decided[0]["data"]["job"] == job
    slack = wait_until(lambda: [r.body for r in hook.at("/slack") if job in r.body["text"]], timeout=30,
                       what="the Slack message")
    assert slack[0]["blocks"][0]["type"] == "header"
    # each event once at each webhook, and recorded as sent
    told_of = [(r.body["type"], r.body["data"].get("job")) for r in hook.at("/json")]
    assert len(told_of) == len(set(told_of)), told_of        # one event per decision, posted once
    sent = {(s.event_id, s.webhook) for s in p.state.list(NotificationSent)}
    assert started["id"] in {event_id for event_id, _ in sent}
