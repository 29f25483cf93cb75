"""The monitor timer submits a monitoring job and returns; the job's completion (or failure) event stores the
pass and publishes its alerts once. On in-memory ports: the job's outputs are what monitoring/run.py writes."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifecycle.core.incoming_events import RunCompleted, RunStatusChanged
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import MonitorRun
from lifecycle.handlers.azureml_runs import run_completed, run_status_changed
from lifecycle.handlers.monitoring import monitor
from tests.fakes import fake_platform

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALERT = "mlops-endpoint/green/m:2/data_drift"


def live(**settings):
    p = fake_platform(monitor_min_rows=200, monitor_min_labels=100, model_name="m", **settings)
    p.state.create(Rollout(endpoint="mlops-endpoint", rollout_id="r1", model="m:2", colour="green", phase="promoted",
                           started_at="2026-11-23T11:30:00Z"))
    from lifecycle.core.platform_values import ModelReference
    p.registry.references["m:2"] = ModelReference({"features": {}}, {})
    p.collected.rows[("green", "model_inputs")] = [{"x": 1.0, "request_id": "r1"}]
    return p


def job_wrote(p, job: str, alerts: list[tuple[str, str]], rows: int = 800) -> None:
    """result.json and alerts.json as monitoring/run.py writes them, for (signal, condition) pairs."""
    listed = [{"type": "MLOps.DriftDetected", "condition": c, "signal": s, "alert_id": f"mlops-endpoint/green/m:2/{s}",
               "summary": f"{s} {c.lower()}"} for s, c in alerts]
    result = {"window": {"rows": rows, "labelled": 0}, "drift": {"drifted_features": ["x"]}, "alerts": listed}
    events = [{"type": a["type"], "data": {"alertId": a["alert_id"], "condition": a["condition"], "signal": a["signal"],
                                           "summary": a["summary"], "evidence": {}}} for a in listed]
    p.jobs.outputs[(job, "report", "result.json")] = json.dumps(result).encode()
    p.jobs.outputs[(job, "report", "alerts.json")] = json.dumps(events).encode()
    p.jobs.finish(job)


def event(kind, request, status: str = "Completed"):
    common = dict(id=f"{kind.__name__}-{request.job_name}-{status}", subject=f"experiments/e/runs/{request.job_name}",
                  event_time=None, experiment_id="e", experiment_name=request.experiment, run_id=request.job_name,
                  run_type="azureml.scriptrun", run_tags=request.tags)
    return kind(**common) if kind is RunCompleted else kind(**common, run_status=status)


def test_the_tick_submits_a_job_named_by_its_window_and_returns():
    p = live(drift_thresholds="psi=0.3", sensitive_column="region")
    run = monitor(p, NOW)
    assert run.status == "Submitted" and run.job and p.events.published == []
    [request] = p.jobs.monitoring
    assert request.job_name == run.job and request.job_name.startswith("monitor-mlops-endpoint-20261123t120000-")
    assert request.tags["mlops.component"] == "monitoring" and request.tags["mlops.monitor_run"] == run.run_id
    inputs = request.inputs()
    assert inputs["model"] == "m:2" and inputs["window_start"] == "2026-11-23T11:30:00+00:00"
    # only the window's hours: the job reads no older day
    assert inputs["model_inputs"] == "http://storage/azureml/modelDataCollector/mlops-endpoint/green/model_inputs/2026/11/23/"
    assert inputs["labels"].endswith("/feedback/")                      # the feedback container, beside the data
    assert (inputs["drift_thresholds"], inputs["sensitive_column"], inputs["min_rows"]) == ("psi=0.3", "region", 200)
    assert "previous_alerts" not in inputs                              # no pass before it
    assert monitor(p, NOW) == run and len(p.jobs.monitoring) == 1       # a replayed tick finds the job


def test_one_pass_at_a_time_and_a_lost_completion_is_settled_by_the_next_tick():
    p = live()
    first = monitor(p, NOW)
    assert monitor(p, NOW + timedelta(seconds=20)).run_id == first.run_id     # still running: nothing new
    job_wrote(p, first.job, [("data_drift", "Fired")])                       # it ends; its event never comes
    second = monitor(p, NOW + timedelta(seconds=40))
    assert p.state.get(MonitorRun, first.run_id).alerts == (ALERT,)
    assert [d["alertId"] for _, _, d in p.events.published] == [ALERT]
    assert second.run_id != first.run_id and second.status == "Submitted"
    assert p.jobs.monitoring[-1].previous_alerts == (ALERT,)                # so the next pass can resolve it


def test_completion_stores_the_result_and_publishes_each_alert_once():
    p = live()
    monitor(p, NOW)
    request = p.jobs.monitoring[-1]
    job_wrote(p, request.job_name, [("data_drift", "Fired"), ("concept_drift", "Resolved")])
    run = run_completed(event(RunCompleted, request), p)
    assert run.status == "Completed" and run.published and run.alerts == (ALERT,)
    assert run.result["drift"]["drifted_features"] == ["x"]
    assert run.result["utilisation"]["recommendation"] == "keep"          # FakeMetrics: 35% CPU, one instance
    subjects = {s for _, s, _ in p.events.published}
    assert [(t, d["condition"]) for t, _, d in p.events.published] == [("MLOps.DriftDetected", "Fired"),
                                                                       ("MLOps.DriftDetected", "Resolved")]
    assert subjects == {"/endpoints/mlops-endpoint/deployments/green"}
    assert run_completed(event(RunCompleted, request), p) == run                   # redelivered
    assert run_status_changed(event(RunStatusChanged, request, "Completed"), p) is None
    assert len(p.events.published) == 2


def test_a_completion_cut_short_before_publishing_publishes_when_delivered_again():
    from dataclasses import replace
    p = live()
    monitor(p, NOW)
    request = p.jobs.monitoring[-1]
    job_wrote(p, request.job_name, [("data_drift", "Fired")])
    run_completed(event(RunCompleted, request), p)
    p.events.published.clear()
    p.state.update(MonitorRun, request.run_id, lambda r: replace(r, published=False))     # the crash's point
    assert run_completed(event(RunCompleted, request), p).published
    assert [d["alertId"] for _, _, d in p.events.published] == [ALERT]


def test_a_failed_job_is_a_failed_pass_with_its_reason():
    p = live()
    monitor(p, NOW)
    request = p.jobs.monitoring[-1]
    p.jobs.finish(request.job_name, "Failed", error="DRIFT_THRESHOLDS names unknown metrics psi2")
    assert run_status_changed(event(RunStatusChanged, request, "Running"), p) is None
    run = run_status_changed(event(RunStatusChanged, request, "Failed"), p)
    assert run.status == "Failed" and "unknown metrics psi2" in run.error and p.events.published == []
    assert monitor(p, NOW + timedelta(minutes=1)).status == "Submitted"    # the next tick goes on


def test_a_completion_whose_record_was_lost_is_stored_from_the_jobs_tags():
    p = live()
    monitor(p, NOW)
    request = p.jobs.monitoring[-1]
    p.state.docs.pop((MonitorRun.COLLECTION, request.run_id))
    job_wrote(p, request.job_name, [("data_drift", "Fired")])
    run = run_completed(event(RunCompleted, request), p)
    assert (run.run_id, run.model, run.window_start, run.alerts) == (request.run_id, "m:2", request.window_start,
                                                                     (ALERT,))


def test_no_collected_data_is_a_warning_with_the_place_looked_at_and_no_job():
    p = live()
    p.collected.rows.clear()
    run = monitor(p, NOW)
    again = monitor(p, NOW + timedelta(minutes=1))
    assert run.status == again.status == "NoData" and p.jobs.monitoring == []
    assert "no collected data at http://storage/azureml/modelDataCollector/mlops-endpoint/green/" in again.warning
    assert [r.run_id for r in p.state.list(MonitorRun)] == [run.run_id]     # one record, kept current
    assert again.window_end == (NOW + timedelta(minutes=1)).isoformat()


def test_a_training_run_still_goes_to_the_gate():
    p = live()
    from lifecycle.core.platform_values import TrainingRequest
    training = TrainingRequest(job_name="train-m-data-1", model_name="m", data="http://storage/data/x/", target="y",
                               trigger="data")
    p.jobs.submit(training)
    p.jobs.finish(training.job_name, metrics={"metrics": {"f1": 0.9}})
    assert run_status_changed(event(RunStatusChanged, training, "Running"), p) is None
    decision = run_completed(event(RunCompleted, training), p)
    assert decision.outcome == "registered" and p.state.list(MonitorRun) == []


def test_the_function_path_of_a_monitoring_pass_imports_no_numeric_library():
    code = """
import sys
from datetime import datetime, timezone
import function_app
from tests.lifecycle.test_monitoring_job import live, job_wrote, event, NOW
from lifecycle.core.incoming_events import RunCompleted
from lifecycle.handlers.monitoring import monitor
from lifecycle.handlers.azureml_runs import run_completed
p = live()
monitor(p, NOW)
request = p.jobs.monitoring[-1]
job_wrote(p, request.job_name, [("data_drift", "Fired")])
assert run_completed(event(RunCompleted, request), p).published
print(sorted(m for m in ("numpy", "pandas", "scipy", "sklearn", "fairlearn", "pyarrow") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
