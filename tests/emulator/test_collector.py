"""The local data collector (emulator/aml/collector.py) against Azurite: what the router hands it
lands in Azure ML's data collector layout, one CloudEvents-like line per request, and the Collected
adapter (lifecycle/adapters/collected_data.py) reads the predictions back."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerClient

from emulator.aml import collector as collector_module
from emulator.aml.collector import DataCollector
from lifecycle.adapters.collected_data import BlobCollected

SOURCE = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
COLUMNS = ["age", "income", "plan", "tenure_months", "has_partner"]
ROW = [42, 51000.5, "basic", 3, False]
RECORD = dict(zip(COLUMNS, ROW))
BLOB_NAME = re.compile(r"modelDataCollector/(?P<endpoint>[^/]+)/(?P<deployment>[^/]+)/"
                       r"(?P<collection>model_inputs|model_outputs)/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/"
                       r"[0-9a-f-]{36}\.jsonl")


def split(*rows) -> bytes:
    return json.dumps({"input_data": {"columns": COLUMNS, "data": [list(r) for r in rows]}}).encode()


def records(*rows) -> bytes:
    return json.dumps({"data": list(rows)}).encode()


def answer(*predictions: str) -> bytes:
    """score.py's answer shape."""
    probabilities = [[0.8, 0.2] if p == "churn" else [0.3, 0.7] for p in predictions]
    return json.dumps({"predictions": list(predictions), "probabilities": probabilities,
                       "classes": ["churn", "stay"], "model": "churn:1"}).encode()


def collect(connection_string: str, container: str, calls: list[tuple]) -> int:
    """Hand `calls` (on_scored arguments) to a DataCollector, flush, close; the number flushed."""
    async def scenario() -> int:
        collector = DataCollector(connection_string, container, source_prefix=SOURCE, flush_interval=3600)
        await collector.start()
        try:
            for call in calls:
                collector(*call)
            return await collector.flush()
        finally:
            await collector.close()
    return asyncio.run(scenario())


def stored(connection_string: str, container: str) -> dict[str, list[dict]]:
    """blob name -> its JSON lines."""
    client = ContainerClient.from_connection_string(connection_string, container)
    return {blob.name: [json.loads(line) for line in client.download_blob(blob.name).readall().decode().splitlines()]
            for blob in client.list_blobs(name_starts_with="modelDataCollector/")}


@pytest.fixture
def container() -> str:
    return f"collect-{uuid.uuid4().hex[:12]}"


def test_both_request_shapes_land_in_the_azure_ml_layout(azurite, container):
    before = datetime.now(UTC)
    flushed = collect(azurite.connection_string, container, [
        # endpoint, deployment, request body, response body, status, latency_s, x-request-id
        ("churn", "blue", split(ROW, ROW), answer("churn", "stay"), 200, 0.01, "req-split"),
        ("churn", "blue", records({**RECORD, "request_id": "row-own"}), answer("stay"), 200, 0.01, "req-own"),
        ("churn", "blue", records(RECORD), answer("churn"), 200, 0.01, "req-single"),
        ("churn", "blue", records({**RECORD, "request_id": "row-a"}, RECORD),
         answer("churn", "stay"), 200, 0.01, "req-mixed"),
        ("churn", "green", split(ROW), answer("stay"), 200, 0.01, "req-green"),
    ])
    after = datetime.now(UTC)
    assert flushed == 5

    blobs = stored(azurite.connection_string, container)
    hours = {f"{t:%Y/%m/%d/%H}" for t in (before, after)}
    by_place: dict[tuple[str, str, str], list[dict]] = {}
    for name, lines in blobs.items():
        match = BLOB_NAME.fullmatch(name)
        assert match, name
        assert match["hour"] in hours, (name, hours)
        by_place.setdefault((match["endpoint"], match["deployment"], match["collection"]), []).extend(lines)
    assert set(by_place) == {("churn", d, c) for d in ("blue", "green") for c in ("model_inputs", "model_outputs")}

    for (endpoint, deployment, collection), lines in by_place.items():
        for line in lines:
            assert line["specversion"] == "1.0"
            assert uuid.UUID(line["id"])
            assert line["source"] == f"{SOURCE}/onlineEndpoints/{endpoint}/deployments/{deployment}"
            assert line["type"] == f"azureml.inference.{collection}"
            assert before - timedelta(seconds=1) <= _time(line) <= after
            assert isinstance(line["data"], list) and line["data"]
            assert line["correlationid"].startswith("req-")

    inputs = {line["correlationid"]: line["data"] for line in by_place["churn", "blue", "model_inputs"]}
    outputs = {line["correlationid"]: line["data"] for line in by_place["churn", "blue", "model_outputs"]}
    assert inputs == {
        "req-split": [{**RECORD, "request_id": "req-split:0"}, {**RECORD, "request_id": "req-split:1"}],
        "req-own": [{**RECORD, "request_id": "row-own"}],
        "req-single": [{**RECORD, "request_id": "req-single"}],
        "req-mixed": [{**RECORD, "request_id": "row-a"}, {**RECORD, "request_id": "req-mixed:1"}],
    }
    churn = {"prediction": "churn", "probability_churn": 0.8, "probability_stay": 0.2}
    stay = {"prediction": "stay", "probability_churn": 0.3, "probability_stay": 0.7}
    assert outputs == {
        "req-split": [{**churn, "request_id": "req-split:0"}, {**stay, "request_id": "req-split:1"}],
        "req-own": [{**stay, "request_id": "row-own"}],
        "req-single": [{**churn, "request_id": "req-single"}],
        "req-mixed": [{**churn, "request_id": "row-a"}, {**stay, "request_id": "req-mixed:1"}],
    }
    [green] = by_place["churn", "green", "model_outputs"]
    assert green["data"] == [{**stay, "request_id": "req-green"}]


def test_only_answered_scoring_requests_are_collected(azurite, container):
    flushed = collect(azurite.connection_string, container, [
        ("churn", "blue", records({**RECORD, "age": "old"}), b'{"error": "row 0, column \'age\'"}', 400, 0.01, "bad"),
        ("churn", "blue", records(RECORD), b'{"error": "boom"}', 500, 0.01, "failed"),
        ("churn", "blue", records(RECORD), b'{"error": "late"}', 408, 5.0, "late"),
        ("churn", "blue", b"not json", answer("churn"), 200, 0.01, "not-json"),
        ("churn", "blue", json.dumps({"something": "else"}).encode(), answer("churn"), 200, 0.01, "no-rows"),
        ("churn", "blue", records(RECORD), answer("stay"), 200, 0.01, "good"),
    ])
    assert flushed == 3          # the 200s are taken; the ones without rows write nothing
    lines = [line for blob in stored(azurite.connection_string, container).values() for line in blob]
    assert sorted((line["type"], line["correlationid"]) for line in lines) == [
        ("azureml.inference.model_inputs", "good"), ("azureml.inference.model_outputs", "good")]


def test_an_answer_without_predictions_collects_the_inputs_only(azurite, container):
    collect(azurite.connection_string, container, [
        ("churn", "blue", records(RECORD), b'{"result": [1]}', 200, 0.01, "odd-answer")])
    [(name, [line])] = stored(azurite.connection_string, container).items()
    assert "/model_inputs/" in name and line["data"] == [{**RECORD, "request_id": "odd-answer"}]


def test_the_hour_folder_is_the_answer_time_in_utc(azurite, container, monkeypatch):
    late = datetime(2024, 1, 2, 3, 59, 59, 900_000, tzinfo=UTC)
    next_hour = datetime(2024, 1, 2, 4, 0, 0, 100_000, tzinfo=UTC)

    async def scenario() -> None:
        collector = DataCollector(azurite.connection_string, container, source_prefix=SOURCE, flush_interval=3600)
        await collector.start()
        for when, request_id in ((late, "late"), (next_hour, "next")):   # the collector stamps the call's time
            monkeypatch.setattr(collector_module.time, "time", when.timestamp)
            collector("churn", "blue", records(RECORD), answer("churn"), 200, 0.01, request_id)
        monkeypatch.undo()
        await collector.flush()
        await collector.close()
    asyncio.run(scenario())

    folders = {name.rsplit("/", 1)[0]: lines for name, lines in stored(azurite.connection_string, container).items()}
    assert [line["correlationid"]
            for line in folders["modelDataCollector/churn/blue/model_inputs/2024/01/02/03"]] == ["late"]
    assert [line["correlationid"]
            for line in folders["modelDataCollector/churn/blue/model_inputs/2024/01/02/04"]] == ["next"]
    assert folders["modelDataCollector/churn/blue/model_inputs/2024/01/02/03"][0]["time"] == "2024-01-02T03:59:59.900Z"

    collected = BlobCollected(ContainerClient.from_connection_string(azurite.connection_string, container))
    # the window walks the hour folders, and keeps the lines whose time is inside it
    assert collected.predictions("churn", "blue", datetime(2024, 1, 2, 3, 30, tzinfo=UTC),
                                 datetime(2024, 1, 2, 4, 30, tzinfo=UTC)) == ["churn", "churn"]
    assert [r["request_id"] for r in collected.records("churn", "blue", "model_outputs", late, next_hour)] == ["late"]
    assert collected.predictions("churn", "green", late - timedelta(hours=1), next_hour) == []


def test_collected_predictions_read_back(azurite, container):
    # `since` a few seconds back: see the next test for a window that opens in the same second
    since = datetime.now(UTC) - timedelta(seconds=5)
    collect(azurite.connection_string, container, [
        ("churn", "blue", split(ROW, ROW, ROW), answer("churn", "stay", "churn"), 200, 0.01, "r1"),
        ("churn", "blue", records(RECORD), answer("stay"), 200, 0.01, "r2"),
        ("churn", "green", records(RECORD), answer("churn"), 200, 0.01, "r3"),
    ])
    collected = BlobCollected(ContainerClient.from_connection_string(azurite.connection_string, container))
    assert sorted(collected.predictions("churn", "blue", since)) == ["churn", "churn", "stay", "stay"]
    assert collected.predictions("churn", "green", since) == ["churn"]
    assert collected.predictions("churn", "blue", datetime.now(UTC) + timedelta(seconds=1)) == []
    assert BlobCollected(
        ContainerClient.from_connection_string(azurite.connection_string, "no-such-container")
    ).predictions("churn", "blue", since) == []


def test_predictions_collected_in_the_second_the_window_opens(azurite, container):
    async def scenario() -> datetime:
        collector = DataCollector(azurite.connection_string, container, source_prefix=SOURCE, flush_interval=3600)
        await collector.start()
        time.sleep(1.05 - time.time() % 1)      # early in a second: the blob is written within the same one
        since = datetime.now(UTC)
        time.sleep(0.005)                       # lines carry milliseconds: the answer comes a few ms later
        collector("churn", "blue", records(RECORD), answer("stay"), 200, 0.01, "r1")
        await collector.flush()
        await collector.close()
        return since
    since = asyncio.run(scenario())
    assert BlobCollected(
        ContainerClient.from_connection_string(azurite.connection_string, container)
    ).predictions("churn", "blue", since) == ["stay"]


def test_a_storage_failure_keeps_the_records_for_the_next_flush(azurite, container):
    async def scenario() -> tuple[int, int]:
        collector = DataCollector(azurite.connection_string, container, source_prefix=SOURCE, flush_interval=3600)
        collector("churn", "blue", records(RECORD), answer("stay"), 200, 0.01, "kept")   # no container yet
        with pytest.raises(Exception):  # noqa: B017  (any storage error: the point is what survives it)
            await collector.flush()
        await collector.start()                 # creates the container
        flushed = await collector.flush()
        again = await collector.flush()
        await collector.close()
        return flushed, again
    assert asyncio.run(scenario()) == (1, 0)
    lines = [line for blob in stored(azurite.connection_string, container).values() for line in blob]
    assert sorted(line["correlationid"] for line in lines) == ["kept", "kept"]


def test_close_during_a_background_flush_loses_nothing(azurite, container):
    async def scenario() -> None:
        collector = DataCollector(azurite.connection_string, container, source_prefix=SOURCE, flush_interval=0.05)
        await collector.start()
        uploading, upload = asyncio.Event(), collector._container.upload_blob

        async def slow_upload(*args, **kwargs):   # a slow storage: close() comes while the batch is uploading
            uploading.set()
            await asyncio.sleep(0.3)
            return await upload(*args, **kwargs)

        collector._container.upload_blob = slow_upload
        for i in range(300):
            collector("churn", "blue", records(RECORD), answer("stay"), 200, 0.01, f"r{i}")
        await uploading.wait()
        await collector.close()
    asyncio.run(scenario())
    lines = [line for blob in stored(azurite.connection_string, container).values() for line in blob]
    assert len({line["correlationid"] for line in lines}) == 300


def _time(line: dict) -> datetime:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", line["time"]), line["time"]
    return datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
