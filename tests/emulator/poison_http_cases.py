"""Malformed requests for the local Azure's HTTP surfaces, as data: the Event Grid topic endpoint (both
schemas, both content types), the Functions host's Event Grid webhook (both schemas) and its HTTP routes.

Each case carries the status Azure answers (its class: 2xx, 400, 401, 404, 413), a fragment of the message
ours gives, and what Azure does and where that comes from. Only a function that really raised may answer
500: Event Grid retries a 500 for 24 h, while 400/401/403/413 are not retried, so anything that can never
succeed must be a 4xx. Where the real Functions host lets an exception escape for such a request (and so
answers 500), ours answers 400 on purpose; `azure` says so.

A server the cases are sent to is set up with the names and keys below: the topic endpoint with TOPIC_KEY
and TOPIC as its default topic (resource id TOPIC_ID); the Functions host with FUNCTION_KEY, MASTER_KEY and
EXTENSION_KEY running APP. tests/emulator/test_poison_http.py does both; a fault-injection suite or a
benchmark can import CASES and do the same."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

TOPIC = "poison"
TOPIC_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-poison/providers/"
            "Microsoft.EventGrid/topics/egt-poison")
TOPIC_KEY = "poison-topic-key"
FUNCTION_KEY, MASTER_KEY, EXTENSION_KEY = "poison-function-key", "poison-master-key", "poison-extension-key"
APP = "tests.apps.poison:app"

TOPIC_PATH = "/api/events?api-version=2018-01-01"
WEBHOOK_PATH = "/runtime/webhooks/eventgrid"
MAX_BYTES = 1_048_576            # Event Grid: 1 MB per request and per event

# Where Azure's behaviour is written down.
POST_DOCS = ("learn.microsoft.com/azure/event-grid/post-to-custom-topic, 'Response': 400 incorrect format, "
             "401 invalid access key, 404 incorrect endpoint, 413 array or event exceeds size limits")
SCHEMA_DOCS = "learn.microsoft.com/azure/event-grid/event-schema and cloud-event-schema (required string fields)"
EXTENSION = ("azure-sdk-for-net Microsoft.Azure.WebJobs.Extensions.EventGrid: HttpRequestProcessor.ProcessAsync "
             "and EventGridExtensionConfigProvider.ProcessEventsAsync")
WORKER = ("azure-functions (Python) EventGridEventInConverter.decode -> meta._parse_datetime, UTC formats only; "
          "Azure/azure-functions-python-worker#269 and #591 (Result: Failure on eventTime)")
MAX_DEPTH = ("Newtonsoft.Json 13.0.1 changed JsonReader.MaxDepth to 64 (dotnet/docs#40458, JamesNK/Newtonsoft.Json"
             "#2462); System.Text.Json's default is 64 too")


@dataclass(frozen=True)
class PoisonCase:
    name: str                              # unique; a pytest id
    target: str                            # "topic" | "webhook" | "http"
    method: str
    path: str                              # with the query string
    headers: tuple[tuple[str, str | bytes], ...]   # exactly these (no Content-Type unless listed)
    body: bytes
    status: int                            # what Azure answers (its class), and so must we
    fragment: str                          # in our answer's body; "" where the answer has none
    azure: str                             # what Azure does, and where that is from

    @property
    def header_dict(self) -> dict[str, str | bytes]:
        return dict(self.headers)


def _bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _topic(name: str, body: Any, status: int, fragment: str, azure: str, *,
           content_type: str | None = "application/json", key: str | bytes | None = TOPIC_KEY,
           path: str = TOPIC_PATH) -> PoisonCase:
    headers = ((("aeg-sas-key", key),) if key is not None else ()) + \
              ((("Content-Type", content_type),) if content_type is not None else ())
    return PoisonCase(name, "topic", "POST", path, headers, _bytes(body), status, fragment, azure)


def _cloud_topic(name: str, body: Any, status: int, fragment: str, azure: str, *,
                 content_type: str = "application/cloudevents-batch+json; charset=utf-8") -> PoisonCase:
    return _topic(name, body, status, fragment, azure, content_type=content_type)


def _webhook(name: str, body: Any, status: int, fragment: str, azure: str, *, kind: str | None = "Notification",
             function: str | None = "record", key: str | None = EXTENSION_KEY,
             content_type: str = "application/json", headers: tuple[tuple[str, str | bytes], ...] = ()
             ) -> PoisonCase:
    query = "&".join(part for part in (f"functionName={function}" if function is not None else "",
                                       f"code={key}" if key is not None else "") if part)
    headers = (("Content-Type", content_type),) + ((("aeg-event-type", kind),) if kind is not None else ()) + headers
    return PoisonCase(name, "webhook", "POST", f"{WEBHOOK_PATH}?{query}", headers, _bytes(body), status, fragment,
                      azure)


def _http(name: str, method: str, route: str, status: int, fragment: str, azure: str, *, body: bytes = b"",
          key: str | None = FUNCTION_KEY, headers: tuple[tuple[str, str | bytes], ...] = ()) -> PoisonCase:
    query = f"?code={key}" if key is not None else ""
    return PoisonCase(name, "http", method, f"/api/{route}{query}", headers, body, status, fragment, azure)


def eg(**fields: Any) -> dict:
    """An Event Grid schema event as a publisher sends it; a field given as ... is left out."""
    event = {"id": "poison-1", "subject": "models/churn/versions/3", "eventType": "MLOps.DriftDetected",
             "eventTime": "2025-03-01T12:30:45.1234567Z", "data": {"model": "churn"}, "dataVersion": "1.0"}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not ...}


def ce(**fields: Any) -> dict:
    """A CloudEvents 1.0 event; a field given as ... is left out."""
    event = {"specversion": "1.0", "id": "poison-c1", "source": "/mlops/lifecycle", "type": "MLOps.ModelPromoted",
             "time": "2025-03-01T12:30:45Z", "subject": "models/churn", "data": {"version": "3"}}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not ...}


def nested(levels: int) -> str:
    """JSON text of objects nested `levels` deep."""
    return '{"a":' * levels + "1" + "}" * levels


def with_data_json(event: dict, data_json: str) -> bytes:
    """A one-event array whose data is the given JSON text (for what json.dumps cannot write)."""
    return b'[' + json.dumps({**event, "data": "@"}).encode().replace(b'"@"', data_json.encode()) + b']'


def sized(n_bytes: int, event: dict | None = None) -> bytes:
    """A one-event array of exactly n_bytes, padded in data."""
    event = event or eg()
    skeleton = _bytes([{**event, "data": {"pad": ""}}])
    body = _bytes([{**event, "data": {"pad": "x" * (n_bytes - len(skeleton))}}])
    assert len(body) == n_bytes
    return body


_ISO = "Event Grid validates eventTime/time as a date-time at publish; " + SCHEMA_DOCS
_NOT_RETRIED = ("; it can never succeed, so ours answers 400 (not retried) instead of the 500 Event Grid "
                "would retry for 24 h")
_EXT_THROWS = "the extension's JToken.Parse throws and the host answers 500 (" + EXTENSION + ")" + _NOT_RETRIED

TOPIC_CASES = [
    # -- not JSON at all
    _topic("topic-not-json", b"[{not json", 400, "not valid JSON: Expecting property name", POST_DOCS),
    _topic("topic-empty-body", b"", 400, "not valid JSON: Expecting value", POST_DOCS),
    _topic("topic-invalid-utf8", b'[{"id": "\xff\xfe"}]', 400, "not UTF-8 text (byte 0xff at offset 9)", POST_DOCS),
    _topic("topic-utf16-json", json.dumps([eg()]).encode("utf-16"), 400, "not UTF-8 text",
           "Event Grid reads UTF-8 (Python's json.loads alone would take UTF-16); " + POST_DOCS),
    _topic("topic-nan-literal", with_data_json(eg(), '{"psi": NaN}'), 400, "NaN is not a JSON number",
           "RFC 8259 has no NaN; doubtful: Azure's reader may take it (Newtonsoft does), ours refuses so that "
           "nothing it delivers is outside JSON"),
    _topic("topic-infinity-literal", with_data_json(eg(), "[-Infinity]"), 400, "-Infinity is not a JSON number",
           "as topic-nan-literal"),
    _topic("topic-number-beyond-double", with_data_json(eg(), "1e999"), 400, "beyond the range of a double: 1e999",
           "doubtful: .NET parses it as Infinity; ours would deliver the non-JSON literal Infinity, so it refuses"),
    _topic("topic-number-5000-digits", with_data_json(eg(), "9" * 5000), 400, "a number of 5,000 digits",
           "doubtful: Newtonsoft reads a BigInteger; Python cannot write an int of over 4,300 digits back out"),
    _topic("topic-nested-5000", with_data_json(eg(), nested(5000)), 400, "more than 64 levels deep", MAX_DEPTH),
    _topic("topic-nested-65", with_data_json(eg(), nested(63)), 400, "more than 64 levels deep",
           "array + event + 63 levels of data = 65; " + MAX_DEPTH),
    _topic("topic-nested-64-accepted", with_data_json(eg(), nested(62)), 200, "", "64 levels in all: " + MAX_DEPTH),
    # -- JSON, but not an array of events
    _topic("topic-json-string", "hello", 400, "expected a JSON array of events, got a string", POST_DOCS),
    _topic("topic-json-number", 42, 400, "expected a JSON array of events, got a number", POST_DOCS),
    _topic("topic-json-null", None, 400, "expected a JSON array of events, got null", POST_DOCS),
    _topic("topic-single-object", eg(), 400, "wrap a single event in [ ]",
           "Azure: 'Unexpected token when reading JSON. Expected: StartArray, actual: StartObject' "
           "(arcus-azure/arcus.eventgrid#145)"),
    _topic("topic-array-of-non-objects", [1, "two", None], 400, "event 0: expected a JSON object, got a number",
           POST_DOCS),
    _topic("topic-empty-array", [], 200, "",
           "doubtful (not documented); nothing to validate or deliver, and Azure's SDKs never send one"),
    # -- Event Grid schema fields
    _topic("topic-missing-id", [eg(id=...)], 400, "event 0: required field 'id' is missing", SCHEMA_DOCS),
    _topic("topic-numeric-id", [eg(id=17)], 400, "field 'id' must be a string, got a number", SCHEMA_DOCS),
    _topic("topic-missing-eventtype", [eg(eventType=...)], 400, "required field 'eventType' is missing",
           SCHEMA_DOCS),
    _topic("topic-eventtime-not-a-date", [eg(eventTime="7 June")], 400,
           "'eventTime' is not an ISO 8601 date-time: '7 June'", _ISO),
    _topic("topic-eventtime-a-number", [eg(eventTime=1717718400)], 400,
           "field 'eventTime' must be a string, got a number", _ISO),
    _topic("topic-data-string", [eg(data="just text")], 200, "", "data is any JSON value; " + SCHEMA_DOCS),
    _topic("topic-data-list", [eg(data=[1, 2, 3])], 200, "", "data is any JSON value; " + SCHEMA_DOCS),
    _topic("topic-duplicate-ids", [eg(), eg()], 200, "",
           "Event Grid does not deduplicate on id: both are accepted and delivered (at least once)"),
    _topic("topic-unknown-event-type", [eg(eventType="Nobody.Listens.For.This")], 200, "",
           "any string is an event type; an event no subscription matches is dropped after it is accepted"),
    _topic("topic-subject-100kb", [eg(subject="s/" + "x" * 100_000)], 200, "",
           "no subject limit but the 1 MB event limit; " + POST_DOCS),
    _topic("topic-mixed-schemas", [eg(), ce()], 400, "mixes CloudEvents (events 1) with Event Grid schema events",
           "a topic has one input schema: 'The JSON received does not conform to the expected schema' "
           "(Azure/azure-sdk-for-python#15941)"),
    # -- sizes
    _topic("topic-exactly-1mb", sized(MAX_BYTES), 200, "", POST_DOCS),
    _topic("topic-1mb-plus-1", sized(MAX_BYTES + 1), 413, "1,048,577 bytes", POST_DOCS),
    _topic("topic-2mb", sized(2 * MAX_BYTES), 413, "at most 1,048,576 bytes per request", POST_DOCS),
    _topic("topic-5mb-beyond-what-is-read", sized(5 * MAX_BYTES), 413, "at most 1,048,576 bytes per request",
           POST_DOCS),
    # -- headers and address
    _topic("topic-wrong-content-type", [eg()], 400, "content type 'text/plain' is not accepted",
           "doubtful (not documented): ours accepts only the JSON and CloudEvents media types",
           content_type="text/plain"),
    _topic("topic-no-content-type", [eg()], 200, "", "read as application/json", content_type=None),
    _topic("topic-no-key", [eg()], 401, "aeg-sas-key header is missing", POST_DOCS, key=None),
    _topic("topic-wrong-key", [eg()], 401, "does not match the topic key", POST_DOCS, key="not-the-key"),
    _topic("topic-key-not-utf8", [eg()], 401, "does not match the topic key", POST_DOCS, key=b"\xff\xfe"),
    _topic("topic-unknown-topic", [eg()], 404, "topic 'nope' is not in the routing table", POST_DOCS,
           path="/topics/nope/api/events?api-version=2018-01-01"),
    # -- CloudEvents 1.0
    _cloud_topic("cloud-specversion-0.3", [ce(specversion="0.3")], 400, "'specversion' must be \"1.0\", got '0.3'",
                 "custom topics take CloudEvents 1.0 only; " + SCHEMA_DOCS),
    _cloud_topic("cloud-missing-source", [ce(source=...)], 400, "required field 'source' is missing", SCHEMA_DOCS),
    _cloud_topic("cloud-numeric-id", [ce(id=5)], 400, "field 'id' must be a string, got a number", SCHEMA_DOCS),
    _cloud_topic("cloud-time-not-a-date", [ce(time="noon")], 400, "'time' is not an ISO 8601 date-time", _ISO),
    _cloud_topic("cloud-data-base64-junk", [ce(data=..., data_base64="%%not base64%%")], 400,
                 "'data_base64' is not valid base64", "CloudEvents JSON format 1.0: data_base64 is Base64"),
    _cloud_topic("cloud-data-base64-number", [ce(data=..., data_base64=12)], 400, "'data_base64' is not valid base64",
                 "as cloud-data-base64-junk"),
    _cloud_topic("cloud-data-string", [ce(data="plain text", datacontenttype="text/plain")], 200, "",
                 "data is any JSON value"),
    _cloud_topic("cloud-data-base64-valid", [ce(data=..., data_base64=base64.b64encode(b"\x00\x01").decode())],
                 200, "", "binary data as the SDK sends it"),
    _cloud_topic("cloud-batch-given-an-object", ce(), 400, "expected a JSON array of events, got an object",
                 "'Token Expected: StartArray' as for the Event Grid schema"),
    _cloud_topic("cloud-single-given-an-array", [ce()], 400,
                 "carries one event as a JSON object, got an array; send a JSON array as "
                 "application/cloudevents-batch+json",
                 "'Token Expected: StartObject, Actual Token Received: StartArray' "
                 "(Azure/azure-sdk-for-python#15941)", content_type="application/cloudevents+json"),
    _cloud_topic("cloud-single-json-null", None, 400, "carries one event as a JSON object, got null",
                 "as cloud-single-given-an-array", content_type="application/cloudevents+json"),
    _cloud_topic("cloud-not-json", b"{specversion", 400, "not valid JSON", POST_DOCS),
    _cloud_topic("cloud-nested-5000", with_data_json(ce(), nested(5000)), 400, "more than 64 levels deep", MAX_DEPTH),
    _cloud_topic("cloud-2mb", sized(2 * MAX_BYTES, ce()), 413, "at most 1,048,576 bytes per request", POST_DOCS),
    _cloud_topic("cloud-extension-named-self", [ce(self="x")], 200, "",
                 "a valid CloudEvents attribute name (lowercase alphanumerics); see webhook-cloud-extension-self"),
]

WEBHOOK_CASES = [
    # -- the body is not a delivery
    _webhook("webhook-not-json", b"[{not json", 400, "not valid JSON", _EXT_THROWS),
    _webhook("webhook-empty-body", b"", 400, "not valid JSON: Expecting value", _EXT_THROWS),
    _webhook("webhook-invalid-utf8", b'[{"id": "\xff"}]', 400, "not UTF-8 text", _EXT_THROWS),
    _webhook("webhook-json-string", "hello", 400, "must be a JSON array of events",
             "ProcessAsync throws ArgumentOutOfRangeException ('should be parseable into a JSON object or array') "
             "and the host answers 500 (" + EXTENSION + ")" + _NOT_RETRIED),
    _webhook("webhook-json-number", 42, 400, "must be a JSON array of events", "as webhook-json-string"),
    _webhook("webhook-json-null", None, 400, "must be a JSON array of events", "as webhook-json-string"),
    _webhook("webhook-array-of-non-objects", [1, "two"], 400, "event 0 is not a JSON object",
             "each element is handed to the worker, whose decode fails (500)" + _NOT_RETRIED),
    _webhook("webhook-nested-5000", with_data_json(eg(), nested(5000)), 400, "more than 64 levels deep",
             "JToken.Parse stops at 64 and the host answers 500; " + MAX_DEPTH + _NOT_RETRIED),
    _webhook("webhook-nested-65", with_data_json(eg(), nested(63)), 400, "more than 64 levels deep",
             "as webhook-nested-5000"),
    _webhook("webhook-number-5000-digits", with_data_json(eg(), "9" * 5000), 400, "a number of 5,000 digits",
             "the Python worker's json.loads refuses it (int max str digits), failing the invocation (500)"
             + _NOT_RETRIED),
    # -- events the worker cannot bind
    _webhook("webhook-missing-id", [eg(id=...)], 400, "lacks required field(s): id",
             "doubtful: the worker binds id=None and invokes; ours refuses what Event Grid never delivers"),
    _webhook("webhook-numeric-id", [eg(id=17)], 400, "lacks required field(s): id", "as webhook-missing-id"),
    _webhook("webhook-cloud-missing-source", ce(source=...), 400, "(CloudEvents 1.0 schema) lacks required "
             "field(s): source", "as webhook-missing-id"),
    _webhook("webhook-eventtime-not-a-date", [eg(eventTime="7 June")], 400,
             "eventTime '7 June' is not a date-time the Functions Python worker can parse",
             "the worker fails every invocation (Result: Failure, 500, retried); " + WORKER + _NOT_RETRIED),
    _webhook("webhook-eventtime-with-offset", [eg(eventTime="2025-03-01T12:30:45+02:00")], 400,
             "eventTime '2025-03-01T12:30:45+02:00' is not a date-time the Functions Python worker can parse",
             "valid ISO 8601, which topics take, but the worker parses UTC forms only; " + WORKER + _NOT_RETRIED),
    _webhook("webhook-cloud-time-a-number", ce(time=1717718400), 400,
             "time 1717718400 is not a date-time the Functions Python worker can parse",
             "the worker's re.match raises TypeError, failing the invocation; " + WORKER + _NOT_RETRIED),
    _webhook("webhook-cloud-extension-self", ce(self="x"), 400, "the Functions Python worker cannot decode the event",
             "func.CloudEvent(**extensions) gets 'self' twice: TypeError fails every invocation" + _NOT_RETRIED),
    _webhook("webhook-lone-surrogate-id-bad-time", b'[{"id": "\\ud800", "subject": "s", "eventType": "T", '
             b'"eventTime": "never"}]', 400, "cannot take event '\\ud800'",
             "a lone surrogate is a valid JSON escape; the answer must still be sayable in UTF-8"),
    # -- what the extension passes on as is
    _webhook("webhook-empty-array", [], 200, "", "no executions: ProcessEventsAsync answers 202 (" + EXTENSION + ")"),
    _webhook("webhook-data-string", [eg(data="just text")], 200, "", "data is any JSON value"),
    _webhook("webhook-duplicate-ids", [eg(), eg()], 200, "", "one invocation per event, ids are not compared"),
    _webhook("webhook-nan-in-data", with_data_json(eg(), '{"psi": NaN}'), 200, "",
             "Newtonsoft's JToken.Parse reads NaN and the worker's json.loads does too: the function gets nan"),
    _webhook("webhook-cloud-specversion-0.3", ce(specversion="0.3"), 200, "",
             "the host does not check specversion; the worker binds a func.CloudEvent",
             content_type="application/cloudevents+json; charset=utf-8"),
    _webhook("webhook-cloud-data-base64-junk", ce(data=..., data_base64="%%junk%%"), 200, "",
             "the worker keeps data_base64 as an extension attribute and does not decode it",
             content_type="application/cloudevents+json; charset=utf-8"),
    _webhook("webhook-2mb", sized(2 * MAX_BYTES), 200, "",
             "the host takes up to 100 MB (Event Grid never sends over 1 MB, but a direct post may)"),
    # -- the function really raised: the one 500
    _webhook("webhook-function-raises", [eg()], 500, "RuntimeError: the store is down for poison-1",
             "ProcessEventsAsync answers 500 with the exception message; Event Grid retries", function="failing"),
    # -- headers, keys and names
    _webhook("webhook-no-event-type-header", [eg()], 400, "aeg-event-type must be 'Notification'",
             "ProcessAsync answers 400 (" + EXTENSION + ")", kind=None),
    _webhook("webhook-unknown-event-type-header", [eg()], 400, "aeg-event-type must be 'Notification'",
             "as webhook-no-event-type-header", kind="Hello"),
    _webhook("webhook-unsubscribe", b"", 202, "",
             "ProcessAsync answers 202 Accepted to Unsubscribe (" + EXTENSION + ")", kind="Unsubscribe"),
    _webhook("webhook-validation-without-code", [eg(eventType="Microsoft.EventGrid.SubscriptionValidationEvent",
                                                    data={})], 400, "must carry a Microsoft.EventGrid.Subscription",
             "the extension dereferences data.validationCode and throws (500)" + _NOT_RETRIED,
             kind="SubscriptionValidation"),
    _webhook("webhook-no-key", [eg()], 401, "Unauthorized", "the extension's route needs the system key", key=None),
    _webhook("webhook-wrong-key", [eg()], 401, "Unauthorized", "as webhook-no-key", key="not-the-key"),
    _webhook("webhook-function-key-is-not-enough", [eg()], 401, "Unauthorized", "as webhook-no-key",
             key=FUNCTION_KEY),
    _webhook("webhook-key-header-not-utf8", [eg()], 401, "Unauthorized", "as webhook-no-key", key=None,
             headers=(("x-functions-key", b"\xff\xfe"),)),
    _webhook("webhook-unknown-function", [eg()], 404, "no function named 'nope'",
             "404 'cannot find function' (" + EXTENSION + ")", function="nope"),
    _webhook("webhook-no-function-name", [eg()], 404, "the functionName query parameter is required",
             "404 \"cannot find function: ''\" for an empty name too (" + EXTENSION + ")", function=None),
    _webhook("webhook-http-function", [eg()], 404, "not an eventGridTrigger",
             "only Event Grid functions have listeners (" + EXTENSION + ")", function="orders"),
]

_ROUTING = "ASP.NET routing in the Functions host: no route, no function"
HTTP_CASES = [
    _http("http-control", "GET", "orders/7", 200, '"id": 7', "the function answers"),
    _http("http-no-key", "GET", "orders/7", 401, "a valid key is required",
          "auth_level FUNCTION: 401 without a key", key=None),
    _http("http-wrong-key", "GET", "orders/7", 401, "a valid key is required", "as http-no-key", key="not-the-key"),
    _http("http-key-header-not-utf8", "GET", "orders/7", 401, "a valid key is required", "as http-no-key",
          key=None, headers=(("x-functions-key", b"\xff"),)),
    _http("http-extension-key-is-not-a-function-key", "GET", "orders/7", 401, "a valid key is required",
          "system keys open their extension's route only", key=EXTENSION_KEY),
    _http("http-unknown-route", "GET", "nowhere", 404, "no HTTP function matches /api/nowhere", _ROUTING),
    _http("http-route-constraint-mismatch", "GET", "orders/abc", 404, "no HTTP function matches", _ROUTING),
    _http("http-int-beyond-32-bits", "GET", "orders/2147483648", 404, "no HTTP function matches",
          "the int constraint parses an Int32 (ASP.NET IntRouteConstraint)"),
    _http("http-int-5000-digits", "GET", "orders/" + "9" * 5000, 404, "no HTTP function matches",
          "as http-int-beyond-32-bits"),
    _http("http-wrong-method", "DELETE", "orders/7", 404, "no HTTP function takes DELETE /api/orders/7",
          "the host answers 404, not 405 (Azure/azure-functions-host#10098)"),
    _http("http-host-port-out-of-range", "GET", "orders/7", 400, "the Host header '127.0.0.1:99999' is not a valid",
          "Kestrel answers 400 'Invalid Host header' before routing", headers=(("Host", "127.0.0.1:99999"),)),
    _http("http-body-not-json-function-raises", "POST", "orders/7", 500, "Internal Server Error",
          "the function's req.get_json() raises: a function that really raised is 500 (no details)",
          body=b"{not json"),
    _http("http-invalid-utf8-body-passes", "POST", "echo", 200, "3 bytes",
          "the host hands the body over as bytes", body=b"\xff\xfe\xfd"),
    _http("http-2mb-body", "POST", "echo", 200, f"{2 * MAX_BYTES} bytes",
          "the host takes request bodies up to 100 MB", body=b"x" * (2 * MAX_BYTES)),
]

CASES: list[PoisonCase] = TOPIC_CASES + WEBHOOK_CASES + HTTP_CASES
