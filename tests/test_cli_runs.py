"""`mlops runs` on a real MLflow file store built here with MlflowClient, as the local stand-in writes it (one run per
job, tags mlops.*, compute.* metrics, a pipeline's steps as child runs, a model version linked by run_id): the
table in 80 columns and wide, the filters, --json, one run in detail, and the errors; in process (CliRunner) and
as a real process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops import cli
from tests.emulator.test_job_tracking import trained  # noqa: F401  (a job run on the stand-in, for the last test)

runner = CliRunner()
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"
JOB_1 = "train-tabular-classifier-data-46d2931f4090b651"
JOB_2 = "train-tabular-classifier-alert-9c1d02be7aa4f311"
JOB_FAILED = "train-tabular-classifier-data-0b5e8c6f1d2a7e93"
JOB_REG = "train-house-prices-schedule-5a1e77c0d3b2f914"
MONITOR = "monitor-mlops-endpoint-20261130t040000-9c2b7e1d4a6f"
T0 = 1_796_000_000_000                    # 2026-11-30T00:53:20Z, in ms as MLflow keeps times


def _run(client, experiment_id: str, name: str, start: int, minutes: float, status: str, tags: dict,
         metrics: dict, params: dict | None = None, parent: str | None = None) -> str:
    """A run as the stand-in leaves a finished job's: its tags, params, metrics, then ended at start + minutes."""
    tags = {**tags, **({"mlflow.parentRunId": parent} if parent else {})}
    run = client.create_run(experiment_id, start_time=start, tags=tags, run_name=name)
    run_id = run.info.run_id
    for key, value in (params or {}).items():
        client.log_param(run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, timestamp=start)
    client.set_terminated(run_id, status, end_time=start + int(minutes * 60_000))
    return run_id


def _job_tags(model: str, trigger: str, data: str, task: str, job: str) -> dict:
    return {"mlops.model_name": model, "mlops.trigger": trigger, "mlops.data": data, "mlops.task": task,
            "mlops.job_name": job, "mlops.data_batches": "1"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """Two experiments: a classifier with a registered job (a pipeline with two steps), a rejected one and a
    failed one; a regressor with one registered job. Returns the folder and the run ids."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow import MlflowClient
    folder = tmp_path_factory.mktemp("stack") / "aml" / "mlruns"
    client = MlflowClient(tracking_uri=folder.as_uri(), registry_uri=folder.as_uri())
    clf = client.create_experiment("tabular-classifier")
    reg = client.create_experiment("house-prices")
    compute = {"compute.queue_seconds": 4.0, "compute.cpu_percent": 87.5, "compute.memory_percent": 12.0,
               "compute.peak_memory_mb": 310.0}
    ids = {}
    ids[JOB_1] = _run(client, clf, JOB_1, T0, 12.05, "FINISHED",
                      {**_job_tags("tabular-classifier", "data", f"{AZURITE}/data/loans/2026-11-01/",
                                   "classification", JOB_1),
                       "mlops.gate": "registered", "mlops.registered_version": "tabular-classifier:1"},
                      {"accuracy": 0.863, "f1": 0.817, "roc_auc": 0.939, "compute.duration_seconds": 723.0,
                       **compute}, {"algorithm": "hist_gradient_boosting", "seed": "0", "task": "classification"})
    ids["prep"] = _run(client, clf, "prep", T0 + 10_000, 2, "FINISHED", {}, {"rows": 412.0}, parent=ids[JOB_1])
    ids["train"] = _run(client, clf, "train", T0 + 130_000, 9, "FINISHED", {}, {"accuracy": 0.863},
                        parent=ids[JOB_1])
    ids[JOB_2] = _run(client, clf, JOB_2, T0 + 3_600_000, 3, "FINISHED",
                      {**_job_tags("tabular-classifier", "alert", f"{AZURITE}/feedback/labelled/2026-11-30T10-15-00/",
                                   "classification", JOB_2),
                       "mlops.gate": "rejected", "mlops.gate_reasons": "accuracy 0.801 below the champion's 0.863"},
                      {"accuracy": 0.801, "f1": 0.744, **compute})
    ids[JOB_FAILED] = _run(client, clf, JOB_FAILED, T0 + 7_200_000, 0.5, "FAILED",
                           {**_job_tags("tabular-classifier", "data", f"{AZURITE}/data/loans/2026-11-02/bad.csv",
                                        "classification", JOB_FAILED), "mlops.error": "no label column 'default'"},
                           {})
    ids[JOB_REG] = _run(client, reg, JOB_REG, T0 + 10_800_000, 65, "FINISHED",
                        {**_job_tags("house-prices", "schedule", f"{AZURITE}/data/houses/2026-11/", "regression",
                                     JOB_REG),
                         "mlops.gate": "registered", "mlops.registered_version": "house-prices:4"},
                        {"r2": 0.912, "rmse": 23150.0, "mae": 15000.0, **compute})
    ids[MONITOR] = _run(client, client.create_experiment("mlops-monitoring"), MONITOR, T0 + 14_400_000, 0.3,
                        "FINISHED", {"mlops.component": "monitoring"}, {"compute.duration_seconds": 18.0})
    client.log_text(ids[JOB_1], "{}", "model/MLmodel")
    client.log_text(ids[JOB_1], "accuracy: 0.863", "metrics.json")
    client.create_registered_model("tabular-classifier")
    version = client.create_model_version("tabular-classifier", f"runs:/{ids[JOB_1]}/model", run_id=ids[JOB_1])
    assert version.version in (1, "1")
    return {"folder": folder, "uri": folder.as_uri(), "ids": ids}


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(cli.app, ["runs", *args], env={"MLFLOW_TRACKING_URI": None, "COLUMNS": "80", **(env or {})})


def test_the_table_fits_80_columns_with_the_newest_job_first(store):
    result = invoke("--tracking-uri", store["uri"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    names = [line.split()[0] for line in lines if line.startswith("train-")]
    assert names == [JOB_REG, JOB_FAILED, JOB_2, JOB_1]          # newest first, steps hidden
    text = result.stdout
    assert "  └ prep" not in text
    # under each job name: trigger, steps, data (its last part), run id; the model is in the job name
    assert "schedule · 2026-11 · " + store["ids"][JOB_REG][:8] in text
    assert "data · 2 steps · 2026-11-01 · " + store["ids"][JOB_1][:8] in text
    rows = {name: _row(lines, name) for name in (JOB_REG, JOB_FAILED, JOB_2, JOB_1)}
    assert rows[JOB_REG][1:] == [["finished", "r2 0.912", "registered"], ["11-30 03:53", "rmse", "v4"],
                                 ["1h05m", "23,150"]]
    assert rows[JOB_FAILED][1:] == [["failed", "-", "-"], ["11-30 02:53"], ["30s"]]
    assert rows[JOB_2][1:] == [["finished", "acc 0.801", "rejected"], ["11-30 01:53", "f1 0.744"], ["3m00s"]]
    # the duration is compute.duration_seconds when logged (the job's, not the run's 12m03s)
    assert rows[JOB_1][1:] == [["finished", "acc 0.863", "registered"], ["11-30 00:53", "f1 0.817", "v1"],
                               ["12m03s"]]


def _row(lines: list[str], name: str) -> list[list[str]]:
    """A run's three lines, cut into cells where the header's columns start."""
    header = next(line for line in lines if line.startswith("run "))
    cuts = [header.index("start UTC"), header.index("metrics"), header.index("gate"), None]
    at = next(i for i, line in enumerate(lines) if line.startswith(name))
    cells = [[line[cuts[i]:cuts[i + 1]].strip() for i in range(3)] for line in lines[at:at + 3]]
    return [[name]] + [[c for c in row if c] for row in cells]


def test_the_monitoring_passes_are_left_out_unless_their_experiment_is_asked_for(store):
    assert MONITOR not in invoke("--tracking-uri", store["uri"]).stdout
    only = invoke("--tracking-uri", store["uri"], "--experiment", "mlops-monitoring", "--json")
    assert only.exit_code == 0 and [r["run_name"] for r in json.loads(only.stdout)] == [MONITOR]
    assert invoke("--tracking-uri", store["uri"], MONITOR, "--json").exit_code == 0     # one in detail: found


def test_a_wide_terminal_has_a_column_per_field(store):
    result = invoke("--tracking-uri", store["uri"], env={"COLUMNS": "200"})
    row = next(line for line in result.stdout.splitlines() if line.startswith(JOB_2))
    assert row.split() == [JOB_2, "tabular-classifier", "alert", "finished", "2026-11-30", "01:53:20", "3m00s",
                           "acc", "0.801", "f1", "0.744", "rejected", "2026-11-30T10-15-00", store["ids"][JOB_2][:8]]
    row = next(line for line in result.stdout.splitlines() if line.startswith(JOB_1))
    assert "(2 steps)" in row and "registered v1" in row


def test_all_shows_the_steps_under_their_job(store):
    result = invoke("--tracking-uri", store["uri"], "--all")
    lines = [line for line in result.stdout.splitlines() if line.startswith(("train-", "  └"))]
    at = lines.index(next(line for line in lines if line.startswith(JOB_1)))
    assert [line.split()[1] for line in lines[at + 1:at + 3]] == ["prep", "train"]


def test_filters_and_limit(store):
    by_model = invoke("--tracking-uri", store["uri"], "--model", "house-prices", "--json")
    assert [r["run_name"] for r in json.loads(by_model.stdout)] == [JOB_REG]
    by_experiment = invoke("--tracking-uri", store["uri"], "--experiment", "tabular-classifier", "--limit", "2",
                           "--json")
    assert [r["run_name"] for r in json.loads(by_experiment.stdout)] == [JOB_FAILED, JOB_2]
    unknown = invoke("--tracking-uri", store["uri"], "--experiment", "nope")
    assert unknown.exit_code == 2 and "no such experiment" in unknown.stderr and "house-prices" in unknown.stderr
    none = invoke("--tracking-uri", store["uri"], "--model", "nope")
    assert none.exit_code == 0 and none.stdout == "" and "no runs of model nope" in none.stderr


def test_json_has_the_full_records(store):
    result = invoke("--tracking-uri", store["uri"], "--json", "--all")
    records = {r["run_name"]: r for r in json.loads(result.stdout)}
    job = records[JOB_1]
    assert job["run_id"] == store["ids"][JOB_1] and job["experiment"] == "tabular-classifier"
    assert job["status"] == "FINISHED" and job["registered_version"] == "tabular-classifier:1"
    assert job["gate"] == "registered" and job["trigger"] == "data" and job["model"] == "tabular-classifier"
    assert job["params"]["algorithm"] == "hist_gradient_boosting"
    assert job["metrics"]["compute.cpu_percent"] == 87.5 and job["headline"] == {"accuracy": 0.863, "f1": 0.817}
    assert job["tags"]["mlops.job_name"] == JOB_1 and job["duration_seconds"] == 723.0
    assert job["start"] == "2026-11-30T00:53:20Z" and job["end"] == "2026-11-30T01:05:23Z"
    assert job["child_runs"] == [store["ids"]["prep"], store["ids"]["train"]]
    assert records["prep"]["parent_run_id"] == store["ids"][JOB_1]
    assert records[JOB_REG]["headline"] == {"r2": 0.912, "rmse": 23150.0}


def test_one_run_in_detail_with_its_registered_version(store):
    result = invoke("--tracking-uri", store["uri"], JOB_1)
    assert result.exit_code == 0, result.output
    text = result.stdout
    for expected in ("compute.cpu_percent", "87.5%", "723 (12m03s)", "algorithm", "hist_gradient_boosting",
                     "mlops.trigger", "model/", "metrics.json", "prep", "train",
                     f"tabular-classifier:1  runs:/{store['ids'][JOB_1]}/model"):
        assert expected in text, expected
    by_id = invoke("--tracking-uri", store["uri"], store["ids"][JOB_1][:8], "--json")
    shown = json.loads(by_id.stdout)
    assert shown["run_name"] == JOB_1
    assert [(v["name"], v["version"]) for v in shown["model_versions"]] == [("tabular-classifier", "1")]
    assert {a["path"] for a in shown["artifacts"]} == {"model", "metrics.json"}
    rejected = json.loads(invoke("--tracking-uri", store["uri"], JOB_2, "--json").stdout)
    assert rejected["model_versions"] == [] and rejected["tags"]["mlops.gate_reasons"].startswith("accuracy")


def test_an_unknown_run_is_bad_input(store):
    result = invoke("--tracking-uri", store["uri"], "train-nothing-like-this")
    assert result.exit_code == 2 and "no run named 'train-nothing-like-this'" in result.stderr
    assert result.stdout == ""


def test_a_step_name_of_several_pipelines_is_ambiguous(tmp_path):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=tmp_path.as_uri())
    exp = client.create_experiment("x")
    for job in ("job-a", "job-b"):
        parent = _run(client, exp, job, T0, 1, "FINISHED", {}, {})
        _run(client, exp, "train", T0 + 1000, 1, "FINISHED", {}, {}, parent=parent)
    result = invoke("--tracking-uri", tmp_path.as_uri(), "train")
    assert result.exit_code == 2 and "2 runs are named 'train'" in result.stderr


def test_no_store_yet_says_where_and_how(tmp_path):
    home = tmp_path / "home"
    result = invoke("--home", str(home))
    assert result.exit_code == 0 and result.stdout == ""
    said = " ".join(result.stderr.split())
    assert f"no runs yet: the local stack keeps them at {home / 'aml' / 'mlruns'}" in said and "mlops up" in said
    assert not (home / "aml").exists()                    # nothing created by looking
    as_json = invoke("--json", env={"MLOPS_HOME": str(home)})
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []


def test_the_stack_home_holds_the_store(store):
    home = store["folder"].parent.parent
    result = invoke("--home", str(home), "--json", env={"MLFLOW_TRACKING_URI": "file:/elsewhere"})
    assert len(json.loads(result.stdout)) == 4
    from_env = invoke("--json", env={"MLFLOW_TRACKING_URI": store["uri"]})
    assert len(json.loads(from_env.stdout)) == 4


def test_an_azureml_uri_needs_the_plugin():
    uri = ("azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/0000/resourceGroups/rg/providers/"
           "Microsoft.MachineLearningServices/workspaces/ws")
    result = invoke("--tracking-uri", uri)
    assert result.exit_code == 2 and "pip install azureml-mlflow" in " ".join(result.stderr.split())


def test_a_server_that_does_not_answer_is_said_in_seconds():
    """A tracking server that refuses connections: exit 1 with the reason after a few seconds, not MLflow's
    minutes of retries."""
    import socket
    import time
    with socket.socket() as probe:                       # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mlops.cli", "runs", "--tracking-uri", f"http://127.0.0.1:{port}"],
                            env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "cannot read the tracking store" in result.stderr
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_as_a_process(store):
    """The installed command in a real process: the store from MLFLOW_TRACKING_URI, piped (not a terminal)."""
    script = Path(sys.executable).with_name("mlops")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlops.cli"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"], "COLUMNS": "80"}
    env.pop("MLFLOW_ALLOW_FILE_STORE", None)           # the command sets it itself
    listed = subprocess.run([*command, "runs"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines() if line.startswith("train-")] == \
        [JOB_REG, JOB_FAILED, JOB_2, JOB_1]
    assert "4 runs of " in listed.stderr
    one = subprocess.run([*command, "runs", JOB_REG, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(one.stdout)["metrics"]["rmse"] == 23150.0
    unknown = subprocess.run([*command, "runs", "nope-nope"], env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "no run named 'nope-nope'" in unknown.stderr


@pytest.mark.stack
def test_the_runs_of_a_real_stand_in_job(request):
    """End to end: a training job that really ran on the Azure ML stand-in (train.py on Azurite's data), tagged by
    the gate and registered, as `mlops runs` shows it from the stack home's store."""
    from lifecycle.adapters.local_ml import LocalJobs, LocalRegistry
    client, home, job, status = request.getfixturevalue("trained")
    LocalJobs(client).tag(job.job_name, {"mlops.gate": "registered",
                                         "mlops.registered_version": f"{job.model_name}:1"})
    LocalRegistry(client).register(job.model_name, job.job_name, {"mlops.gate": "registered"})
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("MLFLOW_TRACKING_URI", None)
    listed = subprocess.run([sys.executable, "-m", "mlops.cli", "runs", "--home", str(home.root)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    row = _row(lines, job.job_name)
    assert row[1][0] == "finished" and row[1][1].startswith("acc 0.") and row[1][2] == "registered"
    assert row[2][-1] == "v1" and row[2][1].startswith("f1 0.")
    assert f"{status.tracking_run[:8]}" in lines[lines.index(next(x for x in lines if x.startswith(job.job_name))) + 1]
    shown = json.loads(invoke("--home", str(home.root), job.job_name, "--json").stdout)
    assert shown["run_id"] == status.tracking_run and shown["experiment"] == "mlops-training"
    assert [(v["name"], v["version"]) for v in shown["model_versions"]] == [(job.model_name, "1")]
    assert {"compute.cpu_percent", "compute.duration_seconds"} <= set(shown["metrics"])
    assert shown["params"]["max_iter"] == "30" and {"path": "model", "is_dir": True, "size": None} in shown["artifacts"]
