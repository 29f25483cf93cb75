"""The drift engine: exact against scipy on the same data, within the documented bound where binned."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from monitoring import drift
from monitoring.window import CurrentWindow, read_csv, read_jsonl, read_parquet
from training.reference_profile import build_profile, histogram_counts, sorted_quantiles


def frame(n: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = shift or {}
    cols = {f"x{i}": rng.normal(0.0, 1.0 + i / 10, n) + shift.get(f"x{i}", 0.0) * (1.0 + i / 10) for i in range(7)}
    colors = np.array(["red", "green", "blue", "black"])
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    for i in range(3):
        w = weights if f"c{i}" not in shift else np.roll(weights, 1)
        cols[f"c{i}"] = colors[rng.choice(4, n, p=w)]
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return frame(50_000, 1)


@pytest.fixture(scope="module")
def profile(reference) -> dict:
    return build_profile(reference)


def window_of(profile, df, **kw) -> CurrentWindow:
    return CurrentWindow.for_profile(profile, **kw).update(df)


# ---- exactness against scipy ------------------------------------------------------------------------------

def test_ks_and_wasserstein_equal_scipy_on_the_samples(profile):
    current = frame(30_000, 2, {"x1": 0.3})
    window = window_of(profile, current)
    ref_sample = np.asarray(profile["features"]["x1"]["sample"])
    cur_sample = window.features["x1"].sample
    assert len(cur_sample) == 10_000
    result = drift.compare(profile, window).features["x1"]
    expected = stats.ks_2samp(ref_sample, cur_sample, method="asymp")
    assert result.metrics["ks_statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    en = len(ref_sample) * len(cur_sample) / (len(ref_sample) + len(cur_sample))
    limit = special.kolmogorov(np.sqrt(en) * expected.statistic)     # the Kolmogorov limit (module docstring)
    assert result.metrics["ks_pvalue"] == pytest.approx(limit, rel=1e-12, abs=1e-300)
    assert result.metrics["ks_pvalue"] >= expected.pvalue              # conservative next to scipy's asymp
    assert result.metrics["ks_statistic"] == pytest.approx(stats.ks_2samp(ref_sample, cur_sample).statistic, abs=1e-12)
    assert result.metrics["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref_sample, cur_sample), rel=1e-12)
    std = profile["features"]["x1"]["std"]
    assert result.metrics["normalized_wasserstein"] == pytest.approx(result.metrics["wasserstein"] / std)


def test_ks_pvalue_matches_scipy_on_small_unequal_samples():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=300), rng.normal(0.2, size=700)
    d, p = drift.ks_2samp(a, b)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(expected.statistic, rel=1e-12)
    assert expected.pvalue <= p <= 1.25 * expected.pvalue              # at en = 210 and p = 1e-5: the far tail


@pytest.mark.parametrize(("en", "bound"), [(40, 1.25), (182, 1.10), (1000, 1.04), (1667, 1.03)])
def test_ks_limit_is_conservative_by_at_most_the_documented_share(en, bound):
    """At p = 0.01 (module docstring); never below the one-sample exact distribution scipy's asymp uses."""
    for target in (0.05, 0.01, 1e-3, 1e-5):
        p = special.kolmogorov(np.sqrt(en) * stats.kstwo.isf(target, en))
        assert target <= p <= (target * bound if target >= 0.01 else 2 * target)


def test_js_and_psi_on_the_binned_counts(profile):
    current = frame(20_000, 3, {"x2": 0.5})
    window = window_of(profile, current)
    ref_counts = np.asarray(profile["features"]["x2"]["histogram"]["counts"], float)
    cur_counts = window.features["x2"].counts
    edges = profile["features"]["x2"]["histogram"]["edges"]
    assert np.array_equal(cur_counts, histogram_counts(current["x2"].to_numpy(), np.asarray(edges)))
    result = drift.compare(profile, window).features["x2"]
    assert result.metrics["jensen_shannon"] == pytest.approx(jensenshannon(ref_counts, cur_counts, base=2), rel=1e-12)
    p, q = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    assert result.metrics["psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-12)   # no empty bin here


def test_categorical_js_chi2_psi_equal_scipy(profile):
    current = frame(20_000, 4, {"c1": 1})
    result = drift.compare(profile, window_of(profile, current)).features["c1"]
    freqs = profile["features"]["c1"]["frequencies"]
    ref = np.array([freqs[k] for k in freqs], float)
    cur = current["c1"].value_counts().reindex(list(freqs)).to_numpy(float)
    chi2, p, dof, _ = stats.chi2_contingency(np.vstack([ref, cur]))
    assert result.metrics["chi2_statistic"] == pytest.approx(chi2, rel=1e-12)
    assert result.metrics["chi2_pvalue"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert result.metrics["chi2_dof"] == dof
    assert result.metrics["jensen_shannon"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)
    assert result.flags["jensen_shannon"] and result.drifted


def test_chi2_yates_correction_with_two_categories():
    table = np.array([[30.0, 70.0], [45.0, 55.0]])
    chi2, p, dof, _ = stats.chi2_contingency(table)
    assert drift.chi2_contingency(table[0], table[1]) == pytest.approx((chi2, p, dof), rel=1e-12)


def test_binned_metrics_within_the_documented_bound(reference):
    """20 quantile bins are a coarsening of 200: binned JS and PSI never exceed the finer values (data-
    processing inequality); the binned KS is below the full-data KS by at most the largest bin mass."""
    current = frame(40_000, 6, {"x3": 0.2})
    ref, cur = np.sort(reference["x3"].to_numpy()), current["x3"].to_numpy()
    coarse = sorted_quantiles(ref, np.linspace(0, 1, 21))
    fine = sorted_quantiles(ref, np.linspace(0, 1, 201))
    assert np.allclose(fine[::10], coarse)
    counts = [(histogram_counts(ref, e, assume_sorted=True), histogram_counts(cur, e)) for e in (coarse, fine)]
    (rc, cc), (rf, cf) = counts
    assert drift.jensen_shannon(rc, cc) <= drift.jensen_shannon(rf, cf) + 1e-12
    assert drift.psi(rc, cc, epsilon=0) <= drift.psi(rf, cf, epsilon=0) + 1e-12
    full_ks = stats.ks_2samp(ref, cur).statistic
    max_bin_mass = max((rc / rc.sum()).max(), (cc / cc.sum()).max())
    assert full_ks - max_bin_mass <= drift.binned_ks(rc, cc) <= full_ks + 1e-12


# ---- detection ------------------------------------------------------------------------------------------

def test_exactly_the_drifted_features_are_flagged(profile):
    current = frame(100_000, 7, {"x0": 0.25, "x4": -0.4, "c2": 1})
    report = drift.compare(profile, window_of(profile, current))
    assert report.drifted_features == ["x0", "x4", "c2"]
    assert report.quality_issues == []
    doc = json.loads(report.to_json())
    assert doc["drifted_features"] == ["x0", "x4", "c2"]
    assert doc["features"]["x0"]["flags"]["normalized_wasserstein"] is True
    assert doc["thresholds"]["normalized_wasserstein"] == 0.1


def test_an_unchanged_window_is_quiet(profile):
    report = drift.compare(profile, window_of(profile, frame(60_000, 8)))
    assert not report.drifted and report.drifted_features == []


def test_thresholds_are_configurable(profile):
    current = frame(60_000, 9, {"x5": 0.05})
    assert "x5" not in drift.compare(profile, window_of(profile, current)).drifted_features
    strict = drift.Thresholds(normalized_wasserstein=0.02, decisive_numeric=("normalized_wasserstein",),
                              require_significance=False)
    assert "x5" in drift.compare(profile, window_of(profile, current), strict).drifted_features


def test_small_windows_do_not_raise_drift_by_chance(profile):
    """Distances are biased upward on a few hundred rows; the significance test keeps them from deciding."""
    with_test = without = 0
    for seed in range(10, 20):
        current = window_of(profile, frame(200, seed))
        with_test += len(drift.compare(profile, current).drifted_features)
        without += len(drift.compare(profile, current, drift.Thresholds(require_significance=False)).drifted_features)
    assert with_test <= 2 and without >= 10       # of 200 features looked at over 10 windows of 200 rows


def test_prediction_drift_on_the_outputs():
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    prof = build_profile(ref, outputs={"prediction": pd.Series(rng.choice(["yes", "no"], 5000, p=[0.3, 0.7])),
                                       "score": pd.Series(rng.random(5000))})
    current = pd.DataFrame({"x": rng.normal(size=5000), "prediction": rng.choice(["yes", "no"], 5000, p=[0.6, 0.4]),
                            "score": rng.random(5000)})
    report = drift.compare(prof, window_of(prof, current))
    assert report.drifted_outputs == ["prediction"] and report.drifted_features == []


# ---- streaming and readers --------------------------------------------------------------------------------

def test_chunked_stream_equals_one_pass(profile, tmp_path):
    current = frame(25_000, 11, {"x6": 0.3})
    current.loc[::97, "x1"] = np.nan
    one = window_of(profile, current)
    path = tmp_path / "w.parquet"
    pq.write_table(pa.Table.from_pandas(current), path, row_group_size=3000)
    streamed = read_parquet(CurrentWindow.for_profile(profile), path, chunk_rows=1777)
    pieces = CurrentWindow.for_profile(profile)
    for start in range(0, len(current), 4096):
        pieces.update(current.iloc[start:start + 4096])
    for window in (streamed, pieces):
        assert window.rows == one.rows
        for name, acc in one.features.items():
            other = window.features[name]
            assert np.array_equal(other.counts, acc.counts) and other.nulls == acc.nulls and other.rows == acc.rows
            if hasattr(acc, "sample"):
                assert np.array_equal(other.sample, acc.sample)       # the sample does not depend on chunking
    assert same_report(drift.compare(profile, streamed), drift.compare(profile, one))


def test_csv_window(profile, tmp_path):
    current = frame(5000, 12).astype({"x0": object})
    current.loc[:99, "x0"] = "oops"
    current.to_csv(tmp_path / "w.csv", index=False)
    window = read_csv(CurrentWindow.for_profile(profile), tmp_path / "w.csv", chunk_bytes=64 << 10)
    assert window.rows == 5000 and window.features["x0"].type_errors == 100
    assert np.array_equal(window.features["c0"].counts, window_of(profile, frame(5000, 12)).features["c0"].counts)


def test_jsonl_records_window(profile, tmp_path):
    current = frame(3000, 13)
    lines = []
    for start in range(0, 3000, 250):
        rows = current.iloc[start:start + 250].to_dict(orient="records")
        lines.append(json.dumps({"specversion": "1.0", "id": f"r{start}", "data": rows}))
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    window = read_jsonl(CurrentWindow.for_profile(profile), tmp_path / "a.jsonl", chunk_rows=700)
    direct = window_of(profile, current)
    assert window.rows == 3000
    for name in direct.features:
        assert np.array_equal(window.features[name].counts, direct.features[name].counts)
    assert same_report(drift.compare(profile, window), drift.compare(profile, direct))


def same_report(a: drift.DriftReport, b: drift.DriftReport) -> bool:
    """Equal reports, but for the window's mean and std: float sums, equal to rounding for any chunking."""
    one, two = json.loads(a.to_json()), json.loads(b.to_json())
    for name, f in one["features"].items():
        x, y = f["summary"].pop("current"), two["features"][name]["summary"].pop("current")
        for key in x:
            assert x[key] == (pytest.approx(y[key], rel=1e-9) if isinstance(y[key], float) else y[key])
    return one == two


def test_data_quality_rates_on_crafted_data():
    ref = pd.DataFrame({"n": np.arange(100, dtype=float), "c": ["a", "b"] * 50})
    prof = build_profile(ref)
    current = pd.DataFrame({
        "n": [None] * 10 + ["bad"] * 5 + [-1.0, 200.0, float("inf")] + [50.0] * 82,
        "c": [None] * 20 + ["z"] * 10 + ["a"] * 70})
    rep = drift.compare(prof, window_of(prof, current))
    n, c = rep.features["n"], rep.features["c"]
    assert n.quality["null_rate"] == pytest.approx(0.10)
    assert n.quality["type_error_rate"] == pytest.approx(0.05)
    assert n.quality["out_of_range_rate"] == pytest.approx(0.03)
    assert n.quality_flags == {"null_rate": True, "type_error_rate": False, "out_of_range_rate": False}
    assert c.quality["null_rate"] == pytest.approx(0.20) and c.quality["out_of_range_rate"] == pytest.approx(0.10)
    assert c.quality_flags == {"null_rate": True, "type_error_rate": False, "out_of_range_rate": True}
    assert rep.quality_issues == ["n", "c"]
    assert c.metrics["chi2_dof"] == 2          # a, b, and the unseen "z" as __other__


def test_unseen_categories_go_to_other_and_count_against_the_reference_share():
    ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5})
    prof = build_profile(ref, top_k=2)
    assert prof["features"]["c"]["frequencies"] == {"a": 50, "b": 30, "__other__": 20}
    current = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 10 + ["zz"] * 10})
    result = drift.compare(prof, window_of(prof, current)).features["c"]
    assert result.quality["out_of_range_rate"] == pytest.approx(0.20)
    assert result.quality["reference_out_of_range_rate"] == pytest.approx(0.20)
    assert not result.quality_breached and result.metrics["jensen_shannon"] == pytest.approx(0.0)


def test_a_small_reference_expects_some_values_beyond_its_range():
    """A regressor's outputs profiled on a holdout of 70: about 2 / 71 of new predictions fall outside the
    range of 70 draws of the same distribution. That is no quality problem; a fifth of them is."""
    rng = np.random.default_rng(5)
    prof = build_profile(pd.DataFrame({"x": rng.normal(0, 1, 70)}))
    assert prof["features"]["x"]["count"] == 70
    same = drift.compare(prof, window_of(prof, pd.DataFrame({"x": rng.normal(0, 1, 2000)}))).features["x"]
    assert same.quality["reference_out_of_range_rate"] == pytest.approx(2 / 71)
    assert 0.0 < same.quality["out_of_range_rate"] < 0.08 and not same.quality_flags["out_of_range_rate"]
    wider = drift.compare(prof, window_of(prof, pd.DataFrame({"x": rng.normal(0, 2, 2000)}))).features["x"]
    assert wider.quality_flags["out_of_range_rate"]
