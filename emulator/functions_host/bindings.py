"""Wire formats to binding objects and back, built with azure-functions' own classes and converters so a
function gets exactly what the Python worker would give it.

- Event Grid: the extension hands the worker each event's JSON as is, and the worker decodes it with
  EventGridEventInConverter: EventGrid-schema events become func.EventGridEvent, CloudEvents (anything
  with `specversion`) become func.CloudEvent (azure-functions >= 1.25).
- Timers: func.TimerRequest with the host's ScheduleStatus shape.
- HTTP: func.HttpRequest in; func.HttpResponse (or str) out, encoded the way HttpResponseConverter does."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from azure.functions.timer import TimerRequest
from multidict import CIMultiDict  # aiohttp's own dependency; keeps repeated Set-Cookie headers

from emulator.eventgrid.schema import NotJson, load_json

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
# subject may be empty: Azure's own SubscriptionValidationEvent has "subject": "".
_EVENTGRID_REQUIRED = ("id", "eventType", "eventTime")
_CLOUDEVENT_REQUIRED = ("id", "source", "type", "specversion")


class BadRequest(Exception):
    """The request cannot be an Event Grid delivery; answered 400, which Event Grid does not retry."""


class Unbindable(ValueError):
    """An event the worker cannot turn into its binding object: every delivery of it would fail the same way."""


# --- Event Grid ---------------------------------------------------------------------------------------

def parse_events(body: bytes) -> list[dict[str, Any]]:
    """A delivery body: a JSON array of events (either schema) or one CloudEvent object.

    NaN, Infinity and numbers beyond a double pass, as they do through the host's Newtonsoft reader
    to the worker's json.loads; JSON nested deeper than the host's reader takes does not."""
    try:
        document = load_json(body, lenient_numbers=True)
    except NotJson as exc:
        raise BadRequest(str(exc)) from None
    events = [document] if isinstance(document, dict) else document
    if not isinstance(events, list):
        raise BadRequest("the request body must be a JSON array of events (or one CloudEvent object)")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise BadRequest(f"event {index} is not a JSON object")
        required = _CLOUDEVENT_REQUIRED if "specversion" in event else _EVENTGRID_REQUIRED
        missing = [name for name in required if not isinstance(event.get(name), str) or not event[name]]
        if missing:
            schema = "CloudEvents 1.0" if "specversion" in event else "EventGrid"
            raise BadRequest(f"event {index} ({schema} schema) lacks required field(s): {', '.join(missing)}")
    return events


def event_binding(event: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """The worker's own decoding of one event. Raises Unbindable where the worker cannot decode it: an
    eventTime/time it cannot parse (it only knows UTC forms), or a CloudEvent extension attribute that
    collides with the binding class's own parameters (`self`)."""
    try:
        return _decode(event)
    except (ValueError, TypeError) as exc:
        raise Unbindable(_why_unbindable(event, exc)) from exc


def _decode(event: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    return EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata=None)


def _why_unbindable(event: dict[str, Any], exc: Exception) -> str:
    field = "time" if "specversion" in event else "eventTime"
    try:
        _decode({k: v for k, v in event.items() if k != field})
    except (ValueError, TypeError):
        return f"the Functions Python worker cannot decode the event ({type(exc).__name__}: {exc})"
    return (f"{field} {event[field]!r} is not a date-time the Functions Python worker can parse; it reads UTC "
            f"times such as '2025-03-01T12:30:45.1234567Z' or '2025-03-01T12:30:45+00:00' (the worker: "
            f"{type(exc).__name__}: {exc})")


def event_fields(event: dict[str, Any]) -> tuple[str, str, str]:
    """(id, type, subject) of an event in either schema, for logs and the timeline."""
    kind = event.get("type") if "specversion" in event else event.get("eventType")
    return str(event.get("id", "")), str(kind or ""), str(event.get("subject") or "")


def validation_code(events: list[dict[str, Any]]) -> str:
    """The code of a SubscriptionValidationEvent, to be echoed back as {"validationResponse": code}."""
    for event in events:
        data = event.get("data")
        if event.get("eventType") == VALIDATION_EVENT and isinstance(data, dict) \
                and isinstance(data.get("validationCode"), str):
            return data["validationCode"]
    raise BadRequest(f"a SubscriptionValidation request must carry a {VALIDATION_EVENT} "
                     f"with data.validationCode")


# --- Timers -------------------------------------------------------------------------------------------

def timer_request(*, past_due: bool, last: datetime | None, next_: datetime | None,
                  now: datetime) -> TimerRequest:
    """What the host passes: IsPastDue plus ScheduleStatus {Last, Next, LastUpdated} as ISO strings."""
    status = {"Last": _iso(last), "Next": _iso(next_), "LastUpdated": _iso(now)}
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --- HTTP ---------------------------------------------------------------------------------------------

async def http_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():      # repeated headers arrive comma-joined, as in ASP.NET
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return func.HttpRequest(request.method, str(request.url), headers=headers,
                            params=dict(request.query), route_params=route_params,
                            body=await request.read())


def http_response(result: Any) -> web.Response:
    """Encode a function's return value as HttpResponseConverter.encode does, then hand it to aiohttp.
    None (or any other type) cannot be encoded: the worker fails the invocation, and so do we."""
    if isinstance(result, str):
        return web.Response(status=200, body=result.encode(),
                            headers={"Content-Type": "text/plain; charset=utf-8"})
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f'unable to encode outgoing TypedData: unsupported type "http" for '
                        f'Python type "{type(result).__name__}" (return a func.HttpResponse)')
    headers = [(name, value) for name, value in result.headers.items()]
    if not any(name.lower() == "content-type" for name, _ in headers):
        mimetype = result.mimetype
        headers.append(("Content-Type", f"{mimetype}; charset={result.charset}"
                        if mimetype.startswith("text/") else mimetype))
    return web.Response(status=result.status_code, body=result.get_body() or b"",
                        headers=CIMultiDict(headers))
