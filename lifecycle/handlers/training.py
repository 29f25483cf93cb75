"""The retrain timer and its HTTP twin: train on data the live model has not seen, or, forced, on the newest."""
from __future__ import annotations

import logging
from datetime import datetime

from lifecycle.core.state_records import Drop, TrainingRun
from lifecycle.steps.training_runs import TrainingPorts, start_ready_training, submit_training, taken

log = logging.getLogger("lifecycle.training")


def retrain_on_schedule(p: TrainingPorts, now: datetime, forced: bool = False) -> TrainingRun | None:
    """The scheduled retrain: only if there is data the live model has not seen, unless forced."""
    run = start_ready_training(p, now, trigger="schedule")
    if run or not forced:
        if not run:
            log.info("scheduled retrain: no new data since the last run")
        return run
    drops = sorted((d for d in p.state.list(Drop) if d.batches), key=lambda d: d.last_seen)
    if not drops:
        log.warning("forced retrain: there is no data in the '%s' container yet", p.policies.model.data_container)
        return None
    newest = drops[-1]
    if not newest.job:              # data still arriving: this job takes the drop, so it is not trained twice
        return submit_training(p, "forced", newest.url, key=newest.job_key, drop=newest)
    job = p.jobs.get(newest.job)
    if job is not None and not job.done:
        log.info("forced retrain: job %s is already training on %s", job.name, newest.url)
        return p.state.get(TrainingRun, job.name) or taken(p, newest)
    return submit_training(p, "forced", newest.url, key=f"{newest.drop_id}-{now:%Y%m%dT%H%M%S}")
