"""What training and monitoring jobs cost and use, and what that says about the compute cluster: the cost of each
job and per month from its node-minutes, advice on the cluster's scale settings and VM size, and whether a
training job took markedly longer than its model's usual. Pure: values in, values out."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from lifecycle.core.platform_values import ClusterUsage, JobStatus, JobUsage
from lifecycle.core.policies import ComputePolicy
from lifecycle.core.vm_sizes import VM_SIZES, VmSize

GIB = 1024 ** 3


CPU_LIMIT = 80.0          # a job using this share of a node's CPU (or memory) is held back by it
UNDER_USED = 25.0         # ...and below this share of both, the node is larger than the job needs
SLOW_HISTORY = 3          # a model's usual training time needs this many earlier runs
SLOW_MIN_EXTRA = 60.0     # and a slow run is at least this many seconds longer than usual (short runs vary a lot)


@dataclass(frozen=True)
class JobCompute:
    """One job as the compute view shows it."""
    name: str
    kind: str                         # training | monitoring
    model: str
    trigger: str
    status: str
    created: str
    started: str
    ended: str
    queue_seconds: float | None
    duration_seconds: float | None
    usage: JobUsage | None
    cost: float | None
    slowed: Slowdown | None = None


@dataclass(frozen=True)
class Slowdown:
    usual_seconds: float              # the median of the model's earlier runs
    factor: float


def job_compute(job: JobStatus, usage: JobUsage | None, *, kind: str, model: str, trigger: str,
                policy: ComputePolicy, slowed: Slowdown | None = None) -> JobCompute:
    duration = job.duration_seconds
    rate = policy.rate()
    nodes = usage.nodes if usage else 1
    cost = None if duration is None or rate is None else duration / 3600 * nodes * rate
    return JobCompute(name=job.name, kind=kind, model=model, trigger=trigger, status=job.status, created=job.created,
                      started=job.started, ended=job.ended, queue_seconds=job.queue_seconds,
                      duration_seconds=duration, usage=usage, cost=cost, slowed=slowed)


def slowdown(duration: float, earlier: Sequence[float], factor: float) -> Slowdown | None:
    """A training run markedly longer than its model's usual (the median of its earlier runs): `factor` times
    as long and at least SLOW_MIN_EXTRA seconds more. None while the model has too little history."""
    if len(earlier) < SLOW_HISTORY:
        return None
    usual = statistics.median(earlier)
    if usual <= 0 or duration < usual * factor or duration - usual < SLOW_MIN_EXTRA:
        return None
    return Slowdown(usual_seconds=usual, factor=duration / usual)


@dataclass(frozen=True)
class Totals:
    jobs: int
    job_minutes: float
    cost: float | None
    days: float                       # the span the jobs came over (at least a day)
    month_job_minutes: float
    month_cost: float | None


def totals(jobs: Sequence[JobCompute], now: datetime, policy: ComputePolicy) -> Totals:
    """Node-minutes and cost so far, and per month at the rate the jobs came: over the last 30 days, or the
    span since the first job if shorter (at least a day, so a first hour is not taken for a month's pace)."""
    minutes = sum((j.duration_seconds or 0) / 60 * (j.usage.nodes if j.usage else 1) for j in jobs)
    rate = policy.rate()
    month_ago = now - timedelta(days=30)
    created = {j.name: _time(j.created) for j in jobs}
    recent = [j for j in jobs if (t := created[j.name]) is not None and t >= month_ago]
    first = min((t for j in recent if (t := created[j.name]) is not None), default=None)
    days = max(1.0, min(30.0, (now - first).total_seconds() / 86400)) if first else 1.0
    recent_minutes = sum((j.duration_seconds or 0) / 60 * (j.usage.nodes if j.usage else 1) for j in recent)
    month_minutes = recent_minutes * 30 / days
    return Totals(jobs=len(jobs), job_minutes=minutes, cost=None if rate is None else minutes / 60 * rate,
                  days=days, month_job_minutes=month_minutes,
                  month_cost=None if rate is None else month_minutes / 60 * rate)


@dataclass(frozen=True)
class Advice:
    setting: str                      # min_nodes | max_nodes | idle_seconds | vm_size
    current: str
    suggested: str
    reason: str

    @property
    def keep(self) -> bool:
        return self.current == self.suggested


def advise(jobs: Sequence[JobCompute], policy: ComputePolicy, cluster: ClusterUsage | None = None) -> list[Advice]:
    """The cluster's scale settings and VM size, judged from the jobs that ran (and, in Azure, its nodes)."""
    ran = [j for j in jobs if j.duration_seconds is not None and _time(j.started)]
    if not ran:
        return []
    return [_max_nodes(ran, policy), _min_nodes(ran, policy), _idle(ran, policy, cluster), _vm_size(ran, policy)]


def _max_nodes(jobs: Sequence[JobCompute], policy: ComputePolicy) -> Advice:
    peak = _peak_concurrency(jobs)
    queues = sorted(j.queue_seconds for j in jobs if j.queue_seconds is not None)
    p90 = queues[min(len(queues) - 1, int(0.9 * len(queues)))] if queues else 0.0
    typical = statistics.median(j.duration_seconds or 0 for j in jobs)
    current = str(policy.max_nodes)
    if p90 > max(60.0, 0.25 * typical) and peak >= policy.max_nodes:
        return Advice("max_nodes", current, str(policy.max_nodes + 1),
                      f"{peak} job(s) ran at once and 1 in 10 waited {_span(p90)} or more in the queue: one more "
                      f"node lets the next start at once (an idle node scales down, so it costs only while used)")
    return Advice("max_nodes", current, current,
                  f"at most {peak} job(s) ran at once and the queue wait is short (1 in 10 waited {_span(p90)} "
                  f"or more)")


def _min_nodes(jobs: Sequence[JobCompute], policy: ComputePolicy) -> Advice:
    starts = sorted(t for t in (_time(j.started) for j in jobs) if t)
    ends = [t for t in (_time(j.ended) for j in jobs) if t]
    span = (max(ends) - starts[0]).total_seconds() if ends and starts else 0.0
    busy = sum(j.duration_seconds or 0 for j in jobs) / span if span > 0 else 0.0
    current = str(policy.min_nodes)
    if busy >= 0.5 and len(jobs) >= 4:
        return Advice("min_nodes", current, str(max(1, policy.min_nodes)),
                      f"jobs kept a node busy {busy:.0%} of the time: one node always up saves each job the "
                      f"node's start (minutes) for little idle time")
    return Advice("min_nodes", current, "0",
                  f"jobs kept a node busy {busy:.0%} of the time: with 0 an idle cluster costs nothing")


def _idle(jobs: Sequence[JobCompute], policy: ComputePolicy, cluster: ClusterUsage | None) -> Advice:
    current = str(policy.idle_seconds)
    rate = policy.rate()
    if cluster is not None and cluster.idle_node_minutes > cluster.active_node_minutes and policy.idle_seconds > 120:
        cost = "" if rate is None else f" ({cluster.idle_node_minutes / 60 * rate:.2f} {policy.currency})"
        return Advice("idle_seconds", current, "120",
                      f"nodes idled {cluster.idle_node_minutes:.0f} node-minutes{cost} against "
                      f"{cluster.active_node_minutes:.0f} busy: scale down sooner")
    gaps = _gaps(jobs)
    short = [g for g in gaps if policy.idle_seconds < g <= 900]
    if gaps and len(short) >= max(2, len(gaps) // 2):
        suggested = int(min(900, statistics.median(short) * 1.2))
        return Advice("idle_seconds", current, str(suggested),
                      f"{len(short)} of {len(gaps)} jobs came {_span(statistics.median(short))} after the last "
                      f"ended, just after its node scaled down: keeping it {_span(suggested)} saves each a node start")
    seen = f"jobs came {_span(statistics.median(gaps))} apart (median)" if gaps else "one job so far"
    return Advice("idle_seconds", current, current, f"{seen}: a node kept idle longer would rarely be reused")


def _vm_size(jobs: Sequence[JobCompute], policy: ComputePolicy) -> Advice:
    """CPU or memory as the limit, in the node's own terms: measured cores and bytes against the size's."""
    size, current = policy.size, policy.vm_size
    training = [j for j in jobs if j.kind == "training" and j.usage] or [j for j in jobs if j.usage]
    if size is None or not training:
        why = f"{current} is not in the rate table" if size is None else "no job's CPU or memory was measured"
        return Advice("vm_size", current, current, why)
    cores = max(_cores_used(j, size) for j in training)
    memory = max(_memory_used(j, size) for j in training)
    cpu_share, memory_share = cores / size.cores * 100, memory / size.memory_gib * 100
    if memory_share >= CPU_LIMIT:
        pick = _cheapest(lambda s: s.memory_gib >= 2 * size.memory_gib and s.cores >= size.cores)
        return Advice("vm_size", current, pick or current,
                      f"training peaked at {memory:.1f} GiB, {memory_share:.0f}% of the node's memory: memory is "
                      f"the limit" + ("" if pick else "; no larger size is in the rate table"))
    if cpu_share >= CPU_LIMIT:
        pick = _cheapest(lambda s: s.cores >= 2 * size.cores and s.memory_gib >= memory * 1.5)
        return Advice("vm_size", current, pick or current,
                      f"training used {cores:.1f} of {size.cores} cores ({cpu_share:.0f}%): CPU is the limit"
                      + ("" if pick else "; no larger size is in the rate table"))
    if cpu_share < UNDER_USED and memory_share < UNDER_USED:
        pick = _cheapest(lambda s: s.cores >= max(2.0, 2 * cores) and s.memory_gib >= max(2 * memory, 4))
        if pick and VM_SIZES[pick].rate < size.rate:
            return Advice("vm_size", current, pick,
                          f"training used at most {cores:.1f} of {size.cores} cores and {memory:.1f} of "
                          f"{size.memory_gib:.0f} GiB: a smaller size does the same for less")
    return Advice("vm_size", current, current,
                  f"training used at most {cores:.1f} of {size.cores} cores and {memory:.1f} of "
                  f"{size.memory_gib:.0f} GiB")


def _cores_used(job: JobCompute, size: VmSize) -> float:
    usage = job.usage
    assert usage is not None
    if usage.cpu_seconds is not None and job.duration_seconds:
        return usage.cpu_seconds / job.duration_seconds / max(1, usage.nodes)
    return (usage.cpu_percent or 0.0) / 100 * size.cores


def _memory_used(job: JobCompute, size: VmSize) -> float:
    usage = job.usage
    assert usage is not None
    if usage.peak_memory_bytes is not None:
        return usage.peak_memory_bytes / GIB / max(1, usage.nodes)
    return (usage.memory_percent or 0.0) / 100 * size.memory_gib


def _cheapest(fits) -> str | None:
    found = [(s.rate, name) for name, s in VM_SIZES.items() if fits(s)]
    return min(found)[1] if found else None


def _peak_concurrency(jobs: Sequence[JobCompute]) -> int:
    edges = sorted([(t, 1) for t in (_time(j.started) for j in jobs) if t]
                   + [(t, -1) for t in (_time(j.ended) for j in jobs) if t])
    running = peak = 0
    for _, step in edges:           # an end sorts before a start at the same moment (-1 < 1)
        running += step
        peak = max(peak, running)
    return max(1, peak)


def _gaps(jobs: Sequence[JobCompute]) -> list[float]:
    """Seconds from a job's end until the next job started (overlapping jobs: no gap)."""
    spans = sorted((s, e) for s, e in ((_time(j.started), _time(j.ended)) for j in jobs) if s and e)
    gaps, last_end = [], None
    for start, end in spans:
        if last_end is not None and start > last_end:
            gaps.append((start - last_end).total_seconds())
        last_end = end if last_end is None else max(last_end, end)
    return gaps


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
