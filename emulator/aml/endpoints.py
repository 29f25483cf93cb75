"""Local managed online endpoints: each deployment is an azureml-inference-server-http process serving
a registered model with deployment/score.py; the router in front routes by traffic and checks the key.
Deployments are created in the background (Creating → Succeeded | Failed), as in Azure ML.

Models: a deployment serves a model of the workspace's registry ("name:version"), or of the Azure ML registry
the stand-in shares with other environments (its asset id, azureml://registries/<r>/models/<n>/versions/<v>);
either way the endpoint reports the deployment's model as "name:version".

Restart: each endpoint is a file (`<endpoint>.json`, owner-only: it holds the endpoint key) with its key,
traffic and deployments (name → the model as the deployment was given it). restore() reads them back and
starts every deployment again, in parallel, returning once each one serves or has failed (with its reason),
so nothing takes events while traffic points at deployments that are not running. Each deployment answers
only requests that carry its server's own secret (emulator/aml/guard.py), which the router sends.

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
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import faults
from emulator.aml.registry import LocalRegistry
from emulator.aml.router import Router
from emulator.aml.serving import InferenceServer, UsageSample
from emulator.aml.shared_registry import SharedRegistry, parse_asset_id
from emulator.home import make_private, write_private
from emulator.timeline import utcnow_iso

log = logging.getLogger("emulator.aml.endpoints")
NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
SAMPLE_INTERVAL = 1.0          # seconds between usage samples of each serving deployment
SAMPLES_KEPT = 7200            # two hours at one a second
READY_TIMEOUT = 120.0          # seconds a deployment's server has to load its model


class EndpointError(ValueError):
    """A request Azure ML would refuse (400/404), with its reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Deployment:
    name: str
    model: str                   # name:version, as the endpoint reports it
    state: str = "Creating"
    error: str | None = None
    server: InferenceServer | None = field(default=None, repr=False)
    url: str = ""
    usage: deque[UsageSample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT), repr=False)
    source: str = ""             # the model as given: name:version, or a registry's asset id ("" = `model`)

    @property
    def ref(self) -> str:
        """The model as the deployment was given it: what finds its files again."""
        return self.source or self.model

    def sample(self) -> None:
        """Record what the serving processes use now (nothing while no server runs)."""
        found = self.server.usage() if self.server else None
        if found is not None:
            self.usage.append(found)

    @property
    def secret(self) -> str:
        """What the server answering for this deployment requires in each request ("" when none serves)."""
        return self.server.secret if self.server and self.url else ""

    def to_json(self) -> dict:
        body = {"name": self.name, "model": self.model, "state": self.state, "error": self.error}
        if parse_asset_id(self.ref):
            body["model_asset_id"] = self.ref
        return body


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
    def __init__(self, root: Path, registry: LocalRegistry, router: Router, router_url: str,
                 shared: SharedRegistry | None = None) -> None:
        self.root = root
        self.registry = registry
        self.shared = shared            # the Azure ML registry shared between environments, if any
        self.router = router
        self.router_url = router_url
        self.endpoints: dict[str, Endpoint] = {}
        self._tasks: set[asyncio.Task] = set()
        self._servers: set[InferenceServer] = set()      # every server started and not stopped yet
        self._sampler: asyncio.Task | None = None
        self._closing = False
        self.root.mkdir(parents=True, exist_ok=True)

    def scoring_uri(self, name: str) -> str:
        return f"{self.router_url}/endpoints/{name}/score"

    # -- persistence: endpoints come back after a restart, their deployments are started again ----------
    def _save(self, endpoint: Endpoint) -> None:
        # The same format since the first version: a home written by an older stand-in restores as it was.
        body = {"name": endpoint.name, "key": endpoint.key, "traffic": endpoint.traffic,
                "mirror_traffic": endpoint.mirror_traffic, "created": endpoint.created,
                "deployments": {d.name: d.ref for d in endpoint.deployments.values()}}
        write_private(self.root / f"{endpoint.name}.json", json.dumps(body, indent=1))

    async def restore(self, timeout: float = READY_TIMEOUT,
                      progress: Callable[[str], None] = lambda message: None) -> list[tuple[str, Deployment]]:
        """Read the endpoints back and start their deployments again, all at once. Returns (endpoint,
        deployment) for each, once every one serves (Succeeded) or has failed (Failed, with the reason),
        or after `timeout` seconds plus a margin (then some may still be Creating)."""
        started = time.monotonic()
        shutil.rmtree(self.root / "mounts", ignore_errors=True)      # a killed run's model mounts
        for stale in self.root.glob(".*.tmp"):                        # a killed run's unfinished writes
            stale.unlink(missing_ok=True)
        restored, tasks = [], []
        for path in sorted(self.root.glob("*.json")):
            make_private(path)                                        # written by an older stand-in
            try:
                endpoint, models = _read_endpoint(path)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                kept = path.with_name(path.name + ".unreadable")
                path.replace(kept)
                log.error("endpoint file %s is unreadable (%s: %s): the endpoint was not restored; the file is kept "
                          "as %s", path, type(error).__name__, error, kept.name)
                continue
            self.endpoints[endpoint.name] = endpoint
            for name, model in models.items():
                deployment = endpoint.deployments[name] = Deployment(name, model_ref(model), source=model)
                restored.append((endpoint.name, deployment))
                tasks.append(self._start(endpoint, deployment, ready_timeout=timeout))
            self._route(endpoint)
        if not tasks:
            return restored
        progress(f"restoring {len(tasks)} deployment(s): "
                 + ", ".join(f"{e}/{d.name} ({d.model})" for e, d in restored))
        _, pending = await asyncio.wait(tasks, timeout=timeout + 15)   # + starting and stopping the processes
        if pending:
            log.warning("%d restored deployment(s) were still starting after %.0f s", len(pending), timeout + 15)
        log.info("restored %d deployment(s) in %.1f s: %s", len(restored), time.monotonic() - started,
                 ", ".join(f"{e}/{d.name} {d.state}" for e, d in restored))
        return restored

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
        """`model`: name:version of the workspace's registry, or the asset id of a model in the shared registry."""
        endpoint = self.get(endpoint_name)
        if not NAME.match(name):
            raise EndpointError(f"deployment name '{name}' must be 3-32 characters: letters, digits and '-'")
        model = model if parse_asset_id(model) else model.removeprefix("azureml:")
        if self.resolve(model) is None:
            raise EndpointError(self._unknown(model), 404)
        old = endpoint.deployments.get(name)
        if old and old.ref == model and old.state in ("Creating", "Succeeded"):
            return old
        # During an update the old server keeps answering until the new one is ready, as in Azure.
        deployment = Deployment(name, model_ref(model), state="Updating" if old else "Creating",
                                server=old.server if old else None, url=old.url if old else "", source=model)
        if old:
            deployment.usage = old.usage        # one history per deployment name, across its servers
        endpoint.deployments[name] = deployment
        self._save(endpoint)
        self._start(endpoint, deployment, replaces=old)
        return deployment

    def resolve(self, model: str) -> Path | None:
        """The folder of a deployment's model (name:version, or a registry asset id); None if it has none."""
        if parse_asset_id(model):
            return self.shared.resolve(model) if self.shared is not None else None
        return self.registry.resolve(model)

    def _unknown(self, model: str) -> str:
        parsed = parse_asset_id(model)
        if not parsed:
            return f"model {model} is not registered"
        if self.shared is None or parsed[0] != self.shared.name:
            known = f"registry '{self.shared.name}'" if self.shared else "no registry"
            return f"model {model}: registry '{parsed[0]}' does not exist (this workspace uses {known})"
        return f"model {model} is not in registry '{parsed[0]}'"

    def set_traffic(self, endpoint_name: str, traffic: dict[str, int], mirror: dict[str, int]) -> Endpoint:
        endpoint = self.get(endpoint_name)
        validate_traffic(endpoint, traffic, mirror)
        endpoint.traffic = {k: int(v) for k, v in traffic.items() if int(v) > 0}
        endpoint.mirror_traffic = {k: int(v) for k, v in mirror.items() if int(v) > 0}
        self._save(endpoint)
        faults.reached("traffic.set", endpoint_name)
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
            self._spawn(self._stop(deployment.server))

    # -- processes -----------------------------------------------------------------------------------
    def _start(self, endpoint: Endpoint, deployment: Deployment, replaces: Deployment | None = None,
               ready_timeout: float = READY_TIMEOUT) -> asyncio.Task:
        return self._spawn(self._serve(endpoint, deployment, replaces, ready_timeout))

    async def _serve(self, endpoint: Endpoint, deployment: Deployment, replaces: Deployment | None,
                     ready_timeout: float) -> None:
        name, _, version = deployment.model.partition(":")
        model_dir = self.resolve(deployment.ref)
        server = InferenceServer(log_path=self.root / "logs" / f"{endpoint.name}-{deployment.name}.log",
                                 mount_parent=self.root / "mounts")
        try:
            if model_dir is None:
                where = (self.shared.model_dir(name, version) if self.shared and parse_asset_id(deployment.ref)
                         else self.registry.model_dir(name, version))
                raise EndpointError(f"{self._unknown(deployment.ref)}: its folder {where} does not exist; register "
                                    f"the model again and update deployment '{deployment.name}', or delete the "
                                    "deployment")
            if self._closing:
                return
            self._servers.add(server)
            url = await asyncio.to_thread(server.start, model_dir, name=name, version=version)
            await self._until_ready(server, ready_timeout)
        except _Closing:
            await self._stop(server)             # the stand-in is stopping: no state change, nothing saved
            return
        except Exception as error:
            deployment.state, deployment.error = "Failed", str(error)
            deployment.url = ""
            log.warning("deployment %s/%s failed: %s", endpoint.name, deployment.name, error)
            self._route(endpoint)
            await self._stop(server)
            if replaces and replaces.server:
                await self._stop(replaces.server)
            return
        if endpoint.deployments.get(deployment.name) is not deployment:   # deleted or replaced meanwhile
            await self._stop(server)
            return
        deployment.server, deployment.url, deployment.state = server, url, "Succeeded"
        self._route(endpoint)
        if replaces and replaces.server:
            await self._stop(replaces.server)
        log.info("deployment %s/%s serves %s at %s", endpoint.name, deployment.name, deployment.model, deployment.url)

    async def _until_ready(self, server: InferenceServer, timeout: float) -> None:
        """Probe the server's health route (without a thread per server: many start at once on a restore)."""
        deadline = time.monotonic() + timeout
        while not await server.ready_async():
            if self._closing:
                raise _Closing()
            if time.monotonic() > deadline:
                raise server.not_ready(timeout)
            await asyncio.sleep(0.1)

    async def _stop(self, server: InferenceServer) -> None:
        await asyncio.to_thread(server.stop)
        self._servers.discard(server)

    def _route(self, endpoint: Endpoint) -> None:
        serving = [d for d in endpoint.deployments.values() if d.url and d.state in ("Succeeded", "Updating")]
        self.router.set_endpoint(endpoint.name, endpoint.key, deployments={d.name: d.url for d in serving},
                                 traffic=endpoint.traffic, mirror_traffic=endpoint.mirror_traffic,
                                 deployment_secrets={d.name: d.secret for d in serving})

    def start_sampling(self, interval: float = SAMPLE_INTERVAL) -> None:
        if not self._closing:           # close() may have come while the deployments were being restored
            self._sampler = asyncio.get_running_loop().create_task(self._sample_forever(interval))

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

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop every server. Starts in progress are not cancelled (a process could be left behind by a
        thread still starting it): they see `_closing` within a probe and stop their own server."""
        self._closing = True
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self._stop(s) for s in list(self._servers)), return_exceptions=True)


def model_ref(model: str) -> str:
    """name:version of a deployment's model, given as name:version or as a registry's asset id."""
    parsed = parse_asset_id(model)
    return f"{parsed[1]}:{parsed[2]}" if parsed else model


class _Closing(Exception):
    """The stand-in is stopping while a deployment starts."""


def _read_endpoint(path: Path) -> tuple[Endpoint, dict[str, str]]:
    """An endpoint file: the endpoint (without deployments) and its deployments' models by name."""
    body = json.loads(path.read_text(encoding="utf-8"))
    endpoint = Endpoint(body["name"], body["key"], dict(body["traffic"]), dict(body["mirror_traffic"]),
                        created=body["created"])
    models = {str(name): str(model) for name, model in body["deployments"].items()}
    return endpoint, models


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
