"""The dashboard's fixtures: its server on loopback over a fake platform or a stopped stack's snapshot, Debian's
chromium driven by Playwright, and the folder the browser tests write their screenshots to (test-output/screenshots
under the repository, or under $MLOPS_TEST_OUTPUT), printed at the end of the run."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emulator.home import StackHome
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import AlertRecord, Decision, MonitorRun, TrainingRun
from lifecycle.ports import Platform
from mlops.dashboard.server import Dashboard
from mlops.dashboard.source import SNAPSHOT_FILE, View
from tests.fakes import fake_platform

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
CHROMIUM = "/usr/bin/chromium"
_written: list[Path] = []


def output_folder() -> Path:
    return Path(os.environ.get("MLOPS_TEST_OUTPUT") or ROOT / "test-output")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = output_folder() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    _written.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter) -> None:
    for folder in _written:
        shots = sorted(folder.glob("*.png"))
        terminalreporter.write_line(f"dashboard screenshots: {folder} ({len(shots)} file(s))")


@dataclass
class Source:
    """What the dashboard shows, changed by the test as it goes: a platform (a running stack) or a snapshot."""
    view: View = field(default_factory=View)
    reads: int = 0

    def __call__(self) -> View:
        self.reads += 1
        return self.view


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[..., Dashboard]]:
    """serve(source=None, home=None, key=None): a started Dashboard (the stack's own source when none is given);
    stopped after the test."""
    started: list[Dashboard] = []

    def start(source: Callable[[], View] | None = None, home: StackHome | None = None, key: str | None = None,
              **options) -> Dashboard:
        dashboard = Dashboard(home or StackHome(tmp_path / "home"), key=key, source=source,
                              **{"status_interval": 0.3, **options})
        started.append(dashboard.start())
        return dashboard
    yield start
    for dashboard in started:
        dashboard.stop()


def canary_platform() -> Platform:
    """A fake platform in the middle of a canary: v1 live on blue, v2 on green at 10%, the judge's last checks,
    and a job the gate held for a person."""
    p = fake_platform()
    model, endpoint = p.policies.model.name, p.policies.model.endpoint
    tags = {"metric.accuracy": "0.86", "metric.f1": "0.81", "mlops.data": "data/loans/2026-11-01/",
            "mlops.trigger": "data"}
    v1 = p.registry.register(model, "train-tabular-classifier-data-1", tags)
    v2 = p.registry.register(model, "train-tabular-classifier-data-2",
                             {**tags, "metric.accuracy": "0.88", "mlops.data": "data/loans/2026-11-02/"})
    p.endpoints.ensure_endpoint(endpoint)
    for colour, version in (("blue", v1), ("green", v2)):
        p.endpoints.create_deployment(endpoint, colour, version)
        p.endpoints.ready(endpoint, colour)
    p.endpoints.set_traffic(endpoint, {"blue": 90, "green": 10})
    for i, job in enumerate(("train-tabular-classifier-data-1", "train-tabular-classifier-data-2",
                             "train-tabular-classifier-data-3")):
        p.state.create(TrainingRun(job_name=job, model_name=model, trigger="data", status="Completed",
                                   data_url=f"data/loans/2026-11-0{i + 1}/", submitted_at=f"2026-12-01T01:0{i}:00Z"))
    for job, outcome, version, why in (("1", "registered", "1", "first model"),
                                       ("2", "registered", "2", "accuracy 0.880 beats the champion's 0.860"),
                                       ("3", "held", "", "a likely leak: accuracy 0.999 on the holdout")):
        p.state.create(Decision(job_name=f"train-tabular-classifier-data-{job}", model_name=model, outcome=outcome,
                                version=version, reasons=(why,)))
    judgement = {"verdict": "continue", "checks": [
        {"name": "errors", "outcome": "pass", "detail": "0 of 120 requests failed on green (blue: 0 of 1080)"},
        {"name": "latency", "outcome": "pass", "detail": "p95 31 ms on green against 29 ms on blue"},
        {"name": "predictions", "outcome": "skipped", "detail": "too few labelled rows yet (4 of 20)"}]}
    p.state.create(Rollout(endpoint=endpoint, rollout_id="r-2", model=f"{model}:2", colour="green", baseline="blue",
                           baseline_model=f"{model}:1", phase="canary", step=0, phase_started="2026-12-01T01:10:00Z",
                           started_at="2026-12-01T01:09:00Z", judgement=judgement,
                           history=({"time": "2026-12-01T01:09:00Z", "phase": "deploying", "step": -1,
                                     "note": "deploying tabular-classifier:2 to green"},
                                    {"time": "2026-12-01T01:10:00Z", "phase": "canary", "step": 0,
                                     "note": "green takes 10% of the traffic"})))
    for i, (shift, accuracy) in enumerate(((0.02, 0.86), (0.05, 0.85), (0.12, 0.82), (0.31, 0.74))):
        p.state.create(MonitorRun(run_id=f"{endpoint}-{i}", endpoint=endpoint, deployment="blue", model=f"{model}:1",
                                  window_start=f"2026-12-01T0{i}:00:00Z", window_end=f"2026-12-01T0{i}:59:00Z",
                                  result=monitor_result(shift, accuracy), job=f"monitor-{i}"))
    p.state.create(AlertRecord(alert_key="a-1", alert_id="drift-1", condition="Fired", source="monitor",
                               signal="data_drift", summary="input drift in income (PSI 0.310 over 0.200)",
                               received_at="2026-12-01T03:59:30Z", outcome="retraining",
                               detail="training job train-tabular-classifier-data-3 started", model=model))
    return p


def monitor_result(shift: float, accuracy: float) -> dict:
    """A monitoring pass's result as monitoring.monitor writes it (the parts status reads): income drifting by
    `shift` (PSI), age steady, accuracy measured against the holdout's."""
    def feature(kind: str, psi: float) -> dict:
        return {"kind": kind, "metrics": {"psi": psi}, "thresholds": {"psi": 0.2}, "drifted": psi > 0.2,
                "pvalue_adjusted": 0.001 if psi > 0.2 else 0.4}
    features = {"income": feature("numeric", shift), "age": feature("numeric", 0.03),
                "region": feature("categorical", 0.01)}
    drifted = [name for name, f in features.items() if f["drifted"]]
    return {"window": {"rows": 1000, "labelled": 200}, "drift": {"drifted_features": drifted, "features": features},
            "performance": {"metrics": {"accuracy": accuracy, "f1": accuracy - 0.05},
                            "baseline": {"accuracy": 0.86, "f1": 0.81, "roc_auc": None}},
            "alerts": [{"signal": "data_drift", "condition": "Fired"}] if drifted else []}


def demo_home(folder: Path, environment: str = "preprod") -> StackHome:
    """A stopped stack's home as the demo leaves it: the status snapshot and the delivery timeline of a real run
    (tests/dashboard/data, captured from `mlops demo`)."""
    home = StackHome(folder)
    home.create()
    shutil.copy(DATA / f"demo-{environment}.json", home.path(SNAPSHOT_FILE))
    shutil.copy(DATA / f"demo-{environment}-timeline.jsonl", home.timeline)
    return home


def demo_status(environment: str = "preprod") -> dict:
    return json.loads((DATA / f"demo-{environment}.json").read_text())["status"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium (the Makefile installs it), driven by Playwright's own driver. Per module, not per
    session: Playwright's sync API keeps an event loop running in the main thread while it is open, and the
    tests after these call asyncio.run()."""
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()
