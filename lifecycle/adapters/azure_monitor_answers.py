"""Reading Azure Monitor's answers for the Metrics port: the traffic logs' rows as a TrafficWindow, the
endpoint's platform metrics as PlatformAggregates, the deployment's as Utilisation, and the service's error
bodies as one line. Plain Python over the SDKs' result objects (rows by column name, metrics with their time
series), so lifecycle/adapters/azure_metrics.py keeps only the queries and the clients."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifecycle.core.platform_values import RequestSample, TrafficWindow, Utilisation

LATENCY_METRICS = {"mean": "RequestLatency", "p50": "RequestLatency_P50", "p90": "RequestLatency_P90",
                   "p95": "RequestLatency_P95", "p99": "RequestLatency_P99"}
UTILISATION_METRICS = {"cpu": "CpuUtilizationPercentage", "memory": "CpuMemoryUtilizationPercentage"}
CAPACITY_METRIC = "DeploymentCapacity"


@dataclass(frozen=True)
class PlatformAggregates:
    """A deployment's traffic over a window from the endpoint's platform metrics (no per-request samples)."""
    deployment: str
    requests: int
    server_errors: int
    status_classes: dict[str, int] = field(default_factory=dict)    # "2xx" -> requests
    latency_ms: dict[str, float] = field(default_factory=dict)      # mean/p50/.../p99: request-weighted over minutes
    worst_minute_ms: dict[str, float] = field(default_factory=dict)  # the highest one-minute value of each
    minutes: int = 0                                                 # minutes with traffic

    def traffic_window(self) -> TrafficWindow:
        return TrafficWindow(deployment=self.deployment, samples=(), requests=self.requests,
                             server_errors=self.server_errors)



def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)



# -- reading the answers -----------------------------------------------------------------------------------

def traffic_window_of(deployment: str, rows: list[Any]) -> TrafficWindow:
    requests = server_errors = 0
    samples: list[RequestSample] = []
    for row in rows:
        kind = cell(row, "Kind")
        if kind == "total":
            requests, server_errors = int(cell(row, "Requests") or 0), int(cell(row, "ServerErrors") or 0)
        elif kind == "sample":
            sample = _sample(row)
            if sample is not None:
                samples.append(sample)
    samples.sort(key=lambda s: s.time)
    server_errors = max(server_errors, sum(1 for s in samples if s.status >= 500))
    return TrafficWindow(deployment=deployment, samples=tuple(samples),
                         requests=max(requests, len(samples)), server_errors=server_errors)


def _sample(row: Any) -> RequestSample | None:
    when, status, latency = cell(row, "TimeGenerated"), cell(row, "Status"), cell(row, "LatencyMs")
    if status is None or latency is None or not isinstance(when, datetime):
        return None                                       # a log line without the fields the judge needs
    status, model = int(status), cell(row, "ModelStatus")
    if model is not None and int(model) >= 500 and status < 500:
        status = int(model)                               # the model failed; the endpoint answered 424
    return RequestSample(time=as_utc(when).timestamp(), status=status, latency_ms=float(latency),
                         request_id=str(cell(row, "XRequestId") or cell(row, "XMSClientRequestId") or ""))


def cell(row: Any, column: str) -> Any:
    """A LogsTableRow's value by column name; None if the table has no such column."""
    try:
        return row[column]
    except (KeyError, ValueError, IndexError):
        return None


def aggregates_of(deployment: str, counts: list[Any], latency: list[Any]) -> PlatformAggregates:
    per_minute: dict[datetime, float] = {}
    classes: dict[str, float] = {}
    errors = 0.0
    for metric in _metrics(counts):
        for series in metric.timeseries:
            dims = {k.lower(): str(v or "") for k, v in series.metadata_values.items()}
            status_class, model_status = dims.get("statuscodeclass", ""), dims.get("modelstatuscode", "")
            failed = status_class.startswith("5") or model_status.startswith("5")
            for point in series.data:
                value = point.average or 0.0
                per_minute[point.timestamp] = per_minute.get(point.timestamp, 0.0) + value
                classes[status_class or "unknown"] = classes.get(status_class or "unknown", 0.0) + value
                errors += value if failed else 0.0
    weighted: dict[str, float] = {}
    worst: dict[str, float] = {}
    by_name = {name: key for key, name in LATENCY_METRICS.items()}
    for metric in _metrics(latency):
        key = by_name.get(metric.name)
        points = [(p.timestamp, p.average) for s in metric.timeseries for p in s.data if p.average is not None]
        if key is None or not points:
            continue
        weights = [per_minute.get(when, 0.0) for when, _ in points]
        if sum(weights) <= 0:
            weights = [1.0] * len(points)                 # no counts for those minutes: plain mean
        weighted[key] = sum(w * v for w, (_, v) in zip(weights, points)) / sum(weights)
        worst[key] = max(v for _, v in points)
    return PlatformAggregates(deployment=deployment, requests=round(sum(per_minute.values())),
                              server_errors=round(errors), status_classes={k: round(v) for k, v in classes.items()},
                              latency_ms=weighted, worst_minute_ms=worst,
                              minutes=sum(1 for v in per_minute.values() if v > 0))


def utilisation_of(deployment: str, usage: list[Any], capacity: list[Any]) -> Utilisation:
    by_name = {name: key for key, name in UTILISATION_METRICS.items()}
    means: dict[str, float | None] = {"cpu": None, "memory": None}
    detail: dict[str, float] = {}
    last_minute: dict[datetime, set[str]] = {}
    for metric in _metrics(usage):
        key = by_name.get(metric.name)
        points = []
        for series in metric.timeseries:
            instance = next((str(v) for k, v in series.metadata_values.items() if k.lower() == "instanceid"), "")
            for point in series.data:
                if point.average is not None:
                    points.append(point.average)
                    last_minute.setdefault(point.timestamp, set()).add(instance)
        if key and points:
            means[key] = sum(points) / len(points)
            detail[f"{key}_max_percent"] = max(points)
    counts = [(p.timestamp, p) for m in _metrics(capacity) for s in m.timeseries for p in s.data
              if p.average is not None or p.maximum is not None]
    instances = None
    if counts:
        latest = max(counts, key=lambda c: c[0])[1]
        instances = round(latest.average if latest.average is not None else latest.maximum)
        detail["instances_max"] = max(p.maximum if p.maximum is not None else p.average for _, p in counts)
    if last_minute:
        detail["instances_reporting"] = len(last_minute[max(last_minute)])
        instances = instances if instances is not None else int(detail["instances_reporting"])
    detail["minutes"] = len(last_minute)
    return Utilisation(deployment=deployment, cpu_percent=means["cpu"], memory_percent=means["memory"],
                       instances=instances, detail=detail)


def _metrics(results: list[Any]) -> list[Any]:
    return [metric for result in results for metric in result.metrics]


def service_error(err: Any) -> str:
    """'code: message' from the service's error body (the innermost message), else the exception's message."""
    response = getattr(err, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:                                     # not JSON: fall back to the message
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, inner = error.get("code", ""), error
        while isinstance(inner.get("innererror"), dict):
            inner = inner["innererror"]
        message = inner.get("message") or error.get("message") or ""
        return f"{code}: {message}" if code else message
    message = getattr(err, "message", None) or str(err)
    return message.splitlines()[0] if message else type(err).__name__


def describe_partial_error(error: Any) -> str:
    if error is None:
        return "no error details"
    details = []
    for detail in error.details or []:                    # mappings (the SDK's ErrorDetail models)
        inner = detail.get("innererror") if hasattr(detail, "get") else None
        details.append((inner or {}).get("message") or (detail.get("message") if hasattr(detail, "get") else ""))
    return "; ".join(filter(None, [f"{error.code}: {error.message}", *details]))
