"""Several models in one app, from one models file: each read and checked at start (a wrong file is refused
with the file, the key and what to do), and each model's events start only its own steps (in-memory ports)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.bootstrap import build_catalog, build_policies
from lifecycle.core import incoming_events as events
from lifecycle.core.alert_sources import from_event
from lifecycle.core.policies import TrainingWindow
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import AlertRecord, Drop, TrainingRun
from lifecycle.handlers.azureml_runs import run_status_changed
from lifecycle.handlers.data import data_arrived
from lifecycle.handlers.monitoring import monitor_models
from lifecycle.handlers.rollout import model_registered
from lifecycle.handlers.training import retrain_models
from lifecycle.model_scope import UnknownModel, for_model
from lifecycle.models_file import ModelsFileError, load_models_file
from lifecycle.settings import Settings, SettingsError
from lifecycle.steps.alert_response import handle_alert
from tests.fakes import complete_runs, fake_platform

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TWO = """
defaults:
  retrain: {cooldown_minutes: 0}
  rollout: {steps: [25, 100]}
models:
  loans:
    target: default
    endpoint: loans-endpoint
    data: {root: loans/}
    gate: {metric: f1, floor: 0.7}
  prices:
    task: regression
    target: price
    endpoint: prices-endpoint
    data: {root: prices/, window: 30 days}
    training: {inputs: {max_iter: 50}}
    gate: {metric: rmse, floor: 25}
    rollout: {steps: "10,50,100", bake_seconds: 60}
    monitor: {sensitive_column: region, drift_thresholds: {psi: 0.3}}
"""
BASE = build_policies(Settings(storage_connection="memory"))


def load(text: str, tmp_path: Path, **files: str):
    (tmp_path / "mlops.yaml").write_text(text)
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    return load_models_file("mlops.yaml", BASE, tmp_path)


def blob(path: str, size: int = 100):
    return events.parse({
        "id": str(uuid.uuid4()), "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-30T09:00:00Z",
        "subject": f"/blobServices/default/containers/data/blobs/{path}", "dataVersion": "",
        "data": {"api": "PutBlob", "eTag": f"0x{uuid.uuid4().hex[:12].upper()}", "contentType": "text/csv",
                 "contentLength": size, "blobType": "BlockBlob", "sequencer": "01",
                 "url": f"http://127.0.0.1:10000/devstoreaccount1/data/{path}"}})


def drop(p, folder: str, when: datetime = T0) -> None:
    data_arrived(blob(f"{folder}part-0000.csv"), p, when)
    data_arrived(blob(f"{folder}_SUCCESS", 0), p, when)


# -- reading the file ------------------------------------------------------------------------------------
def test_each_model_takes_its_own_values_then_the_files_defaults_then_the_app_settings(tmp_path):
    loans, prices = load(TWO, tmp_path)
    assert (loans.model.name, loans.model.task, loans.model.target_column) == ("loans", "classification", "default")
    assert loans.rollout.steps == (25, 100) and loans.gate.floor == 0.7 and loans.retrain.cooldown_minutes == 0
    assert loans.rollout.bake_seconds == BASE.rollout.bake_seconds           # from the app settings
    assert prices.model.task == "regression" and prices.model.data_root == "prices/"
    assert prices.model.training_window == TrainingWindow("days", 30)
    assert prices.model.training_inputs == {"max_iter": "50"} and prices.rollout.steps == (10, 50, 100)
    assert prices.monitor.drift_thresholds == {"psi": 0.3} and prices.monitor.sensitive_column == "region"
    assert prices.gate.metric == "rmse" and loans.promotion == BASE.promotion
    (default,) = load("models: {h: {target: price, task: regression}}", tmp_path)
    assert (default.gate.metric, default.gate.floor) == ("r2", 0.5)      # not the app settings' f1


@pytest.mark.parametrize(("text", "message"), [
    ("models: {a: {target: y, endpiont: e}}", "mlops.yaml: models.a.endpiont: is not a known key (did you mean "
                                               "'endpoint'?)"),
    ("models: {a: {endpoint: e}}", "mlops.yaml: models.a.target: is missing: name the label column"),
    ("models: {a: {target: y, task: ranking}}", "models.a.task: is 'ranking': use 'classification'"),
    ("models: {a: {target: y, data: {window: last week}}}", "models.a.data.window: is 'last week': use 'all'"),
    ("models: {a: {target: y, data: {root: sales}}}", "models.a.data.root: is 'sales': a folder, ending in '/'"),
    ("models: {a: {target: y, rollout: {steps: [50, 10, 100]}}}",
     "models.a.rollout.steps: is [50, 10, 100]: it must be increasing percentages"),
    ("models: {a: {target: y, rollout: {min_requests: 2.5}}}", "models.a.rollout.min_requests: is 2.5: expected a "
                                                                "whole number"),
    ("models: {a: {target: y, gate: {floor: high}}}", "models.a.gate.floor: is 'high': expected a number"),
    ("models: {a: {target: y, training: {spec: jobs/missing.yml}}}", "models.a.training.spec: jobs/missing.yml is "
                                                                      "not a file in the app"),
    ("models: {a: {target: y, endpoint: e}, b: {target: y, endpoint: e}}", "models: endpoint 'e' is given to two "
                                                                            "models (a and b)"),
    ("models: {a: {target: y, data: {root: s/}}, b: {target: y, data: {root: s/eu/}}}",
     "b's dataset root 's/eu/' lies inside a's 's/'"),
    ("defaults: {gate: {metrc: f1}}\nmodels: {a: {target: y}}", "defaults.gate.metrc: is not a known key (did you "
                                                                 "mean 'metric'?)"),
    ("models: []", "models: must be a mapping of name: value, not list"),
    ("models: {a: {target: y, task: regression, gate: {metric: f1}}}",
     "models.a.gate.metric: is 'f1', which a regression job does not report: use one of r2, mae, rmse, mape"),
    ("models: {a: {target: y}\n", "mlops.yaml: not valid YAML"),
])
def test_a_wrong_file_is_refused_with_the_file_the_key_and_what_to_do(tmp_path, text, message):
    with pytest.raises(ModelsFileError) as error:
        load(text, tmp_path)
    assert message in str(error.value)


def test_the_app_refuses_to_start_on_a_wrong_file_and_keeps_working_without_one(tmp_path, monkeypatch):
    assert build_catalog(Settings(storage_connection="memory")) == (BASE,)
    with pytest.raises(SettingsError, match="MLOPS_CONFIG names nowhere.yaml, which does not exist"):
        build_catalog(Settings(storage_connection="memory", config_file="nowhere.yaml"))
    spec = tmp_path / "job.yml"
    spec.write_text("type: command\n")
    models = load(f"models: {{a: {{target: y, training: {{spec: {spec.name}}}}}}}", tmp_path)
    assert models[0].model.training_spec == "job.yml"


# -- each model's events start only its own steps -------------------------------------------------------
def test_a_drop_starts_only_its_models_training_and_data_under_no_root_is_left_alone():
    p = fake_platform(models_file=TWO)
    drop(p, "prices/2026-11-30/")
    (request,) = p.jobs.submitted
    assert (request.model_name, request.task, request.target) == ("prices", "regression", "price")
    assert request.hyperparameters == {"max_iter": "50"} and request.data_files == ("2026-11-30/part-0000.csv",)
    drop(p, "elsewhere/")
    assert len(p.jobs.submitted) == 1 and not any(d.prefix == "elsewhere/" for d in p.state.list(Drop))


def test_one_models_failure_and_alert_start_nothing_for_the_other():
    p = fake_platform(models_file=TWO)
    drop(p, "loans/day1/")
    drop(p, "prices/day1/")
    loans_job, prices_job = (r.job_name for r in p.jobs.submitted)
    p.jobs.finish(prices_job, "Canceled", error="node lost")
    p.jobs.jobs[prices_job] = p.jobs.jobs[prices_job].__class__(**{**p.jobs.jobs[prices_job].__dict__,
                                                                    "retryable": True})
    run_status_changed(events.parse({
        "id": "x", "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
        "subject": f"experiments/e/runs/{prices_job}", "eventTime": "2026-11-30T09:05:00Z", "dataVersion": "2",
        "data": {"runId": prices_job, "experimentName": "mlops-training", "runStatus": "Canceled", "runTags": {}}}),
        p, T0 + timedelta(minutes=5))
    assert p.jobs.submitted[-1].model_name == "prices"          # its drop offered again, to its own model
    assert p.state.get(TrainingRun, loans_job).status == "Submitted"
    p.state.create(Rollout(endpoint="prices-endpoint", rollout_id="r", model="prices:1", colour="blue",
                           phase="promoted", started_at=T0.isoformat()))
    alert = from_event(events.parse({
        "id": "a1", "eventType": "MLOps.DriftDetected", "subject": "/endpoints/prices-endpoint/deployments/blue",
        "eventTime": T0.isoformat(), "dataVersion": "1",
        "data": {"alertId": "prices-endpoint/blue/prices:1/data_drift", "condition": "Fired", "signal": "data_drift",
                 "summary": "size drifted", "endpoint": "prices-endpoint", "model": "prices:1"}}))
    record = handle_alert(alert, p, T0 + timedelta(minutes=6))
    assert record.model == "prices" and record.outcome == "training already running"   # prices', not loans'
    stray = from_event(events.parse({
        "id": "a2", "eventType": "MLOps.DriftDetected", "subject": "/endpoints/other", "eventTime": T0.isoformat(),
        "dataVersion": "1", "data": {"alertId": "other/x", "condition": "Fired", "summary": "?", "endpoint": "other"}}))
    assert handle_alert(stray, p, T0).outcome == "needs a person"
    assert [a.model for a in p.state.list(AlertRecord) if a.alert_id == "other/x"] == [""]


def test_a_registered_version_rolls_out_on_its_own_models_endpoint():
    p = fake_platform(models_file=TWO)
    p.registry.register("prices", "train-x", {})
    rollout = model_registered(events.parse({
        "id": "m", "eventType": "Microsoft.MachineLearningServices.ModelRegistered", "subject": "models/prices:1",
        "eventTime": T0.isoformat(), "dataVersion": "2",
        "data": {"ModelName": "prices", "ModelVersion": "1", "ModelTags": {}, "ModelProperties": {}}}), p, T0)
    assert rollout is not None and rollout.endpoint == "prices-endpoint"
    assert p.state.get(Rollout, "loans-endpoint") is None


def test_timers_act_for_every_model_and_a_person_names_one():
    p = fake_platform(models_file=TWO)
    drop(p, "loans/a/")
    drop(p, "prices/a/")
    runs = retrain_models(p, T0 + timedelta(hours=1), forced=True)
    assert sorted(r.model_name for r in runs) == ["loans", "prices"]
    assert [r.model_name for r in retrain_models(p, T0 + timedelta(hours=2), forced=True, model="prices")] == \
        ["prices"]
    with pytest.raises(UnknownModel, match="model 'houses' is not one this app keeps \\(loans, prices\\)"):
        for_model(p, "houses")
    with pytest.raises(UnknownModel, match="this app keeps loans, prices: name one of them"):
        for_model(p, "")
    assert monitor_models(p, T0) == []              # nothing live on either endpoint yet: no pass, no error


def test_the_app_checks_its_models_file_as_it_loads():
    from lifecycle.models_file import check_at_start
    check_at_start({})                                   # no models file: the app settings' one model
    check_at_start({"MLOPS_CONFIG": "mlops.yaml"})       # the one the app ships
    with pytest.raises(ModelsFileError, match="MLOPS_CONFIG names nowhere.yaml, which does not exist"):
        check_at_start({"MLOPS_CONFIG": "nowhere.yaml"})


def test_a_model_without_its_target_takes_the_app_settings_one_at_start_too(tmp_path):
    from lifecycle.models_file import check_at_start
    file = tmp_path / "m.yaml"
    file.write_text("models: {a: {endpoint: e}}\n")
    with pytest.raises(ModelsFileError, match="models.a.target: is missing"):
        check_at_start({"MLOPS_CONFIG": str(file)})
    check_at_start({"MLOPS_CONFIG": str(file), "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                    "TARGET_COLUMN": "label"})


# -- a model's own schedules and a date column's window -----------------------------------------------------
def test_a_model_with_its_own_schedule_takes_only_its_turns_of_the_apps_timer():
    p = fake_platform(models_file="""
models:
  nightly: {target: y, endpoint: a, data: {root: a/}, retrain: {schedule: "0 0 3 * * *"}}
  always: {target: y, endpoint: b, data: {root: b/}}
""")
    drop(p, "a/day1/")
    drop(p, "b/day1/")
    forced = {r.model_name for r in retrain_models(p, T0, forced=True)}       # forced: every model, now
    assert forced == {"nightly", "always"}
    data_arrived(blob("a/day2/part-0000.csv"), p, T0 + timedelta(hours=1))      # no marker: left for the timer
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert retrain_models(p, start) == []                        # first tick: nightly's count starts here
    assert retrain_models(p, start + timedelta(hours=6)) == []   # 18:00: not 03:00 yet
    runs = retrain_models(p, start + timedelta(hours=15, minutes=1))             # 03:01 next day: its turn
    assert [r.model_name for r in runs] == ["nightly"]
    assert retrain_models(p, start + timedelta(hours=15, minutes=6)) == []       # once per occurrence


@pytest.mark.parametrize(("text", "message"), [
    ("models: {a: {target: y, retrain: {schedule: '0 3 * * *'}}}",
     "models.a.retrain.schedule: is '0 3 * * *': it must be six NCRONTAB fields, seconds first"),
    ("models: {a: {target: y, data: {window: {column: sold_on}}}}",
     "models.a.data.window: is {column: 'sold_on', days: 0}: name the date column and at least 1 day"),
])
def test_schedules_and_column_windows_are_checked(tmp_path, text, message):
    with pytest.raises(ModelsFileError) as error:
        load(text, tmp_path)
    assert message in str(error.value)


def test_a_date_columns_window_reads_every_file_and_filters_rows_in_the_job(tmp_path):
    text = "models: {s: {target: y, data: {root: s/, window: {column: sold_on, days: 90}}}}"
    (model,) = load(text, tmp_path)
    assert model.model.training_window == TrainingWindow("column", 90, "sold_on")
    assert str(model.model.training_window) == "rows of the last 90 day(s) of sold_on"
    p = fake_platform(models_file=text)
    drop(p, "s/old/", T0 - timedelta(days=400))
    complete_runs(p)
    drop(p, "s/new/", T0)
    request = p.jobs.submitted[-1]
    assert request.data_files == ("new/part-0000.csv", "old/part-0000.csv")      # every file...
    assert (request.window_column, request.window_days) == ("sold_on", 90)      # ...its rows filtered by the job
