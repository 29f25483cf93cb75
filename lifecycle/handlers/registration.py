"""A training run ended: gate the challenger and register it with its lineage, or record why not; a
person decides on a challenger the gate held."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from lifecycle.core import registration_gate as gate
from lifecycle.core.incoming_events import RunCompleted, RunStatusChanged
from lifecycle.core.state_records import Decision, Drop, MonitorRun, TrainingRun, utcnow
from lifecycle.handlers.monitoring import is_monitoring_job
from lifecycle.handlers.monitoring import job_ended as monitoring_job_ended
from lifecycle.handlers.training import finish_run, release_drop, start_ready_training
from lifecycle.ports import Platform

log = logging.getLogger("lifecycle.registration")
FAILED = ("Failed", "Canceled", "NotResponding")
OUTCOMES = {gate.PASS: "registered", gate.FAIL: "rejected", gate.HOLD: "held"}


def run_completed(event: RunCompleted, p: Platform) -> Decision | MonitorRun | None:
    if is_monitoring_job(event):
        return monitoring_job_ended(event, p)
    if not _ours(event, p):
        return None
    return gate_and_register(p, event.run_id)


def run_status_changed(event: RunStatusChanged, p: Platform) -> TrainingRun | None:
    if event.run_status not in FAILED or not _ours(event, p):
        return None
    status = p.jobs.get(event.run_id)
    retryable = bool(status and status.retryable)
    run = record_failure(p, event.run_id, event.run_status, status.error if status else None, retryable=retryable)
    if retryable:
        start_ready_training(p, datetime.now(UTC))     # its drop, offered again, trains now
    return run


def _ours(event: RunCompleted | RunStatusChanged, p: Platform) -> bool:
    if p.state.get(TrainingRun, event.run_id) is not None:
        return True
    if event.run_tags.get("mlops.model_name") == p.settings.model_name:
        return True   # submitted by this app but its record is missing: still ours
    log.info("ignored run %s of experiment %s: not a training run of this app", event.run_id, event.experiment_name)
    return False


def gate_and_register(p: Platform, job_name: str) -> Decision:
    settings = p.settings
    existing = p.state.get(Decision, job_name)
    if existing is not None and (existing.outcome in ("rejected", "held") or existing.version):
        log.info("job %s already decided: %s", job_name, existing.outcome)
        finish_run(p, job_name, "Completed")     # a run recorded again after a crash lost its first record
        return existing
    run = p.state.get(TrainingRun, job_name)
    evaluation = p.jobs.metrics(job_name)
    verdict = gate.judge(evaluation, settings, champion_expected=bool(run and run.champion))
    decision = Decision(
        job_name=job_name, model_name=settings.model_name, outcome=OUTCOMES[verdict.outcome],
        reasons=verdict.reasons, metric=verdict.metric, metrics=evaluation.get("metrics") or {},
        champion=run.champion if run else "", champion_metrics=evaluation.get("champion"), decided_at=utcnow())
    if verdict.passed:
        version = _register(p, job_name, run, evaluation)
        decision = replace(decision, version=version)
        log.info("registered %s:%s from job %s: %s", settings.model_name, version, job_name, "; ".join(verdict.reasons))
    elif verdict.outcome == gate.HOLD:
        log.warning("held the model of job %s for a person: %s", job_name, "; ".join(verdict.reasons))
        p.events.publish("MLOps.ModelHeld", f"jobs/{job_name}", {"job": job_name, "model": settings.model_name,
                                                                   "reasons": list(verdict.reasons)})
    else:
        log.warning("rejected the model of job %s: %s", job_name, "; ".join(verdict.reasons))
    p.state.update(Decision, job_name, lambda current: decision if current is None or not current.version else None)
    finish_run(p, job_name, "Completed")
    return decision


def review(p: Platform, job_name: str, approve: bool, by: str) -> Decision:
    """A person's decision on a held challenger: register it after all, or reject it."""
    decision = p.state.get(Decision, job_name)
    if decision is None:
        raise ValueError(f"job {job_name} has no gate decision: see `mlops status` for the held ones")
    if decision.outcome != "held":
        raise ValueError(f"job {job_name} was {decision.outcome}" + (f" as version {decision.version}"
                         if decision.version else "") + ", not held for a person")
    note = f"{'approved' if approve else 'rejected'} by {by}"
    reviewed = replace(decision, outcome="registered" if approve else "rejected", reasons=(*decision.reasons, note),
                       reviewed_by=by, reviewed_at=utcnow())
    if approve:
        run = p.state.get(TrainingRun, job_name)
        version = _register(p, job_name, run, p.jobs.metrics(job_name), {"mlops.approved_by": by})
        reviewed = replace(reviewed, version=version)
    stored = p.state.update(Decision, job_name, lambda current: reviewed if current and current.outcome == "held" else None)
    log.warning("job %s: %s", job_name, note)
    return stored or reviewed


def record_failure(p: Platform, job_name: str, status: str, error: str | None,
                   retryable: bool = False) -> TrainingRun | None:
    reason = error or f"the job ended {status} without an error message"
    log.warning("training job %s %s: %s", job_name, status.lower(), reason)
    run = finish_run(p, job_name, status, reason)
    if retryable and run is not None:
        release_drop(p, run, reason)
    return run


def _register(p: Platform, job_name: str, run: TrainingRun | None, evaluation: dict,
              extra_tags: dict[str, str] | None = None) -> str:
    drop = p.state.get(Drop, run.drop_id) if run and run.drop_id else None
    tags = {**_lineage(run, drop, job_name, evaluation), **(extra_tags or {})}
    return p.registry.register(p.settings.model_name, job_name, tags, description=f"trained by {job_name}").version


def _lineage(run: TrainingRun | None, drop: Drop | None, job_name: str, evaluation: dict) -> dict[str, str]:
    tags = {"mlops.job": job_name}
    if run:
        # The drop's batches, not the run's: events arrive out of order, so a part file's event can land
        # after the marker's; the job read the whole folder either way.
        batches = drop.batches if drop else run.data_batches
        tags.update({"mlops.trigger": run.trigger, "mlops.data": run.data_url, "mlops.drop": run.drop_id,
                     "mlops.data_batches": ",".join(batches), "mlops.champion": run.champion})
    for name, value in (evaluation.get("metrics") or {}).items():
        if value is not None:
            tags[f"metric.{name}"] = f"{value:.4f}"
    return tags
