"""Starting training runs (on a complete drop, on the retrain schedule, when forced, on an alert) and ending them.

A submission is three writes, each safe to repeat: the run's record, the drop's claim (compare-and-swap,
so of two triggers racing for one drop only one submits), then the job (deterministic name). A crash
between any two leaves a run that reconcile either submits again or closes (resume_submissions)."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from lifecycle import clock
from lifecycle.core import notifications as told
from lifecycle.core import retraining
from lifecycle.core.platform_values import StoredBlob, TrainingRequest, job_name_for
from lifecycle.core.policies import DRIFT, PERFORMANCE, SCHEDULE, ManagedModel
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import Drop, RunStatus, TrainingRun
from lifecycle.core.times import iso
from lifecycle.ports import UsesData, UsesEvents, UsesJobs, UsesPolicies, UsesState
from lifecycle.steps.announcements import announce

log = logging.getLogger("lifecycle.training")


class RunRecordPorts(UsesPolicies, UsesState, Protocol):
    """What ending a training run uses of the platform: its records and its drops'."""


class TrainingPorts(RunRecordPorts, UsesJobs, UsesData, UsesEvents, Protocol):
    """What starting training runs uses of the platform."""


def start_ready_training(p: TrainingPorts, now: datetime, trigger: str = "data", *,
                         cause: str) -> TrainingRun | None:
    """Train on the model's window once drops hold complete data no job has taken, if `cause` may start training
    (RETRAIN_ON: "data" for a drop that is ready, "schedule" for the retrain timer's turn, an alert's "drift" or
    "performance"; "forced" always may): a run for each ready drop, oldest first, as far as the cooldown allows,
    or, without the data trigger, one run taking them all. `trigger` names the run. Returns the first run."""
    model, policy = p.policies.model, p.policies.retrain
    ready = retraining.ready_drops(retraining.model_drops(p.state.list(Drop), model), policy, now)
    if not ready:
        return None
    if not retraining.starts(policy, cause):
        waits = [what for what, on in (("the retrain timer", SCHEDULE), ("a drift alert", DRIFT),
                                       ("a performance alert", PERFORMANCE)) if retraining.starts(policy, on)]
        log.info("%d drop(s) of %s ready; they wait for %s: RETRAIN_ON is %s", len(ready), model.name,
                 " or ".join([*waits, "a forced retrain"]), policy.retrain_on)
        return None
    if not model.target_column:
        log.warning("%d drop(s) of %s ready, but its target column is not set (TARGET_COLUMN, or target in the "
                    "models file): set it to the label column to start training", len(ready), model.name)
        return None
    runs = [r for r in p.state.list(TrainingRun) if r.model_name == model.name]
    wait = retraining.cooldown_left(runs, policy, now)
    if wait > 0:
        log.info("%d drop(s) of %s ready; cooldown: the next run may start in %.0f s", len(ready), model.name, wait)
        return None
    if retraining.one_job_for_ready_drops(policy, cause):
        return submit_training(p, trigger, now, ready)
    first = None
    for drop in ready:
        run = submit_training(p, trigger, now, [drop])
        first = first or run
        if policy.cooldown_minutes > 0:
            break          # this run starts the cooldown; the other drops wait their turn
    return first


def submit_training(p: TrainingPorts, trigger: str, now: datetime, drops: list[Drop], *,
                    key: str = "", only_these: bool = False) -> TrainingRun | None:
    """One job on the model's training window (or, `only_these`, on the drops' files alone), taking the new
    data of `drops`. Its name comes from what it takes (or `key`), so a replay submits nothing new. None if
    the window holds no data file."""
    model = p.policies.model
    stored = p.data.files_under(model.data_root)
    claims = {d.drop_id: retraining.claim(d, stored) for d in drops}
    new = tuple(sorted({b for c in claims.values() for b in c}))
    key = key or hashlib.sha256(",".join(new).encode()).hexdigest()[:24] + "".join(
        f"-{d.attempts}" for d in drops if d.attempts)
    name = job_name_for(model.name, trigger, key)
    run = p.state.get(TrainingRun, name)
    if run is None:
        ours = [d for d in drops if claims[d.drop_id]]
        current = [p.state.get(Drop, d.drop_id) or d for d in ours]
        if ours and all(c.job and c.job not in (d.job, name) for c, d in zip(current, ours, strict=True)):
            return taken(p, current[0])      # another trigger took all of them since they were read
        run = _record_run(p, trigger, now, name, ours, new, claims, stored, only_these)
        if run is None:
            log.warning("no training job for %s: its training window (%s of %s) holds no data file", model.name,
                        model.training_window, p.data.url_of(model.data_root))
            return None
    claimed = [d for d in drops if claims[d.drop_id] and _claim(p, d, run.job_name, claims[d.drop_id])]
    if drops and run.drop_ids and not claimed and not _ours_already(p, run):
        finish_run(p, name, RunStatus.CANCELED, "not submitted: other jobs took its drops first")
        return taken(p, p.state.get(Drop, run.drop_ids[0]) or drops[0])
    p.jobs.submit(request_for(run, model))
    log.info("submitted training job %s (%s) on %d file(s) of %s (%d new batch(es)), champion %s", name, trigger,
             len(run.data_files), run.data_url, len(run.new_batches), run.champion or "none")
    announce_started(p, run)
    return run


def announce_started(p: TrainingPorts, run: TrainingRun) -> None:
    """MLOps.TrainingStarted, once per job."""
    announce(p, told.TRAINING_STARTED, f"jobs/{run.job_name}",
             {"job": run.job_name, "model": run.model_name, "trigger": run.trigger, "data": run.data_url,
              "newBatches": len(run.new_batches), "files": len(run.data_files), "champion": run.champion},
             run.job_name)


def _record_run(p: TrainingPorts, trigger: str, now: datetime, name: str, drops: list[Drop], new: tuple[str, ...],
                claims: dict[str, tuple[str, ...]], stored: list[StoredBlob], only_these: bool) -> TrainingRun | None:
    """The run's record, with the window it will read: what jobs took before, and what it takes now."""
    model = p.policies.model
    after = {d.drop_id: d.taken_by(name, claims[d.drop_id]) for d in drops}
    every = [] if only_these else [after.get(d.drop_id, d) for d in retraining.model_drops(p.state.list(Drop), model)]
    every += [d for d in after.values() if d.drop_id not in {e.drop_id for e in every}]
    busy = {r.job_name for r in p.state.list(TrainingRun)
            if r.model_name == model.name and r.status == RunStatus.SUBMITTED and r.job_name != name}
    window = retraining.training_window(model, every, stored, now, busy)
    if not window:
        return None
    def relative(blobs: list[StoredBlob]) -> tuple[str, ...]:
        return tuple(b.path[len(model.data_root):] for b in blobs)

    def batch_id(blob: StoredBlob) -> str:
        return retraining.batch_id(blob, model.data_container)
    run = TrainingRun(job_name=name, model_name=model.name, trigger=trigger, data_url=p.data.url_of(model.data_root),
                      drop_id=drops[0].drop_id if drops else "", drops=tuple(d.drop_id for d in drops),
                      new_batches=new, data_batches=tuple(batch_id(b) for b in window),
                      data_files=relative(window),
                      holdout_files=relative([b for b in window if batch_id(b) in new]),
                      champion=live_model(p), submitted_at=iso(now))
    if not p.state.create(run):
        run = p.state.get(TrainingRun, name) or run
    return run


def _claim(p: TrainingPorts, seen: Drop, job: str, batches: tuple[str, ...]) -> bool:
    """Compare-and-swap: the drop is taken unless another job took it since it was read."""
    def change(d: Drop | None) -> Drop | None:
        if d is None or d.job not in (seen.job, job):
            return None
        return None if d.job == job and set(batches) <= set(d.trained) else d.taken_by(job, batches)
    after = p.state.update(Drop, seen.drop_id, change)
    return after is not None and after.job == job


def _ours_already(p: TrainingPorts, run: TrainingRun) -> bool:
    return any((d := p.state.get(Drop, drop_id)) is not None and d.job == run.job_name for drop_id in run.drop_ids)


def request_for(run: TrainingRun, model: ManagedModel) -> TrainingRequest:
    window = model.training_window
    rows = window.kind == "column"      # a date column's window: every file, its rows filtered by the job
    return TrainingRequest(job_name=run.job_name, model_name=run.model_name, data=run.data_url,
                           target=model.target_column, trigger=run.trigger, data_batches=run.new_batches,
                           champion=run.champion or None, hyperparameters=dict(model.training_inputs),
                           task=model.task, spec=model.training_spec, data_files=run.data_files,
                           holdout_files=run.holdout_files, window_column=window.column if rows else "",
                           window_days=window.size if rows else 0)


def resume_submissions(p: TrainingPorts) -> None:
    """Runs recorded as submitted whose job the platform does not know: an invocation stopped between the
    record and the submission. Submit them again, unless other jobs took all their drops meanwhile."""
    model = p.policies.model
    stored: list[StoredBlob] | None = None
    for run in p.state.list(TrainingRun):
        if run.model_name != model.name or run.status != RunStatus.SUBMITTED or p.jobs.get(run.job_name) is not None:
            continue
        drops = [d for d in (p.state.get(Drop, i) for i in run.drop_ids) if d is not None]
        if drops and all(d.job and d.job != run.job_name for d in drops):
            finish_run(p, run.job_name, RunStatus.CANCELED, f"never submitted: job {drops[0].job} took its drops")
            continue
        stored = p.data.files_under(model.data_root) if stored is None else stored
        for d in drops:
            if not d.job:
                _claim(p, d, run.job_name, retraining.claim(d, stored))
        log.warning("job %s was recorded but never reached the platform: submitting it again", run.job_name)
        p.jobs.submit(request_for(run, model))
        announce_started(p, run)


def finish_run(p: RunRecordPorts, job_name: str, status: str, error: str = "") -> TrainingRun | None:
    return p.state.update(TrainingRun, job_name,
                          lambda run: replace(run, status=status, error=error, finished_at=clock.utcnow())
                          if run and run.status != status else None)


def release_drops(p: RunRecordPorts, run: TrainingRun, reason: str) -> list[Drop]:
    """The platform lost the run's job (not the data's fault): its drops' new data is offered to a new job,
    a few times."""
    def change(d: Drop | None) -> Drop | None:
        if d is None or d.job != run.job_name or not retraining.may_retry(d, p.policies.retrain):
            return None
        return d.released()
    released = [d for d in (p.state.update(Drop, i, change) for i in run.drop_ids) if d]
    for d in released:
        log.warning("drop %s is offered again (attempt %d of %d): %s", d.prefix, d.attempts + 1,
                    p.policies.retrain.max_drop_attempts, reason)
    return released


def keep_out_failed_data(p: RunRecordPorts, run: TrainingRun, error: str) -> list[Drop]:
    """The job failed on a file of a drop it took (its error names the folder or file): that data stays out
    of later training windows, so one bad file does not fail every run after it. Uploading a fixed file
    makes it new data again."""
    def change(d: Drop | None) -> Drop | None:
        return d.failed_job() if d is not None and d.job == run.job_name and d.prefix in error else None
    kept_out = [d for d in (p.state.update(Drop, i, change) for i in run.drop_ids) if d]
    for d in kept_out:
        log.warning("the files job %s took from %s are left out of later training: %s", run.job_name, d.prefix, error)
    return kept_out


def taken(p: TrainingPorts, drop: Drop) -> TrainingRun:
    """The run of the job that took the drop (its record, or one rebuilt from the drop if the record is lost)."""
    log.info("drop %s is already taken by job %s", drop.prefix, drop.job)
    return p.state.get(TrainingRun, drop.job) or TrainingRun(
        job_name=drop.job, model_name=p.policies.model.name, trigger="", data_url=drop.url, drop_id=drop.drop_id,
        drops=(drop.drop_id,))


def live_model(p: TrainingPorts) -> str:
    """The model version serving the endpoint now ("name:version"), or "" before the first release."""
    rollout = p.state.get(Rollout, p.policies.model.endpoint)
    return rollout.live_model if rollout else ""
