"""The Jobs, Registry and Endpoints ports on the local Azure ML stand-in (emulator/aml), over its HTTP API."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import requests

from lifecycle.core.platform_values import (
    ClusterUsage,
    DeploymentState,
    EndpointState,
    Invocation,
    JobStatus,
    JobUsage,
    ModelReference,
    ModelVersion,
    MonitoringRequest,
    RequestSample,
    TrafficWindow,
    TrainingRequest,
    Utilisation,
)

TIMEOUT = 30
APP_ROOT = Path(__file__).resolve().parents[2]
MONITORING_JOB = APP_ROOT / "monitoring" / "job.yml"


class LocalAMLError(RuntimeError):
    pass


class LocalAML:
    """One HTTP session to the stand-in; the three adapters below share it."""

    def __init__(self, url: str, key: str) -> None:
        if not url:
            raise LocalAMLError("AML_LOCAL_URL is not set: the local stack sets it for the function app")
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, *, body: dict | None = None, missing_ok: bool = False):
        response = self.session.request(method, self.url + path, json=body, timeout=TIMEOUT)
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                reason = response.json().get("error", response.text)
            except ValueError:
                reason = response.text
            raise LocalAMLError(f"{method} {path}: {response.status_code} {reason}")
        return response.json() if response.content and "json" in response.headers.get("Content-Type", "") else None


def _job(body: dict) -> JobStatus:
    return JobStatus(name=body["name"], status=body["status"], experiment=body.get("experiment", ""),
                     tags=body.get("tags") or {}, error=body.get("error"), created=body.get("created") or "",
                     retryable=bool(body.get("retryable")), started=body.get("started") or "",
                     ended=body.get("ended") or "", usage=_usage(body.get("usage")),
                     tracking_run=body.get("mlflow_run_id") or "", compute="")   # no cluster: this machine


def _usage(body: dict | None) -> JobUsage | None:
    """The stand-in's measure of the job's process tree (job_usage.py): percentages of this machine."""
    if not body:
        return None
    return JobUsage(cpu_percent=body.get("cpu_percent"), memory_percent=body.get("memory_percent"),
                    cpu_seconds=body.get("cpu_seconds"), peak_memory_bytes=body.get("peak_memory_bytes"),
                    nodes=int(body.get("nodes") or 1))


def _model(body: dict) -> ModelVersion:
    return ModelVersion(name=body["name"], version=str(body["version"]), path=body["path"], tags=body.get("tags") or {},
                        description=body.get("description", ""), created=body.get("created", ""),
                        registry=body.get("registry", ""))


class LocalJobs:
    def __init__(self, aml: LocalAML) -> None:
        self.aml = aml

    def submit(self, request: TrainingRequest) -> JobStatus:
        """train.py, or (`spec`) the team's job wrapped by our split and evaluation steps; the stand-in reads the
        spec from this app's folder, as the Azure adapter does."""
        body = {"experiment": request.experiment, "data": request.data, "target": request.target,
                "model_name": request.model_name, "champion": request.champion,
                "hyperparameters": request.hyperparameters, "tags": request.tags, "task": request.task,
                "data_files": list(request.data_files), "holdout_files": list(request.holdout_files),
                "window_column": request.window_column, "window_days": request.window_days}
        if request.spec:
            body["spec"] = str(APP_ROOT / request.spec)
        return _job(self.aml.call("PUT", f"/jobs/{request.job_name}", body=body))

    def get(self, name: str) -> JobStatus | None:
        body = self.aml.call("GET", f"/jobs/{name}", missing_ok=True)
        return _job(body) if body else None

    def metrics(self, name: str) -> dict:
        return self.aml.call("GET", f"/jobs/{name}/metrics")

    def tag(self, name: str, tags: dict[str, str]) -> None:
        """Add tags to the job; the stand-in puts them on its MLflow run too."""
        self.aml.call("PATCH", f"/jobs/{name}", body={"tags": tags})

    def submit_monitoring(self, request: MonitoringRequest) -> JobStatus:
        """monitoring/job.yml's command with the request's inputs: blob folders the stand-in downloads, the
        model by its asset id, literals as they are."""
        import yaml  # comes with azure-ai-ml; reading the spec stays cheap
        spec = yaml.safe_load(MONITORING_JOB.read_text())
        declared = spec.get("inputs") or {}
        inputs: dict[str, object] = {}
        for name, value in request.inputs().items():
            kind = (declared.get(name) or {}).get("type") if isinstance(declared.get(name), dict) else None
            if name == "model":
                inputs[name] = {"type": "mlflow_model", "path": request.model_asset_id}
            elif kind or name == "labels":
                inputs[name] = {"type": kind or "uri_folder", "path": value}
            else:
                inputs[name] = value
        return _job(self.aml.call("PUT", f"/jobs/{request.job_name}", body={
            "experiment": request.experiment, "command": " ".join(str(spec["command"]).split()), "inputs": inputs,
            "outputs": {name: {"type": "uri_folder"} for name in spec.get("outputs") or {}},
            "tags": {**(spec.get("tags") or {}), **request.tags}}))

    def output(self, name: str, output: str, path: str) -> bytes | None:
        response = self.aml.session.get(f"{self.aml.url}/jobs/{name}/outputs/{output}/{quote(path)}", timeout=TIMEOUT)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise LocalAMLError(f"GET /jobs/{name}/outputs/{output}/{path}: {response.status_code} {response.text}")
        return response.content


class LocalRegistry:
    """The workspace's model registry, or (`registry=`) the Azure ML registry between the environments,
    which production deploys from."""

    def __init__(self, aml: LocalAML, registry: str = "") -> None:
        self.aml = aml
        self.registry = registry
        self._models = f"/registries/{quote(registry)}/models" if registry else "/models"

    def register(self, name: str, job_name: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        if self.registry:
            raise LocalAMLError(f"registry {self.registry} takes models shared from a workspace, not a job's output")
        return _model(self.aml.call("POST", f"/models/{name}/versions",
                                    body={"job_name": job_name, "tags": tags, "description": description}))

    def get(self, name: str, version: str) -> ModelVersion | None:
        body = self.aml.call("GET", f"{self._models}/{name}/versions/{version}", missing_ok=True)
        return _model(body) if body else None

    def versions(self, name: str) -> list[ModelVersion]:
        return [_model(m) for m in self.aml.call("GET", f"{self._models}/{name}/versions", missing_ok=True) or []]

    def update_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion:
        return _model(self.aml.call("PATCH", f"{self._models}/{name}/versions/{version}", body={"tags": tags}))

    def reference_sample(self, name: str, version: str, rows: int) -> list[dict]:
        return self.aml.call("GET", f"{self._models}/{name}/versions/{version}/reference-sample?rows={rows}",
                             missing_ok=True) or []

    def reference(self, name: str, version: str) -> ModelReference | None:
        body = self.aml.call("GET", f"{self._models}/{name}/versions/{version}/reference", missing_ok=True)
        return ModelReference(profile=body["profile"], metrics=body.get("metrics") or {}) if body else None


class LocalSharedRegistry:
    """Sharing this workspace's models into the registry stand-in (Azure ML's `models.share`)."""

    def __init__(self, aml: LocalAML, registry: str) -> None:
        self.aml = aml
        self.registry = registry
        self._in_registry = LocalRegistry(aml, registry)

    def share(self, name: str, version: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        return _model(self.aml.call("PUT", f"/registries/{quote(self.registry)}/models/{name}/versions/{version}",
                                    body={"source": f"{name}:{version}", "tags": tags, "description": description}))

    def get(self, name: str, version: str) -> ModelVersion | None:
        return self._in_registry.get(name, version)


def _endpoint(body: dict) -> EndpointState:
    return EndpointState(
        name=body["name"], scoring_uri=body["scoring_uri"], traffic=body.get("traffic") or {},
        mirror_traffic=body.get("mirror_traffic") or {},
        deployments=tuple(DeploymentState(d["name"], d["model"], d["state"], d.get("error"))
                          for d in body.get("deployments", ())))


class LocalEndpoints:
    def __init__(self, aml: LocalAML) -> None:
        self.aml = aml

    def get(self, endpoint: str) -> EndpointState | None:
        body = self.aml.call("GET", f"/endpoints/{endpoint}", missing_ok=True)
        return _endpoint(body) if body else None

    def ensure_endpoint(self, endpoint: str) -> EndpointState:
        return _endpoint(self.aml.call("PUT", f"/endpoints/{endpoint}"))

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> None:
        # the stand-in takes a workspace model as name:version, a registry model by its asset id
        self.aml.call("PUT", f"/endpoints/{endpoint}/deployments/{deployment}",
                      body={"model": model.asset_id if model.registry else model.ref})

    def set_traffic(self, endpoint: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None) -> None:
        self.aml.call("PUT", f"/endpoints/{endpoint}/traffic",
                      body={"traffic": traffic, "mirror_traffic": mirror_traffic or {}})

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self.aml.call("DELETE", f"/endpoints/{endpoint}/deployments/{deployment}")

    def list(self) -> list[EndpointState]:
        return [_endpoint(e) for e in self.aml.call("GET", "/endpoints")]

    def scoring_key(self, endpoint: str) -> str:
        """The endpoint's primary key, as the stand-in's /keys route gives it."""
        return self.aml.call("GET", f"/endpoints/{endpoint}/keys")["primaryKey"]

    def invoke(self, endpoint: str, deployment: str, body: dict) -> Invocation:
        state = self.get(endpoint)
        if state is None:
            raise LocalAMLError(f"endpoint {endpoint} does not exist")
        headers = {"Authorization": f"Bearer {self.scoring_key(endpoint)}", "azureml-model-deployment": deployment}
        started = time.perf_counter()
        response = requests.post(state.scoring_uri, json=body, headers=headers, timeout=TIMEOUT)
        return Invocation(response.status_code, (time.perf_counter() - started) * 1000, response.text)


class LocalMetrics:
    """The Metrics port on the local router's own per-request records, and the stand-in's samples of each
    deployment's serving processes."""

    def __init__(self, aml: LocalAML) -> None:
        self.aml = aml

    def window(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> TrafficWindow:
        query = f"deployment={deployment}&since={since.timestamp()}" + (f"&until={until.timestamp()}" if until else "")
        body = self.aml.call("GET", f"/endpoints/{endpoint}/metrics?{query}", missing_ok=True)
        if body is None:
            return TrafficWindow(deployment, (), 0, 0)
        samples = tuple(RequestSample(time=t, status=s, latency_ms=ms) for t, s, ms in body["samples"])
        return TrafficWindow(deployment, samples, body["requests"], body["server_errors"])

    def utilisation(self, endpoint: str, deployment: str, since: datetime,
                    until: datetime | None = None) -> Utilisation:
        """CPU and memory of the deployment's serving processes (one instance: this machine)."""
        query = f"since={since.timestamp()}" + (f"&until={until.timestamp()}" if until else "")
        body = self.aml.call("GET", f"/endpoints/{endpoint}/deployments/{deployment}/utilisation?{query}",
                             missing_ok=True)
        if body is None:
            return Utilisation(deployment, None, None)
        return Utilisation(deployment, body.get("cpu_percent"), body.get("memory_percent"), body.get("instances"),
                           {k: v for k, v in (body.get("detail") or {}).items() if v is not None})

    def job_usage(self, job: JobStatus) -> JobUsage | None:
        """What the stand-in measured of the job's processes while they ran (None before it has run)."""
        return job.usage

    def cluster_usage(self, cluster: str, since: datetime, until: datetime | None = None) -> ClusterUsage | None:
        """None: the stand-in runs jobs on this machine, not on a compute cluster, so there are no nodes to
        count as active, idle or unusable; each job's own usage is what there is (job_usage)."""
        return None
