"""The canary judge: pass / fail / inconclusive on generated windows (seeded), its evidence, degenerate
inputs, and its statistics against scipy's."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from lifecycle.core import canary_stats
from lifecycle.core.canary_judge import Judgement, JudgePolicy, Window, judge


def window(name: str, rng, *, n: int = 1000, errors: int = 0, latency_ms: float = 3.0, sigma: float = 0.25,
           predictions=(), labelled=()) -> Window:
    """n requests with lognormal latencies around latency_ms (median)."""
    return Window(name, n, errors, tuple(rng.lognormal(math.log(latency_ms), sigma, n)), tuple(predictions),
                  tuple(labelled))


def labels(rng, n: int, p=(0.6, 0.4)) -> list[str]:
    return list(rng.choice(["cat", "dog"], n, p=list(p)))


def outcomes(j: Judgement) -> dict[str, str]:
    return {c.name: c.outcome for c in j.checks}


# ------------------------------------------------------------------------------------ the scenarios

def test_identical_good_deployments_pass():
    rng = np.random.default_rng(1)
    blue = window("blue", rng, errors=1, predictions=labels(rng, 1000))
    green = window("green", rng, errors=2, predictions=labels(rng, 1000))
    j = judge(blue, green)
    assert j.outcome == "pass", j.summary
    assert outcomes(j) == {"errors": "pass", "latency": "pass", "predictions": "pass", "accuracy": "skipped"}
    assert "green is no worse than blue over 1000 and 1000 requests" in j.summary


def test_canary_with_20_percent_server_errors_fails_on_errors_with_evidence():
    rng = np.random.default_rng(2)
    j = judge(window("blue", rng, n=500, errors=1), window("green", rng, n=500, errors=100))
    assert j.outcome == "fail"
    errors = j.check("errors")
    assert errors.outcome == "fail" and j.check("latency").outcome == "pass"
    ev = errors.evidence
    assert ev["canary"] == {"deployment": "green", "requests": 500, "server_errors": 100, "rate": 0.2}
    assert ev["baseline"]["rate"] == pytest.approx(0.002)
    assert ev["test"].startswith("two-proportion z-test") and ev["p_value"] < 1e-10 and ev["p_value_limit"] < 1e-10
    assert j.summary.startswith("fail: green is worse than blue. Errors:")
    assert "100 server errors in 500 requests (20.0%)" in j.summary


def test_20_percent_errors_over_60_requests_fail_even_against_a_perfect_baseline():
    rng = np.random.default_rng(3)
    j = judge(window("blue", rng, n=60), window("green", rng, n=60, errors=12))
    assert j.outcome == "fail" and j.check("errors").outcome == "fail"
    assert j.check("errors").evidence["p_value_limit"] < 0.01            # above the 5% ceiling, significantly


def test_canary_five_times_slower_fails_on_latency():
    rng = np.random.default_rng(4)
    j = judge(window("blue", rng, n=300, latency_ms=20, sigma=0.5),
              window("green", rng, n=300, latency_ms=100, sigma=0.5))
    assert j.outcome == "fail"
    latency = j.check("latency")
    assert latency.outcome == "fail" and j.check("errors").outcome == "pass"
    assert latency.evidence["p_value"] < 1e-10 and set(latency.evidence["breaches"]) == {"p50", "p95", "p99"}
    assert latency.evidence["canary"]["p95"] > 4 * latency.evidence["baseline"]["p95"]
    assert "p95 above its limit" in j.summary


def test_canary_slightly_slower_but_within_limits_passes():
    rng = np.random.default_rng(5)
    blue = window("blue", rng, n=2000, latency_ms=3.0, sigma=0.1)
    green = Window("green", 2000, 0, tuple(np.asarray(window("x", rng, n=2000, latency_ms=3.0, sigma=0.1)
                                                       .latencies_ms) + 0.3))
    j = judge(blue, green)
    assert j.outcome == "pass", j.summary
    latency = j.check("latency")
    assert latency.evidence["p_value"] < 0.01                           # really slower, but not by enough to matter
    assert latency.evidence["breaches"] == [] and "slower but within limits" in latency.detail
    strict = JudgePolicy(latency_ratio_p50=1.0, latency_ratio_p95=1.0, latency_slack_ms=0.0)   # no room: now it fails
    assert judge(blue, green, strict).check("latency").outcome == "fail"


def test_canary_predicting_one_class_fails_on_predictions():
    rng = np.random.default_rng(6)
    j = judge(window("blue", rng, n=400, predictions=labels(rng, 400)),
              window("green", rng, n=400, predictions=["cat"] * 400))
    assert j.outcome == "fail"
    predictions = j.check("predictions")
    assert predictions.outcome == "fail" and predictions.evidence["js_distance"] > 0.4
    assert predictions.evidence["chi2"]["p_value"] < 1e-10
    assert predictions.evidence["canary"]["distribution"] == {"cat": 1.0, "dog": 0.0}
    assert "'cat' 100%" in predictions.detail


def test_accuracy_collapse_fails_on_accuracy():
    rng = np.random.default_rng(7)
    truth_b, truth_g = labels(rng, 300), labels(rng, 300)
    good = [t if rng.random() < 0.9 else ("dog" if t == "cat" else "cat") for t in truth_b]
    guesses = labels(rng, 300)                      # same mix of labels, unrelated to the truth
    j = judge(window("blue", rng, n=300, predictions=good, labelled=zip(good, truth_b)),
              window("green", rng, n=300, predictions=guesses, labelled=zip(guesses, truth_g)))
    assert j.outcome == "fail"
    assert outcomes(j) == {"errors": "pass", "latency": "pass", "predictions": "pass", "accuracy": "fail"}
    ev = j.check("accuracy").evidence
    assert ev["baseline"]["accuracy"] > 0.85 and ev["canary"]["accuracy"] < 0.65 and ev["p_value"] < 1e-6


def test_a_prediction_shift_that_the_labels_show_to_be_right_passes():
    """A model retrained after the concept changed predicts differently, and better: not a reason to roll back."""
    rng = np.random.default_rng(17)
    truth = labels(rng, 300, p=(0.3, 0.7))                        # the new concept: mostly "dog" now
    old = [t if rng.random() < 0.5 else ("dog" if t == "cat" else "cat") for t in truth]   # a coin toss
    old = ["cat" if rng.random() < 0.8 else o for o in old]       # and still mostly predicting "cat"
    new = [t if rng.random() < 0.9 else ("dog" if t == "cat" else "cat") for t in truth]
    blue = window("blue", rng, n=300, predictions=old, labelled=zip(old, truth))
    green = window("green", rng, n=300, predictions=new, labelled=zip(new, truth))
    unlabelled = judge(window("blue", rng, n=300, predictions=old), window("green", rng, n=300, predictions=new))
    assert unlabelled.outcome == "fail" and outcomes(unlabelled)["predictions"] == "fail"
    j = judge(blue, green)
    assert j.outcome == "pass", j.summary
    assert outcomes(j)["accuracy"] == "pass" and "Not decisive" in j.check("predictions").detail
    assert "more accurate" in j.check("accuracy").detail and "a drop of -" not in j.check("accuracy").detail
    early = judge(blue, window("green", rng, n=300, predictions=new, labelled=list(zip(new, truth))[:10]))
    assert early.outcome == "inconclusive" and "waiting for 30 labelled" in early.check("predictions").detail
    # the first labels only, on both sides (they lag the requests): still waiting, not rolled back
    first = judge(window("blue", rng, n=300, predictions=old, labelled=list(zip(old, truth))[:5]),
                  window("green", rng, n=300, predictions=new, labelled=list(zip(new, truth))[:3]))
    assert first.outcome == "inconclusive" and "waiting for 30 labelled" in first.check("predictions").detail


def test_too_few_requests_is_inconclusive_and_says_how_many_are_missing():
    rng = np.random.default_rng(8)
    j = judge(window("blue", rng, n=400), window("green", rng, n=12))
    assert j.outcome == "inconclusive"
    assert "waiting for 38 more requests on green (12 of 50)" in j.summary
    assert j.check("errors").outcome == "inconclusive" and j.check("latency").outcome == "inconclusive"


def test_overwhelming_errors_fail_early_before_min_requests():
    rng = np.random.default_rng(9)
    j = judge(window("blue", rng, n=15), window("green", rng, n=15, errors=10))
    assert j.outcome == "fail" and j.check("errors").outcome == "fail"
    assert "10 server errors in 15 requests (66.7%)" in j.summary
    smaller = judge(window("blue", rng, n=15), window("green", rng, n=12, errors=8)).check("errors")
    assert smaller.outcome == "fail" and smaller.evidence["test"].startswith("Fisher's exact test")  # z invalid here


def test_no_predictions_skips_the_predictions_check():
    rng = np.random.default_rng(10)
    j = judge(window("blue", rng), window("green", rng))
    assert j.outcome == "pass"
    assert j.check("predictions").outcome == "skipped" and "none collected" in j.check("predictions").detail


def test_too_few_predictions_wait_rather_than_pass_unseen():
    rng = np.random.default_rng(12)
    j = judge(window("blue", rng, n=400, predictions=labels(rng, 400)),
              window("green", rng, n=400, predictions=labels(rng, 20)))
    assert j.outcome == "inconclusive" and j.check("predictions").outcome == "inconclusive"
    assert "20 from green" in j.check("predictions").detail


def test_judgement_round_trips_through_json():
    rng = np.random.default_rng(11)
    truth = labels(rng, 100)
    j = judge(window("blue", rng, n=100, predictions=truth, labelled=zip(truth, truth)),
              window("green", rng, n=100, errors=30, predictions=truth[::-1], labelled=zip(truth, truth)))
    wire = json.loads(json.dumps(j.to_json(), allow_nan=False))
    assert wire == j.to_json()
    assert Judgement.from_json(wire) == j
    assert [c["name"] for c in wire["checks"]] == ["errors", "latency", "predictions", "accuracy"]


def test_importing_or_running_the_judge_loads_neither_numpy_nor_scipy():
    code = ("import sys, lifecycle.core.canary_judge as j\n"
            "assert not {'numpy', 'scipy'} & set(sys.modules), 'imported at module import'\n"
            "w = j.Window('blue', 100, 1, tuple(float(i % 7) for i in range(100)), ('a', 'b') * 50)\n"
            "print(j.judge(w, w).outcome)\n"
            "r = j.Window('blue', 100, 1, (3.0,) * 100, tuple(i / 7 for i in range(100)), ((1.5, '2.5'),) * 100)\n"
            "print(j.judge(r, r, j.JudgePolicy(task='regression')).outcome)\n"
            "assert not {'numpy', 'scipy'} & set(sys.modules), 'imported by judge()'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pass", "pass"]


# ---------------------------------------------------------------------------- limits and significance

def test_error_rate_above_the_margin_but_not_yet_significant_waits():
    rng = np.random.default_rng(12)
    j = judge(window("blue", rng, n=50), window("green", rng, n=50, errors=2))     # 4% vs 0%: could be chance
    assert j.outcome == "inconclusive" and j.check("errors").outcome == "inconclusive"
    assert "not significant yet" in j.summary


def test_zero_errors_on_both_sides_pass_with_enough_requests():
    rng = np.random.default_rng(13)
    check = judge(window("blue", rng, n=50), window("green", rng, n=50)).check("errors")
    assert check.outcome == "pass" and check.evidence["p_value"] == 1.0


def test_accuracy_needs_enough_labels_on_both_sides():
    rng = np.random.default_rng(14)
    pairs = [("cat", "dog")] * 29
    j = judge(window("blue", rng, labelled=[("cat", "cat")] * 100), window("green", rng, labelled=pairs))
    assert j.check("accuracy").outcome == "skipped" and "need 30" in j.check("accuracy").detail


# -------------------------------------------------------------------------------------- degenerate input

def test_empty_windows_are_inconclusive():
    j = judge(Window("blue", 0, 0, ()), Window("green", 0, 0, ()))
    assert j.outcome == "inconclusive"
    assert "50 more requests on green (0 of 50) and 50 more requests on blue (0 of 50)" in j.summary
    json.dumps(j.to_json(), allow_nan=False)


def test_constant_latencies():
    same = judge(Window("blue", 100, 0, (2.0,) * 100), Window("green", 100, 0, (2.0,) * 100))
    assert same.outcome == "pass" and same.check("latency").evidence["p_value"] == 1.0
    slower = judge(Window("blue", 100, 0, (2.0,) * 100), Window("green", 100, 0, (20.0,) * 100))
    assert slower.outcome == "fail" and slower.check("latency").outcome == "fail"


def test_latencies_that_are_not_numbers_are_dropped():
    w = Window("blue", 3, 0, [1.0, float("nan"), 2.0])
    assert w.latencies_ms == (1.0, 2.0)


def test_impossible_counts_are_refused_with_the_deployment_named():
    with pytest.raises(ValueError, match="green.*5 server errors in 3 requests"):
        Window("green", 3, 5, ())


def test_single_label_on_both_sides_passes():
    j = judge(Window("blue", 60, 0, (3.0,) * 60, ("yes",) * 60), Window("green", 60, 0, (3.0,) * 60, ("yes",) * 60))
    p = j.check("predictions")
    assert p.outcome == "pass" and p.evidence["js_distance"] == 0.0 and p.evidence["chi2"]["p_value"] == 1.0


def test_labels_of_any_type_are_counted_by_value():
    assert {canary_stats.label_key(v) for v in (1, 1.0, np.int64(1), np.float32(1.0), "1")} == {"1"}
    assert canary_stats.label_key(np.str_("cat")) == "cat" and type(canary_stats.label_key(np.str_("cat"))) is str
    unhashable = [[0.1, 0.9], {"label": "cat"}, np.array([1, 2])] * 20
    j = judge(Window("blue", 60, 0, (3.0,) * 60, tuple(unhashable)),
              Window("green", 60, 0, (3.0,) * 60, tuple(unhashable)))
    assert j.check("predictions").outcome == "pass"
    json.dumps(j.to_json(), allow_nan=False)


def test_fractional_predictions_under_a_classification_policy_are_compared_as_values():
    """A caller that has not passed the model's task yet: a regressor's outputs are not counted as labels."""
    rng = np.random.default_rng(15)
    blue = Window("blue", 500, 0, (3.0,) * 500, tuple(rng.normal(10, 2, 500)))
    same = Window("green", 500, 0, (3.0,) * 500, tuple(rng.normal(10, 2, 500)))
    shifted = Window("green", 500, 0, (3.0,) * 500, tuple(rng.normal(14, 2, 500)))
    ok = judge(blue, same).check("predictions")
    assert ok.outcome == "pass" and ok.evidence["method"] == "values" and "pass the model's task" in ok.detail
    assert judge(blue, shifted).check("predictions").outcome == "fail"


# ------------------------------------------------------------------------------------------ regression

REGRESSION = JudgePolicy(task="regression")


@pytest.fixture(scope="module")
def diabetes():
    """scikit-learn's diabetes data (442 patients, disease progression after a year) and two regressors
    trained on overlapping halves of it: the live one and an equally good new version."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression, Ridge
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    order = np.random.default_rng(42).permutation(len(x))
    live = LinearRegression().fit(x.iloc[order[:221]], y.iloc[order[:221]])
    new = Ridge(alpha=0.01).fit(x.iloc[order[100:321]], y.iloc[order[100:321]])
    return x, y, live, new


def served(name: str, rows, x, y, predict, labelled: bool = True) -> Window:
    """The colour's window: the rows it answered, its predictions and (as labels arrive, as text) the truth."""
    values = [float(v) for v in predict(x.iloc[rows])]
    truth = [str(v) for v in y.iloc[rows]]
    return Window(name, len(rows), 0, (3.0,) * len(rows), tuple(values),
                  tuple(zip(values, truth)) if labelled else ())


def traffic_split(n: int, seed: int = 0):
    order = np.random.default_rng(seed).permutation(n)
    return order[: n // 2], order[n // 2:]


def test_an_equally_good_regressor_passes(diabetes):
    x, y, live, new = diabetes
    a, b = traffic_split(len(x))
    j = judge(served("blue", a, x, y, live.predict), served("green", b, x, y, new.predict), REGRESSION)
    assert j.outcome == "pass", j.summary
    assert outcomes(j) == {"errors": "pass", "latency": "pass", "predictions": "pass", "accuracy": "pass"}
    predictions, error = j.check("predictions"), j.check("accuracy")
    assert predictions.evidence["method"] == "values" and predictions.evidence["normalized_wasserstein"] < 0.2
    assert "normalized Wasserstein" in predictions.detail and "Kolmogorov-Smirnov" in predictions.detail
    assert abs(error.evidence["relative_increase"]) < 0.1 and error.detail.startswith("Prediction error: mean absolute")
    wire = json.loads(json.dumps(j.to_json(), allow_nan=False))
    assert Judgement.from_json(wire) == j


def test_a_biased_regressor_fails_on_its_predictions_and_its_error(diabetes):
    x, y, live, new = diabetes
    a, b = traffic_split(len(x))
    biased = served("green", b, x, y, lambda rows: new.predict(rows) + 40.0)      # about half a std of y too high
    j = judge(served("blue", a, x, y, live.predict), biased, REGRESSION)
    assert j.outcome == "fail"
    assert outcomes(j)["predictions"] == "fail" and outcomes(j)["accuracy"] == "fail"
    predictions = j.check("predictions")
    assert predictions.evidence["normalized_wasserstein"] > 0.4 and predictions.evidence["ks"]["p_value"] < 1e-4
    assert "green predicts higher values than blue by" in predictions.detail
    error = j.check("accuracy").evidence
    assert error["canary"]["mae"] > 1.2 * error["baseline"]["mae"] and error["p_value"] < 0.01
    assert error["canary"]["mean_residual"] < -30 and error["test"].startswith("Welch's z-test")
    unlabelled = judge(served("blue", a, x, y, live.predict, labelled=False),
                       served("green", b, x, y, lambda rows: new.predict(rows) + 40.0, labelled=False), REGRESSION)
    assert unlabelled.outcome == "fail" and outcomes(unlabelled)["accuracy"] == "skipped"


def test_predictions_that_look_right_but_miss_fail_on_the_error(diabetes):
    """The same spread of values, given to the wrong patients: only the labels can tell."""
    x, y, live, new = diabetes
    a, b = traffic_split(len(x))
    shuffled = served("green", b, x, y, lambda rows: np.random.default_rng(3).permutation(new.predict(rows)))
    j = judge(served("blue", a, x, y, live.predict), shuffled, REGRESSION)
    assert j.outcome == "fail"
    assert outcomes(j)["predictions"] == "pass" and outcomes(j)["accuracy"] == "fail"
    assert "Prediction error" in j.summary


def test_a_regressor_that_predicts_differently_and_better_passes(diabetes):
    """The live model has gone stale (predicts too low); the new one fits: a shift, for the better."""
    x, y, live, new = diabetes
    a, b = traffic_split(len(x))
    j = judge(served("blue", a, x, y, lambda rows: live.predict(rows) - 40.0), served("green", b, x, y, new.predict),
              REGRESSION)
    assert j.outcome == "pass", j.summary
    assert "Not decisive" in j.check("predictions").detail
    assert j.check("accuracy").evidence["relative_increase"] < -0.1


def test_a_regressor_answering_what_is_not_a_number_fails():
    values = tuple(float(i % 17) + 0.5 for i in range(100))
    broken = tuple([*values[:80], *(["n/a"] * 20)])
    j = judge(Window("blue", 100, 0, (3.0,) * 100, values), Window("green", 100, 0, (3.0,) * 100, broken), REGRESSION)
    assert j.outcome == "fail" and "20 of the 100 predictions of green are not numbers (20.0%" in j.summary
    one = tuple([*values[:99], None])
    ok = judge(Window("blue", 100, 0, (3.0,) * 100, values), Window("green", 100, 0, (3.0,) * 100, one), REGRESSION)
    assert ok.check("predictions").outcome == "pass" and ok.check("predictions").evidence["canary"]["not_numbers"] == 1


def test_regression_checks_wait_for_enough_numbers():
    values = tuple(float(i) + 0.5 for i in range(60))
    j = judge(Window("blue", 60, 0, (3.0,) * 60, values, tuple(zip(values, values))),
              Window("green", 60, 0, (3.0,) * 60, values[:20], tuple(zip(values[:20], values[:20]))), REGRESSION)
    assert j.check("predictions").outcome == "inconclusive" and "need 50 on each side" in j.check("predictions").detail
    assert j.check("accuracy").outcome == "skipped" and "need 30 on each side" in j.check("accuracy").detail


def test_the_task_comes_from_the_policy_and_is_checked():
    assert JudgePolicy().task == "classification"
    assert JudgePolicy(task="binary").task == JudgePolicy(task="Multiclass").task == "classification"
    with pytest.raises(ValueError, match="task 'ranking' is not one of classification, regression"):
        JudgePolicy(task="ranking")
    # whole numbers under a regression policy are values, not labels
    counts = tuple(float(i % 9) for i in range(200))
    check = judge(Window("blue", 200, 0, (3.0,) * 200, counts), Window("green", 200, 0, (3.0,) * 200, counts),
                  REGRESSION).check("predictions")
    assert check.evidence["method"] == "values" and check.evidence["normalized_wasserstein"] == 0.0


def test_judging_thousands_of_samples_is_fast():
    rng = np.random.default_rng(16)
    truth = labels(rng, 5000)
    blue = window("blue", rng, n=5000, errors=5, predictions=labels(rng, 5000), labelled=zip(truth, truth))
    green = window("green", rng, n=5000, errors=6, predictions=labels(rng, 5000), labelled=zip(truth, truth))
    start = time.perf_counter()
    assert judge(blue, green).outcome == "pass"
    assert time.perf_counter() - start < 1.0        # ~50 ms here; the bound is generous for loaded CI


# ---------------------------------------------------------------------------- statistics against scipy

def test_statistics_match_scipy():
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(17)
    for trial in range(150):
        n1, n2 = (int(v) for v in rng.integers(1, 40, 2))
        if trial % 2:       # ties
            x, y = rng.integers(0, 12, n1).astype(float), rng.integers(1, 13, n2).astype(float)
        else:               # continuous; small samples take the exact path
            x, y = rng.normal(0.3, 1, n1), rng.normal(0, 1, n2)
        ours, _ = canary_stats.mann_whitney_greater(list(x), list(y))
        theirs = stats.mannwhitneyu(x, y, alternative="greater")
        assert ours.statistic == pytest.approx(theirs.statistic)
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-14)

        n1, n2 = (int(v) for v in rng.integers(1, 300, 2))
        a, c = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        assert canary_stats.fisher_greater(a, n1, c, n2) == pytest.approx(
            stats.fisher_exact([[a, n1 - a], [c, n2 - c]], alternative="greater").pvalue, rel=1e-9, abs=1e-300)

        n, p = int(rng.integers(1, 5000)), float(rng.uniform(0.001, 0.6))
        k = int(rng.binomial(n, min(1.0, p * rng.uniform(0.5, 1.6))))
        assert canary_stats.binom_greater(k, n, p) == pytest.approx(
            stats.binomtest(k, n, p, alternative="greater").pvalue, rel=1e-9, abs=1e-300)

        dof, x2 = int(rng.integers(1, 200)), float(rng.uniform(0, 400))
        assert canary_stats.chi2_sf(x2, dof) == pytest.approx(stats.chi2.sf(x2, dof), rel=1e-9, abs=1e-300)

        k_labels = int(rng.integers(2, 7))
        t = rng.integers(1, 40, (2, k_labels))
        c1, c2 = ({str(i): int(v) for i, v in enumerate(row)} for row in t)
        ours = canary_stats.chi2_homogeneity(c1, c2)
        theirs = stats.chi2_contingency(t)
        assert (ours.statistic, ours.p_value) == pytest.approx((theirs.statistic, theirs.pvalue), rel=1e-9)
        assert canary_stats.js_distance(c1, c2) == pytest.approx(
            jensenshannon(t[0] / t[0].sum(), t[1] / t[1].sum(), base=2), abs=1e-12)


def test_continuous_statistics_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(19)
    for trial in range(60):
        n1, n2 = (int(v) for v in rng.integers(50, 400, 2))
        x = rng.normal(0, 1, n1) if trial % 3 else rng.integers(0, 6, n1).astype(float)     # ties too
        y = rng.normal(float(rng.uniform(0, 0.6)), float(rng.uniform(0.7, 1.5)), n2)
        ours = canary_stats.ks_2samp(list(x), list(y))
        theirs = stats.ks_2samp(x, y, method="asymp")
        assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
        en = n1 * n2 / (n1 + n2)
        assert ours.p_value == pytest.approx(stats.kstwobign.sf(math.sqrt(en) * ours.statistic), rel=1e-9, abs=1e-15)
        # ks_2samp refines it for finite samples; the limit is never below it (conservative), and close
        assert theirs.pvalue - 1e-12 <= ours.p_value <= theirs.pvalue + 0.06
        assert canary_stats.wasserstein(list(x), list(y)) == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9)
        welch = canary_stats.welch_greater(list(x), list(y))
        t = stats.ttest_ind(x, y, equal_var=False, alternative="greater")
        assert welch.statistic == pytest.approx(t.statistic, rel=1e-9)
        assert welch.p_value == pytest.approx(t.pvalue, abs=0.005)            # normal against t: close from 50 up
    for z in (0.05, 0.3, 0.7, 0.99, 1.0, 1.01, 1.5, 3.0, 6.0):
        assert canary_stats.kolmogorov_sf(z) == pytest.approx(stats.kstwobign.sf(z), rel=1e-9, abs=1e-300)


def test_two_proportion_z_test_matches_the_textbook_formula():
    result = canary_stats.two_proportion_greater(60, 500, 30, 500)
    pooled = 90 / 1000
    z = (0.12 - 0.06) / math.sqrt(pooled * (1 - pooled) * (2 / 500))
    assert result.test == "two-proportion z-test" and result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))


def test_quantiles_match_numpy():
    rng = np.random.default_rng(18)
    for n in (1, 2, 7, 100, 1001):
        values = sorted(rng.lognormal(1, 1, n))
        for q in (0.0, 0.5, 0.95, 0.99, 1.0):
            assert canary_stats.quantile(values, q) == pytest.approx(np.quantile(values, q), rel=1e-12)


def test_slow_tails_with_a_steady_median_wait_rather_than_fail():
    """A busy machine or a warming worker stretches the tail, not the median: not enough to roll back."""
    rng = np.random.default_rng(9)
    blue = window("blue", rng, n=400, latency_ms=10.0, sigma=0.1)
    base = np.asarray(window("x", rng, n=400, latency_ms=10.0, sigma=0.1).latencies_ms)
    base[:40] *= 20                                                    # 10% of requests very slow
    j = judge(blue, Window("green", 400, 0, tuple(base)))
    assert j.check("latency").outcome != "fail", j.summary
