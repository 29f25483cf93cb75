"""The new kinds of drift through one monitoring pass: multivariate, label and attribution drift fire and resolve."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import monitoring.monitor as monitor
from monitoring.monitor import SIGNAL_EVENTS, MonitorConfig, evaluate
from monitoring.multivariate import multivariate_drift
from tests.monitoring.test_monitor import WINDOW, Model, make
from training.multivariate_profile import multivariate_profile


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


def holdout(model: Model) -> pd.DataFrame:
    rows = make(2000, 2)
    return rows.assign(prediction=model.estimator.predict(model.x(rows)))


def fired(result) -> set[str]:
    return {a.signal for a in result.alerts if a.condition == "Fired"}


def test_the_new_signals_are_drift_events():
    assert {SIGNAL_EVENTS[s] for s in ("multivariate_drift", "label_drift", "attribution_drift")} == {
        "MLOps.DriftDetected"}


def test_label_and_attribution_drift_fire_and_resolve(model):
    metrics = {**model.metrics, "target": "y"}
    stable = make(1500, 10)
    result = evaluate(model.profile, metrics, *model.serve(stable), config=MonitorConfig(), window=WINDOW,
                      holdout=holdout(model))
    assert not fired(result) & {"label_drift", "attribution_drift"}
    doc = result.to_dict()
    assert doc["label_drift"]["drifted"] is False and doc["attribution_drift"]["ndcg"] > 0.9
    # the label now follows the group, not x1: 80 % ones, and what carries them changes
    moved = stable.assign(y=np.where(stable["group"] == "a", 1, np.random.default_rng(3).random(1500) < 0.6))
    moved["y"] = moved["y"].astype(int)
    breached = evaluate(model.profile, metrics, *model.serve(moved), config=MonitorConfig(), window=WINDOW,
                        holdout=holdout(model))
    assert {"label_drift", "attribution_drift"} <= fired(breached)
    alert = next(a for a in breached.alerts if a.signal == "attribution_drift")
    assert alert.alert_id == "ep/blue/m:1/attribution_drift" and alert.evidence["ndcg"] < 0.9
    again = evaluate(model.profile, metrics, *model.serve(stable), config=MonitorConfig(), window=WINDOW,
                     holdout=holdout(model), previous_alerts=tuple(a.alert_id for a in breached.alerts))
    resolved = {a.signal for a in again.alerts if a.condition == "Resolved"}
    assert {"label_drift", "attribution_drift"} <= resolved


def test_multivariate_drift_fires_and_resolves(model, monkeypatch):
    train = make(4000, 1)
    spec = multivariate_profile(train[["x1", "x2", "group"]], model.profile["features"], seed=0)
    assert spec is not None
    compare = monitor.compare
    seen: dict = {}

    def with_rows(profile, current, thresholds):      # the window's row sample, as compare takes it from the window
        report = compare(profile, current, thresholds)
        report.multivariate = multivariate_drift(spec, seen["rows"], thresholds)
        return report

    monkeypatch.setattr(monitor, "compare", with_rows)

    def check(frame, previous=()):
        seen["rows"] = frame[["x1", "x2", "group"]]
        inputs, outputs, labels = model.serve(frame, labelled=False)
        window = monitor.CurrentWindow.for_profile(model.profile)
        window.update(inputs.drop(columns=["request_id"]))
        return evaluate(model.profile, model.metrics, inputs, outputs, labels, current=window, window=WINDOW,
                        previous_alerts=previous)

    assert "multivariate_drift" not in fired(check(make(2000, 10)))
    # x2 now follows x1: both marginals stay standard normal, their relation is new
    frame = make(2000, 11)
    frame["x2"] = 0.9 * frame["x1"] + np.sqrt(1 - 0.81) * frame["x2"]
    breached = check(frame)
    assert "multivariate_drift" in fired(breached)
    alert = next(a for a in breached.alerts if a.signal == "multivariate_drift")
    assert alert.evidence["domain_classifier"]["drifted"] or alert.evidence["pca"]["drifted"]
    again = check(make(2000, 12), previous=tuple(a.alert_id for a in breached.alerts))
    assert "multivariate_drift" in {a.signal for a in again.alerts if a.condition == "Resolved"}
