"""Regression and multiclass models through train.py, and a team's own training code between split.py and
evaluate.py, each run as Azure ML runs it: a process started in a copy of training/ alone (the code snapshot),
where the `training` package cannot be imported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecycle.core.policies import GatePolicy
from lifecycle.core.registration_gate import PASS, judge

ROOT = Path(__file__).resolve().parents[2]
REGRESSION_KEYS = {"mae", "rmse", "r2", "mape"}
CLASSIFICATION_KEYS = {"accuracy", "f1", "precision", "recall", "roc_auc"}

# What a team writes: it reads split.py's train.csv, fits a model its own way, saves it with MLflow.
TEAM_SCRIPT = """
import sys

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

data, target, task, out = sys.argv[1:5]
frame = pd.read_csv(f"{data}/train.csv")
x, y = frame.drop(columns=[target]), frame[target]
if task == "regression":
    model = RandomForestRegressor(n_estimators=40, max_depth=6, random_state=0, n_jobs=1)
else:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
model.fit(x, y)
mlflow.sklearn.save_model(model, out, signature=infer_signature(x, model.predict(x)),
                          serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
"""


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """training/ copied alone, and a `training` package that refuses to import: the job's code snapshot
    on Azure ML has no project installed around it."""
    tmp = tmp_path_factory.mktemp("snapshot")
    shutil.copytree(ROOT / "training", tmp / "code", ignore=shutil.ignore_patterns("__pycache__", "*.yml",
                                                                                    "environment", "components"))
    (tmp / "stub" / "training").mkdir(parents=True)
    (tmp / "stub" / "training" / "__init__.py").write_text(
        "raise ImportError('the code snapshot must not import the training package')\n")
    (tmp / "team.py").write_text(TEAM_SCRIPT)
    return tmp


def run(snapshot: Path, script: str, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(snapshot / "stub"))
    path = snapshot / "code" / script if script != "team.py" else snapshot / script
    return subprocess.run([sys.executable, str(path), *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=snapshot / "code", timeout=120)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory) -> Path:
    from sklearn.datasets import load_diabetes

    csv = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"}).to_csv(csv, index=False)
    return csv


@pytest.fixture(scope="module")
def cancer(tmp_path_factory) -> Path:
    from sklearn.datasets import load_breast_cancer

    csv = tmp_path_factory.mktemp("cancer") / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv, index=False)
    return csv


@pytest.fixture(scope="module")
def regression(snapshot, diabetes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regression") / "out"
    ok(run(snapshot, "train.py", "--data", diabetes, "--target", "progression", "--task", "regression",
           "--model-name", "diabetes", "--output", out, "--algorithm", "linear"))
    return out


# --- train.py --task regression ------------------------------------------------------------------------

@pytest.mark.slow      # train.py as a process
def test_regression_metrics_json(regression):
    doc = read_json(regression / "metrics.json")
    assert doc == read_json(regression / "model" / "metrics.json")
    assert (doc["task"], doc["classification"], doc["classes"], doc["positive_class"], doc["average"]) == (
        "regression", None, None, None, None)
    assert set(doc["metrics"]) == REGRESSION_KEYS
    assert doc["metrics"]["r2"] > 0.3 and doc["metrics"]["rmse"] < 65        # ridge on diabetes: r2 about 0.45
    assert doc["metrics"]["mae"] < doc["metrics"]["rmse"] and 0 < doc["metrics"]["mape"] < 1
    assert doc["calibration"] is None and doc["class_balance"] is None
    assert doc["algorithm"] == "linear" and doc["hyperparameters"] == {"alpha": 1.0}
    assert doc["rows"] == {"train": 353, "holdout": 89, "total": 442, "unlabelled_dropped": 0}
    single = doc["single_feature"]                        # the leak check, for a number: bin means and r2
    assert (single["method"], single["rows"], single["features"]) == ("bin_mean", 89, 10)
    assert set(single["baseline"]) == set(single["best"]) == {"r2", "mae", "rmse"}
    assert abs(single["baseline"]["r2"]) < 0.05                # the mean predictor
    assert single["best"]["r2"]["value"] < doc["metrics"]["r2"]
    assert [t["r2"] for t in single["top"]] == sorted((t["r2"] for t in single["top"]), reverse=True)


@pytest.mark.slow      # train.py as a process
def test_regression_model_predicts_numbers_and_its_profile_is_continuous(regression):
    import mlflow.pyfunc

    model_dir = regression / "model"
    sample = pd.read_csv(model_dir / "reference" / "sample.csv")
    predictions = mlflow.pyfunc.load_model(str(model_dir)).predict(sample)
    assert predictions.dtype.kind == "f" and len(np.unique(predictions)) > 50
    profile = read_json(model_dir / "reference" / "profile.json")
    assert profile["task"] == "regression" and profile["target"] == "progression"
    target = profile["target_profile"]                    # quantile bins of the target...
    assert target["type"] == "numeric" and len(target["histogram"]["counts"]) == 20
    assert sum(target["histogram"]["counts"]) == 442
    assert profile["outputs"]["prediction"]["type"] == "numeric"         # ...and of the holdout's predictions
    assert sum(profile["outputs"]["prediction"]["histogram"]["counts"]) == 89
    assert "target_by_feature" not in profile
    binned = profile["target_bins_by_feature"]["bmi"]["counts"]          # target bins per feature bin
    assert np.asarray(binned).shape == (len(profile["features"]["bmi"]["histogram"]["counts"]), 20)
    assert np.sum(binned) == 442
    holdout = pd.read_parquet(model_dir / "reference" / "holdout.parquet")   # monitoring learns errors from it
    assert len(holdout) == 89 and {"bmi", "progression", "prediction"} <= set(holdout.columns)


def test_regression_champion_scored_with_the_same_metrics(regression, diabetes, tmp_path, monkeypatch):
    from training.train import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "out"
    assert main(["--data", str(diabetes), "--target", "progression", "--task", "regression", "--model-name", "d",
                 "--output", str(out), "--algorithm", "linear", "--champion-model", str(regression / "model")]) == 0
    doc = read_json(out / "metrics.json")
    assert doc["champion"] == pytest.approx(doc["metrics"])   # the same model on the same rows
    compatible = doc["compatibility"]
    assert compatible["compatible"] is True and compatible["reasons"] == []
    assert compatible["champion_classes"] is None and compatible["new_classes"] is None
    verdict = judge(doc, GatePolicy(metric="rmse", floor=70, margin=1))
    assert verdict.outcome == PASS and verdict.reasons[0].startswith("rmse ")
    assert "≤ ceiling 70.0000" in verdict.reasons[0]


def test_a_classifier_cannot_replace_a_regression_champion(regression, diabetes, tmp_path, monkeypatch):
    from training.train import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame = pd.read_csv(diabetes)
    frame["progression"] = np.where(frame["progression"] > 140, "high", "low")
    csv = tmp_path / "classes.csv"
    frame.to_csv(csv, index=False)
    assert main(["--data", str(csv), "--target", "progression", "--model-name", "d", "--output", str(tmp_path / "out"),
                 "--algorithm", "linear", "--champion-model", str(regression / "model")]) == 0
    doc = read_json(tmp_path / "out" / "metrics.json")
    assert doc["compatibility"]["compatible"] is False
    assert doc["compatibility"]["reasons"] == ["the champion is a regression model and the challenger a classifier: "
                                               "clients would get labels instead of numbers"]
    assert doc["champion"] is None and "labels the data does not have" in doc["champion_error"]


@pytest.mark.parametrize("values, phrases", [
    (lambda y: y.astype(object).where(np.arange(len(y)) % 100 != 0, "unknown"),
     ["5 values that are not numbers", "'unknown'"]),
    (lambda y: y > 140, ["true/false values"]),
    (lambda y: y.where(np.arange(len(y)) != 3, np.inf), ["1 infinite value", "finite number"]),
    (lambda y: y * 0 + 7, ["only one value (7.0", "nothing to learn"]),
])
def test_a_regression_target_must_be_numbers(values, phrases, diabetes, tmp_path, capsys):
    from training.train import main

    frame = pd.read_csv(diabetes)
    frame["progression"] = values(frame["progression"])
    csv = tmp_path / "bad.csv"
    frame.to_csv(csv, index=False)
    assert main(["--data", str(csv), "--target", "progression", "--task", "regression", "--model-name", "m",
                 "--output", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {csv}: the target column 'progression'"), line
    for phrase in phrases:
        assert phrase in line, (phrase, line)


def test_a_continuous_target_for_a_classifier_points_at_regression(diabetes, tmp_path, capsys):
    from training.train import main

    frame = pd.read_csv(diabetes).assign(progression=lambda f: f["progression"] + 0.5)
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert main(["--data", str(tmp_path / "d.csv"), "--target", "progression", "--model-name", "m",
                 "--output", str(tmp_path / "out")]) == 2
    assert "--task regression" in capsys.readouterr().err


# --- multiclass end to end --------------------------------------------------------------------------------

@pytest.mark.slow      # train.py as a process
def test_multiclass_wine_trains_and_serves_probabilities(snapshot, tmp_path):
    from sklearn.datasets import load_wine

    from tests.deployment.test_score import call, load_score_module

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    wine["cultivar"] = wine["cultivar"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    wine.to_csv(tmp_path / "wine.csv", index=False)
    out = tmp_path / "out"
    ok(run(snapshot, "train.py", "--data", tmp_path / "wine.csv", "--target", "cultivar", "--model-name", "wine",
           "--output", out, "--algorithm", "random_forest", "--n-estimators", "50"))
    doc = read_json(out / "metrics.json")
    assert (doc["task"], doc["classification"], doc["average"]) == ("classification", "multiclass", "macro")
    assert doc["classes"] == ["barbera", "barolo", "grignolino"] and sum(doc["class_balance"].values()) == 178
    assert set(doc["metrics"]) == CLASSIFICATION_KEYS and doc["metrics"]["f1"] > 0.85
    assert doc["metrics"]["roc_auc"] > 0.95 and doc["calibration"]["method"] == "top_label"
    assert set(doc["single_feature"]["best"]) == CLASSIFICATION_KEYS
    profile = read_json(out / "model" / "reference" / "profile.json")
    assert profile["task"] == "classification" and profile["target_profile"]["type"] == "categorical"
    assert profile["target_by_feature"]["alcohol"]["classes"] == ["barbera", "barolo", "grignolino"]

    score = load_score_module("score_wine")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AZUREML_MODEL_DIR", str(out / "model"))
        score.init()
    rows = pd.read_csv(out / "model" / "reference" / "sample.csv").head(5)
    status, answer = call(score, {"input_data": {"columns": list(rows.columns), "data": rows.values.tolist()}})
    assert status == 200 and answer["classes"] == doc["classes"]
    assert set(answer["predictions"]) <= set(doc["classes"]) and len(answer["probabilities"][0]) == 3


# --- a team's own training: split.py, their script, evaluate.py -------------------------------------------

@pytest.fixture(scope="module")
def team_regression(snapshot, diabetes, regression, tmp_path_factory) -> dict:
    """split.py, the team's script on train.csv, evaluate.py with train.py's regression model as champion."""
    tmp = tmp_path_factory.mktemp("team")
    split = ok(run(snapshot, "split.py", "--data", diabetes, "--target", "progression", "--task", "regression",
                   "--train-data", tmp / "train", "--holdout", tmp / "holdout"))
    ok(run(snapshot, "team.py", tmp / "train", "progression", "regression", tmp / "team-model"))
    evaluated = ok(run(snapshot, "evaluate.py", "--model", tmp / "team-model", "--holdout", tmp / "holdout",
                       "--target", "progression", "--task", "regression", "--model-name", "diabetes",
                       "--output", tmp / "out", "--train-data", tmp / "train",
                       "--champion-model", regression / "model"))
    return {"tmp": tmp, "split": split, "evaluate": evaluated, "doc": read_json(tmp / "out" / "metrics.json")}


@pytest.mark.slow      # the scripts as processes
def test_split_writes_train_and_holdout_csv_with_a_manifest(team_regression, diabetes):
    tmp = team_regression["tmp"]
    train, holdout = pd.read_csv(tmp / "train" / "train.csv"), pd.read_csv(tmp / "holdout" / "holdout.csv")
    assert (len(train), len(holdout)) == (353, 89)
    assert list(train.columns) == list(holdout.columns) == list(pd.read_csv(diabetes).columns)
    manifest = read_json(tmp / "holdout" / "split.json")
    assert manifest == read_json(tmp / "train" / "split.json")
    assert (manifest["task"], manifest["target"], manifest["seed"], manifest["test_size"]) == (
        "regression", "progression", 42, 0.2)
    assert manifest["data_files"] == [str(diabetes)] and manifest["classes"] is None
    assert "wrote 353 training rows" in team_regression["split"].stdout


@pytest.mark.slow      # the scripts as processes
def test_evaluate_writes_what_train_py_writes_for_a_team_model(team_regression, regression):
    doc, tmp = team_regression["doc"], team_regression["tmp"]
    ours = read_json(regression / "metrics.json")
    assert set(doc) == set(ours)                          # the same keys: the chain cannot tell them apart
    assert doc == read_json(tmp / "out" / "model" / "metrics.json")
    assert (doc["trainer"], doc["algorithm"], doc["task"]) == ("team", "RandomForestRegressor", "regression")
    assert doc["hyperparameters"]["n_estimators"] == 40
    assert doc["rows"] == ours["rows"] and doc["data_files"] == ours["data_files"] and doc["seed"] == 42
    assert doc["features"] == ours["features"] and doc["single_feature"] == ours["single_feature"]
    assert set(doc["metrics"]) == REGRESSION_KEYS and doc["metrics"]["r2"] > 0.2
    assert doc["champion"] == pytest.approx(ours["metrics"])         # train.py's model, on the same rows
    assert doc["compatibility"]["compatible"] is True
    model_dir = tmp / "out" / "model"
    for name in ("MLmodel", "model.pkl", "reference/profile.json", "reference/sample.csv",
                 "reference/holdout.parquet"):
        assert (model_dir / name).is_file(), name
    profile = read_json(model_dir / "reference" / "profile.json")
    assert profile["rows"] == 442 and profile["target_profile"] == read_json(
        regression / "model" / "reference" / "profile.json")["target_profile"]
    verdict = judge(doc, GatePolicy(metric="rmse", floor=70, margin=5))
    assert verdict.outcome == PASS, verdict.reasons


@pytest.fixture(scope="module")
def cancer_split(snapshot, cancer, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cancer-split")
    ok(run(snapshot, "split.py", "--data", cancer, "--target", "target", "--task", "classification", "--seed", "7",
           "--train-data", tmp / "train", "--holdout", tmp / "holdout"))
    return tmp


@pytest.mark.slow      # the scripts as processes
@pytest.mark.parametrize("new_files", [False, True], ids=["all-files", "holdout-files"])
def test_split_holds_out_the_rows_train_py_holds_out(snapshot, cancer, cancer_split, tmp_path, new_files):
    """train.py's own model scored by evaluate.py on split.py's holdout gives train.py's metrics exactly:
    the same rows (stratified for a classifier), read and scored the same way; with --holdout-files too
    (the same FILE: the same rows of the new file held out)."""
    data, given = cancer, []
    if new_files:                                 # day1.csv and day2.csv, the holdout from day2.csv's rows
        data = tmp_path / "days"
        data.mkdir()
        frame = pd.read_csv(cancer)
        frame.iloc[:450].to_csv(data / "day1.csv", index=False)
        frame.iloc[450:].to_csv(data / "day2.csv", index=False)
        (tmp_path / "new.txt").write_text("day2.csv\n")
        given = ["--holdout-files", tmp_path / "new.txt"]
        cancer_split = tmp_path / "split"
        ok(run(snapshot, "split.py", "--data", data, "--target", "target", "--task", "classification", "--seed", "7",
               "--train-data", cancer_split / "train", "--holdout", cancer_split / "holdout", *given))
    ok(run(snapshot, "train.py", "--data", data, "--target", "target", "--model-name", "cancer", *given,
           "--output", tmp_path / "ours", "--algorithm", "random_forest", "--n-estimators", "30", "--seed", "7"))
    ok(run(snapshot, "evaluate.py", "--model", tmp_path / "ours" / "model", "--holdout", cancer_split / "holdout",
           "--target", "target", "--task", "classification", "--model-name", "cancer", "--output", tmp_path / "again",
           "--train-data", cancer_split / "train"))
    ours, again = read_json(tmp_path / "ours" / "metrics.json"), read_json(tmp_path / "again" / "metrics.json")
    assert again["holdout"] == ours["holdout"] and again["rows"] == ours["rows"]
    assert ours["holdout"] == ({"from": "new files", "files": [str(data / "day2.csv")], "rows": 24, "note": None}
                               if new_files else {"from": "all files", "files": [], "rows": 114, "note": None})
    assert again["metrics"] == pytest.approx(ours["metrics"])
    calibrated, before = again["calibration"], ours["calibration"]
    assert calibrated["expected_calibration_error"] == pytest.approx(before["expected_calibration_error"])
    assert calibrated["reliability"]["counts"] == before["reliability"]["counts"]
    assert again["single_feature"] == ours["single_feature"] and again["class_balance"] == ours["class_balance"]
    assert (again["classes"], again["positive_class"]) == (ours["classes"], ours["positive_class"]) == ([0, 1], 1)


@pytest.mark.slow      # the scripts as processes
def test_a_team_classifier_passes_the_gate(snapshot, cancer_split, tmp_path):
    ok(run(snapshot, "team.py", cancer_split / "train", "target", "classification", tmp_path / "team-model"))
    ok(run(snapshot, "evaluate.py", "--model", tmp_path / "team-model", "--holdout", cancer_split / "holdout",
           "--target", "target", "--task", "classification", "--model-name", "cancer", "--output", tmp_path / "out"))
    doc = read_json(tmp_path / "out" / "metrics.json")
    assert (doc["trainer"], doc["algorithm"], doc["classification"]) == ("team", "LogisticRegression", "binary")
    assert doc["metrics"]["f1"] > 0.9 and doc["calibration"]["method"] == "positive_class"   # it has predict_proba
    assert doc["single_feature"] is None                  # no --train-data: nothing to learn a rule from
    assert doc["rows"]["holdout"] == 114 and doc["rows"]["train"] == 0
    assert judge(doc, GatePolicy(metric="f1", floor=0.8)).outcome == PASS


# --- the training window, and what fails -----------------------------------------------------------------

def test_data_files_reads_only_the_listed_files(diabetes, tmp_path, capsys):
    from training.split import main

    frame = pd.read_csv(diabetes)
    root = tmp_path / "root"
    for i, part in enumerate((frame.iloc[:150], frame.iloc[150:300], frame.iloc[300:])):
        (root / f"2024-0{i + 1}").mkdir(parents=True)
        part.to_csv(root / f"2024-0{i + 1}" / "part.csv", index=False)
    listing = tmp_path / "window.txt"
    listing.write_text("# the last two drops\n2024-02/part.csv\n\n/2024-03/part.csv\n")
    assert main(["--data", str(root), "--target", "progression", "--task", "regression", "--data-files", str(listing),
                 "--train-data", str(tmp_path / "t"), "--holdout", str(tmp_path / "h"), "--min-rows", "10"]) == 0
    manifest = read_json(tmp_path / "h" / "split.json")
    assert [Path(f).parent.name for f in manifest["data_files"]] == ["2024-02", "2024-03"]
    assert manifest["rows"]["total"] == 442 - 150
    listing.write_text("2024-02/part.csv\n2024-09/part.csv\n")
    assert main(["--data", str(root), "--target", "progression", "--task", "regression", "--data-files", str(listing),
                 "--train-data", str(tmp_path / "t"), "--holdout", str(tmp_path / "h2")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: {listing}: line 2: '2024-09/part.csv' is not in the data folder {root}"
    assert read_json(tmp_path / "h2" / "error.json")["message"] == line.removeprefix("error: ")


def test_train_py_takes_the_same_training_window(diabetes, tmp_path, monkeypatch):
    from training.train import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "root"
    root.mkdir()
    frame = pd.read_csv(diabetes)
    frame.iloc[:200].to_csv(root / "old.csv", index=False)
    frame.iloc[200:].to_csv(root / "new.csv", index=False)
    (tmp_path / "window.txt").write_text("new.csv\n")
    assert main(["--data", str(root), "--target", "progression", "--task", "regression", "--data-files",
                 str(tmp_path / "window.txt"), "--model-name", "d", "--output", str(tmp_path / "out"),
                 "--algorithm", "logistic_regression"]) == 0
    doc = read_json(tmp_path / "out" / "metrics.json")
    assert doc["data_files"] == [str(root / "new.csv")] and doc["rows"]["total"] == 242
    assert doc["algorithm"] == "linear" and doc["hyperparameters"] == {"alpha": 1.0}     # the old name: ridge


def test_evaluate_refuses_what_is_not_a_model_and_a_model_that_cannot_score(team_regression, tmp_path, capsys):
    from training.evaluate import main

    tmp = team_regression["tmp"]
    common = ["--holdout", str(tmp / "holdout"), "--target", "progression", "--task", "regression",
              "--model-name", "m", "--output", str(tmp_path / "out")]
    assert main(["--model", str(tmp_path), *common]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {tmp_path}: not an MLflow model folder")
    assert read_json(tmp_path / "out" / "error.json")["error"] == "model"

    holdout = tmp_path / "holdout"                         # the rows lost a column the model takes
    holdout.mkdir()
    pd.read_csv(tmp / "holdout" / "holdout.csv").drop(columns=["bmi"]).to_csv(holdout / "holdout.csv", index=False)
    common[1] = str(holdout)
    assert main(["--model", str(tmp / "team-model"), *common]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "cannot be scored on the holdout rows" in line and "the model expects columns the data does not have: bmi" \
        in line


def test_json_lines_are_read_like_csv(diabetes, tmp_path, capsys):
    import gzip

    from training.split import main

    frame = pd.read_csv(diabetes)
    folder = tmp_path / "drop"
    folder.mkdir()
    frame.iloc[:200].to_json(folder / "a.jsonl", orient="records", lines=True)
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(frame.iloc[200:].to_json(orient="records", lines=True).encode()))
    args = ["--target", "progression", "--task", "regression", "--train-data", str(tmp_path / "t"),
            "--holdout", str(tmp_path / "h")]
    assert main(["--data", str(folder), *args]) == 0
    assert read_json(tmp_path / "h" / "split.json")["rows"]["total"] == 442
    (folder / "c.jsonl").write_text('{"progression": 1.0, "bmi": \n')
    assert main(["--data", str(folder), *args]) == 2
    assert f"error: {folder / 'c.jsonl'}: cannot be read as JSON lines" in capsys.readouterr().err


def test_request_id_is_not_handed_to_a_team(tmp_path, monkeypatch):
    """score.py takes request_id out of every request, so a model must not need it: split.py leaves it out,
    and evaluate.py still reports it as train.py does, a column that is not a feature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from tests.training.test_train import loan_frame
    from training import evaluate, split, train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    loan_frame(300).to_csv(tmp_path / "loans.csv", index=False)
    data = ["--data", str(tmp_path / "loans.csv"), "--target", "default"]
    assert split.main([*data, "--task", "classification", "--train-data", str(tmp_path / "t"),
                       "--holdout", str(tmp_path / "h")]) == 0
    rows = pd.read_csv(tmp_path / "t" / "train.csv")
    assert "request_id" not in rows.columns and {"age", "city", "default"} <= set(rows.columns)
    x = rows[["age", "income"]]
    with threadpool_limits(1):
        model = HistGradientBoostingClassifier(max_iter=20).fit(x, rows["default"])
    mlflow.sklearn.save_model(model, str(tmp_path / "team"), signature=infer_signature(x, model.predict(x)),
                              serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
    assert evaluate.main(["--model", str(tmp_path / "team"), "--holdout", str(tmp_path / "h"), "--target", "default",
                          "--model-name", "loans", "--output", str(tmp_path / "out"),
                          "--train-data", str(tmp_path / "t")]) == 0
    with threadpool_limits(1):
        assert train.main([*data, "--model-name", "loans", "--output", str(tmp_path / "ours")]) == 0
    doc, ours = read_json(tmp_path / "out" / "metrics.json"), read_json(tmp_path / "ours" / "metrics.json")
    assert doc["features"] == ours["features"] and "request_id (request id)" in doc["features"]["ignored"]
    sample = pd.read_csv(tmp_path / "out" / "model" / "reference" / "sample.csv")
    assert list(sample.columns) == ["age", "income"]           # the smoke rows carry what the model takes


class LinearInBmi:
    """A team's own python_function model, no scikit-learn flavour: predictions from one column."""

    def predict(self, context, model_input, params=None):
        return 150 + 900 * model_input["bmi"].to_numpy()


def test_any_pyfunc_model_is_evaluated(team_regression, tmp_path, monkeypatch):
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from mlflow.pyfunc import PythonModel

    from training.evaluate import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tmp = team_regression["tmp"]
    x = pd.read_csv(tmp / "train" / "train.csv")[["bmi", "bp"]]
    model = type("Team", (LinearInBmi, PythonModel), {})()
    mlflow.pyfunc.save_model(str(tmp_path / "team"), python_model=model, pip_requirements=["pandas"],
                             signature=infer_signature(x, model.predict(None, x)))
    assert main(["--model", str(tmp_path / "team"), "--holdout", str(tmp / "holdout"), "--target", "progression",
                 "--task", "regression", "--model-name", "d", "--output", str(tmp_path / "out")]) == 0
    doc = read_json(tmp_path / "out" / "metrics.json")
    assert (doc["algorithm"], doc["hyperparameters"], doc["calibration"]) == ("python_function", {}, None)
    assert doc["metrics"]["r2"] > 0.2 and doc["single_feature"] is None
    reloaded = mlflow.pyfunc.load_model(str(tmp_path / "out" / "model"))      # the copy still loads and predicts
    assert len(reloaded.predict(pd.read_csv(tmp_path / "out" / "model" / "reference" / "sample.csv"))) == 89
