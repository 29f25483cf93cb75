"""Which triggers start training (RETRAIN_ON, or retrain.on in the models file): a drop as it is ready, the
retrain timer's turn, a drift alert, a performance alert, or never; a forced retrain always trains
(in-memory ports)."""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.bootstrap import build_policies
from lifecycle.core import alert_sources as alerts
from lifecycle.core import incoming_events as events
from lifecycle.core import retraining
from lifecycle.core.policies import PolicyError, RetrainPolicy, retrain_triggers
from lifecycle.core.state_records import AlertRecord, DataBatch, Drop, TrainingRun
from lifecycle.handlers.azureml_runs import run_status_changed
from lifecycle.handlers.data import data_arrived
from lifecycle.handlers.reconcile import reconcile
from lifecycle.handlers.training import retrain_models, retrain_on_schedule
from lifecycle.models_file import ModelsFileError, load_models_file
from lifecycle.settings import Settings, SettingsError
from lifecycle.steps.alert_response import handle_alert
from tests.fakes import complete_runs, fake_platform

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NOW = datetime.now(UTC)      # records stamp the wall clock (submitted_at), so the tests run on it too
EVERY = "data,schedule,drift,performance"
RULE = "must be 'never' alone, or one or more of data, schedule, drift, performance separated by commas"


def blob(path: str, size: int = 100):
    return events.parse({
        "id": str(uuid.uuid4()), "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-23T10:00:00Z",
        "subject": f"/blobServices/default/containers/data/blobs/{path}", "dataVersion": "",
        "data": {"api": "PutBlob", "eTag": f"0x{uuid.uuid4().hex[:12].upper()}", "contentType": "text/csv",
                 "contentLength": size, "blobType": "BlockBlob", "sequencer": "01",
                 "url": f"http://127.0.0.1:10000/devstoreaccount1/data/{path}"}})


def drop(p, folder: str, when: datetime = NOW) -> None:
    """A complete drop: a part file and its _SUCCESS marker."""
    data_arrived(blob(f"{folder}part-0000.csv"), p, when)
    data_arrived(blob(f"{folder}_SUCCESS", 0), p, when)


def alert(signal: str, source: str = "monitor", alert_id: str = "") -> alerts.Alert:
    return alerts.Alert(alert_id=alert_id or f"mlops-endpoint/blue/m:1/{signal}", condition="Fired", source=source,
                        signal=signal, summary=f"{signal} breached", fired_at=NOW.isoformat())


def sample(name: str):
    doc = json.loads((SAMPLES / name).read_text())
    return doc[0] if isinstance(doc, list) else doc


# ---- the setting and the models file key -------------------------------------------------------------------

@pytest.mark.parametrize(("value", "triggers"), [
    (EVERY, {"data", "schedule", "drift", "performance"}),
    ("drift,performance", {"drift", "performance"}),
    (" Schedule , DATA ", {"schedule", "data"}),
    ("drift performance", {"drift", "performance"}),
    ("never", set()),
    (["schedule"], {"schedule"}),
])
def test_retrain_on_reads_its_words(value, triggers):
    assert retrain_triggers(value) == frozenset(triggers)


def test_the_default_is_every_trigger_and_never_is_none():
    assert build_policies(Settings(storage_connection="x")).retrain == RetrainPolicy()
    assert RetrainPolicy().triggers == frozenset({"data", "schedule", "drift", "performance"})
    assert RetrainPolicy().retrain_on == EVERY
    never = build_policies(Settings(storage_connection="x", retrain_on="never")).retrain
    assert never.triggers == frozenset() and never.retrain_on == "never"
    assert Settings.from_env({"AzureWebJobsStorage": "x", "RETRAIN_ON": "schedule"}).retrain_on == "schedule"


@pytest.mark.parametrize("value", ["weekly", "never,data", "data,drfit", ",", [], [1], None])
def test_an_unknown_word_or_never_with_others_is_refused_with_the_valid_values(value):
    with pytest.raises(PolicyError, match=RULE) as error:
        retrain_triggers(value)
    assert error.value.field == "triggers"
    with pytest.raises(PolicyError, match=RULE):
        RetrainPolicy(triggers=frozenset({"weekly"}))


@pytest.mark.parametrize("value", ["weekly", "never,data", "data;drift"])
def test_a_refused_retrain_on_names_the_app_setting(value):
    with pytest.raises(SettingsError) as error:
        build_policies(Settings.from_env({"AzureWebJobsStorage": "x", "RETRAIN_ON": value}))
    assert str(error.value) == f"app setting RETRAIN_ON is {value!r}: it {RULE} (e.g. 'drift,performance')"


def load(text: str, tmp_path: Path, **settings: str):
    (tmp_path / "mlops.yaml").write_text(text)
    base = build_policies(Settings(storage_connection="memory", **settings))
    return load_models_file("mlops.yaml", base, tmp_path)


def test_the_models_file_sets_retrain_on_per_model_as_a_list_or_text(tmp_path):
    text = """
defaults:
  retrain: {on: [schedule]}
models:
  a: {target: y, endpoint: a, data: {root: a/}, retrain: {on: [drift, performance]}}
  b: {target: y, endpoint: b, data: {root: b/}, retrain: {on: "drift,performance"}}
  c: {target: y, endpoint: c, data: {root: c/}, retrain: {"on": never}}
  d: {target: y, endpoint: d, data: {root: d/}}
"""
    a, b, c, d = load(text, tmp_path)
    assert a.retrain.triggers == b.retrain.triggers == frozenset({"drift", "performance"})
    assert c.retrain.triggers == frozenset() and d.retrain.triggers == frozenset({"schedule"})
    (e,) = load("models: {e: {target: y}}", tmp_path, retrain_on="drift")     # from the app settings
    assert e.retrain.triggers == frozenset({"drift"})


@pytest.mark.parametrize(("text", "message"), [
    ("models: {a: {target: y, retrain: {on: weekly}}}", f"mlops.yaml: models.a.retrain.on: is 'weekly': it {RULE}"),
    ("models: {a: {target: y, retrain: {on: [never, data]}}}", f"models.a.retrain.on: is ['never', 'data']: it {RULE}"),
    ("models: {a: {target: y, retrain: {on: []}}}", f"models.a.retrain.on: is []: it {RULE}"),
    ("defaults: {retrain: {on: drfit}}\nmodels: {a: {target: y}}", f"models.a.retrain.on: is 'drfit': it {RULE}"),
    ("models: {a: {target: y, retrain: {triggers: [data]}}}", "models.a.retrain.triggers: is not a known key"),
])
def test_a_wrong_retrain_on_in_the_models_file_is_refused_with_its_key(tmp_path, text, message):
    with pytest.raises(ModelsFileError) as error:
        load(text, tmp_path)
    assert message in str(error.value)


def test_each_signal_answers_to_drift_or_performance():
    for signal in ("data_drift", "prediction_drift", "multivariate_drift", "label_drift", "attribution_drift"):
        assert alerts.retrain_trigger(alert(signal)) == "drift"
    for signal in ("concept_drift", "estimated_performance", "performance"):
        assert alerts.retrain_trigger(alert(signal)) == "performance"
    assert alerts.retrain_trigger(alert("data_quality")) == alerts.retrain_trigger(alert("fairness")) == ""
    breach = alerts.from_event(events.parse(sample("aml_run_status_changed_monitor_breach.json")))
    dataset = alerts.from_event(events.parse(sample("aml_dataset_drift_detected.json")))
    metric = alerts.from_common_schema(sample("http/azure_monitor_common_alert.json"))
    assert [alerts.retrain_trigger(a) for a in (breach, dataset, metric)] == ["drift", "drift", "performance"]
    assert alerts.retrain_trigger(alert("model_performance_signal", "azureml-model-monitor")) == "performance"
    assert alerts.retrain_trigger(alert("feature_drift_signal", "azureml-model-monitor")) == "drift"


def test_the_decision_is_pure():
    policy = RetrainPolicy(triggers=frozenset({"schedule"}))
    assert retraining.starts(policy, "schedule") and not retraining.starts(policy, "data")
    assert retraining.starts(RetrainPolicy(triggers=frozenset()), retraining.FORCED)
    assert retraining.one_job_for_ready_drops(policy, "schedule")
    assert not retraining.one_job_for_ready_drops(RetrainPolicy(), "schedule")


# ---- data arrival and the reconcile tick ------------------------------------------------------------------

def test_without_data_a_ready_drop_waits_and_is_said_once_per_tick(caplog):
    p = fake_platform(retrain_on="schedule,drift,performance")
    drop(p, "day1/")
    data_arrived(blob("single.csv"), p)              # a top-level file is a complete drop of its own
    assert p.jobs.submitted == [] and len(p.state.list(DataBatch)) == 3     # recorded, not trained
    with caplog.at_level(logging.INFO, logger="lifecycle.training"):
        reconcile(p, NOW + timedelta(minutes=5))
    assert p.jobs.submitted == []
    said = [r for r in caplog.records if "wait" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert said[0].getMessage() == ("2 drop(s) of tabular-classifier ready; they wait for the retrain timer or a "
                                    "drift alert or a performance alert or a forced retrain: RETRAIN_ON is "
                                    "schedule,drift,performance")


def test_with_data_a_drop_trains_as_it_is_ready_and_reconcile_starts_what_is_left():
    p = fake_platform(retrain_on="data")
    drop(p, "day1/")
    assert len(p.jobs.submitted) == 1 and p.jobs.submitted[0].trigger == "data"
    data_arrived(blob("day2/part-0000.csv"), p, NOW)   # no marker: complete after the quiet period
    reconcile(p, NOW + timedelta(minutes=5))
    assert len(p.jobs.submitted) == 2


def test_without_data_a_drop_the_platform_lost_waits_too():
    p = fake_platform(retrain_on="schedule")
    drop(p, "day1/")
    (run,) = retrain_models(p, NOW)
    p.jobs.jobs[run.job_name] = replace(p.jobs.jobs[run.job_name], status="Failed", error="node preempted",
                                        retryable=True)
    run_status_changed(events.parse({
        "id": "e1", "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
        "subject": f"experiments/e/runs/{run.job_name}", "eventTime": NOW.isoformat(), "dataVersion": "2",
        "data": {"experimentId": "e", "experimentName": "mlops-training", "runId": run.job_name, "runTags": {},
                 "runProperties": {}, "runStatus": "Failed"}}), p, NOW)
    assert p.state.get(Drop, run.drop_ids[0]).job == "" and len(p.jobs.submitted) == 1    # offered again: waits
    assert len(retrain_models(p, NOW)) == 1 and len(p.jobs.submitted) == 2               # the timer's next turn


# ---- the retrain timer ------------------------------------------------------------------------------------

def test_without_schedule_the_timers_turn_starts_nothing():
    p = fake_platform(retrain_on="drift,performance")
    drop(p, "day1/")
    assert retrain_on_schedule(p, NOW) is None and retrain_models(p, NOW) == []
    assert p.jobs.submitted == []


def test_schedule_without_data_trains_every_ready_drop_in_one_job():
    p = fake_platform(retrain_on="schedule")
    for day in range(1, 8):
        drop(p, f"day{day}/", NOW - timedelta(days=8 - day))
    assert p.jobs.submitted == []
    (run,) = retrain_models(p, NOW)                   # a week of drops: one run, not seven
    (request,) = p.jobs.submitted
    drops = p.state.list(Drop)
    assert run.trigger == "schedule" and set(run.drop_ids) == {d.drop_id for d in drops}
    assert {d.job for d in drops} == {request.job_name}
    assert request.data_files == tuple(f"day{day}/part-0000.csv" for day in range(1, 8))
    assert len(request.data_batches) == 7              # every drop's new data
    assert retrain_on_schedule(p, NOW) is None         # nothing new: nothing more
    complete_runs(p)
    drop(p, "day8/")
    assert retrain_on_schedule(p, NOW + timedelta(days=1)).data_files[-1] == "day8/part-0000.csv"


def test_schedule_with_data_is_as_before_a_job_per_drop_as_the_cooldown_allows():
    p = fake_platform(retrain_on=EVERY, retrain_cooldown_minutes=10)
    drop(p, "day1/")
    drop(p, "day2/")
    assert len(p.jobs.submitted) == 1                  # day1 at once; day2 cools down
    assert retrain_on_schedule(p, NOW + timedelta(minutes=11)).drop_ids == (Drop.id_for("data", "day2/"),)
    assert len(p.jobs.submitted) == 2


# ---- alerts ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("retrain_on", "signal", "kind"), [
    ("data,schedule,performance", "data_drift", "drift"),
    ("data,schedule,performance", "prediction_drift", "drift"),
    ("data,schedule,drift", "concept_drift", "performance"),
    ("data,schedule,drift", "estimated_performance", "performance"),
])
def test_an_alert_whose_kind_is_off_is_recorded_and_starts_nothing(retrain_on, signal, kind):
    p = fake_platform(retrain_on=retrain_on)
    data_arrived(blob("x.csv"), p)
    complete_runs(p)
    data_arrived(blob("day2/part-0000.csv"), p, NOW - timedelta(minutes=5))     # ready, waiting for a tick
    record = handle_alert(alert(signal), p, NOW)
    assert record.outcome == "not a retrain trigger" and record.job == ""
    assert record.detail == (f"RETRAIN_ON (retrain.on in a models file) is {retrain_on!r}: a {kind} alert starts "
                             f"no training; add {kind!r} to retrain on it")
    assert len(p.jobs.submitted) == 1
    assert p.state.get(AlertRecord, record.key).outcome == "not a retrain trigger"    # kept for mlops status


@pytest.mark.parametrize(("retrain_on", "signal"), [("drift", "data_drift"), ("performance", "concept_drift"),
                                                    ("performance", "performance")])
def test_an_alert_whose_kind_is_on_trains_a_ready_drop_even_without_data(retrain_on, signal):
    p = fake_platform(retrain_on=retrain_on)
    drop(p, "day1/", NOW - timedelta(hours=2))
    drop(p, "day2/", NOW - timedelta(hours=1))
    assert p.jobs.submitted == []                      # data is off: the drops wait
    record = handle_alert(alert(signal), p, NOW)      # no live traffic: the alert's fallback is the ready drops
    assert record.outcome == "retraining"
    (request,) = p.jobs.submitted
    assert request.trigger == "drift" and len(request.data_batches) == 2       # both, in one run


def test_an_alert_not_a_trigger_is_decided_again_when_it_comes_again():
    p = fake_platform(retrain_on="data,schedule")
    drop(p, "day1/", NOW - timedelta(hours=1))
    complete_runs(p)
    first = handle_alert(alert("data_drift"), p, NOW)
    assert first.outcome == "not a retrain trigger"
    p = replace(p, policies=build_policies(Settings(storage_connection="memory", target_column="default",
                                                    retrain_cooldown_minutes=0, retrain_on="data,schedule,drift")))
    data_arrived(blob("day2/part-0000.csv"), p, NOW - timedelta(minutes=5))
    again = handle_alert(alert("data_drift"), p, NOW)  # the monitor re-publishes it; RETRAIN_ON has drift now
    assert again.outcome == "retraining" and len(p.jobs.submitted) == 2


def test_azure_monitor_alerts_are_performance():
    p = fake_platform(retrain_on="drift")
    record = handle_alert(alerts.from_common_schema(sample("http/azure_monitor_common_alert.json")), p, NOW)
    assert record.outcome == "not a retrain trigger" and "a performance alert" in record.detail


@pytest.mark.parametrize("signal", ["data_quality", "fairness"])
def test_data_quality_and_fairness_still_need_a_person(signal):
    record = handle_alert(alert(signal), fake_platform(retrain_on=EVERY), NOW)
    assert record.outcome == "needs a person"


# ---- never, and a person's forced retrain ------------------------------------------------------------------

def test_never_trains_nothing_on_its_own_but_a_forced_retrain_still_trains():
    p = fake_platform(retrain_on="never")
    drop(p, "day1/", NOW - timedelta(hours=1))
    drop(p, "day2/", NOW - timedelta(hours=1))
    reconcile(p, NOW)
    assert retrain_models(p, NOW) == []
    for signal in ("data_drift", "concept_drift"):
        assert handle_alert(alert(signal), p, NOW).outcome == "not a retrain trigger"
    assert p.jobs.submitted == [] and p.state.list(TrainingRun) == []
    assert len(p.state.list(Drop)) == 2 and len(p.state.list(DataBatch)) == 4     # recorded all the same
    (forced,) = retrain_models(p, NOW, forced=True)
    (request,) = p.jobs.submitted                      # the waiting drops, in one job
    assert len(request.data_batches) == 2 and request.job_name == forced.job_name
    complete_runs(p)
    again = retrain_on_schedule(p, NOW, forced=True)   # nothing new: forced trains on the newest data
    assert again.trigger == "forced" and len(p.jobs.submitted) == 2
