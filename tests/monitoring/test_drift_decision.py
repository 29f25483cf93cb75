"""The drift decision: per-feature tests corrected for the number of features (Benjamini-Hochberg), effect
sizes that must also exceed their thresholds, a dataset-level rule stated in one sentence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer

from monitoring import drift
from monitoring.window import CurrentWindow, read_parquet
from training import reference_profile
from training.reference_profile import build_profile


@pytest.fixture(autouse=True)
def univariate_only(monkeypatch):
    """The per-feature rule alone (and fast): the multivariate checks have their own tests."""
    monkeypatch.setattr(reference_profile, "_multivariate_profile", lambda *args: None)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame.drop(columns="target")


def report_of(profile: dict, current: pd.DataFrame, thresholds: drift.Thresholds | None = None):
    return drift.compare(profile, CurrentWindow.for_profile(profile).update(current), thresholds or drift.Thresholds())


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005, 0.5])
    # m = 5 tests (the NaN is none); sorted 0.005, 0.01, 0.03, 0.04, 0.5 times m / rank:
    # 0.025, 0.025, 0.05, 0.05, 0.5; then the running minimum from the top: unchanged here
    expected = [0.025, 0.05, 0.05, np.nan, 0.025, 0.5]
    assert np.allclose(drift.benjamini_hochberg(p), expected, equal_nan=True)
    # a later smaller ratio lowers the earlier ones: 0.02 * 3 / 2 = 0.03 > 0.021 * 3 / 3 = 0.021
    assert np.allclose(drift.benjamini_hochberg([0.001, 0.02, 0.021]), [0.003, 0.021, 0.021])
    assert np.allclose(drift.benjamini_hochberg([0.9, 0.8]), [0.9, 0.9])
    assert drift.benjamini_hochberg([]).shape == (0,)


def test_random_halves_of_a_real_table_raise_no_drift(cancer):
    """Uncorrected, 30 features tested at 0.01 alarmed on 12 of 100 such splits; corrected, at most fdr."""
    rng = np.random.default_rng(14)
    alarms = 0
    for _ in range(50):
        order = rng.permutation(len(cancer))
        half = len(cancer) // 2
        profile = build_profile(cancer.iloc[order[:half]].reset_index(drop=True))
        alarms += report_of(profile, cancer.iloc[order[half:]].reset_index(drop=True)).drifted
    assert alarms <= 1


def test_a_half_sigma_shift_is_detected_at_2000_rows(cancer):
    profile = build_profile(cancer)
    rng = np.random.default_rng(3)
    current = cancer.iloc[rng.integers(0, len(cancer), 2000)].reset_index(drop=True)
    current["mean radius"] += 0.5 * cancer["mean radius"].std()
    report = report_of(profile, current)
    assert report.drifted and report.drifted_features == ["mean radius"]
    radius = report.features["mean radius"]
    assert radius.pvalue_adjusted < 0.01 and radius.flags["ks_pvalue"] and radius.flags["normalized_wasserstein"]
    assert radius.pvalue_adjusted >= radius.metrics["ks_pvalue"]


def test_a_flag_going_from_50_50_to_80_20_is_detected(tmp_path):
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"flag": rng.integers(0, 2, 5000), "x": rng.normal(size=5000)})
    profile = build_profile(reference)
    spec = profile["features"]["flag"]
    assert spec["type"] == "categorical" and spec["numeric_categories"] and set(spec["frequencies"]) == {"0", "1"}
    current = pd.DataFrame({"flag": (rng.random(1000) < 0.8).astype(np.int64), "x": rng.normal(size=1000)})
    pq.write_table(pa.Table.from_pandas(current), tmp_path / "w.parquet")
    report = drift.compare(profile, read_parquet(CurrentWindow.for_profile(profile), tmp_path / "w.parquet"))
    assert report.drifted_features == ["flag"]
    summary = report.features["flag"].summary
    assert summary["reference"]["mean"] == pytest.approx(reference["flag"].mean())
    assert summary["current"]["mean"] == pytest.approx(current["flag"].mean())
    assert summary["current"]["distinct"] == 2 and summary["reference"]["distinct"] == 2


def test_a_huge_window_does_not_alarm_on_a_trivial_shift():
    rng = np.random.default_rng(5)
    profile = build_profile(pd.DataFrame({"x": rng.normal(size=100_000)}))
    current = pd.DataFrame({"x": rng.normal(0.01, 1.0, 1_000_000)})
    report = report_of(profile, current)
    assert not report.drifted
    assert report.features["x"].metrics["normalized_wasserstein"] < 0.1


def test_the_decision_states_its_rule(cancer):
    profile = build_profile(cancer)
    rng = np.random.default_rng(6)
    current = cancer.iloc[rng.integers(0, len(cancer), 3000)].reset_index(drop=True)
    for name in ("mean radius", "worst area"):
        current[name] += cancer[name].std()
    report = report_of(profile, current)
    decision = report.decision
    assert decision["drifted"] and report.drifted
    assert decision["rule"] == ("drift: 2 of 30 features drifted (BH-adjusted p < 0.01 and a distance over its "
                                "threshold)")
    assert decision["share_drifted"] == pytest.approx(2 / 30) and decision["features_tested"] == 30
    assert decision["drifted_features"] == ["mean radius", "worst area"] and not decision["multivariate_drifted"]
    assert report.to_dict()["decision"] == decision and report.to_dict()["multivariate"] is None

    lenient = report_of(profile, current, drift.Thresholds(drift_share=0.1))
    assert not lenient.drifted and lenient.drifted_features == ["mean radius", "worst area"]
    assert lenient.decision["rule"] == ("no drift: 2 of 30 features drifted (BH-adjusted p < 0.01 and a distance "
                                        "over its threshold, 7% against more than 10% allowed)")

    lenient.multivariate = {"drifted": True, "reason": "domain classifier AUC 0.71 > 0.55"}
    assert lenient.drifted and lenient.decision["multivariate_drifted"]
    assert lenient.decision["rule"].startswith("drift: 2 of 30 features drifted")
    assert lenient.decision["rule"].endswith("; multivariate: drift (domain classifier AUC 0.71 > 0.55)")


def test_summary_statistics_and_true_bin_edges(cancer):
    profile = build_profile(cancer)
    current = cancer.copy()
    current.loc[:49, "mean area"] = np.nan
    f = report_of(profile, current).features["mean area"]
    edges = profile["features"]["mean area"]["histogram"]["edges"]
    assert f.edges == edges and len(f.edges) == len(f.bins) + 1
    assert f.summary["reference"] == {"mean": pytest.approx(cancer["mean area"].mean()),
                                      "std": pytest.approx(cancer["mean area"].std()), "missing": 0.0,
                                      "distinct": cancer["mean area"].nunique()}
    if hasattr(CurrentWindow.for_profile(profile).features["mean area"], "total"):   # the window's sums
        rest = current["mean area"].dropna()
        assert f.summary["current"]["mean"] == pytest.approx(rest.mean())
        assert f.summary["current"]["std"] == pytest.approx(rest.std())
    assert f.summary["current"]["missing"] == pytest.approx(50 / len(cancer))
