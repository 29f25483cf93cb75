"""The monitor timer: every signal over the live deployment's recent traffic, stored, and alerts out.

The window is the last MONITOR_WINDOW_MINUTES of the live deployment's collected data, starting no
earlier than the rollout that made it live (a colour is reused by later models). Labels are those in
the feedback container written since the window opened, joined on request_id. Nothing is monitored
while a rollout is under way: the canary judge watches the traffic then."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from lifecycle.ports import Platform
from lifecycle.records import MonitorRun, parse_time
from lifecycle.rollout import Rollout
from monitoring.feedback_format import REQUEST_ID

log = logging.getLogger("lifecycle.monitoring")


@dataclass(frozen=True)
class LiveWindow:
    endpoint: str
    deployment: str
    model: str               # "name:version"
    since: datetime
    until: datetime

    @property
    def run_id(self) -> str:
        return f"{self.endpoint}-{self.until:%Y%m%dT%H%M%S}"


def live_window(p: Platform, now: datetime) -> LiveWindow | None:
    r = p.state.get(Rollout, p.settings.endpoint_name)
    if r is None or not r.live_model:
        log.info("monitor: nothing is live on %s yet", p.settings.endpoint_name)
        return None
    if r.active:
        log.info("monitor: the rollout of %s is under way; the canary judge watches the traffic", r.model)
        return None
    since = now - timedelta(minutes=p.settings.monitor_window_minutes)
    if r.phase == "promoted" and r.started_at:
        since = max(since, parse_time(r.started_at))
    return LiveWindow(r.endpoint, r.live_deployment, r.live_model, since, now)


def monitor(p: Platform, now: datetime) -> MonitorRun | None:
    window = live_window(p, now)
    if window is None:
        return None
    done = p.state.get(MonitorRun, window.run_id)
    if done is not None:
        return done                                         # a replayed tick
    name, _, version = window.model.rpartition(":")
    reference = p.registry.reference(name, version)
    if reference is None:
        log.warning("monitor: %s has no reference profile (reference/profile.json): it cannot be monitored",
                    window.model)
        return None
    inputs = _frame(p.collected.records(window.endpoint, window.deployment, "model_inputs", window.since, window.until))
    if len(inputs) < p.settings.monitor_min_rows:
        log.info("monitor: %d rows collected from %s since %s, fewer than MONITOR_MIN_ROWS (%g)", len(inputs),
                 window.deployment, f"{window.since:%H:%M:%S}", p.settings.monitor_min_rows)
        return None
    outputs = _frame(p.collected.records(window.endpoint, window.deployment, "model_outputs", window.since,
                                         window.until))
    labels = p.feedback.labels(window.since, window.until)
    traffic = p.metrics.window(window.endpoint, window.deployment, window.since, window.until)
    utilisation = p.metrics.utilisation(window.endpoint, window.deployment, window.since, window.until)

    from monitoring.monitor import MonitorConfig, evaluate      # numpy, scipy, pandas: only when the timer runs
    previous = _previous(p, window)
    result = evaluate(reference.profile, reference.metrics, inputs, outputs, labels, traffic=traffic,
                      utilisation=utilisation, config=MonitorConfig.from_settings(p.settings),
                      window={"start": window.since.isoformat(), "end": window.until.isoformat(),
                              "endpoint": window.endpoint, "deployment": window.deployment, "model": window.model},
                      previous_alerts=previous.alerts if previous else ())
    run = MonitorRun(run_id=window.run_id, endpoint=window.endpoint, deployment=window.deployment, model=window.model,
                     window_start=window.since.isoformat(), window_end=window.until.isoformat(),
                     result=result.to_dict(), alerts=tuple(a.alert_id for a in result.alerts if a.condition == "Fired"))
    if not p.state.create(run):
        return p.state.get(MonitorRun, run.run_id)
    subject = f"/endpoints/{window.endpoint}/deployments/{window.deployment}"
    for alert in result.alerts:
        p.events.publish(alert.event_type, subject, alert.data())
    log.info("monitor %s on %s: %d rows, %d labelled; %s", window.model, window.deployment, len(inputs),
             result.labelled, "; ".join(a.summary for a in result.alerts) or "no alerts")
    return run


def labelled_window(p: Platform, window: LiveWindow):
    """The window's collected inputs with their ground-truth label in the target column (None: no labels)."""
    labels = p.feedback.labels(window.since, window.until)
    if not labels:
        return None
    inputs = _frame(p.collected.records(window.endpoint, window.deployment, "model_inputs", window.since, window.until))
    if REQUEST_ID not in inputs.columns:
        return None
    inputs = inputs.drop_duplicates(REQUEST_ID, keep="last")
    labelled = inputs[inputs[REQUEST_ID].astype(str).isin(labels.keys())].copy()
    labelled[p.settings.target_column] = [labels[str(i)] for i in labelled[REQUEST_ID]]
    return labelled.drop(columns=[REQUEST_ID])


def _previous(p: Platform, window: LiveWindow) -> MonitorRun | None:
    runs = [r for r in p.state.list(MonitorRun) if r.endpoint == window.endpoint and r.model == window.model
            and r.window_end < window.until.isoformat()]
    return max(runs, key=lambda r: r.window_end) if runs else None


def _frame(records):
    import pandas as pd
    return pd.DataFrame.from_records(list(records))
