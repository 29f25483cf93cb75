"""One policy's simulated run: a history replayed through the function app's own handlers on a simulated clock.

Discrete events in time order: production traffic (batches through the day, answered by whatever deployment
the endpoint's split picks), its ground truth `label_delay_minutes` later, the day's labelled rows landing as a
drop at its end, the app's timers (retrain, monitor, reconcile) at their NCRONTAB times, jobs ending, and every
event an adapter or a handler emits, routed by the app's routing table (infra/event-subscriptions.json) to the
handler its function calls, redelivered on a transient error as Event Grid would. Policies come from app settings
through the app's own composition (lifecycle.bootstrap.build_policies), so a setting means here what it means
live."""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lifecycle import clock
from lifecycle.bootstrap import build_policies
from lifecycle.core import incoming_events
from lifecycle.core import notifications as told
from lifecycle.core.policies import Task
from lifecycle.core.times import iso
from lifecycle.dispatch import Rejected, reject
from lifecycle.ports import Platform
from lifecycle.settings import Settings
from mlops.simulation.histories import History
from mlops.simulation.jobs import SimJobs
from mlops.simulation.outcome import DailyScore, Marker, PolicyRun
from mlops.simulation.platform import Clock, MemoryState, SimData, SimEndpoints, SimEvents, SimRegistry
from mlops.simulation.traffic import Served, SimFeedback, SimTraffic

log = logging.getLogger("mlops.simulation")
MAX_DELIVERIES = 5                  # then the event is given up on (Event Grid would dead-letter it)
MARKERS = {told.TRAINING_STARTED: "trained", told.TRAINING_FAILED: "failed", told.MODEL_REGISTERED: "registered",
           told.MODEL_REJECTED: "rejected",
           told.MODEL_PROMOTED: "promoted", told.ROLLOUT_ROLLED_BACK: "rolled_back",
           told.DRIFT_DETECTED: "alert", told.PERFORMANCE_DEGRADED: "alert"}


@dataclass(frozen=True)
class Candidate:
    """A retraining policy to try: the app settings it sets (over the simulation's base settings)."""
    name: str
    settings: dict[str, str]
    description: str = ""


@dataclass(frozen=True)
class SimOptions:
    warmup_days: int = 14            # the first model trains on these days; the rest are measured
    job_minutes: float = 20          # a training job's simulated duration
    monitoring_minutes: float = 5
    label_delay_minutes: float = 60  # ground truth arrives this long after the request
    batches_per_day: int = 12        # production traffic arrives in this many batches a day (every 2 hours)
    reconcile_schedule: str = "0 0 * * * *"
    seed: int = 0
    base_settings: dict[str, str] = field(default_factory=dict)


# The app settings that are timers' schedules, not Settings fields (function_app's %RETRAIN_SCHEDULE% etc.)
SCHEDULES = {"RETRAIN_SCHEDULE": "0 0 2 * * *", "MONITOR_SCHEDULE": "0 30 0 * * *"}
# What the simulation sets unless the base or the policy does: a daily monitoring pass over the day's traffic.
SIMULATION_DEFAULTS = {"MONITOR_WINDOW_MINUTES": "1440", "MONITOR_MIN_ROWS": "200", "MONITOR_MIN_LABELS": "100",
                       "ALERT_COOLDOWN_MINUTES": "720", "ROLLOUT_MAX_STEP_SECONDS": "172800"}


def app_settings(history: History, candidate: Candidate, options: SimOptions) -> dict[str, str]:
    """The app settings this policy runs with: the simulation's defaults, the base, then the policy's own."""
    settings = {**SCHEDULES, **SIMULATION_DEFAULTS, "TARGET_COLUMN": history.target,
                **({"GATE_METRIC": "r2", "GATE_FLOOR": "0"} if history.task == "regression" else {}),
                **options.base_settings, **candidate.settings}
    return {**settings, "AzureWebJobsStorage": "simulated"}


def policies_of(history: History, settings: dict[str, str]):
    """The app's own composition of policies from settings (SettingsError names a bad one)."""
    policies = build_policies(Settings.from_env({k: v for k, v in settings.items() if k not in SCHEDULES}))
    task: Task = "regression" if history.task == "regression" else "classification"
    return replace(policies, model=replace(policies.model, task=task))


def run_policy(history: History, candidate: Candidate, options: SimOptions, work: Path | None = None,
               progress: Callable[[int], None] | None = None) -> PolicyRun:
    import sklearn.ensemble  # noqa: F401  (loaded first: threadpool_limits limits only libraries already loaded)
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # a scikit-learn dependency
    # One thread: policies run side by side, and OpenMP's threads on a busy machine cost more than they give
    # (each day's requests are a few small predictions; a spinning thread pool makes each one slower).
    with tempfile.TemporaryDirectory(prefix="mlops-simulate-") as scratch, threadpool_limits(1):
        return Simulation(history, candidate, options, work or Path(scratch)).run(progress)


class Simulation:
    def __init__(self, history: History, candidate: Candidate, options: SimOptions, work: Path) -> None:
        from emulator.eventgrid.routing import load_routing_table
        self.history, self.candidate, self.options = history, candidate, options
        self.settings = app_settings(history, candidate, options)
        policies = policies_of(history, self.settings)
        self.start = datetime.combine(history.start, datetime.min.time(), UTC) + timedelta(days=options.warmup_days)
        self.clock = Clock(self.start - timedelta(hours=12))
        self.queue: list[tuple[datetime, int, str, Any]] = []
        self.seq = itertools.count()
        self.table = load_routing_table()
        self.markers: list[Marker] = []
        self.data = SimData(work / "data", self.clock, self.emit, policies.model.data_container)
        self.traffic, self.feedback = SimTraffic(), SimFeedback()
        self.registry = SimRegistry(work / "jobs", self.emit)
        self.jobs = SimJobs(work / "jobs", self.clock, self.data, self.traffic, self.feedback, self.registry,
                            history.target, options.job_minutes, options.monitoring_minutes)
        self.endpoints = SimEndpoints(self.registry)
        self.platform = Platform(policies, MemoryState(), self.jobs, self.registry, self.endpoints, self.traffic,
                                 self.traffic, SimEvents(self.emit), self.feedback, self.data, models=(policies,))
        self.daily: dict[int, list[tuple[object, object]]] = {}
        self.undelivered: list[str] = []

    # ---- the queue ------------------------------------------------------------------------------

    def at(self, when: datetime, kind: str, payload: Any = None) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), kind, payload))

    def emit(self, topic: str, event_type: str, subject: str, data: dict) -> None:
        body = {"id": f"sim-{next(self.seq)}", "topic": f"/simulated/{topic}", "subject": subject,
                "eventType": event_type, "eventTime": iso(self.clock.now, "milliseconds"),
                "data": json.loads(json.dumps(data, default=str)), "dataVersion": "1"}
        if topic == "lifecycle" and event_type in MARKERS and self._fired(data):
            self.markers.append(Marker(self._day(self.clock.now), MARKERS[event_type], _detail(event_type, data)))
        self.at(self.clock.now, "event", (topic, body))

    @staticmethod
    def _fired(data: dict) -> bool:
        """An alert that fired (a resolved one is no decision); other events carry no condition."""
        return str(data.get("condition") or "Fired") == "Fired"

    def _day(self, when: datetime) -> float:
        return round((when - self.start).total_seconds() / 86400, 4)

    # ---- a run ----------------------------------------------------------------------------------

    def run(self, progress: Callable[[int], None] | None = None) -> PolicyRun:
        from lifecycle.handlers import reconcile
        reconcile._last_data_scan = None        # per process in the app; per run here
        started = time.perf_counter()
        clock.use(lambda: self.clock.now)
        try:
            self._bootstrap()
            bootstrap = (self.jobs.measured.training_seconds, self.jobs.measured.monitoring_seconds)
            markers_before = len(self.markers)
            days = self.history.days[self.options.warmup_days:]
            for index, frame in enumerate(days):
                self._schedule_day(index, frame)
                self._until(self.start + timedelta(days=index + 1))
                if progress:
                    progress(index + 1)
        finally:
            clock.use(None)
        measured = self.markers[markers_before:]
        count = lambda kind: sum(1 for m in measured if m.kind == kind)  # noqa: E731
        return PolicyRun(
            name=self.candidate.name, description=self.candidate.description,
            settings={k: v for k, v in self.settings.items() if k != "AzureWebJobsStorage"},
            daily=tuple(self._score(i) for i in range(len(days))), markers=tuple(measured),
            trainings=count("trained"), failed_trainings=count("failed"),
            registered=count("registered"), rejected=count("rejected"), promoted=count("promoted"),
            rolled_back=count("rolled_back"), alerts=count("alert"), monitoring_jobs=self.jobs.measured.monitoring_jobs,
            undelivered=tuple(self.undelivered),
            training_seconds=round(self.jobs.measured.training_seconds - bootstrap[0], 3),
            monitoring_seconds=round(self.jobs.measured.monitoring_seconds - bootstrap[1], 3),
            wall_seconds=round(time.perf_counter() - started, 3))

    def _bootstrap(self) -> None:
        """The first model, the same for every policy: the warm-up days as one drop, trained (forced, as
        `POST /api/retrain` does) and rolled out before the first measured day."""
        from lifecycle.handlers.training import retrain_models
        warmup = self.history.days[:self.options.warmup_days]
        if not warmup or sum(len(f) for f in warmup) == 0:
            raise ValueError("the warm-up days hold no rows: the first model has nothing to train on")
        root = self.platform.policies.model.data_root
        self.data.write_drop(f"{root}initial/", {"part-0000.csv": pd.concat(warmup).to_csv(index=False).encode()})
        self._drain()
        retrain_models(self.platform, self.clock.now, forced=True)
        self._until(self.start)

    def _schedule_day(self, index: int, frame: pd.DataFrame) -> None:
        day = self.start + timedelta(days=index)
        batches = np.array_split(np.arange(len(frame)), self.options.batches_per_day)
        for b, rows in enumerate(batches):
            if len(rows):
                when = day + timedelta(days=(b + 0.5) / self.options.batches_per_day)
                self.at(when, "traffic", (index, b, frame.iloc[rows]))
        self.at(day + timedelta(days=1, minutes=5), "drop", (index, frame))
        for name, function in (("RETRAIN_SCHEDULE", "retrain"), ("MONITOR_SCHEDULE", "monitor")):
            for tick in _ticks(self.settings[name], day):
                self.at(tick, function)
        for tick in _ticks(self.options.reconcile_schedule, day):
            self.at(tick, "reconcile")

    def _until(self, end: datetime) -> None:
        while self.queue and self.queue[0][0] < end:
            when, _, kind, payload = heapq.heappop(self.queue)
            self.clock.now = max(self.clock.now, when)
            self._step(kind, payload)
        self.clock.now = max(self.clock.now, end)

    def _drain(self) -> None:
        self._until(self.clock.now + timedelta(microseconds=1))

    def _step(self, kind: str, payload: Any) -> None:
        from lifecycle.handlers.monitoring import monitor_models
        from lifecycle.handlers.reconcile import reconcile
        from lifecycle.handlers.training import retrain_models
        now = self.clock.now
        if kind == "event":
            self._deliver(*payload)
        elif kind == "delivery":
            self._call(*payload)
        elif kind == "traffic":
            self._serve(*payload)
        elif kind == "labels":
            self.feedback.give(now, payload)
        elif kind == "drop":
            index, frame = payload
            landed = self.history.start + timedelta(days=self.options.warmup_days + index)
            folder = f"{self.platform.policies.model.data_root}{landed}/"
            self.data.write_drop(folder, {"part-0000.csv": frame.to_csv(index=False).encode()})
        elif kind == "retrain":
            retrain_models(self.platform, now)
        elif kind == "monitor":
            monitor_models(self.platform, now)
        elif kind == "reconcile":
            reconcile(self.platform, now)
        elif kind == "job_end":
            self._job_ended(payload)
        while self.jobs.started:                 # jobs this step submitted: their end is due later
            name = self.jobs.started.pop(0)
            self.at(self.jobs.jobs[name].ends_at, "job_end", name)

    def _deliver(self, topic: str, body: dict) -> None:
        from emulator.eventgrid.schema import EVENTGRID_SCHEMA, WireEvent
        for sub in self.table.matching(topic, WireEvent(EVENTGRID_SCHEMA, body)):
            if sub.function in HANDLERS:
                self._call(sub.function, body, 1)

    def _call(self, function: str, body: dict, attempt: int) -> None:
        """What lifecycle.dispatch.event_grid does for a delivery, and Event Grid's retry of a failed one."""
        try:
            HANDLERS[function](incoming_events.parse(body), self.platform)
        except (incoming_events.EventParseError, Rejected) as error:
            reject(self.platform, body, function, str(error))
        except Exception as error:     # transient, as the function host sees it: delivered again later
            if attempt >= MAX_DELIVERIES:
                self.undelivered.append(f"{function}: {body['eventType']} {body['subject']}: {error}")
                log.warning("gave up delivering %s to %s: %s", body["eventType"], function, error)
                return
            self.at(self.clock.now + timedelta(minutes=attempt), "delivery", (function, body, attempt + 1))

    def _job_ended(self, name: str) -> None:
        job = self.jobs.end(name)
        status = job.status
        data = {"experimentName": status.experiment, "runId": name, "runType": "azureml.scriptrun",
                "runTags": dict(status.tags), "runProperties": {"mlops.error": job.error} if job.error else {}}
        subject = f"experiments/{status.experiment}/runs/{name}"
        if job.outcome == "Completed":
            self.emit("mlworkspace", "Microsoft.MachineLearningServices.RunCompleted", subject, data)
        self.emit("mlworkspace", "Microsoft.MachineLearningServices.RunStatusChanged", subject,
                  {**data, "runStatus": job.outcome})

    def _serve(self, index: int, batch: int, frame: pd.DataFrame) -> None:
        """A batch of production requests, split between the deployments as the endpoint's traffic says."""
        endpoint = self.endpoints.get(self.platform.policies.model.endpoint)
        split = {d: w for d, w in (endpoint.traffic if endpoint else {}).items() if w > 0}
        scores = self.daily.setdefault(index, [])
        if not split:
            return
        target = self.history.target
        # the same draw for every policy: each policy's endpoint splits the same requests
        rng = np.random.default_rng([self.options.seed, index, batch])
        names = sorted(split)
        weights = np.array([split[n] for n in names], dtype=float)
        chosen = rng.choice(len(names), size=len(frame), p=weights / weights.sum())
        ids = [f"d{index:04d}-b{batch:03d}-{i:05d}" for i in range(len(frame))]
        features, truths = frame.drop(columns=[target]), frame[target].to_numpy()
        now = self.clock.now
        labels: list[tuple[str, object]] = []
        for k, name in enumerate(names):
            rows = np.flatnonzero(chosen == k)
            scorer = self.endpoints.scorer(endpoint.name, name) if endpoint else None
            if not len(rows) or scorer is None:
                continue
            records = features.iloc[rows].to_dict("records")
            for r, i in zip(records, rows, strict=True):
                r["request_id"] = ids[i]
            answer = scorer.score(json.dumps({"data": records}, default=str))
            served = []
            for j, (record, prediction) in enumerate(zip(records, answer["predictions"], strict=True)):
                outputs = {"prediction": prediction, "request_id": record["request_id"]}
                if answer.get("probabilities") is not None:
                    outputs.update({f"probability_{c}": p for c, p in zip(answer["classes"],
                                                                          answer["probabilities"][j], strict=True)})
                served.append(Served(now.timestamp() + j * 1e-3, record["request_id"], record, outputs,
                                     self.endpoints.latency_ms))
                truth = truths[rows[j]]
                scores.append((truth, prediction))
                labels.append((record["request_id"], _plain(truth)))
            self.traffic.record(name, served)
        self.at(now + timedelta(minutes=self.options.label_delay_minutes), "labels", labels)

    def _score(self, index: int) -> DailyScore:
        pairs = self.daily.get(index, [])
        when = (self.history.start + timedelta(days=self.options.warmup_days + index)).isoformat()
        if not pairs:
            return DailyScore(index, when, None, 0)
        truth, predicted = (np.array(x) for x in zip(*pairs, strict=True))
        if self.history.task == "regression":
            from sklearn.metrics import r2_score
            metric = float(r2_score(truth.astype(float), predicted.astype(float)))
        else:
            metric = float(np.mean(_same(truth, predicted)))
        return DailyScore(index, when, round(metric, 6), len(pairs))


def _ticks(schedule: str, day: datetime) -> list[datetime]:
    """The NCRONTAB schedule's times within the day (seconds first, as the Functions timer reads it)."""
    from croniter import croniter
    found, it = [], croniter(schedule, day - timedelta(seconds=1), second_at_beginning=True)
    while (tick := it.get_next(datetime)) < day + timedelta(days=1):
        found.append(tick)
    return found


def _same(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Labels compared as numbers when both are (1 == 1.0), else as text."""
    try:
        return truth.astype(float) == predicted.astype(float)
    except (TypeError, ValueError):
        return truth.astype(str) == predicted.astype(str)


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _detail(event_type: str, data: dict) -> str:
    for key in ("summary", "reason", "model", "job"):
        if data.get(key):
            return str(data[key])[:200]
    return event_type


def _handlers() -> dict[str, Callable[[Any, Platform], object]]:
    """Each function of the app the routing table names, as its trigger calls it (functions/*.py)."""
    from lifecycle.handlers.alerts import alert_event
    from lifecycle.handlers.azureml_runs import run_completed, run_status_changed
    from lifecycle.handlers.data import data_arrived
    from lifecycle.handlers.promotion import model_promoted, model_shared
    from lifecycle.handlers.rollout import model_registered, rollout_event
    return {"on_data_arrived": data_arrived, "on_run_completed": run_completed,
            "on_run_status_changed": run_status_changed, "on_model_registered": model_registered,
            "on_rollout_event": rollout_event, "on_alert_event": alert_event,
            "on_model_promoted": model_promoted, "on_model_shared": model_shared}


HANDLERS = _handlers()
NOT_SIMULATED = {"on_decision": "telling people: the decisions are the report's markers"}


def measured_start(history: History, options: SimOptions) -> date:
    return history.start + timedelta(days=options.warmup_days)
