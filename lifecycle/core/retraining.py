"""When to retrain and on what: whether a trigger may start training (RETRAIN_ON), which drops hold complete
data no job has taken, whether the cooldown allows a run, and the training window: the files of the model's
dataset root a run reads."""
from __future__ import annotations

from datetime import datetime, timedelta

from lifecycle.core.platform_values import StoredBlob
from lifecycle.core.policies import DATA, ManagedModel, RetrainPolicy
from lifecycle.core.state_records import MARKER, DataBatch, Drop, TrainingRun
from lifecycle.core.times import parse_time

FORCED = "forced"      # a person's retrain (HTTP or CLI): not a RETRAIN_ON value, and always allowed


def starts(policy: RetrainPolicy, cause: str) -> bool:
    """Whether `cause` may start training: one of the policy's triggers (data, schedule, drift, performance),
    or a person forcing a retrain."""
    return cause == FORCED or cause in policy.triggers


def one_job_for_ready_drops(policy: RetrainPolicy, cause: str) -> bool:
    """Whether the ready drops go into one job rather than a job each. Each drop trains alone when drops
    train as they arrive; without the data trigger they waited for this turn (the timer's, an alert's or a
    person's), and a week of daily drops is one run on the window, not seven at once."""
    return cause != DATA and DATA not in policy.triggers


def model_drops(drops: list[Drop], model: ManagedModel) -> list[Drop]:
    """The drops under the model's dataset root."""
    return [d for d in drops if model.holds(d.container, d.prefix)]


def ready_drops(drops: list[Drop], policy: RetrainPolicy, now: datetime) -> list[Drop]:
    """Complete drops holding data no training job has taken, oldest first: each gets its own run, so a bad
    drop fails its own job, named by its own error, and no other."""
    ready = [d for d in drops if d.complete(now, policy.drop_quiet_seconds)]
    return sorted(ready, key=lambda d: (d.last_seen, d.prefix))


def batch_id(blob: StoredBlob, container: str) -> str:
    return DataBatch.id_for(container, blob.path, blob.etag)


def is_data(blob: StoredBlob) -> bool:
    return blob.size > 0 and blob.path.rsplit("/", 1)[-1] != MARKER


def claim(drop: Drop, stored: list[StoredBlob]) -> tuple[str, ...]:
    """What a job taking the drop takes: its new batches, and every data file its folder holds now (once the
    marker lands, a part file whose event is late is in storage already), except those a failed job took."""
    in_folder = [batch_id(b, drop.container) for b in stored if is_data(b) and Drop.prefix_of(b.path) == drop.prefix]
    taken = dict.fromkeys((*drop.pending, *(b for b in in_folder if b not in drop.trained)))
    return tuple(b for b in taken if b not in drop.failed)


def training_window(model: ManagedModel, drops: list[Drop], stored: list[StoredBlob], now: datetime,
                    busy: set[str] | frozenset[str] = frozenset()) -> list[StoredBlob]:
    """The files under the model's dataset root that a training run reads: those a job has taken (so data
    still arriving is left for its own run), not those a failed job took nor those a job still running (`busy`)
    took, within the model's window."""
    running = {b for d in drops if d.job in busy for b in d.job_batches}
    seen = {b for d in drops for b in d.trained} - {b for d in drops for b in d.failed} - running
    files = sorted((b for b in stored if is_data(b) and b.path.startswith(model.data_root)
                    and batch_id(b, model.data_container) in seen), key=lambda b: b.path)
    window = model.training_window
    if window.kind == "days":
        return [b for b in files if b.last_modified >= now - timedelta(days=window.size)]
    if window.kind == "drops":
        first = {d.prefix: d.first_seen for d in drops}
        folders = sorted({Drop.prefix_of(b.path) for b in files}, key=lambda f: (first.get(f, ""), f))
        keep = set(folders[-window.size:])
        return [b for b in files if Drop.prefix_of(b.path) in keep]
    return files


def empty_drops(drops: list[Drop], policy: RetrainPolicy, now: datetime) -> list[Drop]:
    """Drops whose marker came but no data file after the quiet period: nothing will ever train them."""
    return [d for d in drops if d.marker and not d.batches and not d.job
            and (now - parse_time(d.last_seen)).total_seconds() >= policy.drop_quiet_seconds]


def cooldown_left(runs: list[TrainingRun], policy: RetrainPolicy, now: datetime) -> float:
    """Seconds until another training run may start (0 if it may start now)."""
    if not runs or policy.cooldown_minutes <= 0:
        return 0.0
    last = max(parse_time(r.submitted_at) for r in runs if r.submitted_at)
    return max(0.0, policy.cooldown_minutes * 60 - (now - last).total_seconds())


def may_retry(drop: Drop, policy: RetrainPolicy) -> bool:
    """Whether a drop whose job the platform lost (a crash, a node gone) may be offered again."""
    return drop.attempts + 1 < policy.max_drop_attempts
