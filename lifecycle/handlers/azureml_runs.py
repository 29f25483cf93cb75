"""Azure ML runs ending: a training run (gate and register its model, or record why not), one of our
monitoring jobs (store its pass), or a model monitor's breach (an alert)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from lifecycle import clock
from lifecycle.core import alert_sources, model_catalog
from lifecycle.core.incoming_events import RunCompleted, RunStatusChanged
from lifecycle.core.policies import DATA, Policies
from lifecycle.core.state_records import Decision, MonitorRun, TrainingRun
from lifecycle.model_scope import scoped
from lifecycle.steps.alert_response import AlertPorts, handle_alert
from lifecycle.steps.compute_usage import ComputePorts, check_training_time
from lifecycle.steps.model_registration import FAILED, RegistrationPorts, gate_and_register, record_failure
from lifecycle.steps.monitoring_runs import MonitoringPorts, is_monitoring_job, job_ended
from lifecycle.steps.training_runs import start_ready_training

log = logging.getLogger("lifecycle.registration")


class RunPorts(AlertPorts, RegistrationPorts, MonitoringPorts, ComputePorts, Protocol):
    """What handling a run's end uses of the platform."""


def run_completed(event: RunCompleted, p: RunPorts) -> Decision | MonitorRun | None:
    if is_monitoring_job(event):
        return job_ended(event, p)
    policies = _model_of(event, p)
    if policies is None:
        return None
    p = scoped(p, policies)
    decision = gate_and_register(p, event.run_id)
    try:
        check_training_time(p, event.run_id, clock.now())
    except Exception:        # watching the run's length must not undo its registration; the next status shows it
        log.exception("could not check how long training job %s took", event.run_id)
    return decision


def run_status_changed(event: RunStatusChanged, p: RunPorts, now: datetime | None = None) -> object:
    """A model monitor's breach is an alert; our monitoring job's failure is its pass's; a training run of
    this app that failed is recorded (and its drop, if the platform lost the job, offered again)."""
    now = now or clock.now()
    if event.monitor_breach:
        return handle_alert(alert_sources.from_event(event), p, now)
    if is_monitoring_job(event):
        return job_ended(event, p)
    policies = _model_of(event, p) if event.run_status in FAILED else None
    if policies is None:
        return None
    p = scoped(p, policies)
    status = p.jobs.get(event.run_id)
    retryable = bool(status and status.retryable)
    run = record_failure(p, event.run_id, event.run_status, status.error if status else None, retryable=retryable)
    if retryable:
        start_ready_training(p, now, cause=DATA)     # its drop, offered again, trains now (RETRAIN_ON has data)
    return run


def _model_of(event: RunCompleted | RunStatusChanged, p: RunPorts) -> Policies | None:
    """The model of one of this app's training runs: by its record, or by its tag if the record is missing."""
    run = p.state.get(TrainingRun, event.run_id)
    found = model_catalog.by_name(p.catalog, run.model_name if run else event.run_tags.get("mlops.model_name", ""))
    if found is None:
        log.info("ignored run %s of experiment %s: not a training run of this app", event.run_id,
                 event.experiment_name)
    return found
