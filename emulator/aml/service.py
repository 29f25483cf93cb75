"""The local stand-in for an Azure ML workspace: jobs, model registry and online endpoints behind a
small HTTP API (key required) that the lifecycle's local adapters call, plus the endpoint router; and, when
given one, the Azure ML registry it shares with other environments' workspaces (/registries/{registry}/...)."""
from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from emulator.aml.collector import DataCollector
from emulator.aml.endpoints import EndpointError, LocalEndpoints
from emulator.aml.jobs import JobError, LocalJobs
from emulator.aml.registry import CONTAINER as REGISTRY_CONTAINER
from emulator.aml.registry import LocalRegistry, RegistryError
from emulator.aml.router import Router
from emulator.aml.shared_registry import SharedRegistry, SharedRegistryError, parse_asset_id
from emulator.aml.tracking import Tracking
from emulator.eventgrid.broker import EventGrid
from emulator.loopback import serve_on_loopback
from training.reference_profile import read_reference

RESTORE_TIMEOUT = 120.0       # seconds restored deployments have to serve again before start() goes on


class LocalAzureML:
    def __init__(self, root: Path, connection_string: str, grid: EventGrid, topic: str, key: str,
                 collector_container: str = "azureml", registry_container: str = REGISTRY_CONTAINER,
                 shared_registry: SharedRegistry | None = None) -> None:
        """`collector_container` and `registry_container`: where collected data and the workspace registry's
        records go; stand-ins sharing one Azurite give each their own. `shared_registry`: the Azure ML
        registry this workspace shares models into and deploys them from (one object for every stand-in)."""
        self.key = key
        topic_id = grid.topic_ids[topic]
        self._workspace_id = topic_id

        async def publish(events):
            await grid.publish(topic, events)

        # the workspace's MLflow tracking store (StackHome.mlruns): a run per job, the registry's versions
        self.tracking = Tracking(root / "mlruns")
        self.registry = LocalRegistry(root / "models", connection_string, publish, topic_id,
                                      job_output=lambda job: self.jobs.model_dir(job), container=registry_container,
                                      tracking=self.tracking, job_run=self._job_run)
        self.shared = shared_registry
        self.jobs = LocalJobs(root / "jobs", connection_string, publish, topic_id, resolve_model=self._resolve_model,
                              tracking=self.tracking)
        # Model inputs and outputs land where Azure ML's data collector puts them (the workspace's blob store);
        # the workspace topic's id is the workspace's resource id.
        self.collector = DataCollector(connection_string, collector_container, source_prefix=topic_id)
        self.router = Router(on_scored=self.collector)
        self._root = root
        self._runners: list[web.AppRunner] = []
        self.url = self.router_url = ""
        self.endpoints: LocalEndpoints | None = None
        self.restored: list = []          # (endpoint, Deployment) brought back by start()

    async def start(self, restore_timeout: float = RESTORE_TIMEOUT,
                    progress: Callable[[str], None] = lambda message: None) -> None:
        """Start the API and the router, and bring back the endpoints of an earlier run: returns once each
        restored deployment serves or has failed (at most restore_timeout seconds and a margin), so that
        whatever starts next never sends traffic to deployments that are still loading."""
        await self.registry.start()
        if self.shared is not None:
            await self.shared.start()
        await self.jobs.recover()          # jobs a killed run left Queued or Running
        await self.collector.start()
        router_runner, self.router_url = await serve_on_loopback(self.router.make_app())
        api_runner, self.url = await serve_on_loopback(self._api())
        self._runners = [router_runner, api_runner]
        self.endpoints = LocalEndpoints(self._root / "endpoints", self.registry, self.router, self.router_url,
                                        shared=self.shared)
        self.restored = await self.endpoints.restore(restore_timeout, progress)
        self.endpoints.start_sampling()

    async def close(self) -> None:
        await self.jobs.close()
        if self.endpoints is not None:      # None if start() failed before the endpoints
            await self.endpoints.close()
        for runner in self._runners:
            await runner.cleanup()
        await self.router.close()
        await self.collector.close()
        await self.registry.close()
        if self.shared is not None:
            await self.shared.close()          # this loop's client only: other stand-ins keep theirs

    def _job_run(self, name: str) -> str | None:
        job = self.jobs.get(name)
        return job.get("mlflow_run_id") if job else None

    def _resolve_model(self, ref: str) -> Path | None:
        """A job's model input: name:version of this workspace, or a registry model's asset id."""
        if parse_asset_id(ref):
            return self.shared.resolve(ref) if self.shared is not None else None
        return self.registry.resolve(ref)

    # -- the HTTP API ------------------------------------------------------------------------------
    def _api(self) -> web.Application:
        app = web.Application(middlewares=[self._auth, _errors])
        r = app.router
        r.add_get("/jobs", self._jobs)
        r.add_put("/jobs/{name}", self._submit_job)
        r.add_get("/jobs/{name}", self._job)
        r.add_patch("/jobs/{name}", self._tag_job)
        r.add_get("/jobs/{name}/metrics", self._job_metrics)
        r.add_get("/jobs/{name}/outputs/{output}/{path:.+}", self._job_output)
        r.add_get("/jobs/{name}/logs", self._job_logs)
        r.add_get("/models", self._model_names)
        r.add_get("/models/{name}/versions", self._versions)
        r.add_post("/models/{name}/versions", self._register)
        r.add_get("/models/{name}/versions/{version}", self._model)
        r.add_patch("/models/{name}/versions/{version}", self._update_tags)
        r.add_get("/models/{name}/versions/{version}/reference-sample", self._reference_sample)
        r.add_get("/models/{name}/versions/{version}/reference", self._reference)
        r.add_get("/registries/{registry}/models", self._shared_names)
        r.add_get("/registries/{registry}/models/{name}/versions", self._shared_versions)
        r.add_put("/registries/{registry}/models/{name}/versions/{version}", self._share)
        r.add_get("/registries/{registry}/models/{name}/versions/{version}", self._shared_model)
        r.add_patch("/registries/{registry}/models/{name}/versions/{version}", self._shared_update_tags)
        r.add_get("/registries/{registry}/models/{name}/versions/{version}/reference-sample",
                  self._shared_reference_sample)
        r.add_get("/registries/{registry}/models/{name}/versions/{version}/reference", self._shared_reference)
        r.add_get("/endpoints", self._endpoints)
        r.add_put("/endpoints/{name}", self._ensure_endpoint)
        r.add_get("/endpoints/{name}", self._endpoint)
        r.add_get("/endpoints/{name}/keys", self._endpoint_keys)
        r.add_put("/endpoints/{name}/traffic", self._traffic)
        r.add_put("/endpoints/{name}/deployments/{deployment}", self._create_deployment)
        r.add_delete("/endpoints/{name}/deployments/{deployment}", self._delete_deployment)
        r.add_get("/endpoints/{name}/metrics", self._endpoint_metrics)
        r.add_get("/endpoints/{name}/deployments/{deployment}/utilisation", self._utilisation)
        return app

    async def _jobs(self, request: web.Request) -> web.Response:
        return _json(self.jobs.list())

    async def _job_logs(self, request: web.Request) -> web.Response:
        """The job's log; of a pipeline job, ?step=<name> for one step's."""
        return web.Response(text=self.jobs.logs(request.match_info["name"], request.query.get("step")))

    async def _endpoints(self, request: web.Request) -> web.Response:
        return _json([e.to_json(self.endpoints.scoring_uri(e.name)) for e in self.endpoints.endpoints.values()])

    async def _endpoint_keys(self, request: web.Request) -> web.Response:
        return _json({"primaryKey": self.endpoints.get(request.match_info["name"]).key})

    async def _endpoint_metrics(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.endpoints.get(name)   # 404 for an unknown endpoint
        deployment = request.query.get("deployment")
        if not deployment:
            return _json(self.router.metrics(name))
        samples = self.router.samples(name, deployment, float(request.query.get("since", 0)) or None)
        until = float(request.query.get("until", 0)) or None
        if until:
            samples = [s for s in samples if s.time < until]
        return _json({"deployment": deployment, "requests": len(samples),
                      "server_errors": sum(1 for s in samples if s.status >= 500),
                      "samples": [[s.time, s.status, round(s.latency_ms, 3)] for s in samples]})

    async def _utilisation(self, request: web.Request) -> web.Response:
        """CPU and memory of one deployment's serving processes over [since, until] (epoch seconds)."""
        since, until = _epoch(request, "since"), _epoch(request, "until")
        return _json(self.endpoints.utilisation(request.match_info["name"], request.match_info["deployment"],
                                                since, until))

    async def _reference(self, request: web.Request) -> web.Response:
        """reference/profile.json and metrics.json from the registered model's folder (metrics {} if absent)."""
        name, version = request.match_info["name"], request.match_info["version"]
        return await _reference_of(self.registry.resolve(f"{name}:{version}"), name, version)

    async def _reference_sample(self, request: web.Request) -> web.Response:
        name, version = request.match_info["name"], request.match_info["version"]
        return await _sample_of(self.registry.resolve(f"{name}:{version}"), name, version, request)

    # -- the Azure ML registry shared with other environments ---------------------------------------------
    def _shared_registry(self, request: web.Request) -> SharedRegistry:
        name = request.match_info["registry"]
        if self.shared is None:
            raise SharedRegistryError(f"registry '{name}' does not exist: this workspace uses no Azure ML registry",
                                      404)
        if name != self.shared.name:
            raise SharedRegistryError(f"registry '{name}' does not exist: this workspace uses registry "
                                      f"'{self.shared.name}'", 404)
        return self.shared

    async def _shared_names(self, request: web.Request) -> web.Response:
        return _json(await self._shared_registry(request).names())

    async def _shared_versions(self, request: web.Request) -> web.Response:
        return _json(await self._shared_registry(request).versions(request.match_info["name"]))

    async def _shared_model(self, request: web.Request) -> web.Response:
        registry = self._shared_registry(request)
        name, version = request.match_info["name"], request.match_info["version"]
        model = await registry.get(name, version)
        return _json(model) if model else _missing(f"model {name}:{version} is not in registry '{registry.name}'")

    async def _share(self, request: web.Request) -> web.Response:
        """Share a model of this workspace's registry into the Azure ML registry, as name/version (Azure ML's
        `models.share`); 201 when it is new, 200 with the version as it was when it exists already."""
        registry = self._shared_registry(request)
        name, version = request.match_info["name"], request.match_info["version"]
        body = await request.json()
        source = str(body.get("source") or "").removeprefix("azureml:")
        if not source:
            raise SharedRegistryError('give the model to share as {"source": "<name>:<version>"} of this '
                                      "workspace's registry")
        source_name, _, source_version = source.partition(":")
        source_model = await self.registry.get(source_name, source_version) if source_version else None
        folder = self.registry.resolve(source) if source_model else None
        if folder is None:
            raise SharedRegistryError(f"model {source} is not registered in this workspace: nothing to share", 404)
        model, created = await registry.share(
            folder, name, version, body.get("tags") or {}, body.get("description", ""),
            properties={"mlops.shared_from": f"{self._workspace_id}/models/{source_name}/versions/{source_version}"})
        return _json(model, 201 if created else 200)

    async def _shared_update_tags(self, request: web.Request) -> web.Response:
        registry = self._shared_registry(request)
        body = await request.json()
        return _json(await registry.update_tags(request.match_info["name"], request.match_info["version"],
                                                body.get("tags") or {}))

    async def _shared_reference(self, request: web.Request) -> web.Response:
        registry = self._shared_registry(request)
        name, version = request.match_info["name"], request.match_info["version"]
        return await _reference_of(registry.resolve(f"{name}:{version}"), name, version)

    async def _shared_reference_sample(self, request: web.Request) -> web.Response:
        registry = self._shared_registry(request)
        name, version = request.match_info["name"], request.match_info["version"]
        return await _sample_of(registry.resolve(f"{name}:{version}"), name, version, request)

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), self.key.encode()):
            return web.json_response({"error": "missing or wrong key (Authorization: Bearer <key>)"}, status=401)
        return await handler(request)

    async def _submit_job(self, request: web.Request) -> web.Response:
        spec = {**await request.json(), "name": request.match_info["name"]}
        job, created = self.jobs.submit(spec)
        return _json(job, 201 if created else 200)

    async def _job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["name"])
        return _json(job) if job else _missing(f"job {request.match_info['name']} does not exist")

    async def _tag_job(self, request: web.Request) -> web.Response:
        """Add tags to a job ({"tags": {...}}), and to its MLflow run, as Azure ML's jobs.update does."""
        body = await request.json()
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, dict) or not all(isinstance(v, (str, int, float, bool)) for v in tags.values()):
            raise JobError('give the tags to add as {"tags": {"name": "value", ...}}')
        job = await self.jobs.tag(request.match_info["name"], tags)
        return _json(job) if job else _missing(f"job {request.match_info['name']} does not exist")

    async def _job_metrics(self, request: web.Request) -> web.Response:
        metrics = self.jobs.metrics(request.match_info["name"])
        return _json(metrics) if metrics is not None else _missing(
            f"job {request.match_info['name']} has no metrics.json output")

    async def _job_output(self, request: web.Request) -> web.Response:
        name, output, path = (request.match_info[k] for k in ("name", "output", "path"))
        body = self.jobs.output_file(name, output, path)
        if body is None:
            return _missing(f"job {name} has no {output}/{path} output")
        return web.Response(body=body, content_type="application/octet-stream")

    async def _model_names(self, request: web.Request) -> web.Response:
        return _json(await self.registry.names())

    async def _versions(self, request: web.Request) -> web.Response:
        return _json(await self.registry.versions(request.match_info["name"]))

    async def _register(self, request: web.Request) -> web.Response:
        body = await request.json()
        model, created = await self.registry.register(request.match_info["name"], body.get("job_name"),
                                                      body.get("tags") or {}, body.get("description", ""),
                                                      path=body.get("path"))
        return _json(model, 201 if created else 200)

    async def _model(self, request: web.Request) -> web.Response:
        model = await self.registry.get(request.match_info["name"], request.match_info["version"])
        return _json(model) if model else _missing(
            f"model {request.match_info['name']}:{request.match_info['version']} does not exist")

    async def _update_tags(self, request: web.Request) -> web.Response:
        body = await request.json()
        return _json(await self.registry.update_tags(request.match_info["name"], request.match_info["version"],
                                                     body.get("tags") or {}))

    async def _ensure_endpoint(self, request: web.Request) -> web.Response:
        endpoint, created = self.endpoints.ensure(request.match_info["name"])
        return _json(endpoint.to_json(self.endpoints.scoring_uri(endpoint.name)), 201 if created else 200)

    async def _endpoint(self, request: web.Request) -> web.Response:
        endpoint = self.endpoints.get(request.match_info["name"])
        return _json(endpoint.to_json(self.endpoints.scoring_uri(endpoint.name)))

    async def _traffic(self, request: web.Request) -> web.Response:
        body = await request.json()
        endpoint = self.endpoints.set_traffic(request.match_info["name"], body.get("traffic") or {},
                                              body.get("mirror_traffic") or {})
        return _json(endpoint.to_json(self.endpoints.scoring_uri(endpoint.name)))

    async def _create_deployment(self, request: web.Request) -> web.Response:
        body = await request.json()
        deployment = self.endpoints.create_deployment(request.match_info["name"], request.match_info["deployment"],
                                                      body["model"])
        return _json(deployment.to_json(), 202)

    async def _delete_deployment(self, request: web.Request) -> web.Response:
        self.endpoints.delete_deployment(request.match_info["name"], request.match_info["deployment"])
        return web.Response(status=202)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except (JobError, RegistryError) as error:
        return web.json_response({"error": str(error)}, status=400)
    except SharedRegistryError as error:
        return web.json_response({"error": str(error)}, status=error.status)
    except EndpointError as error:
        return web.json_response({"error": str(error)}, status=error.status)
    except (json.JSONDecodeError, KeyError) as error:
        return web.json_response({"error": f"malformed request body: {error}"}, status=400)


async def _reference_of(folder: Path | None, name: str, version: str) -> web.Response:
    """reference/profile.json and metrics.json of a model's folder (metrics {} if absent)."""
    try:
        found = await asyncio.to_thread(read_reference, folder) if folder is not None else None
    except (OSError, ValueError) as error:
        return web.json_response({"error": f"model {name}:{version} has an unreadable reference: {error}"},
                                 status=500)
    if found is None:
        return _missing(f"model {name}:{version} has no reference/profile.json")
    return _json({"profile": found[0], "metrics": found[1]})


async def _sample_of(folder: Path | None, name: str, version: str, request: web.Request) -> web.Response:
    """The first ?rows= rows (20 by default) of a model's reference/sample.csv."""
    sample = folder / "reference" / "sample.csv" if folder else None
    if sample is None or not sample.exists():
        return _missing(f"model {name}:{version} has no reference/sample.csv")
    rows = int(request.query.get("rows", 20))
    return _json(await asyncio.to_thread(_read_sample, sample, rows))


def _read_sample(path: Path, rows: int) -> list[dict]:
    import pandas as pd
    frame = pd.read_csv(path, nrows=rows)
    return json.loads(frame.to_json(orient="records"))   # NaN → null, numpy types → JSON


def _epoch(request: web.Request, key: str) -> float | None:
    try:
        return float(request.query.get(key, 0)) or None
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"{key} must be epoch seconds, not "
                                                           f"{request.query[key]!r}"}),
                                 content_type="application/json") from None


def _json(body, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _missing(message: str) -> web.Response:
    return web.json_response({"error": message}, status=404)
