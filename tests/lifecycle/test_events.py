"""lifecycle.core.incoming_events: every recorded sample parses to its type, from either schema and either casing."""
from __future__ import annotations

import base64
import copy
import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifecycle.core import incoming_events as events
from lifecycle.core.incoming_events import (
    BlobCreated,
    DatasetDriftDetected,
    EventParseError,
    LifecycleEvent,
    ModelRegistered,
    RunCompleted,
    RunStatusChanged,
    SubscriptionValidation,
    UnknownEvent,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample(name: str) -> dict:
    """A sample as delivered: Event Grid posts an array; the function sees one element."""
    return json.loads((SAMPLES / f"{name}.json").read_text())[0]


EXPECTED = {
    "blob_created_putblob": BlobCreated,
    "blob_created_putblocklist": BlobCreated,
    "blob_created_copyblob": BlobCreated,
    "blob_created_zero_length": BlobCreated,
    "blob_created_adls_createfile": BlobCreated,
    "blob_created_adls_flushwithclose": BlobCreated,
    "cloudevents_blob_created_putblob": BlobCreated,
    "cloudevents_blob_created_adls_createfile": BlobCreated,
    "cloudevents_blob_created_adls_flushwithclose": BlobCreated,
    "aml_run_completed": RunCompleted,
    "aml_run_status_changed_failed": RunStatusChanged,
    "aml_run_status_changed_monitor_breach": RunStatusChanged,
    "aml_model_registered_pascal": ModelRegistered,
    "aml_model_registered_camel": ModelRegistered,
    "aml_dataset_drift_detected": DatasetDriftDetected,
    "subscription_validation": SubscriptionValidation,
    "mlops_drift_detected": LifecycleEvent,
}


def test_every_sample_is_covered() -> None:
    assert {p.stem for p in SAMPLES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses_to_its_type(name: str) -> None:
    raw = sample(name)
    event = events.parse(raw)
    assert type(event) is EXPECTED[name]
    assert event.id == raw["id"]
    assert event.event_type == raw.get("eventType", raw.get("type"))
    assert event.subject == raw["subject"]
    assert event.event_time is not None and event.event_time.tzinfo is not None
    assert event.source == raw.get("topic", raw.get("source"))
    hash(event)   # frozen values: usable as keys and in sets


# ---- BlobCreated ------------------------------------------------------------------------------

def test_blob_created_fields() -> None:
    event = events.parse(sample("blob_created_putblob"))
    assert event == BlobCreated(
        id="1b7f3c2e-201e-0042-7c1a-b3f0d6065a1e", subject="/blobServices/default/containers/data/blobs/"
        "incoming/2024-06-01/batch-0001.csv",
        event_time=datetime(2024, 6, 1, 8, 15, 42, 183456, tzinfo=UTC),
        source="/subscriptions/5f3c2a1e-8b4d-4f6a-9c7e-2d1b0a9e8f7c/resourceGroups/rg-mlops-dev/providers/"
               "Microsoft.Storage/storageAccounts/stmlopsdev",
        container="data", blob_path="incoming/2024-06-01/batch-0001.csv", api="PutBlob", etag='"0x8DC81F2A6B3C4D5"',
        content_type="text/csv", content_length=18432, blob_type="BlockBlob",
        url="https://stmlopsdev.blob.core.windows.net/data/incoming/2024-06-01/batch-0001.csv",
        sequencer="00000000000000000000000000012A6F0000000000a1b2c3")
    assert event.event_type == events.BLOB_CREATED


@pytest.mark.parametrize("name, committed", [
    ("blob_created_putblob", True),
    ("blob_created_putblocklist", True),
    ("blob_created_copyblob", True),
    ("blob_created_adls_createfile", False),     # ADLS Gen2 announces the file before any data is written
    ("blob_created_adls_flushwithclose", True),
    ("blob_created_zero_length", False),
    ("cloudevents_blob_created_adls_createfile", False),
    ("cloudevents_blob_created_adls_flushwithclose", True),
])
def test_committed(name: str, committed: bool) -> None:
    assert events.parse(sample(name)).committed is committed


def test_adls_pair_is_one_file_ordered_by_sequencer() -> None:
    created = events.parse(sample("blob_created_adls_createfile"))
    flushed = events.parse(sample("blob_created_adls_flushwithclose"))
    assert (created.container, created.blob_path) == (flushed.container, flushed.blob_path) \
        == ("data", "landing/2024-06-02/batch-0002.csv")
    assert created.content_length == 0 and flushed.content_length == 48213
    assert created.sequencer < flushed.sequencer
    assert created.etag != flushed.etag


@pytest.mark.parametrize("name", ["blob_created_putblob", "blob_created_adls_createfile",
                                  "blob_created_adls_flushwithclose"])
def test_both_schemas_give_the_same_event(name: str) -> None:
    assert events.parse(sample(name)) == events.parse(sample("cloudevents_" + name))


def test_flush_with_close_of_nothing_is_not_committed() -> None:
    raw = sample("blob_created_adls_flushwithclose")
    raw["data"]["contentLength"] = 0
    assert events.parse(raw).committed is False


def test_unknown_blob_api_is_not_committed() -> None:
    raw = sample("blob_created_putblob")
    raw["data"]["api"] = "SomeFutureApi"
    assert events.parse(raw).committed is False


def test_data_keys_match_without_regard_to_case() -> None:
    raw = sample("blob_created_putblob")
    raw["data"] = {k.upper(): v for k, v in raw["data"].items()}
    assert events.parse(raw) == events.parse(sample("blob_created_putblob"))


def test_content_length_as_a_numeric_string() -> None:
    raw = sample("blob_created_putblob")
    raw["data"]["contentLength"] = "18432"
    assert events.parse(raw).content_length == 18432


def test_blob_path_keeps_folders_and_spaces() -> None:
    raw = sample("blob_created_putblob")
    raw["subject"] = "/blobServices/default/containers/feedback/blobs/labels/2024 06/part 1.csv"
    event = events.parse(raw)
    assert (event.container, event.blob_path) == ("feedback", "labels/2024 06/part 1.csv")


# ---- Azure ML ---------------------------------------------------------------------------------

def test_run_completed() -> None:
    event = events.parse(sample("aml_run_completed"))
    assert event.experiment_id == "0fa9dfaa-cba3-4fa7-b590-23e48548f5c1"
    assert event.experiment_name == "credit-default-training"
    assert event.run_id == "train-credit-default-20240601-3f9a1c"
    assert event.run_type == "azureml.scriptrun"
    assert event.run_tags["mlops.batch_id"] == "b-1b7f3c2e"
    assert event.run_properties["azureml.git.commit"].startswith("9c1d")
    assert event.run_status == "Completed"
    assert event.monitor_breach is False and event.breach_message is None


def test_run_type_null_as_in_microsofts_sample() -> None:
    raw = sample("aml_run_completed")
    raw["data"]["runType"] = None
    assert events.parse(raw).run_type is None


def test_run_status_changed_failed_is_not_a_breach() -> None:
    event = events.parse(sample("aml_run_status_changed_failed"))
    assert event.run_status == "Failed"
    assert event.monitor_breach is False


def test_monitor_breach() -> None:
    event = events.parse(sample("aml_run_status_changed_monitor_breach"))
    assert event.monitor_breach is True
    assert "data_drift_signal" in event.breach_message


def test_monitor_breach_with_pascal_case_keys() -> None:
    raw = sample("aml_run_status_changed_monitor_breach")
    data = raw["data"]
    tags = {k.replace("azureml_modelmonitor", "AzureML_ModelMonitor"): v for k, v in data["runTags"].items()}
    raw["data"] = {"ExperimentId": data["experimentId"], "ExperimentName": data["experimentName"],
                   "RunId": data["runId"], "RunType": data["runType"], "RunTags": tags,
                   "RunProperties": data["runProperties"], "RunStatus": "Failed"}
    event = events.parse(raw)
    assert event.run_id == data["runId"] and event.run_status == "Failed"
    assert event.monitor_breach is True


def test_breach_tag_without_the_phrase_is_not_a_breach() -> None:
    raw = sample("aml_run_status_changed_monitor_breach")
    raw["data"]["runTags"]["azureml_modelmonitor_threshold_breached"] = "The signal 'x' passed."
    assert events.parse(raw).monitor_breach is False


def test_tags_are_read_only() -> None:
    event = events.parse(sample("aml_run_completed"))
    with pytest.raises(TypeError):
        event.run_tags["x"] = "y"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.run_id = "other"


@pytest.mark.parametrize("name, version", [("aml_model_registered_pascal", "3"), ("aml_model_registered_camel", "4")])
def test_model_registered_casing_and_version_types(name: str, version: str) -> None:
    event = events.parse(sample(name))
    assert event.model_name == "credit-default"
    assert event.model_version == version
    assert event.model_tags["mlops.job"].startswith("train-credit-default")
    assert "auc" in event.model_properties


@pytest.mark.parametrize("raw_version, expected", [(20, "20"), ("20", "20"), (20.0, "20"), ("2.1", "2.1")])
def test_model_version_becomes_a_string(raw_version: object, expected: str) -> None:
    raw = sample("aml_model_registered_pascal")
    raw["data"]["ModelVersion"] = raw_version
    assert events.parse(raw).model_version == expected


def test_dataset_drift_detected() -> None:
    event = events.parse(sample("aml_dataset_drift_detected"))
    assert event.data_drift_id == "01d29aa4-e6a4-470a-9ef3-66660d21f8ef"
    assert event.data_drift_name == "credit-default-drift"
    assert event.run_id.endswith("_1717718400380")
    assert event.base_dataset_id.startswith("3c56") and event.target_dataset_id.startswith("d7e7")
    assert event.drift_coefficient == pytest.approx(0.835034906)
    assert event.start_time == datetime(2024, 6, 6, tzinfo=UTC)
    assert event.end_time == datetime(2024, 6, 7, tzinfo=UTC)


# ---- the rest ---------------------------------------------------------------------------------

def test_subscription_validation() -> None:
    event = events.parse(sample("subscription_validation"))
    assert event.validation_code == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    assert event.validation_url.startswith("https://")
    assert event.subject == ""


def test_lifecycle_event() -> None:
    event = events.parse(sample("mlops_drift_detected"))
    assert event.event_type == "MLOps.DriftDetected"
    assert event.subject == "models/credit-default/versions/3"
    assert event.data["features"]["income"]["value"] == 0.2314


def test_lifecycle_event_without_data() -> None:
    raw = sample("mlops_drift_detected")
    del raw["data"]
    assert dict(events.parse(raw).data) == {}


def test_other_event_types_are_unknown_not_errors() -> None:
    raw = sample("blob_created_putblob")
    raw["eventType"] = "Microsoft.Storage.BlobDeleted"
    event = events.parse(raw)
    assert type(event) is UnknownEvent
    assert event.data["api"] == "PutBlob"


def test_event_type_matches_without_regard_to_case() -> None:
    raw = sample("aml_run_completed")
    raw["eventType"] = raw["eventType"].lower()
    assert type(events.parse(raw)) is RunCompleted


def test_cloudevent_with_base64_json_data() -> None:
    raw = sample("cloudevents_blob_created_putblob")
    data = raw.pop("data")
    raw["data_base64"] = base64.b64encode(json.dumps(data).encode()).decode()
    raw["datacontenttype"] = "application/json"
    assert events.parse(raw) == events.parse(sample("cloudevents_blob_created_putblob"))


def test_cloudevent_without_time() -> None:
    raw = sample("cloudevents_blob_created_putblob")
    del raw["time"]
    assert events.parse(raw).event_time is None


# ---- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, mutate, fragments", [
    ("aml_model_registered_pascal", lambda r: r["data"].pop("ModelName"),
     ["ModelRegistered", "a06d2e4f-5b7c-4d9e-8f3a-4b5c6d7e8f90", "'ModelName' is missing"]),
    ("aml_model_registered_camel", lambda r: r["data"].update(modelVersion=None),
     ["ModelRegistered", "'ModelVersion' is missing"]),
    ("aml_model_registered_pascal", lambda r: r["data"].update(ModelVersion=True), ["'ModelVersion' must be a string"]),
    ("blob_created_putblob", lambda r: r["data"].pop("contentLength"), ["BlobCreated", "'contentLength' is missing"]),
    ("blob_created_putblob", lambda r: r["data"].update(contentLength="big"), ["'contentLength' must be a number"]),
    ("blob_created_putblob", lambda r: r["data"].update(contentLength=-1), ["'contentLength' must be a whole number"]),
    ("blob_created_putblob", lambda r: r["data"].pop("eTag"), ["'eTag' is missing"]),
    ("blob_created_putblob", lambda r: r.update(subject="/blobServices/default/containers/data"),
     ["subject '/blobServices/default/containers/data' is not"]),
    ("blob_created_putblob", lambda r: r.update(data="not an object"), ["'data' must be an object"]),
    ("blob_created_putblob", lambda r: r.update(eventTime="yesterday"),
     ["'eventTime' is not an ISO 8601", "yesterday"]),
    ("cloudevents_blob_created_putblob", lambda r: r.update(time="soon"), ["'time' is not an ISO 8601"]),
    ("aml_run_status_changed_failed", lambda r: r["data"].pop("runStatus"), ["RunStatusChanged", "'runStatus'"]),
    ("aml_run_completed", lambda r: r["data"].update(runTags=["a"]), ["'runTags' must be an object"]),
    ("aml_dataset_drift_detected", lambda r: r["data"].update(DriftCoefficient="high"),
     ["'DriftCoefficient' must be a number"]),
    ("aml_dataset_drift_detected", lambda r: r["data"].update(StartTime="monday"), ["'StartTime' is not an ISO"]),
    ("blob_created_putblob", lambda r: r.pop("eventType"), ["1b7f3c2e-201e-0042-7c1a-b3f0d6065a1e",
                                                            "'eventType' is missing"]),
    ("cloudevents_blob_created_putblob", lambda r: r.pop("type"), ["'type' is missing"]),
    ("blob_created_putblob", lambda r: r.pop("id"), ["Microsoft.Storage.BlobCreated", "no 'id'"]),
])
def test_parse_errors_name_the_event_and_the_field(name, mutate, fragments) -> None:
    raw = copy.deepcopy(sample(name))
    mutate(raw)
    with pytest.raises(EventParseError) as caught:
        events.parse(raw)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_parse_error_carries_id_and_type() -> None:
    raw = sample("aml_model_registered_pascal")
    del raw["data"]["ModelName"]
    with pytest.raises(EventParseError) as caught:
        events.parse(raw)
    assert caught.value.event_id == raw["id"]
    assert caught.value.event_type == raw["eventType"]
    assert isinstance(caught.value, ValueError)


def test_not_an_object() -> None:
    with pytest.raises(EventParseError, match="must be a JSON object"):
        events.parse(["not", "an", "event"])


# ---- the Functions binding --------------------------------------------------------------------

def _binding(raw: dict):
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum
    # What the Python worker does with each delivered element.
    return EventGridEventInConverter.decode(Datum(json.dumps(raw), "json"), trigger_metadata=None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_from_binding_equals_parse(name: str) -> None:
    raw = sample(name)
    assert events.from_binding(_binding(raw)) == events.parse(raw)


def test_from_binding_cloudevent_base64() -> None:
    raw = sample("cloudevents_blob_created_putblob")
    data = raw.pop("data")
    raw["data_base64"] = base64.b64encode(json.dumps(data).encode()).decode()
    raw["datacontenttype"] = "application/json"
    assert events.from_binding(_binding(raw)) == events.parse(sample("cloudevents_blob_created_putblob"))


def test_from_binding_naive_time_is_utc() -> None:
    raw = sample("aml_run_completed")
    raw["eventTime"] = "2024-06-01T08:41:27"
    assert events.from_binding(_binding(raw)).event_time == datetime(2024, 6, 1, 8, 41, 27, tzinfo=UTC)


def test_from_binding_error_is_a_parse_error() -> None:
    raw = sample("aml_model_registered_camel")
    del raw["data"]["modelName"]
    with pytest.raises(EventParseError, match="'ModelName' is missing"):
        events.from_binding(_binding(raw))


def test_import_is_light() -> None:
    code = ("import sys, lifecycle.core.incoming_events; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('azure', 'requests', 'aiohttp')]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
