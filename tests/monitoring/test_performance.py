"""Performance, concept drift and CBPE (monitoring/performance.py) on generated data with known truth."""
from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from monitoring import drift
from monitoring.cbpe import estimate_performance
from monitoring.ground_truth import class_codes, output_classes, outputs_with_labels, probabilities
from monitoring.performance import ConceptThresholds, concept_drift, confusion_metrics, performance, relation_shift
from monitoring.window import CurrentWindow
from training.evaluation import calibration, classification_metrics
from training.reference_profile import build_profile

FEATURES = ["x1", "x2", "city"]


def loans(n: int, seed: int, rule: str = "reference", shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Logistic data: label ~ Bernoulli(sigmoid(logit(x))). rule "flipped" negates the logit (same inputs,
    the opposite concept); "moved" makes the label depend on x2 instead of x1. shift moves x1's mean."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.normal(0, 1, n),
                      "city": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])})
    city = np.where(x["city"] == "north", 0.8, -0.4)
    logit = {"reference": 2.5 * x["x1"] - x["x2"] + city,
             "flipped": -(2.5 * x["x1"] - x["x2"] + city),
             "moved": 2.5 * x["x2"] - x["x1"] + city}[rule].to_numpy()
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def design(x: pd.DataFrame) -> np.ndarray:
    return np.column_stack([x["x1"], x["x2"], x["city"] == "north", x["city"] == "south"]).astype(float)


@pytest.fixture(scope="module")
def model():
    """A logistic regression trained as train.py does: a holdout, its metrics and calibration in a
    metrics.json-like doc, and the reference profile of the training data with its target."""
    x, y = loans(8000, 0)
    train, hold = slice(0, 5000), slice(5000, None)
    fitted = LogisticRegression().fit(design(x.iloc[train]), y[train])
    proba = fitted.predict_proba(design(x.iloc[hold]))
    doc = {"classes": [0, 1], "positive_class": 1,
           "metrics": classification_metrics(y[hold], fitted.predict(design(x.iloc[hold])), proba, [0, 1], [0, 1]),
           "calibration": calibration(y[hold], proba, [0, 1], [0, 1]),
           "rows": {"train": 5000, "holdout": 3000, "total": 8000},
           "class_balance": {"0": int((y == 0).sum()), "1": int((y == 1).sum())}}
    profile = build_profile(x.assign(default=y), "default")
    return {"estimator": fitted, "doc": doc, "profile": profile}


def scored(model, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    estimator = model["estimator"]
    return estimator.predict(design(x)), estimator.predict_proba(design(x))


# ---- metrics ----------------------------------------------------------------------------------------------

def test_binary_metrics_equal_sklearn_with_the_positive_class_last():
    rng = np.random.default_rng(1)
    y = rng.choice(["no", "yes"], 500, p=[0.7, 0.3])
    p_yes = np.clip(np.where(y == "yes", 0.65, 0.3) + rng.normal(0, 0.2, 500), 0, 1)
    predicted = np.where(p_yes > 0.5, "yes", "no")
    result = performance(y, predicted, np.column_stack([1 - p_yes, p_yes]), ["no", "yes"],
                         {"accuracy": 0.9, "f1": 0.8, "precision": 0.8, "recall": 0.8, "roc_auc": 0.95, "extra": 1})
    expected = {"accuracy": skm.accuracy_score(y, predicted), "f1": skm.f1_score(y, predicted, pos_label="yes"),
                "precision": skm.precision_score(y, predicted, pos_label="yes"),
                "recall": skm.recall_score(y, predicted, pos_label="yes"),
                "roc_auc": skm.roc_auc_score(y == "yes", p_yes)}
    assert result.metrics == pytest.approx(expected, abs=1e-12)
    d = result.to_dict()
    assert list(d) == ["rows", "metrics", "baseline", "classes"]
    assert d["rows"] == 500 and d["classes"] == ["no", "yes"]
    assert set(d["metrics"]) == set(d["baseline"]) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    # 1-D probabilities of the positive class mean the same; no baseline gives {}
    assert performance(y, predicted, p_yes, ["no", "yes"]).to_dict()["metrics"] == d["metrics"]
    assert performance(y, predicted, None, ["no", "yes"]).to_dict()["baseline"] == {}


def test_multiclass_metrics_equal_sklearn_macro():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 900)
    proba = rng.dirichlet([1, 1, 1], 900) + np.eye(3)[y] * 0.8
    proba /= proba.sum(axis=1, keepdims=True)
    predicted = proba.argmax(axis=1)
    result = performance(y.astype(str), predicted, proba, [0, 1, 2]).metrics      # labels as text
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert result["f1"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    assert result["precision"] == pytest.approx(skm.precision_score(y, predicted, average="macro"))
    assert result["recall"] == pytest.approx(skm.recall_score(y, predicted, average="macro"))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))


@pytest.mark.parametrize("k", [2, 4])
def test_confusion_metrics_equal_classification_metrics(k):
    rng = np.random.default_rng(k)
    y, predicted = rng.integers(0, k, 300), rng.integers(0, k - 1, 300)          # the last class never predicted
    cm = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    ours = {m: float(v) for m, v in confusion_metrics(cm).items()}
    theirs = classification_metrics(y, predicted, None, None, list(range(k)))
    assert ours == pytest.approx({m: theirs[m] for m in ours}, abs=1e-12)


def test_unknown_labels_are_refused_with_the_way_out():
    with pytest.raises(ValueError, match="not classes of the model.*outputs_with_labels"):
        performance([0, 1, 7], [0, 1, 1], None, [0, 1])


# ---- joining labels ---------------------------------------------------------------------------------------

def test_labels_from_csv_as_text_join_to_integer_classes():
    outputs = pd.DataFrame({"request_id": ["r1", "r2", "r3", "r4", "r2", "r5"],
                            "prediction": [0, 1, 1, 0, 0, 1],
                            "probability_0": [0.9, 0.2, 0.3, 0.6, 0.7, 0.1],
                            "probability_1": [0.1, 0.8, 0.7, 0.4, 0.3, 0.9]})
    feedback = pd.read_csv(io.StringIO("request_id,label\nr1,1\nr2,0\nr3,maybe\nr4,\nr9,1\nr5,1.0\n"), dtype=str)
    labels = dict(zip(feedback["request_id"], feedback["label"]))
    assert labels["r1"] == "1"                                   # text, as a CSV delivers it
    rows = outputs_with_labels(outputs, labels, [0, 1])
    assert rows["request_id"].tolist() == ["r1", "r2", "r5"]     # r2 logged twice: its last row
    assert rows["label"].tolist() == [1, 0, 1] and rows["label"].dtype == np.int64
    assert rows["prediction"].tolist() == [0, 0, 1]
    assert rows.attrs["unknown_labels"] == 1 and rows.attrs["unknown_label_examples"] == ["maybe"]
    assert probabilities(rows, [0, 1]).tolist() == [[0.9, 0.1], [0.7, 0.3], [0.1, 0.9]]
    assert probabilities(rows, [0, 1, 2]) is None
    result = performance(rows["label"], rows["prediction"], probabilities(rows, [0, 1]), [0, 1])
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)


def test_labels_join_by_meaning_and_classes_from_the_outputs():
    outputs = pd.DataFrame({"request_id": [1, 2, 3], "prediction": ["yes", "no", "yes"],
                            "probability_no": [0.2, 0.9, 0.4], "probability_yes": [0.8, 0.1, 0.6]})
    assert output_classes(outputs) == ["no", "yes"]
    rows = outputs_with_labels(outputs, {"1": " yes", "3": "no", "2": None})          # ids as text, ints in the outputs
    assert rows["label"].tolist() == ["yes", "no"] and rows.attrs["unknown_labels"] == 0
    assert class_codes(["1", "1.0", 1.0, True, "0", None, "x"], [0, 1]).tolist() == [1, 1, 1, 1, 0, -1, -1]
    assert class_codes([1, 0, "true", "False"], [False, True]).tolist() == [1, 0, 1, 0]
    assert class_codes([1, 2.0], ["1", "2"]).tolist() == [0, 1]
    assert output_classes(pd.DataFrame({"prediction": [2, 0], "probability_0": [1.0, 0.0],
                                        "probability_2": [0.0, 1.0]})) == [0, 2]
    with pytest.raises(ValueError, match="no request_id"):
        outputs_with_labels(outputs.drop(columns="request_id"), {})


# ---- concept drift ----------------------------------------------------------------------------------------

def test_flipped_concept_is_caught_by_relation_and_performance_while_inputs_look_stable(model):
    x, y = loans(3000, 11, "flipped")
    predicted, proba = scored(model, x)
    data = drift.compare(model["profile"], CurrentWindow.for_profile(model["profile"]).update(x))
    assert not data.drifted and data.drifted_features == []       # the inputs are the reference's

    result = concept_drift(y, predicted, [0, 1], training_metrics=model["doc"], proba=proba, features=x,
                           profile=model["profile"])
    assert result.detected
    assert result.relation["x1"].drifted and result.relation["x1"].shift > 0.4
    assert result.relation["x1"].pvalue < 1e-10
    accuracy = result.performance_drop["accuracy"]
    assert accuracy.significant and accuracy.drop > 0.5 and accuracy.pvalue < 1e-10
    assert result.performance_drop["f1"].significant
    assert any(r.startswith("accuracy") for r in result.reasons)
    assert any("P(default | x1) changed" in r for r in result.reasons)
    d = result.to_dict()
    assert list(d) == ["detected", "reasons", "performance_drop", "relation"]
    assert set(d["performance_drop"]["accuracy"]) == {"current", "baseline", "drop", "pvalue", "significant"}
    assert set(d["relation"]["x1"]) == {"shift", "pvalue", "drifted"}
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_changed_rule_is_caught_on_the_features_it_moved_to(model):
    x, y = loans(3000, 12, "moved")
    predicted, _ = scored(model, x)
    result = concept_drift(y, predicted, [0, 1], features=x, profile=model["profile"])    # no training metrics
    assert result.detected and result.performance_drop == {}
    assert result.relation["x1"].drifted and result.relation["x2"].drifted
    assert not result.relation["city"].drifted                        # its effect did not change


def test_stable_concept_is_not_detected(model):
    for seed in (21, 22, 23):
        x, y = loans(2000, seed)
        predicted, proba = scored(model, x)
        result = concept_drift(y, predicted, [0, 1], training_metrics=model["doc"], proba=proba, features=x,
                               profile=model["profile"])
        assert not result.detected, result.reasons
        assert all(r.shift < 0.1 for r in result.relation.values())
        assert all(abs(d.drop) < 0.05 for d in result.performance_drop.values())


def test_old_profile_without_target_by_feature_skips_the_relation_check(model):
    old = {k: v for k, v in model["profile"].items() if k != "target_by_feature"}
    x, y = loans(1000, 13, "flipped")
    predicted, _ = scored(model, x)
    result = concept_drift(y, predicted, [0, 1], training_metrics=model["doc"], features=x, profile=old)
    assert result.relation == {} and result.detected                 # still caught by performance
    assert "roc_auc" not in result.performance_drop                  # no probabilities given


def test_a_small_drop_needs_both_significance_and_size():
    rng = np.random.default_rng(3)
    doc = {"metrics": {"accuracy": 0.90}, "rows": {"holdout": 20_000}}
    y = rng.integers(0, 2, 20_000)
    predicted = np.where(rng.random(20_000) < 0.87, y, 1 - y)         # 0.03 below: clear, but small
    small = concept_drift(y, predicted, [0, 1], training_metrics=doc).performance_drop["accuracy"]
    assert small.pvalue < 1e-10 and not small.significant
    loose = concept_drift(y, predicted, [0, 1], training_metrics=doc,
                          thresholds=ConceptThresholds(tolerance=0.02)).performance_drop["accuracy"]
    assert loose.significant
    few = concept_drift(y[:20], predicted[:20], [0, 1], training_metrics=doc).performance_drop["accuracy"]
    assert few.pvalue is None and not few.significant                  # below min_rows: reported, not tested


def test_accuracy_test_is_the_two_proportion_z_test_and_the_bootstrap_matches_the_binomial():
    rng = np.random.default_rng(4)
    n, n_ref = 2_000, 1_000
    y = rng.integers(0, 2, n)
    predicted = np.where(rng.random(n) < 0.80, y, 1 - y)
    doc = {"metrics": {"accuracy": 0.85, "f1": 0.85}, "rows": {"holdout": n_ref}}
    result = concept_drift(y, predicted, [0, 1], training_metrics=doc).performance_drop
    acc = float(np.mean(y == predicted))
    errors = np.array([(1 - acc) * n, 0.15 * n_ref])
    pooled = errors.sum() / (n + n_ref)
    z = ((1 - acc) - 0.15) / np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_ref))
    assert result["accuracy"].pvalue == pytest.approx(stats.norm.sf(z), rel=1e-9)
    # the multinomial bootstrap is the row bootstrap: for accuracy its SE is the binomial one
    from monitoring.performance import _bootstrap_se
    cm = np.bincount(y * 2 + predicted, minlength=4).reshape(2, 2)
    se = _bootstrap_se(cm, ConceptThresholds(bootstrap=4000))
    assert se["accuracy"] == pytest.approx(np.sqrt(acc * (1 - acc) / n), rel=0.08)
    assert 0 < result["f1"].pvalue < 0.05                              # 0.05 lower on F1: between the gates


def test_relation_shift_is_the_summed_chi_squared_and_mean_total_variation():
    reference = np.array([[800, 200], [500, 500], [100, 900], [3, 2]])
    current = np.array([[60, 40], [50, 50], [30, 170], [1, 1]])       # the last bin is too small to use
    shift, pvalue = relation_shift(reference, current, min_bin_rows=10)
    parts = [stats.chi2_contingency(np.vstack([reference[i], current[i]]), correction=False) for i in range(3)]
    assert pvalue == pytest.approx(stats.chi2.sf(sum(p.statistic for p in parts), sum(p.dof for p in parts)))
    tv = [0.2, 0.0, 0.05]
    assert shift == pytest.approx(np.average(tv, weights=[100, 100, 200]))
    flipped, p = relation_shift(reference[:3], reference[:3, ::-1], min_bin_rows=10)
    assert flipped == pytest.approx((0.6 + 0.0 + 0.8) / 3) and p < 1e-100
    assert relation_shift(reference, current, min_bin_rows=1000) is None


def test_concept_drift_is_fast_on_ten_thousand_rows(model):
    x, y = loans(10_000, 14)
    predicted, proba = scored(model, x)
    run = lambda: concept_drift(y, predicted, [0, 1], training_metrics=model["doc"], proba=proba,   # noqa: E731
                                features=x, profile=model["profile"])
    run()
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    print(f"concept_drift: 10k rows, 3 features in {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5                                               # ~20 ms; loose on a shared machine


# ---- CBPE -------------------------------------------------------------------------------------------------

def test_cbpe_tracks_the_true_accuracy_of_a_calibrated_model_under_input_drift(model):
    assert model["doc"]["calibration"]["expected_calibration_error"] < 0.05
    for shift in (0.0, 1.5):                      # x1 shifted 1.5 std: most rows far from the boundary
        x, y = loans(5000, 30, shift=shift)
        predicted, proba = scored(model, x)
        estimate = estimate_performance(proba, [0, 1], model["doc"]["calibration"], predictions=predicted)
        truth = performance(y, predicted, proba, [0, 1]).metrics
        assert estimate.calibrated and estimate.rows == 5000
        for metric in ("accuracy", "f1", "precision", "recall"):
            assert estimate.metrics[metric] == pytest.approx(truth[metric], abs=0.03), (shift, metric)
    d = estimate.to_dict()
    assert list(d) == ["method", "calibrated", "calibration_error", "rows", "metrics"] and d["method"] == "CBPE"
    assert set(d["metrics"]) == {"accuracy", "f1", "precision", "recall"}
    assert truth["accuracy"] > 0.85                                     # the shift did change the accuracy


def test_cbpe_is_refused_when_the_model_is_not_calibrated(model):
    x, y = loans(3000, 31)
    hold_x, hold_y = loans(3000, 32)
    logit = lambda p: np.log(p / (1 - p))                               # noqa: E731
    overconfident = lambda p: 1 / (1 + np.exp(-4 * logit(p[:, 1])))   # noqa: E731
    p_hold = overconfident(scored(model, hold_x)[1])
    bad = calibration(hold_y, np.column_stack([1 - p_hold, p_hold]), [0, 1], [0, 1])
    assert bad["expected_calibration_error"] > 0.1
    estimate = estimate_performance(overconfident(scored(model, x)[1]), [0, 1], bad)
    assert not estimate.calibrated and estimate.metrics == {}
    d = estimate.to_dict()
    assert d["calibrated"] is False and d["calibration_error"] == pytest.approx(bad["expected_calibration_error"])
    assert "not calibrated" in d["reason"] and d["metrics"] == {}
    old = estimate_performance(scored(model, x)[1], [0, 1], None).to_dict()
    assert old["calibrated"] is False and "retrain" in old["reason"] and old["calibration_error"] is None


def test_cbpe_multiclass_expected_accuracy():
    rng = np.random.default_rng(5)
    weights = np.array([[2.0, 0.0], [-1.0, 1.5], [-1.0, -1.5]])

    def sample(n):
        x = rng.normal(0, 1, (n, 2))
        logits = x @ weights.T
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return x, (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    x, y = sample(6000)
    fitted = LogisticRegression().fit(x[:3000], y[:3000])
    classes = ["a", "b", "c"]
    named = np.array(classes)
    hold = calibration(named[y[3000:]], fitted.predict_proba(x[3000:]), classes, classes)
    assert hold["method"] == "top_label" and hold["classwise_expected_calibration_error"] < 0.05
    x_new, y_new = sample(4000)
    proba = fitted.predict_proba(x_new)
    estimate = estimate_performance(proba, classes, hold)
    truth = performance(named[y_new], named[proba.argmax(axis=1)], proba, classes).metrics
    for metric in ("accuracy", "f1", "precision", "recall"):
        assert estimate.metrics[metric] == pytest.approx(truth[metric], abs=0.03), metric
    without_classwise = {k: v for k, v in hold.items() if k != "classwise_expected_calibration_error"}
    only_accuracy = estimate_performance(proba, classes, without_classwise).metrics
    assert only_accuracy["accuracy"] == pytest.approx(estimate.metrics["accuracy"]) and only_accuracy["f1"] is None
