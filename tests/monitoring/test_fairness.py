"""Fairness signals: equal to fairlearn's on the same rows, small groups kept out of the differences."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from sklearn.linear_model import LogisticRegression

from monitoring.fairness import MISSING, FairnessThresholds, fairness


def approvals(rates: dict[str, tuple[int, int]], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group (rows, approved): exactly that many positive predictions, and random ground truth."""
    rng = np.random.default_rng(seed)
    groups = np.concatenate([[g] * n for g, (n, _) in rates.items()]).astype(object)
    y_pred = np.concatenate([rng.permutation(np.repeat([1, 0], [k, n - k])) for n, k in rates.values()])
    y_true = rng.integers(0, 2, len(groups))
    return y_true, y_pred, groups


def loans(n: int, leak: float, seed: int) -> pd.DataFrame:
    """Applicants in two groups; `leak` is how much belonging to group A raises the approval odds."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], n)
    income, debt = rng.normal(0, 1, n), rng.normal(0, 1, n)
    logit = 1.5 * income - 1.0 * debt + leak * (group == "A") - leak / 2
    approved = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"group": group, "income": income, "debt": debt, "a": (group == "A").astype(float),
                         "approved": approved.astype(int)})


def test_biased_predictions_breach_with_the_true_gap():
    y_true, y_pred, groups = approvals({"A": (1000, 700), "B": (800, 240)})

    report = fairness(y_true, y_pred, groups, positive_label=1, column="sex")

    assert report.breached
    assert report.groups["A"].selection_rate == pytest.approx(0.7)
    assert report.groups["B"].selection_rate == pytest.approx(0.3)
    assert report.demographic_parity_difference == pytest.approx(0.7 - 0.3)
    assert report.demographic_parity_ratio == pytest.approx(0.3 / 0.7)
    dpd_reason = next(r for r in report.reasons if r.startswith("Demographic parity difference"))
    assert "above" in dpd_reason and "highest for 'A'" in dpd_reason and "lowest for 'B'" in dpd_reason
    assert any("four-fifths" in r and "Informational" in r for r in report.reasons)


def test_a_model_that_learned_the_sensitive_attribute_breaches():
    train, live = loans(4000, leak=3.0, seed=1), loans(3000, leak=3.0, seed=2)
    features = ["income", "debt", "a"]
    model = LogisticRegression().fit(train[features], train["approved"])
    y_pred = model.predict(live[features])

    report = fairness(live["approved"], y_pred, live["group"], positive_label=1, column="group")

    by_hand = {g: y_pred[(live["group"] == g).to_numpy()].mean() for g in ("A", "B")}
    assert by_hand["A"] - by_hand["B"] > 0.3
    assert report.demographic_parity_difference == pytest.approx(by_hand["A"] - by_hand["B"])
    assert report.breached


def test_an_unbiased_model_is_not_breached():
    train, live = loans(4000, leak=0.0, seed=3), loans(4000, leak=0.0, seed=4)
    features = ["income", "debt"]
    model = LogisticRegression().fit(train[features], train["approved"])

    report = fairness(live["approved"], model.predict(live[features]), live["group"], positive_label=1, column="group")

    assert not report.breached
    assert report.demographic_parity_difference < 0.05 and report.equalized_odds_difference < 0.05
    assert any("within the 0.1 threshold" in r for r in report.reasons)


def test_differences_and_group_rates_equal_fairlearns():
    rng = np.random.default_rng(5)
    groups = rng.choice(["x", "y", "z"], 3000, p=[0.5, 0.3, 0.2]).astype(object)
    y_true = rng.integers(0, 2, 3000)
    y_pred = np.where(rng.random(3000) < np.select([groups == "x", groups == "y"], [0.8, 0.6], 0.7), y_true, 1 - y_true)

    report = fairness(y_true, y_pred, groups, positive_label=1, column="region")

    kw = {"sensitive_features": groups}
    assert report.demographic_parity_difference == pytest.approx(fm.demographic_parity_difference(y_true, y_pred, **kw))
    assert report.demographic_parity_ratio == pytest.approx(fm.demographic_parity_ratio(y_true, y_pred, **kw))
    assert report.equalized_odds_difference == pytest.approx(fm.equalized_odds_difference(y_true, y_pred, **kw))
    frame = fm.MetricFrame(metrics={"selection_rate": fm.selection_rate, "false_positive_rate": fm.false_positive_rate,
                                    "false_negative_rate": fm.false_negative_rate,
                                    "true_positive_rate": fm.true_positive_rate, "count": fm.count},
                           y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    for g, expected in frame.by_group.iterrows():
        got = report.groups[g]
        assert got.count == expected["count"]
        for name in ("selection_rate", "false_positive_rate", "false_negative_rate", "true_positive_rate"):
            assert getattr(got, name) == pytest.approx(expected[name])
        assert got.accuracy == pytest.approx(np.mean(y_true[groups == g] == y_pred[groups == g]))


def test_a_tiny_group_is_reported_but_cannot_raise_an_alert():
    y_true, y_pred, groups = approvals({"A": (500, 250), "B": (500, 245), "C": (5, 5)})

    report = fairness(y_true, y_pred, groups, positive_label=1, column="sex")

    assert report.groups["C"].count == 5 and report.groups["C"].selection_rate == 1.0
    assert report.excluded_groups == ["C"]
    assert not report.breached
    big = groups != "C"
    assert report.demographic_parity_difference == pytest.approx(
        fm.demographic_parity_difference(y_true[big], y_pred[big], sensitive_features=groups[big]))
    assert report.demographic_parity_difference == pytest.approx(0.5 - 0.49)
    assert any("'C' (5 rows)" in r and "fewer than 30" in r for r in report.reasons)

    looser = fairness(y_true, y_pred, groups, positive_label=1, column="sex",
                      thresholds=FairnessThresholds(min_group_size=5))
    assert looser.excluded_groups == [] and looser.breached


def test_fewer_than_two_large_groups_compare_nothing():
    y_true, y_pred, groups = approvals({"A": (200, 180), "B": (20, 2)})

    report = fairness(y_true, y_pred, groups, positive_label=1, column="sex")

    assert not report.breached
    assert report.demographic_parity_difference is None and report.equalized_odds_difference is None
    assert report.excluded_groups == ["B"]
    assert any("Only 1 group(s)" in r and "no alert" in r for r in report.reasons)


def test_string_labels_with_a_string_positive_label():
    y_true, y_pred, groups = approvals({"A": (300, 210), "B": (300, 90)})

    as_ints = fairness(y_true, y_pred, groups, positive_label=1, column="sex")
    as_strings = fairness(y_true.astype(str), y_pred.astype(str), groups, positive_label="1", column="sex")
    as_words = fairness(np.where(y_true == 1, "approved", "declined"), np.where(y_pred == 1, "approved", "declined"),
                        groups, positive_label="approved", column="sex")

    assert as_strings.groups["A"].selection_rate == pytest.approx(0.7)
    assert as_strings.to_dict() == as_ints.to_dict() == as_words.to_dict()


def test_labels_that_do_not_fit_the_positive_label_are_refused():
    y_true, y_pred, groups = approvals({"A": (40, 20), "B": (40, 20)})
    with pytest.raises(ValueError, match="positive_label=1"):       # CSV strings, int positive label
        fairness(y_true.astype(str), y_pred.astype(str), groups, positive_label=1, column="sex")
    with pytest.raises(ValueError, match="binary"):                  # strings on one side, ints on the other
        fairness(y_true.astype(str), y_pred, groups, positive_label="1", column="sex")
    with pytest.raises(ValueError, match="null label"):
        fairness(np.where(np.arange(80) == 3, None, y_true), y_pred, groups, positive_label=1, column="sex")


def test_nulls_in_the_sensitive_column_form_the_missing_group():
    y_true, y_pred, groups = approvals({"A": (100, 50), "B": (100, 50), "?": (60, 30)})
    column = pd.Series(np.where(groups == "?", None, groups))
    column[column.isna() & (np.arange(len(column)) % 2 == 0)] = np.nan

    report = fairness(y_true, y_pred, column, positive_label=1, column="sex")

    assert set(report.groups) == {"A", "B", MISSING}
    assert report.groups[MISSING].count == 60 and report.groups[MISSING].selection_rate == pytest.approx(0.5)
    assert not report.breached

    numeric = fairness(y_true, y_pred, pd.Series(np.select([groups == "A", groups == "B"], [1.0, 2.0], np.nan)),
                       positive_label=1, column="band")
    assert set(numeric.groups) == {"1", "2", MISSING}


def test_to_dict_has_the_documented_shape_and_is_json_safe():
    y_true = np.r_[np.ones(40, int), np.random.default_rng(6).integers(0, 2, 40)]   # group 1 has no negatives
    y_pred = np.r_[np.ones(30, int), np.zeros(10, int), np.ones(40, int)]
    groups = np.repeat([1, 2], 40)

    d = fairness(y_true, y_pred, groups, positive_label=1, column="cohort").to_dict()

    assert list(d) == ["sensitive_column", "groups", "excluded_groups", "demographic_parity_difference",
                       "demographic_parity_ratio", "equalized_odds_difference", "thresholds", "breached", "reasons"]
    assert list(d["groups"]) == ["1", "2"]
    assert set(d["groups"]["1"]) == {"count", "selection_rate", "accuracy", "false_positive_rate",
                                     "false_negative_rate", "true_positive_rate"}
    assert d["groups"]["1"]["false_positive_rate"] is None          # undefined: no actual negatives
    assert d["thresholds"] == {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1,
                               "min_group_size": 30, "demographic_parity_ratio": 0.8}
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert any("no actual positives or no actual negatives" in r for r in d["reasons"])


def test_importing_the_module_does_not_import_fairlearn():
    code = "import sys, monitoring.fairness; print('fairlearn' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
