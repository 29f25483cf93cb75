"""The chain's handlers with in-memory fakes of the ports: duplicates, reordering, gates and policies."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from lifecycle import events
from lifecycle.handlers.data import data_arrived
from lifecycle.handlers.rollout import model_registered
from lifecycle.handlers.reconcile import reconcile
from lifecycle.handlers.registration import run_completed, run_status_changed
from lifecycle.handlers.training import retrain_on_schedule
from lifecycle.ml import job_name_for
from lifecycle.records import DataBatch, Decision, Drop, TrainingRun
from tests.fakes import fake_platform



def now() -> datetime:
    return datetime.now(timezone.utc)
GOOD = {"metrics": {"accuracy": 0.9, "f1": 0.85}, "champion": None, "champion_error": None}


def blob(path: str, *, size: int = 100, api: str = "PutBlob", etag: str | None = None, container: str = "data"):
    return events.parse({
        "id": str(uuid.uuid4()), "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-23T10:00:00Z",
        "subject": f"/blobServices/default/containers/{container}/blobs/{path}", "dataVersion": "",
        "data": {"api": api, "eTag": etag or f"0x{uuid.uuid4().hex[:12].upper()}", "contentType": "text/csv",
                 "contentLength": size, "blobType": "BlockBlob", "sequencer": "01",
                 "url": f"http://127.0.0.1:10000/devstoreaccount1/{container}/{path}"}})


def run_event(kind: str, job: str, status: str = "Completed", tags: dict | None = None):
    data = {"experimentId": "e1", "experimentName": "mlops-training", "runId": job, "runType": "azureml.scriptrun",
            "runTags": tags or {}, "runProperties": {}}
    if kind == "RunStatusChanged":
        data["runStatus"] = status
    return events.parse({"id": str(uuid.uuid4()), "eventType": f"Microsoft.MachineLearningServices.{kind}",
                         "subject": f"experiments/e1/runs/{job}", "eventTime": "2026-11-23T10:00:00Z",
                         "dataVersion": "2", "data": data})


def registered(name: str, version: str):
    return events.parse({"id": str(uuid.uuid4()), "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
                         "subject": f"models/{name}:{version}", "eventTime": "2026-11-23T10:00:00Z", "dataVersion": "2",
                         "data": {"ModelName": name, "ModelVersion": version, "ModelTags": {}, "ModelProperties": {}}})


def test_a_drop_of_many_parts_and_a_marker_starts_exactly_one_job():
    p = fake_platform()
    for i in range(5):
        data_arrived(blob(f"loans/day1/part-{i:04}.csv"), p)
    assert p.jobs.submitted == []                      # no marker yet, quiet period not over
    data_arrived(blob("loans/day1/_SUCCESS", size=0), p)
    (request,) = p.jobs.submitted
    drop = p.state.list(Drop)[0]
    assert request.data.endswith("/data/loans/day1/") and request.target == "default"
    assert request.job_name == job_name_for("tabular-classifier", "data", drop.drop_id)
    assert len(request.data_batches) == 5 and drop.job == request.job_name
    data_arrived(blob("loans/day1/_SUCCESS", size=0), p)  # a second marker: nothing new
    assert len(p.jobs.submitted) == 1


def test_duplicate_delivery_records_one_batch_and_submits_one_job():
    p = fake_platform()
    event = blob("single.csv")
    data_arrived(event, p)
    data_arrived(event, p)
    assert len(p.state.list(DataBatch)) == 1
    assert len(p.jobs.submitted) == 1                  # a top-level file is a complete drop of its own


def test_uncommitted_and_empty_blobs_and_other_containers_are_ignored():
    p = fake_platform()
    assert data_arrived(blob("adls/x.csv", size=0, api="CreateFile"), p) is None
    assert data_arrived(blob("empty.csv", size=0), p) is None
    assert data_arrived(blob("labels.csv", container="feedback"), p) is None
    assert p.state.list(DataBatch) == [] and p.jobs.submitted == []


def test_quiet_period_and_cooldown_are_honoured_by_the_reconcile_tick():
    p = fake_platform(retrain_cooldown_minutes=10)
    start = now()
    data_arrived(blob("day1/a.csv"), p)
    reconcile(p, start + timedelta(seconds=30))
    assert p.jobs.submitted == []
    reconcile(p, start + timedelta(seconds=62))
    assert len(p.jobs.submitted) == 1
    data_arrived(blob("day2/a.csv"), p)
    data_arrived(blob("day2/_SUCCESS", size=0), p)
    assert len(p.jobs.submitted) == 1                   # cooling down
    reconcile(p, start + timedelta(minutes=12))
    assert len(p.jobs.submitted) == 2 and p.jobs.submitted[1].data.endswith("/day2/")


def test_no_target_column_means_no_training_yet():
    p = fake_platform(target_column="")
    data_arrived(blob("x.csv"), p)
    assert p.jobs.submitted == [] and len(p.state.list(DataBatch)) == 1


def test_scheduled_retrain_needs_unseen_data_unless_forced():
    p = fake_platform()
    assert retrain_on_schedule(p, now()) is None
    assert retrain_on_schedule(p, now(), forced=True) is None      # no data at all
    data_arrived(blob("x.csv"), p)
    assert retrain_on_schedule(p, now()) is None                   # already trained on
    run = retrain_on_schedule(p, now(), forced=True)
    assert run.trigger == "forced" and len(p.jobs.submitted) == 2


def _trained(p, metrics=GOOD):
    data_arrived(blob(f"{uuid.uuid4()}.csv"), p)
    job = p.jobs.submitted[-1].job_name
    p.jobs.finish(job, metrics=metrics)
    return job


def test_a_good_challenger_is_registered_once_with_lineage():
    p = fake_platform()
    job = _trained(p)
    run_completed(run_event("RunCompleted", job), p)
    run_completed(run_event("RunCompleted", job), p)             # duplicate
    (model,) = p.registry.versions("tabular-classifier")
    assert model.tags["mlops.job"] == job and model.tags["mlops.trigger"] == "data"
    assert model.tags["metric.f1"] == "0.8500" and model.tags["mlops.data_batches"]
    decision = p.state.get(Decision, job)
    assert (decision.outcome, decision.version) == ("registered", "1")
    assert p.state.get(TrainingRun, job).status == "Completed"


def test_a_worse_challenger_is_rejected_with_its_numbers():
    p = fake_platform()
    job = _trained(p, {"metrics": {"f1": 0.70}, "champion": {"f1": 0.80}})
    run_completed(run_event("RunCompleted", job), p)
    assert p.registry.versions("tabular-classifier") == []
    decision = p.state.get(Decision, job)
    assert decision.outcome == "rejected" and decision.champion_metrics == {"f1": 0.80}
    assert "0.7000" in decision.reasons[0] and "0.8000" in decision.reasons[0]


def test_below_the_floor_is_rejected_even_without_a_champion():
    p = fake_platform(gate_floor=0.9)
    job = _trained(p)
    run_completed(run_event("RunCompleted", job), p)
    assert p.state.get(Decision, job).outcome == "rejected"


def test_a_failed_run_records_the_reason_and_registers_nothing():
    p = fake_platform()
    data_arrived(blob("bad.csv"), p)
    job = p.jobs.submitted[0].job_name
    p.jobs.finish(job, "Failed", error="bad.csv: target column 'default' is missing")
    run_status_changed(run_event("RunStatusChanged", job, "Running"), p)
    assert p.state.get(TrainingRun, job).status == "Submitted"
    run_status_changed(run_event("RunStatusChanged", job, "Failed"), p)
    run = p.state.get(TrainingRun, job)
    assert run.status == "Failed" and "target column" in run.error
    assert p.registry.versions("tabular-classifier") == []


def test_runs_of_other_experiments_are_ignored():
    p = fake_platform()
    assert run_completed(run_event("RunCompleted", "someone-elses-job"), p) is None


def test_reconcile_settles_a_job_whose_event_never_came():
    p = fake_platform()
    job = _trained(p)
    reconcile(p, now())
    assert p.state.get(Decision, job).outcome == "registered"


def test_models_of_other_names_are_not_deployed():
    p = fake_platform()
    assert model_registered(registered("someone-else", "3"), p) is None
    assert p.endpoints.calls == []
