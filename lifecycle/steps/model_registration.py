"""A training run ended: gate the challenger and register it with its lineage, or record why not; a
person decides on a challenger the gate held (review)."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Protocol

from lifecycle.clock import utcnow
from lifecycle.core import model_catalog
from lifecycle.core import notifications as told
from lifecycle.core import registration_gate as gate
from lifecycle.core.state_records import FAILED_STATUSES, Decision, DecisionOutcome, RunStatus, TrainingRun
from lifecycle.model_scope import scoped
from lifecycle.ports import UsesEvents, UsesJobs, UsesPolicies, UsesRegistry, UsesState
from lifecycle.steps.announcements import announce
from lifecycle.steps.training_runs import finish_run, keep_out_failed_data, release_drops

log = logging.getLogger("lifecycle.registration")
FAILED = FAILED_STATUSES
OUTCOMES = {gate.PASS: DecisionOutcome.REGISTERED, gate.FAIL: DecisionOutcome.REJECTED, gate.HOLD: DecisionOutcome.HELD}


class RegistrationPorts(UsesPolicies, UsesState, UsesJobs, UsesRegistry, UsesEvents, Protocol):
    """What gating and registering use of the platform (registering: the workspace registry)."""


def gate_and_register(p: RegistrationPorts, job_name: str) -> Decision:
    model = p.policies.model
    existing = p.state.get(Decision, job_name)
    if existing is not None and (existing.version or existing.outcome in (DecisionOutcome.REJECTED,
                                                                          DecisionOutcome.HELD)):
        log.info("job %s already decided: %s", job_name, existing.outcome)
        _announce(p, existing, unfinished_only=True)     # a first delivery cut short between the record and the event
        _tag_job(p, existing)                            # ...or before the tag (tags merge: a second is harmless)
        finish_run(p, job_name, RunStatus.COMPLETED)     # a run recorded again after a crash lost its first record
        return existing
    run = p.state.get(TrainingRun, job_name)
    evaluation = p.jobs.metrics(job_name)
    verdict = gate.judge(evaluation, p.policies.gate, champion_expected=bool(run and run.champion))
    decision = Decision(
        job_name=job_name, model_name=model.name, outcome=OUTCOMES[verdict.outcome],
        reasons=verdict.reasons, metric=verdict.metric, metrics=evaluation.get("metrics") or {},
        champion=run.champion if run else "", champion_metrics=evaluation.get("champion"), decided_at=utcnow())
    if verdict.passed:
        version = _register(p, job_name, run, evaluation)
        decision = replace(decision, version=version)
        log.info("registered %s:%s from job %s: %s", model.name, version, job_name, "; ".join(verdict.reasons))
    elif verdict.outcome == gate.HOLD:
        log.warning("held the model of job %s for a person: %s", job_name, "; ".join(verdict.reasons))
        announce(p, told.MODEL_HELD, f"jobs/{job_name}", {"job": job_name, "model": model.name,
                                                            "reasons": list(verdict.reasons)}, job_name)
    else:
        log.warning("rejected the model of job %s: %s", job_name, "; ".join(verdict.reasons))
    stored = p.state.update(Decision, job_name,
                            lambda current: decision if current is None or not current.version else None)
    _announce(p, stored or decision)
    _tag_job(p, stored or decision)
    finish_run(p, job_name, RunStatus.COMPLETED)
    return decision


def _tag_job(p: RegistrationPorts, decision: Decision) -> None:
    """The gate's decision on the job itself (its MLflow run's tags), so `mlops runs` and `mlflow ui` show it
    beside the run's metrics. Best effort: the decision is kept in state and announced either way."""
    tags = {"mlops.gate": str(decision.outcome), "mlops.gate_reasons": "; ".join(decision.reasons)[:1000]}
    if decision.version:
        tags["mlops.registered_version"] = f"{decision.model_name}:{decision.version}"
    try:
        p.jobs.tag(decision.job_name, tags)
    except Exception as error:      # a tag is a convenience for people; the lifecycle goes on without it
        log.warning("could not tag job %s with its gate decision: %s", decision.job_name, error)


def _announce(p: RegistrationPorts, decision: Decision, unfinished_only: bool = False, by: str = "") -> None:
    """MLOps.ModelRegistered / ModelRejected for the decision, once (ModelHeld is published where it is held)."""
    event_type = {DecisionOutcome.REGISTERED: told.MODEL_REGISTERED,
                  DecisionOutcome.REJECTED: told.MODEL_REJECTED}.get(DecisionOutcome(decision.outcome))
    if event_type is None:
        return
    data = {"job": decision.job_name, "model": decision.model_name, "version": decision.version,
            "reasons": list(decision.reasons), "metric": decision.metric, "metrics": dict(decision.metrics),
            "champion": decision.champion}
    if by:
        data["by"] = by
    announce(p, event_type, f"jobs/{decision.job_name}", data, decision.job_name, unfinished_only=unfinished_only)


def record_failure(p: RegistrationPorts, job_name: str, status: str, error: str | None,
                   retryable: bool = False) -> TrainingRun | None:
    reason = error or f"the job ended {status} without an error message"
    log.warning("training job %s %s: %s", job_name, status.lower(), reason)
    run = finish_run(p, job_name, status, reason)
    if run is not None:
        announce(p, told.TRAINING_FAILED, f"jobs/{job_name}",
                 {"job": job_name, "model": run.model_name, "status": status, "error": reason,
                  "retried": retryable}, job_name)
    if run is not None and retryable:
        release_drops(p, run, reason)
    elif run is not None:
        keep_out_failed_data(p, run, reason)
    return run


def _register(p: RegistrationPorts, job_name: str, run: TrainingRun | None, evaluation: dict,
              extra_tags: dict[str, str] | None = None) -> str:
    tags = {**_lineage(run, job_name, evaluation), **(extra_tags or {})}
    return p.registry.register(p.policies.model.name, job_name, tags, description=f"trained by {job_name}").version


MAX_TAG_BATCHES = 20     # tags stay short; the run's record keeps every batch it read (`mlops status`)


def _lineage(run: TrainingRun | None, job_name: str, evaluation: dict) -> dict[str, str]:
    tags = {"mlops.job": job_name}
    if run:
        new = run.new_batches or run.data_batches
        listed = ",".join(new[:MAX_TAG_BATCHES]) + (f",+{len(new) - MAX_TAG_BATCHES} more"
                                                     if len(new) > MAX_TAG_BATCHES else "")
        tags.update({"mlops.trigger": run.trigger, "mlops.data": run.data_url, "mlops.drop": run.drop_id,
                     "mlops.data_batches": listed, "mlops.data_files": str(len(run.data_files)),
                     "mlops.champion": run.champion})
    for name, value in (evaluation.get("metrics") or {}).items():
        if value is not None:
            tags[f"metric.{name}"] = f"{value:.4f}"
    return tags


def review(p: RegistrationPorts, job_name: str, approve: bool, by: str) -> Decision:
    """A person's decision on a held challenger: register it after all, or reject it."""
    decision = p.state.get(Decision, job_name)
    if decision is None:
        raise ValueError(f"job {job_name} has no gate decision: see `mlops status` for the held ones")
    if decision.outcome != DecisionOutcome.HELD:
        raise ValueError(f"job {job_name} was {decision.outcome}" + (f" as version {decision.version}"
                         if decision.version else "") + ", not held for a person")
    p = scoped(p, model_catalog.by_name(p.catalog, decision.model_name) or p.policies)
    note = f"{'approved' if approve else 'rejected'} by {by}"
    outcome = DecisionOutcome.REGISTERED if approve else DecisionOutcome.REJECTED
    reviewed = replace(decision, outcome=outcome, reasons=(*decision.reasons, note),
                       reviewed_by=by, reviewed_at=utcnow())
    if approve:
        run = p.state.get(TrainingRun, job_name)
        version = _register(p, job_name, run, p.jobs.metrics(job_name), {"mlops.approved_by": by})
        reviewed = replace(reviewed, version=version)
    stored = p.state.update(Decision, job_name,
                            lambda current: reviewed if current and current.outcome == DecisionOutcome.HELD else None)
    log.warning("job %s: %s", job_name, note)
    if stored is not None and stored.outcome == reviewed.outcome:
        _announce(p, stored, by=by)
        _tag_job(p, stored)
    return stored or reviewed
