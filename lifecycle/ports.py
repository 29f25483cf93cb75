"""What the lifecycle needs from a platform, as small interfaces. Adapters live in lifecycle/adapters."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lifecycle.core.notifications import DeliveryPolicy, Webhook, WebhookAnswer
from lifecycle.core.platform_values import (
    ClusterUsage,
    EndpointState,
    Invocation,
    JobStatus,
    JobUsage,
    ModelReference,
    ModelVersion,
    MonitoringRequest,
    StoredBlob,
    TrafficWindow,
    TrainingRequest,
    Utilisation,
)
from lifecycle.core.policies import Policies
from lifecycle.core.state_records import R, Record


class State(Protocol):
    """The lifecycle's durable records (see records.py). Writes are conditional, so replays change nothing."""

    def create(self, record: Record) -> bool:
        """Store the record unless one with its key exists; True if it was new."""

    def get(self, kind: type[R], key: str) -> R | None: ...

    def update(self, kind: type[R], key: str, change: Callable[[R | None], R | None]) -> R | None:
        """Compare-and-swap: apply change to the current record (None if absent) and store the result,
        retrying if someone else wrote in between. change returning None leaves the record as is."""

    def list(self, kind: type[R]) -> list[R]: ...


class Jobs(Protocol):
    """Training and monitoring jobs (Azure ML command jobs; locally the stand-in runs their command)."""

    def submit(self, request: TrainingRequest) -> JobStatus:
        """Submit unless a job of that name exists (then return it): replays submit nothing new."""

    def get(self, name: str) -> JobStatus | None: ...

    def metrics(self, name: str) -> dict:
        """The job's metrics.json output: challenger metrics, and the champion's on the same holdout."""

    def submit_monitoring(self, request: MonitoringRequest) -> JobStatus:
        """Submit monitoring/job.yml over the request's window unless a job of that name exists."""

    def output(self, name: str, output: str, path: str) -> bytes | None:
        """A file of a finished job's named output folder (None if the job wrote no such file)."""

    def tag(self, name: str, tags: dict[str, str]) -> None:
        """Add tags to a job (in Azure ML a job's tags are its MLflow run's, so `mlflow ui` shows them)."""


class Registry(Protocol):
    """Registered model versions (Azure ML model registry, or versions kept in Azurite locally)."""

    def register(self, name: str, job_name: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        """Register the job's model output (azureml://jobs/<job>/outputs/output/paths/model); a second call for the
        same job returns the version already registered."""

    def get(self, name: str, version: str) -> ModelVersion | None: ...

    def versions(self, name: str) -> list[ModelVersion]: ...

    def update_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion: ...

    def reference_sample(self, name: str, version: str, rows: int) -> list[dict]:
        """Feature rows saved with the model (reference/sample.csv), for smoke tests."""

    def reference(self, name: str, version: str) -> ModelReference | None:
        """The reference profile and holdout metrics saved with the model, for monitoring."""


class Endpoints(Protocol):
    """Managed online endpoints and their deployments (local: inference servers behind a router)."""

    def get(self, endpoint: str) -> EndpointState | None: ...

    def ensure_endpoint(self, endpoint: str) -> EndpointState: ...

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> None:
        """Start creating (or updating) a deployment; returns without waiting for it."""

    def set_traffic(self, endpoint: str, traffic: dict[str, int],
                    mirror_traffic: dict[str, int] | None = None) -> None: ...

    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...

    def invoke(self, endpoint: str, deployment: str, body: dict) -> Invocation:
        """Score through the endpoint, pinned to one deployment (header azureml-model-deployment)."""

    def scoring_key(self, endpoint: str) -> str:
        """The key a client sends to score (Authorization: Bearer <key>), as `az ml online-endpoint
        get-credentials` gives it: the primary key of a key-auth endpoint."""


class SharedRegistry(Protocol):
    """The Azure ML registry between the environments, as preprod writes to it."""

    def share(self, name: str, version: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        """Copy this workspace's name:version into the registry as name:version (Azure ML's `models.share`); a
        version already there is returned as it is, so a replay shares nothing twice."""

    def get(self, name: str, version: str) -> ModelVersion | None: ...


class Metrics(Protocol):
    """Per-deployment request metrics (Azure Monitor; locally the router's own records)."""

    def window(self, endpoint: str, deployment: str, since: datetime,
               until: datetime | None = None) -> TrafficWindow: ...

    def utilisation(self, endpoint: str, deployment: str, since: datetime,
                    until: datetime | None = None) -> Utilisation:
        """CPU and memory of the deployment's instances over the window."""

    def job_usage(self, job: JobStatus) -> JobUsage | None:
        """CPU and memory of a job's nodes while it ran (None if not measured, or it has not started)."""

    def cluster_usage(self, cluster: str, since: datetime, until: datetime | None = None) -> ClusterUsage | None:
        """The compute cluster's nodes over the window (None where there is no cluster: the local stand-in)."""


class Collected(Protocol):
    """What the endpoint's data collector stored (modelDataCollector/... in blob storage)."""

    def predictions(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> list: ...

    def location(self, endpoint: str, deployment: str) -> tuple[str, bool]:
        """The URL of the deployment's collected data folder, and whether anything is there."""

    def records(self, endpoint: str, deployment: str, collection: str, since: datetime,
                until: datetime | None = None) -> Iterator[dict]:
        """The collected rows of `collection` (model_inputs | model_outputs), each with its request_id."""


class Feedback(Protocol):
    """Ground-truth labels dropped in the feedback container: CSV or JSON lines with request_id and the label."""

    def labels(self, since: datetime, until: datetime | None = None, label_column: str = "") -> dict[str, object]:
        """request_id -> label, for labels written in [since, until) (in `label_column`, or `label`); a later
        label for an id wins."""


class DataStore(Protocol):
    """The data container training reads from."""

    def write_drop(self, prefix: str, files: dict[str, bytes]) -> str:
        """Write the files under prefix, then its _SUCCESS marker; returns the folder's URL (a job's data input)."""

    def url_of(self, prefix: str) -> str: ...

    def changed_since(self, since: datetime) -> list[StoredBlob]:
        """Blobs written at or after `since`: what events may have missed."""

    def files_under(self, prefix: str) -> list[StoredBlob]:
        """The blobs whose names start with `prefix` (a model's dataset root, a drop's folder) as stored now."""


class Events(Protocol):
    """Publishing the app's own MLOps.* events to the custom topic."""

    def publish(self, event_type: str, subject: str, data: dict) -> None: ...


class Webhooks(Protocol):
    """Posting a notification to a webhook (Slack, Teams, any JSON receiver)."""

    def post(self, url: str, body: dict, timeout: float) -> WebhookAnswer:
        """POST body as JSON and return the answer, whatever its status; raise WebhookUnreachable when there is
        none (connection refused, reset, timed out)."""


@dataclass(frozen=True)
class Platform:
    """What a handler is given: the ports, and the policies it decides with (no settings: the composition
    root reads those)."""
    policies: Policies
    state: State
    jobs: Jobs
    registry: Registry
    endpoints: Endpoints
    metrics: Metrics
    collected: Collected
    events: Events
    feedback: Feedback
    data: DataStore
    shared_registry: SharedRegistry | None = None    # preprod: where promoted models go
    promotion_events: Events | None = None           # preprod: production's custom topic
    models: tuple[Policies, ...] = ()                # every model this app keeps alive ((policies,) if empty)

    @property
    def catalog(self) -> tuple[Policies, ...]:
        return self.models or (self.policies,)


# What a step or handler uses, declared by the parameter's type: each module composes the ports it needs from
# these (read-only, so the frozen Platform and the tests' fakes both fit), and mypy refuses a use of any other.
class UsesPolicies(Protocol):
    @property
    def policies(self) -> Policies: ...

    @property
    def catalog(self) -> tuple[Policies, ...]: ...


class UsesState(Protocol):
    @property
    def state(self) -> State: ...


class UsesJobs(Protocol):
    @property
    def jobs(self) -> Jobs: ...


class UsesRegistry(Protocol):
    @property
    def registry(self) -> Registry: ...


class UsesEndpoints(Protocol):
    @property
    def endpoints(self) -> Endpoints: ...


class UsesMetrics(Protocol):
    @property
    def metrics(self) -> Metrics: ...


class UsesCollected(Protocol):
    @property
    def collected(self) -> Collected: ...


class UsesEvents(Protocol):
    @property
    def events(self) -> Events: ...


class UsesFeedback(Protocol):
    @property
    def feedback(self) -> Feedback: ...


class UsesData(Protocol):
    @property
    def data(self) -> DataStore: ...


class UsesSharedRegistry(Protocol):
    @property
    def shared_registry(self) -> SharedRegistry | None: ...


class UsesPromotionEvents(Protocol):
    @property
    def promotion_events(self) -> Events | None: ...


@dataclass(frozen=True)
class Notifier:
    """What the notify function is given: the records, the webhooks' client, the webhooks NOTIFY_WEBHOOKS
    lists, and how hard to try each (no platform: telling people needs neither Azure ML nor the endpoints)."""
    state: State
    webhooks: Webhooks
    targets: tuple[Webhook, ...] = ()
    delivery: DeliveryPolicy = DeliveryPolicy()
    sleep: Callable[[float], None] | None = None        # None: time.sleep
