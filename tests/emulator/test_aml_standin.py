"""The local Azure ML stand-in's own rules: what it refuses, as Azure ML would."""
from __future__ import annotations

import pytest

from emulator.aml.endpoints import Deployment, Endpoint, EndpointError, validate_traffic
from emulator.aml.events import run_event
from emulator.aml.jobs import JobError, LocalJobs
from lifecycle import events


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
