"""What the simulated endpoint served and what ground truth came back: the Metrics, Collected and Feedback ports of
a simulated run, over the same requests."""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from lifecycle.core.platform_values import (
    ClusterUsage,
    JobStatus,
    JobUsage,
    RequestSample,
    TrafficWindow,
    Utilisation,
)
from mlops.simulation.platform import STORAGE


@dataclass(frozen=True)
class Served:
    """One request a deployment answered."""
    time: float
    request_id: str
    inputs: dict
    outputs: dict
    latency_ms: float


class SimTraffic:
    """What the endpoint served: the Metrics and Collected ports over the same requests."""

    def __init__(self) -> None:
        self.served: dict[str, list[Served]] = defaultdict(list)      # deployment → requests, in time order
        self.times: dict[str, list[float]] = defaultdict(list)

    def record(self, deployment: str, served: list[Served]) -> None:
        self.served[deployment].extend(served)
        self.times[deployment].extend(s.time for s in served)

    def between(self, deployment: str, since: datetime, until: datetime | None) -> list[Served]:
        times = self.times[deployment]
        first = bisect.bisect_left(times, since.timestamp())
        last = len(times) if until is None else bisect.bisect_left(times, until.timestamp())
        return self.served[deployment][first:last]

    # Metrics
    def window(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> TrafficWindow:
        served = self.between(deployment, since, until)
        samples = tuple(RequestSample(s.time, 200, s.latency_ms, s.request_id) for s in served)
        return TrafficWindow(deployment, samples, len(samples), 0)

    def utilisation(self, endpoint: str, deployment: str, since: datetime,
                    until: datetime | None = None) -> Utilisation:
        return Utilisation(deployment, cpu_percent=None, memory_percent=None, instances=1)

    def job_usage(self, job: JobStatus) -> JobUsage | None:
        return job.usage

    def cluster_usage(self, cluster: str, since: datetime, until: datetime | None = None) -> ClusterUsage | None:
        return None

    # Collected
    def predictions(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> list:
        return [s.outputs["prediction"] for s in self.between(deployment, since, until)]

    def location(self, endpoint: str, deployment: str) -> tuple[str, bool]:
        return f"{STORAGE}/azureml/modelDataCollector/{endpoint}/{deployment}/", bool(self.served[deployment])

    def records(self, endpoint: str, deployment: str, collection: str, since: datetime,
                until: datetime | None = None) -> Iterator[dict]:
        for s in self.between(deployment, since, until):
            yield s.inputs if collection == "model_inputs" else s.outputs


class SimFeedback:
    """Ground truth as it arrives: request id → label, stamped with when it was written (in time order)."""

    def __init__(self) -> None:
        self.written: list[tuple[float, str, object]] = []
        self.by_id: dict[str, tuple[float, object]] = {}

    def give(self, at: datetime, labels: list[tuple[str, object]]) -> None:
        stamp = at.timestamp()
        for request_id, label in labels:
            self.written.append((stamp, request_id, label))
            self.by_id[request_id] = (stamp, label)

    def labels(self, since: datetime, until: datetime | None = None, label_column: str = "") -> dict[str, object]:
        start, end = since.timestamp(), until.timestamp() if until else float("inf")
        first = bisect.bisect_left(self.written, (start,))
        found: dict[str, object] = {}
        for stamp, request_id, label in self.written[first:]:
            if stamp >= end:
                break
            found[request_id] = label
        return found

    def known(self, request_ids: set[str], until: datetime) -> dict[str, object]:
        """The labels of these requests written before `until` (what a job reading the container then finds)."""
        end = until.timestamp()
        return {r: found[1] for r in request_ids if (found := self.by_id.get(r)) is not None and found[0] < end}
