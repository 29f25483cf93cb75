"""training/train.py run for real, as Azure ML and the local stack run it: a subprocess on generated data."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from training.train import DataError, load_training_data, main

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "training"
METRIC_KEYS = {"accuracy", "f1", "precision", "recall", "roc_auc"}


def loan_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A learnable binary problem: numeric and categorical features, missing values, a request id."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "request_id": [f"req-{seed}-{i}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "income": rng.lognormal(10, 0.5, n).round(2),
        "city": rng.choice(["north", "south", "east", "west"], n),
        "member": rng.choice([True, False], n),
    })
    logit = (frame["age"] - 45) / 6 + np.where(frame["city"] == "north", 2.5, -0.5)
    frame["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.loc[rng.choice(n, n // 12, replace=False), "income"] = np.nan
    frame.loc[rng.choice(n, n // 12, replace=False), "city"] = None
    return frame


def run_train(*args: str | Path, script: Path = TRAINING / "train.py", env: dict | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    base["OMP_NUM_THREADS"] = "1"       # tiny data: OpenMP threads only spin on a busy two-core machine
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=cwd, timeout=120)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """A binary CSV trained from a copy of training/ alone (the job's code snapshot), with MLflow tracking
    to a local file store, as Azure ML's MLFLOW_TRACKING_URI would have it."""
    tmp = tmp_path_factory.mktemp("binary")
    snapshot = tmp / "snapshot"
    shutil.copytree(TRAINING, snapshot, ignore=shutil.ignore_patterns("__pycache__", "*.yml", "environment"))
    stub = tmp / "stub" / "training"           # the project is not installed around a snapshot on Azure ML
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('a code snapshot cannot import the training package')\n")
    csv = tmp / "loans.csv"
    loan_frame().to_csv(csv, index=False)
    out = tmp / "out"
    tracking = tmp / "mlruns"
    done = run_train("--data", csv, "--target", "default", "--model-name", "loans", "--output", out,
                     script=snapshot / "train.py", cwd=snapshot,
                     env={"MLFLOW_TRACKING_URI": tracking.as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
                          "PYTHONPATH": str(stub.parent)})
    assert done.returncode == 0, done.stderr
    return {"csv": csv, "out": out, "proc": done, "tracking": tracking}


@pytest.fixture(scope="module")
def parquet_with_champion(binary, tmp_path_factory):
    """The same rows as Parquet part files in a folder with a _SUCCESS marker, trained with the same seed,
    and the first run's model as champion; run in-process through main()."""
    tmp = tmp_path_factory.mktemp("parquet")
    folder = tmp / "drop"
    folder.mkdir()
    frame = pd.read_csv(binary["csv"])                  # exactly what the CSV run read
    frame.iloc[:350].to_parquet(folder / "part-00000.parquet", index=False)
    frame.iloc[350:].to_parquet(folder / "part-00001.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.parquet.crc").write_bytes(b"\x00crc")
    (folder / "README.txt").write_text("not data")
    out = tmp / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), threadpool_limits(1):      # in-process: train.py as a module
        code = main(["--data", str(folder), "--target", "default", "--model-name", "loans", "--output", str(out),
                     "--champion-model", str(binary["out"] / "model")])
    assert code == 0
    return {"out": out, "stdout": stdout.getvalue()}


@pytest.mark.slow      # train.py as a process
def test_binary_run_writes_an_mlflow_model_that_predicts(binary):
    import mlflow.pyfunc

    model_dir = binary["out"] / "model"
    for name in ("MLmodel", "model.pkl", "requirements.txt", "metrics.json", "reference/profile.json",
                 "reference/sample.csv"):
        assert (model_dir / name).is_file(), name
    model = mlflow.pyfunc.load_model(str(model_dir))        # the extra files do not disturb MLflow
    sample = pd.read_csv(model_dir / "reference" / "sample.csv")
    predictions = model.predict(sample)
    assert len(predictions) == len(sample) and set(np.unique(predictions)) <= {0, 1}
    names = model.metadata.get_input_schema().input_names()
    assert names == ["age", "income", "city", "member"]      # request_id is not a feature


@pytest.mark.slow      # train.py as a process
def test_binary_metrics(binary):
    doc = read_json(binary["out"] / "metrics.json")
    assert doc == read_json(binary["out"] / "model" / "metrics.json")
    assert {"model_name", "target", "task", "classes", "positive_class", "metrics", "champion", "champion_error",
            "rows", "features", "data_files", "algorithm", "hyperparameters", "trained_at"} <= doc.keys()
    assert (doc["model_name"], doc["target"], doc["task"], doc["classification"]) == (
        "loans", "default", "classification", "binary")
    assert doc["trainer"] == "train.py"
    assert doc["classes"] == [0, 1] and doc["positive_class"] == 1 and doc["average"] == "binary"
    assert set(doc["metrics"]) == METRIC_KEYS
    majority = max(doc["class_balance"].values()) / doc["rows"]["total"]
    assert doc["metrics"]["accuracy"] > majority + 0.1
    assert doc["metrics"]["roc_auc"] > 0.8
    assert doc["rows"] == {"train": 480, "holdout": 120, "total": 600, "unlabelled_dropped": 0}
    assert sum(doc["class_balance"].values()) == 600
    assert doc["features"]["numeric"] == ["age", "income"]
    assert doc["features"]["categorical"] == ["city", "member"]
    assert doc["champion"] is None and doc["champion_error"] is None and doc["compatibility"] is None
    assert doc["data_notes"] == []
    single = doc["single_feature"]                          # the leak check: each feature alone, same holdout
    assert (single["method"], single["rows"], single["features"], single["bins"]) == ("bin_majority", 120, 4, 24)
    assert set(single["baseline"]) == set(single["best"]) == METRIC_KEYS
    assert single["best"]["f1"]["feature"] in ("age", "city") and single["best"]["f1"]["value"] < doc["metrics"]["f1"]
    assert [set(t) for t in single["top"]] == [METRIC_KEYS | {"feature"}] * len(single["top"])
    assert doc["algorithm"] == "hist_gradient_boosting" and doc["hyperparameters"]["max_iter"] == 100
    calibration = doc["calibration"]                      # what monitoring's CBPE checks before estimating
    assert (calibration["bins"], calibration["method"], calibration["rows"]) == (10, "positive_class", 120)
    assert 0 <= calibration["expected_calibration_error"] <= 1
    assert sum(calibration["reliability"]["counts"]) == 120


@pytest.mark.slow      # train.py as a process
def test_binary_run_logs_progress_and_tracks_to_mlflow(binary):
    out = binary["proc"].stdout
    for phrase in ("reading 1 data file", "600 labelled rows", "training hist_gradient_boosting", "holdout (120 rows)"):
        assert phrase in out
    metric_files = list(binary["tracking"].glob("*/*/metrics/accuracy"))
    assert len(metric_files) == 1
    params = metric_files[0].parent.parent / "params"
    assert (params / "algorithm").read_text() == "hist_gradient_boosting"


@pytest.mark.slow      # train.py as a process
def test_reference_profile_and_sample(binary):
    reference = binary["out"] / "model" / "reference"
    profile = read_json(reference / "profile.json")
    assert profile["profile_version"] == 1 and profile["rows"] == 600 and profile["target"] == "default"
    assert set(profile["features"]) == {"age", "income", "city", "member"}
    income = profile["features"]["income"]
    assert income["type"] == "numeric" and income["null_rate"] == pytest.approx(50 / 600)
    assert sum(income["histogram"]["counts"]) == income["count"] == 550
    assert profile["features"]["city"]["type"] == "categorical"
    assert set(profile["target_profile"]["frequencies"]) == {"0", "1"}
    relation = profile["target_by_feature"]                # class counts per bin, for concept drift
    assert set(relation) == {"age", "income", "city", "member"} and relation["age"]["classes"] == ["0", "1"]
    assert np.sum(relation["income"]["counts"]) == 550 and np.sum(relation["age"]["counts"]) == 600
    assert sum(profile["outputs"]["prediction"]["frequencies"].values()) == 120     # holdout predictions
    sample = pd.read_csv(reference / "sample.csv")
    assert "default" not in sample.columns and "request_id" not in sample.columns
    assert len(sample) == 500 and sample.notna().all(axis=None)           # complete rows first


@pytest.mark.slow      # train.py as a process
def test_parquet_folder_skips_markers_and_hidden_files(parquet_with_champion):
    doc = read_json(parquet_with_champion["out"] / "metrics.json")
    assert [Path(f).name for f in doc["data_files"]] == ["part-00000.parquet", "part-00001.parquet"]
    assert doc["rows"]["total"] == 600
    assert "reading 2 data files" in parquet_with_champion["stdout"]


@pytest.mark.slow      # train.py as a process
def test_champion_scored_on_the_same_holdout(binary, parquet_with_champion):
    first = read_json(binary["out"] / "metrics.json")
    second = read_json(parquet_with_champion["out"] / "metrics.json")
    assert second["champion_error"] is None
    assert second["compatibility"]["compatible"] is True and second["compatibility"]["champion_classes"] == [0, 1]
    assert set(second["champion"]) == METRIC_KEYS
    assert second["rows"]["holdout"] == first["rows"]["holdout"]
    # Same rows, same seed, same algorithm: the champion is the same model, so on the same holdout rows
    # its numbers are the challenger's exactly.
    assert second["champion"] == pytest.approx(second["metrics"])
    assert second["metrics"] == pytest.approx(first["metrics"])
    assert "champion on the same holdout" in parquet_with_champion["stdout"]


@pytest.mark.slow      # train.py as a process
def test_multiclass_with_an_incompatible_champion(binary, tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    iris["species"] = iris["species"].map(dict(enumerate(["setosa", "versicolor", "virginica"])))
    csv = tmp_path / "iris.csv.gz"
    with gzip.open(csv, "wt") as f:
        iris.to_csv(f, index=False)
    out = tmp_path / "out"
    done = run_train("--data", csv, "--target", "species", "--model-name", "iris", "--output", out,
                     "--algorithm", "logistic_regression", "--C", "2", "--champion-model", binary["out"] / "model",
                     # a tracking server that refuses: training must go on
                     env={"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri()})
    assert done.returncode == 0, done.stderr
    doc = read_json(out / "metrics.json")
    assert doc["task"] == "classification" and doc["classification"] == "multiclass"
    assert doc["average"] == "macro" and doc["positive_class"] is None
    assert doc["classes"] == ["setosa", "versicolor", "virginica"]
    assert doc["metrics"]["accuracy"] > 0.85 and doc["metrics"]["roc_auc"] > 0.9
    assert doc["hyperparameters"] == {"C": 2.0, "max_iter": 1000}
    assert doc["calibration"]["method"] == "top_label" and doc["calibration"]["rows"] == 30
    assert 0 <= doc["calibration"]["classwise_expected_calibration_error"] <= 1
    assert doc["champion"] is None
    assert "age" in doc["champion_error"]                   # what the champion expected and did not get
    compatible = doc["compatibility"]                       # and what differs, though it could not be scored
    assert compatible["compatible"] is False and compatible["champion_classes"] == [0, 1]
    assert compatible["missing_features"] == ["age", "income", "city", "member"]
    assert compatible["new_classes"] == ["setosa", "versicolor", "virginica"]
    assert "warning: could not log to MLflow tracking" in done.stderr
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(out / "model"))
    assert set(model.predict(iris.drop(columns="species").head(20))) <= set(doc["classes"])


def test_random_forest_in_process_with_unlabelled_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame = loan_frame(300, seed=3)
    frame["default"] = frame["default"].astype("float64")
    frame.loc[:9, "default"] = np.nan                       # read back as 1.0 / 0.0 / empty
    csv = tmp_path / "loans.csv"
    frame.to_csv(csv, index=False)
    with threadpool_limits(1):
        code = main(["--data", str(csv), "--target", "default", "--model-name", "rf", "--output", str(tmp_path / "out"),
                     "--algorithm", "random_forest", "--n-estimators", "20", "--max-depth", "4",
                     "--learning-rate", "0.5"])
    assert code == 0
    doc = read_json(tmp_path / "out" / "metrics.json")
    assert doc["classes"] == [0, 1]                         # integral floats became integer labels
    assert doc["rows"]["total"] == 290 and doc["rows"]["unlabelled_dropped"] == 10
    assert doc["hyperparameters"] == {"n_estimators": 20, "max_depth": 4}
    assert doc["metrics"]["accuracy"] > 0.7
    assert "--learning-rate does not apply" in capsys.readouterr().out


# --- bad data: exit 2, one "error:" line naming the file and the problem, no traceback ----------------

def _csv(text: str):
    return lambda d: _write(d / "data.csv", text.encode())


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _frame_csv(frame: pd.DataFrame, name: str = "data.csv"):
    def build(d: Path) -> Path:
        frame.to_csv(d / name, index=False)
        return d / name
    return build


def _corrupt_parquet(d: Path) -> Path:
    path = d / "data.parquet"
    loan_frame(60).to_parquet(path)
    data = path.read_bytes()
    return _write(path, data[:40] + b"\x00" * 40 + data[80:])


def _disagreeing_folder(d: Path) -> Path:
    folder = d / "drop"
    folder.mkdir()
    loan_frame(60).to_csv(folder / "a.csv", index=False)
    loan_frame(60, seed=1).drop(columns=["city"]).assign(colour="red").to_csv(folder / "b.csv", index=False)
    return folder


def _kind_mismatch_folder(d: Path) -> Path:
    folder = d / "drop"
    folder.mkdir()
    loan_frame(60).to_csv(folder / "a.csv", index=False)
    loan_frame(60, seed=1).assign(age="old").to_csv(folder / "b.csv", index=False)
    return folder


def _markers_only(d: Path) -> Path:
    folder = d / "drop"
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    (folder / "notes.txt").write_text("hello")
    return folder


ONE_CLASS = loan_frame(100).assign(default=1)
FEW_ROWS = loan_frame(20)
LONELY_CLASS = loan_frame(100).assign(default=lambda f: np.where(np.arange(len(f)) == 0, 2, f["default"]))
NO_LABELS = loan_frame(80).assign(default=np.nan)
CONTINUOUS = loan_frame(80).assign(default=lambda f: f["income"] / 1000)
HUGE = loan_frame(80).assign(income=lambda f: np.where(np.arange(len(f)) % 20 == 0, 1e308, f["income"]))
INFINITE_LABELS = loan_frame(80).assign(default=lambda f: np.where(np.arange(len(f)) < 3, np.inf, f["default"]))

BAD_DATA = {
    "missing target": (_frame_csv(loan_frame(60).drop(columns="default")), "data.csv",
                       ["target column 'default' is missing", "age", "city"]),
    "empty file": (lambda d: _write(d / "data.csv", b""), "data.csv", ["empty (0 bytes)"]),
    "header only": (_csv("age,city,default\n"), "data.csv", ["header but no rows"]),
    "blank lines": (_csv("\n\n\n"), "data.csv", ["no header"]),
    "binary junk": (lambda d: _write(d / "data.csv", bytes(range(256)) * 4), "data.csv",
                    ["neither CSV text nor Parquet"]),
    "bad encoding": (lambda d: _write(d / "data.csv", "age,city,default\n30,Zürich,1\n".encode("latin-1")),
                     "data.csv", ["not UTF-8", "line 2", "0xfc"]),
    "ragged csv": (_csv("age,city,default\n30,x,1\n31,y,0,extra\n"), "data.csv", ["not valid CSV", "line 3"]),
    "not parquet": (lambda d: _write(d / "data.parquet", b"age,default\n1,0\n"), "data.parquet",
                    ["not a Parquet file"]),
    "corrupt parquet": (_corrupt_parquet, "data.parquet", ["cannot be read as Parquet"]),
    "truncated gzip": (lambda d: _write(d / "data.csv.gz", gzip.compress(b"age,default\n" * 100)[:30]),
                       "data.csv.gz", ["cannot be read as gzipped CSV"]),
    "one class": (_frame_csv(ONE_CLASS), "data.csv", ["only one class", "'default'"]),
    "too few rows": (_frame_csv(FEW_ROWS), "data.csv", ["only 20 labelled rows", "at least 50"]),
    "class of one row": (_frame_csv(LONELY_CLASS), "data.csv", ["class 2", "only 1 row"]),
    "target all null": (_frame_csv(NO_LABELS), "data.csv", ["'default' is empty in all 80 rows"]),
    "continuous target": (_frame_csv(CONTINUOUS), "data.csv", ["continuous numbers"]),
    "huge values": (_frame_csv(HUGE), "data.csv", ["column 'income' has 4 values beyond ±3.4e+38", "1e+308",
                                                   "leave those cells empty", "rescale"]),
    "infinite labels": (_frame_csv(INFINITE_LABELS), "data.csv", ["'default' has 3 infinite values (inf)",
                                                                  "drop those rows"]),
    "columns disagree": (_disagreeing_folder, "b.csv",
                         ["columns differ", "a.csv", "missing city", "unexpected colour"]),
    "column kinds disagree": (_kind_mismatch_folder, "b.csv", ["column 'age'", "'old'", "a.csv"]),
    "no data files": (_markers_only, "drop", ["no data files found", "notes.txt"]),
    "no such path": (lambda d: d / "nowhere.csv", "nowhere.csv", ["no such file or folder"]),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_fails_with_one_clear_line(case, tmp_path, capsys):
    build, names, phrases = BAD_DATA[case]
    path = build(tmp_path)
    code = main(["--data", str(path), "--target", "default", "--model-name", "m", "--output", str(tmp_path / "out")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert names in lines[0]
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert "error: " + read_json(tmp_path / "out" / "error.json")["message"] == lines[0]


@pytest.mark.slow      # train.py as a process
@pytest.mark.parametrize("case", ["missing target", "corrupt parquet", "class of one row", "huge values"])
def test_bad_data_as_a_process_exits_2_without_traceback(case, tmp_path):
    build, names, phrases = BAD_DATA[case]
    done = run_train("--data", build(tmp_path), "--target", "default", "--model-name", "m",
                     "--output", tmp_path / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0] and phrases[0] in lines[0]


def test_load_training_data_directly(tmp_path):
    folder = tmp_path / "drop"
    (folder / "2024" / "01").mkdir(parents=True)
    (folder / "_temporary" / "0").mkdir(parents=True)
    loan_frame(100).to_csv(folder / "2024" / "01" / "a.csv", index=False)
    loan_frame(100, seed=1).to_parquet(folder / "2024" / "b.parquet", index=False)
    loan_frame(100, seed=2).to_csv(folder / "_temporary" / "0" / "c.csv", index=False)   # a writer's leftovers
    frame = load_training_data([folder], "default")
    assert len(frame) == 200 and "request_id" in frame.columns
    assert frame["city"].isna().sum() == 2 * (100 // 12)
    with pytest.raises(DataError, match="target column 'Default' is missing.*did you mean 'default'"):
        load_training_data([folder], "Default")


@pytest.mark.slow      # train.py as a process
def test_usage_errors_exit_2_from_argparse(tmp_path):
    done = run_train("--data", tmp_path, "--target", "y", "--model-name", "m", "--output", tmp_path, "--test-size", "2")
    assert done.returncode == 2 and "--test-size" in done.stderr


def test_bad_data_reason_is_tagged_on_the_tracking_run(tmp_path, monkeypatch, capsys):
    tracking = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    csv = _write(tmp_path / "data.csv", b"")
    assert main(["--data", str(csv), "--target", "default", "--model-name", "m",
                 "--output", str(tmp_path / "out")]) == 2
    tags = list(tracking.glob("*/*/tags/mlops.error"))
    assert len(tags) == 1 and "empty (0 bytes)" in tags[0].read_text()
    assert "status: 4" in (tags[0].parent.parent / "meta.yaml").read_text()         # RunStatus.FAILED
