"""The worked examples of bringing your own training (examples/, docs/bring-your-own-training.md): their specs
load with azure-ai-ml's own loaders, the local stand-in plans them inside our split and evaluation steps, and
the two-step pipeline trains a real table end to end, its output what the rest of the chain reads."""
from __future__ import annotations

import json

import pytest

from emulator.aml.team_pipelines import wrapped_steps
from tests.examples.standin import ROOT, breast_cancer_csv, components, run_job, upload_table

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml")
PIPELINE = "examples/pipeline/pipeline.yml"
COMMAND_JOB = "examples/command-job/job.yml"


@pytest.mark.parametrize("spec", [PIPELINE, COMMAND_JOB])
def test_the_example_specs_load_and_validate_with_azure_ai_ml(spec):
    from azure.ai.ml import load_job
    job = load_job(ROOT / spec)
    assert job._validate().error_messages == {}
    assert "data" in job.inputs and "model" in job.outputs


def test_the_example_command_job_plans_as_one_step_between_split_and_evaluate():
    job = {"spec": COMMAND_JOB, "task": "classification", "hyperparameters": {"learning_rate": "0.05"},
           "inputs": {"data": "http://127.0.0.1/devstoreaccount1/data/", "target": "diagnosis", "model_name": "m",
                      "champion": None}}
    steps = wrapped_steps(ROOT / COMMAND_JOB, job)
    assert [s["name"] for s in steps] == ["split", "train", "evaluate"]
    assert steps[1]["inputs"] == {"data": {"step": "split", "output": "train_data"},
                                  "target": {"value": "diagnosis"}, "learning_rate": {"value": "0.05"}}
    assert steps[1]["code"] == str(ROOT / "examples" / "command-job")


def test_the_example_pipeline_trains_a_real_table_on_the_local_stand_in(tmp_path, azurite):
    """prep → train inside split → evaluate, on the breast cancer table in Azurite, with a training window that
    leaves out an old file the pipeline could not read."""
    data = upload_table(azurite.connection_string, {
        "2025/05/01/part-0.csv": breast_cancer_csv(slice(0, 300)),
        "2025/05/02/part-0.csv": breast_cancer_csv(slice(300, None)),
        "2024/old.csv": b"id;diagnosis\n1;M\n",
    })
    request = {"name": "train-cancer-data-1", "experiment": "mlops-training", "data": data, "target": "label",
               "model_name": "cancer", "task": "classification", "spec": PIPELINE,
               "hyperparameters": {"n_estimators": "25"}, "data_files": ["2025/05/01/part-0.csv", "2025/05/02/"],
               "tags": {"mlops.model_name": "cancer", "mlops.trigger": "data"}}
    jobs, published = run_job(tmp_path / "jobs", azurite.connection_string, request, components(tmp_path))

    name = request["name"]
    job = jobs.get(name)
    assert job["status"] == "Completed", f"{job['error']}\n{jobs.logs(name)}"
    assert [(s["name"], s["status"]) for s in job["steps"]] == [
        ("split", "Completed"), ("train/prep", "Completed"), ("train/train", "Completed"), ("evaluate", "Completed")]
    # the job's output is what the chain reads of any training job: the MLflow model and metrics.json
    assert (jobs.model_dir(name) / "MLmodel").is_file()
    metrics = jobs.metrics(name)
    assert metrics and json.dumps(metrics)
    assert "25 trees on 455 rows" in jobs.logs(name, "train/train")         # the hyperparameter, the split's rows
    downloaded = sorted(str(p.relative_to(jobs.folder(name) / "inputs" / "data"))
                        for p in (jobs.folder(name) / "inputs" / "data").rglob("*") if p.is_file())
    assert downloaded == ["2025/05/01/part-0.csv", "2025/05/02/part-0.csv"]   # the window only
    assert published == ["RunStatusChanged:Running", "RunStatusChanged:Completed", "RunCompleted:"]
