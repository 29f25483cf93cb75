"""Starting training runs (on a complete drop, on the retrain schedule, when forced, on an alert) and ending them.

A submission is three writes, each safe to repeat: the run's record, the drop's claim (compare-and-swap,
so of two triggers racing for one drop only one submits), then the job (deterministic name). A crash
between any two leaves a run that reconcile either submits again or closes (resume_submissions)."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from lifecycle import clock
from lifecycle.core import retraining
from lifecycle.core.platform_values import TrainingRequest, job_name_for
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import Drop, RunStatus, TrainingRun
from lifecycle.ports import UsesJobs, UsesPolicies, UsesState

log = logging.getLogger("lifecycle.training")


class TrainingPorts(UsesPolicies, UsesState, UsesJobs, Protocol):
    """What starting and ending training runs uses of the platform."""


def start_ready_training(p: TrainingPorts, now: datetime, trigger: str = "data") -> TrainingRun | None:
    """Train on each complete drop nobody has trained on, oldest first, as far as the cooldown allows;
    returns the first run started."""
    model, policy = p.policies.model, p.policies.retrain
    ready = retraining.ready_drops(p.state.list(Drop), policy, now)
    if not ready:
        return None
    if not model.target_column:
        log.warning("%d drop(s) ready, but TARGET_COLUMN is not set: set it to the label column to start training",
                    len(ready))
        return None
    wait = retraining.cooldown_left(p.state.list(TrainingRun), policy, now)
    if wait > 0:
        log.info("%d drop(s) ready; cooldown: the next run may start in %.0f s", len(ready), wait)
        return None
    first = None
    for drop in ready:
        run = submit_training(p, trigger, drop.url, key=drop.job_key, drop=drop)
        first = first or run
        if policy.cooldown_minutes > 0:
            break          # this run starts the cooldown; the other drops wait their turn
    return first


def submit_training(p: TrainingPorts, trigger: str, data_url: str, *, key: str,
                    drop: Drop | None = None) -> TrainingRun:
    model = p.policies.model
    name = job_name_for(model.name, trigger, key)
    if drop is not None:
        current = p.state.get(Drop, drop.drop_id)
        if current is not None and current.job and current.job != name:
            return taken(p, current)
    run = TrainingRun(job_name=name, model_name=model.name, trigger=trigger, data_url=data_url,
                      drop_id=drop.drop_id if drop else "", data_batches=drop.batches if drop else (),
                      champion=live_model(p), submitted_at=clock.utcnow())
    if not p.state.create(run):
        run = p.state.get(TrainingRun, name) or run
    if drop is not None:
        claimed = p.state.update(Drop, drop.drop_id, lambda d: replace(d, job=name) if d and not d.job else None)
        if claimed is not None and claimed.job != name:       # another trigger took the drop meanwhile
            finish_run(p, name, RunStatus.CANCELED, f"not submitted: job {claimed.job} took drop {drop.prefix} first")
            return taken(p, claimed)
    p.jobs.submit(request_for(run, model.target_column))
    log.info("submitted training job %s (%s) on %s, champion %s", name, trigger, data_url, run.champion or "none")
    return run


def request_for(run: TrainingRun, target: str) -> TrainingRequest:
    return TrainingRequest(job_name=run.job_name, model_name=run.model_name, data=run.data_url, target=target,
                           trigger=run.trigger, data_batches=run.data_batches, champion=run.champion or None)


def resume_submissions(p: TrainingPorts) -> None:
    """Runs recorded as submitted whose job the platform does not know: an invocation stopped between the
    record and the submission. Submit them again, unless their drop went to another job meanwhile."""
    for run in p.state.list(TrainingRun):
        if run.status != RunStatus.SUBMITTED or p.jobs.get(run.job_name) is not None:
            continue
        drop = p.state.get(Drop, run.drop_id) if run.drop_id else None
        if drop is not None and drop.job and drop.job != run.job_name:
            finish_run(p, run.job_name, RunStatus.CANCELED, f"never submitted: job {drop.job} took drop {drop.prefix}")
            continue
        if drop is not None and not drop.job:
            p.state.update(Drop, drop.drop_id,
                           lambda d: replace(d, job=run.job_name) if d and not d.job else None)  # noqa: B023  (called at once)
        log.warning("job %s was recorded but never reached the platform: submitting it again", run.job_name)
        p.jobs.submit(request_for(run, p.policies.model.target_column))


def finish_run(p: TrainingPorts, job_name: str, status: str, error: str = "") -> TrainingRun | None:
    return p.state.update(TrainingRun, job_name,
                          lambda run: replace(run, status=status, error=error, finished_at=clock.utcnow())
                          if run and run.status != status else None)


def release_drop(p: TrainingPorts, run: TrainingRun, reason: str) -> Drop | None:
    """The platform lost the run's job (not the data's fault): its drop is offered to a new job, a few times."""
    if not run.drop_id:
        return None

    def change(d: Drop | None) -> Drop | None:
        if d is None or d.job != run.job_name or not retraining.may_retry(d, p.policies.retrain):
            return None
        return replace(d, job="", attempts=d.attempts + 1)
    released = p.state.update(Drop, run.drop_id, change)
    if released is not None and not released.job:
        log.warning("drop %s is offered again (attempt %d of %d): %s", released.prefix, released.attempts + 1,
                    p.policies.retrain.max_drop_attempts, reason)
    return released


def taken(p: TrainingPorts, drop: Drop) -> TrainingRun:
    """The run of the job that took the drop (its record, or one rebuilt from the drop if the record is lost)."""
    log.info("drop %s is already taken by job %s", drop.prefix, drop.job)
    return p.state.get(TrainingRun, drop.job) or TrainingRun(
        job_name=drop.job, model_name=p.policies.model.name, trigger="", data_url=drop.url, drop_id=drop.drop_id)


def live_model(p: TrainingPorts) -> str:
    """The model version serving the endpoint now ("name:version"), or "" before the first release."""
    rollout = p.state.get(Rollout, p.policies.model.endpoint)
    return rollout.live_model if rollout else ""
