"""Training compute, watched: each training and monitoring job's duration, queue time, CPU and memory and cost,
the cluster's nodes and advice for its settings (for `mlops status`, the report and the dashboard), and the
alert when a training run took markedly longer than its model's usual."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Protocol

from lifecycle.core import training_compute as tc
from lifecycle.core.notifications import TRAINING_SLOWED
from lifecycle.core.platform_values import JobStatus, JobUsage
from lifecycle.core.state_records import AlertOutcome, AlertRecord, MonitorRun, TrainingRun
from lifecycle.core.times import iso
from lifecycle.ports import UsesEvents, UsesJobs, UsesMetrics, UsesPolicies, UsesState
from lifecycle.steps.announcements import announce

log = logging.getLogger("lifecycle.compute")
RECENT_JOBS = 50               # the compute view looks at this many of a model's latest jobs of each kind
SLOWED = "training_slowed"


class ComputePorts(UsesPolicies, UsesState, UsesJobs, UsesMetrics, UsesEvents, Protocol):
    """What watching training compute uses of the platform."""


def collect(p: ComputePorts, now: datetime, known: Mapping[str, JobStatus | None] | None = None) -> dict:
    """The model's compute view as plain values. `known`: job statuses the caller already read (no second
    request for them). A metrics source that cannot answer leaves its figures out, with a note."""
    policy, model = p.policies.compute, p.policies.model
    notes: list[str] = []
    found = dict(known or {})

    def status(name: str) -> JobStatus | None:
        if name not in found:
            found[name] = p.jobs.get(name)
        return found[name]

    runs = sorted((r for r in p.state.list(TrainingRun) if r.model_name == model.name),
                  key=lambda r: r.submitted_at)[-RECENT_JOBS:]
    passes = sorted((r for r in p.state.list(MonitorRun) if r.endpoint == model.endpoint and r.job),
                    key=lambda r: r.window_end)[-RECENT_JOBS:]
    jobs: list[tc.JobCompute] = []
    durations: list[float] = []                     # the model's earlier training runs, for `slowed`
    trained = [(run, job) for run in runs if (job := status(run.job_name)) is not None]
    trained.sort(key=lambda pair: (pair[0].submitted_at, pair[1].created))    # submitted_at is to the second
    for run, job in trained:
        slowed = None
        if job.duration_seconds is not None and job.status == "Completed":
            slowed = tc.slowdown(job.duration_seconds, durations, policy.slowdown_factor)
            durations.append(job.duration_seconds)
        jobs.append(tc.job_compute(job, _usage(p, job, notes), kind="training", model=model.name,
                                   trigger=run.trigger, policy=policy, slowed=slowed))
    for monitor_run in passes:
        job = status(monitor_run.job)
        if job is not None:
            jobs.append(tc.job_compute(job, _usage(p, job, notes), kind="monitoring", model=model.name,
                                       trigger="schedule", policy=policy))
    jobs.sort(key=lambda j: j.created)
    cluster = None
    if jobs:
        try:
            cluster = p.metrics.cluster_usage(policy.cluster, since=max(now - timedelta(days=30), _first(jobs, now)),
                                              until=now)
        except Exception as error:     # the view shows the jobs without the cluster's nodes
            notes.append(f"the cluster's node metrics could not be read: {error}")
    size = policy.size
    rate = policy.rate()
    total = tc.totals(jobs, now, policy)
    return {
        "cluster": policy.cluster, "vm_size": policy.vm_size, "cores": size.cores if size else None,
        "memory_gb": size.memory_gib if size else None, "rate_per_node_hour": rate, "currency": policy.currency,
        "jobs": [_job(j) for j in jobs],
        "totals": asdict(total),
        "nodes": None if cluster is None else {
            **{k: v for k, v in asdict(cluster).items() if k != "cluster"},
            "idle_cost": None if rate is None else cluster.idle_node_minutes / 60 * rate},
        "advice": [asdict(a) for a in tc.advise(jobs, policy, cluster)],
        "notes": notes,
    }


def check_training_time(p: ComputePorts, job_name: str, now: datetime) -> AlertRecord | None:
    """On a training run's completion: keep its duration on its record, and raise the `training_slowed` alert
    (for a person: retraining does not mend it) when it took markedly longer than its model's earlier runs. A
    redelivered completion finds the alert and tells no one again."""
    job = p.jobs.get(job_name)
    duration = job.duration_seconds if job else None
    if job is None or duration is None:
        return None
    run = p.state.update(TrainingRun, job_name, lambda r: replace(r, duration_seconds=duration) if r else None)
    if run is None:
        return None
    # submitted_at is kept to the second: runs submitted in the same second count as earlier
    earlier = [r.duration_seconds for r in sorted(p.state.list(TrainingRun), key=lambda r: r.submitted_at)
               if r.model_name == run.model_name and r.duration_seconds > 0 and r.job_name != run.job_name
               and r.submitted_at <= run.submitted_at]
    slowed = tc.slowdown(duration, earlier[-RECENT_JOBS:], p.policies.compute.slowdown_factor)
    if slowed is None:
        return None
    usage = _usage(p, job, [])
    summary = (f"training took {_clock(duration)}, {slowed.factor:.1f}x its usual {_clock(slowed.usual_seconds)} "
               f"(the median of {len(earlier[-RECENT_JOBS:])} earlier runs)")
    alert = AlertRecord(
        alert_key=AlertRecord.key_for(f"{SLOWED}\n{job_name}"), alert_id=job_name, condition="Fired",
        source="mlops", signal=SLOWED, summary=summary, fired_at=job.ended, received_at=iso(now),
        outcome=AlertOutcome.NEEDS_A_PERSON, job=job_name, model=run.model_name,
        detail="more data, a slower data source or a busy cluster: retraining does not mend it; look at the job's "
               "rows and its CPU and memory (`mlops status`, Training compute)",
        evidence={"duration_seconds": duration, "usual_seconds": slowed.usual_seconds, "factor": slowed.factor,
                  **({"cpu_percent": usage.cpu_percent, "memory_percent": usage.memory_percent} if usage else {})})
    p.state.create(alert)
    announce(p, TRAINING_SLOWED, f"jobs/{job_name}",
             {"job": job_name, "model": run.model_name, "trigger": run.trigger, "signal": SLOWED,
              "duration": _clock(duration), "usual": _clock(slowed.usual_seconds), "factor": f"{slowed.factor:.1f}",
              "durationSeconds": duration, "usualSeconds": slowed.usual_seconds}, key=job_name, now=now)
    log.warning("%s: %s", job_name, summary)
    return p.state.get(AlertRecord, alert.alert_key)


def _usage(p: ComputePorts, job: JobStatus, notes: list[str]) -> JobUsage | None:
    if job.usage is not None or not job.started:
        return job.usage
    try:
        return p.metrics.job_usage(job)
    except Exception as error:
        if not notes:
            notes.append(f"jobs' CPU and memory could not be read: {error}")
        return None


def _job(j: tc.JobCompute) -> dict:
    usage = j.usage
    return {"name": j.name, "kind": j.kind, "trigger": j.trigger, "status": j.status, "created": j.created,
            "started": j.started or None, "ended": j.ended or None, "queue_seconds": j.queue_seconds,
            "duration_seconds": j.duration_seconds,
            "cpu_percent": usage.cpu_percent if usage else None,
            "memory_percent": usage.memory_percent if usage else None,
            "peak_memory_bytes": usage.peak_memory_bytes if usage else None,
            "nodes": usage.nodes if usage else 1, "cost": j.cost,
            "slowed": None if j.slowed is None else {"usual_seconds": j.slowed.usual_seconds,
                                                     "factor": round(j.slowed.factor, 2)}}


def _first(jobs: list[tc.JobCompute], now: datetime) -> datetime:
    parse: Callable[[str], datetime] = datetime.fromisoformat
    try:
        return min(parse(j.created) for j in jobs if j.created)
    except ValueError:
        return now - timedelta(days=1)


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
