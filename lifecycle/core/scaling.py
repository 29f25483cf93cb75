"""Infrastructure utilisation of one deployment over a window, and whether to scale it.

`recommend(utilisation, traffic, window_seconds)` puts what the deployment's compute used (`Utilisation`: CPU and
memory as percentages of one instance, the instance count) beside what it served (`TrafficWindow`: requests,
server errors, per-request latencies) and answers scale_up, scale_down or keep, with its reasons:

* scale_up when CPU or memory is above its high mark, or when p95 latency is above its limit over enough
  requests to trust a p95;
* scale_down when CPU and memory are both below their low marks and there is more than one instance;
* keep otherwise. A missing figure never triggers a change: the reasons say what was missing.

The default marks follow the CPU rules Azure ML's autoscale guide uses for online deployments (add instances
when average CPU stays above 70%); the scale-in mark is lower than the guide's example (30%) so that a
recommendation to remove capacity needs a clearly idle deployment. Plain Python: it runs in the Function App.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lifecycle.core.canary_stats import quantile
from lifecycle.core.platform_values import TrafficWindow, Utilisation

SCALE_UP, SCALE_DOWN, KEEP = "scale_up", "scale_down", "keep"


@dataclass(frozen=True)
class ScalePolicy:
    cpu_high_percent: float = 70.0          # scale up above this mean CPU
    memory_high_percent: float = 80.0       # scale up above this mean memory
    latency_p95_limit_ms: float = 1000.0    # scale up above this p95 latency...
    min_requests: int = 20                  # ...measured over at least this many requests
    cpu_low_percent: float = 20.0           # scale down below this mean CPU...
    memory_low_percent: float = 50.0        # ...and below this mean memory, with more than one instance

    def __post_init__(self) -> None:
        if not 0 <= self.cpu_low_percent < self.cpu_high_percent <= 100:
            raise ValueError(f"CPU marks must satisfy 0 <= low < high <= 100, not low {self.cpu_low_percent} "
                             f"and high {self.cpu_high_percent}")
        if not 0 <= self.memory_low_percent < self.memory_high_percent <= 100:
            raise ValueError(f"memory marks must satisfy 0 <= low < high <= 100, not low {self.memory_low_percent} "
                             f"and high {self.memory_high_percent}")
        if self.latency_p95_limit_ms <= 0 or self.min_requests < 1:
            raise ValueError("the p95 latency limit must be positive and min_requests at least 1")


def recommend(utilisation: Utilisation, traffic: TrafficWindow, window_seconds: float,
              policy: ScalePolicy = ScalePolicy()) -> dict:
    """The deployment's load over the window and a scaling recommendation with its reasons (JSON-safe)."""
    if not window_seconds > 0:
        raise ValueError(f"window_seconds must be positive, not {window_seconds}")
    latencies = sorted(s.latency_ms for s in traffic.samples if _finite(s.latency_ms))
    p50 = quantile(latencies, 0.50) if latencies else None
    p95 = quantile(latencies, 0.95) if latencies else None
    cpu, memory = _number(utilisation.cpu_percent), _number(utilisation.memory_percent)
    instances = utilisation.instances
    p = policy

    up: list[str] = []
    if cpu is not None and cpu > p.cpu_high_percent:
        up.append(f"CPU {cpu:.1f}% is above {p.cpu_high_percent:g}%")
    if memory is not None and memory > p.memory_high_percent:
        up.append(f"memory {memory:.1f}% is above {p.memory_high_percent:g}%")
    if p95 is not None and len(latencies) >= p.min_requests and p95 > p.latency_p95_limit_ms:
        up.append(f"p95 latency {p95:.0f} ms is above {p.latency_p95_limit_ms:g} ms over {len(latencies)} requests")

    notes: list[str] = []
    if cpu is None:
        notes.append("no CPU figure for the window: CPU not judged")
    if memory is None:
        notes.append("no memory figure for the window: memory not judged")
    if not latencies:
        notes.append("no per-request latencies for the window: latency not judged")
    elif len(latencies) < p.min_requests:
        notes.append(f"only {len(latencies)} requests with a latency (fewer than {p.min_requests}): latency not judged")

    if up:
        recommendation, reasons = SCALE_UP, up
    elif cpu is None or memory is None:
        recommendation, reasons = KEEP, ["no recommendation from missing data: CPU and memory are both needed "
                                         "to scale down"]
    elif cpu < p.cpu_low_percent and memory < p.memory_low_percent:
        idle = (f"CPU {cpu:.1f}% is below {p.cpu_low_percent:g}% "
                f"and memory {memory:.1f}% below {p.memory_low_percent:g}%")
        if instances is not None and instances > 1:
            recommendation, reasons = SCALE_DOWN, [f"{idle} on {instances} instances"]
        elif instances is None:
            recommendation, reasons = KEEP, [f"{idle}, but the instance count is unknown: no recommendation from "
                                             "missing data"]
        else:
            recommendation, reasons = KEEP, [f"{idle}, already at {instances} instance"]
    else:
        recommendation, reasons = KEEP, [f"CPU {cpu:.1f}% and memory {memory:.1f}% are within "
                                         f"{p.cpu_low_percent:g}-{p.cpu_high_percent:g}% and "
                                         f"{p.memory_low_percent:g}-{p.memory_high_percent:g}%"]

    return {
        "deployment": utilisation.deployment or traffic.deployment,
        "request_rate": _round(traffic.requests / window_seconds, 4),
        "latency_ms": {"p50": _round(p50, 1), "p95": _round(p95, 1)},
        "error_rate": _round(traffic.server_errors / traffic.requests, 4) if traffic.requests else None,
        "cpu_percent": _round(cpu, 2),
        "memory_percent": _round(memory, 2),
        "instances": instances,
        "recommendation": recommendation,
        "reasons": reasons + notes,
    }


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _number(x) -> float | None:
    return float(x) if _finite(x) else None


def _round(x: float | None, digits: int) -> float | None:
    return round(x, digits) if x is not None and math.isfinite(x) else None
