"""The local topic endpoint: accepts what an Azure custom topic accepts, so EventGridPublisherClient
publishes to it unchanged.

    POST /api/events?api-version=2018-01-01              the default custom topic
    POST /topics/{topic}/api/events?api-version=...      any topic of the routing table

The key travels in `aeg-sas-key`. A rejected request (400 bad payload, 401 wrong key, 413 too
large) changes nothing: events are only accepted once the whole batch is valid."""
from __future__ import annotations

import hmac
import logging

from aiohttp import web

from emulator.eventgrid.broker import EventGrid
from emulator.eventgrid.schema import MAX_EVENT_BYTES, PayloadTooLarge, SchemaError, parse_publish

log = logging.getLogger("emulator.eventgrid")


def _error(status: int, code: str, message: str) -> web.Response:
    # The shape Azure answers with, so azure-core surfaces the message.
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        # Over what this server reads at all: the same 413 as any body over 1 MB, said the same way.
        raise PayloadTooLarge(f"the request is over {request.client_max_size:,} bytes; Event Grid accepts at most "
                              f"{MAX_EVENT_BYTES:,} bytes per request and per event: send fewer events per call"
                              ) from None


class TopicEndpoint:
    def __init__(self, grid: EventGrid, key: str, default_topic: str) -> None:
        self.grid = grid
        self.key = key
        self.default_topic = default_topic

    def make_app(self) -> web.Application:
        # Accept a little over the limit so that an oversized batch is answered 413, not cut off.
        app = web.Application(client_max_size=4 * MAX_EVENT_BYTES)
        app.router.add_post("/api/events", self.publish)
        app.router.add_post("/topics/{topic}/api/events", self.publish)
        app.router.add_get("/", self.home)
        return app

    async def home(self, request: web.Request) -> web.Response:
        return web.Response(text="Local Event Grid is running")

    async def publish(self, request: web.Request) -> web.Response:
        topic = request.match_info.get("topic", self.default_topic)
        if topic not in self.grid.topic_ids:
            return _error(404, "NotFound", f"topic '{topic}' is not in the routing table")
        # A header's bytes that are not UTF-8 arrive as surrogate escapes: compare them as the bytes they were.
        given = request.headers.get("aeg-sas-key", "").encode("utf-8", "surrogateescape")
        if not given or not hmac.compare_digest(given, self.key.encode()):
            return _error(401, "Unauthorized", "the aeg-sas-key header is missing or does not match the topic key")
        try:
            events = parse_publish(await _read(request), request.headers.get("Content-Type"),
                                   self.grid.topic_ids[topic])
        except SchemaError as error:
            log.warning("rejected a publish to %s: %s", topic, error)
            return web.json_response(error.error_body(), status=error.status)
        await self.grid.publish(topic, events)
        return web.Response(status=200)
