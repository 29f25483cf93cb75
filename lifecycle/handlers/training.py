"""The retrain timer and its HTTP twin: train on data the live model has not seen (if RETRAIN_ON has
`schedule`), or, forced, on the newest."""
from __future__ import annotations

import logging
from datetime import datetime

from lifecycle.core import retraining
from lifecycle.core.policies import SCHEDULE
from lifecycle.core.state_records import Drop, TrainingRun
from lifecycle.model_scope import each_model, for_model
from lifecycle.steps.model_turns import take_turn
from lifecycle.steps.training_runs import TrainingPorts, start_ready_training, submit_training, taken

log = logging.getLogger("lifecycle.training")


def retrain_models(p: TrainingPorts, now: datetime, forced: bool = False, model: str = "") -> list[TrainingRun]:
    """The retrain timer (each model in turn), or a forced retrain of the named model (of each, if "")."""
    if model:
        run = retrain_on_schedule(for_model(p, model), now, forced)
        return [run] if run else []
    def turn(q: TrainingPorts) -> TrainingRun | None:
        if not forced and not take_turn(q, "retrain", q.policies.retrain.schedule, now):
            return None                # not this model's turn: its own schedule (the models file)
        return retrain_on_schedule(q, now, forced)
    return [run for run in each_model(p, turn, "the retrain timer") if run]


def retrain_on_schedule(p: TrainingPorts, now: datetime, forced: bool = False) -> TrainingRun | None:
    """The scheduled retrain: only if RETRAIN_ON has `schedule` and there is data the live model has not seen
    (without `data` in RETRAIN_ON, all of it in one run); forced: always, on the newest data if none is new."""
    policy = p.policies.retrain
    cause = retraining.FORCED if forced else SCHEDULE
    if not retraining.starts(policy, cause):
        log.info("scheduled retrain of %s: not on the timer's turn (RETRAIN_ON is %s)", p.policies.model.name,
                 policy.retrain_on)
        return None
    run = start_ready_training(p, now, trigger="schedule", cause=cause)
    if run or not forced:
        if not run:
            log.info("scheduled retrain of %s: no new data since the last run", p.policies.model.name)
        return run
    model = p.policies.model
    drops = sorted((d for d in retraining.model_drops(p.state.list(Drop), model) if d.batches),
                   key=lambda d: d.last_seen)
    if not drops:
        log.warning("forced retrain of %s: there is no data under '%s' in the '%s' container yet", model.name,
                    model.data_root or "/", model.data_container)
        return None
    newest = drops[-1]
    if newest.pending:              # data still arriving: this job takes it, so it is not trained twice
        return submit_training(p, "forced", now, [newest])
    job = p.jobs.get(newest.job)
    if job is not None and not job.done:
        log.info("forced retrain: job %s is already training on %s", job.name, newest.url)
        return p.state.get(TrainingRun, job.name) or taken(p, newest)
    return submit_training(p, "forced", now, [], key=f"{model.name}-{now:%Y%m%dT%H%M%S}")
