"""A job on the Azure ML stand-in, measured and tracked as Azure ML does: train.py really runs (on Azurite's data);
the job's process tree is measured; its MLflow run in <root>/mlruns holds train.py's params and metrics, the
model's artifacts, the job's tags and the compute.* metrics; a tag update reaches the run; a registered version
is an MLflow model version linked to the run. A store that cannot be written costs the job nothing."""
from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from emulator.aml.jobs import LocalJobs as StandInJobs
from emulator.aml.service import LocalAzureML
from emulator.aml.tracking import Tracking
from emulator.home import StackHome
from emulator.loop import BackgroundLoop
from lifecycle.adapters.local_ml import LocalAML, LocalJobs, LocalMetrics, LocalRegistry
from lifecycle.core.platform_values import TrainingRequest
from tests.conftest import wait_until
from tests.examples.standin import breast_cancer_csv, upload_table

KEY = "aml-key-for-tests"
WORKSPACE_ID = "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w"
COMPUTE = ("compute.queue_seconds", "compute.duration_seconds", "compute.cpu_percent", "compute.memory_percent",
           "compute.peak_memory_mb")


class QuietGrid:
    topic_ids = {"workspace": WORKSPACE_ID}

    async def publish(self, topic, events) -> None:
        pass


@pytest.fixture(scope="module")
def trained(azurite, tmp_path_factory):
    """A stand-in (on a stack home's aml folder, as `mlops up` runs it) that has run one training job."""
    home = StackHome(tmp_path_factory.mktemp("tracking"))
    loop = BackgroundLoop("test-aml-tracking")
    suffix = uuid.uuid4().hex[:8]
    aml = LocalAzureML(home.path("aml"), azurite.connection_string, QuietGrid(), "workspace", KEY,
                       collector_container=f"collected-{suffix}", registry_container=f"registry-{suffix}")
    loop.run(aml.start())
    client = LocalAML(aml.url, KEY)
    try:
        data = upload_table(azurite.connection_string, {"cancer.csv": breast_cancer_csv()})
        request = TrainingRequest(job_name=f"train-{suffix}", model_name=f"m-{suffix}", data=data, target="label",
                                  trigger="data", data_batches=("b1",), hyperparameters={"max_iter": "30"})
        jobs = LocalJobs(client)
        jobs.submit(request)
        status = wait_until(lambda: (s := jobs.get(request.job_name)) is not None and s.done and s, timeout=180,
                            interval=0.2, what="the training job to end")
        assert status.status == "Completed", client.call("GET", f"/jobs/{request.job_name}")
        yield client, home, request, status
    finally:
        loop.run(aml.close())
        loop.close()


def mlflow_client(home: StackHome):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient
    uri = f"file:{home.mlruns}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_job_reports_when_it_ran_and_what_its_processes_used(trained):
    client, _, request, status = trained
    assert status.started and status.ended and status.compute == ""
    assert status.queue_seconds is not None and status.duration_seconds > 1
    usage = status.usage
    assert usage is not None and usage.cpu_seconds > 1 and usage.peak_memory_bytes > 50 * 1024 * 1024
    assert 0 < usage.cpu_percent <= 100 and 0 < usage.memory_percent < 100 and usage.nodes == 1
    assert LocalMetrics(client).job_usage(status) == usage
    assert LocalMetrics(client).cluster_usage("cpu-cluster", status_time(status)) is None
    assert len(status.tracking_run) == 32                                  # an MLflow run id


def status_time(status):
    from datetime import datetime
    return datetime.fromisoformat(status.created)


def test_the_job_is_an_mlflow_run_with_train_py_s_results_the_model_and_the_compute(trained):
    _, home, request, status = trained
    mlflow = mlflow_client(home)
    run = mlflow.get_run(status.tracking_run)
    assert run.info.status == "FINISHED" and run.info.run_name == request.job_name
    assert mlflow.get_experiment(run.info.experiment_id).name == "mlops-training"
    tags = run.data.tags
    assert tags["mlops.job_name"] == request.job_name and tags["mlops.data"] == request.data
    assert (tags["mlops.trigger"], tags["mlops.model_name"], tags["mlops.data_batches"]) == (
        "data", request.model_name, "b1")
    assert run.data.params["max_iter"] == "30" and run.data.params["algorithm"] == "hist_gradient_boosting"
    assert 0.8 < run.data.metrics["accuracy"] <= 1 and "roc_auc" in run.data.metrics       # train.py's
    metrics = run.data.metrics
    assert set(COMPUTE) <= set(metrics)
    assert metrics["compute.duration_seconds"] == pytest.approx(status.duration_seconds, abs=0.01)
    assert metrics["compute.cpu_percent"] == pytest.approx(status.usage.cpu_percent)
    assert metrics["compute.peak_memory_mb"] == pytest.approx(status.usage.peak_memory_bytes / 2**20, abs=0.1)
    assert {a.path for a in mlflow.list_artifacts(run.info.run_id, "model")} >= {"model/MLmodel", "model/metrics.json"}


def test_a_tag_on_the_job_is_a_tag_on_its_run(trained):
    client, home, request, status = trained
    jobs = LocalJobs(client)
    jobs.tag(request.job_name, {"mlops.gate": "registered", "mlops.gate_reasons": "better than the champion"})
    assert jobs.get(request.job_name).tags["mlops.gate"] == "registered"
    assert jobs.get(request.job_name).tags["mlops.trigger"] == "data"          # added to, not replaced
    tags = mlflow_client(home).get_run(status.tracking_run).data.tags
    assert (tags["mlops.gate"], tags["mlops.gate_reasons"]) == ("registered", "better than the champion")
    with pytest.raises(Exception, match="404 job nope does not exist"):
        jobs.tag("nope", {"a": "b"})


def test_a_version_registered_from_the_job_is_an_mlflow_model_version_of_its_run(trained):
    client, home, request, status = trained
    model = LocalRegistry(client).register(request.model_name, request.job_name, {"mlops.gate": "registered"})
    found = mlflow_client(home).search_model_versions(f"name='{request.model_name}'")
    assert len(found) == 1
    version = found[0]
    assert version.run_id == status.tracking_run and version.source == f"runs:/{status.tracking_run}/model"
    assert version.tags["azureml.version"] == model.version == str(version.version) == "1"
    LocalRegistry(client).register(request.model_name, request.job_name, {})        # again: no second version
    assert len(mlflow_client(home).search_model_versions(f"name='{request.model_name}'")) == 1


def test_a_job_whose_tracking_store_cannot_be_written_runs_untracked(tmp_path, caplog):
    """The store's folder lies under a file, so no run can be created: the job completes all the same, measured,
    and its process gets no MLflow run to log into."""
    (tmp_path / "not-a-folder").write_text("")
    script = ("import json, os, pathlib, sys; "
              "pathlib.Path(sys.argv[1], 'env.json').write_text(json.dumps({k: v for k, v in os.environ.items() "
              "if k.startswith('MLFLOW_')}))")
    spec = {"name": "monitor-untracked", "experiment": "mlops-monitoring",
            "command": f"python -c {json.dumps(script)} ${{{{outputs.report}}}}", "inputs": {},
            "outputs": {"report": {"type": "uri_folder"}}}

    async def run():
        async def publish(events):
            pass
        jobs = StandInJobs(tmp_path / "jobs", "", publish, "t", resolve_model=lambda ref: None,
                           tracking=Tracking(tmp_path / "not-a-folder" / "mlruns"))
        jobs.submit(spec)
        while jobs.get(spec["name"])["status"] not in ("Completed", "Failed", "Canceled"):
            await asyncio.sleep(0.05)
        await jobs.close()
        return jobs

    jobs = asyncio.run(run())
    job = jobs.get(spec["name"])
    assert job["status"] == "Completed", jobs.logs(spec["name"])
    assert "mlflow_run_id" not in job and job["usage"]["peak_memory_bytes"] > 0
    assert json.loads(jobs.output_file(spec["name"], "report", "env.json")) == {}
    assert "could not create a run for job monitor-untracked" in caplog.text


def test_a_pipeline_job_is_a_run_whose_steps_are_child_runs(tmp_path, azurite):
    """The example pipeline (split → prep → train → evaluate): one child run per step, each measured and ended
    with its status; our evaluation step logs the metrics and the model into its run; the job's usage sums the
    steps'; registering the job's model gives its run the model's artifacts too (runs:/<run>/model)."""
    from tests.examples.standin import components
    data = upload_table(azurite.connection_string, {"cancer.csv": breast_cancer_csv()})
    request = {"name": "train-pipeline-1", "experiment": "mlops-training", "data": data, "target": "label",
               "model_name": "cancer", "spec": "examples/pipeline/pipeline.yml",
               "hyperparameters": {"n_estimators": "10"}, "tags": {"mlops.trigger": "data"}}
    tracking = Tracking(tmp_path / "mlruns")

    async def run():
        async def publish(events):
            pass
        jobs = StandInJobs(tmp_path / "jobs", azurite.connection_string, publish, "t", resolve_model=lambda r: None,
                           components=components(tmp_path), tracking=tracking)
        jobs.submit(request)
        async with asyncio.timeout(180):
            while jobs.get(request["name"])["status"] not in ("Completed", "Failed", "Canceled"):
                await asyncio.sleep(0.1)
        await jobs.close()
        return jobs

    jobs = asyncio.run(run())
    job = jobs.get(request["name"])
    assert job["status"] == "Completed", jobs.logs(request["name"])
    steps = job["steps"]
    assert job["usage"]["cpu_seconds"] == pytest.approx(sum(s["usage"]["cpu_seconds"] for s in steps), abs=0.01)
    assert job["usage"]["peak_memory_bytes"] == max(s["usage"]["peak_memory_bytes"] for s in steps)

    mlflow = tracking.client()
    parent = mlflow.get_run(job["mlflow_run_id"])
    assert parent.info.status == "FINISHED" and set(COMPUTE) <= set(parent.data.metrics)
    children = mlflow.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_name = {r.info.run_name: r for r in children}
    assert set(by_name) == {s["name"] for s in steps} == {"split", "train/prep", "train/train", "evaluate"}
    for step in steps:
        child = by_name[step["name"]]
        assert child.info.run_id == step["mlflow_run_id"] and child.info.status == "FINISHED"
        assert "mlops.job_name" not in child.data.tags and child.data.tags["mlops.step"] == step["name"]
        assert child.data.metrics["compute.cpu_percent"] == pytest.approx(step["usage"]["cpu_percent"])
    evaluation = by_name["evaluate"]
    assert 0.8 < evaluation.data.metrics["accuracy"] <= 1 and evaluation.data.params["algorithm"]
    assert "model/MLmodel" in {a.path for a in mlflow.list_artifacts(evaluation.info.run_id, "model")}

    assert tracking.register_version("cancer", "1", parent.info.run_id, jobs.model_dir(request["name"]), {}) == "1"
    assert "model/MLmodel" in {a.path for a in mlflow.list_artifacts(parent.info.run_id, "model")}


def test_a_job_the_stand_in_lost_when_it_stopped_ends_its_run_killed(tmp_path):
    """recover(): a job left Running by a killed stand-in ends Canceled, and its MLflow run KILLED, not RUNNING."""
    tracking = Tracking(tmp_path / "mlruns")
    job = {"name": "train-lost", "experiment": "mlops-training", "status": "Running", "tags": {}, "error": None,
           "inputs": {"data": "http://h/a/data/"}, "created": "2026-01-01T00:00:00.000+00:00",
           "started": "2026-01-01T00:00:05.000+00:00", "ended": None}
    job["mlflow_run_id"], _ = tracking.start_run(job)
    (tmp_path / "jobs" / "train-lost").mkdir(parents=True)
    (tmp_path / "jobs" / "train-lost" / "job.json").write_text(json.dumps(job))

    async def recover():
        async def publish(events):
            pass
        await StandInJobs(tmp_path / "jobs", "", publish, "t", resolve_model=lambda ref: None,
                          tracking=tracking).recover()

    asyncio.run(recover())
    run = tracking.client().get_run(job["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.data.metrics["compute.queue_seconds"] == 5.0
