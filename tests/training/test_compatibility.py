"""The challenger's inputs and labels against the champion's (training/compatibility.py), as train.py
writes them to metrics.json: a champion trained by train.py, challengers trained on changed data."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from tests.training.test_train import loan_frame
from training.compatibility import compatibility, input_types
from training.train import main

LOAN_FEATURES = {"age": "long", "income": "double", "city": "string", "member": "boolean"}


def train(tmp: Path, frame: pd.DataFrame, *extra: str, name: str = "loans.csv") -> dict:
    data = tmp / name
    frame.to_parquet(data, index=False) if name.endswith(".parquet") else frame.to_csv(data, index=False)
    out = tmp / "out"
    with contextlib.redirect_stdout(io.StringIO()), threadpool_limits(1):
        assert main(["--data", str(data), "--target", "default", "--model-name", "loans", "--output", str(out),
                     "--max-iter", "30", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("champion")
    train(tmp, loan_frame())
    return tmp / "out" / "model"


def challenge(tmp_path: Path, champion: Path, frame: pd.DataFrame, name: str = "loans.csv") -> dict:
    return train(tmp_path, frame, "--champion-model", str(champion), name=name)


def test_no_champion_no_compatibility(tmp_path):
    assert train(tmp_path, loan_frame(200))["compatibility"] is None


def test_the_same_kind_of_data_is_compatible(tmp_path, champion):
    doc = challenge(tmp_path, champion, loan_frame(400, seed=5))
    assert doc["compatibility"] == {
        "champion_features": LOAN_FEATURES, "challenger_features": LOAN_FEATURES,
        "missing_features": [], "new_features": [], "changed_types": {},
        "champion_classes": [0, 1], "new_classes": [], "missing_classes": [],
        "compatible": True, "reasons": []}
    assert doc["champion"] is not None and doc["champion_error"] is None


def test_other_columns_are_missing_and_new_features(tmp_path, champion):
    frame = (loan_frame(400, seed=5).drop(columns=["city"])
             .assign(colour=lambda f: np.where(f["age"] > 50, "red", "blue")))
    doc = challenge(tmp_path, champion, frame)
    found = doc["compatibility"]
    assert found["champion_features"] == LOAN_FEATURES
    assert found["challenger_features"] == {"age": "long", "income": "double", "member": "boolean", "colour": "string"}
    assert (found["missing_features"], found["new_features"], found["changed_types"]) == (["city"], ["colour"], {})
    assert found["new_classes"] == [] and found["compatible"] is False
    assert found["reasons"] == ["the challenger lacks 1 input of the champion: city",
                                "the challenger takes 1 new input that clients do not send today: colour"]
    # the champion cannot be scored, and still the comparison is there
    assert doc["champion"] is None and "city" in doc["champion_error"]


def test_new_features_alone_are_incompatible(tmp_path, champion):
    found = challenge(tmp_path, champion, loan_frame(400, seed=5).assign(score=lambda f: f["age"] * 2))["compatibility"]
    assert found["missing_features"] == [] and found["new_features"] == ["score"]
    assert found["compatible"] is False


def test_a_yes_no_target_has_labels_the_champion_never_had(tmp_path, champion):
    frame = loan_frame(400, seed=5).assign(default=lambda f: f["default"].map({0: "no", 1: "yes"}))
    doc = challenge(tmp_path, champion, frame)
    found = doc["compatibility"]
    assert found["champion_classes"] == [0, 1]
    assert found["new_classes"] == ["no", "yes"] and found["missing_classes"] == [0, 1]
    assert found["missing_features"] == [] and found["new_features"] == [] and found["changed_types"] == {}
    assert found["compatible"] is False
    assert found["reasons"] == ["the data has 2 labels the champion never had: no, yes (the champion's: 0, 1)"]
    assert doc["champion"] is None and "predicts labels the data does not have" in doc["champion_error"]


def test_labels_are_compared_by_meaning(tmp_path, champion):
    """Labels stored as text "0"/"1" (a Parquet string column) are the champion's 0 and 1: compatible,
    and the champion is scored with its predictions matched to them."""
    frame = loan_frame(400, seed=5).assign(default=lambda f: f["default"].astype(str))
    doc = challenge(tmp_path, champion, frame, name="loans.parquet")
    assert doc["classes"] == ["0", "1"]
    found = doc["compatibility"]
    assert found["new_classes"] == [] and found["missing_classes"] == [] and found["compatible"] is True
    assert doc["champion_error"] is None and doc["champion"]["accuracy"] > 0.6


def test_a_changed_type(tmp_path, champion):
    frame = loan_frame(400, seed=5).assign(member=lambda f: f["member"].map({True: "yes", False: "no"}))
    found = challenge(tmp_path, champion, frame)["compatibility"]
    assert found["changed_types"] == {"member": "boolean -> string"}
    assert found["compatible"] is False and found["reasons"] == ["1 input changed type: member boolean -> string"]


def test_the_champions_classes_come_from_its_estimator_without_metrics_json(tmp_path, champion):
    bare = tmp_path / "bare"
    shutil.copytree(champion, bare)
    (bare / "metrics.json").unlink()
    found = compatibility(bare, LOAN_FEATURES, [0, 1])
    assert found["champion_classes"] == [0, 1] and found["compatible"] is True


def test_a_champion_that_cannot_be_read(tmp_path):
    found = compatibility(tmp_path / "nowhere", LOAN_FEATURES, [0, 1])
    assert found["champion_features"] is None and found["champion_classes"] is None
    assert found["missing_features"] is None and found["new_classes"] is None
    assert found["compatible"] is False and "cannot be read" in found["reasons"][0]
    assert found["challenger_features"] == LOAN_FEATURES


@pytest.mark.slow      # trains and saves a model
def test_a_champion_without_a_signature(tmp_path):
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    x = np.arange(40, dtype=float).reshape(20, 2)
    model = LogisticRegression().fit(x, np.arange(20) % 2)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), serialization_format="cloudpickle")
    found = compatibility(tmp_path / "m", {"a": "double"}, [0, 1])
    assert found["champion_features"] == {} and found["missing_features"] is None
    assert found["champion_classes"] == [0, 1] and found["new_classes"] == []
    assert found["compatible"] is False and "no named inputs" in found["reasons"][0]


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer column")
def test_input_types_of_a_signature():
    from mlflow.models import infer_signature

    frame = pd.DataFrame({"n": [1, 2], "x": [0.5, None], "s": ["a", "b"], "b": [True, False]})
    assert input_types(infer_signature(frame).inputs) == {"n": "long", "x": "double", "s": "string", "b": "boolean"}
    assert input_types(None) == {}
