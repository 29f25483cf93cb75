"""The events the function app handles, as typed values, parsed here and nowhere else.

Both wire schemas (Event Grid and CloudEvents 1.0) and both casings Microsoft's samples use
(PascalCase and camelCase data keys) arrive at the same types. Only the standard library is
imported: this module is on every function's cold start."""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import azure.functions as func

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
DATASET_DRIFT_DETECTED = "Microsoft.MachineLearningServices.DatasetDriftDetected"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
LIFECYCLE_PREFIX = "MLOps."

MONITOR_BREACH_TAG = "azureml_modelmonitor_threshold_breached"
MONITOR_BREACH_TEXT = "has failed due to one or more features violating metric thresholds"

# BlobCreated APIs after which the blob's content is complete. ADLS Gen2 `CreateFile` (and SFTP's
# `SftpCreate`) only announce an empty file; its data comes with `FlushWithClose` (`SftpCommit`).
_COMMITTING_APIS = frozenset({"putblob", "putblocklist", "copyblob", "flushwithclose", "sftpcommit"})
_BLOB_SUBJECT = re.compile(r"^/blobServices/default/containers/([^/]+)/blobs/(.+)$")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class EventParseError(ValueError):
    """An event the app cannot act on; the message names the event and what is wrong with it."""

    def __init__(self, message: str, *, event_id: str = "", event_type: str = "") -> None:
        super().__init__(message)
        self.event_id = event_id
        self.event_type = event_type


def _mapping(default: Mapping[str, Any] = _EMPTY) -> Any:
    # Tags, properties and payloads are read-only views; they take no part in hashing.
    return field(default_factory=lambda: default, hash=False)


@dataclass(frozen=True, kw_only=True)
class _Envelope:
    id: str
    event_type: str
    subject: str
    event_time: datetime | None
    source: str = ""          # the topic (Event Grid schema) or source (CloudEvents): which account/workspace


@dataclass(frozen=True, kw_only=True)
class BlobCreated(_Envelope):
    event_type: str = BLOB_CREATED
    container: str
    blob_path: str
    api: str
    etag: str
    content_type: str
    content_length: int
    blob_type: str
    url: str
    sequencer: str

    @property
    def completes_blob(self) -> bool:
        """The API that wrote the blob's final content (not ADLS `CreateFile`, which announces an empty file)."""
        return self.api.lower() in _COMMITTING_APIS

    @property
    def committed(self) -> bool:
        """True when the blob holds its final content: not ADLS `CreateFile`, not zero bytes."""
        return self.content_length > 0 and self.completes_blob


@dataclass(frozen=True, kw_only=True)
class _RunEvent(_Envelope):
    experiment_id: str
    experiment_name: str
    run_id: str
    run_type: str | None
    run_tags: Mapping[str, Any] = _mapping()
    run_properties: Mapping[str, Any] = _mapping()
    run_status: str

    @property
    def breach_message(self) -> str | None:
        """The model monitor's threshold-breach tag on this run, if it has one."""
        value = _caseless(self.run_tags).get(MONITOR_BREACH_TAG)
        return value if isinstance(value, str) else None

    @property
    def monitor_breach(self) -> bool:
        """Azure ML's model monitor signals a breach with this tag on the monitor's run."""
        message = self.breach_message
        return message is not None and MONITOR_BREACH_TEXT in message.lower()


@dataclass(frozen=True, kw_only=True)
class RunCompleted(_RunEvent):
    event_type: str = RUN_COMPLETED
    run_status: str = "Completed"


@dataclass(frozen=True, kw_only=True)
class RunStatusChanged(_RunEvent):
    event_type: str = RUN_STATUS_CHANGED


@dataclass(frozen=True, kw_only=True)
class ModelRegistered(_Envelope):
    event_type: str = MODEL_REGISTERED
    model_name: str
    model_version: str
    model_tags: Mapping[str, Any] = _mapping()
    model_properties: Mapping[str, Any] = _mapping()


@dataclass(frozen=True, kw_only=True)
class DatasetDriftDetected(_Envelope):
    event_type: str = DATASET_DRIFT_DETECTED
    data_drift_id: str
    data_drift_name: str
    run_id: str
    base_dataset_id: str
    target_dataset_id: str
    drift_coefficient: float
    start_time: datetime | None
    end_time: datetime | None


@dataclass(frozen=True, kw_only=True)
class SubscriptionValidation(_Envelope):
    """Event Grid's webhook handshake; answer with {"validationResponse": validation_code}."""
    event_type: str = SUBSCRIPTION_VALIDATION
    validation_code: str
    validation_url: str | None


@dataclass(frozen=True, kw_only=True)
class LifecycleEvent(_Envelope):
    """An `MLOps.*` event the app publishes itself (rollout, promotion, drift)."""
    data: Any = _mapping()


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(_Envelope):
    """Any other event type: kept whole so it can be recorded and rejected with its content."""
    data: Any = field(default=None, hash=False)


Event = (BlobCreated | RunCompleted | RunStatusChanged | ModelRegistered | DatasetDriftDetected
         | SubscriptionValidation | LifecycleEvent | UnknownEvent)


# ---- parsing ----------------------------------------------------------------------------------

def parse(obj: Mapping[str, Any]) -> Event:
    """A wire event (one element of the delivered array) in either schema."""
    if not isinstance(obj, Mapping):
        raise EventParseError(f"an event must be a JSON object, got {type(obj).__name__}")
    env = _caseless(obj)
    cloud = "specversion" in env
    event_id = env.get("id")
    event_type = env.get("type" if cloud else "eventtype")
    if not isinstance(event_id, str) or not event_id:
        raise EventParseError(f"{event_type or 'an'} event has no 'id'", event_type=str(event_type or ""))
    if not isinstance(event_type, str) or not event_type:
        name = "type" if cloud else "eventType"
        raise EventParseError(f"event {event_id!r}: required field '{name}' is missing", event_id=event_id)
    where = _where(event_type, event_id)
    raw_time = env.get("time" if cloud else "eventtime")
    ids = dict(event_id=event_id, event_type=event_type)
    event_time = _time(where, "time" if cloud else "eventTime", raw_time, **ids) if raw_time is not None else None
    data = env.get("data")
    if data is None and cloud and "data_base64" in env:
        data = _decode_base64(where, env["data_base64"], env.get("datacontenttype"), **ids)
    source = env.get("source" if cloud else "topic") or ""
    return _build(event_id, event_type, str(env.get("subject") or ""), event_time, data, str(source))


def from_binding(event: func.EventGridEvent | func.CloudEvent) -> Event:
    """The Functions binding object (`func.EventGridEvent`, or `func.CloudEvent` for CloudEvents)."""
    if hasattr(event, "event_type"):
        grid = cast("func.EventGridEvent", event)
        event_type, source, event_time, data = grid.event_type, grid.topic, grid.event_time, grid.get_json()
    else:   # azure-functions hands CloudEvents 1.0 deliveries over as func.CloudEvent
        event_type, source, event_time, data = event.type, event.source, event.time, event.get_json()
        extensions = event.extension_attrs
        if data is None and "data_base64" in extensions:
            data = _decode_base64(_where(event_type, event.id), extensions["data_base64"], event.datacontenttype,
                                  event_id=event.id, event_type=event_type)
    if not event.id or not event_type:
        raise EventParseError(f"the binding has no id or event type (id {event.id!r}, type {event_type!r})",
                              event_id=str(event.id or ""), event_type=str(event_type or ""))
    if isinstance(event_time, datetime) and event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=UTC)   # Event Grid times are UTC
    return _build(event.id, event_type, event.subject or "", event_time, data, source or "")


def _build(event_id: str, event_type: str, subject: str, event_time: datetime | None, data: Any,
           source: str) -> Event:
    envelope: dict[str, Any] = dict(id=event_id, event_type=event_type, subject=subject, event_time=event_time,
                                    source=source)
    kind = event_type.lower()
    if kind.startswith(LIFECYCLE_PREFIX.lower()):
        return LifecycleEvent(**envelope, data=_frozen(data) if data is not None else _EMPTY)
    builder = _BUILDERS.get(kind)
    if builder is None:
        return UnknownEvent(**envelope, data=data)
    if not isinstance(data, Mapping):
        raise EventParseError(f"{_where(event_type, event_id)}: 'data' must be an object, got "
                              f"{type(data).__name__}", event_id=event_id, event_type=event_type)
    return builder(envelope, _Data(_where(event_type, event_id), event_id, event_type, data))


class _Data:
    """An event's data, read without regard to key case, with errors that name the event."""

    def __init__(self, where: str, event_id: str, event_type: str, data: Mapping[str, Any]) -> None:
        self.where, self.event_id, self.event_type = where, event_id, event_type
        self.fields = _caseless(data)

    def fail(self, message: str) -> EventParseError:
        return EventParseError(f"{self.where}: {message}", event_id=self.event_id, event_type=self.event_type)

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self.fields.get(key.lower())
        if value is None:
            if required:
                raise self.fail(f"required field '{key}' is missing from data")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(f"field '{key}' must be a string, got {type(value).__name__}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)          # a ModelVersion of 20.0 is version "20"
        text = str(value)
        if required and not text.strip():
            raise self.fail(f"field '{key}' must not be empty")
        return text

    def optional_text(self, key: str) -> str | None:
        return self.text(key, required=False, default="") or None

    def number(self, key: str, kind: type = float) -> Any:
        value = self.fields.get(key.lower())
        if value is None:
            raise self.fail(f"required field '{key}' is missing from data")
        try:
            if isinstance(value, bool):
                raise ValueError
            number = kind(value)
        except (TypeError, ValueError):
            raise self.fail(f"field '{key}' must be a number, got {value!r}") from None
        if kind is int and (number < 0 or number != float(value)):
            raise self.fail(f"field '{key}' must be a whole number, 0 or more, got {value!r}")
        return number

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.fields.get(key.lower())
        if value is None:
            return _EMPTY
        if not isinstance(value, Mapping):
            raise self.fail(f"field '{key}' must be an object, got {type(value).__name__}")
        return _frozen(value)

    def time(self, key: str) -> datetime | None:
        value = self.fields.get(key.lower())
        return None if value is None else _time(self.where, key, value, self.event_id, self.event_type)


def _blob_created(env: dict, d: _Data) -> BlobCreated:
    match = _BLOB_SUBJECT.match(env["subject"])
    if not match:
        raise d.fail(f"subject {env['subject']!r} is not /blobServices/default/containers/{{container}}/blobs/{{path}}")
    return BlobCreated(**env, container=match[1], blob_path=match[2], api=d.text("api"), etag=d.text("eTag"),
                       content_type=d.text("contentType", required=False),
                       content_length=d.number("contentLength", int), blob_type=d.text("blobType", required=False),
                       url=d.text("url"), sequencer=d.text("sequencer", required=False))


def _run_fields(d: _Data) -> dict:
    return dict(experiment_id=d.text("experimentId", required=False),
                experiment_name=d.text("experimentName", required=False), run_id=d.text("runId"),
                run_type=d.optional_text("runType"), run_tags=d.mapping("runTags"),
                run_properties=d.mapping("runProperties"))


def _run_completed(env: dict, d: _Data) -> RunCompleted:
    return RunCompleted(**env, **_run_fields(d), run_status=d.text("runStatus", required=False, default="Completed"))


def _run_status_changed(env: dict, d: _Data) -> RunStatusChanged:
    return RunStatusChanged(**env, **_run_fields(d), run_status=d.text("runStatus"))


def _model_registered(env: dict, d: _Data) -> ModelRegistered:
    return ModelRegistered(**env, model_name=d.text("ModelName"), model_version=d.text("ModelVersion"),
                           model_tags=d.mapping("ModelTags"), model_properties=d.mapping("ModelProperties"))


def _dataset_drift(env: dict, d: _Data) -> DatasetDriftDetected:
    return DatasetDriftDetected(
        **env, data_drift_id=d.text("DataDriftId"), data_drift_name=d.text("DataDriftName", required=False),
        run_id=d.text("RunId", required=False), base_dataset_id=d.text("BaseDatasetId", required=False),
        target_dataset_id=d.text("TargetDatasetId", required=False),
        drift_coefficient=d.number("DriftCoefficient"), start_time=d.time("StartTime"), end_time=d.time("EndTime"))


def _validation(env: dict, d: _Data) -> SubscriptionValidation:
    return SubscriptionValidation(**env, validation_code=d.text("validationCode"),
                                  validation_url=d.optional_text("validationUrl"))


_BUILDERS: dict[str, Callable[[dict, _Data], Event]] = {
    BLOB_CREATED.lower(): _blob_created,
    RUN_COMPLETED.lower(): _run_completed,
    RUN_STATUS_CHANGED.lower(): _run_status_changed,
    MODEL_REGISTERED.lower(): _model_registered,
    DATASET_DRIFT_DETECTED.lower(): _dataset_drift,
    SUBSCRIPTION_VALIDATION.lower(): _validation,
}


# ---- small pieces -----------------------------------------------------------------------------

def _caseless(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


def _frozen(value: Any) -> Any:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


def _where(event_type: str, event_id: str) -> str:
    return f"{event_type} event {event_id!r}"


def _time(where: str, name: str, value: Any, event_id: str = "", event_type: str = "") -> datetime:
    moment = None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "zZ" else value)
        except ValueError:
            pass
    if moment is None:
        raise EventParseError(f"{where}: field '{name}' is not an ISO 8601 date-time: {value!r}",
                              event_id=event_id, event_type=event_type)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decode_base64(where: str, text: Any, content_type: Any, **ids: str) -> Any:
    # Binary CloudEvents data; a JSON content type means the payload is JSON after all.
    try:
        raw = base64.b64decode(text, validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise EventParseError(f"{where}: 'data_base64' is not valid base64", **ids) from None
    if isinstance(content_type, str) and "json" in content_type.lower():
        try:
            return json.loads(raw)
        except ValueError:
            raise EventParseError(f"{where}: 'data_base64' is declared {content_type} but is not JSON", **ids) from None
    return raw
