"""Test traffic for an online endpoint: a background sender that records every answer, so a rollout
can be watched under load and no dropped request goes unnoticed."""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

log = logging.getLogger("mlops.traffic")


@dataclass
class Answer:
    status: int
    deployment: str
    latency_ms: float
    error: str = ""


@dataclass
class Traffic:
    """Sends `rows_per_request` rows (drawn from `rows`) to the scoring URI, `rate` requests a second.

    With `labels` (one per row, the ground truth), every row sent gets a fresh `request_id` and
    (request_id, label) goes to `truth`, for a FeedbackWriter to deliver later, as labels would be."""
    scoring_uri: str
    key: str
    columns: list[str]
    rows: list[list]
    rate: float = 20.0
    rows_per_request: int = 1
    labels: list | None = None
    answers: list[Answer] = field(default_factory=list)
    truth: list[tuple[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.rows_per_request < 1:
            raise ValueError(f"rate {self.rate} and rows per request {self.rows_per_request}: above 0, at least 1")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {self.key}"
        self._random = random.Random(0)

    def send_one(self) -> Answer:
        picked = self._random.sample(range(len(self.rows)), min(self.rows_per_request, len(self.rows)))
        rows, columns = [self.rows[i] for i in picked], self.columns
        if self.labels is not None:
            ids = [str(uuid.uuid4()) for _ in picked]
            rows, columns = [[*row, i] for row, i in zip(rows, ids)], [*columns, "request_id"]
            self.truth.extend((i, self.labels[j]) for i, j in zip(ids, picked))
        body = {"input_data": {"columns": columns, "data": rows}}
        started = time.perf_counter()
        try:
            response = self._session.post(self.scoring_uri, json=body, timeout=30)
            answer = Answer(response.status_code, response.headers.get("azureml-model-deployment", ""),
                            (time.perf_counter() - started) * 1000, "" if response.ok else response.text[:200])
        except requests.RequestException as error:
            answer = Answer(0, "", (time.perf_counter() - started) * 1000, f"{type(error).__name__}: {error}")
        self.answers.append(answer)
        return answer

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.send_one()
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)

    def summary(self) -> dict:
        return {"requests": len(self.answers), "status": dict(Counter(a.status for a in self.answers)),
                "deployments": dict(Counter(a.deployment for a in self.answers if a.deployment)),
                "dropped": sum(1 for a in self.answers if a.status == 0)}

    def latency_summary(self) -> dict:
        """summary() with the latencies' median and 99th percentile (None before any answer)."""
        latencies = sorted(a.latency_ms for a in self.answers)
        return {**self.summary(),
                "p50_ms": latencies[len(latencies) // 2] if latencies else None,
                "p99_ms": latencies[max(0, -(-len(latencies) * 99 // 100) - 1)] if latencies else None}

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FeedbackWriter:
    """Delivers the ground truth of sent requests to the feedback container every `every` seconds, as a
    labelling process would: one CSV (request_id, <label column>) per delivery."""

    def __init__(self, container, traffic: Traffic, label_column: str, every: float = 3.0) -> None:
        self.container, self.traffic, self.label_column, self.every = container, traffic, label_column, every
        self.delivered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feedback", daemon=True)

    def deliver(self) -> int:
        new = self.traffic.truth[self.delivered:]
        if not new:
            return 0
        body = "request_id," + self.label_column + "\n" + "".join(f"{i},{label}\n" for i, label in new)
        self.container.upload_blob(f"labels/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.csv", body.encode())
        self.delivered += len(new)
        return len(new)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.deliver()
            except Exception as error:   # a storage hiccup: the same labels go with the next delivery
                log.warning("feedback delivery failed, retrying with the next one: %s", error)

    def __enter__(self) -> FeedbackWriter:
        from azure.core.exceptions import ResourceExistsError
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.deliver()
