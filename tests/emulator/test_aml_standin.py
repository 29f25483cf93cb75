"""The local Azure ML stand-in's own rules: what it refuses, as Azure ML would."""
from __future__ import annotations

import pytest

from emulator.aml.endpoints import Deployment, Endpoint, EndpointError, validate_traffic
from emulator.aml.events import run_event
from emulator.aml.jobs import JobError, LocalJobs
from lifecycle.core import incoming_events as events


def endpoint() -> Endpoint:
    return Endpoint("ep", "k", deployments={"blue": Deployment("blue", "m:1", "Succeeded"),
                                            "green": Deployment("green", "m:2", "Succeeded")})


@pytest.mark.parametrize("traffic, mirror, message", [
    ({"blue": 90}, {}, "add up to 100"),
    ({"blue": 100, "red": 0}, {}, "'red' does not exist"),
    ({"blue": 100}, {"green": 60}, "at most 50%"),
    ({"blue": 50, "green": 50}, {"green": 10}, "takes live traffic"),
    ({"blue": 110, "green": -10}, {}, "negative"),
])
def test_traffic_rules(traffic, mirror, message):
    with pytest.raises(EndpointError, match=message):
        validate_traffic(endpoint(), traffic, mirror)


def test_valid_splits_pass():
    validate_traffic(endpoint(), {"blue": 90, "green": 10}, {})
    validate_traffic(endpoint(), {"blue": 100}, {"green": 20})
    validate_traffic(endpoint(), {}, {})


def test_job_requests_are_checked(tmp_path):
    jobs = LocalJobs(tmp_path, "", publish=None, topic_id="t", resolve_model=lambda ref: None)
    with pytest.raises(JobError, match="not valid"):
        jobs.submit({"name": "1-starts-with-a-digit", "data": "x", "target": "y", "model_name": "m"})
    with pytest.raises(JobError, match="'target' is required"):
        jobs.submit({"name": "job-a", "data": "http://x/devstoreaccount1/data/f.csv", "model_name": "m"})


def test_run_events_parse_as_the_app_expects():
    job = {"name": "train-x", "experiment": "mlops-training", "status": "Failed", "tags": {"mlops.model_name": "m"},
           "error": "bad.csv: the target column 'y' is missing"}
    wire = run_event("/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w",
                     "RunStatusChanged", job)
    parsed = events.parse(wire.body)
    assert isinstance(parsed, events.RunStatusChanged)
    assert (parsed.run_id, parsed.run_status, parsed.experiment_name) == ("train-x", "Failed", "mlops-training")
    assert parsed.subject.startswith("experiments/") and parsed.subject.endswith("/runs/train-x")
    assert parsed.run_tags["mlops.model_name"] == "m"


def test_command_jobs_are_checked(tmp_path):
    jobs = LocalJobs(tmp_path, "", publish=None, topic_id="t", resolve_model=lambda ref: None)
    with pytest.raises(JobError, match="commands that start with 'python '"):
        jobs.submit({"name": "monitor-a", "command": "rm -rf /", "inputs": {}})


def test_a_command_job_runs_its_spec_command_over_downloaded_inputs(tmp_path, azurite):
    """What monitoring/job.yml's command gets locally: blob folders downloaded, a model resolved, literals
    quoted, an optional group without its input dropped; its outputs readable, its events published."""
    import asyncio
    import json
    import uuid

    from azure.storage.blob import BlobServiceClient
    container = f"c{uuid.uuid4().hex[:10]}"
    client = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(container)
    client.create_container()
    client.upload_blob("modelDataCollector/e/d/model_inputs/2026/11/23/11/a.jsonl", b'{"n": 1}\n')
    client.upload_blob("modelDataCollector/e/d/model_inputs/2026/11/22/11/old.jsonl", b'{"n": 0}\n')
    model = tmp_path / "model"
    model.mkdir()
    published = []

    async def publish(events):
        published.extend(e.body["eventType"].rsplit(".", 1)[-1] + ":" + e.body["data"].get("runStatus", "")
                         for e in events)

    script = ("import json, pathlib, sys; args = sys.argv[1:]; "
              "files = sorted(p.name for p in pathlib.Path(args[0]).rglob('*') if p.is_file()); "
              "pathlib.Path(args[-1], 'result.json').write_text(json.dumps({'args': args[1:-1], 'files': files}))")
    spec = {"name": "monitor-e-1", "experiment": "mlops-monitoring", "tags": {"mlops.component": "monitoring"},
            "command": f"python -c {json.dumps(script)} ${{{{inputs.rows}}}} ${{{{inputs.model}}}} "
                       "--window ${{inputs.window_start}} $[[--labels ${{inputs.labels}}]] ${{outputs.report}}",
            "inputs": {"rows": {"type": "uri_folder",
                                "path": f"{azurite.blob}/devstoreaccount1/{container}"
                                        "/modelDataCollector/e/d/model_inputs/2026/11/23/"},
                       "model": {"type": "mlflow_model", "path": "azureml:m:2"},
                       "window_start": "2026-11-23T11:30:00+00:00"},
            "outputs": {"report": {"type": "uri_folder"}}}

    async def run():
        jobs = LocalJobs(tmp_path / "jobs", azurite.connection_string, publish, "t",
                         resolve_model=lambda ref: model if ref == "m:2" else None)
        job, created = jobs.submit(spec)
        assert created and jobs.submit(spec) == (jobs.get("monitor-e-1"), False)
        while jobs.get("monitor-e-1")["status"] not in ("Completed", "Failed"):
            await asyncio.sleep(0.05)
        await jobs.close()
        return jobs

    jobs = asyncio.run(run())
    assert jobs.get("monitor-e-1")["status"] == "Completed", jobs.logs("monitor-e-1")
    result = json.loads(jobs.output_file("monitor-e-1", "report", "result.json"))
    assert result == {"args": [str(model), "--window", "2026-11-23T11:30:00+00:00"], "files": ["a.jsonl"]}
    assert jobs.output_file("monitor-e-1", "report", "alerts.json") is None
    assert published == ["RunStatusChanged:Running", "RunStatusChanged:Completed", "RunCompleted:"]
    with pytest.raises(JobError, match="not a file of an output folder"):
        jobs.output_file("monitor-e-1", "report", "../../job.json")
