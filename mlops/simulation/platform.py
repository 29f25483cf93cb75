"""The lifecycle's ports for a simulated run: in memory, on a simulated clock, with the real work done for real.

A training job runs training/train.py's own code in this process on the files the run's window names; a
monitoring job runs monitoring/run.py's own code over the window's collected rows and labels, written out in the
data collector's layout; a deployment serves with deployment/score.py's Scorer. What Azure would emit (BlobCreated
when data lands, RunCompleted when a job ends, ModelRegistered) goes to the simulation's event queue (`Emit`) in
Event Grid's schema, to be routed by the app's own routing table. Only time is simulated: a job takes
`job_minutes` of simulated time, whatever it took here (that is measured too: the cost proxy)."""
from __future__ import annotations

import bisect
import contextlib
import csv
import io
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from lifecycle.core.state_records import R, Record
from lifecycle.core.times import iso

log = logging.getLogger("mlops.simulation")
STORAGE = "https://simulated.blob.core.windows.net"
Emit = Callable[[str, str, str, dict], None]        # (topic, event type, subject, data) → queued for delivery


class MemoryState:
    """The records, as objects: they are frozen dataclasses, so keeping the instances is as safe as JSON and a
    year of ticks does not decode every record on every read."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Record]] = defaultdict(dict)

    def create(self, record: Record) -> bool:
        kept = self.records[record.COLLECTION]
        if record.key in kept:
            return False
        kept[record.key] = record
        return True

    def get(self, kind: type[R], key: str) -> R | None:
        return self.records[kind.COLLECTION].get(key)  # type: ignore[return-value]

    def update(self, kind: type[R], key: str, change: Callable[[R | None], R | None]) -> R | None:
        current = self.get(kind, key)
        changed = change(current)
        if changed is None or changed == current:
            return current
        self.records[kind.COLLECTION][key] = changed
        return changed

    def list(self, kind: type[R]) -> list[R]:
        kept = self.records[kind.COLLECTION]
        return [kept[k] for k in sorted(kept)]  # type: ignore[misc]


@dataclass
class Clock:
    now: datetime


class SimData:
    """The data container: blobs kept on disk under `root`, each write announced as Azure announces it."""

    def __init__(self, root: Path, clock: Clock, emit: Emit, container: str = "data") -> None:
        self.root, self.clock, self.emit, self.container = root, clock, emit, container
        self.blobs: dict[str, StoredBlob] = {}

    def url_of(self, prefix: str) -> str:
        return f"{STORAGE}/{self.container}/{prefix}"

    def path_of(self, url: str) -> Path:
        return self.root / url.removeprefix(f"{STORAGE}/{self.container}/")

    def write_drop(self, prefix: str, files: dict[str, bytes]) -> str:
        for name, body in {**files, "_SUCCESS": b""}.items():
            self.write(prefix + name, body)
        return self.url_of(prefix)

    def write(self, path: str, body: bytes) -> StoredBlob:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        etag = f'"0x{len(self.blobs) + 1:X}"'
        blob = StoredBlob(path, self.url_of(path), etag, len(body), "text/csv", self.clock.now)
        self.blobs[path] = blob
        self.emit("storage", "Microsoft.Storage.BlobCreated", f"/blobServices/default/containers/{self.container}/"
                  f"blobs/{path}", {"api": "PutBlob", "url": blob.url, "eTag": etag, "contentLength": len(body),
                                    "contentType": blob.content_type, "blobType": "BlockBlob"})
        return blob

    def changed_since(self, since: datetime) -> list[StoredBlob]:
        return [b for b in self.blobs.values() if b.last_modified >= since]

    def files_under(self, prefix: str) -> list[StoredBlob]:
        return [b for path, b in sorted(self.blobs.items()) if path.startswith(prefix)]


@dataclass(frozen=True)
class Served:
    """One request a deployment answered."""
    time: float
    request_id: str
    inputs: dict
    outputs: dict
    latency_ms: float


class SimTraffic:
    """What the endpoint served: the Metrics and Collected ports over the same requests."""

    def __init__(self) -> None:
        self.served: dict[str, list[Served]] = defaultdict(list)      # deployment → requests, in time order
        self.times: dict[str, list[float]] = defaultdict(list)

    def record(self, deployment: str, served: list[Served]) -> None:
        self.served[deployment].extend(served)
        self.times[deployment].extend(s.time for s in served)

    def between(self, deployment: str, since: datetime, until: datetime | None) -> list[Served]:
        times = self.times[deployment]
        first = bisect.bisect_left(times, since.timestamp())
        last = len(times) if until is None else bisect.bisect_left(times, until.timestamp())
        return self.served[deployment][first:last]

    # Metrics
    def window(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> TrafficWindow:
        served = self.between(deployment, since, until)
        samples = tuple(RequestSample(s.time, 200, s.latency_ms, s.request_id) for s in served)
        return TrafficWindow(deployment, samples, len(samples), 0)

    def utilisation(self, endpoint: str, deployment: str, since: datetime,
                    until: datetime | None = None) -> Utilisation:
        return Utilisation(deployment, cpu_percent=None, memory_percent=None, instances=1)

    # Collected
    def predictions(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> list:
        return [s.outputs["prediction"] for s in self.between(deployment, since, until)]

    def location(self, endpoint: str, deployment: str) -> tuple[str, bool]:
        return f"{STORAGE}/azureml/modelDataCollector/{endpoint}/{deployment}/", bool(self.served[deployment])

    def records(self, endpoint: str, deployment: str, collection: str, since: datetime,
                until: datetime | None = None) -> Iterator[dict]:
        for s in self.between(deployment, since, until):
            yield s.inputs if collection == "model_inputs" else s.outputs


class SimFeedback:
    """Ground truth as it arrives: request id → label, stamped with when it was written (in time order)."""

    def __init__(self) -> None:
        self.written: list[tuple[float, str, object]] = []
        self.by_id: dict[str, tuple[float, object]] = {}

    def give(self, at: datetime, labels: list[tuple[str, object]]) -> None:
        stamp = at.timestamp()
        for request_id, label in labels:
            self.written.append((stamp, request_id, label))
            self.by_id[request_id] = (stamp, label)

    def labels(self, since: datetime, until: datetime | None = None, label_column: str = "") -> dict[str, object]:
        start, end = since.timestamp(), until.timestamp() if until else float("inf")
        first = bisect.bisect_left(self.written, (start,))
        found: dict[str, object] = {}
        for stamp, request_id, label in self.written[first:]:
            if stamp >= end:
                break
            found[request_id] = label
        return found

    def known(self, request_ids: set[str], until: datetime) -> dict[str, object]:
        """The labels of these requests written before `until` (what a job reading the container then finds)."""
        end = until.timestamp()
        return {r: found[1] for r in request_ids if (found := self.by_id.get(r)) is not None and found[0] < end}


@dataclass
class SimJob:
    status: JobStatus
    ends_at: datetime
    folder: Path
    outcome: str = "Completed"
    error: str = ""


@dataclass
class Measured:
    training_seconds: float = 0.0
    monitoring_seconds: float = 0.0
    trainings: int = 0
    monitoring_jobs: int = 0
    failed: list[str] = field(default_factory=list)


class SimJobs:
    """Jobs run here, at submission, on the data as it stands; they end `job_minutes` of simulated time later."""

    def __init__(self, root: Path, clock: Clock, data: SimData, traffic: SimTraffic, feedback: SimFeedback,
                 registry: SimRegistry, target: str, job_minutes: float, monitoring_minutes: float) -> None:
        self.root, self.clock, self.data, self.traffic, self.feedback = root, clock, data, traffic, feedback
        self.registry, self.target = registry, target
        self.job_minutes, self.monitoring_minutes = job_minutes, monitoring_minutes
        self.jobs: dict[str, SimJob] = {}
        self.measured = Measured()

    def submit(self, request: TrainingRequest) -> JobStatus:
        if request.job_name in self.jobs:
            return self.jobs[request.job_name].status
        if request.spec:
            raise SimulationUnsupported(f"the model trains with its own job spec {request.spec}: the simulation runs "
                                        "training/train.py only")
        folder = self.root / request.job_name
        folder.mkdir(parents=True)
        argv = self._training_argv(request, folder)
        started = time.perf_counter()
        from training import train
        with _quiet():
            code = train.main(argv)
        self.measured.training_seconds += time.perf_counter() - started
        self.measured.trainings += 1
        error = "" if code == 0 else _error_of(folder / "output")
        tags = request.tags | {"mlops.model_name": request.model_name}
        return self._start(request.job_name, request.experiment, tags, folder, self.job_minutes, error)

    def _training_argv(self, request: TrainingRequest, folder: Path) -> list[str]:
        root = self.data.path_of(request.data)
        argv = ["--data", str(root), "--target", request.target, "--model-name", request.model_name,
                "--output", str(folder / "output"), "--task", request.task]
        for option, files in (("--data-files", request.data_files), ("--holdout-files", request.holdout_files)):
            if files:
                manifest = folder / option.strip("-")
                manifest.write_text("\n".join(files) + "\n")
                argv += [option, str(manifest)]
        if request.window_column:
            argv += ["--window-column", request.window_column, "--window-days", str(request.window_days)]
        if request.champion:
            champion = self.registry.folder(*request.champion.split(":"))
            if champion is not None:
                argv += ["--champion-model", str(champion)]
        for key, value in request.hyperparameters.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        return argv

    def submit_monitoring(self, request: MonitoringRequest) -> JobStatus:
        if request.job_name in self.jobs:
            return self.jobs[request.job_name].status
        folder = self.root / request.job_name
        since, until = datetime.fromisoformat(request.window_start), datetime.fromisoformat(request.window_end)
        served = self.traffic.between(request.deployment, since, until)
        for collection in ("model_inputs", "model_outputs"):
            _write_collected(folder / collection, served, collection)
        labels = self.feedback.known({s.request_id for s in served}, self.clock.now)
        (folder / "labels").mkdir()
        (folder / "labels" / "labels.csv").write_text(_labels_csv(labels, self.target))
        model = self.registry.folder(*request.model.split(":"))
        argv = ["--model", str(model), "--inputs", str(folder / "model_inputs"),
                "--outputs", str(folder / "model_outputs"), "--labels", str(folder / "labels"),
                "--output", str(folder / "report"), "--start", request.window_start, "--end", request.window_end,
                "--endpoint", request.endpoint, "--deployment", request.deployment, "--model-id", request.model,
                "--min-rows", str(request.min_rows), "--min-labels", str(request.min_labels), "--no-report"]
        for option, value in (("--drift-thresholds", request.drift_thresholds),
                              ("--sensitive-column", request.sensitive_column),
                              ("--previous-alerts", ",".join(request.previous_alerts)), ("--task", request.task)):
            if value:
                argv += [option, value]
        started = time.perf_counter()
        from monitoring import run
        with _quiet():
            code = run.main(argv)
        self.measured.monitoring_seconds += time.perf_counter() - started
        self.measured.monitoring_jobs += 1
        return self._start(request.job_name, request.experiment, request.tags, folder, self.monitoring_minutes,
                           "" if code == 0 else f"monitoring/run.py exited {code}")

    def _start(self, name: str, experiment: str, tags: dict[str, str], folder: Path, minutes: float,
               error: str) -> JobStatus:
        status = JobStatus(name, "Running", experiment, dict(tags), created=iso(self.clock.now))
        self.jobs[name] = SimJob(status, self.clock.now + timedelta(minutes=minutes), folder,
                                 "Failed" if error else "Completed", error)
        if error:
            self.measured.failed.append(f"{name}: {error}")
        return status

    def end(self, name: str) -> SimJob:
        """The job's simulated time is up: it ends as it ran."""
        job = self.jobs[name]
        job.status = replace(job.status, status=job.outcome, error=job.error or None)
        return job

    def get(self, name: str) -> JobStatus | None:
        job = self.jobs.get(name)
        return job.status if job else None

    def metrics(self, name: str) -> dict:
        return json.loads((self.jobs[name].folder / "output" / "metrics.json").read_text())

    def output(self, name: str, output: str, path: str) -> bytes | None:
        job = self.jobs.get(name)
        target = job.folder / output / path if job else None
        return target.read_bytes() if target is not None and target.is_file() else None


class SimulationUnsupported(RuntimeError):
    """Something of the model's setup the simulation cannot run (said instead of simulating something else)."""


class SimRegistry:
    """Registered versions: the job's model folder, announced as Azure ML announces a registration."""

    def __init__(self, jobs_root: Path, emit: Emit) -> None:
        self.jobs_root, self.emit = jobs_root, emit
        self.models: list[ModelVersion] = []

    def register(self, name: str, job_name: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        for model in self.models:
            if model.name == name and model.tags.get("mlops.job") == job_name:
                return model
        version = ModelVersion(name, str(len(self.versions(name)) + 1),
                               f"azureml://jobs/{job_name}/outputs/output/paths/model",
                               {**tags, "mlops.job": job_name}, description)
        self.models.append(version)
        self.emit("mlworkspace", "Microsoft.MachineLearningServices.ModelRegistered",
                  f"models/{name}:{version.version}", {"modelName": name, "modelVersion": version.version,
                                                       "modelTags": dict(version.tags), "modelProperties": {}})
        return version

    def get(self, name: str, version: str) -> ModelVersion | None:
        return next((m for m in self.models if m.name == name and m.version == str(version)), None)

    def versions(self, name: str) -> list[ModelVersion]:
        return [m for m in self.models if m.name == name]

    def update_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion:
        model = self.get(name, version)
        if model is None:
            raise KeyError(f"model {name}:{version} is not registered")
        updated = replace(model, tags={**model.tags, **tags})
        self.models[self.models.index(model)] = updated
        return updated

    def folder(self, name: str, version: str) -> Path | None:
        model = self.get(name, version)
        return self.jobs_root / model.tags["mlops.job"] / "output" / "model" if model else None

    def reference_sample(self, name: str, version: str, rows: int) -> list[dict]:
        folder = self.folder(name, version)
        sample = folder / "reference" / "sample.csv" if folder else None
        if sample is None or not sample.is_file():
            return []
        return list(csv.DictReader(io.StringIO(sample.read_text())))[:rows]

    def reference(self, name: str, version: str) -> ModelReference | None:
        from training.reference_profile import read_reference
        folder = self.folder(name, version)
        found = read_reference(folder) if folder else None
        return ModelReference(profile=found[0], metrics=found[1]) if found else None


class SimEndpoints:
    """Online endpoints whose deployments serve with the deployment's own scoring code."""

    def __init__(self, registry: SimRegistry, latency_ms: float = 20.0) -> None:
        self.registry, self.latency_ms = registry, latency_ms
        self.endpoints: dict[str, EndpointState] = {}
        self.scorers: dict[tuple[str, str], Any] = {}

    def get(self, endpoint: str) -> EndpointState | None:
        return self.endpoints.get(endpoint)

    def ensure_endpoint(self, endpoint: str) -> EndpointState:
        return self.endpoints.setdefault(endpoint, EndpointState(endpoint, f"https://{endpoint}.simulated/score"))

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> None:
        from deployment.score import Scorer
        folder = self.registry.folder(model.name, model.version)
        state, error = "Succeeded", None
        try:
            self.scorers[(endpoint, deployment)] = Scorer.load(folder) if folder else None
        except Exception as failed:      # a model that cannot load fails its deployment, as in Azure
            state, error = "Failed", f"the model does not load: {failed}"
        current = self.ensure_endpoint(endpoint)
        others = tuple(d for d in current.deployments if d.name != deployment)
        self.endpoints[endpoint] = replace(current, deployments=(*others, DeploymentState(deployment, model.ref,
                                                                                          state, error)))

    def set_traffic(self, endpoint: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None) -> None:
        self.endpoints[endpoint] = replace(self.ensure_endpoint(endpoint), traffic=dict(traffic),
                                           mirror_traffic=dict(mirror_traffic or {}))

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        current = self.ensure_endpoint(endpoint)
        self.scorers.pop((endpoint, deployment), None)
        self.endpoints[endpoint] = replace(current, deployments=tuple(
            d for d in current.deployments if d.name != deployment))

    def scorer(self, endpoint: str, deployment: str) -> Any:
        return self.scorers.get((endpoint, deployment))

    def invoke(self, endpoint: str, deployment: str, body: dict) -> Invocation:
        scorer = self.scorer(endpoint, deployment)
        if scorer is None:
            return Invocation(404, 0.0, json.dumps({"error": f"no deployment {deployment}"}))
        try:
            return Invocation(200, self.latency_ms, json.dumps(scorer.score(json.dumps(body, default=str))))
        except Exception as failed:
            return Invocation(400, self.latency_ms, json.dumps({"error": str(failed)}))

    def scoring_key(self, endpoint: str) -> str:
        return f"simulated-key-of-{endpoint}"


class SimEvents:
    """The app's custom topic: MLOps.* events go to the simulation's queue."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def publish(self, event_type: str, subject: str, data: dict) -> None:
        self.emit("lifecycle", event_type, subject, data)


def _write_collected(folder: Path, served: list[Served], collection: str) -> None:
    """The window's requests in the data collector's layout (one JSON line per request, an hour a folder)."""
    by_hour: dict[str, list[str]] = defaultdict(list)
    for s in served:
        moment = datetime.fromtimestamp(s.time, tz=UTC)
        data = s.inputs if collection == "model_inputs" else s.outputs
        by_hour[f"{moment:%Y/%m/%d/%H}"].append(json.dumps(
            {"time": iso(moment, "milliseconds"), "data": [data],
             "correlationid": s.request_id}, default=str))
    for hour, lines in by_hour.items():
        target = folder / hour
        target.mkdir(parents=True, exist_ok=True)
        (target / "part.jsonl").write_text("\n".join(lines) + "\n")
    folder.mkdir(parents=True, exist_ok=True)


def _labels_csv(labels: dict[str, object], target: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["request_id", target])
    writer.writerows(labels.items())
    return out.getvalue()


def _error_of(output: Path) -> str:
    error = output / "error.json"
    if error.is_file():
        with contextlib.suppress(ValueError):
            return str(json.loads(error.read_text()).get("message") or "train.py failed")
    return "train.py failed"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """A job's own printing belongs in its logs, not in the simulation's output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield

