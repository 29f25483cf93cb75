"""The histories `mlops simulate` replays: generated streams with known drifts, and folders of dated files."""
from __future__ import annotations

import datetime
import gzip
import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression

from mlops.simulation.histories import generate, parse_drifts
from mlops.simulation.history_folder import date_in, read_folder
from mlops.simulation.outcome import DriftPoint


def rows(history, first: int, end: int) -> pd.DataFrame:
    return pd.concat(history.days[first:end], ignore_index=True)


def fit(history, first: int, end: int) -> LogisticRegression:
    frame = rows(history, first, end)
    return LogisticRegression(max_iter=1000).fit(frame.drop(columns=history.target), frame[history.target])


def accuracy(model, history, first: int, end: int) -> float:
    frame = rows(history, first, end)
    return float(model.score(frame.drop(columns=history.target), frame[history.target]))


# --- generated histories ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sea", "hyperplane"])
def test_the_same_arguments_give_the_same_frames_and_another_seed_others(kind):
    a = generate(kind, days=30, seed=3, drifts="sudden@10,gradual@15-25", rows_per_day=200)
    b = generate(kind, days=30, seed=3, drifts="sudden@10,gradual@15-25", rows_per_day=200)
    c = generate(kind, days=30, seed=4, drifts="sudden@10,gradual@15-25", rows_per_day=200)
    assert len(a.days) == 30 and all(len(day) == 200 for day in a.days)
    for x, y in zip(a.days, b.days):
        pd.testing.assert_frame_equal(x, y)
    assert a.drifts == b.drifts and a.description == b.description
    assert not a.days[0].equals(c.days[0])


def test_a_sea_history_has_its_shape_and_drift_points():
    history = generate("sea", seed=7)
    assert (history.name, history.target, history.task, history.start) == (
        "sea", "label", "classification", datetime.date(2026, 1, 1))
    assert len(history.days) == 365
    assert list(history.days[0].columns) == ["x1", "x2", "x3", "label"]
    assert history.days[0]["label"].dtype == np.int64
    assert set(history.days[0]["label"]) == {0, 1}
    assert [(d.day, d.ends, d.kind) for d in history.drifts] == [(120, 121, "sudden"), (240, 270, "gradual")]
    assert history.drifts[0].what.startswith("concept: x1 + x2 <= 9 (was 8); inputs: x1 ~ U[-1.5, 8.5]")
    assert history.drifts[1].what.startswith("concept: x1 + x2 <= 7 (was 9)")
    assert history.description == ("SEA concepts, 365 days of 1,000 rows, 5% label noise, sudden drift at day 120, "
                                   "gradual drift days 240-270, seed 7")


def test_a_year_generates_quickly():
    began = time.perf_counter()
    generate("hyperplane", seed=1, seasonal=True)
    assert time.perf_counter() - began < 2


@pytest.mark.parametrize("kind", ["sea", "hyperplane"])
def test_a_model_fit_before_a_sudden_drift_loses_accuracy_after_it(kind):
    history = generate(kind, days=60, seed=5, drifts="sudden@30", rows_per_day=500)
    model = fit(history, 20, 30)
    before, after = accuracy(model, history, 25, 30), accuracy(model, history, 30, 35)
    assert before > 0.88
    assert before - after > 0.05
    assert accuracy(fit(history, 35, 45), history, 45, 55) > 0.88      # the new concept is learnable again


def test_a_gradual_drift_wears_the_old_model_down_day_by_day():
    history = generate("sea", days=90, seed=11, drifts="gradual@30-60", rows_per_day=1000)
    model = fit(history, 20, 30)
    early, middle, late = (accuracy(model, history, d, d + 5) for d in (30, 43, 55))
    settled = accuracy(model, history, 60, 70)
    assert early > middle > late
    assert early - settled > 0.05                # x1 + x2 <= 9 (x1 shifted) after <= 8: about 9 points
    assert abs(late - settled) < 0.05


def test_the_hyperplane_turns_gradually():
    history = generate("hyperplane", days=80, seed=2, drifts="gradual@20-60", rows_per_day=1000)
    model = fit(history, 10, 20)
    quarters = [accuracy(model, history, d, d + 5) for d in (20, 30, 40, 55)]
    assert quarters == sorted(quarters, reverse=True)
    assert quarters[0] - quarters[-1] > 0.05


@pytest.mark.parametrize("kind, feature", [("sea", "x1"), ("hyperplane", "f0")])
def test_each_drift_shifts_the_first_feature_so_a_ks_test_sees_it(kind, feature):
    history = generate(kind, seed=9)
    sudden, gradual = history.drifts
    assert ks_2samp(history.days[sudden.day - 1][feature], history.days[sudden.day][feature]).pvalue < 0.01
    assert ks_2samp(history.days[gradual.day - 1][feature], history.days[gradual.ends][feature]).pvalue < 0.01
    # without a drift, two days look alike
    assert ks_2samp(history.days[10][feature], history.days[11][feature]).pvalue > 0.01
    for other in history.days[0].columns.drop([feature, "label"]):
        assert ks_2samp(history.days[sudden.day - 1][other], history.days[sudden.day][other]).pvalue > 0.001


def test_seasonality_moves_a_mean_but_not_the_concept():
    history = generate("sea", days=200, seed=4, drifts="none", seasonal=True)
    assert history.drifts == ()
    assert "seasonal, not a drift to recover from" in history.description
    sd = 10 / np.sqrt(12)
    winter, spring = history.days[0]["x2"].mean(), history.days[91]["x2"].mean()   # sin 0 and sin ~ 1
    assert 0.35 * sd < spring - winter < 0.65 * sd
    assert ks_2samp(history.days[0]["x2"], history.days[91]["x2"]).pvalue < 0.01
    model = fit(history, 0, 10)
    assert abs(accuracy(model, history, 0, 10) - accuracy(model, history, 88, 95)) < 0.03
    plain = generate("sea", days=200, seed=4, drifts="none")
    assert abs(plain.days[91]["x2"].mean() - 5) < 0.3


def test_seasonality_follows_the_calendar():
    history = generate("hyperplane", days=5, seed=4, drifts="", seasonal=True, start=datetime.date(2026, 4, 1),
                       rows_per_day=4000)
    assert history.days[0]["f1"].mean() > 0.5 + 0.1        # 1 April: near the sine's top


@pytest.mark.parametrize("spec, message", [
    ("sudden@400", "drift 'sudden@400': day 400 is outside 1-364"),
    ("sudden@0", "day 0 is outside 1-364"),
    ("gradual@300-400", "days 300-400 are outside 1-365"),
    ("gradual@50-40", "drift 'gradual@50-40': it ends (40) before it starts (50)"),
    ("gradual@50-50", "it ends (50) before it starts (50)"),
    ("gradual@100-150,sudden@120", "drifts 'gradual@100-150' and 'sudden@120' overlap"),
    ("sudden@10,sudden@10", "overlap"),
    ("abrupt@10", "drift 'abrupt@10': unknown kind 'abrupt'"),
    ("sudden@x", "drift 'sudden@x': a sudden drift takes one day"),
    ("gradual@10", "a gradual drift takes its first day and the day it ends"),
    ("120", "drift '120': expected sudden@DAY or gradual@FIRST-END"),
    ("sudden@10,,sudden@20", "an empty entry between commas"),
])
def test_bad_drift_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate("sea", days=365, drifts=spec, rows_per_day=10)


def test_drift_specs_parse_in_any_order():
    assert parse_drifts(" Gradual@20-30 , sudden@5 ", 40) == (DriftPoint(5, 6, "sudden"), DriftPoint(20, 30, "gradual"))
    assert parse_drifts("none", 40) == parse_drifts("", 40) == ()
    assert parse_drifts("sudden@10,gradual@11-20", 40)[1].day == 11        # adjacent is fine


def test_bad_generator_arguments_raise():
    with pytest.raises(ValueError, match="history kind 'stagger'"):
        generate("stagger")
    with pytest.raises(ValueError, match="noise"):
        generate("sea", noise=0.9)


# --- folders of dated files ------------------------------------------------------------------------------------

def day_frame(n: int, seed: int, label_float: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.random(n), "b": rng.integers(0, 5, n)})
    frame["y"] = rng.random(n) * 100 if label_float else rng.integers(0, 2, n)
    return frame


def test_a_folder_of_every_form_reads_as_days(tmp_path):
    frames = {d: day_frame(10, d) for d in range(1, 8)}
    frames[1].to_csv(tmp_path / "2026-01-01.csv", index=False)
    frames[2].to_parquet(tmp_path / "2026-01-02.parquet")
    frames[3].to_json(tmp_path / "sales_20260103.jsonl", orient="records", lines=True)
    with gzip.open(tmp_path / "2026-01-04.csv.gz", "wt") as f:
        frames[4].to_csv(f, index=False)
    (tmp_path / "date=2026-01-05").mkdir()
    frames[5].iloc[:4].to_csv(tmp_path / "date=2026-01-05" / "part-0.csv", index=False)
    frames[5].iloc[4:].to_parquet(tmp_path / "date=2026-01-05" / "part-1.parquet")
    (tmp_path / "date=2026-01-05" / "_SUCCESS").write_text("")
    (tmp_path / "2026-01-06").mkdir()
    (tmp_path / "2026-01-06" / "rows.json").write_text(json.dumps(frames[6].to_dict(orient="records")))
    # 2026-01-07 missing; two files for 2026-01-08
    frames[7].iloc[:3].to_csv(tmp_path / "2026-01-08-morning.csv", index=False)
    frames[7].iloc[3:].to_csv(tmp_path / "2026-01-08-evening.csv", index=False)
    (tmp_path / "README.md").write_text("not a day")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")

    history = read_folder(tmp_path, "y")
    assert history.start == datetime.date(2026, 1, 1) and len(history.days) == 8
    assert history.task == "classification" and history.target == "y" and history.drifts == ()
    for index, d in enumerate(range(1, 7)):
        got = history.days[index]
        assert list(got.columns) == ["a", "b", "y"]
        np.testing.assert_allclose(got["a"].to_numpy(), frames[d]["a"].to_numpy())
        assert got["y"].tolist() == frames[d]["y"].tolist()
    assert history.days[6].empty and list(history.days[6].columns) == ["a", "b", "y"]
    assert sorted(history.days[7]["a"]) == sorted(frames[7]["a"])         # evening then morning: name order
    assert history.description == (f"8 days of data from {tmp_path.name} (70 rows, 1 of them without rows), "
                                   f"2026-01-01 to 2026-01-08")


def test_empty_files_are_empty_days_and_a_float_target_is_regression(tmp_path):
    day_frame(30, 1, label_float=True).to_csv(tmp_path / "2026-02-01.csv", index=False)
    (tmp_path / "2026-02-02.csv").write_text("")
    day_frame(0, 2, label_float=True).to_csv(tmp_path / "2026-02-03.csv", index=False)     # header only
    (tmp_path / "2026-02-04.jsonl").write_text("\n")
    day_frame(30, 3, label_float=True).to_json(tmp_path / "2026-02-05.json", orient="records", lines=True)
    history = read_folder(tmp_path, "y")
    assert [len(day) for day in history.days] == [30, 0, 0, 0, 30]
    assert all(list(day.columns) == ["a", "b", "y"] for day in history.days)
    assert history.task == "regression"
    assert read_folder(tmp_path, "y", task="classification").task == "classification"


def test_a_folder_without_dated_files_names_what_is_there(tmp_path):
    (tmp_path / "train.csv").write_text("a,y\n1,0\n")
    (tmp_path / "notes").mkdir()
    with pytest.raises(ValueError, match=r"no dated data files found .*there: notes/, train.csv"):
        read_folder(tmp_path, "y")
    with pytest.raises(ValueError, match="not a folder"):
        read_folder(tmp_path / "train.csv", "y")


def test_a_file_without_the_target_names_the_file_and_its_columns(tmp_path):
    day_frame(5, 1).to_csv(tmp_path / "2026-01-01.csv", index=False)
    day_frame(5, 2).rename(columns={"y": "label"}).to_csv(tmp_path / "2026-01-02.csv", index=False)
    with pytest.raises(ValueError, match=r"2026-01-02\.csv: no target column 'y'; its columns: a, b, label"):
        read_folder(tmp_path, "y")


def test_unreadable_and_unknown_files_are_named(tmp_path):
    (tmp_path / "2026-01-01.parquet").write_text("a,y\n1,0\n")
    with pytest.raises(ValueError, match=r"2026-01-01\.parquet: cannot be read as Parquet"):
        read_folder(tmp_path, "y")
    (tmp_path / "2026-01-01.parquet").unlink()
    (tmp_path / "2026-01-01.json").write_text('[1, 2]')
    with pytest.raises(ValueError, match=r"2026-01-01\.json: cannot be read as JSON \(a JSON array, but not of"):
        read_folder(tmp_path, "y")
    (tmp_path / "2026-01-01.json").unlink()
    (tmp_path / "2026-01-01.xlsx").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"2026-01-01\.xlsx: not a data file this can read"):
        read_folder(tmp_path, "y")


def test_a_folder_of_empty_files_has_nothing_to_replay(tmp_path):
    (tmp_path / "2026-01-01.csv").write_text("")
    with pytest.raises(ValueError, match="every dated file is empty"):
        read_folder(tmp_path, "y")


def test_dates_in_names():
    assert date_in("2026-01-05.csv") == datetime.date(2026, 1, 5)
    assert date_in("date=2026-01-05") == datetime.date(2026, 1, 5)
    assert date_in("drop_20260105_1200.parquet") == datetime.date(2026, 1, 5)
    assert date_in("v2_20261399_then_2026-02-03.csv") == datetime.date(2026, 2, 3)     # not a real date: the next
    assert date_in("id_1202601051.csv") is None                                        # within a longer number
    assert date_in("train.csv") is None
