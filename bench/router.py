"""The local endpoint router's cost: requests straight to a deployment vs the same requests through
the router (emulator/aml/router.py) with data collection on (a DataCollector batching model inputs and
outputs into a real Azurite), measured in the same run.

Processes: this one is the load generator (one aiohttp client session, keep-alive); the router and
its collector run in a second process, as in the stack; the deployment is azureml-inference-server-
http under gunicorn (emulator.aml.serving, 2 workers) serving a small scikit-learn MLflow model with
deployment/score.py. Because the model dominates the latency, the same comparison is also made with a
trivial aiohttp upstream (a third process answering a fixed score.py-shaped body), which shows the
router's own cost. A deployment answers only requests with its server's secret (emulator/aml/guard.py):
the router sends it, and so do the direct requests here; the router sends one to the trivial upstream too
(which ignores it), so both routed figures include the header's cost.

    sequential   one request at a time, the targets interleaved request by request (rotating order)
    throughput   N concurrent clients for a few seconds per target, targets alternating, several rounds

Goal (issue 4): at most 1 ms added at p50, and at least 80% of the direct throughput, with the model."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from lifecycle.core.canary_stats import quantile

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-endpoint-key"
ROW = [42, 51000.5, "basic", 3, False]
COLUMNS = ["age", "income", "plan", "tenure_months", "has_partner"]
BODY = json.dumps({"input_data": {"columns": COLUMNS, "data": [ROW]}}).encode()
TRIVIAL_ANSWER = json.dumps({"predictions": ["stay"], "probabilities": [[0.3, 0.7]], "classes": ["churn", "stay"],
                             "model": "trivial:1"}).encode()
CONTAINER = "azureml"
SECRET_ENV = "BENCH_DEPLOYMENT_SECRET"


# -- the other processes ------------------------------------------------------------------------------

async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def run_router(connection_string: str, model_url: str, trivial_url: str) -> None:
    """The router process: endpoints bench-model and bench-trivial, data collection into Azurite; the
    inference server's secret comes in the environment (SECRET_ENV), not on the command line anyone can read."""
    secret = os.environ[SECRET_ENV]
    from emulator.aml.collector import DataCollector
    from emulator.aml.router import Router
    from emulator.loopback import serve_on_loopback

    collector = DataCollector(connection_string, CONTAINER, source_prefix="/bench")
    await collector.start()
    router = Router(on_scored=collector)
    runner, url = await serve_on_loopback(router.make_app())
    router.set_endpoint("bench-model", KEY, {"blue": model_url}, {"blue": 100}, deployment_secrets={"blue": secret})
    router.set_endpoint("bench-trivial", KEY, {"blue": trivial_url}, {"blue": 100}, deployment_secrets={"blue": secret})
    print(url, flush=True)
    await _until_stdin_closes()
    await runner.cleanup()
    await router.close()
    await collector.close()     # the last flush


async def run_trivial() -> None:
    """The trivial upstream: reads the body, answers a fixed prediction."""
    from emulator.loopback import serve_on_loopback

    async def score(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=TRIVIAL_ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/score", score)
    runner, url = await serve_on_loopback(app)
    print(url, flush=True)
    await _until_stdin_closes()
    await runner.cleanup()


def spawn(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    if process.stdout is None:
        raise SystemExit(f"{args[0]} process has no stdout pipe")
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise SystemExit(f"{args[0]} process did not start (exit code {process.wait()})")
    return process, url


def stop(process: subprocess.Popen) -> None:
    if process.stdin is None:
        raise SystemExit(f"process {process.pid} has no stdin pipe to close")
    process.stdin.close()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the load generator -----------------------------------------------------------------------------

class Target:
    def __init__(self, label: str, url: str, headers: dict[str, str]) -> None:
        self.label, self.url, self.headers = label, url, headers
        self.answered = 0            # 200 answers, warm-up included (what the collector should have)
        self.reset()

    def reset(self) -> None:
        self.latencies: list[float] = []
        self.rates: list[float] = []      # requests per second, one per throughput round
        self.completed = 0
        self.seconds = 0.0
        self.errors = 0


async def one(session: aiohttp.ClientSession, target: Target) -> float:
    started = time.perf_counter()
    async with session.post(target.url, data=BODY, headers=target.headers) as answer:
        await answer.read()
        if answer.status == 200:
            target.answered += 1
        else:
            target.errors += 1
    return time.perf_counter() - started


async def sequential(session: aiohttp.ClientSession, pairs: list[tuple[Target, Target]], n: int) -> None:
    """Every target once per iteration, direct and routed of a pair back to back, the order alternating."""
    for i in range(n):
        for direct, routed in pairs:
            for target in ((direct, routed) if i % 2 == 0 else (routed, direct)):
                target.latencies.append(await one(session, target))


async def throughput(session: aiohttp.ClientSession, pairs: list[tuple[Target, Target]], clients: int,
                     seconds: float, rounds: int) -> None:
    """Per round and pair: `clients` concurrent clients on direct, then on routed (the order alternating)."""
    for r in range(rounds):
        for direct, routed in pairs:
            for target in ((direct, routed) if r % 2 == 0 else (routed, direct)):
                deadline = time.perf_counter() + seconds
                done = [0]

                async def client(target: Target, deadline: float, done: list[int]) -> None:
                    while time.perf_counter() < deadline:
                        await one(session, target)
                        done[0] += 1

                started = time.perf_counter()
                await asyncio.gather(*(client(target, deadline, done) for _ in range(clients)))
                elapsed = time.perf_counter() - started
                target.seconds += elapsed
                target.completed += done[0]
                target.rates.append(done[0] / elapsed)


async def measure(pairs: list[tuple[Target, Target]], args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector,
                                     skip_auto_headers=("User-Agent", "Accept-Encoding")) as session:
        await sequential(session, pairs, 30)
        await throughput(session, pairs, args.clients, 0.5, 1)
        for pair in pairs:
            for target in pair:
                target.reset()
        await sequential(session, pairs, args.requests)
        await throughput(session, pairs, args.clients, args.seconds, args.rounds)


def report(pairs: list[tuple[Target, Target]], args: argparse.Namespace) -> dict[str, float]:
    print(f"sequential: {args.requests} requests per target, one at a time; a pair's direct and routed requests "
          "back to back, order alternating")
    print(f"throughput: {args.clients} concurrent clients, {args.rounds} rounds x {args.seconds:g} s per target; "
          "direct and routed back to back, order alternating")
    print("latency is client-side: send the request, read the whole answer (keep-alive connection)")
    print("'paired' figures: median over adjacent direct/routed measurements, which cancels the noise of a busy "
          "machine\n")
    print(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
    figures = {}
    for direct, routed in pairs:
        for t in (direct, routed):
            ms = sorted(x * 1000 for x in t.latencies)
            print(f"{t.label:34}{quantile(ms, .5):9.2f}{quantile(ms, .99):9.2f}{t.completed / t.seconds:9.0f}"
                  f"{t.errors:8d}")
        added50 = (statistics.median(routed.latencies) - statistics.median(direct.latencies)) * 1000
        added99 = (quantile(sorted(routed.latencies), .99) - quantile(sorted(direct.latencies), .99)) * 1000
        ratio = (routed.completed / routed.seconds) / (direct.completed / direct.seconds)
        paired_ms = statistics.median(r - d for d, r in zip(direct.latencies, routed.latencies)) * 1000
        paired_ratio = statistics.median(r / d for d, r in zip(direct.rates, routed.rates))
        print(f"{'  router adds':34}{added50:9.2f}{added99:9.2f}{ratio:8.0%} of direct throughput")
        print(f"{'  router adds (paired)':34}{paired_ms:9.2f}{'':9}{paired_ratio:8.0%} of direct throughput\n")
        figures[direct.label] = added50
        figures[direct.label + " ratio"] = ratio
    return figures


def collected_lines(connection_string: str, endpoint: str) -> int:
    from azure.storage.blob import ContainerClient
    container = ContainerClient.from_connection_string(connection_string, CONTAINER)
    prefix = f"modelDataCollector/{endpoint}/blue/model_inputs/"
    return sum(container.download_blob(b.name).readall().count(b"\n")
               for b in container.list_blobs(name_starts_with=prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600, help="sequential requests per target")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the throughput test")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one throughput run")
    parser.add_argument("--rounds", type=int, default=6, help="throughput runs per target")
    parser.add_argument("--serve", choices=("router", "trivial"), help=argparse.SUPPRESS)
    parser.add_argument("upstreams", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "router":
        return asyncio.run(run_router(*args.upstreams))
    if args.serve == "trivial":
        return asyncio.run(run_trivial())

    sys.path.insert(0, str(ROOT))
    from emulator.aml.serving import InferenceServer
    from emulator.azurite import Azurite
    from tests.deployment.sample_model import build_model

    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder) / "azurite") as storage:
        server = InferenceServer(Path(folder) / "server.log")
        server.start(build_model(Path(folder) / "model"), name="churn", version=1)
        trivial, trivial_url = spawn("--serve", "trivial")
        router = None
        try:
            server.wait_ready(120)
            router, router_url = spawn("--serve", "router", storage.connection_string, server.url, trivial_url,
                                       env={SECRET_ENV: server.secret})
            direct_headers = {"Content-Type": "application/json"}
            routed_headers = {**direct_headers, "Authorization": f"Bearer {KEY}"}
            pairs = [
                (Target("model   direct", server.url + "/score", {**direct_headers, **server.headers}),
                 Target("model   through router (+collect)", f"{router_url}/endpoints/bench-model/score",
                        routed_headers)),
                (Target("trivial direct", trivial_url + "/score", direct_headers),
                 Target("trivial through router (+collect)", f"{router_url}/endpoints/bench-trivial/score",
                        routed_headers)),
            ]
            print(f"cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} before the run; inference server: "
                  f"{server.workers} gunicorn workers; body {len(BODY)} bytes, 1 row\n")
            asyncio.run(measure(pairs, args))
            time.sleep(2.5)     # the collector flushes every second: let it write the last requests
        finally:
            if router is not None:
                stop(router)
            stop(trivial)
            server.stop()
        figures = report(pairs, args)
        print(f"data collection: {collected_lines(storage.connection_string, 'bench-model')} model_inputs lines "
              f"in Azurite for the {pairs[0][1].answered} requests answered through bench-model (warm-up included)")
        added, ratio = figures["model   direct"], figures["model   direct ratio"]
        print(f"goal, with the model: <= 1 ms added at p50: {'met' if added <= 1 else 'NOT met'} ({added:.2f} ms); "
              f">= 80% of direct throughput: {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.0%})")


if __name__ == "__main__":
    main()
