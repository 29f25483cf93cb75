"""Starting training: on a complete drop (data), on the retrain schedule, or when forced."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from lifecycle import policy
from lifecycle.ml import TrainingRequest, job_name_for
from lifecycle.ports import Platform
from lifecycle.records import Drop, TrainingRun, utcnow
from lifecycle.rollout import Rollout

log = logging.getLogger("lifecycle.training")


def start_ready_training(p: Platform, now: datetime, trigger: str = "data") -> TrainingRun | None:
    """Train on the newest complete drop nobody has trained on, if the cooldown allows."""
    settings = p.settings
    ready = policy.ready_drops(p.state.list(Drop), settings, now)
    if not ready:
        return None
    if not settings.target_column:
        log.warning("%d drop(s) ready, but TARGET_COLUMN is not set: set it to the label column to start training",
                    len(ready))
        return None
    wait = policy.cooldown_left(p.state.list(TrainingRun), settings, now)
    if wait > 0:
        log.info("%d drop(s) ready; cooldown: the next run may start in %.0f s", len(ready), wait)
        return None
    newest = ready[-1]
    run = submit_training(p, trigger, newest.url, key=newest.drop_id, drop=newest)
    for older in ready[:-1]:   # trained on the newest data instead; recorded so they are not picked up later
        p.state.update(Drop, older.drop_id, lambda d: replace(d, job=f"skipped: newer drop in {run.job_name}")
                       if d and not d.job else None)
    return run


def retrain_on_schedule(p: Platform, now: datetime, forced: bool = False) -> TrainingRun | None:
    """The scheduled retrain: only if there is data the live model has not seen, unless forced."""
    run = start_ready_training(p, now, trigger="schedule")
    if run or not forced:
        if not run:
            log.info("scheduled retrain: no new data since the last run")
        return run
    drops = sorted((d for d in p.state.list(Drop) if d.batches), key=lambda d: d.last_seen)
    if not drops:
        log.warning("forced retrain: there is no data in the '%s' container yet", p.settings.data_container)
        return None
    return submit_training(p, "forced", drops[-1].url, key=f"{drops[-1].drop_id}-{now:%Y%m%dT%H%M%S}")


def submit_training(p: Platform, trigger: str, data_url: str, *, key: str, drop: Drop | None = None) -> TrainingRun:
    settings = p.settings
    name = job_name_for(settings.model_name, trigger, key)
    champion = live_model(p)
    run = TrainingRun(job_name=name, model_name=settings.model_name, trigger=trigger, data_url=data_url,
                      drop_id=drop.drop_id if drop else "", data_batches=drop.batches if drop else (),
                      champion=champion, submitted_at=utcnow())
    if not p.state.create(run):
        run = p.state.get(TrainingRun, name) or run
    p.jobs.submit(TrainingRequest(
        job_name=name, model_name=settings.model_name, data=data_url, target=settings.target_column,
        trigger=trigger, data_batches=run.data_batches, champion=champion or None))
    if drop:
        p.state.update(Drop, drop.drop_id, lambda d: replace(d, job=name) if d and not d.job else None)
    log.info("submitted training job %s (%s) on %s, champion %s", name, trigger, data_url, champion or "none")
    return run


def live_model(p: Platform) -> str:
    """The model version serving the endpoint now ("name:version"), or "" before the first release."""
    rollout = p.state.get(Rollout, p.settings.endpoint_name)
    return rollout.live_model if rollout else ""
