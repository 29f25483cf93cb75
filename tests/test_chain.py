"""The chain end to end on the local stack: a CSV dropped with azure-storage-blob ends as a registered
model serving predictions, with no further action; duplicates change nothing; bad data fails visibly
and the chain goes on; a worse challenger is rejected with its numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from emulator.timeline import Timeline
from lifecycle.core.rollout_machine import Rollout, RolloutEvent
from lifecycle.core.state_records import DataBatch, Decision, Drop, TrainingRun
from mlops.demo_data import COLUMNS, loan_csv, loan_rows
from mlops.traffic import Traffic
from tests.conftest import start_local_stack, wait_until

pytestmark = pytest.mark.stack      # the whole local stack

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"RECONCILE_SCHEDULE": "*/1 * * * * *", "RETRAIN_COOLDOWN_MINUTES": "0", "GATE_MARGIN": "0.02",
            "ROLLOUT_BAKE_SECONDS": "3", "ROLLOUT_MIN_REQUESTS": "20", "ROLLOUT_RETENTION_SECONDS": "0"}
# Each drop trains alone (a window of one drop), so a small drop makes a worse challenger; the accumulating
# window (all, the default) has its own chain in tests/test_own_models.py.
ONE_DROP = "models: {tabular-classifier: {target: default, endpoint: mlops-endpoint, data: {window: 1 drop}}}\n"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    models = tmp_path_factory.mktemp("chain-models") / "mlops.yaml"
    models.write_text(ONE_DROP)
    stack, info, p, data = start_local_stack(tmp_path_factory, "chain", {**SETTINGS, "MLOPS_CONFIG": str(models)})
    yield stack, info, p, data
    stack.stop()


def drop(data, folder: str, parts: list[bytes]) -> None:
    for i, body in enumerate(parts):
        data.upload_blob(f"{folder}part-{i:04}.csv", body, overwrite=True)
    data.upload_blob(f"{folder}_SUCCESS", b"", overwrite=True)


def job_of(p, folder: str) -> str:
    return wait_until(lambda: next((d.job for d in p.state.list(Drop) if d.prefix == folder and d.job), None),
                      timeout=20, what=f"a training job for {folder}")


def decided(p, job: str) -> Decision:
    return wait_until(lambda: p.state.get(Decision, job), timeout=120, what=f"the gate's decision on {job}")


def serving(p, ref: str, info=None):
    """Wait until `ref` takes all traffic; with `info`, send scoring traffic meanwhile (a rollout after
    the first one earns its traffic step by step, judged on requests)."""
    def probe():
        endpoint = p.endpoints.get(p.policies.model.endpoint)
        return endpoint and any(d.model == ref and endpoint.traffic.get(d.name) == 100 for d in endpoint.deployments) \
            and endpoint
    if info is None:
        return wait_until(probe, timeout=120, what=f"{ref} to take all traffic")
    key = p.endpoints.scoring_key(p.policies.model.endpoint)
    with Traffic(info.scoring_uri, key, COLUMNS[:-1], [r[:-1] for r in loan_rows(300, seed=11)], rate=15) as traffic:
        try:
            endpoint = wait_until(probe, timeout=180, what=f"{ref} to take all traffic")
        except BaseException:
            rollout = p.state.get(Rollout, p.policies.model.endpoint)
            print("rollout:", rollout and [h["note"] for h in rollout.history], rollout and rollout.judgement)
            raise
    assert traffic.summary()["dropped"] == 0 and set(traffic.summary()["status"]) == {200}, traffic.summary()
    return endpoint


def score(info, p, body: dict) -> requests.Response:
    key = p.endpoints.scoring_key(p.policies.model.endpoint)
    return requests.post(info.scoring_uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _post(info, topic: str, events: list[dict]) -> None:
    response = requests.post(info.eventgrid_topics[topic], json=events, headers={"aeg-sas-key": info.eventgrid_key},
                             timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def first_model(chain):
    stack, info, p, data = chain
    folder = "loans/day-1/"
    drop(data, folder, [loan_csv(1200, seed=1), loan_csv(1200, seed=2)])
    job = job_of(p, folder)
    decision = decided(p, job)
    assert decision.outcome == "registered", decision.reasons
    ref = f"{p.policies.model.name}:{decision.version}"
    serving(p, ref)
    return job, ref


def test_a_drop_ends_as_a_registered_model_serving_predictions(chain, first_model):
    stack, info, p, data = chain
    job, ref = first_model
    (model,) = [m for m in p.registry.versions(p.policies.model.name) if m.ref == ref]
    batches = {b.batch_id for b in p.state.list(DataBatch) if b.blob_path.startswith("loans/day-1/part-")}
    assert model.tags["mlops.job"] == job and model.tags["mlops.trigger"] == "data"
    assert set(model.tags["mlops.data_batches"].split(",")) == batches and len(batches) == 2
    assert float(model.tags["metric.f1"]) > 0.6
    assert model.path == f"azureml://jobs/{job}/outputs/output/paths/model"
    rows = [r[:-1] for r in loan_rows(4, seed=7)]
    columns = score(info, p, {"input_data": {"columns": COLUMNS[:-1], "data": rows}})
    assert columns.status_code == 200, columns.text
    assert len(columns.json()["predictions"]) == 4
    records = score(info, p, {"data": [dict(zip(COLUMNS[:-1], r)) for r in rows]})
    assert records.json()["predictions"] == columns.json()["predictions"]
    bad = score(info, p, {"input_data": {"columns": ["age"], "data": [[30]]}})
    assert bad.status_code == 400 and "Traceback" not in bad.text
    unauthorised = requests.post(info.scoring_uri, json={"data": []}, timeout=10)
    assert unauthorised.status_code == 401


def test_duplicates_of_every_event_change_nothing(chain, first_model):
    stack, info, p, data = chain
    job, ref = first_model
    name, version = ref.split(":")
    before = (len(p.state.list(TrainingRun)), len(p.registry.versions(name)), len(p.state.list(RolloutEvent)))
    blob = data.get_blob_client("loans/day-1/part-0000.csv")
    props = blob.get_blob_properties()
    _post(info, "storage", [{
        "id": str(uuid.uuid4()), "subject": "/blobServices/default/containers/data/blobs/loans/day-1/part-0000.csv",
        "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-23T10:00:00Z", "dataVersion": "",
        "data": {"api": "PutBlob", "eTag": props.etag, "contentType": "text/csv", "contentLength": props.size,
                 "blobType": "BlockBlob", "url": blob.url, "sequencer": "0" * 32}}])
    run = {"experimentId": "x", "experimentName": "mlops-training", "runId": job, "runType": "azureml.scriptrun",
           "runTags": {}, "runProperties": {}}
    _post(info, "mlworkspace", [
        {"id": str(uuid.uuid4()), "subject": f"experiments/x/runs/{job}", "eventTime": "2026-11-23T10:00:00Z",
         "eventType": "Microsoft.MachineLearningServices.RunCompleted", "dataVersion": "2", "data": run},
        {"id": str(uuid.uuid4()), "subject": f"models/{ref}", "eventTime": "2026-11-23T10:00:00Z",
         "eventType": "Microsoft.MachineLearningServices.ModelRegistered", "dataVersion": "2",
         "data": {"ModelName": name, "ModelVersion": int(version), "ModelTags": {}, "ModelProperties": {}}}])
    timeline = Timeline(stack.home.timeline)
    wait_until(lambda: len([r for r in timeline.read() if r.function == "on_model_registered"
                            and r.outcome == "delivered"]) >= 2, timeout=20, what="the duplicate ModelRegistered")
    wait_until(lambda: len([r for r in timeline.read() if r.function == "on_run_completed"
                            and r.outcome == "delivered"]) >= 2, timeout=20, what="the duplicate RunCompleted")
    after = (len(p.state.list(TrainingRun)), len(p.registry.versions(name)), len(p.state.list(RolloutEvent)))
    assert after == before
    assert p.endpoints.get(p.policies.model.endpoint).traffic == serving(p, ref).traffic


def _mlops(info, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_HOME": info.home, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mlops.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_bad_data_fails_visibly_keeps_the_blob_and_the_chain_goes_on(chain, first_model):
    stack, info, p, data = chain
    folder = "loans/no-target/"
    drop(data, folder, [b"age,income\n30,1000\n40,2000\n"])
    job = job_of(p, folder)
    run = wait_until(lambda: (r := p.state.get(TrainingRun, job)) and r.status == "Failed" and r, timeout=60,
                     what="the failure to be recorded")
    assert "default" in run.error and "part-0000.csv" in run.error
    assert p.state.get(Decision, job) is None
    assert data.get_blob_client(f"{folder}part-0000.csv").exists()
    status = json.loads(_mlops(info, "status", "--json").stdout)
    (shown,) = [j for j in status["jobs"] if j["name"] == job]
    assert shown["status"] == "Failed" and "default" in shown["error"]
    assert {"models", "jobs", "endpoints"} <= status.keys()
    timeline = json.loads(_mlops(info, "events", "--json", "--limit", "0").stdout)
    assert any(r["function"] == "on_run_status_changed" and job in r["subject"] and r["outcome"] == "delivered"
               for r in timeline)
    # the next good drop still goes all the way
    good = "loans/day-2/"
    drop(data, good, [loan_csv(1500, seed=3)])
    decision = decided(p, job_of(p, good))
    assert decision.outcome == "registered", decision.reasons
    serving(p, f"{p.policies.model.name}:{decision.version}", info)


def test_a_worse_challenger_is_rejected_with_its_numbers(chain, first_model):
    stack, info, p, data = chain
    folder = "loans/small/"
    versions = len(p.registry.versions(p.policies.model.name))
    drop(data, folder, [loan_csv(150, seed=4)])   # too little data: the champion does better on the same holdout
    decision = decided(p, job_of(p, folder))
    assert decision.outcome == "rejected"
    assert decision.champion and decision.champion_metrics and decision.metrics["f1"] < decision.champion_metrics["f1"]
    assert any(f"{decision.metrics['f1']:.4f}" in reason for reason in decision.reasons)
    assert len(p.registry.versions(p.policies.model.name)) == versions


def test_each_training_run_is_in_mlflow_with_its_gate_and_version_and_in_status_with_its_compute(chain, first_model):
    """What a data scientist opens after the chain ran: every training job as an MLflow run (train.py's metrics,
    the job's compute, the gate's decision), the registered version linked to its run; and `mlops status` with
    each job's duration, CPU, memory and cost, the totals and the cluster advice."""
    from mlflow import MlflowClient
    stack, info, p, data = chain
    job, ref = first_model
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")     # mlflow-skinny reads a file store only so
    uri = f"file:{stack.home.mlruns}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    decisions = {d.job_name: d for d in p.state.list(Decision)}
    runs = {r.info.run_name: r for r in client.search_runs(
        [client.get_experiment_by_name("mlops-training").experiment_id])}
    for name, decision in decisions.items():
        run = runs[name]
        assert run.info.status == "FINISHED" and run.data.metrics["f1"] == pytest.approx(decision.metrics["f1"])
        assert run.data.metrics["compute.duration_seconds"] > 0 and run.data.metrics["compute.cpu_percent"] > 0
        assert run.data.tags["mlops.gate"] == decision.outcome and run.data.tags["mlops.gate_reasons"]
        if decision.version:
            assert run.data.tags["mlops.registered_version"] == f"{decision.model_name}:{decision.version}"
    name, version = ref.split(":")
    linked = client.get_model_version(name, version)
    assert linked.run_id == runs[job].info.run_id and linked.source == f"runs:/{linked.run_id}/model"

    compute = json.loads(_mlops(info, "status", "--json").stdout)["compute"]
    shown = {j["name"]: j for j in compute["jobs"]}
    for name in decisions:
        j = shown[name]
        assert j["kind"] == "training" and j["duration_seconds"] > 0 and j["queue_seconds"] is not None
        assert j["cpu_percent"] > 0 and j["peak_memory_bytes"] > 0 and j["cost"] > 0
    assert compute["totals"]["jobs"] == len(compute["jobs"]) and compute["totals"]["month_cost"] > 0
    assert {a["setting"] for a in compute["advice"]} == {"max_nodes", "min_nodes", "idle_seconds", "vm_size"}
    text = _mlops(info, "status").stdout
    assert "training compute" in text and "job-minutes" in text and "USD" in text
