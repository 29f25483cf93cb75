"""`mlops status` on monitoring passes: one whose collected data could not be found shows as a warning with
the place it looked; a failed job and a pass still running say so. The records are written by the monitor
handler on Azurite (state and the data collector's container), as the function app writes them."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from azure.storage.blob import BlobServiceClient
from rich.console import Console

from lifecycle.adapters.blob_state import BlobState
from lifecycle.adapters.collected_data import BlobCollected
from lifecycle.core.platform_values import ModelReference
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import MonitorRun
from lifecycle.handlers.monitoring import monitor
from mlops.status import collect
from mlops.status_view import render
from tests.fakes import fake_platform

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def on_azurite(azurite, collector_container: str):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    p = fake_platform(model_name="m")
    p = replace(p, state=BlobState(service, f"state-{uuid.uuid4().hex[:8]}"),
                collected=BlobCollected(service.get_container_client(collector_container)))
    p.state.create(Rollout(endpoint="mlops-endpoint", rollout_id="r1", model="m:2", colour="green", phase="promoted",
                           started_at="2026-11-23T11:30:00Z"))
    p.registry.references["m:2"] = ModelReference({"features": {}}, {})
    return p, service


def shown(p) -> str:
    console = Console(record=True, width=400)
    render(console, collect(p))
    return console.export_text()


def test_a_pass_without_collected_data_is_a_warning_naming_where_it_looked(azurite):
    container = f"azureml-blobstore-{uuid.uuid4().hex[:8]}"          # never created: the collector writes elsewhere
    p, _ = on_azurite(azurite, container)
    run = monitor(p, NOW)
    assert run.status == "NoData" and p.jobs.monitoring == []
    [entry] = collect(p)["monitoring"]
    place = f"/{container}/modelDataCollector/mlops-endpoint/green/"
    assert entry["status"] == "NoData" and place in entry["warning"]
    text = shown(p)
    assert "warning: no collected data at" in text and place in text


def test_an_empty_collector_folder_is_a_warning_too_and_data_there_starts_a_job(azurite):
    container = f"azureml-{uuid.uuid4().hex[:8]}"
    p, service = on_azurite(azurite, container)
    collector = service.get_container_client(container)
    collector.create_container()
    collector.upload_blob("modelDataCollector/mlops-endpoint/blue/model_inputs/2026/11/23/11/a.jsonl", b"{}\n")
    assert monitor(p, NOW).status == "NoData"                         # data of another colour is not this one's
    collector.upload_blob("modelDataCollector/mlops-endpoint/green/model_inputs/2026/11/23/11/a.jsonl", b"{}\n")
    run = monitor(p, NOW.replace(minute=1))
    assert run.status == "Submitted"
    assert f"job {run.job} running" in shown(p)


def test_a_failed_monitoring_job_shows_its_reason(azurite):
    p, _ = on_azurite(azurite, f"azureml-{uuid.uuid4().hex[:8]}")
    p.state.create(MonitorRun(run_id="r", endpoint="mlops-endpoint", deployment="green", model="m:2",
                              window_start="2026-11-23T11:30:00+00:00", window_end="2026-11-23T12:00:00+00:00",
                              result={}, status="Failed", job="monitor-x",
                              error="no reference/profile.json under /mnt"))
    assert "job monitor-x failed: no reference/profile.json under /mnt" in shown(p)
