"""The registration gate per task: a metric's direction decides whether the floor is a floor or a ceiling,
which way the margin runs, and which score the leak check reads."""
from __future__ import annotations

import pytest

from lifecycle.core.policies import GatePolicy
from lifecycle.core.registration_gate import FAIL, HOLD, PASS, better_direction, judge


@pytest.mark.parametrize("metric", ["f1", "accuracy", "precision", "recall", "roc_auc", "r2", "F1"])
def test_scores_are_better_higher(metric):
    assert better_direction(metric) == "higher"


@pytest.mark.parametrize("metric", ["mae", "rmse", "mse", "mape", "log_loss", "RMSE", "mean_squared_error",
                                    "hinge_loss"])
def test_errors_and_losses_are_better_lower(metric):
    assert better_direction(metric) == "lower"


def regression(rmse: float, champion: float | None = None, *, r2: float = 0.8, alone_r2: float = 0.3) -> dict:
    return {"task": "regression", "metrics": {"mae": rmse * 0.8, "rmse": rmse, "r2": r2, "mape": None},
            "champion": None if champion is None else {"mae": champion * 0.8, "rmse": champion, "r2": 0.7},
            "champion_error": None, "champion_model": "/m" if champion is not None else None,
            "compatibility": {"compatible": True} if champion is not None else None,
            "single_feature": {"method": "bin_mean", "baseline": {"r2": -0.01, "mae": 60.0, "rmse": 70.0},
                               "best": {"r2": {"feature": "s5", "value": alone_r2}}}}


CEILING = GatePolicy(metric="rmse", floor=2.5, margin=0.1)


def test_an_error_above_the_ceiling_fails_in_words():
    verdict = judge(regression(3.1), CEILING)
    assert verdict.outcome == FAIL
    assert verdict.reasons == ("rmse 3.1000 is above the ceiling 2.5000",)


def test_an_error_under_the_ceiling_passes_and_says_so():
    verdict = judge(regression(2.0), CEILING)
    assert verdict.outcome == PASS and verdict.challenger == 2.0
    assert verdict.reasons == ("rmse 2.0000 ≤ ceiling 2.5000; no champion (first model)",)


def test_the_margin_runs_upward_for_an_error():
    assert judge(regression(2.05, champion=2.0), CEILING).outcome == PASS           # within the margin
    assert judge(regression(1.5, champion=2.0), CEILING).outcome == PASS            # better: lower
    worse = judge(regression(2.2, champion=2.0), CEILING)
    assert worse.outcome == FAIL and worse.champion == 2.0
    assert worse.reasons == ("rmse 2.2000 is worse than the champion's 2.0000 by more than the margin 0.1000 "
                             "(lower is better)",)


def test_a_score_keeps_its_floor_and_downward_margin():
    policy = GatePolicy(metric="r2", floor=0.5, margin=0.02)
    assert judge(regression(50.0, r2=0.4), policy).reasons == ("r2 0.4000 is below the floor 0.5000",)
    doc = regression(50.0, champion=45.0, r2=0.6)
    doc["champion"]["r2"] = 0.7
    assert "worse than the champion's 0.7000" in judge(doc, policy).reasons[0]
    doc["champion"]["r2"] = 0.61
    assert judge(doc, policy).outcome == PASS


def test_a_classification_gate_is_unchanged():
    policy = GatePolicy(metric="f1", floor=0.6, margin=0.02)
    doc = {"task": "classification", "metrics": {"f1": 0.55}, "champion": None}
    assert judge(doc, policy).reasons == ("f1 0.5500 is below the floor 0.6000",)
    doc = {"task": "classification", "metrics": {"f1": 0.9}, "champion": {"f1": 0.95}, "champion_model": "/m",
           "compatibility": {"compatible": True}}
    assert judge(doc, policy).outcome == FAIL
    doc["champion"] = {"f1": 0.91}
    assert judge(doc, policy).reasons == ("f1 0.9000 ≥ floor 0.6000; champion 0.9100 (margin 0.0200)",)


def test_a_metric_of_the_other_task_fails_naming_what_the_job_reports():
    verdict = judge(regression(2.0), GatePolicy(metric="f1"))
    assert verdict.outcome == FAIL
    assert verdict.reasons == ("the job reported no 'f1' metric (it reports mae, rmse, r2; the gate's metric "
                               "must be one of them)",)


def test_a_regression_leak_is_held_whatever_the_gate_metric():
    """A near-perfect r2 that one feature reaches alone from the mean predictor's 0: held, also when the
    gate judges rmse, which has no near-perfect level of its own."""
    leaky = regression(0.5, r2=0.995, alone_r2=0.99)
    for policy in (CEILING, GatePolicy(metric="r2", floor=0.5)):
        verdict = judge(leaky, policy)
        assert verdict.outcome == HOLD, policy
        assert verdict.reasons[0].startswith("r2 0.9950 on the holdout, and feature 's5' alone reaches 0.9900")
    assert judge(regression(0.5, r2=0.995, alone_r2=0.5), CEILING).outcome == PASS   # the model adds a lot


def test_a_classifier_judged_on_log_loss_is_checked_for_a_leak_on_f1():
    doc = {"task": "classification", "metrics": {"f1": 1.0, "log_loss": 0.01}, "champion": None,
           "single_feature": {"baseline": {"f1": 0.0}, "best": {"f1": {"feature": "repaid", "value": 0.999}}}}
    verdict = judge(doc, GatePolicy(metric="log_loss", floor=0.3))
    assert verdict.outcome == HOLD and "feature 'repaid' alone reaches 0.9990" in verdict.reasons[0]
