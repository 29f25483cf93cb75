"""monitoring/job.yml loads and validates offline with azure-ai-ml, its code snapshot is what the runner
imports, and the runner (monitoring/run.py) computes the same signals over the data collector's files."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from monitoring import run as runner
from tests.monitoring.test_monitor import Model, make

ROOT = Path(__file__).resolve().parents[2]


def test_the_job_loads_validates_and_its_command_is_one_the_runner_takes():
    from azure.ai.ml import load_job
    job = load_job(ROOT / "monitoring" / "job.yml")
    assert job._validate().passed
    assert (Path(job.base_path) / job.code).resolve() == ROOT
    command = re.sub(r"\$\[\[(.*?)\]\]", r"\1", job.command)
    literals = {"min_labels": "7", "min_rows": "50", "window_start": "2026-11-23T11:00:00+00:00",
                "window_end": "2026-11-23T12:00:00+00:00", "endpoint": "ep", "deployment": "blue", "model_id": "m:1",
                "drift_thresholds": "psi=0.3", "sensitive_column": "region", "previous_alerts": "a,b",
                "task": "regression"}
    command = re.sub(r"\$\{\{(inputs|outputs)\.(\w+)\}\}", lambda m: literals.get(m[2], f"/mnt/{m[2]}"), command)
    args = runner.parse_args(shlex.split(command)[3:])
    assert args.labels == Path("/mnt/labels") and args.min_labels == 7 and args.min_rows == 50
    assert args.start.isoformat() == "2026-11-23T11:00:00+00:00" and args.model_id == "m:1"
    assert (args.drift_thresholds, args.sensitive_column, args.previous_alerts) == ("psi=0.3", "region", "a,b")
    assert args.task == "regression"


@pytest.mark.slow      # imports azure-ai-ml (seconds)
def test_the_code_snapshot_holds_only_what_the_runner_imports():
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder
    files = {Path(f[1]) for f in get_upload_files_from_folder(ROOT, ignore_file=get_ignore_file(ROOT))}
    assert {f.parts[0] for f in files} == {"monitoring", "training"}
    assert Path("monitoring/run.py") in files and Path("training/reference_profile.py") in files


def collector_lines(rows: list[dict], collection: str) -> str:
    line = {"specversion": "1.0", "type": f"azureml.inference.{collection}", "time": "2026-11-23T11:30:00.000Z"}
    return "".join(json.dumps({**line, "data": rows[i:i + 50]}) + "\n" for i in range(0, len(rows), 50))


def test_the_runner_finds_concept_drift_in_collected_files(tmp_path, capsys):
    model = Model()
    folder = tmp_path / "model" / "tabular-classifier" / "1"
    (folder / "reference").mkdir(parents=True)
    (folder / "reference" / "profile.json").write_text(json.dumps(model.profile))
    (folder / "metrics.json").write_text(json.dumps({**model.metrics, "model_name": "m", "target": "y"}))
    inputs, outputs, labels = model.serve(make(1200, 30, flipped=True))
    for name, frame in (("model_inputs", inputs), ("model_outputs", outputs)):
        hour = tmp_path / name / "2026" / "11" / "23" / "11"
        hour.mkdir(parents=True)
        (hour / "part.jsonl").write_text(collector_lines(frame.to_dict("records"), name))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "day.csv").write_text("request_id,y\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    code = runner.main(["--model", str(tmp_path / "model"), "--inputs", str(tmp_path / "model_inputs"),
                        "--outputs", str(tmp_path / "model_outputs"), "--labels", str(tmp_path / "labels"),
                        "--output", str(tmp_path / "out")])
    assert code == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["window"]["rows"] == 1200 and result["window"]["labelled"] == 1200
    assert result["concept_drift"]["detected"] and result["drift"]["drifted_features"] == []
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "concept_drift" in capsys.readouterr().out


def test_the_runner_monitors_a_regression_model_with_its_holdout_rows(tmp_path):
    """metrics.json says regression: the holdout rows saved beside the profile feed direct loss estimation,
    over a sample of the window's inputs when few requests have labels."""
    from tests.monitoring.test_regression import Regressor
    model = Regressor()
    folder = tmp_path / "model" / "progression" / "1"
    (folder / "reference").mkdir(parents=True)
    (folder / "reference" / "profile.json").write_text(json.dumps(model.profile))
    (folder / "metrics.json").write_text(json.dumps(model.metrics))
    model.holdout.to_csv(folder / "reference" / "holdout.csv", index=False)
    inputs, outputs, labels = model.serve(model.window)
    for name, frame in (("model_inputs", inputs), ("model_outputs", outputs)):
        hour = tmp_path / name / "2026" / "11" / "23" / "11"
        hour.mkdir(parents=True)
        (hour / "part.jsonl").write_text(collector_lines(frame.to_dict("records"), name))
    (tmp_path / "labels").mkdir()
    some = dict(list(labels.items())[:60])
    (tmp_path / "labels" / "day.csv").write_text("request_id,target\n" + "".join(f"{k},{v}\n" for k, v in some.items()))
    code = runner.main(["--model", str(tmp_path / "model"), "--inputs", str(tmp_path / "model_inputs"),
                        "--outputs", str(tmp_path / "model_outputs"), "--labels", str(tmp_path / "labels"),
                        "--output", str(tmp_path / "out"), "--min-labels", "50"])
    assert code == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["task"] == "regression" and result["window"]["labelled"] == 60
    assert result["estimated_performance"]["rows"] == len(model.window)     # every request, not just the labelled
    assert result["performance"]["rows"] == 60 and result["concept_drift"]["relation_method"] == "error by segment"
    assert "Predicted against actual" in (tmp_path / "out" / "report.html").read_text()


def test_the_loss_sample_is_the_same_however_the_window_is_chunked():
    import pandas as pd
    rows = pd.DataFrame({"request_id": [f"r{i}" for i in range(1000)], "x": range(1000)})
    whole, pieces = runner.LossSample(100), runner.LossSample(100)
    whole.add(rows)
    for start in range(0, 1000, 70):
        pieces.add(rows.iloc[start:start + 70])
    assert len(whole.frame) == 100 and sorted(whole.frame["x"]) == sorted(pieces.frame["x"])


def test_a_model_folder_without_a_profile_is_a_clear_error(tmp_path, capsys):
    code = runner.main(["--model", str(tmp_path), "--inputs", str(tmp_path), "--outputs", str(tmp_path),
                        "--output", str(tmp_path / "out")])
    assert code == 2 and "no reference/profile.json" in capsys.readouterr().err
