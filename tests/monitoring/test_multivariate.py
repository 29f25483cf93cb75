"""Multivariate drift: the PCA reconstruction error and the domain classifier, on real and correlated tables."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from monitoring.drift import Thresholds
from monitoring.multivariate import multivariate_drift
from training.multivariate_profile import error_band, multivariate_profile
from training.reference_profile import build_profile


def spec_of(reference: pd.DataFrame, seed: int = 0) -> dict:
    spec = multivariate_profile(reference, build_profile(reference)["features"], seed=seed)
    assert spec is not None
    return spec


def correlated(n: int, seed: int, columns: int = 30) -> pd.DataFrame:
    """Features sharing one factor (pairwise correlation 0.7) and a category that follows it."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(n, 1))
    x = np.sqrt(0.7) * factor + np.sqrt(0.3) * rng.normal(size=(n, columns))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(columns)])
    frame["site"] = np.where(factor[:, 0] + rng.normal(size=n) > 0, "north", "south")
    return frame


def test_the_profile_is_compact_json_and_refuses_what_it_cannot_judge():
    reference = correlated(3000, 1)
    spec = spec_of(reference)
    text = json.dumps(spec, allow_nan=False)
    assert len(text) < 1_500_000 and spec["sample_rows"] == 2000
    assert 0.65 <= spec["pca"]["variance_explained"] < 0.9
    assert {c["feature"] for c in spec["columns"]} == set(reference.columns)
    features = build_profile(reference)["features"]
    assert multivariate_profile(reference.iloc[:40], features, seed=0) is None          # too few rows
    assert multivariate_profile(reference[["f0"]], {"f0": features["f0"]}, seed=0) is None   # one column
    low, high = error_band(spec["error"], 200)
    assert low < spec["error"]["mean"] < high
    assert error_band(spec["error"], 5000)[1] < high          # a bigger window's mean is known more precisely


def test_random_halves_of_a_real_table_raise_no_multivariate_drift():
    data = load_breast_cancer(as_frame=True).data
    alarms = 0
    for seed in range(12):
        order = np.random.default_rng(seed).permutation(len(data))
        reference, current = data.iloc[order[:284]], data.iloc[order[284:]]
        alarms += multivariate_drift(spec_of(reference, seed), current, Thresholds())["drifted"]
    assert alarms <= 1


def test_a_broken_correlation_with_unchanged_marginals_is_detected_and_named():
    spec = spec_of(correlated(20_000, 2))
    window = correlated(2000, 3)
    assert not multivariate_drift(spec, window, Thresholds())["drifted"]
    broken = window.assign(f7=np.random.default_rng(4).permutation(window["f7"].to_numpy()))
    assert sorted(broken["f7"]) == sorted(window["f7"])          # the same values: no univariate test sees it
    result = multivariate_drift(spec, broken, Thresholds())
    assert result["drifted"] and result["pca"]["drifted"] and result["domain_classifier"]["drifted"]
    assert result["domain_classifier"]["top_features"][0] == "f7"
    assert "PCA reconstruction error" in result["reason"]


def test_a_window_of_floats_matches_categories_profiled_from_integers():
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "level": rng.choice([0, 1, 2], 3000)})
    reference["y"] = reference["x"] + reference["level"] + rng.normal(0, 0.3, 3000)
    spec = spec_of(reference)
    window = reference.sample(1500, random_state=6).astype({"level": float})
    assert not multivariate_drift(spec, window, Thresholds())["drifted"]


def test_fast_at_5000_rows_by_30_columns():
    spec = spec_of(correlated(20_000, 7))
    window = correlated(5000, 8)
    multivariate_drift(spec, window.iloc[:100], Thresholds())          # imports
    started = time.perf_counter()
    multivariate_drift(spec, window, Thresholds())
    assert time.perf_counter() - started < 2.0       # ~0.3 s on two cores; slack for a loaded machine


@pytest.mark.parametrize("rows", [None, pd.DataFrame({"f0": [1.0]})])
def test_no_rows_is_no_verdict(rows):
    result = multivariate_drift(spec_of(correlated(500, 9, columns=3)), rows, Thresholds())
    assert result["drifted"] is False and "not tested" in result["reason"]


def test_the_classifier_test_is_scipys_mann_whitney():
    from scipy.stats import mannwhitneyu

    from monitoring.multivariate import mann_whitney_greater
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.05, 0.2):
        a, b = np.round(rng.random(300) + shift, 1), np.round(rng.random(280), 1)     # many ties
        expected = mannwhitneyu(a, b, alternative="greater", method="asymptotic")
        auc, p = mann_whitney_greater(a, b)
        assert auc == pytest.approx(expected.statistic / (300 * 280)) and p == pytest.approx(expected.pvalue)
