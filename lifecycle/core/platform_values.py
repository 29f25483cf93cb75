"""The values the lifecycle exchanges with Azure ML (or the local stand-in): training requests, job
status, model versions, endpoints. Plain frozen dataclasses; the ports in ports.py speak them."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# Azure ML's job statuses that end a job.
TERMINAL = frozenset({"Completed", "Failed", "Canceled", "NotResponding"})


def job_name_for(model_name: str, trigger: str, key: str) -> str:
    """Deterministic job name, so a replayed event submits nothing new. Azure ML names: letters, digits,
    '_' and '-', starting with a letter, at most 255 characters."""
    digest = hashlib.sha256(f"{model_name}\n{trigger}\n{key}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^a-z0-9-]", "-", model_name.lower()).strip("-")[:40] or "model"
    return f"train-{slug}-{trigger}-{digest}"


@dataclass(frozen=True)
class TrainingRequest:
    job_name: str
    model_name: str
    data: str                                 # blob URL of the dataset root: a folder (ending in '/') or a file
    target: str                               # the label column
    trigger: str                              # data | schedule | drift | forced
    data_batches: tuple[str, ...] = ()        # lineage: DataBatch ids this job trains on
    champion: str | None = None               # "name:version" of the live model, evaluated on the same holdout
    hyperparameters: dict[str, str] = field(default_factory=dict)
    experiment: str = "mlops-training"
    task: str = "classification"              # classification (binary or multiclass) | regression
    spec: str = ""                            # the team's job YAML (command or pipeline), relative to the app's
                                              # root; "" = training/job.yml, our train.py
    data_files: tuple[str, ...] = ()          # the training window: paths under `data` ("" = everything under it)
    holdout_files: tuple[str, ...] = ()       # its new files: the holdout comes from them, data the champion never
                                              # saw ("" = from the whole window)
    window_column: str = ""                   # a row window: train on the rows whose date in this column lies
    window_days: int = 0                      # within the last window_days days of the data ("" / 0 = every row)

    @property
    def tags(self) -> dict[str, str]:
        return {"mlops.trigger": self.trigger, "mlops.model_name": self.model_name,
                "mlops.data_batches": ",".join(self.data_batches), "mlops.champion": self.champion or "",
                "mlops.task": self.task}


@dataclass(frozen=True)
class JobUsage:
    """What one job's compute used while it ran: locally its process tree, measured; on Azure the cluster's
    metrics for its run. Percentages are of one node (all its cores = 100); None where nothing was measured."""
    cpu_percent: float | None                 # mean over the run
    memory_percent: float | None              # peak
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    nodes: int = 1                            # nodes the job held (a distributed job holds several)


@dataclass(frozen=True)
class JobStatus:
    name: str
    status: str                               # Queued | Running | Completed | Failed | Canceled
    experiment: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None                  # the reason, for a failed job
    created: str = ""
    retryable: bool = False                   # it ended for the platform's reasons, not the job's: try again
    started: str = ""                         # when it left the queue (ISO 8601, "" = not yet / unknown)
    ended: str = ""
    usage: JobUsage | None = None             # what its process used (the local stand-in measures it)
    tracking_run: str = ""                    # its MLflow run id (in Azure ML: the job's name)
    compute: str = ""                         # the cluster it ran on ("" = the local stand-in / unknown)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def queue_seconds(self) -> float | None:
        return seconds_between(self.created, self.started)

    @property
    def duration_seconds(self) -> float | None:
        return seconds_between(self.started, self.ended)


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one ISO 8601 time to another (never negative); None when either is missing or unreadable."""
    if not start or not end:
        return None
    try:
        return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
    except ValueError:
        return None


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    path: str                                 # azureml://jobs/<job>/outputs/output/paths/model
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    created: str = ""
    registry: str = ""                        # an Azure ML registry's model ("" = the workspace's)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def asset_id(self) -> str:
        """What a deployment names the model by: azureml:<name>:<version>, or the registry's asset id."""
        if self.registry:
            return f"azureml://registries/{self.registry}/models/{self.name}/versions/{self.version}"
        return f"azureml:{self.name}:{self.version}"


class ProvisioningState(StrEnum):
    """An online deployment's provisioning state, as Azure ML reports it."""
    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    DELETING = "Deleting"


@dataclass(frozen=True)
class DeploymentState:
    name: str
    model: str                                # "name:version"
    state: str                                # a ProvisioningState
    error: str | None = None


@dataclass(frozen=True)
class EndpointState:
    name: str
    scoring_uri: str
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    deployments: tuple[DeploymentState, ...] = ()

    def deployment(self, name: str) -> DeploymentState | None:
        return next((d for d in self.deployments if d.name == name), None)


@dataclass(frozen=True)
class RequestSample:
    time: float              # epoch seconds
    status: int              # HTTP status the endpoint answered
    latency_ms: float
    request_id: str = ""


@dataclass(frozen=True)
class TrafficWindow:
    """What one deployment served over a time window, as the canary judge reads it."""
    deployment: str
    samples: tuple[RequestSample, ...]     # per request where available (may be a subsample)
    requests: int                          # count over the window (≥ len(samples))
    server_errors: int                     # 5xx


class NoTrafficLogs(RuntimeError):
    """The platform keeps no record of an endpoint's requests (in Azure: no diagnostic setting sends its
    traffic logs to Log Analytics). A setup problem for a person, not evidence about any deployment."""


@dataclass(frozen=True)
class Invocation:
    status: int
    latency_ms: float
    body: str


@dataclass(frozen=True)
class Utilisation:
    """What one deployment's compute used over a window (local: its serving processes; Azure: the
    endpoint's platform metrics). None where the source has no figure."""
    deployment: str
    cpu_percent: float | None               # mean over the window, of one instance's CPU capacity
    memory_percent: float | None            # of one instance's memory
    instances: int | None = None
    detail: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterUsage:
    """A compute cluster's nodes over a window (Azure Monitor's workspace metrics: Active, Idle and Unusable
    Nodes by ClusterName, CPU and memory utilisation by ComputeName), in node-minutes."""
    cluster: str
    minutes: float                            # the window's length
    active_node_minutes: float                # nodes running a job
    idle_node_minutes: float                  # nodes up, waiting to scale down: paid for, unused
    unusable_node_minutes: float = 0.0
    peak_nodes: int = 0                       # the most nodes up at once
    cpu_percent: float | None = None          # mean over the nodes while up, of one node
    memory_percent: float | None = None


@dataclass(frozen=True)
class ModelReference:
    """What training saved beside a model for monitoring: reference/profile.json and metrics.json."""
    profile: dict
    metrics: dict


MONITORING = "monitoring"                    # the mlops.component tag of a monitoring job
MONITORING_EXPERIMENT = "mlops-monitoring"


def monitoring_job_name_for(endpoint: str, deployment: str, model: str, since: str, until: str) -> str:
    """Deterministic name of the monitoring job over one window, so a replayed tick finds the job. Lower case:
    azure-ai-ml lowers a job name's letters before submitting it."""
    digest = hashlib.sha256(f"{endpoint}\n{deployment}\n{model}\n{since}\n{until}".encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9-]", "-", endpoint.lower()).strip("-")[:40] or "endpoint"
    return f"monitor-{slug}-{until[:19].replace('-', '').replace(':', '').lower()}-{digest}"


@dataclass(frozen=True)
class MonitoringRequest:
    """One monitoring pass as an Azure ML command job (monitoring/job.yml). Locations are blob URLs (folders
    end in '/'); the Jobs adapter maps them to what its platform mounts or downloads."""
    job_name: str
    run_id: str                               # the MonitorRun the job's result is stored as
    endpoint: str
    deployment: str
    model: str                                # "name:version" of the live model
    window_start: str                         # ISO 8601
    window_end: str
    model_inputs: str                         # the collected inputs' folder for the window
    model_outputs: str
    labels: str = ""                          # the feedback container ('' = no labels)
    min_rows: int = 500
    min_labels: int = 100
    drift_thresholds: str = ""                # DRIFT_THRESHOLDS as set, e.g. "psi=0.25"
    sensitive_column: str = ""
    previous_alerts: tuple[str, ...] = ()     # the previous pass's fired alert ids: what may now resolve
    experiment: str = MONITORING_EXPERIMENT
    model_registry: str = ""                  # production's live model is the registry's, not the workspace's
    task: str = ""                            # the model's task ("" = as its metrics.json says)

    @property
    def model_asset_id(self) -> str:
        name, _, version = self.model.partition(":")
        return ModelVersion(name, version, "", registry=self.model_registry).asset_id

    @property
    def tags(self) -> dict[str, str]:
        return {"mlops.component": MONITORING, "mlops.monitor_run": self.run_id, "mlops.endpoint": self.endpoint,
                "mlops.deployment": self.deployment, "mlops.model": self.model,
                "mlops.window_start": self.window_start, "mlops.window_end": self.window_end}

    def inputs(self) -> dict[str, str | int]:
        """The job's inputs by monitoring/job.yml's names; optional ones only when they have a value."""
        values: dict[str, str | int] = {
            "model": self.model, "model_inputs": self.model_inputs, "model_outputs": self.model_outputs,
            "window_start": self.window_start, "window_end": self.window_end, "endpoint": self.endpoint,
            "deployment": self.deployment, "model_id": self.model, "min_rows": self.min_rows,
            "min_labels": self.min_labels}
        optional = {"labels": self.labels, "drift_thresholds": self.drift_thresholds,
                    "sensitive_column": self.sensitive_column, "previous_alerts": ",".join(self.previous_alerts),
                    "task": self.task}
        return {**values, **{k: v for k, v in optional.items() if v}}


@dataclass(frozen=True)
class StoredBlob:
    """A blob of the data container as a listing shows it."""
    path: str
    url: str
    etag: str                # quoted, as BlobCreated events carry it
    size: int
    content_type: str
    last_modified: datetime
