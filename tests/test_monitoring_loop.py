"""Monitoring closes the loop on the local stack: the world changes under the live model, the monitor
timer raises drift and concept-drift alerts, one alert retrains on the labelled production traffic, and
the new model is rolled out blue/green under that traffic. Azure Monitor alerts come in over HTTP."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import AlertRecord, Decision, MonitorRun, TrainingRun
from mlops.demo_data import COLUMNS, loan_csv, loan_rows
from mlops.status import collect
from mlops.traffic import FeedbackWriter, Traffic
from tests.conftest import start_local_stack, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.chains]      # the whole local stack, a minute (make chains)

SETTINGS = {"RECONCILE_SCHEDULE": "*/1 * * * * *", "ROLLOUT_STEPS": "50,100", "ROLLOUT_BAKE_SECONDS": "5",
            "ROLLOUT_MIN_REQUESTS": "25", "ROLLOUT_RETENTION_SECONDS": "0", "MONITOR_SCHEDULE": "*/5 * * * * *",
            "MONITOR_MIN_ROWS": "200", "MONITOR_MIN_LABELS": "200", "SENSITIVE_COLUMN": ""}
ALERT = Path(__file__).resolve().parent / "samples" / "http" / "azure_monitor_common_alert.json"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    stack, info, p, data = start_local_stack(tmp_path_factory, "monitoring", SETTINGS)
    data.upload_blob("loans/day-1/part-0000.csv", loan_csv(3000, seed=1))
    data.upload_blob("loans/day-1/_SUCCESS", b"")
    wait_until(lambda: (r := p.state.get(Rollout, p.policies.model.endpoint)) and r.phase == "promoted",
               timeout=180, what="model 1 to go live")
    yield stack, info, p
    stack.stop()


@pytest.mark.timeout(420)
def test_a_changed_world_is_detected_and_the_retrained_model_rolled_out(live):
    stack, info, p = live
    key = p.endpoints.scoring_key(p.policies.model.endpoint)
    world = loan_rows(3000, seed=77, income_shift=-0.3, concept=2)
    feedback = BlobServiceClient.from_connection_string(info.storage_connection_string) \
        .get_container_client(p.policies.model.feedback_container)
    traffic = Traffic(info.scoring_uri, key, COLUMNS[:-1], [r[:-1] for r in world], rate=15, rows_per_request=4,
                      labels=[r[-1] for r in world])
    with traffic, FeedbackWriter(feedback, traffic, p.policies.model.target_column, every=2.0):
        alert = wait_until(lambda: next((a for a in p.state.list(AlertRecord) if a.outcome == "retraining"), None),
                           timeout=120, what="an alert to start retraining")
        try:
            wait_until(lambda: (r := p.state.get(Rollout, p.policies.model.endpoint)) and r.model.endswith(":2")
                       and r.phase in ("promoted", "rolled_back"), timeout=300, what="the retrained model's rollout")
        finally:
            r = p.state.get(Rollout, p.policies.model.endpoint)
            print("rollout:", r and (r.model, r.phase, [h["note"] for h in r.history]))
            print("runs:", [(t.job_name, t.trigger, t.status) for t in p.state.list(TrainingRun)])
    rollout = p.state.get(Rollout, p.policies.model.endpoint)
    assert rollout.phase == "promoted", (rollout.reason, rollout.judgement)
    assert {c["name"]: c["outcome"] for c in rollout.judgement["checks"]}["accuracy"] == "pass"

    runs = [r for r in p.state.list(MonitorRun) if r.model.endswith(":1") and r.alerts]
    signals = {a.rsplit("/", 1)[-1] for r in runs for a in r.alerts}
    assert {"data_drift", "concept_drift"} <= signals
    drifted = [r.result["drift"]["drifted_features"] for r in runs
               if "data_drift" in {a.rsplit("/", 1)[-1] for a in r.alerts}]
    assert drifted and all("income" in d for d in drifted)               # the feature whose distribution moved

    run = p.state.get(TrainingRun, alert.job)
    assert run.trigger == "drift" and run.data_files and all(f.startswith("production/") for f in run.data_files)
    drift_jobs = [r for r in p.state.list(TrainingRun) if r.trigger == "drift"]
    assert len(drift_jobs) == 1                                             # several alerts, one retrain
    decision = p.state.get(Decision, alert.job)
    assert decision.outcome == "registered" and decision.metrics["f1"] > decision.champion_metrics["f1"]

    status = collect(p)                                                     # what `mlops status` shows
    assert any("concept_drift fired" in m["alerts"] for m in status["monitoring"])
    assert any(a["outcome"] == "retraining" and a["job"] == alert.job for a in status["alerts"])


def test_azure_monitor_alerts_over_http_need_the_function_key_and_are_deduplicated(live):
    stack, info, p = live
    url = f"{info.functions_url}/api/alerts"
    body = json.loads(ALERT.read_text())
    assert requests.post(url, json=body, timeout=30).status_code == 401
    first = requests.post(url, json=body, params={"code": info.functions_key}, timeout=60)
    assert first.status_code == 202, first.text
    again = requests.post(url, json=body, params={"code": info.functions_key}, timeout=60).json()
    assert again["outcome"] == first.json()["outcome"] and again["job"] == first.json()["job"]
    body["data"]["essentials"]["monitorCondition"] = "Resolved"
    resolved = requests.post(url, json=body, params={"code": info.functions_key}, timeout=60).json()
    assert resolved["outcome"] == "resolved"
    bad = requests.post(url, json={"schemaId": "other"}, params={"code": info.functions_key}, timeout=30)
    assert bad.status_code == 400 and "azureMonitorCommonAlertSchema" in bad.json()["error"]
