"""Alerts from every source → one dedupe, cooldown and retrain-on-fresh-data path (in-memory ports)."""
import copy
import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.core import alert_sources as alerts
from lifecycle.core import incoming_events as events
from lifecycle.core.retraining import batch_id
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import AlertRecord, Drop, TrainingRun
from lifecycle.handlers.alerts import alert_event
from lifecycle.handlers.azureml_runs import run_status_changed
from lifecycle.steps.alert_response import handle_alert
from tests.fakes import fake_platform

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NOW = datetime.now(UTC)   # records stamp the wall clock (submitted_at), so the tests run on it too


def sample(name: str):
    doc = json.loads((SAMPLES / name).read_text())
    return doc[0] if isinstance(doc, list) else doc


def drift_alert(alert_id: str = "mlops-endpoint/blue/m:1/data_drift", condition: str = "Fired",
                signal: str = "data_drift") -> alerts.Alert:
    event = {"id": f"e-{alert_id}-{condition}", "eventType": "MLOps.DriftDetected", "subject": "/endpoints/x",
             "eventTime": NOW.isoformat(), "dataVersion": "1",
             "data": {"alertId": alert_id, "condition": condition, "signal": signal, "summary": "income drifted"}}
    return alerts.from_event(events.parse(event))


def live(p, deployment: str = "blue", model: str = "tabular-classifier:1") -> None:
    p.state.create(Rollout(endpoint=p.policies.model.endpoint, rollout_id="r1", model=model, colour=deployment,
                           phase="promoted", started_at=(NOW - timedelta(hours=2)).isoformat()))


def labelled_traffic(p, n: int, deployment: str = "blue") -> None:
    p.collected.rows[(deployment, "model_inputs")] = [
        {"age": 20 + i % 50, "income": 1000.0 + i, "region": "north", "request_id": f"r{i}"} for i in range(n)]
    p.feedback.given = {f"r{i}": i % 2 for i in range(n)}


# ---- parsing every source ---------------------------------------------------------------------------------

def test_every_source_becomes_an_alert():
    ours = alerts.from_event(events.parse(sample("mlops_drift_detected.json")))
    assert (ours.source, ours.signal, ours.condition) == ("monitor", "data_drift", "Fired")
    breach = alerts.from_event(events.parse(sample("aml_run_status_changed_monitor_breach.json")))
    assert breach.source == "azureml-model-monitor" and breach.signal == "data_drift"
    assert "violating metric thresholds" in breach.summary
    dataset = alerts.from_event(events.parse(sample("aml_dataset_drift_detected.json")))
    assert dataset.source == "azureml-dataset-monitor" and "drift coefficient" in dataset.summary
    monitor = alerts.from_common_schema(sample("http/azure_monitor_common_alert.json"))
    assert monitor.source == "azure-monitor" and monitor.condition == "Fired"
    assert monitor.evidence["alertRule"] == "mlops-endpoint-latency"


@pytest.mark.parametrize("body, message", [
    ([], "JSON object"),
    ({"schemaId": "Microsoft.Insights/activityLogs", "data": {}}, "only 'azureMonitorCommonAlertSchema'"),
    ({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}}}, "alertId is missing"),
    ({"schemaId": "azureMonitorCommonAlertSchema",
      "data": {"essentials": {"alertId": "a", "monitorCondition": "Maybe"}}},
     "expected 'Fired' or 'Resolved'"),
])
def test_a_body_that_is_not_a_common_schema_alert_is_refused_with_the_reason(body, message):
    with pytest.raises(alerts.AlertError, match=message):
        alerts.from_common_schema(body)


def test_a_run_that_failed_without_a_breach_goes_to_registration_not_to_the_alert_path():
    p = fake_platform()
    p.state.create(TrainingRun(job_name="job-1", model_name="tabular-classifier", trigger="data", data_url="u"))
    event = copy.deepcopy(sample("aml_run_status_changed_failed.json"))
    event["data"]["runId"] = "job-1"
    run_status_changed(events.parse(event), p)
    assert p.state.get(TrainingRun, "job-1").status == "Failed"
    assert p.state.list(AlertRecord) == []


# ---- acting on an alert -----------------------------------------------------------------------------------

def test_a_drift_alert_retrains_on_the_labelled_production_traffic():
    p = fake_platform(monitor_min_labels=50)
    live(p)
    labelled_traffic(p, 120)
    record = handle_alert(drift_alert(), p, NOW)
    assert record.outcome == "retraining" and record.job
    (prefix, files), = p.data.drops.items()
    assert prefix.startswith("production/mlops-endpoint/")
    rows = list(csv.DictReader(io.StringIO(files["part-0000.csv"].decode())))
    assert len(rows) == 120 and set(rows[0]) == {"age", "income", "region", "default"}   # request_id dropped, label in
    request, = p.jobs.submitted
    assert request.trigger == "drift" and request.data_files == (f"{prefix}part-0000.csv",)
    assert p.state.get(Drop, Drop.id_for("data", prefix)).job == request.job_name   # its blob events start nothing


def test_a_redelivered_alert_starts_nothing_new_and_resolved_is_not_a_new_alert():
    p = fake_platform(monitor_min_labels=50)
    live(p)
    labelled_traffic(p, 120)
    first = handle_alert(drift_alert(), p, NOW)
    again = handle_alert(drift_alert(), p, NOW)
    assert again.job == first.job and len(p.jobs.submitted) == 1
    resolved = handle_alert(drift_alert(condition="Resolved"), p, NOW)
    assert resolved.outcome == "resolved" and len(p.jobs.submitted) == 1
    assert p.state.get(AlertRecord, first.key).resolved_at


def test_an_alert_that_fires_again_after_it_resolved_is_acted_on_again_and_its_first_firing_replayed_is_not():
    # Our monitor keeps one alert id per model and signal: the same model breached again weeks later (found by
    # `mlops simulate`: a live model's second drift was taken for the first one and retrained nothing).
    p = fake_platform(monitor_min_labels=50, alert_cooldown_minutes=0)
    live(p)
    labelled_traffic(p, 120)
    first = handle_alert(drift_alert(), p, NOW)
    p.state.update(TrainingRun, first.job, lambda r: replace(r, status="Completed"))
    handle_alert(drift_alert(condition="Resolved"), p, NOW + timedelta(days=1))
    assert handle_alert(drift_alert(), p, NOW + timedelta(days=2)).job == first.job      # the first, delivered again
    later = replace(drift_alert(), fired_at=(NOW + timedelta(days=20)).isoformat())
    second = handle_alert(later, p, NOW + timedelta(days=20))
    assert second.outcome == "retraining" and second.job != first.job and not second.resolved_at
    assert len(p.jobs.submitted) == 2


def test_a_second_alert_within_the_cooldown_starts_nothing():
    p = fake_platform(monitor_min_labels=50, alert_cooldown_minutes=60)
    live(p)
    labelled_traffic(p, 120)
    handle_alert(drift_alert("a/data_drift"), p, NOW)
    p.state.update(TrainingRun, p.jobs.submitted[0].job_name, lambda r: replace(r, status="Completed"))
    second = handle_alert(drift_alert("a/performance", signal="performance"), p, NOW + timedelta(minutes=5))
    assert second.outcome == "cooldown" and "ALERT_COOLDOWN_MINUTES" in second.detail
    assert len(p.jobs.submitted) == 1


def test_an_alert_while_training_runs_starts_nothing():
    p = fake_platform(monitor_min_labels=50)
    live(p)
    labelled_traffic(p, 120)
    handle_alert(drift_alert("a/data_drift"), p, NOW)
    second = handle_alert(drift_alert("b/data_drift"), p, NOW)
    assert second.outcome == "training already running" and len(p.jobs.submitted) == 1


@pytest.mark.parametrize("signal", ["data_quality", "fairness"])
def test_signals_retraining_cannot_mend_are_left_for_a_person(signal):
    p = fake_platform(monitor_min_labels=50)
    live(p)
    labelled_traffic(p, 120)
    record = handle_alert(drift_alert(signal=signal), p, NOW)
    assert record.outcome == "needs a person" and p.jobs.submitted == []


def test_an_alert_that_had_to_wait_for_labels_retrains_when_it_comes_again_with_them():
    p = fake_platform(monitor_min_labels=50)
    live(p)
    assert handle_alert(drift_alert(), p, NOW).outcome == "no fresh data"
    labelled_traffic(p, 120)
    assert handle_alert(drift_alert(), p, NOW).outcome == "retraining" and len(p.jobs.submitted) == 1


def test_without_labels_a_ready_drop_is_trained_on_and_without_either_nothing_starts():
    p = fake_platform(monitor_min_labels=50)
    live(p)
    assert handle_alert(drift_alert("x/data_drift"), p, NOW).outcome == "no fresh data"
    stored = p.data.store("loans/new/part.csv")
    p.state.create(Drop(drop_id="d1", container="data", prefix="loans/new/", url="http://storage/data/loans/new/",
                        batches=(batch_id(stored, "data"),), marker=True, first_seen="2026-11-23T11:00:00Z",
                        last_seen="2026-11-23T11:00:00Z"))
    record = handle_alert(drift_alert("y/data_drift"), p, NOW)
    assert record.outcome == "retraining"
    assert p.jobs.submitted[0].trigger == "drift" and p.jobs.submitted[0].data_files == ("loans/new/part.csv",)


def test_an_event_that_is_no_alert_is_rejected():
    from lifecycle.dispatch import Rejected
    p = fake_platform()
    with pytest.raises(Rejected, match="not an alert"):
        alert_event(events.parse(sample("aml_model_registered_camel.json")), p)


def test_an_alert_neither_fired_nor_resolved_is_rejected_not_taken_as_resolved():
    with pytest.raises(alerts.AlertError, match="condition 'Maybe' is neither 'Fired' nor 'Resolved'"):
        drift_alert(condition="Maybe")


def test_alerts_about_one_live_model_share_one_production_drop_and_one_job():
    p = fake_platform(monitor_min_labels=50, alert_cooldown_minutes=0)
    live(p)
    labelled_traffic(p, 120)
    first = handle_alert(drift_alert("m/data_drift"), p, NOW)
    p.state.update(TrainingRun, first.job, lambda r: replace(r, status="Completed"))  # as if the race let it through
    second = handle_alert(drift_alert("m/concept_drift", signal="concept_drift"), p, NOW)
    assert second.outcome == "retraining" and second.job == first.job
    assert len(p.jobs.submitted) == 1 and len(p.data.drops) == 1


def test_an_alert_that_fires_after_the_live_models_production_drop_was_trained_gets_a_new_drop():
    # The challenger trained on the first drop was rolled back; the same model is live and drifts on.
    p = fake_platform(monitor_min_labels=50, alert_cooldown_minutes=0)
    live(p)
    labelled_traffic(p, 120)
    first = handle_alert(drift_alert("m/data_drift"), p, NOW)
    p.state.update(TrainingRun, first.job, lambda r: replace(r, status="Completed"))
    later = alerts.Alert(alert_id="m/data_drift#2", condition="Fired", source="monitor", signal="data_drift",
                         summary="income drifted", fired_at=(NOW + timedelta(hours=1)).isoformat())
    second = handle_alert(later, p, NOW + timedelta(hours=1))
    assert second.outcome == "retraining" and second.job != first.job
    assert len(p.jobs.submitted) == 2 and sorted(p.data.drops) == [
        "production/mlops-endpoint/tabular-classifier-1/001/", "production/mlops-endpoint/tabular-classifier-1/002/"]
