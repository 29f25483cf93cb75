"""Test traffic for an online endpoint: a background sender that records every answer, so a rollout
can be watched under load and no dropped request goes unnoticed."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class Answer:
    status: int
    deployment: str
    latency_ms: float
    error: str = ""


@dataclass
class Traffic:
    """Sends `rows_per_request` rows (drawn from `rows`) to the scoring URI, `rate` requests a second."""
    scoring_uri: str
    key: str
    columns: list[str]
    rows: list[list]
    rate: float = 20.0
    rows_per_request: int = 1
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {self.key}"
        self._random = random.Random(0)

    def send_one(self) -> Answer:
        rows = self._random.sample(self.rows, min(self.rows_per_request, len(self.rows)))
        body = {"input_data": {"columns": self.columns, "data": rows}}
        started = time.perf_counter()
        try:
            response = self._session.post(self.scoring_uri, json=body, timeout=30)
            answer = Answer(response.status_code, response.headers.get("azureml-model-deployment", ""),
                            (time.perf_counter() - started) * 1000, "" if response.ok else response.text[:200])
        except requests.RequestException as error:
            answer = Answer(0, "", (time.perf_counter() - started) * 1000, f"{type(error).__name__}: {error}")
        self.answers.append(answer)
        return answer

    def start(self) -> "Traffic":
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

    def __enter__(self) -> "Traffic":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
