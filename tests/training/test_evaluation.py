"""Holdout calibration (training/evaluation.py): the expected calibration error monitoring's CBPE relies on."""
from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import calibration


def test_binary_ece_is_the_positive_class_reliability_on_ten_bins():
    y = np.array([0, 1, 1, 0, 1, 1, 0, 0])
    p = np.array([0.05, 0.15, 0.55, 0.55, 0.95, 0.99, 0.12, 1.0])      # bins 0, 1, 5, 5, 9, 9, 1, 9
    result = calibration(y, np.column_stack([1 - p, p]), [0, 1], [0, 1])
    by_hand = (1 * abs(0 - 0.05) + 2 * abs(0.5 - 0.135) + 2 * abs(0.5 - 0.55)
               + 3 * abs(2 / 3 - (0.95 + 0.99 + 1.0) / 3)) / 8
    assert result["expected_calibration_error"] == pytest.approx(by_hand)
    assert (result["bins"], result["method"], result["rows"]) == (10, "positive_class", 8)
    assert result["reliability"]["counts"] == [1, 2, 0, 0, 0, 2, 0, 0, 0, 3]
    assert result["reliability"]["observed"][2] is None
    # the columns are found by class, whatever their order in the model
    assert calibration(y, np.column_stack([p, 1 - p]), [1, 0], [0, 1]) == result


def test_a_calibrated_model_scores_near_its_sampling_noise_and_an_overconfident_one_far_above():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.random(20_000) < p).astype(int)
    good = calibration(y, np.column_stack([1 - p, p]), [0, 1], [0, 1])
    assert good["expected_calibration_error"] < 2 * good["sampling_noise"] < 0.02
    sharp = 1 / (1 + np.exp(-4 * np.log(p / (1 - p))))
    bad = calibration(y, np.column_stack([1 - sharp, sharp]), [0, 1], [0, 1])
    assert bad["expected_calibration_error"] > 0.1


def test_multiclass_is_top_label_with_a_classwise_figure():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([2, 2, 2], 30_000)
    y = (rng.random(30_000)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    names = np.array(["a", "b", "c"])
    result = calibration(names[y], proba, ["a", "b", "c"], ["a", "b", "c"])
    assert result["method"] == "top_label" and result["rows"] == 30_000
    assert result["expected_calibration_error"] < 0.02 and result["classwise_expected_calibration_error"] < 0.02
    top = proba.max(axis=1)
    assert sum(result["reliability"]["counts"]) == 30_000 and result["reliability"]["counts"][:3] == [0, 0, 0]
    assert result["reliability"]["mean_probability"][9] == pytest.approx(top[top >= 0.9].mean())
    assert calibration(names[y], proba[:, :2], ["a", "b"], ["a", "b", "c"]) is None     # a class without probabilities
