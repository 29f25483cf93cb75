"""The Event Grid extension's webhook: POST /runtime/webhooks/eventgrid?functionName=NAME.

Event Grid (Azure's or the local one) delivers here with the extension's system key. The answer is what
Event Grid acts on: 200 delivered; 400/401/404 not retried; 500 (the function raised) retried later.
Like the extension (HttpRequestProcessor), the aeg-event-type header decides first: SubscriptionValidation
is answered with the code, Notification is delivered, Unsubscribe is acknowledged 202, anything else is 400.
Where the extension lets an exception escape (a body that is not JSON, an event the worker cannot bind),
the real host answers 500 and Event Grid retries for 24 h; such a request can never succeed, so here it
is answered 400 with the reason."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from emulator.timeline import Delivery, Timeline

from .bindings import BadRequest, Unbindable, event_binding, event_fields, parse_events, validation_code
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
        spec = self._specs.get(name.lower())
        if spec is None:
            # The extension answers 404 "cannot find function" for a missing functionName too.
            return web.Response(status=404, text=f"no function named {name!r} in this app" if name else
                                "no function named '': the functionName query parameter is required")
        if spec.trigger != EVENT_GRID:
            return web.Response(status=404, text=f"function {spec.name!r} has a {spec.trigger}, "
                                                 f"not an eventGridTrigger")
        if request.method == "OPTIONS":
            return _cloudevents_handshake(request)
        kind = request.headers.get("aeg-event-type", "").lower()
        if kind == "unsubscribe":
            return web.Response(status=202)
        if kind not in ("subscriptionvalidation", "notification"):
            return web.Response(status=400, text="header aeg-event-type must be 'Notification' or "
                                                 "'SubscriptionValidation'")
        try:
            events = parse_events(await request.read())
            if kind == "subscriptionvalidation":
                return web.json_response({"validationResponse": validation_code(events)})
        except BadRequest as exc:
            return web.Response(status=400, text=str(exc))
        outcomes = [(event, await self._deliver(spec, event, request)) for event in events]
        raised = [(e, o) for e, o in outcomes if not o.ok and not isinstance(o.error, Unbindable)]
        unbindable = [(e, o) for e, o in outcomes if isinstance(o.error, Unbindable)]
        if raised:         # the function may succeed next time: 500, which Event Grid retries
            return _failure(500, f"function {spec.name!r} failed for", raised)
        if unbindable:     # no retry can bind it: 400, which Event Grid does not retry
            return _failure(400, f"function {spec.name!r} cannot take", unbindable)
        return web.Response(status=200)

    async def _deliver(self, spec: FunctionSpec, event: dict[str, Any], request: web.Request) -> Outcome:
        event_id, event_type, subject = event_fields(event)
        try:
            binding = event_binding(event)
        except Unbindable as exc:
            # The worker fails every invocation of such an event (500 in Azure, retried for 24 h), so it is
            # answered 400 and recorded as rejected. Azure's topics reject an eventTime that is not a
            # date-time at publish, so only a direct webhook post can carry one; the exception is a valid
            # time with a non-UTC offset (+02:00), which topics take and the Python worker cannot parse.
            log.error("Not executing 'Functions.%s': cannot bind event %r: %s", spec.name, event_id, exc)
            outcome = Outcome(str(uuid.uuid4()), error=exc)
            result, status, detail = "rejected", 400, f"not invoked: {exc}"
        else:
            outcome = await self._invoker.invoke(spec, binding,
                                                 reason=f"EventGrid event {event_id} ({event_type})")
            result, status, detail = ("delivered", 200, "") if outcome.ok else ("failed", 500, outcome.detail)
        # The local Event Grid records its own deliveries (it names its subscription in this header).
        if self._timeline is not None and "aeg-subscription-name" not in request.headers:
            self._timeline.record(Delivery(
                event_id=event_id, event_type=event_type, subject=subject, function=spec.name,
                attempt=_attempt(request), outcome=result, source="webhook", detail=detail, status=status,
                duration_ms=round(outcome.duration_ms, 3)))
        return outcome



def _failure(status: int, what: str, failures: list[tuple[dict[str, Any], Outcome]]) -> web.Response:
    event, outcome = failures[0]
    more = f" (and {len(failures) - 1} more event(s))" if len(failures) > 1 else ""
    reason = str(outcome.error) if isinstance(outcome.error, Unbindable) else outcome.detail
    return _text(status, f"{what} event {event_fields(event)[0]!r}{more}: {reason}")


def _text(status: int, message: str) -> web.Response:
    # Event data may hold lone surrogates (valid JSON escapes): never let them break the answer.
    return web.Response(status=status, body=message.encode("utf-8", "backslashreplace"),
                        content_type="text/plain", charset="utf-8")


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
