"""Local managed online endpoints: each deployment is an azureml-inference-server-http process serving
a registered model with deployment/score.py; the router in front routes by traffic and checks the key.
Deployments are created in the background (Creating → Succeeded | Failed), as in Azure ML.

Utilisation: a sampler records each serving deployment's CPU time and memory every SAMPLE_INTERVAL
seconds (`utilisation()` reads them back over a window), the local counterpart of the deployment's
CpuUtilizationPercentage and CpuMemoryUtilizationPercentage in Azure Monitor. One local deployment is one
instance, and its instance is this machine: 100% CPU means every core busy; memory is the processes' resident
memory as a share of the machine's."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from emulator.aml.registry import LocalRegistry
from emulator.aml.router import Router
from emulator.aml.serving import InferenceServer, UsageSample
from emulator.timeline import utcnow_iso

log = logging.getLogger("emulator.aml.endpoints")
NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
SAMPLE_INTERVAL = 1.0          # seconds between usage samples of each serving deployment
SAMPLES_KEPT = 7200            # two hours at one a second


class EndpointError(ValueError):
    """A request Azure ML would refuse (400/404), with its reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Deployment:
    name: str
    model: str
    state: str = "Creating"
    error: str | None = None
    server: InferenceServer | None = field(default=None, repr=False)
    url: str = ""
    usage: deque[UsageSample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT), repr=False)

    def sample(self) -> None:
        """Record what the serving processes use now (nothing while no server runs)."""
        found = self.server.usage() if self.server else None
        if found is not None:
            self.usage.append(found)

    def to_json(self) -> dict:
        return {"name": self.name, "model": self.model, "state": self.state, "error": self.error}


@dataclass
class Endpoint:
    name: str
    key: str
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    created: str = field(default_factory=utcnow_iso)

    def to_json(self, scoring_uri: str) -> dict:
        return {"name": self.name, "scoring_uri": scoring_uri, "traffic": self.traffic,
                "mirror_traffic": self.mirror_traffic, "created": self.created,
                "deployments": [d.to_json() for d in self.deployments.values()]}


class LocalEndpoints:
    def __init__(self, root: Path, registry: LocalRegistry, router: Router, router_url: str) -> None:
        self.root = root
        self.registry = registry
        self.router = router
        self.router_url = router_url
        self.endpoints: dict[str, Endpoint] = {}
        self._tasks: set[asyncio.Task] = set()
        self.root.mkdir(parents=True, exist_ok=True)

    def scoring_uri(self, name: str) -> str:
        return f"{self.router_url}/endpoints/{name}/score"

    # -- persistence: endpoints come back after a restart, their deployments are started again ----------
    def _save(self, endpoint: Endpoint) -> None:
        body = {"name": endpoint.name, "key": endpoint.key, "traffic": endpoint.traffic,
                "mirror_traffic": endpoint.mirror_traffic, "created": endpoint.created,
                "deployments": {d.name: d.model for d in endpoint.deployments.values()}}
        (self.root / f"{endpoint.name}.json").write_text(json.dumps(body, indent=1))

    async def restore(self) -> None:
        for path in sorted(self.root.glob("*.json")):
            body = json.loads(path.read_text())
            endpoint = Endpoint(body["name"], body["key"], body["traffic"], body["mirror_traffic"],
                                created=body["created"])
            self.endpoints[endpoint.name] = endpoint
            for name, model in body["deployments"].items():
                self._start(endpoint, Deployment(name, model))
            self._route(endpoint)

    # -- operations ----------------------------------------------------------------------------------
    def get(self, name: str) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise EndpointError(f"endpoint '{name}' does not exist", 404) from None

    def ensure(self, name: str) -> tuple[Endpoint, bool]:
        if name in self.endpoints:
            return self.endpoints[name], False
        if not NAME.match(name):
            raise EndpointError(f"endpoint name '{name}' must be 3-32 characters: letters, digits and '-', "
                                "starting with a letter")
        endpoint = Endpoint(name, secrets.token_urlsafe(32))
        self.endpoints[name] = endpoint
        self._save(endpoint)
        self._route(endpoint)
        return endpoint, True

    def create_deployment(self, endpoint_name: str, name: str, model: str) -> Deployment:
        endpoint = self.get(endpoint_name)
        if not NAME.match(name):
            raise EndpointError(f"deployment name '{name}' must be 3-32 characters: letters, digits and '-'")
        if self.registry.resolve(model) is None:
            raise EndpointError(f"model {model} is not registered", 404)
        old = endpoint.deployments.get(name)
        if old and old.model == model and old.state in ("Creating", "Succeeded"):
            return old
        # During an update the old server keeps answering until the new one is ready, as in Azure.
        deployment = Deployment(name, model, state="Updating" if old else "Creating",
                                server=old.server if old else None, url=old.url if old else "")
        if old:
            deployment.usage = old.usage        # one history per deployment name, across its servers
        endpoint.deployments[name] = deployment
        self._save(endpoint)
        self._start(endpoint, deployment, replaces=old)
        return deployment

    def set_traffic(self, endpoint_name: str, traffic: dict[str, int], mirror: dict[str, int]) -> Endpoint:
        endpoint = self.get(endpoint_name)
        validate_traffic(endpoint, traffic, mirror)
        endpoint.traffic = {k: int(v) for k, v in traffic.items() if int(v) > 0}
        endpoint.mirror_traffic = {k: int(v) for k, v in mirror.items() if int(v) > 0}
        self._save(endpoint)
        self._route(endpoint)
        return endpoint

    def deployment(self, endpoint_name: str, name: str) -> Deployment:
        try:
            return self.get(endpoint_name).deployments[name]
        except KeyError:
            raise EndpointError(f"deployment '{name}' of endpoint '{endpoint_name}' does not exist", 404) from None

    def utilisation(self, endpoint_name: str, name: str, since: float | None = None,
                    until: float | None = None) -> dict:
        """CPU and memory of the deployment's serving processes over [since, until] (epoch seconds; the
        whole recorded history by default). A fresh sample is taken first, so a window ending now ends now."""
        deployment = self.deployment(endpoint_name, name)
        deployment.sample()
        return {"deployment": name, **usage_over(list(deployment.usage), since, until), "instances": 1}

    def delete_deployment(self, endpoint_name: str, name: str) -> None:
        endpoint = self.get(endpoint_name)
        if name not in endpoint.deployments:
            raise EndpointError(f"deployment '{name}' of endpoint '{endpoint_name}' does not exist", 404)
        if endpoint.traffic.get(name):
            raise EndpointError(f"deployment '{name}' still takes {endpoint.traffic[name]}% of the traffic: "
                                "move its traffic first")
        deployment = endpoint.deployments.pop(name)
        endpoint.mirror_traffic.pop(name, None)
        self._save(endpoint)
        self._route(endpoint)
        if deployment.server:
            self._spawn(asyncio.to_thread(deployment.server.stop))

    # -- processes -----------------------------------------------------------------------------------
    def _start(self, endpoint: Endpoint, deployment: Deployment, replaces: Deployment | None = None) -> None:
        self._spawn(self._serve(endpoint, deployment, replaces))

    async def _serve(self, endpoint: Endpoint, deployment: Deployment, replaces: Deployment | None) -> None:
        name, _, version = deployment.model.partition(":")
        model_dir = self.registry.resolve(deployment.model)
        server = InferenceServer(log_path=self.root / "logs" / f"{endpoint.name}-{deployment.name}.log")
        try:
            if model_dir is None:
                raise EndpointError(f"model {deployment.model} is not registered")
            url = await asyncio.to_thread(server.start, model_dir, name=name, version=version)
            await asyncio.to_thread(server.wait_ready, 120)
        except Exception as error:
            deployment.state, deployment.error = "Failed", str(error)
            deployment.url = ""
            log.warning("deployment %s/%s failed: %s", endpoint.name, deployment.name, error)
            self._route(endpoint)
            await asyncio.to_thread(server.stop)
            if replaces and replaces.server:
                await asyncio.to_thread(replaces.server.stop)
            return
        if endpoint.deployments.get(deployment.name) is not deployment:   # deleted or replaced meanwhile
            await asyncio.to_thread(server.stop)
            return
        deployment.server, deployment.url, deployment.state = server, url, "Succeeded"
        self._route(endpoint)
        if replaces and replaces.server:
            await asyncio.to_thread(replaces.server.stop)
        log.info("deployment %s/%s serves %s at %s", endpoint.name, deployment.name, deployment.model, deployment.url)

    def _route(self, endpoint: Endpoint) -> None:
        ready = {d.name: d.url for d in endpoint.deployments.values()
                 if d.url and d.state in ("Succeeded", "Updating")}
        self.router.set_endpoint(endpoint.name, endpoint.key, deployments=ready, traffic=endpoint.traffic,
                                 mirror_traffic=endpoint.mirror_traffic)

    def start_sampling(self, interval: float = SAMPLE_INTERVAL) -> None:
        self._spawn(self._sample_forever(interval))

    async def _sample_forever(self, interval: float) -> None:
        while True:
            # off the event loop: the router shares it, and every millisecond here is one a request waits
            await asyncio.to_thread(self._sample_all)
            await asyncio.sleep(interval)

    def _sample_all(self) -> None:
        for endpoint in list(self.endpoints.values()):
            for deployment in list(endpoint.deployments.values()):
                try:
                    deployment.sample()              # a few /proc reads per process
                except Exception as error:         # never let one deployment stop the sampler
                    log.debug("usage sample of %s/%s failed: %s", endpoint.name, deployment.name, error)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        servers = [d.server for e in self.endpoints.values() for d in e.deployments.values() if d.server]
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers), return_exceptions=True)


def usage_over(samples: list[UsageSample], since: float | None, until: float | None) -> dict:
    """Mean CPU and memory over [since, until] from a deployment's usage samples (oldest first).

    CPU percent is CPU seconds used per second of wall time, over all cores of this machine (100 = every core
    busy), between consecutive samples of one server, starting from the last sample before `since`. Memory
    percent is the mean resident memory of the samples in the window over the machine's memory. Figures are
    None when the window holds too few samples (CPU needs two)."""
    import psutil
    until = until or time.time()
    since = since or 0.0
    before = [s for s in samples if s.time < since]
    inside = [s for s in samples if since <= s.time <= until]
    span = ([before[-1]] if before else []) + inside
    cpu_seconds = wall = 0.0
    for a, b in zip(span, span[1:]):
        if a.server == b.server:                         # a new server's counters start again at zero
            cpu_seconds += max(0.0, b.cpu_seconds - a.cpu_seconds)
            wall += b.time - a.time
    cores = psutil.cpu_count() or 1
    total_memory = psutil.virtual_memory().total
    rss = sum(s.rss_bytes for s in inside) / len(inside) if inside else None
    detail = {"processes": inside[-1].processes if inside else 0, "cpu_count": cores, "samples": len(inside),
              "seconds": round(wall, 3), "cpu_seconds": round(cpu_seconds, 3)}
    if rss is not None:
        detail["rss_mb"] = round(rss / 2**20, 3)
    return {"cpu_percent": round(100.0 * cpu_seconds / wall / cores, 3) if wall > 0 else None,
            "memory_percent": round(100.0 * rss / total_memory, 3) if rss is not None else None,
            "detail": detail}


def validate_traffic(endpoint: Endpoint, traffic: dict[str, int], mirror: dict[str, int]) -> None:
    """Azure ML's rules for endpoint.traffic and endpoint.mirror_traffic."""
    for name in {**traffic, **mirror}:
        if name not in endpoint.deployments:
            raise EndpointError(f"deployment '{name}' does not exist on endpoint '{endpoint.name}'")
    if any(int(v) < 0 for v in {**traffic, **mirror}.values()):
        raise EndpointError("traffic percentages cannot be negative")
    total = sum(int(v) for v in traffic.values())
    if total not in (0, 100):
        raise EndpointError(f"traffic must add up to 100 (or 0), not {total}: {traffic}")
    mirrored = {k: int(v) for k, v in mirror.items() if int(v) > 0}
    if len(mirrored) > 1:
        raise EndpointError("mirror traffic can go to one deployment only")
    for name, share in mirrored.items():
        if share > 50:
            raise EndpointError(f"mirror traffic to '{name}' is {share}%: at most 50% can be mirrored")
        if int(traffic.get(name, 0)) > 0:
            raise EndpointError(f"deployment '{name}' takes live traffic, so it cannot also receive mirrored traffic")
