"""--window-column COL --window-days N: only the rows dated within the last N days of the data train, in
train.py and split.py alike (dataset.load's window), COL is then not a feature, and metrics.json and
split.json record the window ("row_window"). Bad columns and values that are not dates are data errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import split as split_py
from training import train as train_py

DAYS = 60
PER_DAY = 10
FIRST = pd.Timestamp("2025-03-01")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def sixty_days(folder: Path, *, files: int = 2, change=None) -> Path:
    """PER_DAY rows a day over DAYS days from FIRST (column `day`, text dates), a number `x` the label follows
    and a category `colour`, written as `files` CSV files of consecutive days (change(frame) edits it first)."""
    rng = np.random.default_rng(3)
    n = DAYS * PER_DAY
    day = np.repeat(pd.date_range(FIRST, periods=DAYS, freq="D").strftime("%Y-%m-%d"), PER_DAY)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"day": day, "x": x, "colour": rng.choice(["red", "green", "blue"], n),
                          "label": (x + rng.normal(scale=0.5, size=n) > 0).astype(int)})
    if change is not None:
        frame = change(frame)
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[part].to_csv(folder / f"part-{i}.csv", index=False)
    return folder


def data_args(root: Path, *extra: str) -> list[str]:
    return ["--data", str(root), "--target", "label", "--seed", "7", *extra]


def split_args(root: Path, *extra: str) -> list[str]:
    out = root.parent / "out"
    return [*data_args(root, *extra), "--train-data", str(out / "train"), "--holdout", str(out / "holdout")]


def train_args(root: Path, *extra: str) -> list[str]:
    return [*data_args(root, *extra), "--model-name", "m", "--output", str(root.parent / "trained"),
            "--algorithm", "linear"]


WINDOW = ("--window-column", "day", "--window-days", "30")


def test_the_last_30_days_of_60_train_and_the_window_is_recorded(tmp_path, capsys):
    root = sixty_days(tmp_path / "data")
    split = split_py.read_and_cut(split_py.parse_args(split_args(root, *WINDOW)))
    data = split.data
    kept = pd.to_datetime(data.frame["day"])
    # date >= the latest date - 30 days: the latest day and the 30 before it
    assert kept.min() == FIRST + pd.Timedelta(days=DAYS - 1 - 30) and kept.max() == FIRST + pd.Timedelta(days=DAYS - 1)
    assert len(data.frame) == 31 * PER_DAY
    assert data.row_window == {"column": "day", "days": 30, "from": "2025-03-30", "to": "2025-04-29",
                               "rows_kept": 310, "rows_dropped": 290}
    assert sorted([*split.train, *split.holdout]) == list(range(310))
    # the date column is not a feature; the others are as without the window
    assert (data.numeric, data.categorical) == (("x",), ("colour",))
    assert "day (the row window's dates, --window-column)" in data.ignored and "day" not in split.x.columns
    # each row still knows its file: the first file's rows in the window, then all of the second's
    assert np.bincount(np.asarray(data.origins)).tolist() == [10, 300]
    assert "row window: 310 rows dated from 2025-03-30 to 2025-04-29 in 'day'" in capsys.readouterr().out


def test_without_the_flags_every_row_reads_and_the_date_column_is_handled_as_before(tmp_path):
    root = sixty_days(tmp_path / "data")
    data = split_py.read_and_cut(split_py.parse_args(split_args(root))).data
    assert len(data.frame) == DAYS * PER_DAY and data.row_window is None
    assert data.categorical == ("day", "colour")                     # text of 60 values: a category, as always
    assert split_py.manifest_of(split_py.read_and_cut(split_py.parse_args(split_args(root))))["row_window"] is None


@pytest.mark.parametrize("given, message", [
    (["--window-column", "day"], "--window-column needs --window-days"),
    (["--window-days", "30"], "--window-days needs --window-column"),
    (["--window-column", "label", "--window-days", "30"], "--window-column 'label' is the target"),
    (["--window-column", "day", "--window-days", "0"], "argument --window-days: must be at least 1, not 0"),
])
def test_the_flags_go_together(given, message, tmp_path, capsys):
    root = tmp_path / "data"
    for parse, argv in ((split_py.parse_args, split_args(root, *given)),
                        (train_py.parse_args, train_args(root, *given))):
        with pytest.raises(SystemExit) as exited:
            parse(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert message in err


def _both_fail(root: Path, given: tuple[str, ...], capsys) -> str:
    """split.py's and train.py's error line, which must be the same; each leaves error.json."""
    lines = []
    for main, argv, out in ((split_py.main, split_args(root, *given), root.parent / "out" / "holdout"),
                            (train_py.main, train_args(root, *given), root.parent / "trained")):
        assert main(argv) == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert read_json(out / "error.json")["message"] == error.removeprefix("error: ")
        lines.append(error)
    assert lines[0] == lines[1]
    return lines[0]


def test_a_missing_column_names_the_file_and_the_columns(tmp_path, capsys):
    root = sixty_days(tmp_path / "data")
    error = _both_fail(root, ("--window-column", "Day", "--window-days", "30"), capsys)
    assert error == (f"error: {root / 'part-0.csv'}: column 'Day' (--window-column) is missing (did you mean "
                     f"'day'?); the columns are: day, x, colour, label")


def test_values_that_are_not_dates_are_refused_naming_their_file(tmp_path, capsys):
    def spoil(frame):
        frame.loc[[450, 451, 460], "day"] = ["soon", "soon", "2025-13-45"]
        return frame
    root = sixty_days(tmp_path / "data", change=spoil)
    error = _both_fail(root, WINDOW, capsys)
    assert error.startswith(f"error: {root / 'part-1.csv'}: column 'day' (--window-column) has 3 values that are "
                            f"not dates ('soon', '2025-13-45'); ")


def test_a_column_of_numbers_is_not_taken_for_dates(tmp_path, capsys):
    root = sixty_days(tmp_path / "data", change=lambda f: f.assign(day=np.repeat(np.arange(DAYS), PER_DAY)))
    error = _both_fail(root, WINDOW, capsys)
    assert error.startswith(f"error: {root / 'part-0.csv'}: column 'day' (--window-column) holds numbers (e.g. 0), "
                            "not dates")


def test_too_few_rows_in_the_window_is_the_min_rows_error(tmp_path, capsys):
    root = sixty_days(tmp_path / "data")
    error = _both_fail(root, ("--window-column", "day", "--window-days", "3"), capsys)   # 4 days: 40 rows
    assert error == (f"error: {root} (2 files: part-0.csv, part-1.csv): only 40 labelled rows dated within the last "
                     f"3 days of 'day' (--window-days); at least 50 are needed (--min-rows)")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_undated_rows_are_dropped_with_a_note_and_zoned_dates_compare_in_utc(kind, tmp_path):
    """Dates in Amsterdam, across the change to summer time: text with two offsets (CSV), or a Parquet column
    with its time zone."""
    def zoned(frame):
        frame["day"] = pd.to_datetime(frame["day"]).dt.tz_localize("Europe/Amsterdam")
        frame.loc[[598, 599], "day"] = pd.NaT
        return frame
    root = sixty_days(tmp_path / "data", files=1, change=zoned)
    if kind == "parquet":
        frame = pd.read_csv(root / "part-0.csv")
        frame["day"] = pd.to_datetime(frame["day"], utc=True).dt.tz_convert("Europe/Amsterdam")
        frame.to_parquet(root / "part-0.parquet")
        (root / "part-0.csv").unlink()
    data = split_py.read_and_cut(split_py.parse_args(split_args(root, *WINDOW))).data
    # the latest date is 2025-04-29 00:00 in Amsterdam: 2025-04-28 22:00 UTC; 2025-03-30 00:00 there (winter
    # time, 2025-03-29 23:00 UTC) is in the window, and every day after it
    assert data.row_window == {"column": "day", "days": 30, "from": "2025-03-29T22:00:00",
                               "to": "2025-04-28T22:00:00", "rows_kept": 308, "rows_dropped": 292}
    assert "column 'day': 2 rows without a date, outside the row window (--window-column), dropped" in data.notes


def test_train_py_trains_on_the_rows_split_py_cuts_and_both_record_the_window(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = sixty_days(tmp_path / "data")
    assert split_py.main(split_args(root, *WINDOW)) == 0
    assert train_py.main(train_args(root, *WINDOW)) == 0
    doc = read_json(tmp_path / "trained" / "metrics.json")
    manifest = read_json(tmp_path / "out" / "holdout" / "split.json")
    assert doc["row_window"] == manifest["row_window"] == {
        "column": "day", "days": 30, "from": "2025-03-30", "to": "2025-04-29", "rows_kept": 310, "rows_dropped": 290}
    assert doc["rows"] == manifest["rows"] == {"train": 248, "holdout": 62, "total": 310, "unlabelled_dropped": 0}
    assert doc["features"] == manifest["features"]
    assert doc["features"]["numeric"] == ["x"] and doc["features"]["categorical"] == ["colour"]
    held = pd.read_parquet(tmp_path / "trained" / "model" / "reference" / "holdout.parquet")
    written = pd.read_csv(tmp_path / "out" / "holdout" / "holdout.csv")
    assert "day" not in held.columns and "day" in written.columns     # the team's rows keep every column
    pd.testing.assert_frame_equal(held.drop(columns=["prediction"]), written[list(held.columns[:-1])],
                                  check_exact=False, rtol=1e-12)
    # evaluate.py reads the window back with split.py's rows: the date column is not a feature there either
    back = split_py.read_split(tmp_path / "out" / "holdout", tmp_path / "out" / "train", "label", "classification")
    assert back.data.row_window == manifest["row_window"]
    assert (back.data.numeric, back.data.categorical) == (("x",), ("colour",))
