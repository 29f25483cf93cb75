"""emulator.eventgrid.schema: the topic accepts exactly what EventGridPublisherClient sends and
rejects, with Azure's status codes, what Azure rejects."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from emulator.eventgrid.schema import (
    CLOUDEVENTS_SCHEMA,
    EVENTGRID_SCHEMA,
    MAX_EVENT_BYTES,
    MAX_JSON_DEPTH,
    MISSING,
    NotJson,
    PayloadTooLarge,
    SchemaError,
    WireEvent,
    load_json,
    parse_publish,
    system_event,
)

TOPIC = "/subscriptions/5f3c2a1e-8b4d-4f6a-9c7e-2d1b0a9e8f7c/resourceGroups/rg-mlops-dev/providers/" \
        "Microsoft.EventGrid/topics/egt-mlops-lifecycle-dev"


def eg(i: int = 0, **fields) -> dict:
    event = {"id": f"e{i}", "subject": "models/credit-default/versions/3", "eventType": "MLOps.DriftDetected",
             "eventTime": "2024-06-07T00:30:12.402118Z", "data": {"model": "credit-default"}, "dataVersion": "1.0"}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not ...}


def ce(i: int = 0, **fields) -> dict:
    event = {"id": f"c{i}", "source": "/mlops/lifecycle", "type": "MLOps.ModelPromoted", "specversion": "1.0",
             "time": "2024-06-07T00:30:12Z", "subject": "models/credit-default", "data": {"version": "3"}}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not ...}


def publish(events, content_type: str | None = "application/json") -> list[WireEvent]:
    return parse_publish(json.dumps(events).encode(), content_type, TOPIC)


def rejected(events, content_type: str | None = "application/json", raw: bytes | None = None) -> str:
    with pytest.raises(SchemaError) as caught:
        parse_publish(raw if raw is not None else json.dumps(events).encode(), content_type, TOPIC)
    assert caught.value.status == 400
    return str(caught.value)


# ---- what the SDK sends -----------------------------------------------------------------------

class _Capture(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def sent():
    """Publish with the real EventGridPublisherClient to a loopback listener; return its requests.

    (The 4.22 client does not pass a custom transport on to the basic-tier client it wraps, so a
    listener on 127.0.0.1 is the faithful way to capture what it puts on the wire.)"""
    from azure.core.credentials import AzureKeyCredential
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridEvent, EventGridPublisherClient

    _Capture.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = EventGridPublisherClient(f"http://127.0.0.1:{server.server_port}/api/events",
                                          AzureKeyCredential("local-key"))
        client.send([EventGridEvent(subject="models/m/versions/1", event_type="MLOps.ModelPromoted",
                                    data={"version": "1"}, data_version="1.0"),
                     EventGridEvent(subject="models/m/versions/2", event_type="MLOps.RolloutStarted",
                                    data={"step": 10}, data_version="")])
        client.send(EventGridEvent(subject="s", event_type="MLOps.Single", data=[1, 2], data_version="2"))
        client.send([eg(1), eg(2, dataVersion=...)])
        client.send([CloudEvent(source="/mlops/lifecycle", type="MLOps.DriftDetected", data={"psi": 0.31},
                                subject="models/m"),
                     CloudEvent(source="/mlops/lifecycle", type="MLOps.Report", data=b"\x00\x01binary",
                                extensions={"mlopsenv": "dev"})])
        client.send(CloudEvent(source="/mlops/lifecycle", type="MLOps.NoData", data=None))
        client.send([ce(1)])
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    return list(_Capture.requests)


def test_sdk_eventgrid_events_are_accepted(sent) -> None:
    path, headers, body = sent[0]
    assert path == "/api/events?api-version=2018-01-01"
    assert headers["aeg-sas-key"] == "local-key"
    events = parse_publish(body, headers["Content-Type"], TOPIC)
    assert [e.schema for e in events] == [EVENTGRID_SCHEMA] * 2
    first, second = events
    assert first.event_type == "MLOps.ModelPromoted" and first.subject == "models/m/versions/1"
    assert first.body["topic"] == TOPIC and first.body["metadataVersion"] == "1"
    assert first.body["dataVersion"] == "1.0" and second.body["dataVersion"] == ""
    assert first.data == {"version": "1"}
    assert datetime.fromisoformat(first.time.replace("Z", "+00:00")).tzinfo is not None


def test_sdk_single_eventgrid_event_and_non_object_data(sent) -> None:
    _, headers, body = sent[1]
    [event] = parse_publish(body, headers["Content-Type"], TOPIC)
    assert event.data == [1, 2] and event.body["dataVersion"] == "2"


def test_sdk_eventgrid_dicts(sent) -> None:
    _, headers, body = sent[2]
    events = parse_publish(body, headers["Content-Type"], TOPIC)
    assert [e.id for e in events] == ["e1", "e2"]
    assert events[1].body["dataVersion"] == ""


def test_sdk_cloudevents_batch(sent) -> None:
    _, headers, body = sent[3]
    assert headers["Content-Type"].startswith("application/cloudevents-batch+json")
    events = parse_publish(body, headers["Content-Type"], TOPIC)
    assert [e.schema for e in events] == [CLOUDEVENTS_SCHEMA] * 2
    drift, report = events
    assert drift.event_type == "MLOps.DriftDetected" and drift.source == "/mlops/lifecycle"
    assert drift.subject == "models/m" and drift.data == {"psi": 0.31}
    assert report.body["data_base64"] and report.data is None
    assert report.body["mlopsenv"] == "dev" and report.field("mlopsenv") == "dev"


def test_sdk_cloudevent_without_data_and_cloudevent_dicts(sent) -> None:
    for _, headers, body in sent[4:6]:
        [event] = parse_publish(body, headers["Content-Type"], TOPIC)
        assert event.schema == CLOUDEVENTS_SCHEMA


def test_sdk_requests_all_captured(sent) -> None:
    assert len(sent) == 6


# ---- Event Grid schema ------------------------------------------------------------------------

def test_eventgrid_stamps_topic_and_metadata_and_drops_foreign_fields() -> None:
    [event] = publish([eg(extra="x", dataVersion=...)])
    assert event.body == {"id": "e0", "topic": TOPIC, "subject": "models/credit-default/versions/3",
                          "eventType": "MLOps.DriftDetected", "eventTime": "2024-06-07T00:30:12.402118Z",
                          "data": {"model": "credit-default"}, "dataVersion": "", "metadataVersion": "1"}


def test_eventgrid_without_data_is_accepted() -> None:
    [event] = publish([eg(data=...)])
    assert "data" not in event.body and event.data is None


def test_publisher_may_repeat_the_topic_and_metadata_version() -> None:
    [event] = publish([eg(topic=TOPIC.upper(), metadataVersion="1")])
    assert event.source == TOPIC


def test_seven_digit_fractions_and_offsets_are_iso_8601() -> None:
    publish([eg(eventTime="2017-06-26T18:41:00.9584103Z"), eg(1, eventTime="2017-08-10T21:03:07+00:00")])


def test_empty_array_publishes_nothing() -> None:
    assert publish([]) == []


def test_missing_content_type_means_json() -> None:
    assert len(publish([eg()], None)) == 1


@pytest.mark.parametrize("field", ["id", "subject", "eventType", "eventTime"])
def test_required_eventgrid_fields(field: str) -> None:
    message = rejected([eg(0), eg(1, **{field: ...})])
    assert message.startswith("event 1")
    assert f"required field '{field}' is missing" in message
    if field != "id":
        assert "(id 'e1')" in message


def test_the_message_format_of_the_brief() -> None:
    assert rejected([eg(0), eg(1), {"id": "abc", "subject": "s", "eventTime": "2024-01-01T00:00:00Z"}]) \
        == "event 2 (id 'abc'): required field 'eventType' is missing"


@pytest.mark.parametrize("fields, fragment", [
    ({"eventTime": 1717718400}, "field 'eventTime' must be a string, got a number"),
    ({"eventTime": "7 June"}, "'eventTime' is not an ISO 8601 date-time: '7 June'"),
    ({"id": ""}, "field 'id' must not be empty"),
    ({"subject": ["a"]}, "field 'subject' must be a string, got an array"),
    ({"dataVersion": 1}, "field 'dataVersion' must be a string"),
    ({"metadataVersion": "2"}, "'metadataVersion' must be \"1\""),
    ({"topic": "/subscriptions/x/topics/other"}, "field 'topic' is '/subscriptions/x/topics/other' but this topic is"),
])
def test_malformed_eventgrid_events(fields: dict, fragment: str) -> None:
    assert fragment in rejected([eg(**fields)])


@pytest.mark.parametrize("raw, fragment", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON: it is not UTF-8 text (byte 0xff at offset 0)"),
    (b'[{"id": NaN}]', "not valid JSON: NaN is not a JSON number"),
    (b"[" * 5000 + b"]" * 5000, "more than 64 levels deep"),
    (b'[{"id": 1e400}]', "beyond the range of a double: 1e400"),
    (json.dumps(eg()).encode(), "expected a JSON array of events, got an object (wrap a single event in [ ])"),
    (b'"text"', "expected a JSON array of events, got a string"),
    (b'[{"id": "a"}, 3]', "event 1: expected a JSON object, got a number"),
])
def test_malformed_requests(raw: bytes, fragment: str) -> None:
    assert fragment in rejected(None, raw=raw)


# ---- JSON as Azure's readers take it ----------------------------------------------------------

def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_json_nests_at_most_64_levels() -> None:
    assert load_json(_nested(MAX_JSON_DEPTH)) is not None
    for levels in (MAX_JSON_DEPTH + 1, 900, 100_000):         # under, near and far over the recursion limit
        with pytest.raises(NotJson, match="more than 64 levels deep"):
            load_json(_nested(levels))
    assert load_json(b'{"a": [{"b": 1}], "c": "[[[[[["}') == {"a": [{"b": 1}], "c": "[[[[[["}


def test_json_is_utf8_and_may_start_with_a_bom() -> None:
    assert load_json(b"\xef\xbb\xbf[1]") == [1]
    with pytest.raises(NotJson, match="not UTF-8"):
        load_json('[1]'.encode("utf-16"))


def test_json_numbers() -> None:
    assert load_json(b"[" + b"9" * 400 + b"]") == [int("9" * 400)]       # beyond a double, still an int
    with pytest.raises(NotJson, match="a number of 5,000 digits"):
        load_json(b"-" + b"9" * 5000)
    for text in (b"NaN", b"Infinity", b"1e999"):
        with pytest.raises(NotJson):
            load_json(text)
    # Where the reader is the Functions host's (Newtonsoft, then the worker's json.loads), they pass.
    nan, inf, big = load_json(b"[NaN, -Infinity, 1e999]", lenient_numbers=True)
    assert nan != nan and inf == float("-inf") and big == float("inf")


def test_unsupported_content_type() -> None:
    assert "content type 'text/plain' is not accepted" in rejected([eg()], "text/plain")


def test_mixed_schemas_are_rejected() -> None:
    message = rejected([eg(0), ce(1), eg(2)])
    assert "mixes CloudEvents (events 1)" in message and "(events 0, 2)" in message


# ---- CloudEvents ------------------------------------------------------------------------------

def test_cloudevents_detected_in_a_plain_json_array() -> None:
    [event] = publish([ce()], "application/json")
    assert event.schema == CLOUDEVENTS_SCHEMA


def test_cloudevent_single_object() -> None:
    [event] = publish(ce(comexampleextension1="value"), "application/cloudevents+json; charset=utf-8")
    assert event.body == ce(comexampleextension1="value")     # delivered as published


def test_single_cloudevent_content_type_wants_an_object() -> None:
    assert "application/cloudevents-batch+json" in rejected([ce()], "application/cloudevents+json")


def test_cloudevent_time_is_optional() -> None:
    [event] = publish([ce(time=...)], "application/cloudevents-batch+json")
    assert event.time is None


@pytest.mark.parametrize("fields, fragment", [
    ({"specversion": ...}, "required field 'specversion' is missing"),
    ({"specversion": "0.3"}, "'specversion' must be \"1.0\", got '0.3'"),
    ({"source": ...}, "event 0 (id 'c0'): required field 'source' is missing"),
    ({"type": 5}, "field 'type' must be a string, got a number"),
    ({"id": ...}, "event 0: required field 'id' is missing"),
    ({"time": "noon"}, "'time' is not an ISO 8601 date-time"),
    ({"subject": {"a": 1}}, "field 'subject' must be a string, got an object"),
    ({"data_base64": "AAE="}, "has both 'data' and 'data_base64'"),
    ({"data": ..., "data_base64": "%%%"}, "'data_base64' is not valid base64"),
])
def test_malformed_cloudevents(fields: dict, fragment: str) -> None:
    assert fragment in rejected([ce(**fields)], "application/cloudevents-batch+json")


# ---- size limits ------------------------------------------------------------------------------

def _sized(n_bytes: int) -> bytes:
    skeleton = json.dumps([eg(data={"pad": ""})]).encode()
    body = json.dumps([eg(data={"pad": "x" * (n_bytes - len(skeleton))})]).encode()
    assert len(body) == n_bytes
    return body


def test_one_megabyte_is_accepted() -> None:
    assert len(parse_publish(_sized(MAX_EVENT_BYTES), "application/json", TOPIC)) == 1


def test_over_one_megabyte_is_413() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        parse_publish(_sized(MAX_EVENT_BYTES + 1), "application/json", TOPIC)
    assert caught.value.status == 413
    assert "1,048,577 bytes" in str(caught.value)
    assert caught.value.error_body() == {"error": {"code": "PayloadTooLarge", "message": str(caught.value)}}


def test_many_small_events_over_the_limit_are_413() -> None:
    events = [eg(i, data={"pad": "x" * 1000}) for i in range(1100)]
    with pytest.raises(PayloadTooLarge):
        publish(events)


def test_schema_error_body() -> None:
    with pytest.raises(SchemaError) as caught:
        parse_publish(b"[1]", "application/json", TOPIC)
    assert caught.value.error_body()["error"]["code"] == "BadRequest"


# ---- WireEvent --------------------------------------------------------------------------------

def test_wire_event_properties_in_both_schemas() -> None:
    [g] = publish([eg()])
    [c] = publish([ce()])
    assert (g.id, g.event_type, g.subject, g.time, g.source) == \
        ("e0", "MLOps.DriftDetected", "models/credit-default/versions/3", "2024-06-07T00:30:12.402118Z", TOPIC)
    assert (c.id, c.event_type, c.subject, c.time, c.source) == \
        ("c0", "MLOps.ModelPromoted", "models/credit-default", "2024-06-07T00:30:12Z", "/mlops/lifecycle")


def test_wire_event_json_round_trip() -> None:
    for event in publish([eg()]) + publish([ce()]):
        stored = json.loads(json.dumps(event.to_json()))
        assert stored["schema"] == event.schema
        assert WireEvent.from_json(stored) == event
    with pytest.raises(ValueError):
        WireEvent.from_json({"schema": "Custom", "body": {}})


def test_field_lookup() -> None:
    [g] = publish([eg(data={"a": {"b": 7}, "n": None, "Api": "PutBlob"})])
    [c] = publish([ce(data={"a": {"b": 7}})])
    for event in (g, c):
        assert event.field("eventType") == event.field("type") == event.event_type
        assert event.field("EventType") == event.event_type
        assert event.field("topic") == event.field("source") == event.source
        assert event.field("id") == event.id and event.field("subject") == event.subject
        assert event.field("data.a.b") == 7
        assert event.field("Data.A.B") == 7            # keys ignore case when no exact match exists
        assert event.field("data.a.b.c") is MISSING
        assert event.field("data.zzz") is MISSING
    assert g.field("dataVersion") == "1.0"
    assert c.field("dataVersion") is MISSING
    assert c.field("specversion") == "1.0"
    assert g.field("data.n") is None
    assert g.field("data.api") == "PutBlob"
    assert not MISSING and repr(MISSING) == "MISSING"


def test_field_key_must_be_dotted_name() -> None:
    [g] = publish([eg()])
    with pytest.raises(ValueError):
        g.field("data..x")


# ---- system events ----------------------------------------------------------------------------

def test_system_event_shape() -> None:
    event = system_event(topic_id="/subscriptions/x/providers/Microsoft.Storage/storageAccounts/st", event_type=
                         "Microsoft.Storage.BlobCreated", subject="/blobServices/default/containers/data/blobs/a.csv",
                         data={"api": "PutBlob"}, data_version="")
    assert event.schema == EVENTGRID_SCHEMA
    assert set(event.body) == {"topic", "subject", "eventType", "id", "data", "dataVersion", "metadataVersion",
                               "eventTime"}
    assert event.body["metadataVersion"] == "1" and event.body["dataVersion"] == ""
    assert event.time.endswith("Z") and len(event.id) == 36


def test_system_event_time_and_id() -> None:
    event = system_event(topic_id="/t", subject="s", event_type="T", data={}, event_id="fixed",
                         event_time=datetime(2024, 6, 1, 8, 0, 0, 123456, tzinfo=UTC))
    assert event.id == "fixed" and event.time == "2024-06-01T08:00:00.123456Z"
    naive = system_event(topic_id="/t", subject="s", event_type="T", data={}, event_time=datetime(2024, 6, 1))
    assert naive.time == "2024-06-01T00:00:00.000000Z"


def test_system_event_is_what_the_functions_worker_reads() -> None:
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum
    event = system_event(topic_id="/t", subject="s", event_type="T", data={"k": 1})
    binding = EventGridEventInConverter.decode(Datum(json.dumps(event.body), "json"), trigger_metadata=None)
    assert (binding.id, binding.topic, binding.get_json()) == (event.id, "/t", {"k": 1})
    assert binding.event_time.tzinfo is not None


def test_system_event_over_one_megabyte() -> None:
    with pytest.raises(PayloadTooLarge):
        system_event(topic_id="/t", subject="s", event_type="T", data={"pad": "x" * MAX_EVENT_BYTES})
