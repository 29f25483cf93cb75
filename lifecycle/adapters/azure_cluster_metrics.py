"""Training compute in Azure Monitor's workspace metrics: what a job's nodes used, and how busy a cluster was.

The metrics are platform metrics of the Azure ML workspace itself (namespace
Microsoft.MachineLearningServices/workspaces), as Azure Monitor's reference "Supported metrics -
Microsoft.MachineLearningServices/workspaces" lists them (names exactly as in its REST API column):
- Resource: `CpuUtilizationPercentage` and `CpuMemoryUtilizationPercentage`, dimensions `RunId`, `InstanceId`,
  `ComputeName`, PT1M: each a percentage of one node (all its cores = 100), one series per node.
- Quota: `Active Nodes`, `Idle Nodes`, `Unusable Nodes`, dimensions `Scenario`, `ClusterName`, PT1M: a count of
  nodes, so a minute's average times the grain's minutes is node-minutes.

Plain Python over azure-monitor-querymetrics' result objects (metrics with their time series), as
azure_monitor_answers.py reads the endpoints'; lifecycle/adapters/azure_metrics.py sends the queries."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from lifecycle.core.platform_values import ClusterUsage, JobUsage

WORKSPACE_NAMESPACE = "Microsoft.MachineLearningServices/workspaces"
CPU_METRIC = "CpuUtilizationPercentage"
MEMORY_METRIC = "CpuMemoryUtilizationPercentage"
ACTIVE_NODES = "Active Nodes"
IDLE_NODES = "Idle Nodes"
UNUSABLE_NODES = "Unusable Nodes"
NODE_METRICS = (ACTIVE_NODES, IDLE_NODES, UNUSABLE_NODES)
RUN_DIMENSION = "RunId"              # the job's name: its run id in run history
NODE_DIMENSION = "InstanceId"        # one node of the cluster
COMPUTE_DIMENSION = "ComputeName"    # the resource metrics' name for the cluster
CLUSTER_DIMENSION = "ClusterName"    # the quota metrics' name for it

# Job names are letters, digits, '-' and '_' (azure-ai-ml lowers them), compute names letters, digits and
# '-': only such names go into a metrics filter.
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_COMPUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,31}$")


def job_filter(job_name: str) -> str:
    """The job's run, one series per node."""
    if not _JOB_NAME.match(job_name or ""):
        raise ValueError(f"job name {job_name!r} is not a valid Azure ML job name: refusing to query metrics for it")
    return f"{RUN_DIMENSION} eq '{job_name}' and {NODE_DIMENSION} eq '*'"


def cluster_filters(cluster: str) -> tuple[str, str]:
    """(the node counts' filter, the utilisation's filter) of one cluster."""
    if not _COMPUTE_NAME.match(cluster or ""):
        raise ValueError(f"compute name {cluster!r} is not a valid Azure ML compute name (2-32 letters, digits and "
                         "hyphens, starting with a letter): refusing to query metrics for it")
    return f"{CLUSTER_DIMENSION} eq '{cluster}'", f"{COMPUTE_DIMENSION} eq '{cluster}'"


def cluster_grain(start: datetime, end: datetime) -> timedelta:
    """1 minute up to a day, else 5 minutes: node-minutes stay exact (an average times the grain) with fewer points."""
    return timedelta(minutes=1) if end - start <= timedelta(days=1) else timedelta(minutes=5)


def job_usage_of(results: list[Any]) -> JobUsage | None:
    """CPU as the mean over the run's nodes and minutes, memory as its peak; nodes = the nodes that reported
    (1 where the answer names none). None when the run reported nothing."""
    cpu: list[float] = []
    memory: list[float] = []
    nodes: set[str] = set()
    for metric in _metrics(results):
        for series in metric.timeseries:
            node = _dimension(series, NODE_DIMENSION)
            points = [p for p in series.data if p.average is not None or p.maximum is not None]
            if not points:
                continue
            if node:
                nodes.add(node)
            if metric.name == CPU_METRIC:
                cpu += [p.average for p in points if p.average is not None]
            elif metric.name == MEMORY_METRIC:
                memory += [p.maximum if p.maximum is not None else p.average for p in points]
    if not cpu and not memory:
        return None
    return JobUsage(cpu_percent=sum(cpu) / len(cpu) if cpu else None, memory_percent=max(memory) if memory else None,
                    nodes=max(1, len(nodes)))


def cluster_usage_of(cluster: str, start: datetime, end: datetime, grain: timedelta, nodes: list[Any],
                     usage: list[Any]) -> ClusterUsage:
    """Node-minutes by state (a minute's average node count times the grain), the most nodes up at once (active +
    idle in one interval), and the mean CPU and memory of the nodes that were up."""
    per_grain = grain.total_seconds() / 60
    totals: dict[str, float] = defaultdict(float)
    up: dict[datetime, float] = defaultdict(float)
    for metric in _metrics(nodes):
        for series in metric.timeseries:
            for point in series.data:
                if point.average is None:
                    continue
                totals[metric.name] += point.average * per_grain
                if metric.name in (ACTIVE_NODES, IDLE_NODES):
                    up[point.timestamp] += point.average
    means: dict[str, float | None] = {}
    for name in (CPU_METRIC, MEMORY_METRIC):
        values = [p.average for m in _metrics(usage) if m.name == name for s in m.timeseries for p in s.data
                  if p.average is not None]
        means[name] = sum(values) / len(values) if values else None
    return ClusterUsage(cluster=cluster, minutes=(end - start).total_seconds() / 60,
                        active_node_minutes=totals[ACTIVE_NODES], idle_node_minutes=totals[IDLE_NODES],
                        unusable_node_minutes=totals[UNUSABLE_NODES], peak_nodes=round(max(up.values(), default=0)),
                        cpu_percent=means[CPU_METRIC], memory_percent=means[MEMORY_METRIC])


def _metrics(results: list[Any]) -> list[Any]:
    return [metric for result in results for metric in result.metrics]


def _dimension(series: Any, name: str) -> str:
    """A series' value of a dimension, matched without regard to case (the service's casing varies)."""
    return next((str(v) for k, v in (series.metadata_values or {}).items() if k.lower() == name.lower()), "")
