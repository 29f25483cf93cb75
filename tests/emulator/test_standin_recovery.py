"""The stand-in after a kill, on the real Azurite: a registration cut short at any step is finished by the
next call (one version per job), an event a kill held back is published on start, a version number whose
records were lost is never reused, and jobs left running end Canceled and retryable."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from emulator.aml.jobs import LocalJobs
from emulator.aml.registry import CONTAINER, LocalRegistry
from tests.deployment.sample_model import build_model


@pytest.fixture(scope="module")
def job_output(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("job") / "model")


class Published(list):
    async def __call__(self, events):
        self.extend(events)


def registry(azurite, tmp_path, job_output, published):
    return LocalRegistry(tmp_path / "models", azurite.connection_string, published, "/workspace",
                         job_output=lambda job: job_output)


def run(coro):
    return asyncio.run(coro)


def forget(azurite, name: str, blob: str) -> None:
    """What a kill before Azurite saved leaves: the record gone, the files on disk kept."""
    BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
        CONTAINER, f"models/{name}/{blob}").delete_blob()


def test_a_registration_cut_short_is_finished_not_doubled(azurite, tmp_path, job_output):
    name, published = f"m-{uuid.uuid4().hex[:8]}", Published()

    async def scenario():
        first = registry(azurite, tmp_path, job_output, published)
        await first.start()
        model, created = await first.register(name, "job-a", {"k": "v"})
        # killed after the claim and the files, before the version's record survived
        forget(azurite, name, f"versions/{model['version']}.json")
        again, created_again = await first.register(name, "job-a", {"k": "v"})
        repeat, created_repeat = await first.register(name, "job-a", {"k": "v"})
        versions = await first.versions(name)
        await first.close()
        return model, created, again, created_again, repeat, created_repeat, versions
    model, created, again, created_again, repeat, created_repeat, versions = run(scenario())
    assert created and created_again and not created_repeat
    assert again["version"] == model["version"] == repeat["version"] and [v["version"] for v in versions] == ["1"]
    assert (tmp_path / "models" / name / "1" / "model" / "MLmodel").exists()
    assert [e.body["data"]["modelVersion"] for e in published] == ["1", "1"]      # at least once


def test_a_version_whose_records_were_lost_is_not_reused(azurite, tmp_path, job_output):
    name, published = f"m-{uuid.uuid4().hex[:8]}", Published()

    async def scenario():
        r = registry(azurite, tmp_path, job_output, published)
        await r.start()
        await r.register(name, "job-a", {})
        forget(azurite, name, "versions/1.json")
        forget(azurite, name, "jobs/job-a.json")
        model, _ = await r.register(name, "job-b", {})
        await r.close()
        return model
    assert run(scenario())["version"] == "2"          # version 1's files may still serve a deployment


def test_an_event_a_kill_held_back_is_published_on_start(azurite, tmp_path, job_output):
    name, published = f"m-{uuid.uuid4().hex[:8]}", Published()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    record = {"name": name, "version": "1", "path": "azureml://jobs/j/outputs/output/paths/model",
              "type": "mlflow_model", "tags": {}, "properties": {}, "created": "2026-11-30T00:00:00Z",
              "published": False}
    container = service.get_container_client(CONTAINER)
    if not container.exists():
        container.create_container()
    container.upload_blob(f"models/{name}/versions/1.json", json.dumps(record))

    async def scenario():
        r = registry(azurite, tmp_path, job_output, published)
        await r.start()
        await r.start()                                   # announced once, then marked
        await r.close()
    run(scenario())
    assert [(e.event_type, e.body["data"]["modelVersion"]) for e in published if e.body["data"]["modelName"] == name] \
        == [("Microsoft.MachineLearningServices.ModelRegistered", "1")]


def test_jobs_left_running_by_a_kill_end_canceled_and_retryable(tmp_path):
    published = Published()
    jobs = LocalJobs(tmp_path, "", publish=published, topic_id="/workspace", resolve_model=lambda ref: None)
    for name, status in (("train-a", "Running"), ("train-b", "Queued"), ("train-c", "Completed")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "job.json").write_text(json.dumps({
            "name": name, "experiment": "mlops-training", "status": status, "inputs": {}, "tags": {},
            "error": None, "created": f"2026-11-30T00:00:0{len(name)}Z", "started": None, "ended": None}))
    orphans = asyncio.run(jobs.recover())
    assert sorted(j["name"] for j in orphans) == ["train-a", "train-b"]
    a = jobs.get("train-a")
    assert a["status"] == "Canceled" and a["retryable"] and "process is gone" in a["error"]
    assert jobs.get("train-c")["status"] == "Completed"
    assert sorted((e.event_type.rsplit(".", 1)[1], e.body["data"]["runStatus"]) for e in published) == [
        ("RunStatusChanged", "Canceled"), ("RunStatusChanged", "Canceled")]
