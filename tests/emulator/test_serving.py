"""One local deployment (azureml-inference-server-http under gunicorn on 127.0.0.1, serving
deployment/score.py) and the endpoint router in front of two of them, over real loopback HTTP."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from aiohttp import web

from emulator.aml.router import Router
from emulator.aml.serving import InferenceServer, ServingError
from emulator.loop import BackgroundLoop
from emulator.loopback import serve_on_loopback
from tests.conftest import wait_until
from tests.deployment.sample_model import build_model

pytestmark = pytest.mark.stack      # inference server processes

ROW = {"age": 42, "income": 51_000.5, "plan": "basic", "tenure_months": 3, "has_partner": False}
BODY = json.dumps({"data": [ROW]})
KEY = "endpoint-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """blue serves churn:1 and green churn:2 (the same model folder, told apart by name)."""
    tmp = tmp_path_factory.mktemp("serving")
    model = build_model(tmp / "model")
    running = {"blue": InferenceServer(tmp / "blue.log", workers=1),
               "green": InferenceServer(tmp / "green.log", workers=1)}
    try:
        for version, server in enumerate(running.values(), start=1):
            server.start(model, name="churn", version=version)
        for server in running.values():   # both load at once
            server.wait_ready(120)
        yield running
    finally:
        for server in running.values():
            server.stop()


@pytest.fixture(scope="module")
def router(servers):
    loop = BackgroundLoop("test-router")
    router = Router(seed=7)
    runner, url = loop.run(serve_on_loopback(router.make_app()))
    router.url = url
    yield router
    loop.run(runner.cleanup())
    loop.run(router.close())
    loop.close()


def urls(servers) -> dict[str, str]:
    return {name: server.url for name, server in servers.items()}


def secrets_of(servers) -> dict[str, str]:
    """What each server requires in every request: without it, it answers 401 to anyone, the router too."""
    return {name: server.secret for name, server in servers.items()}


def score(router, endpoint: str, body: str = BODY, headers=None, session=requests) -> requests.Response:
    return session.post(f"{router.url}/endpoints/{endpoint}/score", data=body,
                        headers=AUTH if headers is None else headers, timeout=30)


# -- the inference server -------------------------------------------------------------------------------

def test_server_scores_on_loopback_only(servers):
    blue = servers["blue"]
    assert blue.alive and blue.pid and blue.worker_pids()
    assert blue.url.startswith("http://127.0.0.1:")
    port = int(blue.url.rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"127.0.0.1"}

    assert requests.get(blue.url + "/", headers=blue.headers, timeout=5).text == "Healthy"
    answer = requests.post(blue.url + "/score", data=BODY, headers={"Content-Type": "application/json", **blue.headers},
                           timeout=30)
    assert answer.status_code == 200
    assert answer.json()["predictions"] == ["churn"] and answer.json()["model"] == "churn:1"

    bad = requests.post(blue.url + "/score", data=json.dumps({"data": [{**ROW, "age": "old"}]}), timeout=30,
                        headers={"Content-Type": "application/json", **blue.headers})
    assert bad.status_code == 400
    assert bad.json() == {"error": "row 0, column 'age': \"old\" is not a number (the column's type is long)"}


def test_server_answers_only_requests_with_its_own_secret(router, servers):
    """Straight to the deployment's port, skipping the router (its key check and its traffic records): 401,
    and the inference server never sees the request. Through the router: 200."""
    blue, green = servers["blue"], servers["green"]
    assert blue.secret and green.secret and blue.secret != green.secret       # one per server
    router.set_endpoint("guarded", KEY, urls(servers), {"blue": 100}, deployment_secrets=secrets_of(servers))
    before = router.metrics("guarded")["deployments"]["blue"]["requests"]
    invalid = json.dumps({"data": [{**ROW, "age": "old"}]})     # the inference server would answer 400
    json_type = {"Content-Type": "application/json"}
    for headers in ({}, {"x-mlops-deployment-secret": "guess"}, green.headers,
                    {"x-mlops-deployment-secret": blue.secret[:-1]}, {"x-mlops-deployment-secret": ""}):
        for body in (BODY, invalid):
            direct = requests.post(blue.url + "/score", data=body, headers={**json_type, **headers}, timeout=30)
            assert direct.status_code == 401, (headers, direct.text)
            assert "answers only the local endpoint router" in direct.json()["error"]
            assert "predictions" not in direct.text and "column 'age'" not in direct.text
        health = requests.get(blue.url + "/", headers=headers, timeout=5)
        assert health.status_code == 401 and health.text != "Healthy"
    assert router.metrics("guarded")["deployments"]["blue"]["requests"] == before     # the router saw none of it

    routed = score(router, "guarded")
    assert routed.status_code == 200 and routed.json()["model"] == "churn:1"
    assert router.metrics("guarded")["deployments"]["blue"]["requests"] == before + 1
    # the router without the secret is refused like anyone else
    router.set_endpoint("unguarded", KEY, urls(servers), {"blue": 100})
    refused = score(router, "unguarded")
    assert refused.status_code == 401 and "answers only the local endpoint router" in refused.json()["error"]


def test_the_guard_hides_the_secret_and_refuses_to_run_without_one(monkeypatch):
    """score.py's run(request_headers=...) does not get the secret, and the app gunicorn loads does not
    exist without a secret in the environment (a deployment never serves unguarded)."""
    from emulator.aml.guard import DEPLOYMENT_SECRET_ENV, create_app, guarded
    seen = {}

    def inner(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = guarded(inner, "s3cret")
    statuses = []
    body = app({"HTTP_X_MLOPS_DEPLOYMENT_SECRET": "s3cret", "PATH_INFO": "/"}, lambda s, h: statuses.append(s))
    assert body == [b"ok"] and statuses == ["200 OK"] and "HTTP_X_MLOPS_DEPLOYMENT_SECRET" not in seen
    assert app({"HTTP_X_MLOPS_DEPLOYMENT_SECRET": "s3cre\u00e9"}, lambda s, h: statuses.append(s)) != [b"ok"]
    assert statuses[-1].startswith("401")
    with pytest.raises(ValueError):
        guarded(inner, "")
    monkeypatch.delenv(DEPLOYMENT_SECRET_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"{DEPLOYMENT_SECRET_ENV} is not set"):
        create_app()


def test_server_that_cannot_load_its_model_fails_with_the_log(tmp_path):
    (tmp_path / "empty").mkdir()
    server = InferenceServer(tmp_path / "broken.log", workers=1)
    server.start(tmp_path / "empty", name="nothing", version=1)
    try:
        with pytest.raises(ServingError,
                           match="exited with code 3 during start-up: RuntimeError: no MLflow model under"):
            server.wait_ready(60)
        assert not server.alive
    finally:
        server.stop()


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


# -- the router -----------------------------------------------------------------------------------------

def test_router_requires_the_endpoint_key(router, servers):
    router.set_endpoint("keyed", KEY, urls(servers), {"blue": 100}, deployment_secrets=secrets_of(servers))
    assert score(router, "keyed", headers={}).status_code == 401
    wrong = score(router, "keyed", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "Authorization: Bearer" in wrong.json()["error"]
    assert score(router, "unknown-endpoint").status_code == 404
    ok = score(router, "keyed")
    assert ok.status_code == 200 and ok.json()["model"] == "churn:1"
    assert ok.headers["azureml-model-deployment"] == "blue"


def test_router_splits_traffic_by_weight(router, servers):
    router.set_endpoint("split", KEY, urls(servers), {"blue": 80, "green": 20}, deployment_secrets=secrets_of(servers))
    counts = {"blue": 0, "green": 0}
    with requests.Session() as session:
        for _ in range(200):
            answer = score(router, "split", session=session)
            assert answer.status_code == 200
            deployment = answer.headers["azureml-model-deployment"]
            assert answer.json()["model"] == {"blue": "churn:1", "green": "churn:2"}[deployment]
            counts[deployment] += 1
    assert 137 <= counts["blue"] <= 183, counts      # 160 expected; ±4 standard deviations
    metrics = router.metrics("split")
    assert {d: m["requests"] for d, m in metrics["deployments"].items()} == counts
    assert metrics["deployments"]["blue"]["status"]["2xx"] == counts["blue"]
    assert metrics["deployments"]["blue"]["latency_ms"]["p50"] > 0


def test_header_names_the_deployment_even_without_traffic(router, servers):
    router.set_endpoint("header", KEY, urls(servers), {"blue": 100}, deployment_secrets=secrets_of(servers))
    for _ in range(5):
        answer = score(router, "header", headers={**AUTH, "azureml-model-deployment": "green"})
        assert answer.headers["azureml-model-deployment"] == "green" and answer.json()["model"] == "churn:2"
    missing = score(router, "header", headers={**AUTH, "azureml-model-deployment": "purple"})
    assert missing.status_code == 404 and "'purple'" in missing.json()["error"]


def test_no_deployment_with_traffic_is_503(router, servers):
    router.set_endpoint("idle", KEY, urls(servers), {}, deployment_secrets=secrets_of(servers))
    answer = score(router, "idle")
    assert answer.status_code == 503
    assert "no deployment of endpoint 'idle' takes traffic" in answer.json()["error"]
    # a deployment with traffic that is not serving yet takes none: the others share it
    router.set_endpoint("half-ready", KEY, {"blue": servers["blue"].url}, {"blue": 50, "green": 50},
                        deployment_secrets=secrets_of(servers))
    assert {score(router, "half-ready").headers["azureml-model-deployment"] for _ in range(6)} == {"blue"}


def test_deployment_down_is_502_and_counted(router):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    router.set_endpoint("down", KEY, {"blue": f"http://127.0.0.1:{closed_port}"}, {"blue": 100})
    answer = score(router, "down")
    assert answer.status_code == 502
    assert "deployment 'blue' of endpoint 'down' is not reachable" in answer.json()["error"]
    assert router.metrics("down")["deployments"]["blue"]["status"]["5xx"] == 1


def test_slow_deployment_is_408(servers):
    loop = BackgroundLoop("test-slow")

    async def slow(request):
        await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/score", slow)
    impatient = Router(request_timeout=0.3)
    try:
        upstream, upstream_url = loop.run(serve_on_loopback(app))
        front, impatient.url = loop.run(serve_on_loopback(impatient.make_app()))
        impatient.set_endpoint("slow", KEY, {"blue": upstream_url}, {"blue": 100})
        answer = score(impatient, "slow")
        assert answer.status_code == 408 and "did not answer within" in answer.json()["error"]
        loop.run(front.cleanup())
        loop.run(upstream.cleanup())
        loop.run(impatient.close())
    finally:
        loop.close()


def test_request_ids_bad_input_metrics_route_and_on_scored(router, servers):
    router.set_endpoint("observed", KEY, urls(servers), {"green": 100}, deployment_secrets=secrets_of(servers))
    seen = []
    router.on_scored = lambda *args: seen.append(args)
    try:
        given = score(router, "observed", headers={**AUTH, "x-request-id": "req-123"})
        generated = score(router, "observed")
        bad = score(router, "observed", body=json.dumps({"data": [{"age": 1}]}))
    finally:
        router.on_scored = None
    assert given.headers["x-request-id"] == "req-123"
    assert len(generated.headers["x-request-id"]) == 36          # a uuid4, one per request
    assert bad.status_code == 400 and "missing column(s)" in bad.json()["error"]

    endpoint, deployment, request_body, response_body, status, latency, request_id = seen[0]
    assert (endpoint, deployment, status, request_id) == ("observed", "green", 200, "req-123")
    assert request_body == BODY.encode() and json.loads(response_body)["model"] == "churn:2"
    assert 0 < latency < 30 and [s[4] for s in seen] == [200, 200, 400]

    assert requests.get(f"{router.url}/endpoints/observed/metrics", timeout=5).status_code == 401
    metrics = requests.get(f"{router.url}/endpoints/observed/metrics?samples=true", headers=AUTH, timeout=5).json()
    green = metrics["deployments"]["green"]
    assert green["requests"] == 3 and green["status"] == {"2xx": 2, "3xx": 0, "4xx": 1, "5xx": 0}
    assert [s[2] for s in green["samples"]] == [200, 200, 400]
    assert metrics["requests"]["2xx"] == 2
    assert [s.status for s in router.samples("observed", "green")] == [200, 200, 400]


def test_configuration_follows_azure_rules(router, servers):
    with pytest.raises(ValueError, match="add up to 100"):
        router.set_endpoint("rules", KEY, urls(servers), {"blue": 80, "green": 10})
    with pytest.raises(ValueError, match="at most 50%"):
        router.set_endpoint("rules", KEY, urls(servers), {"blue": 100}, mirror_traffic={"green": 60})
    with pytest.raises(ValueError, match="takes live traffic"):
        router.set_endpoint("rules", KEY, urls(servers), {"blue": 100}, mirror_traffic={"blue": 10})
    with pytest.raises(ValueError, match="needs an http:// URL"):
        router.set_endpoint("rules", KEY, {"blue": "https://127.0.0.1:1"}, {"blue": 100})
    router.set_endpoint("rules", KEY, urls(servers), {"blue": 100}, mirror_traffic={"green": 10})
    assert router.endpoint("rules").mirror_traffic == {"green": 10}
    with pytest.raises(TypeError):      # the configuration is immutable: set_endpoint swaps in a new one
        router.endpoint("rules").traffic["green"] = 50
    router.remove_endpoint("rules")
    assert score(router, "rules").status_code == 404


# -- mirroring and traffic shifts with real inference servers -------------------------------------------

def test_mirrored_traffic_reaches_the_shadow_model_and_only_the_live_answer_the_client(router, servers):
    router.set_endpoint("shadow", KEY, urls(servers), {"blue": 100}, mirror_traffic={"green": 20},
                        deployment_secrets=secrets_of(servers))
    seen = []
    router.on_scored = lambda *args: seen.append(args)
    try:
        with requests.Session() as session:
            answers = [score(router, "shadow", session=session) for _ in range(300)]
        wait_until(lambda: router.mirrors_in_flight == 0, timeout=30, what="the mirrored requests to finish")
    finally:
        router.on_scored = None
    assert all(a.status_code == 200 and a.json()["model"] == "churn:1" for a in answers)
    assert {a.headers["azureml-model-deployment"] for a in answers} == {"blue"}

    metrics = router.metrics("shadow")["deployments"]
    mirrored = metrics["green"]["mirrored"]
    assert 32 <= mirrored <= 88, mirrored                   # 60 expected; ±4 standard deviations
    assert metrics["green"]["requests"] == mirrored and metrics["green"]["status"]["2xx"] == mirrored
    assert metrics["blue"]["requests"] == 300 and metrics["blue"]["mirrored"] == 0
    # the shadow model's own predictions reach on_scored, under the client's request id
    shadow = [s for s in seen if s[1] == "green"]
    assert len(shadow) == mirrored
    assert all(json.loads(s[3])["model"] == "churn:2" and s[4] == 200 for s in shadow)
    assert {s[6] for s in shadow} <= {a.headers["x-request-id"] for a in answers}


def test_shifting_traffic_under_load_drops_no_request(router, servers):
    """Clients send without pause while the weights (and the serving set) change many times."""
    steps = [({"blue": 100, "green": 0}, urls(servers)), ({"blue": 90, "green": 10}, urls(servers)),
             ({"blue": 50, "green": 50}, urls(servers)), ({"blue": 0, "green": 100}, urls(servers)),
             ({"blue": 100}, {"blue": servers["blue"].url})]          # green leaves the serving set, then returns
    router.set_endpoint("shifting", KEY, *steps[0][::-1], deployment_secrets=secrets_of(servers))
    stop = threading.Event()
    answers: list[tuple[int, str, str]] = []

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                answer = score(router, "shifting", session=session)
                answers.append((answer.status_code, answer.headers.get("azureml-model-deployment", ""),
                                answer.json().get("model", answer.text)))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        for _ in range(6):
            for traffic, deployments in steps:
                router.set_endpoint("shifting", KEY, deployments, traffic, deployment_secrets=secrets_of(servers))
                time.sleep(0.08)
        router.set_endpoint("shifting", KEY, urls(servers), {"blue": 0, "green": 100},
                            deployment_secrets=secrets_of(servers))
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
    assert len(answers) > 100
    failed = [a for a in answers if a[0] != 200]
    assert not failed, failed[:5]
    assert all({"blue": "churn:1", "green": "churn:2"}[d] == model for _, d, model in answers)
    assert {d for _, d, _ in answers} == {"blue", "green"}
    # after the last shift, new requests go by the new weights only
    assert {score(router, "shifting").headers["azureml-model-deployment"] for _ in range(10)} == {"green"}


# -- the router's upstream client against hand-written HTTP answers ----------------------------------------

RAW_ANSWERS = {
    # path -> (what the upstream writes, in pieces; whether it closes the connection afterwards)
    "/chunked/score": ([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                        b"7\r\n{\"a\": 1\r\n", b"1;ext=1\r\n}\r\n", b"0\r\n", b"X-Trailer: t\r\n\r\n"], False),
    "/until-close/score": ([b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"all of ", b"it"], True),
    "/close/score": ([b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"], True),
    "/continue/score": ([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"], False),
    "/half/score": ([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"], True),
    "/garbage/score": ([b"hello there\r\n\r\n"], True),
}


class RawUpstream:
    """An HTTP server written by hand: answers per path as RAW_ANSWERS says; /echo/score sends the
    body back; /stale/score answers the first request of each connection and then drops the
    connection when the next one arrives, as a server does that closes an idle keep-alive connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.handlers: set[asyncio.Task] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.handlers.add(asyncio.current_task())
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                body = await reader.readexactly(length)
                served += 1
                if path == "/stale/score" and served > 1:
                    break
                if path in ("/echo/score", "/stale/score"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
                    continue
                pieces, close = RAW_ANSWERS[path]
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.handlers.discard(asyncio.current_task())

    async def stop(self, server: asyncio.Server) -> None:
        server.close()
        for task in list(self.handlers):     # the ones waiting on the router's idle keep-alive connections
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


@pytest.fixture(scope="module")
def raw(router):
    loop = BackgroundLoop("test-raw")
    upstream = RawUpstream()

    async def start():
        return await asyncio.start_server(upstream.handle, "127.0.0.1", 0)

    server = loop.run(start())
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    router.set_endpoint("raw", KEY, {kind: f"{base}/{kind}" for kind in
                                     ("chunked", "until-close", "close", "continue", "half", "garbage", "echo",
                                      "stale")},
                        {"echo": 100})
    yield upstream
    loop.run(upstream.stop(server))
    loop.close()


def raw_score(router, kind: str, body: bytes = b"{}") -> requests.Response:
    return score(router, "raw", body=body, headers={**AUTH, "azureml-model-deployment": kind})


def test_router_reads_every_way_an_answer_can_end(router, raw):
    chunked = raw_score(router, "chunked")
    assert chunked.status_code == 200 and chunked.content == b'{"a": 1}'
    assert chunked.headers["Content-Type"] == "application/json"
    until_close = raw_score(router, "until-close")
    assert until_close.status_code == 200 and until_close.text == "all of it"
    assert until_close.headers["Content-Type"].startswith("text/plain")
    closed = raw_score(router, "close")
    assert closed.status_code == 201 and closed.text == "ok"
    informational = raw_score(router, "continue")
    assert informational.status_code == 200 and informational.text == "next"
    for _ in range(3):    # the keep-alive ones are reused; the ones that close are not
        assert raw_score(router, "chunked").content == b'{"a": 1}' and raw_score(router, "close").text == "ok"


def test_router_forwards_large_bodies_both_ways(router, raw):
    body = bytes(range(256)) * 8192           # 2 MiB, every byte value
    answer = raw_score(router, "echo", body)
    assert answer.status_code == 200 and answer.content == body
    assert raw_score(router, "echo", b"").content == b""


def test_router_retries_once_on_a_keep_alive_connection_the_upstream_dropped(router, raw):
    before = raw.connections
    answers = [raw_score(router, "stale", b'{"n": %d}' % i) for i in range(5)]
    assert [(a.status_code, a.content) for a in answers] == [(200, b'{"n": %d}' % i) for i in range(5)]
    assert raw.connections - before == 5      # each request after the first found its connection dropped


def test_router_answers_502_for_a_broken_answer(router, raw):
    half = raw_score(router, "half")
    assert half.status_code == 502 and "closed the connection mid-answer" in half.json()["error"]
    garbage = raw_score(router, "garbage")
    assert garbage.status_code == 502 and "not an HTTP/1.x answer" in garbage.json()["error"]
