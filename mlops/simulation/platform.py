"""The lifecycle's ports for a simulated run: in memory, on a simulated clock, with the real work done for real.

The records, the data container, the registry, the endpoints (serving with deployment/score.py's Scorer) and the
app's topic live here; the jobs in jobs.py, what was served and labelled in traffic.py. What Azure would emit
(BlobCreated when data lands, RunCompleted when a job ends, ModelRegistered) goes to the simulation's event queue
(`Emit`) in Event Grid's schema, to be routed by the app's own routing table. Only time is simulated: a job takes
`job_minutes` of simulated time, whatever it took here (that is measured too: the cost proxy)."""
from __future__ import annotations

import csv
import io
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from lifecycle.core.platform_values import (
    DeploymentState,
    EndpointState,
    Invocation,
    ModelReference,
    ModelVersion,
    StoredBlob,
)
from lifecycle.core.state_records import R, Record

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
