"""A training run ended: gate the challenger and register it with its lineage, or record why not."""
from __future__ import annotations

import logging
from dataclasses import replace

from lifecycle import gate
from lifecycle.events import RunCompleted, RunStatusChanged
from lifecycle.ports import Platform
from lifecycle.records import Decision, Drop, TrainingRun, utcnow

log = logging.getLogger("lifecycle.registration")
FAILED = ("Failed", "Canceled", "NotResponding")


def run_completed(event: RunCompleted, p: Platform) -> Decision | None:
    if not _ours(event, p):
        return None
    return gate_and_register(p, event.run_id)


def run_status_changed(event: RunStatusChanged, p: Platform) -> TrainingRun | None:
    if event.run_status not in FAILED or not _ours(event, p):
        return None
    status = p.jobs.get(event.run_id)
    return record_failure(p, event.run_id, event.run_status, status.error if status else None)


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
    if existing is not None and (existing.outcome == "rejected" or existing.version):
        log.info("job %s already decided: %s", job_name, existing.outcome)
        return existing
    run = p.state.get(TrainingRun, job_name)
    evaluation = p.jobs.metrics(job_name)
    verdict = gate.judge(evaluation, settings)
    decision = Decision(
        job_name=job_name, model_name=settings.model_name, outcome="registered" if verdict.passed else "rejected",
        reasons=verdict.reasons, metric=verdict.metric, metrics=evaluation.get("metrics") or {},
        champion=run.champion if run else "", champion_metrics=evaluation.get("champion"), decided_at=utcnow())
    if verdict.passed:
        drop = p.state.get(Drop, run.drop_id) if run and run.drop_id else None
        version = p.registry.register(settings.model_name, job_name, _lineage(run, drop, job_name, evaluation),
                                      description=f"trained by {job_name}")
        decision = replace(decision, version=version.version)
        log.info("registered %s from job %s: %s", version.ref, job_name, "; ".join(verdict.reasons))
    else:
        log.warning("rejected the model of job %s: %s", job_name, "; ".join(verdict.reasons))
    p.state.update(Decision, job_name, lambda current: decision if current is None or not current.version else None)
    _finish_run(p, job_name, "Completed")
    return decision


def record_failure(p: Platform, job_name: str, status: str, error: str | None) -> TrainingRun | None:
    reason = error or f"the job ended {status} without an error message"
    log.warning("training job %s %s: %s", job_name, status.lower(), reason)
    return _finish_run(p, job_name, status, reason)


def _finish_run(p: Platform, job_name: str, status: str, error: str = "") -> TrainingRun | None:
    return p.state.update(TrainingRun, job_name, lambda run: replace(run, status=status, error=error, finished_at=utcnow())
                          if run and run.status != status else None)


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
