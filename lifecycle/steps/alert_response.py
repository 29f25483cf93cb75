"""Alerts → retraining: deduplicate, respect the cooldown, and train on fresh data.

Fresh data, in order of preference:
1. the live deployment's own recent traffic with its ground-truth labels (the collected inputs joined
   to the feedback container), written to the data container as a drop `production/<endpoint>/<model>/`
   (one per live model, so alerts raised together share it and its job): after a concept change these
   are the only rows labelled by the new rule;
2. a complete drop in the data container nobody has trained on;
otherwise the alert is recorded as waiting for data (the next drop trains anyway).

Signals that retraining does not mend (data quality, fairness) are recorded for a person instead; a drift or
performance signal whose kind RETRAIN_ON leaves out (retrain.on in the models file) is recorded and starts nothing.

A redelivered alert that was acted on returns the first record. One that could not be acted on yet (no
fresh data, cooldown, training busy, or not a retrain trigger: RETRAIN_ON may have changed since) is tried
again when it comes again: the monitor re-publishes an alert on every pass while its signal stays breached."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from lifecycle.core import model_catalog, retraining
from lifecycle.core.alert_sources import FIRED, Alert, retrain_trigger
from lifecycle.core.labelled_rows import labelled_rows, rows_to_csv
from lifecycle.core.retraining import cooldown_left
from lifecycle.core.state_records import AlertOutcome, AlertRecord, Drop, RunStatus, TrainingRun
from lifecycle.core.times import iso, parse_time
from lifecycle.model_scope import scoped
from lifecycle.ports import (
    UsesCollected,
    UsesData,
    UsesEvents,
    UsesFeedback,
    UsesJobs,
    UsesMetrics,
    UsesPolicies,
    UsesRegistry,
    UsesState,
)
from lifecycle.steps.monitoring_runs import live_window
from lifecycle.steps.training_runs import start_ready_training, submit_training

log = logging.getLogger("lifecycle.alerts")
WAITING = (AlertOutcome.NO_FRESH_DATA, AlertOutcome.COOLDOWN, AlertOutcome.TRAINING_RUNNING,
           AlertOutcome.NOT_A_TRIGGER)
NO_RETRAIN = {"data_quality": "a data-quality breach: fix the data upstream; a model retrained on it would learn "
                              "the errors",
              "fairness": "a fairness breach: retraining on the same data reproduces the bias; a person has to "
                          "decide (reweighting, a fairness constraint, more data from the affected group)"}


class AlertPorts(UsesPolicies, UsesState, UsesJobs, UsesRegistry, UsesCollected, UsesMetrics, UsesEvents, UsesData,
                 UsesFeedback, Protocol):
    """What the alert response uses of the platform."""


def handle_alert(alert: Alert, p: AlertPorts, now: datetime) -> AlertRecord:
    """Record the alert and act for the model it concerns (found from its endpoint or model name)."""
    policies = model_catalog.by_alert(p.catalog, alert.evidence)
    if policies is not None:
        p = scoped(p, policies)
    record = AlertRecord(alert_key=AlertRecord.key_for(alert.identity), alert_id=alert.alert_id,
                         condition=alert.condition, source=alert.source, signal=alert.signal, summary=alert.summary,
                         fired_at=alert.fired_at, received_at=iso(now), evidence=dict(alert.evidence),
                         model=policies.model.name if policies else "")
    if not p.state.create(record):
        existing = p.state.get(AlertRecord, record.key)
        if existing is not None and _fired_again(alert, existing, now):
            # The signal resolved and is breached again: a new episode, acted on afresh (not "already handled")
            existing = p.state.update(AlertRecord, record.key,
                                      lambda r: record if r is not None and r.resolved_at == existing.resolved_at
                                      else None)
        if existing is not None and existing.outcome and existing.outcome not in WAITING:
            log.info("alert %s (%s) already handled: %s", alert.alert_id, alert.condition, existing.outcome)
            return existing
        record = existing or record          # a retry of an attempt that failed half-way: finish it
    outcome: str
    if policies is None:
        names = ", ".join(m.model.name for m in p.catalog)
        outcome, detail, job = (AlertOutcome.NEEDS_A_PERSON, f"the alert names none of this app's models ({names}) "
                                "by endpoint or model name: nothing is retrained", "")
    else:
        outcome, detail, job = _act(alert, p, now)
    log.warning("alert %s from %s (%s, %s): %s%s", alert.alert_id, alert.source, alert.signal, alert.condition,
                outcome, f" — {detail}" if detail else "")
    return p.state.update(AlertRecord, record.key,
                          lambda r: replace(r or record, outcome=outcome, detail=detail, job=job)) or record


def _act(alert: Alert, p: AlertPorts, now: datetime) -> tuple[str, str, str]:
    if not alert.fired:
        fired_key = AlertRecord.key_for(f"{alert.alert_id}|{FIRED}")
        p.state.update(AlertRecord, fired_key,
                       lambda r: replace(r, resolved_at=iso(now)) if r and not r.resolved_at else None)
        return AlertOutcome.RESOLVED, "a resolved alert is not a new one: nothing to do", ""
    if alert.signal in NO_RETRAIN:
        return AlertOutcome.NEEDS_A_PERSON, NO_RETRAIN[alert.signal], ""
    kind = retrain_trigger(alert)
    policy = p.policies.retrain
    if not retraining.starts(policy, kind):
        return AlertOutcome.NOT_A_TRIGGER, (f"RETRAIN_ON (retrain.on in a models file) is {policy.retrain_on!r}: "
                                            f"a {kind} alert starts no training; add {kind!r} to retrain on it"), ""
    runs = [r for r in p.state.list(TrainingRun) if r.model_name == p.policies.model.name]
    running = [r for r in runs if r.status == RunStatus.SUBMITTED]
    if running:
        return AlertOutcome.TRAINING_RUNNING, f"job {running[0].job_name} is still running", running[0].job_name
    recent = _recent_alert_training(p, now)
    if recent is not None:
        return AlertOutcome.COOLDOWN, (f"alert {recent.alert_id} started job {recent.job} at {recent.received_at}; "
                            f"ALERT_COOLDOWN_MINUTES is {p.policies.monitor.alert_cooldown_minutes:g}"), ""
    wait = cooldown_left(runs, p.policies.retrain, now)
    if wait > 0:
        return AlertOutcome.COOLDOWN, f"the retrain cooldown allows the next run in {wait:.0f} s", ""
    if not p.policies.model.target_column:
        return AlertOutcome.NO_FRESH_DATA, "TARGET_COLUMN is not set, so no labelled data can be assembled", ""
    # the alert decided (its kind is a trigger): a ready drop trains for it even if RETRAIN_ON leaves out data
    run = _train_on_production(p, alert, now) or start_ready_training(p, now, trigger="drift", cause=kind)
    if run is None:
        return AlertOutcome.NO_FRESH_DATA, ("too few labelled production rows and no new drop in the data "
                                            "container: the next drop will train"), ""
    return AlertOutcome.RETRAINING, f"training job {run.job_name} on {run.data_url}", run.job_name


def _fired_again(alert: Alert, existing: AlertRecord, now: datetime) -> bool:
    """A fired alert whose earlier firing has resolved since: our monitor keeps one alert id per model and signal,
    so a second breach weeks later comes with the same id. A redelivery of the first firing (fired before it
    resolved) is not a new one."""
    return alert.fired and bool(existing.resolved_at) and _fired_at(alert, now) > parse_time(existing.resolved_at)


def _recent_alert_training(p: AlertPorts, now: datetime) -> AlertRecord | None:
    horizon = now - timedelta(minutes=p.policies.monitor.alert_cooldown_minutes)
    started = [a for a in p.state.list(AlertRecord) if a.job and a.outcome == AlertOutcome.RETRAINING
               and a.model in ("", p.policies.model.name) and parse_time(a.received_at) > horizon]
    return max(started, key=lambda a: a.received_at) if started else None


def _train_on_production(p: AlertPorts, alert: Alert, now: datetime) -> TrainingRun | None:
    """The live deployment's labelled traffic as a new drop, trained on at once and alone: the world as it is
    now, whatever the model's window (its files join the model's data for later runs). Alerts that fired before the
    live model's latest production drop was written (drift and concept drift from one monitor pass) share
    that drop and its job; one that fired later (the challenger trained on it was rolled back, and the drift
    goes on) gets a new drop with the traffic seen since."""
    window = live_window(p, now)
    if window is None:
        return None
    model_prefix = f"{p.policies.model.data_root}production/{window.endpoint}/{window.model.replace(':', '-')}/"
    rounds = sorted((d for d in p.state.list(Drop) if d.prefix.startswith(model_prefix)), key=lambda d: d.prefix)
    if rounds and not _fired_after(alert, rounds[-1], now):
        latest = rounds[-1]
        return submit_training(p, "drift", now, [latest], key=latest.drop_id, only_these=True)   # the same job again
    prefix = f"{model_prefix}{len(rounds) + 1:03d}/"
    drop_id = Drop.id_for(p.policies.model.data_container, prefix)
    labels = p.feedback.labels(window.since, window.until, p.policies.model.target_column)
    rows = labelled_rows(p.collected.records(window.endpoint, window.deployment, "model_inputs", window.since,
                                             window.until), labels, p.policies.model.target_column) if labels else []
    if len(rows) < p.policies.monitor.min_labels:
        log.info("alert %s: %d labelled production rows, fewer than MONITOR_MIN_LABELS (%g)", alert.alert_id,
                 len(rows), p.policies.monitor.min_labels)
        return None
    # The data first, then its record: a crash in between leaves data that its own events record and train,
    # never a record of data the storage did not keep. Whichever claims the drop first (this alert, another,
    # or its BlobCreated events) submits the one job; the others find it taken.
    url = p.data.write_drop(prefix, {"part-0000.csv": rows_to_csv(rows)})
    log.info("alert %s: %d labelled production rows from %s written to %s", alert.alert_id, len(rows),
             window.deployment, url)
    stamp = iso(now)
    new = Drop(drop_id=drop_id, container=p.policies.model.data_container, prefix=prefix, url=url, marker=True,
               first_seen=stamp, last_seen=stamp)
    drop = p.state.update(Drop, drop_id, lambda current: None if current is not None else new) or new
    return submit_training(p, "drift", now, [drop], key=drop_id, only_these=True)


def _fired_after(alert: Alert, drop: Drop, now: datetime) -> bool:
    # drops are stamped to the second
    return _fired_at(alert, now).replace(microsecond=0) > parse_time(drop.first_seen)


def _fired_at(alert: Alert, now: datetime) -> datetime:
    """When the alert fired (now, if its time is missing or unreadable); parse_time reads a naive time as UTC."""
    try:
        return parse_time(alert.fired_at) if alert.fired_at else now
    except ValueError:
        return now

