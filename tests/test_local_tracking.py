"""training/run_log.py's tracking: into the run the job's environment names (MLFLOW_RUN_ID, as Azure ML and the
local stand-in set it), with the model as the run's artifacts; and not at all inside untracked() (mlops simulate
runs train.main() in its own process)."""
from __future__ import annotations

import os

import pytest

from training.run_log import track, untracked

DOC = {"model_name": "m", "target": "label", "task": "classification", "algorithm": "linear", "test_size": 0.2,
       "seed": 42, "rows": {"total": 100}, "hyperparameters": {"C": 1.0, "max_depth": None},
       "metrics": {"accuracy": 0.9, "roc_auc": None}, "champion": {"accuracy": 0.8},
       "calibration": {"expected_calibration_error": 0.05}}


@pytest.fixture
def job_run(tmp_path, monkeypatch):
    """A run created beforehand, as the stand-in creates the job's, and the env it gives the job."""
    import mlflow
    from mlflow.tracking import MlflowClient
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("mlops-training"), run_name="train-m-1")
    for key, value in {"MLFLOW_TRACKING_URI": uri, "MLFLOW_RUN_ID": run.info.run_id,
                       "MLFLOW_EXPERIMENT_ID": run.info.experiment_id}.items():
        monkeypatch.setenv(key, value)
    yield client, run.info.run_id
    mlflow.end_run()                                    # the fluent run this process resumed


def test_track_logs_into_the_job_s_run_with_the_model(job_run, tmp_path):
    client, run_id = job_run
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    track(DOC, model)
    run = client.get_run(run_id)
    assert run.data.metrics == {"accuracy": 0.9, "champion_accuracy": 0.8, "expected_calibration_error": 0.05}
    assert (run.data.params["algorithm"], run.data.params["max_depth"]) == ("linear", "None")
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/MLmodel"]
    assert len(client.search_runs([run.info.experiment_id])) == 1                # no run of its own


def test_nothing_is_tracked_inside_untracked(job_run):
    client, run_id = job_run
    with untracked():
        track(DOC)
    assert client.get_run(run_id).data.metrics == {}
    assert os.environ["MLFLOW_RUN_ID"] == run_id                                 # the environment back as it was
