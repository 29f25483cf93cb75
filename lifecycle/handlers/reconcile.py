"""The reconcile tick: what events cannot be relied on for. Drops whose quiet period or cooldown has
passed start training; jobs that ended without an event (failed or cancelled runs may emit nothing)
are settled; rollouts take their next step."""
from __future__ import annotations

import logging
from datetime import datetime

from lifecycle.handlers.registration import gate_and_register, record_failure
from lifecycle.handlers.rollout import tick
from lifecycle.handlers.training import start_ready_training
from lifecycle.ports import Platform
from lifecycle.records import TrainingRun

log = logging.getLogger("lifecycle.reconcile")


def reconcile(p: Platform, now: datetime) -> None:
    start_ready_training(p, now)
    for run in p.state.list(TrainingRun):
        if run.status != "Submitted":
            continue
        status = p.jobs.get(run.job_name)
        if status is None or not status.done:
            continue
        log.info("job %s ended %s with no event handled yet: settling it", run.job_name, status.status)
        if status.status == "Completed":
            gate_and_register(p, run.job_name)
        else:
            record_failure(p, run.job_name, status.status, status.error)
    tick(p, now)
