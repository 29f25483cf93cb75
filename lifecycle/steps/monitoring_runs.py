"""The monitor timer: a monitoring job over the live deployment's recent traffic, and, when the job ends,
its result stored and its alerts out.

The window is the last MONITOR_WINDOW_MINUTES of the live deployment's collected data, starting no
earlier than the rollout that made it live (a colour is reused by later models). The timer submits
monitoring/job.yml over it (the computation needs numpy, scipy, pandas, scikit-learn and fairlearn, which the
Function App does not carry) and returns; the job reads the collected inputs and outputs and the feedback
container's labels (joined on request_id) and writes result.json and alerts.json. Its RunCompleted event
(or RunStatusChanged, for a failure) brings the result back: stored as the window's MonitorRun, and each
alert published once. Nothing is monitored while a rollout is under way: the canary judge watches the
traffic then; and one pass runs at a time, so each knows the alerts the one before fired."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from lifecycle.core import model_catalog
from lifecycle.core.incoming_events import RunCompleted, RunStatusChanged
from lifecycle.core.platform_values import MONITORING, MonitoringRequest, monitoring_job_name_for
from lifecycle.core.rollout_machine import Phase, Rollout
from lifecycle.core.state_records import FAILED_STATUSES, MonitorRun, RunStatus, blob_url
from lifecycle.core.times import parse_time
from lifecycle.model_scope import scoped
from lifecycle.ports import (
    UsesCollected,
    UsesData,
    UsesEvents,
    UsesJobs,
    UsesMetrics,
    UsesPolicies,
    UsesRegistry,
    UsesState,
)

log = logging.getLogger("lifecycle.monitoring")


class MonitoringPorts(UsesPolicies, UsesState, UsesJobs, UsesRegistry, UsesCollected, UsesMetrics, UsesEvents,
                      UsesData, Protocol):
    """What monitoring passes use of the platform."""


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


def live_window(p: MonitoringPorts, now: datetime) -> LiveWindow | None:
    r = p.state.get(Rollout, p.policies.model.endpoint)
    if r is None or not r.live_model:
        log.info("monitor: nothing is live on %s yet", p.policies.model.endpoint)
        return None
    if r.active:
        log.info("monitor: the rollout of %s is under way; the canary judge watches the traffic", r.model)
        return None
    since = now - timedelta(minutes=p.policies.monitor.window_minutes)
    if r.phase == Phase.PROMOTED and r.started_at:
        since = max(since, parse_time(r.started_at))
    return LiveWindow(r.endpoint, r.live_deployment, r.live_model, since, now)


REPORT = "report"             # monitoring/job.yml's output folder
FAILED = FAILED_STATUSES


def start_pass(p: MonitoringPorts, now: datetime) -> MonitorRun | None:
    """The monitor timer's tick: submit the window's monitoring job (or say why not) and return."""
    window = live_window(p, now)
    if window is None:
        return None
    done = p.state.get(MonitorRun, window.run_id)
    if done is not None:
        return done                                         # a replayed tick
    for pending in _pending(p, window.endpoint):
        pending = settle(p, pending)                        # its completion event may have been lost
        if pending.status == RunStatus.SUBMITTED:
            log.info("monitor: pass %s (job %s) is still running", pending.run_id, pending.job)
            return pending
    url, found = p.collected.location(window.endpoint, window.deployment)
    if not found:
        return _nothing_collected(p, window, url)
    if p.registry.reference(*_split(window.model)) is None:
        log.warning("monitor: %s has no reference profile (reference/profile.json): it cannot be monitored",
                    window.model)
        return None
    request = _request(p, window, url)
    run = MonitorRun(run_id=window.run_id, endpoint=window.endpoint, deployment=window.deployment,
                     model=window.model, window_start=window.since.isoformat(), window_end=window.until.isoformat(),
                     result={}, status=RunStatus.SUBMITTED, job=request.job_name, published=False)
    if not p.state.create(run):                             # the record first: a crash after it is settled above
        return p.state.get(MonitorRun, run.run_id)
    p.jobs.submit_monitoring(request)
    log.info("monitor %s on %s from %s: submitted job %s", window.model, window.deployment,
             f"{window.since:%H:%M:%S}", request.job_name)
    return run


def is_monitoring_job(event: RunCompleted | RunStatusChanged) -> bool:
    tags = {str(k).lower(): v for k, v in event.run_tags.items()}
    return tags.get("mlops.component") == MONITORING or "mlops.monitor_run" in tags


def job_ended(event: RunCompleted | RunStatusChanged, p: MonitoringPorts) -> MonitorRun | None:
    """A monitoring job's RunCompleted, or RunStatusChanged to a failure: its MonitorRun settled once."""
    if isinstance(event, RunStatusChanged) and event.run_status not in FAILED:
        return None                                         # Running, or Completed (RunCompleted brings it)
    run = _run_of(p, event)
    if run is None:
        log.info("ignored monitoring job %s: no monitoring pass of this app", event.run_id)
        return None
    p = scoped(p, model_catalog.by_endpoint(p.catalog, run.endpoint) or p.policies)
    if isinstance(event, RunCompleted):
        return finish(p, run, RunStatus.COMPLETED)
    status = p.jobs.get(run.job)
    return finish(p, run, event.run_status, status.error if status else None)


def settle(p: MonitoringPorts, run: MonitorRun) -> MonitorRun:
    """A Submitted pass whose job ended without its event reaching us is finished; one whose job was never
    submitted (a crash between the record and the submission) is submitted now."""
    status = p.jobs.get(run.job)
    if status is None:
        url, _ = p.collected.location(run.endpoint, run.deployment)
        window = LiveWindow(run.endpoint, run.deployment, run.model, parse_time(run.window_start),
                            parse_time(run.window_end))
        p.jobs.submit_monitoring(_request(p, window, url))
        return run
    return finish(p, run, status.status, status.error) if status.done else run


def finish(p: MonitoringPorts, run: MonitorRun, status: str, error: str | None = None) -> MonitorRun:
    """Store the job's result (or its failure) as the pass's record, then publish its alerts; a redelivered
    completion finds the record settled and publishes nothing."""
    if (run.status not in (RunStatus.SUBMITTED, RunStatus.COMPLETED)
            or (run.status == RunStatus.COMPLETED and run.published)):
        return run
    if status != RunStatus.COMPLETED:
        reason = error or f"the monitoring job {run.job} ended {status} without an error message"
        log.warning("monitoring job %s %s: %s", run.job, status.lower(), reason)
        return p.state.update(MonitorRun, run.run_id, lambda r: replace(r, status=RunStatus.FAILED, error=reason)
                              if r is not None and r.status == RunStatus.SUBMITTED else None) or run
    alerts = _json_output(p, run.job, "alerts.json")
    if run.status == RunStatus.SUBMITTED:
        result = _json_output(p, run.job, "result.json")
        if result is None:
            return finish(p, run, RunStatus.FAILED, f"the monitoring job {run.job} completed but wrote no result.json")
        if not result.get("skipped"):
            result["utilisation"] = _utilisation(p, run)
        fired = tuple(a["alert_id"] for a in result.get("alerts") or () if a.get("condition") == "Fired")
        done = replace(run, status=RunStatus.COMPLETED, result=result, alerts=fired, published=False)
        run = p.state.update(MonitorRun, run.run_id,
                             lambda r: done if r is None or r.status == RunStatus.SUBMITTED else None) or done
        if run.status != RunStatus.COMPLETED or run.published:
            return run                                      # another delivery settled it meanwhile
    subject = f"/endpoints/{run.endpoint}/deployments/{run.deployment}"
    for alert in alerts or ():    # the endpoint and model tell the alert's handler which model it concerns
        p.events.publish(alert["type"], subject, {**alert["data"], "endpoint": run.endpoint, "model": run.model})
    result = run.result
    log.info("monitor %s on %s: %s rows, %s labelled; %s", run.model, run.deployment,
             (result.get("window") or {}).get("rows"), (result.get("window") or {}).get("labelled"),
             result.get("skipped") or "; ".join(a["summary"] for a in result.get("alerts") or ()) or "no alerts")
    return p.state.update(MonitorRun, run.run_id, lambda r: replace(r, published=True) if r and not r.published
                          else None) or run


def _request(p: MonitoringPorts, window: LiveWindow, collected_url: str) -> MonitoringRequest:
    since, until = window.since.isoformat(), window.until.isoformat()
    hours = _hours(window.since, window.until)
    previous = _previous(p, window)
    monitor_policy = p.policies.monitor
    thresholds = ",".join(f"{name}={value:g}" for name, value in monitor_policy.drift_thresholds.items())
    return MonitoringRequest(
        job_name=monitoring_job_name_for(window.endpoint, window.deployment, window.model, since, until),
        run_id=window.run_id, endpoint=window.endpoint, deployment=window.deployment, model=window.model,
        window_start=since, window_end=until, model_inputs=f"{collected_url}model_inputs/{hours}",
        model_outputs=f"{collected_url}model_outputs/{hours}",
        labels=blob_url(p.data.url_of(""), p.policies.model.feedback_container, ""),
        min_rows=monitor_policy.min_rows, min_labels=monitor_policy.min_labels, drift_thresholds=thresholds,
        sensitive_column=monitor_policy.sensitive_column, task=p.policies.model.task,
        model_registry=p.policies.promotion.registry if p.policies.promotion.receives else "",
        previous_alerts=previous.alerts if previous else ())


def _hours(since: datetime, until: datetime) -> str:
    """The deepest yyyy/MM/dd/HH/ folder holding the whole window: the job reads no older day or month."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)      # the collector's hours
    common = []
    for a, b in zip(f"{since:%Y/%m/%d/%H}".split("/"), f"{until:%Y/%m/%d/%H}".split("/")):
        if a != b:
            break
        common.append(a)
    return "".join(f"{part}/" for part in common)


def _nothing_collected(p: MonitoringPorts, window: LiveWindow, url: str) -> MonitorRun:
    """Never zero rows in silence: a pass that found no collected data says where it looked. One record per
    live deployment, kept current, rather than one per tick."""
    warning = (f"no collected data at {url}: is data collection on for deployment {window.deployment} of "
               f"{window.endpoint}, and is that where it writes (DATA_COLLECTOR_BLOB_URI, or the workspace's default "
               "datastore)?")
    log.warning("monitor: %s", warning)
    run = MonitorRun(run_id=f"{window.endpoint}-nodata-{window.deployment}-{window.model.replace(':', '-')}",
                     endpoint=window.endpoint, deployment=window.deployment, model=window.model,
                     window_start=window.since.isoformat(), window_end=window.until.isoformat(), result={},
                     status=RunStatus.NO_DATA, warning=warning)
    return p.state.update(MonitorRun, run.run_id, lambda r: run if r is None or r.window_end < run.window_end
                          else None) or run


def _utilisation(p: MonitoringPorts, run: MonitorRun) -> dict | None:
    from lifecycle.core.scaling import recommend  # plain Python, as the rest of this module
    since, until = parse_time(run.window_start), parse_time(run.window_end)
    traffic = p.metrics.window(run.endpoint, run.deployment, since, until)
    utilisation = p.metrics.utilisation(run.endpoint, run.deployment, since, until)
    return recommend(utilisation, traffic, max((until - since).total_seconds(), 1.0))


def _json_output(p: MonitoringPorts, job: str, name: str):
    body = p.jobs.output(job, REPORT, name)
    return None if body is None else json.loads(body)


def _run_of(p: MonitoringPorts, event: RunCompleted | RunStatusChanged) -> MonitorRun | None:
    tags = {str(k).lower(): v for k, v in event.run_tags.items()}
    run = p.state.get(MonitorRun, str(tags.get("mlops.monitor_run", "")))
    if run is not None and run.job == event.run_id:
        return run
    if not {"mlops.monitor_run", "mlops.endpoint", "mlops.deployment", "mlops.model", "mlops.window_start",
            "mlops.window_end"} <= set(tags):
        return None
    # Its record is missing (the storage lost it): the job's tags say what it was.
    lost = MonitorRun(run_id=tags["mlops.monitor_run"], endpoint=tags["mlops.endpoint"],
                      deployment=tags["mlops.deployment"], model=tags["mlops.model"],
                      window_start=tags["mlops.window_start"], window_end=tags["mlops.window_end"], result={},
                      status=RunStatus.SUBMITTED, job=event.run_id, published=False)
    p.state.create(lost)
    return p.state.get(MonitorRun, lost.run_id)


def _pending(p: MonitoringPorts, endpoint: str) -> list[MonitorRun]:
    return [r for r in p.state.list(MonitorRun) if r.endpoint == endpoint and r.status == RunStatus.SUBMITTED]


def _previous(p: MonitoringPorts, window: LiveWindow) -> MonitorRun | None:
    """The last pass over this model that judged its window: the alerts it fired may now resolve."""
    runs = [r for r in p.state.list(MonitorRun) if r.endpoint == window.endpoint and r.model == window.model
            and r.status == RunStatus.COMPLETED and not r.result.get("skipped")
            and r.window_end < window.until.isoformat()]
    return max(runs, key=lambda r: r.window_end) if runs else None


def _split(model: str) -> tuple[str, str]:
    name, _, version = model.rpartition(":")
    return name, version
