"""Training and monitoring jobs of a simulated run: run here, at submission, with the project's own code
(training/train.py, monitoring/run.py) on the data as it stands, ending `job_minutes` of simulated time later."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifecycle.core.platform_values import JobStatus, MonitoringRequest, TrainingRequest
from lifecycle.core.times import iso
from mlops.simulation.platform import Clock, SimData, SimRegistry
from mlops.simulation.traffic import Served, SimFeedback, SimTraffic


@dataclass
class SimJob:
    status: JobStatus
    ends_at: datetime
    folder: Path
    outcome: str = "Completed"
    error: str = ""


@dataclass
class Measured:
    training_seconds: float = 0.0
    monitoring_seconds: float = 0.0
    trainings: int = 0
    monitoring_jobs: int = 0
    failed: list[str] = field(default_factory=list)


class SimJobs:
    """Jobs run here, at submission, on the data as it stands; they end `job_minutes` of simulated time later."""

    def __init__(self, root: Path, clock: Clock, data: SimData, traffic: SimTraffic, feedback: SimFeedback,
                 registry: SimRegistry, target: str, job_minutes: float, monitoring_minutes: float) -> None:
        self.root, self.clock, self.data, self.traffic, self.feedback = root, clock, data, traffic, feedback
        self.registry, self.target = registry, target
        self.job_minutes, self.monitoring_minutes = job_minutes, monitoring_minutes
        self.jobs: dict[str, SimJob] = {}
        self.started: list[str] = []                 # submitted since the engine last looked
        self.measured = Measured()

    def submit(self, request: TrainingRequest) -> JobStatus:
        if request.job_name in self.jobs:
            return self.jobs[request.job_name].status
        if request.spec:
            raise SimulationUnsupported(f"the model trains with its own job spec {request.spec}: the simulation runs "
                                        "training/train.py only")
        folder = self.root / request.job_name
        folder.mkdir(parents=True)
        argv = self._training_argv(request, folder)
        started = time.perf_counter()
        from training import train
        from training.run_log import untracked
        with _quiet(), untracked():       # a simulated year's trainings are not runs anyone would compare
            code = train.main(argv)
        self.measured.training_seconds += time.perf_counter() - started
        self.measured.trainings += 1
        error = "" if code == 0 else _error_of(folder / "output")
        tags = request.tags | {"mlops.model_name": request.model_name}
        return self._start(request.job_name, request.experiment, tags, folder, self.job_minutes, error)

    def _training_argv(self, request: TrainingRequest, folder: Path) -> list[str]:
        root = self.data.path_of(request.data)
        argv = ["--data", str(root), "--target", request.target, "--model-name", request.model_name,
                "--output", str(folder / "output"), "--task", request.task]
        for option, files in (("--data-files", request.data_files), ("--holdout-files", request.holdout_files)):
            if files:
                manifest = folder / option.strip("-")
                manifest.write_text("\n".join(files) + "\n")
                argv += [option, str(manifest)]
        if request.window_column:
            argv += ["--window-column", request.window_column, "--window-days", str(request.window_days)]
        if request.champion:
            champion = self.registry.folder(*request.champion.split(":"))
            if champion is not None:
                argv += ["--champion-model", str(champion)]
        for key, value in request.hyperparameters.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        return argv

    def submit_monitoring(self, request: MonitoringRequest) -> JobStatus:
        if request.job_name in self.jobs:
            return self.jobs[request.job_name].status
        folder = self.root / request.job_name
        since, until = datetime.fromisoformat(request.window_start), datetime.fromisoformat(request.window_end)
        served = self.traffic.between(request.deployment, since, until)
        for collection in ("model_inputs", "model_outputs"):
            _write_collected(folder / collection, served, collection)
        labels = self.feedback.known({s.request_id for s in served}, self.clock.now)
        (folder / "labels").mkdir()
        (folder / "labels" / "labels.csv").write_text(_labels_csv(labels, self.target))
        model = self.registry.folder(*request.model.split(":"))
        argv = ["--model", str(model), "--inputs", str(folder / "model_inputs"),
                "--outputs", str(folder / "model_outputs"), "--labels", str(folder / "labels"),
                "--output", str(folder / "report"), "--start", request.window_start, "--end", request.window_end,
                "--endpoint", request.endpoint, "--deployment", request.deployment, "--model-id", request.model,
                "--min-rows", str(request.min_rows), "--min-labels", str(request.min_labels), "--no-report"]
        for option, value in (("--drift-thresholds", request.drift_thresholds),
                              ("--sensitive-column", request.sensitive_column),
                              ("--previous-alerts", ",".join(request.previous_alerts)), ("--task", request.task)):
            if value:
                argv += [option, value]
        started = time.perf_counter()
        from monitoring import run
        with _quiet():
            code = run.main(argv)
        self.measured.monitoring_seconds += time.perf_counter() - started
        self.measured.monitoring_jobs += 1
        return self._start(request.job_name, request.experiment, request.tags, folder, self.monitoring_minutes,
                           "" if code == 0 else f"monitoring/run.py exited {code}")

    def _start(self, name: str, experiment: str, tags: dict[str, str], folder: Path, minutes: float,
               error: str) -> JobStatus:
        status = JobStatus(name, "Running", experiment, dict(tags), created=iso(self.clock.now))
        self.jobs[name] = SimJob(status, self.clock.now + timedelta(minutes=minutes), folder,
                                 "Failed" if error else "Completed", error)
        self.started.append(name)
        if error:
            self.measured.failed.append(f"{name}: {error}")
        return status

    def end(self, name: str) -> SimJob:
        """The job's simulated time is up: it ends as it ran."""
        job = self.jobs[name]
        job.status = replace(job.status, status=job.outcome, error=job.error or None)
        return job

    def get(self, name: str) -> JobStatus | None:
        job = self.jobs.get(name)
        return job.status if job else None

    def metrics(self, name: str) -> dict:
        return json.loads((self.jobs[name].folder / "output" / "metrics.json").read_text())

    def output(self, name: str, output: str, path: str) -> bytes | None:
        job = self.jobs.get(name)
        target = job.folder / output / path if job else None
        return target.read_bytes() if target is not None and target.is_file() else None

    def tag(self, name: str, tags: dict[str, str]) -> None:
        job = self.jobs[name]
        job.status = replace(job.status, tags={**job.status.tags, **tags})


class SimulationUnsupported(RuntimeError):
    """Something of the model's setup the simulation cannot run (said instead of simulating something else)."""


def _write_collected(folder: Path, served: list[Served], collection: str) -> None:
    """The window's requests in the data collector's layout (one JSON line per request, an hour a folder)."""
    by_hour: dict[str, list[str]] = defaultdict(list)
    for s in served:
        moment = datetime.fromtimestamp(s.time, tz=UTC)
        data = s.inputs if collection == "model_inputs" else s.outputs
        by_hour[f"{moment:%Y/%m/%d/%H}"].append(json.dumps(
            {"time": iso(moment, "milliseconds"), "data": [data],
             "correlationid": s.request_id}, default=str))
    for hour, lines in by_hour.items():
        target = folder / hour
        target.mkdir(parents=True, exist_ok=True)
        (target / "part.jsonl").write_text("\n".join(lines) + "\n")
    folder.mkdir(parents=True, exist_ok=True)


def _labels_csv(labels: dict[str, object], target: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["request_id", target])
    writer.writerows(labels.items())
    return out.getvalue()


def _error_of(output: Path) -> str:
    error = output / "error.json"
    if error.is_file():
        with contextlib.suppress(ValueError):
            return str(json.loads(error.read_text()).get("message") or "train.py failed")
    return "train.py failed"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """A job's own printing belongs in its logs, not in the simulation's output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
