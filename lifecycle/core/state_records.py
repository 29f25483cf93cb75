"""What the lifecycle records: plain values, stored as JSON documents by the State port.

Each record type names its collection and its key; the key is what makes a replayed event find the
record it wrote the first time instead of writing a second one."""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urlsplit

from lifecycle.core.incoming_events import BlobCreated
from lifecycle.core.times import iso, parse_time

R = TypeVar("R", bound="Record")
MARKER = "_SUCCESS"


class RunStatus(StrEnum):
    """A training or monitoring run's status: Azure ML's job statuses, and NoData for a monitoring pass that
    found nothing collected where it looked."""
    SUBMITTED = "Submitted"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"
    NO_DATA = "NoData"


FAILED_STATUSES = (RunStatus.FAILED, RunStatus.CANCELED, RunStatus.NOT_RESPONDING)


class DecisionOutcome(StrEnum):
    """What the registration gate (or a person) decided about a challenger."""
    REGISTERED = "registered"
    REJECTED = "rejected"
    HELD = "held"                   # for a person: `mlops approve` / `reject`


class AlertOutcome(StrEnum):
    """What an alert led to."""
    RETRAINING = "retraining"
    COOLDOWN = "cooldown"
    NO_FRESH_DATA = "no fresh data"
    TRAINING_RUNNING = "training already running"
    NEEDS_A_PERSON = "needs a person"
    RESOLVED = "resolved"
    NOT_A_TRIGGER = "not a retrain trigger"      # RETRAIN_ON leaves out the alert's kind (drift or performance)


class PromotionStatus(StrEnum):
    """Where a model is on its way from preprod to production."""
    SHARED = "shared"                       # preprod: in the registry, production told
    AWAITING_APPROVAL = "awaiting approval"  # production: a person approves or rejects
    ROLLING_OUT = "rolling out"             # production: offered to its own rollout
    REJECTED = "rejected"                   # production: a person said no; production is unchanged


class Record:
    COLLECTION: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]     # every record is a dataclass (declared for the type checker)

    @property
    def key(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls: type[R], body: dict) -> R:
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in body.items() if k in known})


@dataclass(frozen=True)
class DataBatch(Record):
    """One committed version of one blob in the data container."""
    COLLECTION: ClassVar[str] = "data-batches"
    batch_id: str            # stable for url + eTag, so a duplicate event finds the same record
    container: str
    blob_path: str
    url: str
    etag: str
    content_length: int
    content_type: str
    sequencer: str
    event_id: str
    recorded_at: str

    @property
    def key(self) -> str:
        return self.batch_id

    @property
    def is_marker(self) -> bool:
        return self.blob_path.rsplit("/", 1)[-1] == MARKER

    @staticmethod
    def id_for(container: str, blob_path: str, etag: str) -> str:
        """One version of one blob, whatever the account's endpoint is called (a restarted local stack may
        serve it on another port) and however the eTag is quoted (events leave the quotes out, listings not)."""
        return hashlib.sha256(f"{container}\n{blob_path}\n{etag.strip(chr(34))}".encode()).hexdigest()[:24]

    @classmethod
    def from_event(cls, event: BlobCreated, now: datetime) -> DataBatch:
        return cls(
            batch_id=cls.id_for(event.container, event.blob_path, event.etag), container=event.container,
            blob_path=event.blob_path,
            url=event.url, etag=event.etag, content_length=event.content_length, content_type=event.content_type,
            sequencer=event.sequencer, event_id=event.id, recorded_at=iso(now),
        )


@dataclass(frozen=True)
class Drop(Record):
    """A set of files written together: the blobs of one folder (or a single file at the top level).
    Complete when a _SUCCESS marker lands in it, or after a quiet period. A file appended to a folder
    already trained on is new data again: the folder waits for its quiet period (or a new marker), then
    trains once more, on the model's whole training window."""
    COLLECTION: ClassVar[str] = "drops"
    drop_id: str
    container: str
    prefix: str              # "loans/2026-11-01/" for a folder, or the file's own path
    url: str                 # the folder's (or file's) URL
    batches: tuple[str, ...] = ()
    marker: bool = False     # a marker landed after the folder's last data file
    first_seen: str = ""
    last_seen: str = ""
    job: str = ""            # the training job that last took this drop's new files
    attempts: int = 0        # jobs lost to the platform (not to the data), after which it was offered again
    trained: tuple[str, ...] = ()      # data batches a training job took: the model has seen them
    job_batches: tuple[str, ...] = ()  # those `job` took (offered again if the platform loses it)
    failed: tuple[str, ...] = ()       # those a failed job took: kept out of later training windows

    @property
    def key(self) -> str:
        return self.drop_id

    @property
    def pending(self) -> tuple[str, ...]:
        """Data batches no training job has taken yet."""
        return tuple(b for b in self.batches if b not in self.trained)

    @staticmethod
    def prefix_of(blob_path: str) -> str:
        folder, _, _ = blob_path.rpartition("/")
        return f"{folder}/" if folder else blob_path

    @staticmethod
    def id_for(container: str, prefix: str) -> str:
        return hashlib.sha256(f"{container}\n{prefix}".encode()).hexdigest()[:24]

    @classmethod
    def for_batch(cls, batch: DataBatch) -> Drop:
        prefix = cls.prefix_of(batch.blob_path)
        return cls(drop_id=cls.id_for(batch.container, prefix), container=batch.container, prefix=prefix,
                   url=blob_url(batch.url, batch.container, prefix), first_seen=batch.recorded_at,
                   last_seen=batch.recorded_at)

    def with_batch(self, batch: DataBatch) -> Drop:
        if batch.batch_id in self.batches or (batch.batch_id in self.trained and not batch.is_marker):
            return self       # a duplicate event, or a file its job took from storage before its event came
        if batch.is_marker:
            return replace(self, marker=True, last_seen=batch.recorded_at)
        # Data after a marker (an appended file): the folder is complete again after a quiet period.
        return replace(self, batches=self.batches + (batch.batch_id,), last_seen=batch.recorded_at,
                       marker=self.marker and not self.trained)

    def complete(self, now: datetime, quiet_seconds: float) -> bool:
        if not self.pending:
            return False
        if self.marker or not self.prefix.endswith("/"):   # a marker, or a single top-level file
            return True
        return (now - parse_time(self.last_seen)).total_seconds() >= quiet_seconds

    def taken_by(self, job: str, batches: tuple[str, ...]) -> Drop:
        """The drop once `job` took these batches (its pending ones, and what storage held in its folder)."""
        return replace(self, job=job, job_batches=batches,
                       trained=self.trained + tuple(b for b in batches if b not in self.trained),
                       batches=self.batches + tuple(b for b in batches if b not in self.batches))

    def released(self) -> Drop:
        """Its job was lost by the platform: the batches it took are new again, for a new job."""
        return replace(self, job="", job_batches=(), attempts=self.attempts + 1,
                       trained=tuple(b for b in self.trained if b not in self.job_batches))

    def failed_job(self) -> Drop:
        """Its job failed on the data: the batches it took stay out of later training windows."""
        return replace(self, failed=self.failed + tuple(b for b in self.job_batches if b not in self.failed))


def blob_url(any_blob_url: str, container: str, path: str) -> str:
    """The URL of `path` (as the blob is named, unencoded) in `container`, on the account of
    `any_blob_url` (a URL of some blob in that container, encoded or not, as events carry it). The path is
    percent-encoded once, as Azure Storage expects: names with spaces or non-ASCII letters stay one blob."""
    parts = urlsplit(any_blob_url)
    # Azure: https://{account}.blob.../{container}/{path}; Azurite and IP endpoints: /{account}/{container}/{path}
    path_style = not re.match(r"^[a-z0-9]+\.(blob|dfs)\.", parts.hostname or "")
    account = parts.path.lstrip("/").split("/")[0] + "/" if path_style else ""
    return f"{parts.scheme}://{parts.netloc}/{account}{quote(container)}/{quote(path, safe='/')}"


@dataclass(frozen=True)
class TrainingRun(Record):
    """A training job this app submitted, and why."""
    COLLECTION: ClassVar[str] = "runs"
    job_name: str
    model_name: str
    trigger: str
    data_url: str
    drop_id: str = ""                  # the first drop it took (drops: all of them)
    data_batches: tuple[str, ...] = ()  # lineage: every data batch it read (its training window)
    champion: str = ""
    drops: tuple[str, ...] = ()
    new_batches: tuple[str, ...] = ()   # the batches no job had taken before: why it started
    data_files: tuple[str, ...] = ()    # the window's files, relative to data_url (the job's input)
    holdout_files: tuple[str, ...] = ()  # of those, the new ones: the holdout (data the champion never saw)
    submitted_at: str = ""
    status: str = RunStatus.SUBMITTED
    error: str = ""
    finished_at: str = ""
    duration_seconds: float = 0.0       # how long the job ran (0 = not known): its model's usual training time

    @property
    def key(self) -> str:
        return self.job_name

    @property
    def drop_ids(self) -> tuple[str, ...]:
        """The drops it took (a record written before runs took several names only its first)."""
        return self.drops or ((self.drop_id,) if self.drop_id else ())


@dataclass(frozen=True)
class Decision(Record):
    """The registration gate's verdict on one completed training job, with the numbers behind it."""
    COLLECTION: ClassVar[str] = "decisions"
    job_name: str
    model_name: str
    outcome: str                       # a DecisionOutcome
    reasons: tuple[str, ...] = ()
    metric: str = ""
    metrics: dict = field(default_factory=dict)
    champion: str = ""
    champion_metrics: dict | None = None
    version: str = ""                  # the registered version
    decided_at: str = ""
    reviewed_by: str = ""              # the person who approved or rejected a held model
    reviewed_at: str = ""

    @property
    def key(self) -> str:
        return self.job_name


@dataclass(frozen=True)
class Promotion(Record):
    """One model version on its way to production. Preprod keeps one per version it shared (`published`
    once production was told); production keeps one per version it was told of."""
    COLLECTION: ClassVar[str] = "promotions"
    model: str                         # "name:version": the version in the registry
    status: str                        # a PromotionStatus
    registry: str
    asset_id: str = ""                 # azureml://registries/<registry>/models/<name>/versions/<version>
    source: dict = field(default_factory=dict)   # the preprod version's lineage: version, job, data, rollout
    published: bool = False            # preprod: production was told
    received_at: str = ""
    decided_by: str = ""               # production: the person who approved or rejected it
    decided_at: str = ""
    reason: str = ""

    @property
    def key(self) -> str:
        return self.model.replace(":", "-")


@dataclass(frozen=True)
class Rejection(Record):
    """An event the app could not act on, kept with the reason so the user can see and replay it."""
    COLLECTION: ClassVar[str] = "rejections"
    event_id: str
    event_type: str
    subject: str
    function: str
    reason: str
    event: dict
    rejected_at: str

    @property
    def key(self) -> str:
        return f"{self.function}/{self.event_id}"


@dataclass(frozen=True)
class MonitorRun(Record):
    """One monitoring pass over a window of the live deployment's traffic: every signal's evidence
    (monitoring.monitor.MonitorResult.to_dict()) and the alerts it raised. The pass runs as a job: the
    record is Submitted with the job, and Completed (or Failed) when the job's completion event comes."""
    COLLECTION: ClassVar[str] = "monitor-runs"
    run_id: str              # endpoint + window end: a replayed timer tick finds the same run
    endpoint: str
    deployment: str
    model: str               # "name:version"
    window_start: str
    window_end: str
    result: dict
    alerts: tuple[str, ...] = ()
    status: str = RunStatus.COMPLETED
    job: str = ""            # the monitoring job
    warning: str = ""        # e.g. no collected data, with the place looked at
    error: str = ""          # why the job failed
    published: bool = True   # its alerts are out (a completion cut short before publishing sends them again)

    @property
    def key(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class AlertRecord(Record):
    """A drift or performance alert as received, and what the app did about it."""
    COLLECTION: ClassVar[str] = "alerts"
    alert_key: str           # from the alert's id and condition: a redelivery finds this record
    alert_id: str
    condition: str           # Fired | Resolved
    source: str
    signal: str
    summary: str
    fired_at: str = ""
    received_at: str = ""
    outcome: str = ""        # an AlertOutcome ("" while it is being acted on)
    detail: str = ""
    job: str = ""            # the training job it started
    resolved_at: str = ""
    evidence: dict = field(default_factory=dict)
    model: str = ""          # the model it concerns ("" if it named none of this app's)

    @property
    def key(self) -> str:
        return self.alert_key

    @staticmethod
    def key_for(identity: str) -> str:
        return hashlib.sha256(identity.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class TimerTurn(Record):
    """When a model with a schedule of its own last took its turn of an app timer (retrain or monitor)."""
    COLLECTION: ClassVar[str] = "timer-turns"
    timer: str
    model: str
    last: str

    @property
    def key(self) -> str:
        return f"{self.timer}-{self.model}"
