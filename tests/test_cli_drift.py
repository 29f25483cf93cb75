"""`mlops drift REF CUR` on files, and `mlops report` over recorded monitoring runs."""
from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lifecycle.core.platform_values import ModelReference
from lifecycle.core.state_records import MonitorRun
from mlops import report_commands as report_module
from mlops.cli import app
from tests.fakes import fake_platform
from training.reference_profile import build_profile

runner = CliRunner()


def frame(n: int, seed: int, income_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50_000 + income_shift, 10_000, n),
                         "city": rng.choice(["Oslo", "Lima", "Pune"], n, p=[0.5, 0.3, 0.2]),
                         "approved": rng.integers(0, 2, n)})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift")
    paths = {"ref": folder / "reference.csv", "cur": folder / "current.csv", "other": folder / "other.csv"}
    frame(3000, 1).to_csv(paths["ref"], index=False)
    frame(3000, 2, income_shift=8_000).to_csv(paths["cur"], index=False)
    pd.DataFrame({"colour": ["red", "blue"] * 50}).to_csv(paths["other"], index=False)
    return paths


def drift(*args: str):
    return runner.invoke(app, ["drift", *map(str, args)])


def test_drift_in_one_column(files):
    result = drift(files["ref"], files["cur"], "--json", "--target", "approved")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)                     # nothing but the JSON on stdout
    assert report["drifted_features"] == ["income"]
    assert report["features"]["income"]["drifted"]
    assert not report["features"]["age"]["drifted"] and not report["features"]["city"]["drifted"]
    assert "approved" not in report["features"]


def test_table_and_verdict(files):
    result = drift(files["ref"], files["cur"], "--target", "approved")
    assert result.exit_code == 1
    assert "income" in result.stdout and "✓" in result.stdout
    assert "drift in 1 of 3 feature(s): income" in result.stdout


def test_same_file_twice_is_no_drift(files):
    result = drift(files["ref"], files["ref"])
    assert result.exit_code == 0, result.output
    assert "no drift in 4 feature(s)" in result.stdout


def test_saved_profile_as_reference(files, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(build_profile(pd.read_csv(files["ref"]), "approved")))
    result = drift(profile, files["cur"], "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["drifted_features"] == ["income"]


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"), ("format", "unknown format '.txt'"), ("columns", "has none of the columns"),
    ("target", "no column 'label'")])
def test_bad_input_exits_2_with_one_line(files, tmp_path, case, message):
    text = tmp_path / "data.txt"
    text.write_text("a,b\n1,2\n")
    args = {"missing": (files["ref"], tmp_path / "absent.csv"), "format": (files["ref"], text),
            "columns": (files["ref"], files["other"]),
            "target": (files["ref"], files["cur"], "--target", "label")}[case]
    result = drift(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_html_report(files, tmp_path):
    out = tmp_path / "drift.html"
    result = drift(files["ref"], files["cur"], "--target", "approved", "--html", out, "--json")
    assert result.exit_code == 1
    json.loads(result.stdout)                              # --json keeps stdout machine-readable
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "current.csv" in page


# ---- mlops report --------------------------------------------------------------------------------------------

@pytest.fixture
def stack(monkeypatch, tmp_path, files):
    """A stack home whose platform is in memory: what `mlops report` reads."""
    from emulator.home import StackHome
    from monitoring.drift import compare
    from monitoring.window import read_window
    p = fake_platform()
    profile = build_profile(pd.read_csv(files["ref"]), "approved")
    for hour, path in ((1, files["ref"]), (2, files["cur"])):
        drift_report = compare(profile, read_window(profile, path))
        end = f"2026-03-01T0{hour}:00:00Z"
        result = {"window": {"start": f"2026-03-01T0{hour - 1}:00:00Z", "end": end, "endpoint": "loans",
                             "deployment": "blue", "model": "loans:2", "rows": drift_report.rows, "labelled": 0},
                  "drift": json.loads(drift_report.to_json()), "alerts": []}
        p.state.create(MonitorRun(f"loans-{hour}", "loans", "blue", "loans:2", result["window"]["start"], end, result))
    p.registry.references["loans:2"] = ModelReference(profile, {})

    @contextmanager
    def opened(home):
        yield p.state, p.registry
    monkeypatch.setattr(report_module, "stack_records", opened)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    return StackHome.default(), p


def test_report_of_the_stack(stack):
    home, _ = stack
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    path = home.root / "reports" / result.stdout.strip().rsplit("/", 1)[-1]
    assert str(path) == result.stdout.strip()
    page = path.read_text(encoding="utf-8")
    assert "Monitoring of loans:2" in page and page.count("<svg") >= 4


def test_report_without_a_reference_says_so(stack, tmp_path):
    _, p = stack
    p.registry.references.clear()
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--out", str(out)])
    assert result.exit_code == 0 and out.exists()
    assert "no reference profile for loans:2" in result.stderr
    assert "No reference profile" in out.read_text(encoding="utf-8")


def test_report_without_monitoring_runs(monkeypatch, tmp_path):
    p = fake_platform()

    @contextmanager
    def opened(home):
        yield p.state, p.registry
    monkeypatch.setattr(report_module, "stack_records", opened)
    result = runner.invoke(app, ["report", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "no monitoring run recorded yet" in result.stderr


def test_report_without_any_stack(tmp_path):
    result = runner.invoke(app, ["report", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "no local stack has run" in result.stderr


@pytest.mark.stack      # starts an Azurite
def test_report_of_a_stopped_stack_reads_its_azurite_data(tmp_path):
    """The last stack's records stay in its Azurite folder: the report starts Azurite on it for the while."""
    from azure.storage.blob import BlobServiceClient

    from emulator.azurite import Azurite
    from emulator.home import StackHome
    from lifecycle.adapters.blob_state import BlobState
    home = StackHome(tmp_path / "home")
    home.path("functions").mkdir(parents=True)
    with Azurite(home.azurite) as storage:
        home.path("functions", "settings.json").write_text(json.dumps({"Values": {
            "AzureWebJobsStorage": storage.connection_string, "STATE_CONTAINER": "state"}}))
        window = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T01:00:00Z", "model": "loans:1"}
        BlobState(BlobServiceClient.from_connection_string(storage.connection_string), "state").create(
            MonitorRun("r1", "loans", "blue", "loans:1", window["start"], window["end"], {"window": window}))
    result = runner.invoke(app, ["report", "--home", str(home.root)])
    assert result.exit_code == 0, result.output
    assert "the stack is not running" in result.stderr
    assert "Monitoring of loans:1" in (home.root / "reports" / result.stdout.strip().rsplit("/", 1)[-1]).read_text()
