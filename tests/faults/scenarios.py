"""The fault scenarios, each on a real local stack run as `mlops up`: replays, crashes, poison, concurrency.
Each returns what it counted; the tests assert on it and bench/faults.py prints it."""
from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import requests
from azure.core.credentials import AzureKeyCredential
from azure.eventgrid import EventGridPublisherClient
from azure.storage.blob import BlobServiceClient

from emulator.eventgrid.routing import DEFAULT_TABLE, load_routing_table
from emulator.eventgrid.schema import CLOUDEVENTS_SCHEMA, WireEvent
from lifecycle.core.retraining import may_retry
from lifecycle.core.rollout_machine import RolloutEvent
from lifecycle.core.state_records import AlertRecord, Decision, Drop, MonitorRun, TrainingRun
from mlops.demo_data import COLUMNS, loan_csv, loan_rows
from mlops.traffic import FeedbackWriter, Traffic
from tests.faults.harness import ENDPOINT, MODEL, HarnessError, StackProcess, drop, ledger, rollout, run_until, serving


# -- a lifecycle: a drop, its training, the gate, the rollout ---------------------------------------------
def lifecycle_done(stack: StackProcess, prefix: str):
    """The drop's story once it has ended: rejected or held at the gate, or its version's rollout settled."""
    p = stack.platform
    found = [d for d in p.state.list(Drop) if d.prefix == prefix]
    if not found or not found[0].job:
        return None
    run = p.state.get(TrainingRun, found[0].job)
    if run is None or run.status == "Submitted":
        return None
    if run.status != "Completed":
        job = p.jobs.get(run.job_name)
        if job is not None and job.retryable and may_retry(found[0], p.policies.retrain):
            return None                   # the platform lost it: the drop is being offered to a new job
        return f"training {run.status.lower()}: {run.error}"
    decision = p.state.get(Decision, run.job_name)
    if decision is None:
        return None
    if not decision.version:
        return f"gate: {decision.outcome}"
    return version_done(stack, decision.version)


def version_done(stack: StackProcess, version: str) -> str | None:
    ref = f"{MODEL}:{version}"
    p = stack.platform
    finished = [e for e in p.state.list(RolloutEvent) if e.model == ref]
    current = rollout(stack)
    if finished and current is not None and not current.settling:
        return f"{ref} {finished[0].outcome.replace('_', ' ')}"
    if current is not None and (current.model == ref or ref in current.queued):
        return None
    if current is not None and current.live_model and _number(current.live_model) > int(version):
        return f"{ref} superseded"
    return None


def _number(ref: str) -> int:
    return int(ref.rsplit(":", 1)[1])


def live_version(stack: StackProcess) -> str:
    r = rollout(stack)
    return r.live_model.rsplit(":", 1)[1] if r and r.live_model else ""


def train_and_roll_out(stack: StackProcess, prefix: str, seed: int, timeout: float = 300) -> str:
    drop(stack, prefix, seed)
    return run_until(stack, lambda: lifecycle_done(stack, prefix), timeout, f"the lifecycle of {prefix}")


# -- replay ---------------------------------------------------------------------------------------------
@dataclass
class ReplayResult:
    lifecycles: int = 0
    events: int = 0
    replays: int = 0
    outcomes: list[str] = field(default_factory=list)
    duplicates: int = 0
    re_promotions: int = 0
    problems: list[str] = field(default_factory=list)


def archived_events(stack: StackProcess) -> list[tuple[str, WireEvent]]:
    path = stack.home.path("eventgrid", "published.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["topic"], WireEvent.from_json(row["event"])) for row in rows]


class Replayer:
    """Sends events again by every path Event Grid and its clients use: EventGridPublisherClient to the
    topic, a plain POST to the topic, and straight to the function's webhook."""

    def __init__(self, stack: StackProcess) -> None:
        self.stack = stack
        self.table = load_routing_table(DEFAULT_TABLE)
        self.keys = json.loads(stack.home.path("functions", "keys.json").read_text())
        self.sent = 0

    def send(self, topic: str, event: WireEvent, path: int) -> None:
        info = self.stack.info
        cloud = event.schema == CLOUDEVENTS_SCHEMA
        if path == 0 and not cloud:
            EventGridPublisherClient(info.eventgrid_topics[topic], AzureKeyCredential(info.eventgrid_key)).send(
                [event.body])
        elif path == 1 or cloud:
            response = requests.post(info.eventgrid_topics[topic],
                                     data=json.dumps(event.body if cloud else [event.body]),
                                     headers={"aeg-sas-key": info.eventgrid_key, "Content-Type":
                                              "application/cloudevents+json" if cloud else "application/json"},
                                     timeout=30)
            if response.status_code != 200:
                raise HarnessError(f"the topic refused a replayed event: {response.status_code} {response.text}")
        else:
            for sub in self.table.matching(topic, event):
                # a delivery the webhook answers 500 to is one Event Grid would retry: the function
                # raised, and the replay counts as delivered once the grid's own copy succeeds
                requests.post(f"{info.functions_url}/runtime/webhooks/eventgrid", params={
                    "functionName": sub.function, "code": self.keys["eventgrid_extension_key"]},
                    data=json.dumps([event.body]), headers={"aeg-event-type": "Notification",
                                                            "Content-Type": "application/json"}, timeout=60)
        self.sent += 1

    def replay(self, events: list[tuple[str, WireEvent]], copies: int, rng: random.Random) -> None:
        batch = [(topic, event, copy % 3) for copy in range(copies) for topic, event in events]
        rng.shuffle(batch)
        for topic, event, path in batch:
            self.send(topic, event, path)


def quiet(stack: StackProcess, seconds: float = 8, timeout: float = 240) -> None:
    """Until nothing has moved for `seconds`: no job running, no rollout active, the same records."""
    def snapshot():
        p = stack.platform
        r = rollout(stack)
        busy = any(run.status == "Submitted" for run in p.state.list(TrainingRun)) or (r and (r.active or r.settling))
        return busy, len(p.state.list(Decision)), len(p.state.list(RolloutEvent)), r and r.revision
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = snapshot()
        if now != last:
            last, since = now, time.monotonic()
        elif not now[0] and time.monotonic() - since >= seconds:
            return
        time.sleep(0.5)
    running = [run.job_name for run in stack.platform.state.list(TrainingRun) if run.status == "Submitted"]
    r = rollout(stack)
    raise HarnessError(f"the stack did not settle within {timeout:.0f} s: {last}; runs still submitted {running}; "
                       f"rollout {r and (r.model, r.phase, r.settling, r.history[-1:] if r.history else None)}")


def replay_scenario(workdir: Path, lifecycles: int = 3, copies: int = 3, seed: int = 7) -> ReplayResult:
    rng = random.Random(seed)
    stack = StackProcess(workdir / "replay")
    result = ReplayResult(lifecycles=lifecycles)
    stack.start()
    try:
        replayer = Replayer(stack)
        marks = []
        for i in range(lifecycles):
            result.outcomes.append(train_and_roll_out(stack, f"loans/day-{i}/", seed=100 + i))
            marks.append(len(archived_events(stack)))
            if i >= 1:                      # late replays: the previous lifecycle's events, after this one
                start = marks[i - 2] if i >= 2 else 0
                replayer.replay(archived_events(stack)[start:marks[i - 1]], 1, rng)
        events = archived_events(stack)[:marks[-1]]
        result.events = len(events)
        replayer.replay(events, copies, rng)
        quiet(stack)
        book = ledger(stack)
        result.replays, result.duplicates = replayer.sent, book.duplicates
        result.re_promotions, result.problems = len(book.re_promotions), book.problems()
    finally:
        stack.stop()
    return result


# -- crashes --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrashCase:
    name: str
    kind: str                 # first | next | monitor | alert
    plan: str                 # MLOPS_CRASH_AT


CRASHES = [
    CrashCase("recording the first drop", "first", "function.invoked=on_data_arrived#2"),
    CrashCase("during the first training", "first", "job.running+1"),
    CrashCase("training done, RunCompleted on its way", "first",
              "event.published=Microsoft.MachineLearningServices.RunCompleted"),
    CrashCase("right after the first registration", "first", "model.registered"),
    CrashCase("as the first rollout starts", "first", "function.invoked=on_model_registered"),
    CrashCase("during the first smoke test", "first", "deployment.smoke"),
    CrashCase("during the first promotion", "first", "event.published=MLOps.ModelPromoted"),
    CrashCase("during training", "next", "job.running+1.5"),
    CrashCase("gating a finished run", "next", "function.invoked=on_run_completed"),
    CrashCase("right after registration", "next", "model.registered"),
    CrashCase("ModelRegistered on its way", "next",
              "event.published=Microsoft.MachineLearningServices.ModelRegistered"),
    CrashCase("as the rollout starts", "next", "event.published=MLOps.RolloutStarted"),
    CrashCase("during the smoke test", "next", "deployment.smoke"),
    CrashCase("at the 10% canary step", "next", "traffic.set#1"),
    CrashCase("at the 50% canary step", "next", "traffic.set#2"),
    CrashCase("as the canary takes its first share", "next", "event.published=MLOps.RolloutProgressed#2"),
    CrashCase("as traffic moves to 100%", "next", "traffic.set#3"),
    CrashCase("during promotion", "next", "event.published=MLOps.ModelPromoted"),
    CrashCase("during a monitoring pass", "monitor", "function.invoked=monitor_now+0.3"),
    CrashCase("during alert handling", "alert", "function.invoked=on_alert_event+0.05"),
    CrashCase("training on production data after an alert", "alert", "job.running+1"),
]


def _judged(runs: list[MonitorRun]) -> list[MonitorRun]:
    return [r for r in runs if r.status == "Completed"]


# what identifies the end of a case's lifecycle: the drop's prefix, the monitoring passes stored before it, or
# the alert's id
Handle = tuple[Literal["drop"], str] | tuple[Literal["monitor"], int] | tuple[Literal["alert"], str]


@dataclass
class CrashOutcome:
    case: str
    plan: str
    crashed: bool = False
    recovered: bool = False
    orphans: list[str] = field(default_factory=list)
    serving_after_s: float | None = None
    end: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


class CrashRun:
    """A home where lifecycles run one after another, each crashed once at its case's point."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.stack = StackProcess(workdir / name)
        self.drops = 0
        self.has_live = False

    def handle(self, case: CrashCase) -> Handle:
        """What identifies the end of the case's lifecycle, decided before it starts."""
        self.drops += 1
        if case.kind in ("first", "next"):
            return ("drop", f"loans/{self.drops:03d}-{case.kind}/")
        if case.kind == "monitor":
            return ("monitor", len(_judged(self.stack.platform.state.list(MonitorRun))))
        return ("alert", f"crash-{self.drops}")

    def trigger(self, case: CrashCase, handle: Handle) -> None:
        if handle[0] == "drop":
            drop(self.stack, handle[1], seed=200 + self.drops)
            return
        self._labelled_traffic()
        if handle[0] == "monitor":
            self._monitor_now()
            return
        alert = {"id": str(uuid.uuid4()), "eventType": "MLOps.DriftDetected", "subject": f"endpoints/{ENDPOINT}",
                 "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dataVersion": "1.0",
                 "data": {"alertId": handle[1], "condition": "Fired", "signal": "data_drift",
                          "summary": "income drifted"}}
        EventGridPublisherClient(self.stack.info.eventgrid_endpoint,
                                 AzureKeyCredential(self.stack.info.eventgrid_key)).send([alert])

    def _monitor_now(self) -> None:
        """POST /api/monitor: what the monitor timer does on its schedule."""
        key = json.loads(self.stack.home.path("functions", "keys.json").read_text())["function_key"]
        requests.post(f"{self.stack.info.functions_url}/api/monitor", params={"code": key}, timeout=60)

    def _labelled_traffic(self, requests_: int = 160) -> None:
        """Scored requests with their ground truth in the feedback container, made durable."""
        rows = loan_rows(400, seed=self.drops)
        sender = Traffic(self.stack.info.scoring_uri, self.stack.platform.endpoints.scoring_key(ENDPOINT), COLUMNS[:-1],
                         [r[:-1] for r in rows], rate=40, labels=[r[-1] for r in rows])
        for _ in range(requests_):
            sender.send_one()
        feedback = BlobServiceClient.from_connection_string(self.stack.info.storage_connection_string) \
            .get_container_client("feedback")
        if not feedback.exists():
            feedback.create_container()
        written = time.time()
        FeedbackWriter(feedback, sender, "default").deliver()
        self.stack.durable(written)

    def ended(self, handle: Handle) -> str | None:
        p = self.stack.platform
        if handle[0] == "drop":
            return lifecycle_done(self.stack, handle[1])
        if handle[0] == "monitor":
            runs = _judged(p.state.list(MonitorRun))         # the pass's job has ended and its result is stored
            return f"{len(runs)} monitoring pass(es) stored" if len(runs) > handle[1] else None
        alert = next((a for a in p.state.list(AlertRecord) if a.alert_id == handle[1] and a.job), None)
        run = p.state.get(TrainingRun, alert.job) if alert else None
        drop_ = p.state.get(Drop, run.drop_id) if run and run.drop_id else None
        return lifecycle_done(self.stack, drop_.prefix) if drop_ else None     # its data's last job, retries too

    def run(self, case: CrashCase, timeout: float = 300) -> CrashOutcome:
        outcome = CrashOutcome(case.name, case.plan)
        started = time.monotonic()
        info = self.stack.start(crash=case.plan)
        handle = self.handle(case)
        try:
            self.trigger(case, handle)
        except Exception:
            if not self.stack.wait_crashed(15):
                raise                     # a real failure, not the stack dying under the request
        try:
            run_until(self.stack, lambda: self.stack.process.poll() is not None, timeout, f"the crash at {case.plan}")
        except HarnessError as error:
            outcome.problems.append(str(error))
            self.stack.stop()
            return outcome
        outcome.crashed = self.stack.wait_crashed(5)
        time.sleep(1.0)                               # what was killed is reaped
        outcome.orphans = self.stack.orphans(info.pid)
        restarted = time.monotonic()
        self.stack.start()
        try:
            if live_version(self.stack):           # from `mlops up` to the first scoring answer
                serving(self.stack)
                outcome.serving_after_s = round(time.monotonic() - restarted, 2)
            if case.kind == "monitor":
                self._monitor_now()                # the timer's next tick: the pass the crash cut short
            outcome.end = run_until(self.stack, lambda: self.ended(handle), timeout, f"the end of '{case.name}'")
            quiet(self.stack)
            outcome.problems += ledger(self.stack).problems()
            if outcome.end.startswith("training"):       # good data: a failed training means something was lost
                outcome.problems.append(outcome.end)
            outcome.recovered = outcome.crashed and not outcome.orphans and not outcome.problems and bool(outcome.end)
            self.has_live = bool(live_version(self.stack))
        except HarnessError as error:
            outcome.problems.append(str(error))
        finally:
            outcome.seconds = round(time.monotonic() - started, 1)
        return outcome

    def ensure_live(self) -> None:
        """A model serving (no crash), for the cases that start from one."""
        if self.has_live:
            return
        self.stack.start()
        try:
            self.drops += 1
            train_and_roll_out(self.stack, f"loans/{self.drops:03d}-base/", seed=200 + self.drops)
            self.has_live = bool(live_version(self.stack))
        finally:
            self.stack.stop()

    def close(self) -> None:
        self.stack.stop()


def crash_scenario(workdir: Path, cases: list[CrashCase] = CRASHES,
                   progress=lambda outcome: None) -> list[CrashOutcome]:
    outcomes = []
    shared = CrashRun(workdir, "crash-shared")
    try:
        for index, case in enumerate(cases):
            run = CrashRun(workdir, f"crash-first-{index}") if case.kind == "first" else shared
            if case.kind != "first":
                run.ensure_live()
            try:
                outcome = run.run(case)
            except Exception as error:          # counted as not recovered, with the reason; the matrix goes on
                outcome = CrashOutcome(case.name, case.plan, problems=[f"{type(error).__name__}: {error}"])
            finally:
                run.stack.stop()
            outcomes.append(outcome)
            progress(outcome)
    finally:
        shared.close()
    return outcomes


# -- concurrency ----------------------------------------------------------------------------------------
@dataclass
class ConcurrencyResult:
    jobs: int = 0
    trainings_per_batch: dict = field(default_factory=dict)
    overlapping_rollouts: list[str] = field(default_factory=list)
    lost_decisions: list[str] = field(default_factory=list)
    alert_outcome: str = ""
    forced: str = ""
    problems: list[str] = field(default_factory=list)


def concurrency_scenario(workdir: Path) -> ConcurrencyResult:
    """With a model live: two drops complete, an alert arrives and a retrain is forced, all at one instant,
    while the reconcile timer ticks every second."""
    import threading
    result = ConcurrencyResult()
    stack = StackProcess(workdir / "concurrency")
    stack.start()
    try:
        train_and_roll_out(stack, "loans/base/", seed=300)
        container = stack.data()
        written = time.time()
        for day in ("a", "b"):
            container.upload_blob(f"loans/same-instant-{day}/part-0000.csv", loan_csv(1500, seed=ord(day)))
        stack.durable(written)
        keys = json.loads(stack.home.path("functions", "keys.json").read_text())
        go = threading.Barrier(4)
        answers = {}

        def marker(day):
            go.wait()
            container.upload_blob(f"loans/same-instant-{day}/_SUCCESS", b"", overwrite=True)

        def alert():
            go.wait()
            EventGridPublisherClient(stack.info.eventgrid_endpoint,
                                     AzureKeyCredential(stack.info.eventgrid_key)).send([{
                "id": str(uuid.uuid4()), "eventType": "MLOps.PerformanceDegraded", "subject": f"endpoints/{ENDPOINT}",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dataVersion": "1.0",
                "data": {"alertId": "same-instant", "condition": "Fired", "signal": "concept_drift",
                         "summary": "accuracy fell"}}])

        def forced():
            go.wait()
            answers["forced"] = requests.post(f"{stack.info.functions_url}/api/retrain",
                                              params={"code": keys["function_key"]}, timeout=60).json()

        threads = [threading.Thread(target=f, args=a) for f, a in ((marker, ("a",)), (marker, ("b",)), (alert, ()),
                                                                  (forced, ()))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for day in ("a", "b"):
            run_until(stack, lambda: lifecycle_done(stack, f"loans/same-instant-{day}/"), 400,  # noqa: B023  (polled at once)
                      f"drop {day}")
        quiet(stack)
        p = stack.platform
        book = ledger(stack)
        result.problems = book.problems()
        result.jobs = len(p.state.list(TrainingRun))
        result.trainings_per_batch = dict(book.trainings_per_batch)
        finished = sorted(p.state.list(RolloutEvent), key=lambda e: e.started_at)
        for a, b in zip(finished, finished[1:]):
            if b.started_at < a.finished_at:
                result.overlapping_rollouts.append(f"{a.model} and {b.model}")
        for run in p.state.list(TrainingRun):
            if run.status == "Completed" and p.state.get(Decision, run.job_name) is None:
                result.lost_decisions.append(run.job_name)
        record = next((a for a in p.state.list(AlertRecord) if a.alert_id == "same-instant"), None)
        result.alert_outcome = f"{record.outcome}: {record.detail}" if record else "no record"
        result.forced = json.dumps(answers.get("forced"))
    finally:
        stack.stop()
    return result


# -- poison ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Poison:
    name: str
    kind: str                 # file | event | http
    shows: str                # where its reason is kept: rejection | failed job | held | http | log
    fragment: str             # what the reason says


@dataclass
class PoisonOutcome:
    case: Poison
    rejected_with_reason: bool = False
    seen: str = ""


@dataclass
class PoisonResult:
    outcomes: list[PoisonOutcome] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    good_drop_after: str = ""
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(o.rejected_with_reason for o in self.outcomes)


def _csv(frame) -> bytes:
    return frame.to_csv(index=False).encode()


def _poison_files(good) -> dict[str, tuple[Poison, dict[str, bytes]]]:
    """Bad drops (prefix -> case, files): each must end as a failed job, a rejection or a held model."""
    import gzip

    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(5)
    few = good.head(10)
    inf = good.copy()
    inf.loc[::7, "income"] = np.inf
    huge = good.copy()
    huge.loc[::9, "income"] = 1e308
    single = good.copy()
    single["default"] = 0
    no_label = good.copy()
    no_label["default"] = np.nan
    wide = pd.concat([good, pd.DataFrame(rng.normal(size=(len(good), 2000)), columns=[f"x{i}" for i in range(2000)])],
                     axis=1)
    yes_no = good.copy()
    yes_no["default"] = yes_no["default"].map({0: "no", 1: "yes"})
    leak = good.copy()
    leak["repaid_late"] = leak["default"] * 30 + rng.integers(0, 3, len(leak))
    cases = [
        (Poison("an empty file", "file", "rejection", "is an empty file (0 bytes)"), {"part.csv": b""}),
        (Poison("a header and no rows", "file", "failed job", "has a header but no rows"),
         {"part.csv": _csv(good.head(0))}),
        (Poison("no target column", "file", "failed job", "the target column 'default' is missing"),
         {"part.csv": _csv(good.drop(columns=["default"]))}),
        (Poison("one class only", "file", "failed job", "has only one class"), {"part.csv": _csv(single)}),
        (Poison("no labels at all", "file", "failed job", "is empty in all"), {"part.csv": _csv(no_label)}),
        (Poison("binary junk named .csv", "file", "failed job", "a binary file"),
         {"part.csv": bytes(rng.integers(0, 256, 4096, dtype=np.uint8))}),
        (Poison("UTF-16 text", "file", "failed job", "UTF-16 text"),
         {"part.csv": _csv(good).decode().encode("utf-16")}),
        (Poison("CSV named .parquet", "file", "failed job", "not a Parquet file"), {"part.parquet": _csv(good)}),
        (Poison("a gzip file cut short", "file", "failed job", "Compressed file ended"),
         {"part.csv.gz": gzip.compress(_csv(good))[:4000]}),
        (Poison("no data file, only text", "file", "failed job", "no data files found"), {"notes.txt": b"hello"}),
        (Poison("ten rows", "file", "failed job", "at least 50 are needed"), {"part.csv": _csv(few)}),
        (Poison("files with other columns", "file", "failed job", "its columns differ"),
         {"a.csv": _csv(good), "b.csv": _csv(good.rename(columns={"income": "salary"}))}),
        (Poison("numbers beyond float32", "file", "failed job", "beyond"), {"part.csv": _csv(huge)}),
        (Poison("infinities in a feature", "file", "log", "treated as missing"), {"part.csv": _csv(inf)}),
        (Poison("2,000 random columns", "file", "held", "new inputs"), {"part.csv": _csv(wide)}),
        (Poison("a yes/no target", "file", "held", "labels the champion never had"), {"part.csv": _csv(yes_no)}),
        (Poison("a feature that is the label", "file", "held", "likely leak"), {"part.csv": _csv(leak)}),
        (Poison("a gzip bomb of one 5 MB line", "file", "failed job", "header but no rows"),
         {"part.csv.gz": gzip.compress(b"a" * 5_000_000)}),
    ]
    return {f"poison/{i:02d}/": case for i, case in enumerate(cases)}


def _event(event_type: str, subject: str, data, **envelope) -> dict:
    return {"id": str(uuid.uuid4()), "eventType": event_type, "subject": subject, "dataVersion": "1",
            "eventTime": "2026-01-01T00:00:00Z", "data": data, **envelope}


BLOB = "Microsoft.Storage.BlobCreated"
ML = "Microsoft.MachineLearningServices."
DATA_SUBJECT = "/blobServices/default/containers/data/blobs/events/x.csv"
POISON_EVENTS = [
    (Poison("BlobCreated whose data is a string", "event", "timeline", "no subscription's filter matched"), "storage",
     _event(BLOB, DATA_SUBJECT, "not an object")),
    (Poison("BlobCreated without a url", "event", "rejection", "required field 'url'"), "storage",
     _event(BLOB, DATA_SUBJECT, {"api": "PutBlob", "eTag": "0x1", "contentLength": 5})),
    (Poison("BlobCreated with a negative length", "event", "rejection", "whole number"), "storage",
     _event(BLOB, DATA_SUBJECT, {"api": "PutBlob", "eTag": "0x1", "contentLength": -5, "url": "http://x/data/x.csv"})),
    (Poison("RunCompleted without a run id", "event", "rejection", "required field 'runId'"), "mlworkspace",
     _event(ML + "RunCompleted", "experiments/e/runs/r", {"experimentName": "x"})),
    (Poison("RunCompleted with tags that are a list", "event", "rejection", "must be an object"), "mlworkspace",
     _event(ML + "RunCompleted", "experiments/e/runs/r", {"runId": "r", "runTags": ["a"]})),
    (Poison("ModelRegistered without a version", "event", "rejection", "required field 'ModelVersion'"),
     "mlworkspace", _event(ML + "ModelRegistered", "models/tabular-classifier:9", {"ModelName": MODEL})),
    (Poison("ModelRegistered of a version that does not exist", "event", "rejection", "is not in the registry"),
     "mlworkspace", _event(ML + "ModelRegistered", "models/tabular-classifier:999",
                           {"ModelName": MODEL, "ModelVersion": "999"})),
    (Poison("DatasetDriftDetected with a coefficient that is text", "event", "rejection", "must be a number"),
     "mlworkspace", _event(ML + "DatasetDriftDetected", "datadrift/x",
                           {"DataDriftId": "d", "DriftCoefficient": "high", "RunId": "r"})),
    (Poison("a drift alert that is neither fired nor resolved", "event", "rejection", "condition"), "lifecycle",
     _event("MLOps.DriftDetected", "endpoints/x", {"alertId": "a", "condition": "Maybe"})),
    (Poison("RunCompleted of someone else's run", "event", "log", "not a training run of this app"), "mlworkspace",
     _event(ML + "RunCompleted", "experiments/e/runs/theirs", {"runId": "theirs-run", "experimentName": "theirs"})),
    (Poison("ModelRegistered of another model", "event", "log", "this app deploys tabular-classifier"),
     "mlworkspace", _event(ML + "ModelRegistered", "models/other:1", {"ModelName": "other", "ModelVersion": "1"})),
]


def _http_cases(stack: StackProcess) -> list[tuple[Poison, str, str, dict, bytes]]:
    info, keys = stack.info, json.loads(stack.home.path("functions", "keys.json").read_text())
    api = f"{info.functions_url}/api"
    code = {"code": keys["function_key"]}
    deep = b"[" * 5000 + b"]" * 5000
    hook = f"{info.functions_url}/runtime/webhooks/eventgrid"
    return [
        (Poison("an Azure Monitor alert that is not JSON", "http", "http", "common alert schema"), "POST",
         f"{api}/alerts", code, b"<alert/>"),
        (Poison("an Azure Monitor alert of another schema", "http", "http", "only 'azureMonitorCommonAlertSchema'"),
         "POST", f"{api}/alerts", code, json.dumps({"schemaId": "Microsoft.Insights/activityLogs"}).encode()),
        (Poison("an Azure Monitor alert without an id", "http", "http", "alertId"), "POST", f"{api}/alerts", code,
         json.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}}}).encode()),
        (Poison("an Azure Monitor alert nested 5,000 deep", "http", "http", "common alert schema"), "POST",
         f"{api}/alerts", code, deep),
        (Poison("an Azure Monitor alert without a key", "http", "http", ""), "POST", f"{api}/alerts", {}, b"{}"),
        (Poison("approving a job nobody ran", "http", "http", "has no gate decision"), "POST",
         f"{api}/decisions/no-such-job/approve", {**code, "by": "poison"}, b""),
        (Poison("a rollout action that does not exist", "http", "http", "unknown rollout action"), "POST",
         f"{api}/rollouts/{ENDPOINT}/frobnicate", code, b""),
        (Poison("events nested 5,000 deep to the topic", "http", "http", "levels deep"), "POST",
         info.eventgrid_topics["storage"], {"aeg-sas-key": info.eventgrid_key}, deep),
        (Poison("events with the wrong topic key", "http", "http", "does not match"), "POST",
         info.eventgrid_topics["storage"], {"aeg-sas-key": "wrong"}, b"[]"),
        (Poison("2 MB of events to the topic", "http", "http", "1,048,576"), "POST", info.eventgrid_topics["storage"],
         {"aeg-sas-key": info.eventgrid_key},
         json.dumps([_event(BLOB, DATA_SUBJECT, {"pad": "x" * 2_000_000})]).encode()),
        (Poison("an event whose time the worker cannot read, to the webhook", "http", "http", "eventTime"), "POST",
         hook, {"functionName": "on_data_arrived", "code": keys["eventgrid_extension_key"]},
         json.dumps([_event(BLOB, DATA_SUBJECT, {}, eventTime="7 June")]).encode()),
    ]


def poison_scenario(workdir: Path) -> PoisonResult:
    from io import BytesIO

    import pandas as pd
    result = PoisonResult()
    stack = StackProcess(workdir / "poison")
    stack.start()
    try:
        train_and_roll_out(stack, "loans/before/", seed=400)
        good = pd.read_csv(BytesIO(loan_csv(1500, seed=401)))
        container = stack.data()
        drops = _poison_files(good)
        written = time.time()
        for prefix, (_, files) in drops.items():
            for name, body in files.items():
                container.upload_blob(prefix + name, body, overwrite=True)
        stack.durable(written)
        for prefix in drops:
            container.upload_blob(prefix + "_SUCCESS", b"", overwrite=True)
        container.upload_blob("poison/marker-only/_SUCCESS", b"", overwrite=True)
        checks = [(case, ("drop", prefix)) for prefix, (case, _) in drops.items()]
        checks.append((Poison("a _SUCCESS marker and no data", "file", "rejection",
                              "has a _SUCCESS marker but no data"),
                       ("drop", "poison/marker-only/")))
        for case, topic, event in POISON_EVENTS:
            EventGridPublisherClient(stack.info.eventgrid_topics[topic],
                                     AzureKeyCredential(stack.info.eventgrid_key)).send([event])
            checks.append((case, ("event", event["id"])))
        for case, method, url, params, body in _http_cases(stack):
            headers = {k: v for k, v in params.items() if k.startswith("aeg")}
            query = {k: v for k, v in params.items() if not k.startswith("aeg")}
            if "webhooks" in url:
                headers["aeg-event-type"] = "Notification"
            answer = requests.request(method, url, params=query,
                                      headers={**headers, "Content-Type": "application/json"},
                                      data=body, timeout=60)
            if answer.status_code >= 500:
                result.server_errors.append(f"{case.name}: {answer.status_code} {answer.text[:200]}")
            ok = 400 <= answer.status_code < 500 and case.fragment in answer.text
            result.outcomes.append(PoisonOutcome(case, ok, f"{answer.status_code} {answer.text[:160]}"))
        pending = dict(checks)

        def settle():
            for case, handle in list(pending.items()):
                seen = _poison_seen(stack, case, handle)
                if seen is not None:
                    result.outcomes.append(PoisonOutcome(case, case.fragment.lower() in seen.lower(), seen))
                    del pending[case]
            return not pending
        try:
            run_until(stack, settle, 400, "every poison case to be answered")
        except HarnessError:
            result.outcomes += [PoisonOutcome(case, False, "no outcome") for case in pending]
        result.good_drop_after = train_and_roll_out(stack, "loans/after/", seed=402)
        quiet(stack)
        book = ledger(stack)
        result.problems = [p for p in book.problems() if not p.startswith("drop never trained: poison/")]
        result.lost += [f"drop never trained: {d}" for d in book.untrained_drops if not d.startswith("poison/")]
        result.server_errors += [f"{d.function} {d.event_id}: {d.detail}" for d in _timeline(stack)
                                 if d.status and d.status >= 500]
    finally:
        stack.stop()
    return result


def _timeline(stack: StackProcess):
    from emulator.timeline import Timeline
    return list(Timeline(stack.home.timeline).read())


def _poison_seen(stack: StackProcess, case: Poison, handle: tuple[str, str]) -> str | None:
    """What the user sees of a poison case (the reason), once it is settled."""
    from lifecycle.core.state_records import Rejection
    p = stack.platform
    kind, key = handle
    if kind == "event":
        found = [r for r in p.state.list(Rejection) if r.event_id == key]
        if found:
            return found[0].reason
        if case.shows == "timeline":        # filtered out by the subscriptions, as Azure does: `mlops events`
            return next((f"{d.outcome}: {d.detail}" for d in _timeline(stack) if d.event_id == key), None)
        if case.shows == "log":
            text = stack.home.path("logs", "functions.log").read_text(errors="replace")
            return case.fragment if case.fragment in text and any(d.event_id == key and d.outcome == "delivered"
                                                                  for d in _timeline(stack)) else None
        return None
    drop_ = next((d for d in p.state.list(Drop) if d.prefix == key), None)
    rejections = [r.reason for r in p.state.list(Rejection) if key in r.subject or key in r.reason]
    if case.shows == "rejection":
        return rejections[0] if rejections else None
    if drop_ is None or not drop_.job:
        return None
    run = p.state.get(TrainingRun, drop_.job)
    if run is None or run.status == "Submitted":
        return None
    if run.status != "Completed":
        return run.error
    decision = p.state.get(Decision, run.job_name)
    if decision is None:
        return None
    seen = f"{decision.outcome}: " + "; ".join(decision.reasons)
    if case.shows == "log":           # trained after all: the job's log says what was set aside
        notes = [line for line in _job_log(stack, run.job_name).splitlines() if case.fragment in line]
        seen += "; " + " ".join(notes)
    return seen


def _job_log(stack: StackProcess, job: str) -> str:
    path = stack.home.path("aml", "jobs", job, "user_logs", "std_log.txt")
    return path.read_text(errors="replace") if path.exists() else ""
