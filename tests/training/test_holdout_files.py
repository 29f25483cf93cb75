"""--holdout-files: the holdout is cut from the window's new files alone (data the live model never saw), in
train.py and split.py alike, and from all the files, with the reason, when the new files hold too few rows."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import split as split_py
from training import train as train_py


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def cancer_frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def diabetes_frame() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


def two_days(frame: pd.DataFrame, folder: Path, day2_rows: int) -> Path:
    """folder/day1.csv (the champion's data) and folder/day2.csv (the last day2_rows rows: the new file),
    and folder/new.txt listing day2.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.iloc[:-day2_rows].to_csv(folder / "day1.csv", index=False)
    frame.iloc[-day2_rows:].to_csv(folder / "day2.csv", index=False)
    (folder / "new.txt").write_text("day2.csv\n")
    return folder


def data_args(root: Path, *extra: str, task: str = "classification", target: str = "target") -> list[str]:
    """The flags train.py and split.py share."""
    return ["--data", str(root), "--target", target, "--task", task, "--seed", "7", *extra]


def split_out(root: Path) -> Path:
    return root.parent / "out"                                        # beside the data, not read as data


def split_args(root: Path, *extra: str, task: str = "classification", target: str = "target") -> list[str]:
    return [*data_args(root, *extra, task=task, target=target),
            "--train-data", str(split_out(root) / "train"), "--holdout", str(split_out(root) / "holdout")]


def cut_of(argv: list[str]) -> split_py.Split:
    return split_py.read_and_cut(split_py.parse_args(argv))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_holdout_comes_from_the_new_file_and_all_of_day1_trains(task, cancer_frame, diabetes_frame, tmp_path,
                                                                    capsys):
    frame, target = (cancer_frame, "target") if task == "classification" else (diabetes_frame, "target")
    root = two_days(frame, tmp_path / "data", 120)
    day1 = len(frame) - 120
    split = cut_of(split_args(root, "--holdout-files", str(root / "new.txt"), task=task, target=target))
    files = [f.name for f in split.data.files]
    assert files == ["day1.csv", "day2.csv"]
    origin = np.asarray(split.data.origins)
    assert (origin[split.holdout] == 1).all()                         # every held-out row is day2's
    assert len(split.holdout) == 24                                   # 20% of day2's 120 rows
    assert set(np.flatnonzero(origin == 0)) <= set(split.train)       # all of day1 trains ...
    assert len(split.train) == day1 + 96                              # ... and the rest of day2
    assert sorted([*split.train, *split.holdout]) == list(range(len(frame)))
    if task == "classification":                                      # stratified within day2
        assert set(split.y_hold) == {0, 1}
    assert split.holdout_record == {"from": "new files", "files": [str(root / "day2.csv")], "rows": 24, "note": None}
    assert "holding out 24 rows of the 1 new file" in capsys.readouterr().out

    again = cut_of(split_args(root, "--holdout-files", str(root / "new.txt"), task=task, target=target))
    assert list(again.holdout) == list(split.holdout)                 # same FILE and seed: same rows
    without = cut_of(split_args(root, task=task, target=target))      # no flag: today's split, from all the rows
    assert (origin[without.holdout] == 0).any()
    assert without.holdout_record == {"from": "all files", "files": [], "rows": len(without.holdout), "note": None}


def test_without_the_flag_the_split_is_unchanged(cancer_frame, tmp_path):
    from sklearn.model_selection import train_test_split

    root = two_days(cancer_frame, tmp_path / "data", 120)
    split = cut_of(split_args(root))
    labels = split.labels
    train, holdout = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=7, stratify=labels)
    assert list(split.train) == list(train) and list(split.holdout) == list(holdout)


def test_a_listed_folder_names_the_files_under_it(diabetes_frame, tmp_path):
    root = tmp_path / "sales"
    for day, part in (("2026-11-29", diabetes_frame.iloc[:300]), ("2026-11-30", diabetes_frame.iloc[300:])):
        (root / day).mkdir(parents=True)
        part.to_csv(root / day / "part-0.csv", index=False)
    (tmp_path / "new.txt").write_text("# yesterday's partition\n2026-11-30/\n")
    split = cut_of(split_args(root, "--holdout-files", str(tmp_path / "new.txt"), task="regression"))
    assert split.holdout_record["from"] == "new files"
    assert split.holdout_record["files"] == [str(root / "2026-11-30" / "part-0.csv")]
    assert (split.holdout >= 300).all() and len(split.holdout) == 29     # ceil(20% of 142)


@pytest.mark.parametrize("case", ["rows", "class"])
def test_too_few_new_rows_fall_back_to_all_the_rows(case, cancer_frame, tmp_path, capsys):
    if case == "rows":                                                # day2: 10 rows, a 2-row holdout
        frame, day2 = cancer_frame, 10
    else:                                                             # day2: 120 rows, one of class 0
        ones, zeros = cancer_frame[cancer_frame["target"] == 1], cancer_frame[cancer_frame["target"] == 0]
        frame, day2 = pd.concat([ones.iloc[119:], zeros.iloc[1:], zeros.iloc[:1], ones.iloc[:119]]), 120
    root = two_days(frame, tmp_path / "data", day2)
    argv = split_args(root, "--holdout-files", str(root / "new.txt"))
    assert split_py.main(argv) == 0
    manifest = read_json(split_out(root) / "holdout" / "split.json")
    record = manifest["holdout"]
    reason = ("the new files hold 10 labelled rows: a 20% holdout of them is 2 rows, fewer than 20" if case == "rows"
              else "class 0 has 1 row in the new files; a stratified holdout needs at least 2 of each class")
    assert record == {"from": "all files", "files": [str(root / "day2.csv")], "rows": 114,
                      "note": f"{reason}; the holdout is cut from all files"}
    assert f"note: {reason}; the holdout is cut from all files (--holdout-files)" in capsys.readouterr().out
    fallback, today = cut_of(argv), cut_of(split_args(root))          # the very split without the flag
    assert list(fallback.holdout) == list(today.holdout) and list(fallback.train) == list(today.train)


@pytest.mark.parametrize("line, problem", [
    ("day3.csv", "'day3.csv' is not in the data folder {root}"),
    ("notes.txt", "'notes.txt' is not among the data files read"),
    ("day1.csv", "'day1.csv' is not among the data files read (the training window, --data-files)"),
])
def test_a_path_that_was_not_read_is_refused(line, problem, cancer_frame, tmp_path, capsys):
    root = two_days(cancer_frame, tmp_path / "data", 120)
    (root / "notes.txt").write_text("not data\n")
    (tmp_path / "window.txt").write_text("day2.csv\n")                # the window: day2 alone
    (tmp_path / "new.txt").write_text(f"day2.csv\n{line}\n")
    given = ["--holdout-files", str(tmp_path / "new.txt")]
    given += ["--data-files", str(tmp_path / "window.txt")] if line == "day1.csv" else []
    trained = tmp_path / "trained"
    for main, argv, out in ((split_py.main, split_args(root, *given), split_out(root) / "holdout"),
                            (train_py.main, [*data_args(root, *given), "--model-name", "m", "--output", str(trained)],
                             trained)):
        assert main(argv) == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert error == f"error: {tmp_path / 'new.txt'}: line 2: {problem.format(root=root)}"
        assert read_json(out / "error.json")["message"] == error.removeprefix("error: ")


def test_train_py_holds_out_what_split_py_holds_out(cancer_frame, tmp_path, monkeypatch):
    """The same FILE: the same rows held out, recorded alike in metrics.json and split.json."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = two_days(cancer_frame, tmp_path / "data", 120)
    new = ["--holdout-files", str(root / "new.txt")]
    assert split_py.main(split_args(root, *new)) == 0
    assert train_py.main([*data_args(root, *new), "--model-name", "cancer", "--output", str(tmp_path / "trained"),
                          "--algorithm", "linear"]) == 0
    doc = read_json(tmp_path / "trained" / "metrics.json")
    manifest = read_json(split_out(root) / "holdout" / "split.json")
    assert doc["holdout"] == manifest["holdout"] == {"from": "new files", "files": [str(root / "day2.csv")],
                                                     "rows": 24, "note": None}
    assert doc["rows"] == manifest["rows"] == {"train": 545, "holdout": 24, "total": 569, "unlabelled_dropped": 0}
    held = pd.read_parquet(tmp_path / "trained" / "model" / "reference" / "holdout.parquet")
    written = pd.read_csv(split_out(root) / "holdout" / "holdout.csv")
    pd.testing.assert_frame_equal(held.drop(columns=["prediction"]), written[list(held.columns[:-1])],
                                  check_exact=False, rtol=1e-12)
    day2 = cancer_frame.iloc[-120:]
    assert written["mean radius"].isin(day2["mean radius"]).all()    # the held-out rows are day2's
