"""What one deployment behind the local endpoint router answered: totals by status class since the start,
and the last requests' samples (time, latency, status), which the stand-in's metrics and the canary judge read.
Thread-safe: the router records from its event loop while the metrics are read from other threads."""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, NamedTuple

from lifecycle.core.canary_stats import quantile

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


class Sample(NamedTuple):
    time: float           # wall clock (time.time()) when the answer was ready
    latency_ms: float     # from the request's arrival at the router to the deployment's answer
    status: int
    mirrored: bool = False  # a mirrored copy (its answer was discarded), not a client's request


class DeploymentStats:
    """Requests answered by one deployment: totals since the start, and the last `capacity` samples."""

    __slots__ = ("requests", "status", "mirrored", "mirror_dropped", "_samples", "_lock")

    def __init__(self, capacity: int) -> None:
        self.requests = 0
        self.status = dict.fromkeys(STATUS_CLASSES, 0)
        self.mirrored = 0            # of `requests`, the mirrored copies
        self.mirror_dropped = 0      # mirrored copies not sent: too many already in flight
        self._samples: deque[Sample] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def record(self, status: int, latency_ms: float, now: float, mirrored: bool = False) -> None:
        with self._lock:
            self.requests += 1
            self.status[status_class(status)] += 1
            if mirrored:
                self.mirrored += 1
                self._samples.append(Sample(now, latency_ms, status, True))
            else:
                self._samples.append(Sample(now, latency_ms, status))

    def drop_mirror(self) -> None:
        with self._lock:
            self.mirror_dropped += 1

    def samples(self, since: float | None = None) -> list[Sample]:
        with self._lock:
            taken = list(self._samples)
        return taken if since is None else [s for s in taken if s.time >= since]

    def summary(self, with_samples: bool = False) -> dict[str, Any]:
        with self._lock:
            requests, status, taken = self.requests, dict(self.status), list(self._samples)
            mirrored, dropped = self.mirrored, self.mirror_dropped
        latencies = sorted(s.latency_ms for s in taken)
        out: dict[str, Any] = {
            "requests": requests,
            "status": status,
            "mirrored": mirrored,
            "mirror_dropped": dropped,
            "latency_ms": {f"p{q}": round(quantile(latencies, q / 100), 3) for q in (50, 90, 95, 99)}
            if latencies else {},
            "window": len(taken),
        }
        if with_samples:
            out["samples"] = [list(s) for s in taken]
        return out


def status_class(status: int) -> str:
    return STATUS_CLASSES[min(max(status // 100 - 2, 0), 3)]
