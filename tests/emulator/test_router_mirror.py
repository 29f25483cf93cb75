"""Mirroring (Azure ML's mirror_traffic) in the endpoint router, over real loopback HTTP, with small
aiohttp upstreams standing in for the deployments where the model does not matter (the same with real
inference servers is in test_serving.py)."""
from __future__ import annotations

import asyncio
import socket
import statistics
import time
from dataclasses import dataclass, field

import pytest
import requests
from aiohttp import web

from emulator.aml.guard import DEPLOYMENT_SECRET_HEADER
from emulator.aml.router import MIRROR_HEADER, Router
from emulator.loop import BackgroundLoop
from tests.conftest import wait_until

KEY = "mirror-key"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
BODY = b'{"data": [{"x": 1}]}'


@dataclass
class Upstream:
    """A deployment stand-in: answers {"deployment": name} after `delay` s, remembers what it got."""
    name: str
    delay: float = 0.0
    seen: list[dict] = field(default_factory=list)
    url: str = ""

    async def score(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append({"request_id": request.headers.get("x-request-id"),
                          "mirrored": request.headers.get(MIRROR_HEADER), "body": body,
                          "secret": request.headers.get(DEPLOYMENT_SECRET_HEADER)})
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({"deployment": self.name})


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    # handler_cancellation: a slow upstream stops when the router gives up (closes the connection)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


class Stack:
    """A router and its upstreams on one background loop."""

    def __init__(self, loop: BackgroundLoop) -> None:
        self.loop = loop
        self.runners: list[web.AppRunner] = []
        self.routers: list[Router] = []

    def upstream(self, name: str, delay: float = 0.0) -> Upstream:
        upstream = Upstream(name, delay)
        app = web.Application()
        app.router.add_post("/score", upstream.score)
        runner, upstream.url = self.loop.run(_serve(app))
        self.runners.append(runner)
        return upstream

    def router(self, **options) -> Router:
        router = Router(seed=11, **options)
        runner, router.url = self.loop.run(_serve(router.make_app()))
        self.runners.append(runner)
        self.routers.append(router)
        return router

    def close(self) -> None:
        for router in self.routers:
            self.loop.run(router.close())
        for runner in reversed(self.runners):
            self.loop.run(runner.cleanup())


@pytest.fixture
def stack():
    with BackgroundLoop("test-mirror") as loop:
        built = Stack(loop)
        yield built
        built.close()


def send(router: Router, endpoint: str, n: int, headers=None) -> list[requests.Response]:
    with requests.Session() as session:
        return [session.post(f"{router.url}/endpoints/{endpoint}/score", data=BODY, headers=headers or AUTH, timeout=10)
                for _ in range(n)]


def settled(router: Router) -> None:
    wait_until(lambda: router.mirrors_in_flight == 0, timeout=15, what="the mirrored requests to finish")


def test_a_share_of_the_traffic_is_mirrored_and_the_client_sees_only_live_answers(stack):
    blue, green = stack.upstream("blue"), stack.upstream("green")
    router = stack.router()
    scored = []
    router.on_scored = lambda *args: scored.append(args)
    router.set_endpoint("shadowed", KEY, {"blue": blue.url, "green": green.url}, {"blue": 100},
                        mirror_traffic={"green": 20},
                        deployment_secrets={"blue": "blue-secret", "green": "green-secret"})

    answers = send(router, "shadowed", 300)
    settled(router)
    assert all(a.status_code == 200 and a.json() == {"deployment": "blue"} for a in answers)
    assert {a.headers["azureml-model-deployment"] for a in answers} == {"blue"}
    assert len(blue.seen) == 300 and not any(s["mirrored"] for s in blue.seen)
    assert 32 <= len(green.seen) <= 88, len(green.seen)      # 60 expected; ±4 standard deviations

    # a mirrored copy: the same body and x-request-id as the client's request, marked as mirrored
    client_ids = {a.headers["x-request-id"] for a in answers}
    assert all(s["mirrored"] == "true" and s["body"] == BODY and s["request_id"] in client_ids for s in green.seen)
    # each deployment gets its own server's secret, the mirrored copies too (a local deployment answers nobody else)
    assert {s["secret"] for s in blue.seen} == {"blue-secret"} and {s["secret"] for s in green.seen} == {"green-secret"}

    metrics = router.metrics("shadowed")
    mirrored = len(green.seen)
    assert metrics["deployments"]["green"]["requests"] == mirrored
    assert metrics["deployments"]["green"]["mirrored"] == mirrored
    assert metrics["deployments"]["green"]["status"]["2xx"] == mirrored
    assert metrics["deployments"]["green"]["mirror_dropped"] == 0
    assert metrics["deployments"]["green"]["latency_ms"]["p50"] > 0
    assert metrics["deployments"]["blue"]["requests"] == 300 and metrics["deployments"]["blue"]["mirrored"] == 0
    assert metrics["requests"]["2xx"] == 300                 # the endpoint counts its clients' answers only
    samples = router.samples("shadowed", "green")
    assert len(samples) == mirrored and all(s.mirrored for s in samples)
    assert not any(s.mirrored for s in router.samples("shadowed", "blue"))

    # on_scored sees the mirror deployment's answers too, under its own name and the client's request id
    shadow = [s for s in scored if s[1] == "green"]
    assert len(shadow) == mirrored and len(scored) == 300 + mirrored
    assert all(s[2] == BODY and s[3] == b'{"deployment": "green"}' and s[4] == 200 and s[6] in client_ids
               for s in shadow)


def test_requests_that_name_a_deployment_are_never_mirrored(stack):
    blue, green = stack.upstream("blue"), stack.upstream("green")
    router = stack.router()
    router.set_endpoint("named", KEY, {"blue": blue.url, "green": green.url}, {"blue": 100},
                        mirror_traffic={"green": 50})
    answers = send(router, "named", 100, headers={**AUTH, "azureml-model-deployment": "blue"})
    smoke = send(router, "named", 5, headers={**AUTH, "azureml-model-deployment": "green"})
    settled(router)
    assert all(a.headers["azureml-model-deployment"] == "blue" for a in answers)
    assert len(blue.seen) == 100
    # the smoke tests reach green themselves, unmarked, and are not counted as mirrored
    assert [s["mirrored"] for s in green.seen] == [None] * 5
    assert all(a.json() == {"deployment": "green"} for a in smoke)
    green_metrics = router.metrics("named")["deployments"]["green"]
    assert green_metrics["requests"] == 5 and green_metrics["mirrored"] == 0


def test_a_mirror_deployment_that_is_down_changes_nothing_for_the_client(stack):
    blue = stack.upstream("blue")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    router = stack.router()
    router.set_endpoint("down-mirror", KEY, {"blue": blue.url, "green": closed}, {"blue": 100},
                        mirror_traffic={"green": 50})
    answers = send(router, "down-mirror", 100)
    settled(router)
    assert [a.status_code for a in answers] == [200] * 100
    green = router.metrics("down-mirror")["deployments"]["green"]
    assert 20 <= green["mirrored"] <= 80 and green["status"]["5xx"] == green["mirrored"] == green["requests"]
    assert router.metrics("down-mirror")["requests"] == {"2xx": 100, "3xx": 0, "4xx": 0, "5xx": 0}


def test_a_slow_mirror_deployment_does_not_slow_the_client(stack):
    blue, green = stack.upstream("blue"), stack.upstream("green", delay=2.0)
    router = stack.router(request_timeout=1.0)
    router.set_endpoint("plain", KEY, {"blue": blue.url}, {"blue": 100})
    router.set_endpoint("slow-mirror", KEY, {"blue": blue.url, "green": green.url}, {"blue": 100},
                        mirror_traffic={"green": 50})
    send(router, "plain", 20)                                   # warm the connections
    baseline = _timed(router, "plain", 100)
    mirrored = _timed(router, "slow-mirror", 100)
    assert max(mirrored) < 0.5, max(mirrored)                  # nobody waited for the 2 s shadow
    assert statistics.median(mirrored) < statistics.median(baseline) + 0.005, (
        statistics.median(baseline), statistics.median(mirrored))
    settled(router)
    green_metrics = router.metrics("slow-mirror")["deployments"]["green"]
    # the shadow answers too late: each copy is a 408 in its own metrics, never the client's
    assert green_metrics["mirrored"] >= 20 and green_metrics["status"]["4xx"] == green_metrics["mirrored"]
    assert router.metrics("slow-mirror")["requests"]["2xx"] == 100


def test_mirrored_copies_beyond_the_in_flight_bound_are_dropped_and_counted(stack):
    blue, green = stack.upstream("blue"), stack.upstream("green", delay=0.5)
    router = stack.router(max_mirrors=3)
    router.set_endpoint("bounded", KEY, {"blue": blue.url, "green": green.url}, {"blue": 100},
                        mirror_traffic={"green": 50})
    answers = send(router, "bounded", 60)
    assert router.mirrors_in_flight <= 3
    settled(router)
    assert all(a.status_code == 200 for a in answers)
    green_metrics = router.metrics("bounded")["deployments"]["green"]
    drawn = green_metrics["mirrored"] + green_metrics["mirror_dropped"]
    assert 12 <= drawn <= 48, drawn                           # 30 expected; ±4 standard deviations
    assert green_metrics["mirror_dropped"] > 0 and green_metrics["mirrored"] == len(green.seen)


def test_closing_the_router_cancels_the_mirrors_in_flight(stack):
    blue, green = stack.upstream("blue"), stack.upstream("green", delay=30)
    router = stack.router(request_timeout=60)
    router.set_endpoint("closing", KEY, {"blue": blue.url, "green": green.url}, {"blue": 100},
                        mirror_traffic={"green": 50})
    send(router, "closing", 20)
    assert router.mirrors_in_flight > 0
    started = time.monotonic()
    stack.loop.run(router.close())
    assert router.mirrors_in_flight == 0 and time.monotonic() - started < 2


def test_a_mirror_deployment_without_a_server_yet_is_not_mirrored_to(stack):
    blue = stack.upstream("blue")
    router = stack.router()
    router.set_endpoint("pending", KEY, {"blue": blue.url}, {"blue": 100}, mirror_traffic={"green": 50})
    assert [a.status_code for a in send(router, "pending", 20)] == [200] * 20
    assert router.mirrors_in_flight == 0 and "green" not in router.metrics("pending")["deployments"]
    assert router.endpoint("pending").mirror_traffic == {"green": 50}


def _timed(router: Router, endpoint: str, n: int) -> list[float]:
    latencies = []
    with requests.Session() as session:
        for _ in range(n):
            started = time.perf_counter()
            answer = session.post(f"{router.url}/endpoints/{endpoint}/score", data=BODY, headers=AUTH, timeout=10)
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200 and answer.headers["azureml-model-deployment"] == "blue"
    return latencies
