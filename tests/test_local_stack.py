"""The function app on the whole local stack: Azurite, the local Event Grid and the Functions host,
started like `mlops up` does. Data lands with azure-storage-blob; the function records it once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.eventgrid import EventGridPublisherClient
from azure.storage.blob import BlobServiceClient, ContentSettings

from emulator.home import StackHome
from emulator.stack import AlreadyRunning, Stack, StackOptions
from emulator.timeline import Timeline
from lifecycle.adapters.blob_state import BlobState
from lifecycle.core.state_records import DataBatch, Rejection
from tests.conftest import wait_until

pytestmark = pytest.mark.stack      # the whole local stack

SAMPLES = Path(__file__).with_name("samples")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = StackHome(tmp_path_factory.mktemp("stack"))
    running = Stack(home, StackOptions(retry_scale=0.01))
    info = running.start()
    yield running, info
    running.stop()


@pytest.fixture(scope="module")
def data(stack):
    _, info = stack
    container = BlobServiceClient.from_connection_string(info.storage_connection_string).get_container_client("data")
    container.create_container()
    return container


def state(info) -> BlobState:
    return BlobState(BlobServiceClient.from_connection_string(info.storage_connection_string), "mlops-state")


def deliveries(stack, function: str = "on_data_arrived", subject_end: str = "") -> list:
    running, _ = stack
    return [r for r in Timeline(running.home.timeline).read()
            if r.function == function and r.subject.endswith(subject_end)]


def batches_for(info, path: str) -> list:
    return [b for b in state(info).list(DataBatch) if b.blob_path == path]


def test_upload_triggers_the_function_and_records_one_batch(stack, data):
    _, info = stack
    path = f"loans/{uuid.uuid4()}/part-0000.csv"
    data.upload_blob(path, b"age,income,default\n30,1000,0\n",
                     content_settings=ContentSettings(content_type="text/csv"))
    batch = wait_until(lambda: batches_for(info, path), what="the data batch")[0]
    props = data.get_blob_client(path).get_blob_properties()
    assert batch.etag == props.etag
    assert batch.content_length == 29
    assert batch.url == data.get_blob_client(path).url
    record = wait_until(lambda: deliveries(stack, subject_end=path), what="delivery record")[0]
    assert (record.outcome, record.attempt, record.subscription) == ("delivered", 1, "data-arrived")


def test_a_new_version_of_a_blob_is_a_new_batch(stack, data):
    _, info = stack
    path = f"loans/{uuid.uuid4()}.csv"
    data.upload_blob(path, b"a,b\n1,2\n")
    wait_until(lambda: len(batches_for(info, path)) == 1, what="first version")
    data.upload_blob(path, b"a,b\n1,2\n3,4\n", overwrite=True)
    versions = wait_until(lambda: len(found := batches_for(info, path)) == 2 and found, what="second version")
    assert len({b.etag for b in versions}) == 2


def test_zero_length_blob_is_delivered_but_not_recorded(stack, data):
    _, info = stack
    path = f"empty/{uuid.uuid4()}.csv"
    data.upload_blob(path, b"")
    wait_until(lambda: deliveries(stack, subject_end=path), what="delivery of the empty blob")
    assert batches_for(info, path) == []


def test_other_containers_do_not_reach_the_function(stack):
    _, info = stack
    other = BlobServiceClient.from_connection_string(info.storage_connection_string).get_container_client("feedback")
    other.create_container()
    other.upload_blob("labels.csv", b"id,label\n1,0\n")
    marker = f"loans/{uuid.uuid4()}.csv"  # a later data blob proves the watcher has looked since
    BlobServiceClient.from_connection_string(info.storage_connection_string).get_container_client("data") \
        .upload_blob(marker, b"x,y\n1,2\n")
    wait_until(lambda: batches_for(info, marker), what="the marker batch")
    assert not deliveries(stack, subject_end="labels.csv")


def _publish_storage_events(info, events: list[dict]) -> None:
    """Post system-topic events (e.g. recorded ADLS samples) through the local topic endpoint."""
    response = requests.post(info.eventgrid_topics["storage"], json=events,
                             headers={"aeg-sas-key": info.eventgrid_key}, timeout=10)
    assert response.status_code == 200, response.text


def _sample(name: str) -> list[dict]:
    body = json.loads((SAMPLES / name).read_text())
    return body if isinstance(body, list) else [body]


def _fresh(event: dict, path: str) -> dict:
    """A recorded sample re-pointed at a fresh blob path, so each test owns its records."""
    event = json.loads(json.dumps(event))
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"/blobServices/default/containers/data/blobs/{path}"
    event["data"]["url"] = f"https://account.blob.core.windows.net/data/{path}"
    event.pop("topic", None)
    return event


def test_adls_createfile_and_flushwithclose_record_one_batch(stack):
    _, info = stack
    (create,) = _sample("blob_created_adls_createfile.json")
    (flush,) = _sample("blob_created_adls_flushwithclose.json")
    path = f"adls/{uuid.uuid4()}.parquet"
    _publish_storage_events(info, [_fresh(create, path), _fresh(flush, path)])
    wait_until(lambda: batches_for(info, path), what="the FlushWithClose batch")
    assert len(batches_for(info, path)) == 1
    assert batches_for(info, path)[0].content_length == flush["data"]["contentLength"]


def test_duplicate_delivery_is_recorded_once(stack):
    _, info = stack
    (event,) = _sample("blob_created_putblob.json")[:1]
    event = _fresh(event, f"dup/{uuid.uuid4()}.csv")
    path = event["subject"].split("/blobs/", 1)[1]
    _publish_storage_events(info, [event])
    _publish_storage_events(info, [event])      # the same event id and eTag, delivered again
    wait_until(lambda: len(deliveries(stack, subject_end=path)) == 2, what="both deliveries")
    assert len(batches_for(info, path)) == 1


def test_malformed_blob_event_is_kept_as_a_rejection_not_retried(stack):
    _, info = stack
    (event,) = _sample("blob_created_putblob.json")[:1]
    event = _fresh(event, f"bad/{uuid.uuid4()}.csv")
    del event["data"]["url"]
    _publish_storage_events(info, [event])
    rejection = wait_until(lambda: [r for r in state(info).list(Rejection) if r.event_id == event["id"]],
                           what="the rejection")[0]
    assert "url" in rejection.reason
    records = deliveries(stack, subject_end=event["subject"].split("/blobs/", 1)[1])
    assert [r.outcome for r in records] == ["delivered"]


def test_custom_topic_accepts_the_publisher_client(stack):
    _, info = stack
    from azure.eventgrid import EventGridEvent
    client = EventGridPublisherClient(info.eventgrid_endpoint, AzureKeyCredential(info.eventgrid_key))
    event = EventGridEvent(id=str(uuid.uuid4()), subject="rollouts/churn", event_type="MLOps.Test", data={},
                           data_version="1")
    client.send([event])
    running, _ = stack
    record = wait_until(lambda: [r for r in Timeline(running.home.timeline).read() if r.event_id == event.id],
                        what="the unmatched record")[0]
    assert record.outcome == "unmatched"   # no subscription for it yet: visible, not silently gone


def test_webhook_requires_the_key_and_answers_the_handshake(stack):
    _, info = stack
    url = f"{info.functions_url}/runtime/webhooks/eventgrid"
    validation = [{"id": "v1", "topic": "t", "subject": "",
                   "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "eventTime": "2026-11-23T10:00:00Z", "dataVersion": "2", "metadataVersion": "1",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]
    params = {"functionName": "on_data_arrived"}
    headers = {"aeg-event-type": "SubscriptionValidation"}
    assert requests.post(url, json=validation, params=params, headers=headers, timeout=5).status_code == 401
    keys = json.loads((Path(info.home) / "functions" / "keys.json").read_text())
    answer = requests.post(url, json=validation, params={**params, "code": keys["eventgrid_extension_key"]},
                           headers=headers, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_a_second_stack_on_the_same_home_is_refused(stack):
    running, _ = stack
    with pytest.raises(AlreadyRunning, match="already running"):
        Stack(running.home).start()


def _mlops(home: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mlops.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, **kwargs)


def test_cli_info_and_events(stack):
    running, info = stack
    shown = json.loads(_mlops(running.home.root, "info", "--json").stdout)
    for key in ("storage_connection_string", "eventgrid_endpoint", "eventgrid_key", "functions_url", "functions_key"):
        assert shown[key] == getattr(info, key)
    assert {"name": "on_data_arrived", "trigger": "eventGridTrigger"}.items() <= shown["functions"][0].items()
    # with the ticks: alone, this test may run before any event but the timers' reached the stack
    timeline = json.loads(_mlops(running.home.root, "events", "--json", "--limit", "0", "--ticks").stdout)
    assert timeline and ({"event_id", "event_type", "subject", "function", "attempt", "outcome", "time"}
                         <= timeline[0].keys())
    table = _mlops(running.home.root, "events", "--limit", "5", "--ticks")
    assert table.returncode == 0 and timeline[-1]["function"] in table.stdout


def test_cli_info_without_a_stack_says_how_to_start_one(tmp_path):
    result = _mlops(tmp_path, "info", "--json")
    assert result.returncode == 1
    assert "mlops up" in result.stderr


def test_mlops_up_runs_in_the_foreground_refuses_a_second_and_stops_everything(tmp_path):
    # TARGET_COLUMN=x mlops up: the environment wins over local.settings.json, with Core Tools' warning; the
    # stack's own connection wins over a shell's (here a real Azure account's) in any case
    shell_storage = "DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=a2V5;EndpointSuffix=core.windows.net"
    env = {**os.environ, "MLOPS_HOME": str(tmp_path), "TARGET_COLUMN": "x", "AzureWebJobsStorage": shell_storage}
    up = subprocess.Popen([sys.executable, "-m", "mlops.cli", "up"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: (tmp_path / "stack.json").exists() or up.poll() is not None, timeout=60, what="mlops up")
        assert up.poll() is None, up.stdout.read()
        info = json.loads((tmp_path / "stack.json").read_text())
        second = _mlops(tmp_path, "up")
        assert second.returncode == 1 and "already running" in second.stderr + second.stdout
        assert requests.get(info["functions_url"], timeout=5).status_code == 200
        handed = json.loads((tmp_path / "functions" / "settings.json").read_text())["Values"]
        assert handed["TARGET_COLUMN"] == "x" and handed["AzureWebJobsStorage"] == info["storage_connection_string"]
        # its dashboard: the live stack's status behind the key it wrote (owner only)
        wait_until(lambda: (tmp_path / "dashboard.json").exists(), timeout=30, what="the dashboard")
        dashboard = json.loads((tmp_path / "dashboard.json").read_text())
        assert (tmp_path / "dashboard.json").stat().st_mode & 0o077 == 0
        assert requests.get(f"{dashboard['url']}/api/status", timeout=5).status_code == 401
        shown = requests.get(f"{dashboard['url']}/api/status", timeout=30,
                             headers={"Authorization": f"Bearer {dashboard['key']}"})
        assert shown.status_code == 200 and "model_name" in shown.json()
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        output = up.stdout.read()
        assert "stopped" in output
        assert ("Skipping 'TARGET_COLUMN' from local settings as it's already defined in current environment "
                "variables.") in output.splitlines()
    finally:
        if up.poll() is None:
            up.kill()
    assert not (tmp_path / "stack.json").exists() and not (tmp_path / "dashboard.json").exists()
    assert json.loads((tmp_path / "status.json").read_text())["status"]["model_name"]    # what status shows, stopped
    for url in (info["functions_url"], dashboard["url"]):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    with pytest.raises(requests.ConnectionError):
        requests.get(info["blob_endpoint"], timeout=2)
