"""The chain's handlers with in-memory fakes of the ports: duplicates, reordering, gates and policies."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.core import incoming_events as events
from lifecycle.core.state_records import DataBatch, Decision, Drop, TrainingRun
from lifecycle.dispatch import Rejected
from lifecycle.handlers.azureml_runs import run_completed, run_status_changed
from lifecycle.handlers.data import data_arrived
from lifecycle.handlers.reconcile import reconcile
from lifecycle.handlers.rollout import model_registered
from lifecycle.handlers.training import retrain_on_schedule
from tests.fakes import complete_runs, fake_platform


def now() -> datetime:
    return datetime.now(UTC)
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
    assert request.data == p.data.url_of("") and request.target == "default"     # the dataset root: the container
    assert request.data_files == tuple(f"loans/day1/part-{i:04}.csv" for i in range(5))
    assert request.job_name.startswith("train-tabular-classifier-data-")
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


def test_uncommitted_blobs_and_other_containers_are_ignored_and_empty_files_rejected():
    p = fake_platform()
    assert data_arrived(blob("adls/x.csv", size=0, api="CreateFile"), p) is None
    assert data_arrived(blob("labels.csv", container="feedback"), p) is None
    with pytest.raises(Rejected, match="empty.csv is an empty file"):
        data_arrived(blob("empty.csv", size=0), p)
    assert p.state.list(DataBatch) == [] and p.jobs.submitted == []


def test_quiet_period_and_cooldown_are_honoured_by_the_reconcile_tick():
    p = fake_platform(retrain_cooldown_minutes=10)
    start = now()
    data_arrived(blob("day1/a.csv"), p)
    reconcile(p, start + timedelta(seconds=30))
    assert p.jobs.submitted == []
    reconcile(p, start + timedelta(seconds=62))
    assert len(p.jobs.submitted) == 1
    complete_runs(p)                                    # day1's model is trained: its data is history now
    data_arrived(blob("day2/a.csv"), p)
    data_arrived(blob("day2/_SUCCESS", size=0), p)
    assert len(p.jobs.submitted) == 1                   # cooling down
    reconcile(p, start + timedelta(minutes=12))
    assert len(p.jobs.submitted) == 2 and p.jobs.submitted[1].data_files == ("day1/a.csv", "day2/a.csv")
    day2 = next(d for d in p.state.list(Drop) if d.prefix == "day2/")
    assert p.jobs.submitted[1].data_batches == day2.batches               # why it started: day2's new file


def test_no_target_column_means_no_training_yet():
    p = fake_platform(target_column="")
    data_arrived(blob("x.csv"), p)
    assert p.jobs.submitted == [] and len(p.state.list(DataBatch)) == 1


def test_scheduled_retrain_needs_unseen_data_unless_forced():
    p = fake_platform()
    assert retrain_on_schedule(p, now()) is None
    assert retrain_on_schedule(p, now(), forced=True) is None      # no data at all
    data_arrived(blob("x.csv"), p)
    assert retrain_on_schedule(p, now()) is None                   # already taken by a job
    first = p.jobs.submitted[0].job_name
    assert retrain_on_schedule(p, now(), forced=True).job_name == first   # still training on it: that job
    complete_runs(p)
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


# -- drops: every one trained, once ----------------------------------------------------------------------
def test_two_drops_completing_together_each_get_their_own_job():
    p = fake_platform()
    for day in ("day1", "day2"):
        data_arrived(blob(f"sales/{day}/part-0000.csv"), p)
    p.state.update(Drop, p.state.list(Drop)[0].drop_id, lambda d: replace(d, marker=True))
    p.state.update(Drop, p.state.list(Drop)[1].drop_id, lambda d: replace(d, marker=True))
    reconcile(p, now())
    # each its own job, so a bad drop fails only its own; a job still running keeps its files to itself
    assert sorted(r.data_files for r in p.jobs.submitted) == [("sales/day1/part-0000.csv",),
                                                              ("sales/day2/part-0000.csv",)]
    assert len({d.job for d in p.state.list(Drop)}) == 2


def test_two_triggers_racing_for_one_drop_submit_one_job():
    from lifecycle.steps.training_runs import submit_training
    p = fake_platform()
    data_arrived(blob("loans/day1/part-0000.csv"), p)
    drop = p.state.list(Drop)[0]
    first = submit_training(p, "data", now(), [drop])
    second = submit_training(p, "schedule", now(), [drop])   # a stale copy of the drop
    assert second.job_name == first.job_name and len(p.jobs.submitted) == 1


def test_a_name_with_spaces_and_accents_is_encoded_once():
    p = fake_platform()
    event = events.parse({
        "id": "1", "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-23T10:00:00Z",
        "subject": "/blobServices/default/containers/data/blobs/poison drop/unicode name é.csv", "dataVersion": "",
        "data": {"api": "PutBlob", "eTag": "0x1", "contentType": "text/csv", "contentLength": 10,
                 "blobType": "BlockBlob", "sequencer": "01",
                 "url": "http://127.0.0.1:10000/devstoreaccount1/data/poison%20drop/unicode%20name%20%C3%A9.csv"}})
    data_arrived(event, p)
    drop = p.state.list(Drop)[0]
    assert drop.url == "http://127.0.0.1:10000/devstoreaccount1/data/poison%20drop/"
    data_arrived(blob("top level é.csv"), p)
    assert p.jobs.submitted[-1].data_files == ("top level é.csv",)   # a path: the job's adapter encodes it once


def test_a_marker_without_data_is_reported_once_after_the_quiet_period():
    from lifecycle.core.state_records import Rejection
    p = fake_platform(drop_quiet_seconds=0)
    data_arrived(blob("empty-drop/_SUCCESS", size=0), p)
    reconcile(p, now())
    reconcile(p, now())
    (rejection,) = p.state.list(Rejection)
    assert "empty-drop/ has a _SUCCESS marker but no data file" in rejection.reason
    assert p.jobs.submitted == []


# -- jobs the platform lost ------------------------------------------------------------------------------
def test_a_job_lost_with_the_platform_offers_its_drop_again_a_few_times():
    p = fake_platform(drop_quiet_seconds=0)
    data_arrived(blob("loans/part.csv"), p)
    names = []
    for _attempt in range(3):
        job = p.jobs.submitted[-1].job_name
        names.append(job)
        p.jobs.jobs[job] = replace(p.jobs.jobs[job], status="Canceled", retryable=True,
                                   error="the job's process is gone")
        reconcile(p, now())
        assert p.state.get(TrainingRun, job).status == "Canceled"
    assert len(set(names)) == 3 and len(p.jobs.submitted) == 3      # a new name for each attempt
    assert p.state.list(Drop)[0].job == names[-1]                    # the third loss: kept, visible, not retried


def test_a_job_that_failed_on_its_data_is_not_retried():
    p = fake_platform()
    data_arrived(blob("bad.csv"), p)
    job = p.jobs.submitted[0].job_name
    p.jobs.finish(job, "Failed", error="bad.csv: target column 'default' is missing")
    reconcile(p, now())
    assert len(p.jobs.submitted) == 1 and p.state.list(Drop)[0].job == job


def test_a_submission_cut_short_is_finished_by_reconcile():
    p = fake_platform(drop_quiet_seconds=0)
    data_arrived(blob("loans/day1/part.csv"), p)
    job = p.jobs.submitted[0].job_name
    del p.jobs.jobs[job]                                              # recorded, never reached the platform
    p.jobs.submitted.clear()
    reconcile(p, now())
    assert [r.job_name for r in p.jobs.submitted] == [job]
    # a run whose drop another job took meanwhile is closed, not submitted
    p.state.create(TrainingRun(job_name="train-stale", model_name="tabular-classifier", trigger="schedule",
                               data_url="x", drop_id=p.state.list(Drop)[0].drop_id))
    reconcile(p, now())
    assert p.state.get(TrainingRun, "train-stale").status == "Canceled"
    assert [r.job_name for r in p.jobs.submitted] == [job]


# -- the gate holds what numbers cannot settle ----------------------------------------------------------
LEAKY = {"metrics": {"f1": 1.0}, "champion": None, "champion_error": None,
         "single_feature": {"best": {"f1": {"feature": "repaid", "value": 0.999}}}}
SCHEMA_CHANGED = {"metrics": {"f1": 0.9}, "champion": None, "champion_model": "/models/tabular-classifier/1",
                  "champion_error": "ValueError: the champion expects columns the data no longer has: income",
                  "compatibility": {"compatible": False, "reasons": [
                      "the challenger lacks 1 input of the champion: income",
                      "the challenger takes 5000 new inputs that clients do not send today: x0, x1, ... and 4992 more",
                      "the data has 2 labels the champion never had: no, yes (the champion's: 0, 1)"]}}


def test_a_likely_leak_is_held_for_a_person_and_approval_registers_it():
    from lifecycle.handlers.registration import review
    p = fake_platform()
    job = _trained(p, LEAKY)
    decision = run_completed(run_event("RunCompleted", job), p)
    assert decision.outcome == "held" and "feature 'repaid' alone reaches 0.9990" in decision.reasons[0]
    assert p.registry.versions("tabular-classifier") == [] and "MLOps.ModelHeld" in p.events.types()
    assert run_completed(run_event("RunCompleted", job), p).outcome == "held"   # a replay decides nothing new
    approved = review(p, job, approve=True, by="alice")
    (model,) = p.registry.versions("tabular-classifier")
    assert approved.outcome == "registered" and approved.version == model.version and approved.reviewed_by == "alice"
    assert model.tags["mlops.approved_by"] == "alice"
    with pytest.raises(ValueError, match="not held"):
        review(p, job, approve=False, by="bob")


def test_a_challenger_the_champion_cannot_be_compared_with_is_held_not_registered():
    from lifecycle.handlers.registration import review
    p = fake_platform()
    job = _trained(p, SCHEMA_CHANGED)
    decision = run_completed(run_event("RunCompleted", job), p)
    assert decision.outcome == "held"
    assert "lacks 1 input of the champion: income" in decision.reasons[0]
    assert "labels the champion never had: no, yes" in decision.reasons[0]
    assert "could not be scored" in decision.reasons[1]
    rejected = review(p, job, approve=False, by="bob")
    assert rejected.outcome == "rejected" and p.registry.versions("tabular-classifier") == []


def test_a_good_model_on_a_real_table_is_not_held():
    p = fake_platform()
    job = _trained(p, {"metrics": {"f1": 0.97}, "champion": {"f1": 0.96}, "champion_model": "/m",
                       "compatibility": {"compatible": True},
                       "single_feature": {"best": {"f1": {"feature": "worst concave points", "value": 0.91}}}})
    assert run_completed(run_event("RunCompleted", job), p).outcome == "registered"


def test_data_whose_event_was_lost_is_found_by_the_scan_once():
    from lifecycle.core.platform_values import StoredBlob
    from lifecycle.steps.data_batches import find_missed_data
    p = fake_platform()
    data_arrived(blob("seen.csv", etag='"0xA"'), p)
    url = "http://127.0.0.1:10000/devstoreaccount1/data/"
    p.data.stored = [StoredBlob("seen.csv", url + "seen.csv", '"0xA"', 100, "text/csv", now()),
                     StoredBlob("missed.csv", url + "missed.csv", '"0xB"', 100, "text/csv", now()),
                     StoredBlob("empty.csv", url + "empty.csv", '"0xC"', 0, "text/csv", now()),
                     StoredBlob("old.csv", url + "old.csv", '"0xD"', 100, "text/csv", now() - timedelta(days=3))]
    (found,) = find_missed_data(p, now())
    assert found.blob_path == "missed.csv" and len(p.jobs.submitted) == 2
    assert find_missed_data(p, now()) == []
    from lifecycle.core.state_records import Rejection
    assert [r.reason for r in p.state.list(Rejection)] == [
        "empty.csv is an empty file (0 bytes): there is nothing in it to train on; upload it again with its data"]


def test_one_strong_feature_on_a_majority_positive_table_is_not_a_leak():
    p = fake_platform()
    job = _trained(p, {"metrics": {"f1": 0.995}, "champion": None, "single_feature": {
        "baseline": {"f1": 0.947}, "best": {"f1": {"feature": "tenure", "value": 0.96}}}})
    assert run_completed(run_event("RunCompleted", job), p).outcome == "registered"


def test_a_model_registered_event_for_a_version_that_never_came_is_rejected_once_old():
    from lifecycle.handlers.rollout import model_registered as rollout_model_registered
    p = fake_platform()
    young = registered("tabular-classifier", "7")
    with pytest.raises(LookupError):                         # the registry may lag the event: retried
        rollout_model_registered(replace(young, event_time=now()), p)
    with pytest.raises(Rejected, match="not in the registry, 5"):
        rollout_model_registered(replace(young, event_time=now() - timedelta(minutes=59)), p)


def test_a_forced_retrain_on_data_still_arriving_takes_the_drop():
    p = fake_platform()
    data_arrived(blob("loans/day9/part-0000.csv"), p)              # no marker yet: not complete
    forced = retrain_on_schedule(p, now(), forced=True)
    data_arrived(blob("loans/day9/_SUCCESS", size=0), p)           # complete now: already taken
    assert forced.trigger == "forced" and [r.job_name for r in p.jobs.submitted] == [forced.job_name]
    assert p.state.list(Drop)[0].job == forced.job_name


def test_a_run_recorded_again_after_its_decision_is_closed_not_left_running():
    p = fake_platform()
    job = _trained(p)
    run_completed(run_event("RunCompleted", job), p)
    # a crash lost the run's record (storage kept the decision): the drop's next offer records it again
    p.state.docs.pop(("runs", job))
    p.state.create(TrainingRun(job_name=job, model_name="tabular-classifier", trigger="data", data_url="x"))
    reconcile(p, now())
    assert p.state.get(TrainingRun, job).status == "Completed"
