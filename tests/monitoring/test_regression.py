"""One monitoring pass over a real regression model (scikit-learn's diabetes data: disease progression a year
after ten measurements of 442 patients): which signals fire for which change in production."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from monitoring.ground_truth import outputs_with_targets
from monitoring.monitor import MonitorConfig, evaluate
from monitoring.regression import regression_metrics
from monitoring.task import model_task
from training.reference_profile import assign_bins, build_profile, feature_bins, numeric_profile

WINDOW = {"start": "2026-11-23T11:00:00+00:00", "end": "2026-11-23T12:00:00+00:00", "endpoint": "ep",
          "deployment": "blue", "model": "progression:1"}
CONFIG = MonitorConfig(min_labels=50)          # the data set is small: windows of ~120 patients


class Regressor:
    """A linear model trained as training/train.py would, with what it saves for monitoring: metrics.json,
    the reference profile (a continuous target: its quantile bins per feature bin) and the holdout rows."""

    def __init__(self) -> None:
        x, y = load_diabetes(return_X_y=True, as_frame=True)
        self.features = list(x.columns)
        self.frame = x.assign(target=y)
        order = np.random.default_rng(0).permutation(len(self.frame))
        train, hold = self.frame.iloc[order[:200]], self.frame.iloc[order[200:320]]
        self.window = self.frame.iloc[order[320:]]               # a random split of the same data
        self.estimator = LinearRegression().fit(train[self.features], train["target"])
        predicted = self.estimator.predict(hold[self.features])
        self.metrics = {"task": "regression", "target": "target", "model_name": "progression",
                        "metrics": regression_metrics(hold["target"], predicted), "rows": {"holdout": len(hold)}}
        seen = pd.concat([train, hold])
        self.profile = with_target_bins(build_profile(seen, "target", outputs={"prediction": pd.Series(predicted)}),
                                        seen, "target")
        self.holdout = hold.assign(prediction=predicted)

    def serve(self, rows: pd.DataFrame, predict=None, truth=None, labelled: bool = True):
        ids = [f"r{i}" for i in range(len(rows))]
        inputs = rows[self.features].assign(request_id=ids)
        outputs = pd.DataFrame({"prediction": (predict or self.estimator.predict)(rows[self.features]),
                                "request_id": ids})
        truth = rows["target"] if truth is None else truth
        labels = {i: str(v) for i, v in zip(ids, truth)} if labelled else {}     # labels arrive as text (CSV)
        return inputs, outputs, labels

    def check(self, rows: pd.DataFrame, predict=None, truth=None, labelled: bool = True,
              config: MonitorConfig = CONFIG, holdout: bool = True, task: str | None = "regression"):
        return evaluate(self.profile, self.metrics, *self.serve(rows, predict, truth, labelled), config=config,
                        window=WINDOW, task=task, holdout=self.holdout if holdout else None)


def with_target_bins(profile: dict, frame: pd.DataFrame, target: str) -> dict:
    """The profile's continuous variant for a regression target (training.reference_profile's layout):
    target_profile numeric, and target_bins_by_feature = rows of each target bin per bin of each feature."""
    spec = numeric_profile(frame[target])
    codes = assign_bins(frame[target].to_numpy(dtype=float), spec["histogram"]["edges"])
    k = len(spec["histogram"]["counts"])
    relation = {}
    for name, feature in profile["features"].items():
        bins = feature_bins(frame[name], feature)
        n = len(feature["histogram"]["counts"]) if feature["type"] == "numeric" else len(feature["frequencies"])
        keep = bins >= 0
        relation[name] = {"counts": np.bincount(bins[keep] * k + codes[keep], minlength=n * k).reshape(n, k).tolist()}
    return {**profile, "task": "regression", "target_profile": spec, "target_bins_by_feature": relation}


@pytest.fixture(scope="module")
def model() -> Regressor:
    return Regressor()


def signals(result) -> set[str]:
    return {a.signal for a in result.alerts if a.condition == "Fired"}


def test_a_random_split_of_the_same_data_raises_nothing_and_reports_every_section(model):
    result = model.check(model.window)
    assert signals(result) == set()
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert doc["task"] == "regression" and doc["window"]["labelled"] == len(model.window)
    performance = doc["performance"]
    assert set(performance["metrics"]) == {"mae", "rmse", "r2", "mape"} and performance["classes"] == []
    assert performance["baseline"]["mae"] == pytest.approx(model.metrics["metrics"]["mae"])
    assert performance["metrics"]["mae"] == pytest.approx(performance["baseline"]["mae"], rel=0.2)
    assert sum(performance["residuals"]["counts"]) == len(model.window)
    assert sum(performance["residuals"]["reference_counts"]) == len(model.holdout)
    assert sum(performance["predicted_vs_actual"]["rows"]) == len(model.window)
    concept = doc["concept_drift"]
    assert not concept["detected"] and concept["relation_method"] == "error by segment"
    assert set(concept["relation"]) == set(model.features) and concept["residuals"]["method"] == "holdout residuals"
    assert doc["estimated_performance"]["method"] == "DLE" and doc["estimated_performance"]["rows"] == len(model.window)
    prediction = doc["drift"]["outputs"]["prediction"]
    assert prediction["kind"] == "numeric" and not prediction["drifted"]


def test_heavier_patients_raise_data_and_prediction_drift_and_the_estimate_follows_their_error(model):
    heavier = model.frame.sort_values("bmi").iloc[-150:]
    result = model.check(heavier, labelled=False)
    assert {"data_drift", "prediction_drift"} <= signals(result)
    assert "bmi" in result.drift.drifted_features and result.drift.drifted_outputs == ["prediction"]
    assert result.drift.outputs["prediction"].metrics["normalized_wasserstein"] > 0.5
    assert result.drift.outputs["prediction"].metrics["ks_pvalue"] < 1e-6
    # no labels: direct loss estimation says the error grew there, as it did
    realized = np.mean(np.abs(heavier["target"] - model.estimator.predict(heavier[model.features])))
    estimated = result.estimated_performance["metrics"]["mae"]
    assert estimated > 1.1 * model.metrics["metrics"]["mae"] and estimated == pytest.approx(realized, rel=0.15)
    assert "estimated_performance" in signals(result)
    # with labels: the model still fits each segment as it did, so no relation is called changed
    labelled = model.check(heavier)
    assert not any(r["drifted"] for r in labelled.concept_drift["relation"].values())


def test_a_model_that_lost_two_inputs_raises_concept_drift_on_its_errors(model):
    """An upstream change feeds the model bmi and s5 as 0 (the mean): predictions drift and errors grow."""
    result = model.check(model.window, predict=lambda x: model.estimator.predict(x.assign(bmi=0.0, s5=0.0)))
    # the predictions' shift alone (p 0.003 on ~120 rows) is not significant once corrected over the
    # window's 11 tests; the labels show the errors, which is what concept drift is for
    assert "concept_drift" in signals(result)
    prediction = result.drift.outputs["prediction"]
    assert prediction.metrics["ks_pvalue"] < 0.01 < prediction.pvalue_adjusted
    drop = result.concept_drift["performance_drop"]["mae"]
    assert drop["significant"] and drop["current"] > 1.2 * drop["baseline"] and drop["pvalue"] < 0.01
    assert result.performance["metrics"]["mae"] == pytest.approx(drop["current"])
    alert = next(a for a in result.alerts if a.signal == "concept_drift")
    assert alert.event_type == "MLOps.PerformanceDegraded" and "mae" in alert.summary and "above" in alert.summary


def test_a_concept_that_flipped_for_heavier_patients_is_found_by_segment(model):
    window = model.window
    mean = model.frame["target"].mean()
    flipped = np.where(window["bmi"] > 0, 2 * mean - window["target"], window["target"])
    result = model.check(window, truth=flipped)
    assert "concept_drift" in signals(result) and result.drift.drifted_features == []
    relation = result.concept_drift["relation"]
    assert relation["bmi"]["drifted"] and relation["bmi"]["shift"] > 0.5
    assert any("errors moved along bmi" in r for r in result.concept_drift["reasons"])


def test_a_model_that_predicts_too_high_moves_its_residuals(model):
    result = model.check(model.window, predict=lambda x: model.estimator.predict(x) + 30)
    residuals = result.concept_drift["residuals"]
    assert residuals["drifted"] and residuals["mean"] < -20 and residuals["normalized_wasserstein"] > 0.4
    assert "concept_drift" in signals(result)


def test_without_holdout_rows_the_estimate_is_skipped_and_the_profile_decides(model):
    result = model.check(model.window, holdout=False)
    estimate = result.estimated_performance
    assert estimate["metrics"] == {} and "without its holdout rows" in estimate["reason"]
    assert "estimated_performance" not in signals(result)
    assert result.concept_drift["relation_method"] == "target by feature bin"
    assert result.concept_drift["residuals"]["method"] == "bias" and not result.concept_drift["detected"]
    assert result.performance["residuals"]["reference_counts"] is None
    mean = model.frame["target"].mean()
    flipped = model.check(model.window, truth=2 * mean - model.window["target"], holdout=False)
    assert any(r["drifted"] for r in flipped.concept_drift["relation"].values())
    too_high = model.check(model.window, predict=lambda x: model.estimator.predict(x) + 30, holdout=False)
    residuals = too_high.concept_drift["residuals"]
    assert residuals["drifted"] and "too high" in residuals["reason"]


def test_mae_gaps_between_groups_raise_fairness(model):
    config = MonitorConfig(min_labels=50, sensitive_column="sex")
    fair = model.check(model.window, config=config)
    assert fair.fairness["task"] == "regression" and not fair.fairness["breached"]
    assert set(fair.fairness["differences"]) == {"mae_difference", "mae_ratio", "relative_mae_gap", "mae_gap_pvalue"}
    assert sum(g["count"] for g in fair.fairness["groups"].values()) == len(model.window)
    one_sex = model.window["sex"].max()
    biased = model.check(model.window, config=config,
                         predict=lambda x: model.estimator.predict(x) + np.where(x["sex"] == one_sex, 60, 0))
    assert biased.fairness["breached"] and "fairness" in signals(biased)
    alert = next(a for a in biased.alerts if a.signal == "fairness")
    assert alert.evidence["sensitive_column"] == "sex" and alert.evidence["relative_mae_gap"] > 0.3


def test_the_task_comes_from_the_caller_then_metrics_then_the_predictions(model):
    inputs, outputs, labels = model.serve(model.window)
    untold = {k: v for k, v in model.metrics.items() if k != "task"}
    assert evaluate(model.profile, untold, inputs, outputs, labels, config=CONFIG).task == "regression"
    assert model_task("binary") == model_task(None, {"task": "multiclass"}) == "classification"
    assert model_task(None, {"classes": [0, 1]}, predictions=[0.5, 1.5, 2.25]) == "classification"
    assert model_task(None, {}, predictions=np.linspace(0, 1, 200)) == "regression"
    assert model_task(None, {}, predictions=[0, 1, 1, 0]) == "classification"
    with pytest.raises(ValueError, match="task 'ranking' is not one of"):
        evaluate(model.profile, model.metrics, inputs, outputs, labels, task="ranking")


def test_true_values_arrive_as_text_and_bad_ones_are_counted():
    outputs = pd.DataFrame({"request_id": ["a", "b", "c", "d"], "prediction": [1.5, 2.0, None, 4.0]})
    rows = outputs_with_targets(outputs, {"a": "151.0", "b": "n/a", "c": "3", "d": 7})
    assert rows["request_id"].tolist() == ["a", "d"] and rows["label"].tolist() == [151.0, 7.0]
    assert rows.attrs["unknown_labels"] == 1 and rows.attrs["unknown_label_examples"] == ["n/a"]
    assert rows.attrs["unknown_predictions"] == 1


def test_regression_metrics_match_scikit_learn(model):
    from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, r2_score, root_mean_squared_error
    y, p = model.window["target"], model.estimator.predict(model.window[model.features])
    ours = regression_metrics(y, p)
    assert ours["mae"] == pytest.approx(mean_absolute_error(y, p)) and ours["r2"] == pytest.approx(r2_score(y, p))
    assert ours["rmse"] == pytest.approx(root_mean_squared_error(y, p))
    assert ours["mape"] == pytest.approx(mean_absolute_percentage_error(y, p))
    assert regression_metrics([1.0, 0.0], [1.0, 1.0])["mape"] is None
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None
