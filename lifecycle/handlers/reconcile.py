"""The reconcile tick: what events cannot be relied on for. Data whose event was lost is found (on the
first tick of a process, then hourly); drops whose quiet period or cooldown has passed start training;
submissions cut short are finished; jobs that ended without an event (failed or cancelled runs may emit
nothing) or that the platform lost are settled; registered versions whose event was lost are offered
for rollout; rollouts take their next step."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lifecycle.core import retraining
from lifecycle.core.policies import DATA
from lifecycle.core.state_records import Drop, RunStatus, TrainingRun
from lifecycle.dispatch import reject
from lifecycle.model_scope import each_model
from lifecycle.ports import Platform
from lifecycle.steps.data_batches import find_missed_data
from lifecycle.steps.model_registration import gate_and_register, record_failure
from lifecycle.steps.rollouts import catch_up, tick
from lifecycle.steps.training_runs import resume_submissions, start_ready_training

log = logging.getLogger("lifecycle.reconcile")
DATA_SCAN_EVERY = timedelta(hours=1)
_last_data_scan: datetime | None = None     # per process: a cold start (or a restart after a crash) scans


def reconcile(p: Platform, now: datetime) -> None:
    global _last_data_scan
    if _last_data_scan is None or now - _last_data_scan >= DATA_SCAN_EVERY:
        find_missed_data(p, now)          # each blob goes to its model
        _last_data_scan = now
    each_model(p, lambda q: _reconcile_model(q, now), "reconcile")


def _reconcile_model(p: Platform, now: datetime) -> None:
    resume_submissions(p)
    for run in p.state.list(TrainingRun):
        if run.status != RunStatus.SUBMITTED or run.model_name != p.policies.model.name:
            continue
        status = p.jobs.get(run.job_name)
        if status is None or not status.done:
            continue
        log.info("job %s ended %s with no event handled yet: settling it", run.job_name, status.status)
        if status.status == RunStatus.COMPLETED:
            gate_and_register(p, run.job_name)
        else:
            record_failure(p, run.job_name, status.status, status.error, retryable=status.retryable)
    start_ready_training(p, now, cause=DATA)     # after the settling above: a drop offered again trains at once
    _report_empty_drops(p, now)
    catch_up(p, now)
    tick(p, now)


def _report_empty_drops(p: Platform, now: datetime) -> None:
    """A marker with no data file after the quiet period: nothing will train it. Said once, where
    `mlops status` shows rejections, instead of waiting in silence."""
    drops = retraining.model_drops(p.state.list(Drop), p.policies.model)
    for drop in retraining.empty_drops(drops, p.policies.retrain, now):
        reject(p, {"id": f"drop-{drop.drop_id}", "eventType": "Microsoft.Storage.BlobCreated",
                   "subject": f"/blobServices/default/containers/{drop.container}/blobs/{drop.prefix}",
                   "data": {"url": drop.url}}, "on_data_arrived",
               f"drop {drop.prefix} has a _SUCCESS marker but no data file (empty files do not count): "
               "nothing to train on; upload the data files into it")
