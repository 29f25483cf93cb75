"""The fault-injection harness: the local stack as a user runs it (`mlops up` in its own process, so it can
be killed with SIGKILL and started again on the same home), a lifecycle driver, and the ledger of what the
lifecycle did, from which duplicates, re-promotions, stuck jobs and inconsistencies are counted.

Used by the fault tests (tests/faults/) and by bench/faults.py, which prints the figures."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from azure.storage.blob import BlobServiceClient

from emulator.faults import ENV as CRASH_ENV
from emulator.faults import STACK_PID
from emulator.home import StackHome
from emulator.processes import die_with_parent
from emulator.stack import StackInfo
from lifecycle.core.rollout_machine import Rollout, RolloutEvent
from lifecycle.core.state_records import DataBatch, Decision, Drop, Rejection, TrainingRun
from lifecycle.ports import Platform
from mlops.demo_data import COLUMNS, loan_csv, loan_rows
from mlops.local import local_platform
from mlops.traffic import Traffic

ROOT = Path(__file__).resolve().parents[2]
MLOPS = Path(sys.executable).with_name("mlops")
MODEL = "tabular-classifier"
ENDPOINT = "mlops-endpoint"
# Fast but real: every step of the chain runs, with short waits.
SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "python", "MODEL_NAME": MODEL, "TARGET_COLUMN": "default", "ENDPOINT_NAME": ENDPOINT,
    "RETRAIN_SCHEDULE": "0 0 2 * * *", "RECONCILE_SCHEDULE": "*/1 * * * * *", "DROP_QUIET_SECONDS": "10",
    "RETRAIN_COOLDOWN_MINUTES": "0", "GATE_METRIC": "f1", "GATE_FLOOR": "0.5", "GATE_MARGIN": "0.05",
    "ROLLOUT_STEPS": "10,50,100", "ROLLOUT_BAKE_SECONDS": "2", "ROLLOUT_MIN_REQUESTS": "15",
    "ROLLOUT_RETENTION_SECONDS": "0", "ROLLOUT_MAX_STEP_SECONDS": "120", "ROLLOUT_ON_NEW_MODEL": "wait",
    "MONITOR_SCHEDULE": "0 0 0 1 1 *", "MONITOR_WINDOW_MINUTES": "60", "MONITOR_MIN_ROWS": "100",
    "MONITOR_MIN_LABELS": "50", "ALERT_COOLDOWN_MINUTES": "0",
}


# Each drop trains alone (a window of one drop), as the scenarios' bookkeeping expects: a poison drop fails its
# own job instead of being absorbed by the history before it. The accumulating window has its own chain
# (tests/test_own_models.py, make chains).
ONE_DROP = f"models: {{{MODEL}: {{target: default, endpoint: {ENDPOINT}, data: {{window: 1 drop}}}}}}\n"


class HarnessError(AssertionError):
    pass


def wait_for(probe, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class StackProcess:
    """`mlops up` on a home folder, in a process of its own."""

    def __init__(self, home: Path, settings: dict[str, str] | None = None) -> None:
        self.home = StackHome(home)
        self.home.root.mkdir(parents=True, exist_ok=True)
        self.settings_file = self.home.root.parent / f"{self.home.root.name}.settings.json"
        models = self.home.root.parent / f"{self.home.root.name}.models.yaml"
        models.write_text(ONE_DROP)
        values = {**SETTINGS, "MLOPS_CONFIG": str(models), **(settings or {})}
        self.settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
        self._process: subprocess.Popen | None = None
        self._info: StackInfo | None = None
        self.starts = 0
        self._platform: tuple[int, Platform] | None = None

    @property
    def process(self) -> subprocess.Popen:
        """`mlops up`'s process, from the first `start`."""
        if self._process is None:
            raise HarnessError(f"the stack on {self.home.root} has not been started: no `mlops up` process")
        return self._process

    @property
    def info(self) -> StackInfo:
        """What the last `start` read of the running stack (its endpoints and keys)."""
        if self._info is None:
            raise HarnessError(f"the stack on {self.home.root} has not been started: no stack info")
        return self._info

    def start(self, crash: str | None = None, timeout: float = 180) -> StackInfo:
        env = {**os.environ, "MLOPS_HOME": str(self.home.root), "MLOPS_EVENTGRID_RETRY_SCALE": "0.01"}
        env.pop(CRASH_ENV, None)
        if crash:
            env[CRASH_ENV] = crash
        self.starts += 1
        log = (self.home.root.parent / f"{self.home.root.name}.up.log").open("ab")
        # its own session (a crash kills its tree, not ours), stopped with us if the test run dies
        process = subprocess.Popen([str(MLOPS), "up", "--settings", str(self.settings_file)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=die_with_parent)
        self._process = process
        log.close()

        def ready() -> StackInfo | None:
            if process.poll() is not None:
                raise HarnessError(f"`mlops up` exited with {process.returncode} during start-up; see "
                                   f"{self.home.root.parent / (self.home.root.name + '.up.log')}")
            found = StackInfo.read(self.home)
            return found if found and found.pid == process.pid else None
        info: StackInfo = wait_for(ready, timeout, "the stack to start")
        self._info = info
        return info

    def wait_crashed(self, timeout: float) -> bool:
        """True once the stack died of SIGKILL (the injected crash)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return code == -signal.SIGKILL

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def orphans(self, pid: int) -> list[str]:
        """Processes of the stack that ran as `pid`, still alive: none may outlive a crash."""
        found = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                if process.environ().get(STACK_PID) == str(pid) and process.pid != pid:
                    found.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])[:120]}")
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    @property
    def platform(self) -> Platform:
        """The lifecycle's platform on this run of the stack (its ports change with every start)."""
        if self._platform is None or self._platform[0] != self.starts:
            self._platform = (self.starts, local_platform(self.home))
        return self._platform[1]

    def data(self):
        return (BlobServiceClient.from_connection_string(self.info.storage_connection_string)
                .get_container_client("data"))

    def durable(self, since: float, timeout: float = 20) -> None:
        """Wait until Azurite has saved what was written after `since` (it saves its data every few seconds; a
        kill before that loses it, as no Azure storage account would): the user's data is then safe."""
        files = [self.home.azurite / "__azurite_db_blob__.json", self.home.azurite / "__azurite_db_queue__.json"]
        wait_for(lambda: all(f.exists() and f.stat().st_mtime > since for f in files), timeout,
                 "Azurite to save its data")


# -- driving a lifecycle ---------------------------------------------------------------------------------
def drop(stack: StackProcess, prefix: str, seed: int, rows: int = 1500, marker: bool = True) -> None:
    """A drop of demo loan data: its part file, made durable, then the _SUCCESS marker (which may itself be
    lost to a crash: the drop then completes after its quiet period)."""
    container = stack.data()
    if not container.exists():
        container.create_container()
    written = time.time()
    container.upload_blob(f"{prefix}part-0000.csv", loan_csv(rows, seed=seed), overwrite=True)
    stack.durable(written)
    if marker:
        container.upload_blob(f"{prefix}_SUCCESS", b"", overwrite=True)


def scoring_traffic(stack: StackProcess, rate: float = 20) -> Traffic | None:
    key = _scoring_key(stack)
    if key is None:
        return None
    return Traffic(stack.info.scoring_uri, key, COLUMNS[:-1], [r[:-1] for r in loan_rows(300, seed=11)], rate=rate)


def _scoring_key(stack: StackProcess) -> str | None:
    import requests

    from lifecycle.adapters.local_ml import LocalAML, LocalAMLError, LocalEndpoints
    try:
        return LocalEndpoints(LocalAML(stack.info.aml_url, stack.info.aml_key)).scoring_key(ENDPOINT)
    except (LocalAMLError, requests.RequestException):    # no endpoint yet, or a stack going down
        return None


def rollout(stack: StackProcess) -> Rollout | None:
    return stack.platform.state.get(Rollout, ENDPOINT)


def settled(stack: StackProcess, version: str | None = None) -> Rollout | None:
    """The endpoint's rollout once it has ended (promoted or rolled back) and its end is carried out."""
    r = rollout(stack)
    if r is None or r.active or r.settling or r.queued:
        return None
    if version is not None and r.model != f"{MODEL}:{version}":
        return None
    return r


def run_until(stack: StackProcess, probe, timeout: float, what: str, traffic: bool = True):
    """Wait for `probe`, sending scoring traffic meanwhile (a canary step is judged on requests)."""
    deadline = time.monotonic() + timeout
    sender = None
    try:
        while True:
            value = probe()
            if value:
                return value
            if traffic and sender is None:
                sender = scoring_traffic(stack)
                if sender is not None:
                    sender.start()
            if time.monotonic() > deadline:
                try:
                    r = rollout(stack)
                    shown: object = r and (r.model, r.phase, r.step, [h["note"] for h in r.history][-3:])
                except Exception as error:         # the stack is down
                    shown = f"unknown ({type(error).__name__})"
                raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}; rollout: {shown}")
            time.sleep(0.3)
    finally:
        if sender is not None:
            sender.stop()


def serving(stack: StackProcess, timeout: float = 60) -> None:
    """Until the endpoint answers a scoring request with 200."""
    def answered():
        sender = scoring_traffic(stack)
        return sender is not None and sender.send_one().status == 200
    wait_for(answered, timeout, "the endpoint to answer scoring requests", interval=0.1)


# -- the ledger: what happened, counted ------------------------------------------------------------------
@dataclass
class Ledger:
    batches: int = 0
    trainings_per_batch: Counter = field(default_factory=Counter)     # batch id -> completed trainings
    versions_per_job: Counter = field(default_factory=Counter)
    rollouts_per_version: Counter = field(default_factory=Counter)
    re_promotions: list[str] = field(default_factory=list)
    stuck_jobs: list[str] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)
    untrained_drops: list[str] = field(default_factory=list)
    rejections: int = 0

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for counter in (self.trainings_per_batch, self.versions_per_job, self.rollouts_per_version)
                   for n in counter.values() if n > 1)

    def problems(self) -> list[str]:
        found = [f"{n} trainings of batch {b}" for b, n in self.trainings_per_batch.items() if n > 1]
        found += [f"{n} versions from job {j}" for j, n in self.versions_per_job.items() if n > 1]
        found += [f"{n} rollouts of {v}" for v, n in self.rollouts_per_version.items() if n > 1]
        found += [f"re-promoted {v}" for v in self.re_promotions]
        found += [f"stuck job {j}" for j in self.stuck_jobs]
        found += self.inconsistencies
        found += [f"drop never trained: {d}" for d in self.untrained_drops]
        return found


def ledger(stack: StackProcess) -> Ledger:
    p = stack.platform
    book = Ledger()
    runs = p.state.list(TrainingRun)
    drops = {d.drop_id: d for d in p.state.list(Drop)}
    batches = [b for b in p.state.list(DataBatch) if not b.is_marker]
    book.batches = len(batches)
    completed = [r for r in runs if r.status == "Completed" and r.drop_id]   # a forced rerun of old data has none
    for batch in batches:
        holders = [r for r in completed
                   if r.drop_id and batch.batch_id in drops.get(r.drop_id, Drop("", "", "", "")).batches]
        book.trainings_per_batch[batch.batch_id] = len(holders)
    for drop_ in drops.values():
        if drop_.batches and not drop_.job:
            book.untrained_drops.append(drop_.prefix)
    versions = p.registry.versions(MODEL)
    for model in versions:
        book.versions_per_job[model.tags.get("mlops.job", "?")] += 1
    decisions = p.state.list(Decision)
    registered = {d.job_name: d.version for d in decisions if d.version}
    by_job = {m.tags.get("mlops.job"): m.version for m in versions}
    for job_name, version in registered.items():
        if by_job.get(job_name) != version:
            book.inconsistencies.append(
                f"decision of {job_name} says version {version}, the registry {by_job.get(job_name)}")
    for tagged_job in by_job:
        if tagged_job not in registered:
            book.inconsistencies.append(f"registry has a version from {tagged_job} with no registered decision")
    finished = sorted(p.state.list(RolloutEvent), key=lambda e: e.finished_at)
    for event in finished:
        book.rollouts_per_version[event.model] += 1
    current = p.state.get(Rollout, ENDPOINT)
    if current is not None and not any(e.rollout_id == current.rollout_id for e in finished):
        book.rollouts_per_version[current.model] += 1
    best = 0
    for event in (e for e in finished if e.outcome == "promoted"):
        number = int(event.model.rsplit(":", 1)[1])
        if number <= best:
            book.re_promotions.append(event.model)
        best = max(best, number)
    for run in runs:
        job = p.jobs.get(run.job_name)
        if run.status == "Submitted" and job is not None and job.done:
            book.stuck_jobs.append(f"{run.job_name} (recorded Submitted, the platform says {job.status})")
        if run.status == "Submitted" and job is None:
            book.stuck_jobs.append(f"{run.job_name} (recorded Submitted, unknown to the platform)")
    endpoint = p.endpoints.get(ENDPOINT)
    if endpoint is not None:
        states = {d.name: d.state for d in endpoint.deployments}
        for colour, share in endpoint.traffic.items():
            if share and states.get(colour) != "Succeeded":
                book.inconsistencies.append(f"{colour} takes {share}% of the traffic but is {states.get(colour)}")
        if current is not None and not current.active and not current.settling and endpoint.traffic:
            live = current.live_deployment
            if live and endpoint.traffic != {live: 100}:
                book.inconsistencies.append(f"the rollout says {live} is live, the endpoint routes {endpoint.traffic}")
    book.rejections = len(p.state.list(Rejection))
    return book
