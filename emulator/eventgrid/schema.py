"""What the local Event Grid topic accepts: Azure Event Grid's input validation for both wire schemas.

A publish is all or nothing, as in Azure: the whole request is validated before any event is
accepted, and the first problem is reported with the event's index and id. `WireEvent` is the
event as it will be delivered; `WireEvent.field` is what subscription filters read."""
from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EVENTGRID_SCHEMA = "EventGridSchema"
CLOUDEVENTS_SCHEMA = "CloudEventSchemaV1_0"
SCHEMAS = (EVENTGRID_SCHEMA, CLOUDEVENTS_SCHEMA)
MAX_EVENT_BYTES = 1_048_576   # Azure: 1 MB per event and per request, answered 413 beyond it
# Nested arrays/objects: Newtonsoft.Json 13 (the Functions host's Event Grid extension parses deliveries
# with JToken.Parse) and System.Text.Json both stop reading at 64 by default; deeper JSON never reaches a
# function in Azure, and here it would hit Python's recursion limit in json.loads/dumps.
MAX_JSON_DEPTH = 64
MAX_NUMBER_DIGITS = 4300      # Python's int/str conversion limit: a longer integer could not be written back out

_JSON = "application/json"
_CE_SINGLE = "application/cloudevents+json"
_CE_BATCH = "application/cloudevents-batch+json"


class SchemaError(ValueError):
    """A publish Azure would answer 400 to; the message says which event and what is wrong."""
    status = 400
    code = "BadRequest"

    def error_body(self) -> dict:
        # The error shape Azure's topic endpoint answers with (azure-core shows `message`).
        return {"error": {"code": self.code, "message": str(self)}}


class PayloadTooLarge(SchemaError):
    status = 413
    code = "PayloadTooLarge"


class NotJson(ValueError):
    """A request body that is not JSON as Azure's readers take it; the message says what is wrong."""


class _Missing:
    """A filter key the event does not have (distinct from a JSON null)."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

# Envelope names a filter key may use, per schema. Event Grid accepts the other schema's name for
# the same attribute (`type` on an Event Grid event, `eventType` on a CloudEvent), so both map.
_EVENTGRID_NAMES = {
    "id": "id", "eventid": "id", "topic": "topic", "source": "topic", "subject": "subject",
    "eventtype": "eventType", "type": "eventType", "eventtime": "eventTime", "time": "eventTime",
    "dataversion": "dataVersion", "metadataversion": "metadataVersion", "data": "data",
}
_CLOUDEVENTS_NAMES = {
    "id": "id", "eventid": "id", "source": "source", "topic": "source", "subject": "subject",
    "type": "type", "eventtype": "type", "time": "time", "eventtime": "time",
    "specversion": "specversion", "datacontenttype": "datacontenttype", "dataschema": "dataschema",
    "data": "data",
}
_NAMES = {EVENTGRID_SCHEMA: _EVENTGRID_NAMES, CLOUDEVENTS_SCHEMA: _CLOUDEVENTS_NAMES}

# A compiled filter key: the top-level name (lowercased) and the nested names below it.
FieldPath = tuple[str, tuple[tuple[str, str], ...]]


def field_path(key: str) -> FieldPath:
    """Compile a filter key such as `data.RunTags.x` once, so matching does no string work."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ValueError(f"filter key {key!r} is not a dotted name such as 'subject' or 'data.api'")
    return parts[0].lower(), tuple((p, p.lower()) for p in parts[1:])


def _get(obj: dict, name: str, lowered: str) -> Any:
    value = obj.get(name, MISSING)
    if value is MISSING:
        # Microsoft's own events differ in casing (RunTags vs runTags): fall back to a caseless match.
        for k, v in obj.items():
            if k.lower() == lowered:
                return v
    return value


@dataclass(frozen=True)
class WireEvent:
    schema: str   # EVENTGRID_SCHEMA | CLOUDEVENTS_SCHEMA
    body: dict    # the event exactly as it will be delivered (JSON-able)

    @property
    def _cloud(self) -> bool:
        return self.schema == CLOUDEVENTS_SCHEMA

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def event_type(self) -> str:
        return self.body["type" if self._cloud else "eventType"]

    @property
    def subject(self) -> str | None:
        return self.body.get("subject")

    @property
    def time(self) -> str | None:
        return self.body.get("time" if self._cloud else "eventTime")

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def source(self) -> str:
        """The topic's resource id (Event Grid schema) or the CloudEvent's source."""
        return self.body["source" if self._cloud else "topic"]

    def to_json(self) -> dict:
        return {"schema": self.schema, "body": self.body}

    @classmethod
    def from_json(cls, obj: dict) -> WireEvent:
        if obj.get("schema") not in SCHEMAS or not isinstance(obj.get("body"), dict):
            raise ValueError(f"not a stored WireEvent: {str(obj)[:200]}")
        return cls(obj["schema"], obj["body"])

    def field(self, key: str) -> Any:
        """The value a filter key refers to ("subject", "eventType", "data.a.b", ...), or MISSING."""
        return self.resolve(field_path(key))

    def resolve(self, path: FieldPath) -> Any:
        head, rest = path
        name = _NAMES[self.schema].get(head)
        value = self.body.get(name, MISSING) if name else _get(self.body, head, head)  # CloudEvents extensions
        for name, lowered in rest:
            if not isinstance(value, dict):
                return MISSING
            value = _get(value, name, lowered)
        return value


# ---- publishing -------------------------------------------------------------------------------

def parse_publish(body: bytes, content_type: str | None, topic_id: str) -> list[WireEvent]:
    """Validate a POST to a custom topic as Azure does and return the events to deliver.

    Raises SchemaError (400) or PayloadTooLarge (413). An empty array is accepted and publishes
    nothing: harmless, and Azure's own clients never send one."""
    # One request is at most 1 MB, so no single event in it can be over the per-event limit either.
    if len(body) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"the request is {len(body):,} bytes; Event Grid accepts at most "
                              f"{MAX_EVENT_BYTES:,} bytes per request and per event: send fewer events per call")
    media = _media_type(content_type)
    try:
        doc = load_json(body)
    except NotJson as error:
        raise SchemaError(str(error)) from None

    if media == _CE_SINGLE:
        if not isinstance(doc, dict):
            hint = f"; send a JSON array as {_CE_BATCH}" if isinstance(doc, list) else ""
            raise SchemaError(f"{_CE_SINGLE} carries one event as a JSON object, got {_kind(doc)}{hint}")
        return [_cloud_event(0, doc)]
    if not isinstance(doc, list):
        raise SchemaError(f"expected a JSON array of events, got {_kind(doc)}"
                          + (" (wrap a single event in [ ])" if isinstance(doc, dict) else ""))
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise SchemaError(f"event {i}: expected a JSON object, got {_kind(item)}")
    if media == _CE_BATCH:
        return [_cloud_event(i, item) for i, item in enumerate(doc)]
    cloud = [i for i, item in enumerate(doc) if "specversion" in item]
    if cloud and len(cloud) != len(doc):
        plain = sorted(set(range(len(doc))) - set(cloud))
        raise SchemaError(f"the array mixes CloudEvents (events {_list(cloud)}) with Event Grid schema events "
                          f"(events {_list(plain)}); publish each schema in its own request")
    if cloud:
        return [_cloud_event(i, item) for i, item in enumerate(doc)]
    return [_eventgrid_event(i, item, topic_id) for i, item in enumerate(doc)]


def load_json(body: bytes, *, lenient_numbers: bool = False) -> Any:
    """Parse a request body as UTF-8 JSON (a BOM is allowed), at most MAX_JSON_DEPTH arrays/objects deep.

    Raises NotJson with the reason. NaN/Infinity literals and numbers beyond a double are not JSON
    (RFC 8259) and are refused unless `lenient_numbers`: the Functions host's Newtonsoft reader takes
    them and the Python worker's json.loads does too, so a delivery carrying them reaches the function."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NotJson(f"the request body is not valid JSON: it is not UTF-8 text (byte 0x{body[error.start]:02x} "
                      f"at offset {error.start})") from None
    hooks: dict[str, Any] = {"parse_int": _parse_int}
    if not lenient_numbers:
        hooks.update(parse_constant=_reject_constant, parse_float=_parse_float)
    try:
        doc = json.loads(text, **hooks)
    except RecursionError:            # far deeper than the limit: json's C scanner gave up
        raise _too_deep() from None
    except json.JSONDecodeError as error:
        raise NotJson(f"the request body is not valid JSON: {error}") from None
    if _nesting_exceeds(doc, MAX_JSON_DEPTH):
        raise _too_deep()
    return doc


def _too_deep() -> NotJson:
    return NotJson(f"the request body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep; "
                   f"Azure's JSON readers stop at {MAX_JSON_DEPTH}")


def _nesting_exceeds(doc: Any, limit: int) -> bool:
    """Whether arrays/objects nest deeper than `limit` (without recursion: the document may be deep)."""
    stack = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        value, level = stack.pop()
        if level > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise NotJson(f"the request body has a number of {digits:,} digits; numbers of at most "
                      f"{MAX_NUMBER_DIGITS:,} digits are accepted")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotJson(f"the request body has a number beyond the range of a double: "
                      f"{text if len(text) <= 40 else text[:40] + '...'}")
    return value


def system_event(*, topic_id: str, subject: str, event_type: str, data: Any, data_version: str = "1",
                 event_id: str | None = None, event_time: datetime | str | None = None) -> WireEvent:
    """An event of a system topic (storage account, Azure ML workspace), shaped as Azure sends it."""
    if isinstance(event_time, datetime) or event_time is None:
        event_time = format_time(event_time or datetime.now(UTC))
    body = {
        "topic": topic_id, "subject": subject, "eventType": event_type, "id": event_id or str(uuid.uuid4()),
        "data": data, "dataVersion": data_version, "metadataVersion": "1", "eventTime": event_time,
    }
    size = len(json.dumps(body).encode())
    if size > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"{event_type} for {subject} is {size:,} bytes; an event is at most {MAX_EVENT_BYTES:,}")
    return WireEvent(EVENTGRID_SCHEMA, body)


def format_time(moment: datetime) -> str:
    """UTC with a `Z`, the form Azure services stamp (and the Functions worker parses)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _eventgrid_event(i: int, item: dict, topic_id: str) -> WireEvent:
    where = _where(i, item)
    for name in ("id", "subject", "eventType", "eventTime"):
        _required_string(where, item, name)
    _time(where, item, "eventTime")
    # dataVersion: optional for custom topics; Azure stamps an empty string when it is left out.
    data_version = item.get("dataVersion")
    if data_version is not None and not isinstance(data_version, str):
        raise SchemaError(f"{where}: field 'dataVersion' must be a string, got {_kind(data_version)}")
    # metadataVersion and topic are Event Grid's to stamp; a publisher may only repeat them exactly.
    metadata_version = item.get("metadataVersion")
    if metadata_version is not None and metadata_version != "1":
        raise SchemaError(f"{where}: field 'metadataVersion' must be \"1\" or left out, got {metadata_version!r}")
    topic = item.get("topic")
    if topic is not None and (not isinstance(topic, str) or topic.lower() != topic_id.lower()):
        raise SchemaError(f"{where}: field 'topic' is {topic!r} but this topic is '{topic_id}'; "
                          f"leave 'topic' out and Event Grid stamps it")
    # The delivered event is Event Grid's envelope: publisher fields outside it are not carried.
    body = {"id": item["id"], "topic": topic_id, "subject": item["subject"], "eventType": item["eventType"],
            "eventTime": item["eventTime"]}
    if "data" in item:
        body["data"] = item["data"]
    body["dataVersion"] = data_version or ""
    body["metadataVersion"] = "1"
    return WireEvent(EVENTGRID_SCHEMA, body)


def _cloud_event(i: int, item: dict) -> WireEvent:
    where = _where(i, item)
    if "specversion" not in item or item["specversion"] is None:
        raise SchemaError(f"{where}: required field 'specversion' is missing (CloudEvents 1.0 needs \"1.0\")")
    if item["specversion"] != "1.0":
        raise SchemaError(f"{where}: 'specversion' must be \"1.0\", got {item['specversion']!r}")
    for name in ("id", "source", "type"):
        _required_string(where, item, name)
    for name in ("subject", "datacontenttype", "dataschema", "time"):
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            raise SchemaError(f"{where}: field '{name}' must be a string, got {_kind(value)}")
    if item.get("time") is not None:
        _time(where, item, "time")
    if "data" in item and "data_base64" in item:
        raise SchemaError(f"{where}: has both 'data' and 'data_base64'; a CloudEvent carries one or the other")
    if "data_base64" in item:
        try:
            base64.b64decode(item["data_base64"], validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise SchemaError(f"{where}: 'data_base64' is not valid base64") from None
    # CloudEvents are delivered as published, extension attributes included.
    return WireEvent(CLOUDEVENTS_SCHEMA, item)


def _required_string(where: str, item: dict, name: str) -> None:
    value = item.get(name)
    if value is None:
        raise SchemaError(f"{where}: required field '{name}' is missing")
    if not isinstance(value, str):
        raise SchemaError(f"{where}: field '{name}' must be a string, got {_kind(value)}")
    if not value.strip():
        raise SchemaError(f"{where}: field '{name}' must not be empty")


def _time(where: str, item: dict, name: str) -> None:
    if not isinstance(item[name], str) or parse_time(item[name]) is None:
        raise SchemaError(f"{where}: field '{name}' is not an ISO 8601 date-time: {item[name]!r}")


def parse_time(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339 as Azure writes it (up to 7 fractional digits, `Z`), or None."""
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" and text else text)
    except ValueError:
        return None


def _media_type(content_type: str | None) -> str:
    media = (content_type or _JSON).split(";", 1)[0].strip().lower()
    if media not in (_JSON, _CE_SINGLE, _CE_BATCH):
        raise SchemaError(f"content type {content_type!r} is not accepted; use {_JSON} (Event Grid schema, "
                          f"or a CloudEvents array), {_CE_SINGLE} or {_CE_BATCH}")
    return media


def _reject_constant(name: str) -> None:
    raise NotJson(f"the request body is not valid JSON: {name} is not a JSON number (RFC 8259)")


def _where(i: int, item: dict) -> str:
    event_id = item.get("id")
    return f"event {i} (id {event_id!r})" if isinstance(event_id, str) and event_id else f"event {i}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _list(indexes: list[int]) -> str:
    return ", ".join(map(str, indexes[:5])) + (", ..." if len(indexes) > 5 else "")
