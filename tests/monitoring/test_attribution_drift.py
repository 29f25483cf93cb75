"""Feature attribution drift: NDCG of the features' information on the label, production against the holdout."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes

from monitoring.attribution_drift import attribution_drift
from monitoring.drift import Thresholds
from training.reference_profile import build_profile


def test_random_halves_of_real_tables_raise_no_attribution_drift():
    alarms = 0
    for frame, regression in ((load_breast_cancer(as_frame=True).frame, False),
                              (load_diabetes(as_frame=True).frame, True)):
        features = build_profile(frame.drop(columns="target"))["features"]
        for seed in range(10):
            order = np.random.default_rng(seed).permutation(len(frame))
            holdout, window = frame.iloc[order[:len(frame) // 2]], frame.iloc[order[len(frame) // 2:]]
            result = attribution_drift(holdout, holdout["target"], window, window["target"], features, Thresholds(),
                                       regression=regression)
            alarms += result["drifted"]
            assert result["ndcg"] is not None
    assert alarms <= 1


def test_a_label_that_moved_to_another_feature_is_attribution_drift():
    frame = load_breast_cancer(as_frame=True).frame
    features = build_profile(frame.drop(columns="target"))["features"]
    holdout, window = frame.iloc[:300], frame.iloc[300:]
    moved = (window["mean fractal dimension"] > window["mean fractal dimension"].median()).astype(int)
    result = attribution_drift(holdout, holdout["target"], window, moved, features, Thresholds())
    assert result["drifted"] and result["ndcg"] < 0.9
    assert result["top_current"][0] == "mean fractal dimension"
    assert "NDCG" in result["reason"] and result["threshold"] == 0.9


def test_too_few_rows_is_no_verdict_and_categorical_features_count():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=600), "site": rng.choice(["a", "b", "c"], 600)})
    frame["y"] = (frame["site"] == "a").astype(int)
    features = build_profile(frame.drop(columns="y"))["features"]
    result = attribution_drift(frame.iloc[:300], frame["y"].iloc[:300], frame.iloc[300:], frame["y"].iloc[300:],
                               features, Thresholds())
    assert not result["drifted"] and result["top_reference"][0] == "site"
    few = attribution_drift(frame.iloc[:300], frame["y"].iloc[:300], frame.iloc[:5], frame["y"].iloc[:5],
                            features, Thresholds())
    assert few["ndcg"] is None and "not judged" in few["reason"]
