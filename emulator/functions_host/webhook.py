"""The Event Grid extension's webhook: POST /runtime/webhooks/eventgrid?functionName=NAME.

Event Grid (Azure's or the local one) delivers here with the extension's system key. The answer is what
Event Grid acts on: 200 delivered; 400/401/404 not retried; 500 (the function raised) retried later."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from emulator.timeline import Delivery, Timeline

from .bindings import BadRequest, event_binding, event_fields, parse_events, validation_code
from .invoker import Invoker, Outcome
from .keys import SYSTEM, HostKeys, unauthorized
from .loader import EVENT_GRID, FunctionSpec

PATH = "/runtime/webhooks/eventgrid"
log = logging.getLogger("emulator.functions_host")


class EventGridWebhook:
    def __init__(self, specs: Mapping[str, FunctionSpec], keys: HostKeys, invoker: Invoker,
                 timeline: Timeline | None) -> None:
        self._specs = {name.lower(): spec for name, spec in specs.items()}   # names are case-insensitive
        self._keys = keys
        self._invoker = invoker
        self._timeline = timeline

    async def handle(self, request: web.Request) -> web.Response:
        if not self._keys.allows(request, SYSTEM):
            return unauthorized()
        name = request.query.get("functionName", "")
        if not name:
            return web.Response(status=400, text="the functionName query parameter is required")
        spec = self._specs.get(name.lower())
        if spec is None:
            return web.Response(status=404, text=f"no function named {name!r} in this app")
        if spec.trigger != EVENT_GRID:
            return web.Response(status=404, text=f"function {spec.name!r} has a {spec.trigger}, "
                                                 f"not an eventGridTrigger")
        if request.method == "OPTIONS":
            return _cloudevents_handshake(request)
        kind = request.headers.get("aeg-event-type", "").lower()
        try:
            events = parse_events(await request.read())
            if kind == "subscriptionvalidation":
                return web.json_response({"validationResponse": validation_code(events)})
        except BadRequest as exc:
            return web.Response(status=400, text=str(exc))
        if kind != "notification":
            return web.Response(status=400, text="header aeg-event-type must be 'Notification' or "
                                                 "'SubscriptionValidation'")
        failures = [(event, outcome) for event in events
                    if not (outcome := await self._deliver(spec, event, request)).ok]
        if not failures:
            return web.Response(status=200)
        event, outcome = failures[0]
        more = f" (and {len(failures) - 1} more event(s))" if len(failures) > 1 else ""
        return web.Response(status=500, text=f"function {spec.name!r} failed for event "
                                             f"{event_fields(event)[0]}{more}: {outcome.detail}")

    async def _deliver(self, spec: FunctionSpec, event: dict[str, Any], request: web.Request) -> Outcome:
        event_id, event_type, subject = event_fields(event)
        try:
            binding = event_binding(event)
        except ValueError as exc:          # the worker fails the invocation when it cannot bind
            log.error("Executed 'Functions.%s' (Failed): cannot bind event %s: %s", spec.name, event_id, exc)
            outcome = Outcome(str(uuid.uuid4()), error=exc)
        else:
            outcome = await self._invoker.invoke(spec, binding,
                                                 reason=f"EventGrid event {event_id} ({event_type})")
        # The local Event Grid records its own deliveries (it names its subscription in this header).
        if self._timeline is not None and "aeg-subscription-name" not in request.headers:
            self._timeline.record(Delivery(
                event_id=event_id, event_type=event_type, subject=subject, function=spec.name,
                attempt=_attempt(request), outcome="delivered" if outcome.ok else "failed",
                source="webhook", detail=outcome.detail, status=200 if outcome.ok else 500,
                duration_ms=round(outcome.duration_ms, 3)))
        return outcome


def _cloudevents_handshake(request: web.Request) -> web.Response:
    """CloudEvents webhook validation (abuse protection): echo the origin back as allowed."""
    origin = request.headers.get("WebHook-Request-Origin")
    if not origin:
        return web.Response(status=400, text="OPTIONS needs the WebHook-Request-Origin header "
                                             "(CloudEvents webhook validation)")
    return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*",
                                             "Allow": "POST, OPTIONS"})


def _attempt(request: web.Request) -> int:
    try:
        return int(request.headers.get("aeg-delivery-count", "0")) + 1
    except ValueError:
        return 1
