"""The local online endpoints' front door: one aiohttp server on 127.0.0.1 serving every endpoint, as
Azure ML's endpoint gateway does.

    POST /endpoints/{endpoint}/score     Authorization: Bearer <endpoint key>
    GET  /endpoints/{endpoint}/metrics   same key; ?samples=true adds the latency samples

A scoring request goes to one deployment: the one named in the `azureml-model-deployment` header, or
one drawn by the endpoint's traffic weights. The body is forwarded untouched to that deployment's
inference server (`POST {url}/score`, with the server's own secret when it has one: the deployments
answer nobody else, see emulator/aml/guard.py) over pooled keep-alive connections, and the answer comes back
with `azureml-model-deployment` and `x-request-id` headers. The client for that is the small HTTP/1.1
one at the end of this module: ~95 µs of CPU per request where aiohttp's client took ~270 µs, which
was most of the router's own cost (bench/router.py measures the router). Like Azure: 401 without the
key, 404 for an unknown endpoint or deployment, 503 when no deployment takes traffic, 502 when the
deployment does not answer, 408 when it answers too late.

Per-deployment request metrics (count, status classes, latency samples in a bounded ring buffer) are
kept in memory: metrics(), samples(), and the /metrics route. The endpoint stand-in configures the
router from Python (set_endpoint / remove_endpoint); there is no HTTP configuration API.

The hot path does not parse the body. `on_scored` is the seam for what needs the bodies (data
collection, request ids for ground truth): it is called once per answered request, synchronously on
the event loop, and must only hand the work off (e.g. put on a queue).

Mirroring (Azure ML's mirror_traffic, shadow traffic): a request routed by the traffic weights (never
one that names its deployment in the header) is, with probability mirror%/100, also sent to the mirror
deployment by a background task, with the same x-request-id and the header `x-mirrored-request: true`.
The client's answer never waits for it; the mirrored answer is discarded, but it is recorded in the
mirror deployment's own metrics (Sample.mirrored, the `mirrored` count) and handed to `on_scored` for
that deployment, so a canary judge sees the shadow's errors, latency and predictions. At most
`max_mirrors` copies are in flight; copies beyond that are dropped and counted (`mirror_dropped`), so a
slow shadow cannot exhaust memory or connections. The endpoint's own totals count client answers only.

Configuration changes are atomic: set_endpoint builds a new immutable EndpointConfig and swaps it in
with one dict assignment; a request reads the config once, so requests in flight finish on the
deployment they were routed to while new ones use the new weights.
"""
from __future__ import annotations

import asyncio
import bisect
import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from aiohttp import web

from emulator import faults
from emulator.aml.deployment_stats import STATUS_CLASSES, DeploymentStats, Sample, status_class
from emulator.aml.guard import DEPLOYMENT_SECRET_HEADER
from emulator.aml.upstream import Upstream

log = logging.getLogger("emulator.aml.router")

DEPLOYMENT_HEADER = "azureml-model-deployment"
MIRROR_HEADER = "x-mirrored-request"       # marks the copies sent to the mirror deployment (this router's own)
MIRROR_FIELD = f"{MIRROR_HEADER}: true\r\n".encode()
MAX_BODY = 64 * 1024 * 1024
MAX_REQUEST_ID = 100          # the inference server refuses longer x-request-id values (431)

# on_scored(endpoint, deployment, request_body, response_body, status, latency_s, request_id)
OnScored = Callable[[str, str, bytes, bytes, int, float, str], None]


class Route(NamedTuple):
    name: str
    score_url: str
    stats: DeploymentStats
    upstream: Upstream                               # the pooled connections to its inference server
    head: bytes                                      # b"POST {path}/score HTTP/1.1\r\nHost: ...\r\n" + secret


@dataclass(frozen=True)
class EndpointConfig:
    """One endpoint's routing, never changed once built (set_endpoint swaps in a new one)."""
    name: str
    key: str
    routes: Mapping[str, Route]                      # deployments that have a server
    traffic: Mapping[str, int]
    mirror_traffic: Mapping[str, int]
    totals: dict[str, int]                           # status classes of every answer, kept across updates
    bearer: bytes                                    # the Authorization header value that passes
    # the weighted draw: deployments that take traffic and have a server, with cumulative weights
    draw: tuple[Route, ...] = ()
    cumulative: tuple[int, ...] = ()
    mirror: Route | None = None                      # the mirror deployment, if it has a server
    mirror_share: float = 0.0                        # probability that a weight-routed request is mirrored


class Router:
    """One router for all local endpoints. Create it, serve make_app() on 127.0.0.1, then
    set_endpoint() as deployments come and go; close() when done."""

    def __init__(self, *, seed: int | None = None, latency_samples: int = 10_000,
                 request_timeout: float = 5.0, on_scored: OnScored | None = None, max_mirrors: int = 64) -> None:
        """request_timeout: seconds a deployment has to answer (Azure ML's request_settings
        request_timeout_ms, 5000 by default), else 408. latency_samples: ring buffer size per deployment.
        max_mirrors: mirrored copies in flight at most; more are dropped (and counted)."""
        self.on_scored = on_scored
        self._random = random.Random(seed)
        self._capacity = latency_samples
        self._timeout = request_timeout
        self._endpoints: dict[str, EndpointConfig] = {}
        self._stats: dict[tuple[str, str], DeploymentStats] = {}
        self._totals: dict[str, dict[str, int]] = {}
        self._upstreams: dict[tuple[str, int], Upstream] = {}   # kept across configurations, with their pools
        self._max_mirrors = max_mirrors
        self._mirrors: set[asyncio.Task] = set()     # strong references: the loop keeps only weak ones

    # -- configuration (any thread) ------------------------------------------------------------------
    def set_endpoint(self, name: str, key: str, deployments: Mapping[str, str], traffic: Mapping[str, int],
                     mirror_traffic: Mapping[str, int] | None = None,
                     deployment_secrets: Mapping[str, str] | None = None) -> None:
        """Route endpoint `name` (replacing its previous configuration). deployments: name → base URL of
        its inference server, for the deployments that are serving; traffic and mirror_traffic: Azure
        ML's percentages. A deployment with traffic but no server yet takes no requests: the others
        share its traffic in proportion, or the endpoint answers 503 if there are none.
        deployment_secrets: name → the secret its inference server requires (InferenceServer.secret),
        sent with every request to it, mirrored copies included."""
        if not key:
            raise ValueError(f"endpoint '{name}' needs a key")
        traffic = {d: int(w) for d, w in traffic.items()}
        mirror = {d: int(w) for d, w in (mirror_traffic or {}).items() if int(w) > 0}
        _check_traffic(name, traffic, mirror)
        routes = {}
        for deployment, url in deployments.items():
            stats = self._stats.setdefault((name, deployment), DeploymentStats(self._capacity))
            secret = (deployment_secrets or {}).get(deployment, "")
            routes[deployment] = self._route(name, deployment, url, stats, secret)
        draw, cumulative, total = [], [], 0
        for deployment, weight in traffic.items():
            if weight > 0 and deployment in routes:
                total += weight
                draw.append(routes[deployment])
                cumulative.append(total)
        mirror_route, share = None, 0.0
        for deployment, weight in mirror.items():     # one at most (checked)
            if deployment in routes:
                mirror_route, share = routes[deployment], weight / 100
        totals = self._totals.setdefault(name, dict.fromkeys(STATUS_CLASSES, 0))
        config = EndpointConfig(name, key, MappingProxyType(routes), MappingProxyType(traffic),
                                MappingProxyType(mirror), totals, f"Bearer {key}".encode(), tuple(draw),
                                tuple(cumulative), mirror_route, share)
        self._endpoints[name] = config    # the swap: one assignment, atomic for the serving thread

    def _route(self, endpoint: str, deployment: str, url: str, stats: DeploymentStats, secret: str) -> Route:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"endpoint '{endpoint}': deployment '{deployment}' needs an http:// URL, not '{url}'")
        if not _safe(secret) or not secret.isascii():
            raise ValueError(f"endpoint '{endpoint}': deployment '{deployment}' has a secret that cannot be sent "
                             "in a header")
        port = parts.port or 80
        upstream = self._upstreams.setdefault((parts.hostname, port), Upstream(parts.hostname, port))
        path = parts.path.rstrip("/") + "/score"
        # the secret goes into the fixed head, built once per configuration: no cost per request
        head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode()
        if secret:
            head += f"{DEPLOYMENT_SECRET_HEADER}: {secret}\r\n".encode()
        return Route(deployment, f"http://{parts.netloc}{path}", stats, upstream, head)

    def remove_endpoint(self, name: str) -> None:
        """Stop routing `name` (its requests get 404) and forget its metrics."""
        self._endpoints.pop(name, None)
        self._totals.pop(name, None)
        for key in [k for k in self._stats if k[0] == name]:
            del self._stats[key]

    def endpoint(self, name: str) -> EndpointConfig | None:
        return self._endpoints.get(name)

    # -- metrics (any thread) --------------------------------------------------------------------------
    def metrics(self, endpoint: str, *, samples: bool = False) -> dict[str, Any]:
        """{"endpoint", "requests": status classes of every answer to a client (rejections included),
        "deployments": {name: {"requests", "status", "mirrored", "mirror_dropped",
        "latency_ms": {p50, p90, p95, p99}, "window"}}}. A deployment's requests include the mirrored
        copies it answered (`mirrored` of them); the endpoint's do not."""
        return {
            "endpoint": endpoint,
            "requests": dict(self._totals.get(endpoint, {})),
            "deployments": {d: stats.summary(samples) for (e, d), stats in list(self._stats.items()) if e == endpoint},
        }

    @property
    def mirrors_in_flight(self) -> int:
        """Mirrored copies sent and not answered yet (all endpoints)."""
        return len(self._mirrors)

    def samples(self, endpoint: str, deployment: str, since: float | None = None) -> list[Sample]:
        """The deployment's latency samples still in the ring buffer, optionally from `since` (time.time())."""
        stats = self._stats.get((endpoint, deployment))
        return stats.samples(since) if stats else []

    # -- serving ---------------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        """The router's aiohttp app. Serve it on 127.0.0.1 with `web.AppRunner(app, access_log=None)`:
        an access log line per request costs more than the routing itself."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/endpoints/{endpoint}/score", self.score)
        app.router.add_get("/endpoints/{endpoint}/metrics", self._metrics_route)
        app.router.add_get("/", self._home)
        return app

    async def close(self) -> None:
        for task in list(self._mirrors):
            task.cancel()
        await asyncio.gather(*self._mirrors, return_exceptions=True)
        for upstream in list(self._upstreams.values()):
            upstream.close()

    async def _home(self, request: web.Request) -> web.Response:
        return web.Response(text="Local online endpoints router is running")

    async def score(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        name = request.match_info["endpoint"]
        config = self._endpoints.get(name)       # read once: a concurrent set_endpoint swaps in a new one
        if config is None:
            return _error(404, f"endpoint '{name}' does not exist")
        totals = config.totals
        headers = request.headers
        if not _authorized(headers.get("Authorization"), config):
            totals["4xx"] += 1
            return _error(401, f"missing or wrong key for endpoint '{name}': send 'Authorization: Bearer <key>'")

        mirror = None
        wanted = headers.get(DEPLOYMENT_HEADER)
        if wanted:
            faults.reached("deployment.smoke", wanted)     # pinned requests: a rollout's smoke test
            route = config.routes.get(wanted)
            if route is None:
                totals["4xx"] += 1
                known = ", ".join(f"'{d}'" for d in config.routes) or "none"
                return _error(404, f"deployment '{wanted}' of endpoint '{name}' does not exist or is not "
                                   f"serving (serving: {known})")
        elif config.draw:
            if len(config.draw) == 1:
                route = config.draw[0]
            else:
                point = self._random.random() * config.cumulative[-1]
                route = config.draw[bisect.bisect_right(config.cumulative, point)]
            if config.mirror is not None and self._random.random() < config.mirror_share:
                mirror = config.mirror
        else:
            totals["5xx"] += 1
            return _error(503, f"no deployment of endpoint '{name}' takes traffic: set the endpoint's traffic "
                               f"(or name a deployment in the '{DEPLOYMENT_HEADER}' header)")

        client_id = headers.get("x-ms-client-request-id")
        request_id = headers.get("x-request-id") or client_id
        if not request_id or len(request_id) > MAX_REQUEST_ID or not _safe(request_id):
            request_id = _new_request_id()
        content_type = headers.get("Content-Type")
        # the request's header fields after Host, the same for a mirrored copy
        fields = b"Content-Type: %s\r\nx-request-id: %s\r\n" % (
            _encode(content_type) if content_type and _safe(content_type) else b"application/json",
            _encode(request_id))
        if client_id and len(client_id) <= MAX_REQUEST_ID and _safe(client_id):
            fields += b"x-ms-client-request-id: %s\r\n" % _encode(client_id)
        else:
            client_id = None

        body = await request.read()
        fields += b"Content-Length: %d\r\n\r\n" % len(body)
        if mirror is not None:
            self._mirror(name, mirror, body, fields, request_id, started)
        status, content_type, payload = await self._forward(name, route, route.head + fields + body)
        latency = time.perf_counter() - started
        route.stats.record(status, latency * 1000, time.time())
        totals[status_class(status)] += 1
        if self.on_scored is not None:
            try:
                self.on_scored(name, route.name, body, payload, status, latency, request_id)
            except Exception:
                log.exception("on_scored failed for %s/%s", name, route.name)
        response_headers = {"Content-Type": content_type, DEPLOYMENT_HEADER: route.name, "x-request-id": request_id}
        if client_id:
            response_headers["x-ms-client-request-id"] = client_id
        return web.Response(body=payload, status=status, headers=response_headers)

    async def _forward(self, name: str, route: Route, data: bytes) -> tuple[int, str, bytes]:
        """Send the request (head and body) to the deployment: (status, content type, body) of its answer,
        408 if it does not answer in time, 502 if it cannot be reached or its answer is not HTTP."""
        try:
            async with asyncio.timeout(self._timeout):
                return await route.upstream.send(data)
        except TimeoutError:
            return 408, "application/json", _error_body(
                f"deployment '{route.name}' of endpoint '{name}' did not answer within {self._timeout:g} s")
        except (OSError, ValueError) as error:     # refused, reset, closed early; ValueError: not HTTP
            return 502, "application/json", _error_body(
                f"deployment '{route.name}' of endpoint '{name}' is not reachable: {type(error).__name__}: {error}")

    # -- mirroring -------------------------------------------------------------------------------------
    def _mirror(self, name: str, route: Route, body: bytes, fields: bytes, request_id: str, started: float) -> None:
        """Send a copy to the mirror deployment in the background, unless too many are in flight."""
        if len(self._mirrors) >= self._max_mirrors:
            route.stats.drop_mirror()
            return
        data = b"".join((route.head, MIRROR_FIELD, fields, body))
        task = asyncio.get_running_loop().create_task(self._send_mirror(name, route, body, data, request_id, started))
        self._mirrors.add(task)
        task.add_done_callback(self._mirrors.discard)

    async def _send_mirror(self, name: str, route: Route, body: bytes, data: bytes, request_id: str,
                           started: float) -> None:
        try:
            status, _, payload = await self._forward(name, route, data)
            latency = time.perf_counter() - started
            route.stats.record(status, latency * 1000, time.time(), mirrored=True)
            if self.on_scored is not None:
                self.on_scored(name, route.name, body, payload, status, latency, request_id)
        except Exception:    # a mirror's failure is never the client's: log it and move on
            log.exception("mirroring a request of %s to %s failed", name, route.name)

    async def _metrics_route(self, request: web.Request) -> web.Response:
        name = request.match_info["endpoint"]
        config = self._endpoints.get(name)
        if config is None:
            return _error(404, f"endpoint '{name}' does not exist")
        if not _authorized(request.headers.get("Authorization"), config):
            return _error(401, f"missing or wrong key for endpoint '{name}': send 'Authorization: Bearer <key>'")
        with_samples = request.query.get("samples", "").lower() in ("1", "true", "yes")
        return web.json_response(self.metrics(name, samples=with_samples))


_ids = random.Random()     # request ids need to be unique, not unpredictable: 1.5 µs instead of uuid4's 9


def _new_request_id() -> str:
    """A random UUID (version 4) string."""
    h = f"{_ids.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _encode(value: str) -> bytes:
    """A header value as it came on the wire (aiohttp decodes them as UTF-8 with surrogateescape)."""
    return value.encode("utf-8", "surrogateescape")


def _safe(value: str) -> bool:
    """No line breaks: a header value that can be forwarded verbatim."""
    return "\r" not in value and "\n" not in value and "\0" not in value


def _authorized(given: str | None, config: EndpointConfig) -> bool:
    if not given:
        return False
    try:
        return hmac.compare_digest(given.strip().encode(), config.bearer)
    except UnicodeError:
        return False


def _check_traffic(name: str, traffic: dict[str, int], mirror: dict[str, int]) -> None:
    """Azure ML's rules: percentages 0-100 adding up to 100 (or 0); mirror at most 50%, to one
    deployment that takes no live traffic."""
    if any(w < 0 or w > 100 for w in (*traffic.values(), *mirror.values())):
        raise ValueError(f"endpoint '{name}': traffic percentages must be between 0 and 100: {traffic} {mirror}")
    total = sum(traffic.values())
    if total not in (0, 100):
        raise ValueError(f"endpoint '{name}': traffic must add up to 100 (or 0), not {total}: {traffic}")
    if len(mirror) > 1:
        raise ValueError(f"endpoint '{name}': mirror traffic can go to one deployment only: {mirror}")
    for deployment, share in mirror.items():
        if share > 50:
            raise ValueError(f"endpoint '{name}': at most 50% can be mirrored, not {share}% to '{deployment}'")
        if traffic.get(deployment, 0) > 0:
            raise ValueError(f"endpoint '{name}': deployment '{deployment}' takes live traffic, "
                             "so it cannot also receive mirrored traffic")


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _error(status: int, message: str) -> web.Response:
    return web.Response(body=_error_body(message), status=status, content_type="application/json")


