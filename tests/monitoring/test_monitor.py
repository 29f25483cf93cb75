"""One monitoring pass on a real scikit-learn model: which signals fire for which change in production."""
from __future__ import annotations

from datetime import UTC

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from monitoring.monitor import MonitorConfig, evaluate
from training.evaluation import calibration, classification_metrics
from training.reference_profile import build_profile

FEATURES = ["x1", "x2", "group"]
WINDOW = {"start": "2026-11-23T11:00:00+00:00", "end": "2026-11-23T12:00:00+00:00", "endpoint": "ep",
          "deployment": "blue", "model": "m:1"}


def make(n: int, seed: int, shift: float = 0.0, flipped: bool = False, leak: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, n), rng.normal(0, 1, n)
    group = rng.choice(["a", "b"], n)
    logit = 2.5 * (x1 if not flipped else -x1) + 0.5 * x2 + leak * np.where(group == "a", 1, -1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "y": y})


class Model:
    """A model trained as training/train.py would, with what it saves for monitoring."""

    def __init__(self, leak: float = 0.0) -> None:
        train, hold = make(4000, 1, leak=leak), make(2000, 2, leak=leak)
        self.estimator = LogisticRegression().fit(self.x(train), train["y"])
        proba = self.estimator.predict_proba(self.x(hold))
        predicted = self.estimator.predict(self.x(hold))
        self.metrics = {"classes": [0, 1], "positive_class": 1, "rows": {"holdout": len(hold)},
                        "class_balance": {"0": int((hold.y == 0).sum()), "1": int((hold.y == 1).sum())},
                        "metrics": classification_metrics(hold["y"], predicted, proba, [0, 1], [0, 1]),
                        "calibration": calibration(hold["y"], proba, [0, 1], [0, 1])}
        self.profile = build_profile(train, "y",
                                     outputs={"prediction": pd.Series(self.estimator.predict(self.x(train)))})

    @staticmethod
    def x(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.get_dummies(frame[FEATURES], columns=["group"], dtype=float).reindex(
            columns=["x1", "x2", "group_a", "group_b"], fill_value=0.0)

    def serve(self, frame: pd.DataFrame, labelled: bool = True):
        ids = [f"r{i}" for i in range(len(frame))]
        proba = self.estimator.predict_proba(self.x(frame))
        inputs = frame[FEATURES].assign(request_id=ids)
        outputs = pd.DataFrame({"prediction": self.estimator.predict(self.x(frame)), "probability_0": proba[:, 0],
                                "probability_1": proba[:, 1], "request_id": ids})
        labels = {i: str(v) for i, v in zip(ids, frame["y"])} if labelled else {}    # labels arrive as text (CSV)
        return inputs, outputs, labels

    def check(self, frame: pd.DataFrame, labelled: bool = True,
              config: MonitorConfig = MonitorConfig(), previous=()):  # noqa: B008  (frozen, shared safely)
        return evaluate(self.profile, self.metrics, *self.serve(frame, labelled), config=config, window=WINDOW,
                        previous_alerts=previous)


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


def signals(result) -> set[str]:
    return {a.signal for a in result.alerts if a.condition == "Fired"}


def test_a_stable_window_raises_nothing_and_reports_every_section(model):
    result = model.check(make(1500, 10))
    assert signals(result) == set()
    doc = result.to_dict()
    assert doc["window"]["rows"] == 1500 and doc["window"]["labelled"] == 1500
    assert doc["performance"]["metrics"]["accuracy"] == pytest.approx(model.metrics["metrics"]["accuracy"], abs=0.05)
    assert doc["estimated_performance"]["method"] == "CBPE"
    assert doc["concept_drift"]["detected"] is False


def test_shifted_inputs_raise_data_drift_on_that_feature_only(model):
    result = model.check(make(1500, 11, shift=1.0), labelled=False)
    assert "data_drift" in signals(result)
    assert result.drift.drifted_features == ["x1"]
    alert = next(a for a in result.alerts if a.signal == "data_drift")
    assert alert.event_type == "MLOps.DriftDetected" and alert.alert_id == "ep/blue/m:1/data_drift"
    assert set(alert.data()["evidence"]) == {"x1"}


def test_a_flipped_concept_is_concept_drift_while_input_drift_stays_quiet(model):
    result = model.check(make(1500, 12, flipped=True))
    assert result.drift.drifted_features == []
    assert "concept_drift" in signals(result) and "data_drift" not in signals(result)
    assert result.to_dict()["concept_drift"]["relation"]["x1"]["drifted"] is True
    alert = next(a for a in result.alerts if a.signal == "concept_drift")
    assert alert.event_type == "MLOps.PerformanceDegraded"
    reasons = result.to_dict()["concept_drift"]["reasons"]
    assert alert.summary == "; ".join(r.rstrip(".") for r in reasons) and "more)" not in alert.summary


def test_a_biased_model_raises_a_fairness_alert_on_the_sensitive_column():
    biased = Model(leak=2.0)
    config = MonitorConfig(sensitive_column="group")
    result = biased.check(make(1500, 13, leak=2.0), config=config)
    assert "fairness" in signals(result)
    assert result.fairness["demographic_parity_difference"] > 0.3
    fair = Model().check(make(1500, 14), config=config)
    assert "fairness" not in signals(fair)


def test_too_few_labels_skip_the_labelled_signals(model):
    inputs, outputs, labels = model.serve(make(500, 15))
    few = dict(list(labels.items())[:20])
    result = evaluate(model.profile, model.metrics, inputs, outputs, few, config=MonitorConfig(min_labels=100))
    assert result.labelled == 20 and result.performance is None and result.concept_drift is None


def test_a_signal_that_clears_is_published_as_resolved(model):
    result = model.check(make(1500, 16), previous=("ep/blue/m:1/data_drift",))
    resolved, = result.alerts
    assert ((resolved.signal, resolved.condition, resolved.event_type)
            == ("data_drift", "Resolved", "MLOps.DriftDetected"))


def test_unknown_threshold_names_are_refused():
    from lifecycle.bootstrap import build_policies
    from lifecycle.settings import Settings

    def config(thresholds: str) -> MonitorConfig:      # as the monitoring job gets DRIFT_THRESHOLDS
        policy = build_policies(Settings(storage_connection="x", drift_thresholds=thresholds)).monitor
        return MonitorConfig.create(dict(policy.drift_thresholds), policy.min_labels, policy.sensitive_column)
    with pytest.raises(ValueError, match="unknown metrics wasserstein_typo"):
        config("wasserstein_typo=0.2")
    assert config("psi=0.3").thresholds.psi == 0.3


# ---- the monitor timer's handler, on in-memory ports ---------------------------------------------------------

def live_platform(model: Model, frame: pd.DataFrame, **settings):
    from datetime import datetime

    from lifecycle.core.platform_values import ModelReference
    from lifecycle.core.rollout_machine import Rollout
    from tests.fakes import fake_platform
    p = fake_platform(monitor_min_rows=200, monitor_min_labels=100, **settings)
    p.state.create(Rollout(endpoint="mlops-endpoint", rollout_id="r1", model="tabular-classifier:2", colour="green",
                           phase="promoted", started_at="2026-11-23T11:30:00Z"))
    p.registry.references["tabular-classifier:2"] = ModelReference(model.profile, model.metrics)
    inputs, outputs, labels = model.serve(frame)
    p.collected.rows[("green", "model_inputs")] = inputs.to_dict("records")
    p.collected.rows[("green", "model_outputs")] = outputs.to_dict("records")
    p.feedback.given = labels
    return p, datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def run_the_job(p, request, model: Model, folder) -> None:
    """What Azure ML (or the local stand-in) does with the submitted job: monitoring/run.py over the collected
    rows written as the data collector writes them, its outputs kept as the job's `report` folder."""
    import json

    from monitoring import run as runner
    from tests.monitoring.test_monitoring_job import collector_lines
    model_dir = folder / "model"
    (model_dir / "reference").mkdir(parents=True)
    (model_dir / "reference" / "profile.json").write_text(json.dumps(model.profile))
    (model_dir / "metrics.json").write_text(json.dumps({**model.metrics, "model_name": "tabular-classifier",
                                                        "target": "y"}))
    for collection in ("model_inputs", "model_outputs"):
        (folder / collection).mkdir()
        (folder / collection / "part.jsonl").write_text(
            collector_lines(p.collected.rows[(request.deployment, collection)], collection))
    (folder / "labels").mkdir()
    (folder / "labels" / "day.csv").write_text(
        "request_id,y\n" + "".join(f"{k},{v}\n" for k, v in p.feedback.given.items()))
    values = request.inputs()
    argv = ["--model", str(model_dir), "--inputs", str(folder / "model_inputs"),
            "--outputs", str(folder / "model_outputs"),
            "--labels", str(folder / "labels"), "--output", str(folder / "report"), "--start", values["window_start"],
            "--end", values["window_end"], "--endpoint", values["endpoint"], "--deployment", values["deployment"],
            "--model-id", values["model_id"], "--min-rows", str(values["min_rows"]),
            "--min-labels", str(values["min_labels"]), "--previous-alerts", values.get("previous_alerts", "")]
    assert runner.main(argv) == 0
    for name in ("result.json", "alerts.json"):
        p.jobs.outputs[(request.job_name, "report", name)] = (folder / "report" / name).read_bytes()
    p.jobs.finish(request.job_name)


def completed(request):
    from lifecycle.core.incoming_events import RunCompleted
    return RunCompleted(id=f"e-{request.job_name}", subject=f"experiments/x/runs/{request.job_name}", event_time=None,
                        experiment_id="x", experiment_name="mlops-monitoring", run_id=request.job_name,
                        run_type="azureml.scriptrun", run_tags=request.tags)


def test_the_monitor_job_stores_the_run_and_publishes_each_alert_once(model, tmp_path):
    from lifecycle.handlers.azureml_runs import run_completed
    from lifecycle.handlers.monitoring import monitor
    p, now = live_platform(model, make(800, 20, shift=1.0))
    submitted = monitor(p, now)
    assert submitted.status == "Submitted" and p.events.published == []
    assert submitted.window_start == "2026-11-23T11:30:00+00:00"     # no earlier than the rollout that made it live
    request = p.jobs.monitoring[-1]
    run_the_job(p, request, model, tmp_path)
    run = run_completed(completed(request), p)                        # the job's RunCompleted
    assert run.deployment == "green" and run.model == "tabular-classifier:2" and run.status == "Completed"
    assert "mlops-endpoint/green/tabular-classifier:2/data_drift" in run.alerts
    published = [(t, d["signal"]) for t, _, d in p.events.published]
    assert ("MLOps.DriftDetected", "data_drift") in published
    assert run.result["utilisation"]["recommendation"]                # traffic and load, from the Metrics port
    # the same signals and alert ids as the computation in one process
    inline = evaluate(model.profile, model.metrics, *model.serve(make(800, 20, shift=1.0)),
                      window={"endpoint": "mlops-endpoint", "deployment": "green", "model": "tabular-classifier:2"})
    assert set(run.alerts) == {a.alert_id for a in inline.alerts}
    assert run.result["drift"]["drifted_features"] == inline.drift.drifted_features
    assert run_completed(completed(request), p) == run and len(p.events.published) == len(published)   # redelivered
    assert monitor(p, now) == run                                     # a replayed tick


def test_nothing_is_monitored_during_a_rollout_and_too_little_traffic_is_said(model, tmp_path):
    from dataclasses import replace

    from lifecycle.core.rollout_machine import Rollout
    from lifecycle.handlers.azureml_runs import run_completed
    from lifecycle.handlers.monitoring import monitor
    p, now = live_platform(model, make(100, 21))
    monitor(p, now)
    request = p.jobs.monitoring[-1]
    run_the_job(p, request, model, tmp_path)
    run = run_completed(completed(request), p)
    assert run.alerts == () and p.events.published == []
    assert "100 rows collected in the window, fewer than MONITOR_MIN_ROWS (200)" in run.result["skipped"]
    p, now = live_platform(model, make(800, 22))
    p.state.update(Rollout, "mlops-endpoint", lambda r: replace(r, phase="canary"))
    assert monitor(p, now) is None and p.jobs.monitoring == [] and p.events.published == []
