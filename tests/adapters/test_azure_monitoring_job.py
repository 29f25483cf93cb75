"""The monitoring pass as an Azure ML command job (monitoring/job.yml), on recorded, service-shaped responses:
azure-ai-ml loads and validates the spec, builds the PUT and uploads the code snapshot (to Azurite through the
recorded SAS link); the job's result is read from its output folder on the default datastore (Azurite)."""
from __future__ import annotations

import json

import pytest
from azure.storage.blob import BlobServiceClient

from lifecycle.adapters.azure_ml import AzureMLAdapterError
from lifecycle.adapters.azure_monitoring_job import MonitoringJobSpec
from lifecycle.core.platform_values import MonitoringRequest, monitoring_job_name_for
from tests.adapters.recorded import WORKSPACE_ID
from tests.adapters.test_azure_ml import _jobs, _one, aml  # noqa: F401  (the recorded workspace fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml")

COLLECTOR = "https://stmlopsws.blob.core.windows.net/azureml-blobstore-0c5e"
START, END = "2026-11-23T11:30:00+00:00", "2026-11-23T12:00:00+00:00"


def _request(**changes) -> MonitoringRequest:
    values = dict(job_name=monitoring_job_name_for("churn-ep", "green", "churn:2", START, END),
                  run_id="churn-ep-20261123T120000", endpoint="churn-ep", deployment="green", model="churn:2",
                  window_start=START, window_end=END,
                  model_inputs=f"{COLLECTOR}/modelDataCollector/churn-ep/green/model_inputs/2026/11/23/",
                  model_outputs=f"{COLLECTOR}/modelDataCollector/churn-ep/green/model_outputs/2026/11/23/",
                  labels="https://stmlopsdata.blob.core.windows.net/feedback/", min_rows=500, min_labels=100,
                  previous_alerts=("churn-ep/green/churn:2/data_drift",))
    return MonitoringRequest(**{**values, **changes})


def test_the_monitoring_job_is_submitted_with_the_windows_inputs(aml, azurite):
    aml.environment("mlops-monitoring", "1")
    request = _request()
    status = _jobs(aml).submit_monitoring(request)
    assert (status.name, status.status, status.experiment) == (request.job_name, "Starting", "mlops-monitoring")
    job = _one(aml, "PUT", f"/jobs/{request.job_name}$").body["properties"]
    assert job["tags"] == {"mlops.component": "monitoring", **request.tags}
    inputs = job["inputs"]
    assert inputs["model"] == {"jobInputType": "mlflow_model", "uri": f"{WORKSPACE_ID}/models/churn/versions/2"}
    assert inputs["model_inputs"] == {"jobInputType": "uri_folder", "mode": "ReadOnlyMount", "uri":
                                      "azureml://datastores/workspaceblobstore/paths/modelDataCollector/churn-ep/green/"
                                      "model_inputs/2026/11/23/"}
    assert inputs["labels"]["uri"] == "azureml://datastores/mlopsfeedback/paths/"
    assert {k: inputs[k]["value"] for k in ("window_start", "window_end", "endpoint", "deployment", "model_id",
                                            "min_rows", "previous_alerts")} == {
        "window_start": START, "window_end": END, "endpoint": "churn-ep", "deployment": "green", "model_id": "churn:2",
        "min_rows": "500", "previous_alerts": "churn-ep/green/churn:2/data_drift"}
    # optional inputs the request lacks are neither inputs nor in the command
    assert "drift_thresholds" not in inputs and "sensitive_column" not in inputs
    assert "--labels ${{inputs.labels}}" in job["command"] and "--drift-thresholds" not in job["command"]
    assert job["command"].startswith("python -m monitoring.run --model ${{inputs.model}}")
    assert job["outputs"] == {"report": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}}
    # the pinned environment and the cluster: checked, never registered
    assert job["environmentId"] == f"{WORKSPACE_ID}/environments/mlops-monitoring/versions/1"
    assert job["computeId"] == f"{WORKSPACE_ID}/computes/cpu-cluster"
    assert not aml.http.requests_to("PUT", "/environments/")
    uploaded = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(aml.uploads[0])
    names = {b.name.split("/", 1)[1] for b in uploaded.list_blobs()}           # under the project folder's name
    assert "monitoring/run.py" in names and {n.split("/")[0] for n in names} == {"monitoring", "training"}
    assert not aml.http.unrouted


def test_a_replayed_tick_finds_the_job_and_puts_nothing(aml):
    request = _request()
    aml.job(request.job_name, "Running")
    assert _jobs(aml).submit_monitoring(request).status == "Running"
    assert aml.http.writes() == [] and not aml.uploads


def test_settings_choose_environment_compute_and_the_collectors_container(aml):
    aml.environment("churn-monitoring", "4")
    spec = MonitoringJobSpec("churn-monitoring:4", "cpu-small", collector_blob_uri=COLLECTOR + "/",
                             feedback_datastore="churnfeedback")
    _jobs(aml, monitoring=spec).submit_monitoring(_request(labels="", previous_alerts=(), drift_thresholds="psi=0.3"))
    job = _one(aml, "PUT", "/jobs/[^/]+$").body["properties"]
    assert job["environmentId"].endswith("/environments/churn-monitoring/versions/4")
    assert job["computeId"].endswith("/computes/cpu-small")
    # DATA_COLLECTOR_BLOB_URI: the container's https URL is mounted as it is
    assert job["inputs"]["model_outputs"]["uri"] == (
        f"{COLLECTOR}/modelDataCollector/churn-ep/green/model_outputs/2026/11/23/")
    assert "labels" not in job["inputs"] and "--labels" not in job["command"]
    assert (job["inputs"]["drift_thresholds"]["value"] == "psi=0.3"
            and "--drift-thresholds ${{inputs.drift_thresholds}}" in job["command"])


def test_a_missing_monitoring_environment_names_its_setting(aml):
    with pytest.raises(AzureMLAdapterError, match="MONITORING_ENVIRONMENT"):
        _jobs(aml, monitoring=MonitoringJobSpec("mlops-monitoring:9")).submit_monitoring(_request())
    assert not aml.http.requests_to("PUT", "/jobs/")


def test_the_jobs_result_is_read_from_its_report_folder(aml, azurite):
    request = _request()
    aml.job(request.job_name, "Completed")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    result = {"window": {"rows": 900}, "alerts": []}
    service.get_blob_client(aml.outputs_container, f"azureml/{request.job_name}/report/result.json").upload_blob(
        json.dumps(result))
    jobs = _jobs(aml)
    assert json.loads(jobs.output(request.job_name, "report", "result.json")) == result
    assert jobs.output(request.job_name, "report", "alerts.json") is None
    assert jobs.output("monitor-nothing", "report", "result.json") is None
