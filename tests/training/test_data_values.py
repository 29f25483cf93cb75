"""Values scikit-learn refuses, in training data that is otherwise fine (training/dataset.py): each case
either trains, with what was read as missing noted in metrics.json and the log, or fails through
DataError with one line (the failing cases are in test_train.py's BAD_DATA)."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from tests.training.test_train import loan_frame
from training.dataset import load
from training.train import main


def train(tmp: Path, data: Path, *extra: str) -> tuple[dict, str]:
    out = tmp / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), threadpool_limits(1):
        code = main(["--data", str(data), "--target", "default", "--model-name", "m", "--output", str(out),
                     "--max-iter", "20", "--n-estimators", "10", *extra])
    assert code == 0, stderr.getvalue()
    return json.loads((out / "metrics.json").read_text()), stdout.getvalue()


def csv(tmp: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    frame.to_csv(tmp / name, index=False)
    return tmp / name


@pytest.mark.parametrize("algorithm", ["hist_gradient_boosting", "random_forest", "logistic_regression"])
def test_infinities_in_a_feature_are_read_as_missing(tmp_path, algorithm):
    frame = loan_frame(200)
    frame["income"] = frame["income"].astype(object)
    frame.loc[[1, 2, 3], "income"] = [np.inf, -np.inf, "Infinity"]          # as CSV writes and reads them
    frame.loc[4, "income"] = "1e400"                                        # overflows to inf when parsed
    doc, log = train(tmp_path, csv(tmp_path, frame), "--algorithm", algorithm)
    assert "income" in doc["features"]["numeric"]
    assert doc["data_notes"] == [f"column 'income': 4 infinite values (inf, -inf) in {tmp_path / 'data.csv'}, "
                                 "treated as missing"]
    assert "note: column 'income': 4 infinite values" in log
    profile = json.loads((tmp_path / "out" / "model" / "reference" / "profile.json").read_text())
    assert profile["features"]["income"]["null_count"] == 16 + 4          # loan_frame's own gaps, and these


def test_a_column_of_infinities_is_not_a_feature(tmp_path):
    doc, _ = train(tmp_path, csv(tmp_path, loan_frame(200).assign(ratio=np.inf)))
    assert "ratio (no values)" in doc["features"]["ignored"]
    assert doc["data_notes"][0].startswith("column 'ratio': 200 infinite values (inf)")


def test_a_few_text_cells_in_a_column_of_numbers_are_read_as_missing(tmp_path):
    frame = loan_frame(200)
    frame["age"] = frame["age"].astype(object)
    frame.loc[[5, 9], "age"] = ["unknown", "?"]
    doc, _ = train(tmp_path, csv(tmp_path, frame))
    assert "age" in doc["features"]["numeric"]                            # not 60 one-hot categories
    assert doc["data_notes"] == [f"column 'age': 2 text values ('unknown', '?') in {tmp_path / 'data.csv'}, "
                                 "treated as missing"]


def test_more_text_than_that_makes_a_text_column(tmp_path):
    frame = loan_frame(200)
    frame["age"] = np.where(np.arange(200) % 10 == 0, "unknown", frame["age"].astype(str))     # 10%
    doc, _ = train(tmp_path, csv(tmp_path, frame))
    assert "age" in doc["features"]["categorical"] and doc["data_notes"] == []


def test_one_file_with_a_text_cell_among_files_of_numbers(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    loan_frame(150).to_csv(folder / "a.csv", index=False)
    csv(folder, loan_frame(150, seed=1).assign(age=lambda f: f["age"].astype(object).where(f.index != 7, "n.a.")),
        "b.csv")
    data = load([folder], "default")
    assert "age" in data.numeric and data.frame["age"].isna().sum() == 1
    assert data.notes == (f"column 'age': 1 text value ('n.a.') in {folder / 'b.csv'}, treated as missing",)


def test_a_text_column_of_digits_stays_text(tmp_path):
    """Postcodes declared as text in Parquet: all digits, no stray text, so nothing to repair."""
    frame = loan_frame(200).assign(postcode=lambda f: [f"0{i % 7}134" for i in range(len(f))])
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    data = load([tmp_path / "data.parquet"], "default")
    assert "postcode" in data.categorical and data.notes == ()


def test_empty_labels_drop_their_rows_and_an_empty_column_is_ignored(tmp_path):
    frame = loan_frame(200).assign(notes=np.nan)
    frame["default"] = frame["default"].astype(float)
    frame.loc[:4, "default"] = np.nan
    doc, log = train(tmp_path, csv(tmp_path, frame))
    assert doc["rows"]["unlabelled_dropped"] == 5 and doc["rows"]["total"] == 195
    assert "notes (no values)" in doc["features"]["ignored"]


def test_parquet_nullable_types_with_gaps(tmp_path):
    """pandas' nullable boolean (scikit-learn cannot compare its NA) and Float64 with NA and inf."""
    frame = loan_frame(200)
    frame["member"] = pd.array(frame["member"], dtype="boolean")
    frame.loc[[0, 1], "member"] = pd.NA
    frame["score"] = pd.array(np.linspace(0, 1, 200), dtype="Float64")
    frame.loc[[2], "score"] = pd.NA
    frame.loc[[3], "score"] = np.inf
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    doc, _ = train(tmp_path, tmp_path / "data.parquet")
    assert "member" in doc["features"]["categorical"] and "score" in doc["features"]["numeric"]
    assert doc["data_notes"][0].startswith("column 'score': 1 infinite value (inf)")
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(tmp_path / "out" / "model"))
    sample = pd.read_csv(tmp_path / "out" / "model" / "reference" / "sample.csv")
    assert len(model.predict(sample)) == len(sample)
