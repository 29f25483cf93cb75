"""The local Event Grid against real parts: Azurite queues and blobs, the real EventGridPublisherClient,
the local Functions host over loopback HTTP."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
from aiohttp import web
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient
from azure.storage.blob import BlobServiceClient

from emulator.eventgrid.blobwatch import BlobWatcher
from emulator.eventgrid.broker import EventGrid, GridOptions
from emulator.eventgrid.resources import topic_ids
from emulator.eventgrid.routing import load_routing_table
from emulator.eventgrid.topic import TopicEndpoint
from emulator.functions_host import FunctionsHost, HostKeys
from emulator.loop import BackgroundLoop
from emulator.loopback import serve_on_loopback
from emulator.timeline import Timeline
from tests.apps import delivery_targets
from tests.conftest import wait_until

ROUTES = Path(__file__).with_name("delivery_routes.json")
KEY = "topic-key-for-tests"
SCALE = 0.005   # Azure's 10 s, 30 s, 60 s retries become 50 ms, 150 ms, 300 ms


class GridUnderTest:
    def __init__(self, azurite, tmp: Path) -> None:
        self.loop = BackgroundLoop("test-grid")
        self.table = load_routing_table(ROUTES)
        self.timeline = Timeline(tmp / "timeline.jsonl")
        self.keys = HostKeys.generate()
        self.host = FunctionsHost(delivery_targets.app, keys=self.keys, timeline=self.timeline)
        self.loop.run(self.host.start())
        self.conn = azurite.connection_string
        self.grid = self.new_grid()
        self.loop.run(self.grid.start())
        self.grid.attach_functions(self.host.url, self.keys.eventgrid_extension_key)
        self.runner, url = self.loop.run(serve_on_loopback(TopicEndpoint(self.grid, KEY, "lifecycle").make_app()))
        self.endpoint = f"{url}/api/events"

    def new_grid(self, delivery_timeout: float = 30) -> EventGrid:
        return EventGrid(self.table, self.conn, topic_ids=topic_ids(self.table), timeline=self.timeline,
                         options=GridOptions(retry_scale=SCALE, poll_interval=0.2, delivery_timeout=delivery_timeout))

    def client(self, key: str = KEY) -> EventGridPublisherClient:
        return EventGridPublisherClient(self.endpoint, AzureKeyCredential(key))

    def records(self, event_id: str) -> list:
        return [r for r in self.timeline.read() if r.event_id == event_id]

    def close(self) -> None:
        self.loop.run(self.runner.cleanup())
        self.loop.run(self.grid.stop())
        self.loop.run(self.host.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def eg(azurite, tmp_path_factory):
    under_test = GridUnderTest(azurite, tmp_path_factory.mktemp("grid"))
    yield under_test
    under_test.close()


@pytest.fixture(autouse=True)
def _clean_targets():
    delivery_targets.reset()


def received_ids() -> set[str]:
    return {e.id for e in delivery_targets.received}


def test_publisher_client_eventgrid_schema_reaches_the_function(eg):
    event = egevent(subject="models/churn:3", event_type="Test.Recorded", data={"n": 1})
    eg.client().send([event])
    got = wait_until(lambda: [e for e in delivery_targets.received if e.id == event.id], what="delivery")[0]
    assert got.event_type == "Test.Recorded"
    assert got.subject == "models/churn:3"
    assert got.get_json() == {"n": 1}
    assert got.topic == eg.grid.topic_ids["lifecycle"]      # Event Grid stamps the topic's resource id
    record = wait_until(lambda: eg.records(event.id), what="timeline record")[0]
    assert (record.function, record.attempt, record.outcome) == ("record", 1, "delivered")


def test_publisher_client_cloudevents_reach_the_function(eg):
    event = CloudEvent(source="/mlops/tests", type="Test.Recorded", data={"kind": "cloud"}, subject="s/1")
    eg.client().send([event])
    got = wait_until(lambda: [e for e in delivery_targets.received if e.id == event.id], what="delivery")[0]
    # The Python worker hands a CloudEvents delivery over as func.CloudEvent, whatever the annotation says.
    assert (got.type, got.source, got.subject) == ("Test.Recorded", "/mlops/tests", "s/1")
    assert got.get_json() == {"kind": "cloud"}


def test_wrong_key_is_401_and_nothing_is_published(eg):
    event = egevent(subject="x", event_type="Test.Recorded", data={})
    with pytest.raises(ClientAuthenticationError):
        eg.client("wrong-key").send([event])
    response = requests.post(eg.endpoint, json=[], timeout=5)
    assert response.status_code == 401


def test_malformed_payload_is_400_with_the_reason_and_earlier_events_survive(eg):
    good = egevent(subject="good", event_type="Test.Recorded", data={})
    eg.client().send([good])
    headers = {"aeg-sas-key": KEY, "Content-Type": "application/json"}
    not_json = requests.post(eg.endpoint, data=b"{not json", headers=headers, timeout=5)
    assert not_json.status_code == 400
    missing = requests.post(eg.endpoint, headers=headers, timeout=5, json=[
        {"id": "1", "subject": "s", "eventTime": "2026-11-23T10:00:00Z", "dataVersion": "1", "data": {}}])
    assert missing.status_code == 400
    assert "eventType" in missing.json()["error"]["message"]
    too_big = requests.post(eg.endpoint, headers=headers, timeout=10, json=[
        {"id": "2", "subject": "s", "eventType": "Test.Recorded", "eventTime": "2026-11-23T10:00:00Z",
         "dataVersion": "1", "data": {"blob": "x" * 1_100_000}}])
    assert too_big.status_code == 413
    wait_until(lambda: good.id in received_ids(), what="the event accepted before the bad ones")
    assert not [r for r in eg.timeline.read() if r.event_id in ("1", "2")]


def test_advanced_filter_routes_only_matching_events(eg):
    small = egevent(subject="s", event_type="Test.Sized", data={"size": 5})
    big = egevent(subject="s", event_type="Test.Sized", data={"size": 50})
    eg.client().send([small, big])
    wait_until(lambda: big.id in received_ids(), what="the big event")
    assert small.id not in received_ids()
    assert [r.outcome for r in wait_until(lambda: eg.records(small.id), what="unmatched record")] == ["unmatched"]


def test_a_raising_function_is_retried_until_it_succeeds(eg):
    event = egevent(subject="s", event_type="Test.Flaky", data={})
    eg.client().send([event])
    wait_until(lambda: event.id in received_ids(), what="third attempt to succeed")
    records = wait_until(lambda: len(eg.records(event.id)) >= 3 and eg.records(event.id), what="records")
    assert [(r.attempt, r.outcome) for r in records] == [(1, "failed"), (2, "failed"), (3, "delivered")]
    assert "transient failure 1" in records[0].detail
    assert delivery_targets.attempts[event.id] == 3


def test_exhausted_retries_are_dead_lettered_with_the_reason(eg, azurite):
    event = egevent(subject="s/broken", event_type="Test.Broken", data={"k": "v"})
    eg.client().send([event])
    records = wait_until(lambda: any(r.outcome == "dead-lettered" for r in eg.records(event.id))
                         and eg.records(event.id), timeout=15, what="dead-lettering")
    assert [r.outcome for r in records] == ["failed", "failed", "dead-lettered"]
    assert delivery_targets.attempts[event.id] == 3
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("deadletter")
    letters = [json.loads(container.download_blob(b.name).readall())[0]
               for b in container.list_blobs(name_starts_with="lifecycle/broken/")]
    letter = next(letter for letter in letters if letter["id"] == event.id)
    assert letter["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert letter["deliveryAttempts"] == 3
    assert letter["lastDeliveryOutcome"] == "GenericError"
    assert letter["lastHttpStatusCode"] == 500
    assert "this function always fails" in letter["lastDeliveryError"]
    assert letter["data"] == {"k": "v"} and letter["subject"] == "s/broken"


def test_events_over_the_queue_message_size_are_spooled_and_delivered(eg):
    event = egevent(subject="big", event_type="Test.Recorded", data={"blob": "y" * 200_000})
    eg.client().send([event])
    got = wait_until(lambda: [e for e in delivery_targets.received if e.id == event.id], what="big delivery")[0]
    assert len(got.get_json()["blob"]) == 200_000


def test_a_not_retried_status_is_dead_lettered_at_once(eg, azurite):
    async def answer_400(request):
        return web.Response(status=400, text="bad event for this endpoint")
    app = web.Application()
    app.router.add_post("/runtime/webhooks/eventgrid", answer_400)
    runner, url = eg.loop.run(serve_on_loopback(app))
    grid = eg.new_grid()
    eg.loop.run(grid.start())
    grid.attach_functions(url, "k")
    try:
        event = egevent(subject="s", event_type="Test.Recorded", data={})
        from emulator.eventgrid.schema import parse_publish
        wire = parse_publish(json.dumps([event_dict(event)]).encode(), "application/json", grid.topic_ids["lifecycle"])
        eg.loop.run(grid.publish("lifecycle", wire))
        records = wait_until(lambda: eg.records(event.id), what="dead-letter record")
        assert [(r.attempt, r.outcome, r.status) for r in records] == [(1, "dead-lettered", 400)]
        assert "does not retry" in records[0].detail
    finally:
        eg.loop.run(grid.stop())
        eg.loop.run(runner.cleanup())


def test_accepted_events_survive_a_restart_of_the_grid(eg):
    """Queued before any function host is attached, then the broker stops: a new broker delivers them."""
    first = eg.new_grid(delivery_timeout=1)
    eg.loop.run(first.start())
    event = egevent(subject="durable", event_type="Test.Recorded", data={})
    from emulator.eventgrid.schema import parse_publish
    wire = parse_publish(json.dumps([event_dict(event)]).encode(), "application/json", first.topic_ids["lifecycle"])
    eg.loop.run(first.publish("lifecycle", wire))
    eg.loop.run(first.stop())
    assert event.id not in received_ids()
    second = eg.new_grid(delivery_timeout=1)
    eg.loop.run(second.start())
    second.attach_functions(eg.host.url, eg.keys.eventgrid_extension_key)
    try:
        # The message reappears once its visibility timeout (delivery timeout + 5 s) has passed.
        wait_until(lambda: event.id in received_ids(), timeout=20, what="recovered delivery")
    finally:
        eg.loop.run(second.stop())


def test_blob_watcher_emits_blob_created_once_per_version(eg, azurite, tmp_path):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("uploads")
    if not container.exists():
        container.create_container()
    name = f"batch/{uuid.uuid4()}.csv"
    state = tmp_path / "blobwatch.json"
    watcher = BlobWatcher(eg.grid, azurite.connection_string, "storage", state)
    try:
        container.upload_blob(name, b"a,b\n1,2\n", content_settings=_csv())
        assert eg.loop.run(watcher.poll()) >= 1
        assert eg.loop.run(watcher.poll()) == 0                      # nothing new: nothing emitted
        container.upload_blob(name, b"a,b\n1,2\n3,4\n", overwrite=True, content_settings=_csv())
        assert eg.loop.run(watcher.poll()) == 1
    finally:
        eg.loop.run(watcher.close())
    events = wait_until(lambda: len(mine := [e for e in delivery_targets.received if e.subject.endswith(name)]) == 2
                        and mine, what="two BlobCreated deliveries")
    first, second = sorted(events, key=lambda e: e.get_json()["sequencer"])
    data = first.get_json()
    assert first.event_type == "Microsoft.Storage.BlobCreated"
    assert first.subject == f"/blobServices/default/containers/uploads/blobs/{name}"
    assert first.topic.endswith("/providers/Microsoft.Storage/storageAccounts/devstoreaccount1")
    assert data["api"] == "PutBlob" and data["blobType"] == "BlockBlob"
    assert data["contentType"] == "text/csv" and data["contentLength"] == 8
    assert data["url"] == container.get_blob_client(name).url
    assert data["eTag"] != second.get_json()["eTag"]
    assert second.get_json()["contentLength"] == 12
    assert second.get_json()["sequencer"] > data["sequencer"]
    # A restarted watcher remembers what it has seen.
    again = BlobWatcher(eg.grid, azurite.connection_string, "storage", state)
    try:
        assert eg.loop.run(again.poll()) == 0
        # One that was killed forgets what it published in the last seconds (its queue message may not
        # have been saved by Azurite yet) and publishes it again: at least once, never lost.
        container.upload_blob(name, b"a,b\n5,6\n", overwrite=True, content_settings=_csv())
        assert eg.loop.run(again.poll()) == 1
    finally:
        eg.loop.run(again._service.close())          # no clean close: as a kill leaves it
    killed = BlobWatcher(eg.grid, azurite.connection_string, "storage", state)
    try:
        assert eg.loop.run(killed.poll()) == 1
    finally:
        eg.loop.run(killed.close())


def test_events_whose_queue_message_a_kill_lost_are_queued_again_from_the_archive(eg, tmp_path):
    """Azurite saves every few seconds: a kill right after an event was accepted can lose its queue message.
    The archive (written before the publisher is answered) brings it back; a clean stop needs nothing."""
    from azure.storage.queue import QueueClient

    from emulator.eventgrid.broker import queue_name
    from emulator.eventgrid.schema import parse_publish
    archive = tmp_path / "published.jsonl"
    first = EventGrid(eg.table, eg.conn, topic_ids=topic_ids(eg.table), timeline=eg.timeline,
                      options=GridOptions(retry_scale=SCALE, delivery_timeout=1), archive=archive)
    eg.loop.run(first.start())
    event = egevent(subject="lost", event_type="Test.Recorded", data={})
    wire = parse_publish(json.dumps([event_dict(event)]).encode(), "application/json", first.topic_ids["lifecycle"])
    eg.loop.run(first.publish("lifecycle", wire))
    for sub in eg.table.matching("lifecycle", wire[0]):        # what Azurite forgets in a kill
        QueueClient.from_connection_string(eg.conn, queue_name(sub.name)).clear_messages()
    first._closing = True                                        # killed: no clean stop, nothing appended
    for task in list(first._tasks):
        task.cancel()
    second = EventGrid(eg.table, eg.conn, topic_ids=topic_ids(eg.table), timeline=eg.timeline,
                       options=GridOptions(retry_scale=SCALE, delivery_timeout=1), archive=archive)
    eg.loop.run(second.start())
    second.attach_functions(eg.host.url, eg.keys.eventgrid_extension_key)
    try:
        wait_until(lambda: event.id in received_ids(), timeout=10, what="the event a kill lost")
    finally:
        eg.loop.run(second.stop())
    third = EventGrid(eg.table, eg.conn, topic_ids=topic_ids(eg.table), timeline=eg.timeline,
                      options=GridOptions(retry_scale=SCALE, delivery_timeout=1), archive=archive)
    eg.loop.run(third.start())                                   # after a clean stop: nothing again
    eg.loop.run(third.stop())
    assert json.loads(archive.read_text().splitlines()[-1]).keys() == {"stopped"}


def egevent(**fields) -> EventGridEvent:
    """An EventGridEvent with a string id (the SDK's default id is a uuid.UUID object)."""
    return EventGridEvent(id=str(uuid.uuid4()), data_version="1.0", **fields)


def event_dict(event: EventGridEvent) -> dict:
    return {"id": event.id, "subject": event.subject, "eventType": event.event_type,
            "eventTime": "2026-11-23T10:00:00Z", "dataVersion": event.data_version, "data": event.data}


def _csv():
    from azure.storage.blob import ContentSettings
    return ContentSettings(content_type="text/csv")
