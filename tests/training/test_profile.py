"""The reference profile (training/reference_profile.py): what monitoring's drift engine reads."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from training.reference_profile import (
    MAX_RELATION_CLASSES,
    OTHER,
    assign_bins,
    build_profile,
    column_kind,
    feature_bins,
    histogram_counts,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 10_000
    df = pd.DataFrame({
        "x": rng.normal(50, 10, n),
        "count": rng.integers(0, 8, n),                      # ties: fewer distinct edges than bins
        "constant": np.full(n, 3.0),
        "empty": np.full(n, np.nan),
        "city": rng.choice([f"c{i:03d}" for i in range(80)], n),
        "flag": rng.choice([True, False], n),
        "label": rng.choice(["no", "yes"], n, p=[0.7, 0.3]),
    })
    df.loc[rng.choice(n, 500, replace=False), "x"] = np.nan
    df.loc[[0, 1], "x"] = [np.inf, -np.inf]
    df.loc[rng.choice(n, 1000, replace=False), "city"] = None
    return df


@pytest.fixture(scope="module")
def profile(frame) -> dict:
    return build_profile(frame, "label", bins=20)


def test_layout_is_versioned_and_json(profile, frame):
    assert profile["profile_version"] == 1 and profile["rows"] == len(frame) and profile["target"] == "label"
    assert set(profile["features"]) == {"x", "count", "constant", "empty", "city", "flag"}
    assert profile["dtypes"] == {"x": "float64", "count": "int64", "constant": "float64", "empty": "float64",
                                 "city": "str", "flag": "bool", "label": "str"}
    json.dumps(profile, allow_nan=False)                       # plain JSON, no NaN or numpy types


def test_numeric_bins_and_counts(profile, frame):
    x = profile["features"]["x"]
    finite = frame["x"].to_numpy()[np.isfinite(frame["x"].to_numpy())]
    assert x["type"] == "numeric"
    assert x["null_count"] == 500 and x["null_rate"] == pytest.approx(0.05)
    assert x["infinite_count"] == 2 and x["count"] == len(frame) - 500
    edges = np.array(x["quantiles"])
    assert len(edges) == 21 and np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(edges, np.quantile(finite, np.linspace(0, 1, 21)))
    assert x["histogram"]["edges"] == x["quantiles"]
    counts = x["histogram"]["counts"]
    assert len(counts) == 20 and sum(counts) == len(finite) == x["count"] - x["infinite_count"]
    assert max(counts) - min(counts) <= 2                     # quantile bins: equal mass
    np.testing.assert_array_equal(np.bincount(assign_bins(finite, edges), minlength=20), counts)
    assert (x["min"], x["max"]) == (finite.min(), finite.max())
    assert x["mean"] == pytest.approx(finite.mean()) and x["std"] == pytest.approx(finite.std(ddof=1))
    assert x["percentiles"]["p50"] == pytest.approx(np.median(finite))
    assert list(x["percentiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    sample = x["sample"]
    assert len(sample) == 5000 and sample == sorted(sample) and set(sample) <= set(finite.tolist())


def test_numeric_ties_constant_and_empty(profile, frame):
    count = profile["features"]["count"]
    assert count["quantiles"] == [float(v) for v in range(8)]        # deduplicated edges
    assert sum(count["histogram"]["counts"]) == len(frame)
    assert count["histogram"]["counts"][:3] == [int((frame["count"] == v).sum()) for v in (0, 1, 2)]
    constant = profile["features"]["constant"]          # one value: a category (<= LOW_CARDINALITY values)
    assert constant["type"] == "categorical" and constant["numeric_categories"]
    assert constant["frequencies"] == {"3.0": len(frame)} and constant["std"] == 0.0
    empty = profile["features"]["empty"]
    assert empty["null_rate"] == 1.0 and empty["quantiles"] == [] and empty["sample"] == []


def test_outer_bins_are_open_ended():
    edges = [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(assign_bins(np.array([-5.0, 0.0, 0.5, 1.0, 2.99, 3.0, 99.0]), edges),
                                  [0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(assign_bins(np.array([-1.0, 7.0]), [7.0]), [0, 0])
    values = np.array([-5.0, 0.0, 0.5, 1.0, 2.99, 3.0, 99.0])
    np.testing.assert_array_equal(histogram_counts(values, np.array(edges)),
                                  histogram_counts(np.sort(values), np.array(edges), assume_sorted=True))


def test_categorical_frequencies(profile, frame):
    city = profile["features"]["city"]
    assert city["type"] == "categorical" and city["cardinality"] == 80
    assert city["null_count"] == 1000 and city["null_rate"] == pytest.approx(0.1)
    frequencies = city["frequencies"]
    assert len(frequencies) == 51 and OTHER in frequencies             # top 50 + the rest
    assert sum(frequencies.values()) == city["count"] == len(frame) - 1000
    top = frame["city"].value_counts()
    assert min(v for k, v in frequencies.items() if k != OTHER) >= top.iloc[50]
    assert profile["features"]["flag"]["frequencies"].keys() == {"True", "False"}
    target = profile["target_profile"]
    assert target["frequencies"] == {k: int(v) for k, v in frame["label"].value_counts().items()}


def test_small_columns_keep_every_value_and_outputs_are_profiled():
    df = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0], "y": [0, 1] * 4})
    profile = build_profile(df, "y", outputs={"prediction": pd.Series([1, 1, 0, 1, 1, 1, 0, 1])})
    assert profile["features"]["a"]["sample"] == [1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert profile["target_profile"]["frequencies"] == {"0": 4, "1": 4}
    assert profile["outputs"]["prediction"]["frequencies"] == {"1": 6, "0": 2}
    assert build_profile(df, None)["target_profile"] is None


def test_target_by_feature_counts_each_class_per_bin(profile, frame):
    relation = profile["target_by_feature"]
    assert set(relation) == {"x", "count", "constant", "city", "flag"}          # "empty" has no bins
    assert all(r["classes"] == ["no", "yes"] for r in relation.values())
    x = profile["features"]["x"]
    finite = np.isfinite(frame["x"].to_numpy())
    bins = assign_bins(frame["x"].to_numpy()[finite], x["histogram"]["edges"])
    expected = pd.crosstab(bins, frame["label"].to_numpy()[finite]).reindex(range(20), fill_value=0)
    assert relation["x"]["counts"] == expected[["no", "yes"]].to_numpy().tolist()
    assert np.sum(relation["x"]["counts"], axis=1).tolist() == x["histogram"]["counts"]
    city = profile["features"]["city"]
    counts = np.array(relation["city"]["counts"])
    assert counts.shape == (len(city["frequencies"]), 2)                     # one row per key, __other__ included
    assert counts.sum(axis=1).tolist() == list(city["frequencies"].values())
    top = list(city["frequencies"])[0]
    assert counts[0].tolist() == [int(((frame["city"] == top) & (frame["label"] == c)).sum()) for c in ("no", "yes")]
    assert np.array(relation["constant"]["counts"]).shape == (1, 2)


def test_feature_bins_follow_the_profile():
    df = pd.DataFrame({"n": [float(v) for v in range(10)] * 10, "c": ["a", "b", "c", "d"] * 25, "y": [0, 1] * 50})
    profile = build_profile(df, "y", bins=2, top_k=2)
    assert profile["features"]["c"]["frequencies"] == {"a": 25, "b": 25, OTHER: 50}
    current = pd.DataFrame({"n": ["-5", "4.6", "x", None, "inf", 9], "c": ["b", "zz", None, "a", "c", 1]})
    assert feature_bins(current["n"], profile["features"]["n"]).tolist() == [0, 1, -1, -1, -1, 1]
    assert feature_bins(current["c"], profile["features"]["c"]).tolist() == [1, 2, -1, 0, 2, 2]
    no_other = build_profile(df, "y", top_k=10)["features"]["c"]
    assert feature_bins(current["c"], no_other).tolist() == [1, -1, -1, 0, 2, -1]


def test_target_by_feature_is_bounded_and_optional():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=500), "y": rng.integers(0, MAX_RELATION_CLASSES + 1, 500),
                       "z": rng.integers(0, 3, 500)})
    assert "target_by_feature" not in build_profile(df, "y")                # too many classes to judge
    assert "target_by_feature" not in build_profile(df, None)
    mixed = build_profile(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [1, "1", None, "2"]}), "y")
    relation = mixed["target_by_feature"]["a"]
    assert relation["classes"] == ["1", "2"] and np.sum(relation["counts"], axis=0).tolist() == [2, 1]
    assert set(mixed["target_profile"]["frequencies"]) == set(relation["classes"])   # 1 and "1" are one class
    json.dumps(build_profile(df, "z"), allow_nan=False)


def test_column_kinds():
    assert column_kind(pd.Series([1, 2])) == "numeric"
    assert column_kind(pd.Series([1.5, None])) == "numeric"
    assert column_kind(pd.Series([True, False])) == "categorical"
    assert column_kind(pd.Series(["a", None])) == "categorical"
    assert column_kind(pd.Series(["a", "b"], dtype="category")) == "categorical"
    assert column_kind(pd.Series([1, "a"], dtype=object)) == "categorical"
    assert column_kind(pd.Series(pd.to_datetime(["2024-01-01"]))) is None
    assert column_kind(pd.Series([[1], [2]])) is None


def test_a_million_rows_by_ten_columns():
    rng = np.random.default_rng(0)
    n = 1_000_000
    columns = {f"n{i}": rng.normal(i, 1 + i, n) for i in range(7)}
    columns.update({f"c{i}": pd.Series(rng.choice(list("abcdefghij"), n), dtype="str") for i in range(3)})
    df = pd.DataFrame(columns)
    started = time.perf_counter()
    profile = build_profile(df, None)
    elapsed = time.perf_counter() - started
    print(f"build_profile: 1M rows x 10 columns in {elapsed:.2f} s")
    assert sum(profile["features"]["n3"]["histogram"]["counts"]) == n
    assert sum(profile["features"]["c0"]["frequencies"].values()) == n
    df["y"] = rng.integers(0, 2, n)
    started = time.perf_counter()
    profile = build_profile(df, "y")
    elapsed = time.perf_counter() - started
    print(f"build_profile with a target: 1M rows x 10 columns in {elapsed:.2f} s")
    assert np.sum(profile["target_by_feature"]["n3"]["counts"]) == n
