"""A job's compute on Azure ML: when its run started and ended, its cluster and MLflow run, and tags added to a
finished job, against recorded, service-shaped responses (aml_service.py): azure-ai-ml runs for real.

Azure ML's Job entity carries no start or end time; the adapter reads them from the job's MLflow run (MLflow's
runs/get on the workspace's Tracking endpoint, the job's name as run id), only for a job that has started.
Tags go through azure-ai-ml's jobs.update, run history's PATCH, which merges them into a finished job's."""
from __future__ import annotations

import pytest
from azure.core.pipeline.transport import RequestsTransport

from emulator.azurite import ACCOUNT, ACCOUNT_KEY
from lifecycle.adapters.azure_ml import AzureMLAdapterError, AzureMLJobs
from tests.adapters.aml_service import AzureMLService
from tests.adapters.recorded import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, WORKSPACE_ID, FakeCredential, Reply

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml")

MLFLOW_RUN = f"/mlflow/v1.0{WORKSPACE_ID}/api/2.0/mlflow/runs/get"
STARTED = "2025-05-01T09:14:02.118+00:00"       # the job was created at 09:12:33.441 (job_command.json)
ENDED = "2025-05-01T09:15:10.552+00:00"


@pytest.fixture
def aml(azurite) -> AzureMLService:
    return AzureMLService(azurite.blob, ACCOUNT, ACCOUNT_KEY)


def _jobs(aml: AzureMLService, **kwargs) -> AzureMLJobs:
    return AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(),
                       transport=RequestsTransport(session=aml.http.session), **kwargs)


def _tracking_calls(aml: AzureMLService) -> list:
    return [c for c in aml.http.calls if "/mlflow/" in c.path or "/history/" in c.path]


def test_a_finished_job_has_its_start_end_duration_compute_and_mlflow_run(aml):
    aml.job("train-churn-data-ok", "Completed", started=STARTED, ended=ENDED)
    status = _jobs(aml).get("train-churn-data-ok")

    assert status.status == "Completed"
    assert status.started == "2025-05-01T09:14:02.118000+00:00" and status.ended == "2025-05-01T09:15:10.552000+00:00"
    assert status.duration_seconds == pytest.approx(68.434)
    assert status.queue_seconds == pytest.approx(88.677)             # created 09:12:33.441 -> started
    assert status.compute == "cpu-cluster"
    assert status.tracking_run == "train-churn-data-ok"               # Azure ML's MLflow run id is the job name
    # one GET, to the job's own Tracking endpoint, with an ARM bearer token
    [call] = _tracking_calls(aml)
    assert call.method == "GET" and call.path == MLFLOW_RUN
    assert call.url.startswith("https://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/")
    assert call.query["run_id"] == ["train-churn-data-ok"]
    assert call.headers["Authorization"] == "Bearer fake-token"
    assert not aml.http.unrouted


@pytest.mark.parametrize("state", ["Queued", "Starting", "Preparing", "NotStarted"])
def test_a_job_not_started_makes_no_extra_request(aml, state):
    aml.job("train-churn-data-wait", state)
    jobs = _jobs(aml)
    jobs.get("train-churn-data-wait")                   # the client's first use reads the workspace
    before = len(aml.http.calls)
    status = jobs.get("train-churn-data-wait")

    assert (status.started, status.ended, status.duration_seconds, status.queue_seconds) == ("", "", None, None)
    assert status.tracking_run == "train-churn-data-wait" and status.compute == "cpu-cluster"
    assert [str(c) for c in aml.http.calls[before:]] == [f"GET {WORKSPACE_ID}/jobs/train-churn-data-wait"]
    assert not _tracking_calls(aml)


def test_a_running_job_has_a_start_and_no_end(aml):
    aml.job("train-churn-data-run", "Running", started=STARTED)
    status = _jobs(aml).get("train-churn-data-run")
    assert status.started == "2025-05-01T09:14:02.118000+00:00" and status.ended == ""
    assert status.duration_seconds is None and status.queue_seconds == pytest.approx(88.677)


def test_a_failed_job_keeps_its_reason_and_gets_its_times(aml):
    aml.job("train-churn-data-bad", "Failed", started=STARTED, ended=ENDED)
    status = _jobs(aml).get("train-churn-data-bad")
    assert "the target column 'churned' is missing" in status.error
    assert status.duration_seconds == pytest.approx(68.434)


def test_the_status_survives_an_mlflow_endpoint_that_fails(aml, caplog):
    aml.job("train-churn-data-ok", "Completed", started=STARTED, ended=ENDED)
    aml.http.route("GET", MLFLOW_RUN, Reply(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}))
    status = _jobs(aml, retry_total=0).get("train-churn-data-ok")
    assert status.status == "Completed" and (status.started, status.ended) == ("", "")
    assert "could not read when job train-churn-data-ok started and ended" in caplog.text


def test_tags_reach_a_finished_job_through_run_history(aml):
    aml.job("train-churn-data-ok", "Completed", started=STARTED, ended=ENDED)
    jobs = _jobs(aml)
    jobs.tag("train-churn-data-ok", {"mlops.gate": "registered", "mlops.registered_version": "churn:3"})

    [patch] = aml.http.requests_to("PATCH", "/history/")
    assert patch.url.startswith("https://eastus.api.azureml.ms/history/v1.0/subscriptions/")
    assert patch.path == f"/history/v1.0{WORKSPACE_ID}/experiments/mlops-training/runs/train-churn-data-ok"
    assert patch.body["tags"] == {"mlops.gate": "registered", "mlops.registered_version": "churn:3"}
    assert not aml.http.requests_to("PUT", "/jobs/")           # not the ARM PUT, which replaces the job's tags
    tags = jobs.get("train-churn-data-ok").tags
    assert tags["mlops.gate"] == "registered" and tags["mlops.registered_version"] == "churn:3"
    assert tags["mlops.model_name"] == "churn"                   # merged: the job's own tags stay


def test_tagging_a_job_that_does_not_exist_says_so(aml):
    with pytest.raises(AzureMLAdapterError, match="no Azure ML job named 'train-nothing'"):
        _jobs(aml).tag("train-nothing", {"mlops.gate": "failed"})
    assert not aml.http.requests_to("PATCH", "/history/")
