"""Fairness as performance gaps between groups: a multiclass classifier (scikit-learn's iris) and a regression
model (monitoring/fairness_gaps.py), through the monitoring pass and on their own."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from monitoring.fairness_gaps import multiclass_fairness, regression_fairness
from monitoring.monitor import MonitorConfig, evaluate
from training.evaluation import classification_metrics
from training.reference_profile import build_profile

CLASSES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def iris():
    """iris with a `site` column the model does not use (the clinic a flower came from, at random), and a
    logistic regression trained on half the flowers."""
    x, y = load_iris(return_X_y=True, as_frame=True)
    frame = x.assign(species=np.asarray(CLASSES)[y], site=np.random.default_rng(0).choice(["a", "b"], len(x)))
    order = np.random.default_rng(1).permutation(len(frame))
    train = frame.iloc[order[:75]]
    features = list(x.columns)
    model = LogisticRegression(max_iter=1000).fit(train[features], train["species"])
    predicted = model.predict(train[features])
    metrics = {"task": "multiclass", "target": "species", "classes": CLASSES,
               "metrics": classification_metrics(train["species"], predicted, None, None, CLASSES)}
    profile = build_profile(train[[*features, "species"]], "species", outputs={"prediction": pd.Series(predicted)})
    return frame, features, model, metrics, profile


def serve(frame, features, predict):
    ids = [f"r{i}" for i in range(len(frame))]
    inputs = frame[[*features, "site"]].assign(request_id=ids)
    outputs = pd.DataFrame({"prediction": predict(frame), "request_id": ids})
    return inputs, outputs, dict(zip(ids, frame["species"]))


def test_a_multiclass_model_as_good_for_every_site_is_fair(iris):
    frame, features, model, metrics, profile = iris
    result = evaluate(profile, metrics, *serve(frame, features, lambda f: model.predict(f[features])),
                      config=MonitorConfig(min_labels=50, sensitive_column="site"))
    fairness = json.loads(json.dumps(result.to_dict()["fairness"], allow_nan=False))
    assert fairness["task"] == "multiclass" and not fairness["breached"]
    assert set(fairness["groups"]) == {"a", "b"}
    group = fairness["groups"]["a"]
    assert {"count", "accuracy", "macro_f1", "predicted_setosa"} <= set(group) and group["accuracy"] > 0.9
    assert set(fairness["differences"]) == {"accuracy_difference", "macro_f1_difference",
                                            "demographic_parity_difference"}
    assert "fairness" not in {a.signal for a in result.alerts}


def test_a_multiclass_model_that_fails_one_site_breaches(iris):
    frame, features, model, metrics, profile = iris
    broken = lambda f: np.where(f["site"] == "b", "versicolor", model.predict(f[features]))  # noqa: E731
    result = evaluate(profile, metrics, *serve(frame, features, broken),
                      config=MonitorConfig(min_labels=50, sensitive_column="site"))
    fairness = result.fairness
    assert fairness["breached"] and fairness["differences"]["accuracy_difference"] > 0.5
    assert fairness["groups"]["b"]["predicted_versicolor"] == 1.0
    assert fairness["groups"]["b"]["macro_f1"] < fairness["groups"]["a"]["macro_f1"] - 0.4
    alert = next(a for a in result.alerts if a.signal == "fairness")
    assert alert.evidence["sensitive_column"] == "site" and "Accuracy difference on 'site'" in alert.summary


def test_multiclass_gaps_match_scikit_learn_per_group():
    from sklearn.metrics import accuracy_score, f1_score
    rng = np.random.default_rng(3)
    truth = rng.choice(CLASSES, 400)
    predicted = np.where(rng.random(400) < 0.7, truth, rng.choice(CLASSES, 400))
    groups = rng.choice(["x", "y", None], 400)
    report = multiclass_fairness(truth, predicted, groups, classes=CLASSES, column="g")
    for name, key in (("x", "x"), ("(missing)", None)):
        chosen = groups == key if key is not None else pd.isna(groups)
        assert report.groups[name]["accuracy"] == pytest.approx(accuracy_score(truth[chosen], predicted[chosen]))
        assert report.groups[name]["macro_f1"] == pytest.approx(
            f1_score(truth[chosen], predicted[chosen], labels=CLASSES, average="macro", zero_division=0))
    with pytest.raises(ValueError, match="not classes of the model"):
        multiclass_fairness(["rose"], ["setosa"], ["a"], classes=CLASSES, column="g")


def test_regression_gaps_need_two_groups_big_enough_and_a_real_difference():
    rng = np.random.default_rng(4)
    truth = rng.normal(100, 20, 300)
    groups = np.array(["big"] * 280 + ["small"] * 20)
    noisy = truth + rng.normal(0, 10, 300) * np.where(groups == "small", 5, 1)
    report = regression_fairness(truth, noisy, groups, column="g")
    assert report.excluded_groups == ["small"] and not report.breached and report.differences == {}
    assert "fewer than 30 rows" in report.reasons[0] and report.groups["small"]["count"] == 20
    # two groups, errors 10% apart: within the 20% threshold
    groups = rng.choice(["p", "q"], 300)
    close = truth + rng.normal(0, 10, 300) * np.where(groups == "q", 1.1, 1.0)
    within = regression_fairness(truth, close, groups, column="g")
    assert not within.breached and within.differences["mae_difference"] >= 0
    assert within.groups["p"]["mae"] == pytest.approx(np.mean(np.abs(close - truth)[groups == "p"]))
    json.dumps(within.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="must all be numbers"):
        regression_fairness([1.0, None], [1.0, 2.0], ["a", "b"], column="g")
