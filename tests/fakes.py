"""Small in-memory fakes of the lifecycle's ports, for fast handler tests."""
from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from lifecycle.bootstrap import build_policies
from lifecycle.core.platform_values import (
    DeploymentState,
    EndpointState,
    Invocation,
    JobStatus,
    ModelReference,
    ModelVersion,
    MonitoringRequest,
    RequestSample,
    StoredBlob,
    TrafficWindow,
    TrainingRequest,
    Utilisation,
)
from lifecycle.core.state_records import DataBatch, R, Record
from lifecycle.models_file import load_models_file
from lifecycle.ports import Platform
from lifecycle.settings import Settings


class MemoryState:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], str] = {}

    def create(self, record: Record) -> bool:
        key = (record.COLLECTION, record.key)
        if key in self.docs:
            return False
        self.docs[key] = json.dumps(record.to_json())
        return True

    def get(self, kind: type[R], key: str) -> R | None:
        doc = self.docs.get((kind.COLLECTION, key))
        return None if doc is None else kind.from_json(json.loads(doc))

    def update(self, kind, key, change):
        current = self.get(kind, key)
        changed = change(current)
        if changed is None or changed == current:
            return current
        self.docs[(kind.COLLECTION, key)] = json.dumps(changed.to_json())
        return changed

    def list(self, kind: type[R]) -> list[R]:
        return [kind.from_json(json.loads(doc)) for (collection, _), doc in sorted(self.docs.items())
                if collection == kind.COLLECTION]


class FakeJobs:
    def __init__(self) -> None:
        self.submitted: list[TrainingRequest] = []
        self.jobs: dict[str, JobStatus] = {}
        self.evaluations: dict[str, dict] = {}
        self.monitoring: list[MonitoringRequest] = []
        self.outputs: dict[tuple[str, str, str], bytes] = {}     # (job, output, path) → what the job wrote

    def submit(self, request: TrainingRequest) -> JobStatus:
        if request.job_name not in self.jobs:
            self.submitted.append(request)
            self.jobs[request.job_name] = JobStatus(request.job_name, "Running", tags=request.tags)
        return self.jobs[request.job_name]

    def get(self, name: str) -> JobStatus | None:
        return self.jobs.get(name)

    def finish(self, name: str, status: str = "Completed", error: str | None = None,
               metrics: dict | None = None) -> None:
        self.jobs[name] = replace(self.jobs[name], status=status, error=error)
        if metrics is not None:
            self.evaluations[name] = metrics

    def metrics(self, name: str) -> dict:
        return self.evaluations[name]

    def submit_monitoring(self, request: MonitoringRequest) -> JobStatus:
        if request.job_name not in self.jobs:
            self.monitoring.append(request)
            self.jobs[request.job_name] = JobStatus(request.job_name, "Running", "mlops-monitoring", tags=request.tags)
        return self.jobs[request.job_name]

    def output(self, name: str, output: str, path: str) -> bytes | None:
        return self.outputs.get((name, output, path))

    def tag(self, name: str, tags: dict[str, str]) -> None:
        self.jobs[name] = replace(self.jobs[name], tags={**self.jobs[name].tags, **tags})


class FakeRegistry:
    def __init__(self) -> None:
        self.models: list[ModelVersion] = []
        self.references: dict[str, ModelReference] = {}     # "name:version" → what training saved

    def register(self, name, job_name, tags, description=""):
        for model in self.models:
            if model.name == name and model.tags.get("mlops.job") == job_name:
                return model
        version = ModelVersion(name, str(len(self.versions(name)) + 1), f"azureml://jobs/{job_name}/outputs/output/paths/model",
                               {**tags, "mlops.job": job_name}, description)
        self.models.append(version)
        return version

    def get(self, name, version):
        return next((m for m in self.models if m.name == name and m.version == str(version)), None)

    def versions(self, name):
        return [m for m in self.models if m.name == name]

    def update_tags(self, name, version, tags):
        model = self.get(name, version)
        updated = replace(model, tags={**model.tags, **tags})
        self.models[self.models.index(model)] = updated
        return updated

    def reference_sample(self, name, version, rows):
        return [{"age": 30 + i, "income": 1000.0 * (i + 1)} for i in range(rows)]

    def reference(self, name, version):
        return self.references.get(f"{name}:{version}")


class FakeSharedRegistry:
    """The registry between the environments: `share` copies a version of the source registry into `into`
    (production's registry port), once."""

    def __init__(self, source: FakeRegistry, into: FakeRegistry, name: str = "mlops-registry") -> None:
        self.source, self.into, self.name = source, into, name
        self.shared: list[str] = []

    def share(self, name, version, tags, description=""):
        found = self.into.get(name, version)
        if found is None:
            model = self.source.get(name, version)
            found = replace(model, tags={**model.tags, **tags}, registry=self.name, description=description)
            self.into.models.append(found)
            self.shared.append(found.ref)
        return found

    def get(self, name, version):
        return self.into.get(name, version)


class FakeEndpoints:
    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointState] = {}
        self.calls: list[tuple] = []
        self.answers: dict[str, Invocation] = {}       # deployment → what invoke answers (default: fine)
        self.assets: list[str] = []                      # what each deployment was asked to serve, by asset id

    def get(self, endpoint):
        return self.endpoints.get(endpoint)

    def ensure_endpoint(self, endpoint):
        self.calls.append(("ensure", endpoint))
        return self.endpoints.setdefault(endpoint, EndpointState(endpoint, f"http://local/{endpoint}/score"))

    def create_deployment(self, endpoint, deployment, model):
        self.calls.append(("create", endpoint, deployment, model.ref))
        self.assets.append(model.asset_id)
        state = self.endpoints[endpoint]
        others = tuple(d for d in state.deployments if d.name != deployment)
        self.endpoints[endpoint] = replace(
            state, deployments=others + (DeploymentState(deployment, model.ref, "Creating"),))

    def ready(self, endpoint, deployment, state="Succeeded", error=None):
        current = self.endpoints[endpoint]
        self.endpoints[endpoint] = replace(current, deployments=tuple(
            replace(d, state=state, error=error) if d.name == deployment else d for d in current.deployments))

    def set_traffic(self, endpoint, traffic, mirror_traffic=None):
        self.calls.append(("traffic", endpoint, dict(traffic), dict(mirror_traffic or {})))
        self.endpoints[endpoint] = replace(self.endpoints[endpoint], traffic=dict(traffic),
                                           mirror_traffic=dict(mirror_traffic or {}))

    def invoke(self, endpoint, deployment, body):
        self.calls.append(("invoke", endpoint, deployment))
        rows = len(body.get("data", []))
        return self.answers.get(deployment) or Invocation(200, 12.0, json.dumps({"predictions": [0] * rows}))

    def scoring_key(self, endpoint):
        if endpoint not in self.endpoints:
            raise KeyError(f"endpoint {endpoint} does not exist")
        return f"key-of-{endpoint}"

    def delete_deployment(self, endpoint, deployment):
        self.calls.append(("delete", endpoint, deployment))
        current = self.endpoints[endpoint]
        self.endpoints[endpoint] = replace(
            current, deployments=tuple(d for d in current.deployments if d.name != deployment))


class FakeMetrics:
    """Per deployment: how many requests, how many 5xx, at what latency."""

    def __init__(self) -> None:
        self.traffic: dict[str, tuple[int, int, float]] = {}

    def serve(self, deployment: str, requests: int, errors: int = 0, latency_ms: float = 3.0) -> None:
        self.traffic[deployment] = (requests, errors, latency_ms)

    def window(self, endpoint, deployment, since, until=None):
        requests, errors, latency = self.traffic.get(deployment, (0, 0, 0.0))
        samples = tuple(RequestSample(0.0, 500 if i < errors else 200, latency * (1 + 0.01 * (i % 7)))
                        for i in range(requests))
        return TrafficWindow(deployment, samples, requests, errors)

    def utilisation(self, endpoint, deployment, since, until=None):
        return Utilisation(deployment, cpu_percent=35.0, memory_percent=20.0, instances=1)

    def job_usage(self, job):
        return job.usage

    def cluster_usage(self, cluster, since, until=None):
        return None


class FakeCollected:
    def __init__(self) -> None:
        self.outputs: dict[str, list] = {}                       # deployment → predictions (canary judge)
        self.rows: dict[tuple[str, str], list[dict]] = {}         # (deployment, collection) → collected rows

    def predictions(self, endpoint, deployment, since, until=None):
        return self.outputs.get(deployment, [])

    def records(self, endpoint, deployment, collection, since, until=None):
        return iter(self.rows.get((deployment, collection), []))

    def location(self, endpoint, deployment):
        found = any(d == deployment and rows for (d, _), rows in self.rows.items())
        return f"http://storage/azureml/modelDataCollector/{endpoint}/{deployment}/", found


class FakeFeedback:
    def __init__(self) -> None:
        self.given: dict[str, object] = {}

    def labels(self, since, until=None, label_column=""):
        return dict(self.given)


class FakeData:
    """The data container. A listing shows what was stored here, and every blob a BlobCreated event recorded
    (`state`'s DataBatch records), as storage would hold them."""

    def __init__(self, state: MemoryState | None = None) -> None:
        self.drops: dict[str, dict[str, bytes]] = {}
        self.stored: list = []                                    # StoredBlob: what a listing shows
        self.state = state

    def url_of(self, prefix):
        return f"http://storage/data/{prefix}"

    def write_drop(self, prefix, files):
        self.drops[prefix] = dict(files)
        for name, body in {**files, "_SUCCESS": b""}.items():
            self.store(prefix + name, len(body))
        return self.url_of(prefix)

    def store(self, path: str, size: int = 100, etag: str = '"0x1"', when: datetime | None = None) -> StoredBlob:
        """A blob as storage holds it (the one version of its path), as a listing shows it."""
        blob = StoredBlob(path, self.url_of(path), etag, size, "text/csv", when or datetime.now(UTC))
        self.stored = [b for b in self.stored if b.path != path] + [blob]
        return blob

    def changed_since(self, since):
        return [blob for blob in self.stored if blob.last_modified >= since]

    def files_under(self, prefix):
        listed = {}
        for batch in sorted(self.state.list(DataBatch) if self.state else [], key=lambda b: b.recorded_at):
            listed[batch.blob_path] = StoredBlob(batch.blob_path, batch.url, batch.etag, batch.content_length,
                                                 batch.content_type, datetime.fromisoformat(batch.recorded_at))
        listed.update({blob.path: blob for blob in self.stored})        # the newest version of each path
        return [blob for path, blob in sorted(listed.items()) if path.startswith(prefix)]


class FakeEvents:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, dict]] = []

    def publish(self, event_type, subject, data):
        self.published.append((event_type, subject, data))

    def types(self) -> list[str]:
        return [t for t, _, _ in self.published]


def fake_platform(models_file: str = "", **settings) -> Platform:
    """A platform of in-memory fakes, with policies built from these app settings (and the models file's text,
    if given) as the app builds them."""
    defaults = dict(storage_connection="memory", target_column="default", retrain_cooldown_minutes=0,
                    drop_quiet_seconds=60, rollout_bake_seconds=0, rollout_min_requests=50,
                    rollout_retention_seconds=0)
    base = build_policies(Settings(**{**defaults, **settings}))
    models: tuple = ()
    if models_file:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "mlops.yaml").write_text(models_file)
            models = load_models_file("mlops.yaml", base, Path(folder))
    state = MemoryState()
    return Platform(models[0] if models else base, state, FakeJobs(), FakeRegistry(), FakeEndpoints(), FakeMetrics(),
                    FakeCollected(), FakeEvents(), FakeFeedback(), FakeData(state), models=models)


def fake_environments(approval: str = "none") -> tuple[Platform, Platform]:
    """Preprod and production platforms of fakes joined by one registry: preprod shares into production's
    registry port, and tells production on a topic of its own (preprod's `promotion_events`)."""
    registry = FakeRegistry()
    preprod = fake_platform(stage="preprod", registry_name="mlops-registry",
                            promotion_topic_endpoint="https://prod.topic/api/events")
    prod = replace(fake_platform(stage="prod", registry_name="mlops-registry", promotion_approval=approval),
                   registry=registry)
    return (replace(preprod, shared_registry=FakeSharedRegistry(preprod.registry, registry),
                    promotion_events=FakeEvents()), prod)


def complete_runs(p: Platform) -> None:
    """Every training run still submitted ends Completed, as its RunCompleted event would have it."""
    from lifecycle.core.state_records import TrainingRun
    from lifecycle.steps.training_runs import finish_run
    for run in p.state.list(TrainingRun):
        if run.status == "Submitted":
            if p.jobs.get(run.job_name):
                p.jobs.finish(run.job_name)
            finish_run(p, run.job_name, "Completed")
