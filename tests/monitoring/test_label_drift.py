"""Label drift on the feedback: class frequencies and a regression target's values against the training labels."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes

from monitoring.drift import Thresholds
from monitoring.label_drift import label_drift
from training.reference_profile import build_profile


def halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[order[:len(frame) // 2]], frame.iloc[order[len(frame) // 2:]]


def test_random_halves_of_real_tables_raise_no_label_drift():
    cancer, diabetes = load_breast_cancer(as_frame=True).frame, load_diabetes(as_frame=True).frame
    alarms = 0
    for seed in range(15):
        training, window = halves(cancer, seed)
        alarms += label_drift(build_profile(training, "target")["target_profile"], window["target"],
                              Thresholds())["drifted"]
        training, window = halves(diabetes, seed)
        alarms += label_drift(build_profile(training, "target", task="regression")["target_profile"],
                              window["target"], Thresholds())["drifted"]
    assert alarms <= 1


def test_a_class_balance_change_is_label_drift():
    rng = np.random.default_rng(1)
    profile = build_profile(pd.DataFrame({"x": rng.normal(size=2000), "y": rng.choice([0, 1], 2000)}), "y")
    labels = ["1"] * 160 + ["0"] * 40            # 50/50 -> 80/20, labels arriving as text
    result = label_drift(profile["target_profile"], labels, Thresholds())
    assert result["drifted"] and result["kind"] == "categorical"
    assert result["current"]["1"] == 0.8 and "Jensen-Shannon" in result["reason"]
    same = label_drift(profile["target_profile"], ["1", "0"] * 100, Thresholds())
    assert not same["drifted"]


def test_a_shifted_regression_target_is_label_drift_and_a_new_class_counts():
    training, window = halves(load_diabetes(as_frame=True).frame, 2)
    spec = build_profile(training, "target", task="regression")["target_profile"]
    result = label_drift(spec, window["target"] + 0.6 * training["target"].std(), Thresholds())
    assert result["drifted"] and result["test"] == "KS" and result["normalized_wasserstein"] > 0.4
    classes = build_profile(pd.DataFrame({"x": range(300), "y": ["a", "b", "c"] * 100}), "y")["target_profile"]
    assert label_drift(classes, ["a", "b", "c", "d"] * 50, Thresholds())["drifted"]


def test_no_labels_or_no_target_is_no_verdict():
    assert label_drift(None, [1, 2], Thresholds())["drifted"] is False
    spec = build_profile(pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]}), "y")["target_profile"]
    assert label_drift(spec, [], Thresholds())["reason"] == "no labels"
