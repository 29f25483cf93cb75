"""The Azure ML adapters against recorded, service-shaped responses.

azure-ai-ml runs for real: its loaders validate the specs, its operations build the requests, and its HTTP
pipeline sends them through a transport that records them and answers like the service (recorded.py, aml_service.py).
Code snapshots go to Azurite through the SAS link the recorded `startPendingUpload` hands out, and a job's
metrics.json is read from Azurite as the job's output datastore."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient

from emulator.azurite import ACCOUNT, ACCOUNT_KEY
from lifecycle.adapters.azure_ml import (
    AzureMLAdapterError,
    AzureMLEndpoints,
    AzureMLJobs,
    AzureMLRegistry,
    TrafficError,
    datastore_path,
)
from lifecycle.core.platform_values import ModelVersion, TrainingRequest, job_name_for
from tests.adapters.aml_service import AzureMLService
from tests.adapters.recorded import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    WORKSPACE_ID,
    FakeCredential,
    Reply,
    canned,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml")

ROOT = Path(__file__).resolve().parents[2]
SPECS = Path(__file__).with_name("specs")
DATA = "https://stmlopsdata.blob.core.windows.net/data/drops/2025-05-01/"
MODEL_PATH = "azureml://jobs/{job}/outputs/output/paths/model"


@pytest.fixture
def aml(azurite) -> AzureMLService:
    return AzureMLService(azurite.blob, ACCOUNT, ACCOUNT_KEY)


def _client(aml: AzureMLService) -> dict:
    return dict(credential=FakeCredential(), transport=RequestsTransport(session=aml.http.session))


def _jobs(aml: AzureMLService, spec: Path = SPECS / "training" / "job.yml", **kwargs) -> AzureMLJobs:
    def to_azurite(request) -> None:          # the outputs datastore's account is Azurite's
        r = request.http_request
        r.url = r.url.replace(f"https://{ACCOUNT}.blob.core.windows.net", f"{aml.azurite_blob}/{ACCOUNT}")
    return AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, job_spec=spec,
                       storage_kwargs={"raw_request_hook": to_azurite}, **_client(aml), **kwargs)


def _registry(aml: AzureMLService) -> AzureMLRegistry:
    return AzureMLRegistry(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, **_client(aml))


def _endpoints(aml: AzureMLService) -> AzureMLEndpoints:
    return AzureMLEndpoints(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, **_client(aml),
                            endpoint_spec=SPECS / "deployment" / "endpoint.yml",
                            deployment_spec=SPECS / "deployment" / "deployment.yml")


def _request(**changes) -> TrainingRequest:
    values = dict(job_name=job_name_for("churn", "data", "batch-7f3a"), model_name="churn", data=DATA,
                  target="churned", trigger="data", data_batches=("batch-7f3a",))
    return TrainingRequest(**{**values, **changes})


def _one(aml: AzureMLService, method: str, path: str):
    calls = aml.http.requests_to(method, path)
    assert len(calls) == 1, f"expected one {method} {path}, got {[str(c) for c in aml.http.calls]}"
    return calls[0]


# -- cold start ---------------------------------------------------------------------------------------------

def test_importing_the_adapters_does_not_import_azure_ai_ml():
    code = ("import sys, time; t = time.perf_counter(); "
            "import lifecycle.adapters.azure_ml, lifecycle.adapters.azure_jobs, "
            "lifecycle.adapters.azure_registry, lifecycle.adapters.azure_endpoints; "
            "print(time.perf_counter() - t, sorted(m for m in sys.modules if m.startswith('azure')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    seconds, modules = out.split(" ", 1)
    assert "azure.ai.ml" not in modules and "azure.identity" not in modules, modules
    assert float(seconds) < 0.5


# -- blob URL -> datastore path -------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("https://stmlopsdata.blob.core.windows.net/data/drops/2025-05-01/",
     ("azureml://datastores/mlopsdata/paths/drops/2025-05-01/", "uri_folder")),
    ("https://stmlopsdata.blob.core.windows.net/data/drops/churn%20may.csv",
     ("azureml://datastores/mlopsdata/paths/drops/churn may.csv", "uri_file")),
    ("https://stmlopsdata.dfs.core.windows.net/data/lake/part-0.parquet",
     ("azureml://datastores/mlopsdata/paths/lake/part-0.parquet", "uri_file")),
    ("https://stmlops.blob.core.chinacloudapi.cn/data/x/", ("azureml://datastores/mlopsdata/paths/x/", "uri_folder")),
    ("http://127.0.0.1:10000/devstoreaccount1/data/drops/a.csv",
     ("azureml://datastores/mlopsdata/paths/drops/a.csv", "uri_file")),
    ("http://127.0.0.1:41023/devstoreaccount1/data/", ("azureml://datastores/mlopsdata/paths/", "uri_folder")),
])
def test_blob_urls_map_to_the_data_datastore(url, expected):
    assert datastore_path(url, "mlopsdata", "data") == expected


@pytest.mark.parametrize("url, reason", [
    ("https://stmlopsdata.blob.core.windows.net/feedback/labels.csv", "is in container 'feedback'"),
    ("ftp://host/data/x.csv", "is not a blob URL"),
    ("http://127.0.0.1:10000/devstoreaccount1", "names no container"),
])
def test_blob_urls_outside_the_data_container_are_refused(url, reason):
    with pytest.raises(AzureMLAdapterError, match=reason):
        datastore_path(url, "mlopsdata", "data")


# -- jobs ---------------------------------------------------------------------------------------------------

def test_submit_creates_the_command_job(aml, azurite):
    request = _request(champion="churn:3", hyperparameters={"n_estimators": "200"})
    status = _jobs(aml, data_container="data").submit(request)

    assert (status.name, status.status, status.experiment) == (request.job_name, "Starting", "mlops-training")
    assert status.tags["mlops.data_batches"] == "batch-7f3a" and status.tags["project"] == "mlops"
    job = _one(aml, "PUT", f"/jobs/{request.job_name}$").body["properties"]
    assert job["jobType"] == "Command"
    assert job["command"].startswith("python train.py --data ${{inputs.data}} --target ${{inputs.target}}")
    assert job["experimentName"] == "mlops-training" and job["displayName"] == request.job_name
    assert job["tags"] == {"project": "mlops", **request.tags}
    assert job["inputs"] == {
        "data": {"jobInputType": "uri_folder", "uri": "azureml://datastores/mlopsdata/paths/drops/2025-05-01/"},
        "target": {"jobInputType": "literal", "value": "churned"},
        "model_name": {"jobInputType": "literal", "value": "churn"},
        "n_estimators": {"jobInputType": "literal", "value": "200"},
        "champion_model": {"jobInputType": "mlflow_model", "uri": f"{WORKSPACE_ID}/models/churn/versions/3"},
    }
    assert job["outputs"] == {"output": {"jobOutputType": "uri_folder"}}
    assert job["computeId"] == f"{WORKSPACE_ID}/computes/cpu-cluster"
    # the pinned environment (TRAINING_ENVIRONMENT) is checked, never registered; the code snapshot is uploaded
    assert job["environmentId"] == f"{WORKSPACE_ID}/environments/mlops-training/versions/1"
    assert not aml.http.requests_to("PUT", "/environments/")
    _one(aml, "GET", "/environments/mlops-training/versions/1$")
    code = _one(aml, "PUT", "/codes/[^/]+/versions/1$")
    assert job["codeId"] == code.path
    assert code.body["properties"]["codeUri"] == f"{azurite.blob}/{ACCOUNT}/{aml.uploads[0]}/training"
    uploaded = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(aml.uploads[0])
    assert {b.name for b in uploaded.list_blobs()} == {"training/job.yml", "training/train.py",
                                                        "training/environment.yml"}
    assert not aml.http.unrouted


def test_submit_uses_the_pinned_environment_and_compute_the_settings_name(aml):
    aml.environment("churn-training", "7")
    jobs = _jobs(aml, environment="churn-training:7", compute="gpu-cluster")
    jobs.submit(_request(job_name="train-churn-data-1"))
    jobs.submit(_request(job_name="train-churn-data-2"))
    for call in aml.http.requests_to("PUT", "/jobs/[^/]+$"):
        job = call.body["properties"]
        assert job["environmentId"] == f"{WORKSPACE_ID}/environments/churn-training/versions/7"
        assert job["computeId"] == f"{WORKSPACE_ID}/computes/gpu-cluster"
    assert len(aml.http.requests_to("GET", "/environments/churn-training/versions/7$")) == 1    # checked once


def test_a_missing_environment_is_a_clear_error_and_no_job_is_sent(aml):
    with pytest.raises(AzureMLAdapterError, match=r"environment mlops-training:2 \(app setting TRAINING_ENVIRONMENT\) "
                       r"does not exist in workspace mlw-mlops: the infrastructure creates it") as raised:
        _jobs(aml, environment="mlops-training:2").submit(_request())
    assert "training/environment/conda.yml" in str(raised.value)
    assert not aml.http.requests_to("PUT", "/jobs/")


@pytest.mark.parametrize("setting", ["mlops-training", "", "azureml:mlops-training:1:2", "a b:1"])
def test_an_environment_setting_that_is_not_name_and_version_is_refused(aml, setting):
    with pytest.raises(AzureMLAdapterError, match="app setting TRAINING_ENVIRONMENT .* 'name:version'"):
        _jobs(aml, environment=setting)


def test_submit_without_a_champion_sends_no_champion_input(aml):
    _jobs(aml).submit(_request(data="http://127.0.0.1:10000/devstoreaccount1/data/drops/one.csv"))
    inputs = _one(aml, "PUT", "/jobs/[^/]+$").body["properties"]["inputs"]
    assert "champion_model" not in inputs
    assert inputs["data"] == {"jobInputType": "uri_file", "uri": "azureml://datastores/mlopsdata/paths/drops/one.csv"}
    assert inputs["n_estimators"]["value"] == "100"          # the spec's default


def test_a_replayed_submission_finds_the_job_and_puts_nothing(aml):
    request = _request()
    aml.job(request.job_name, "Running")
    status = _jobs(aml).submit(request)
    assert status.status == "Running" and status.created.startswith("2025-05-01T09:12:33")
    assert aml.http.writes() == [] and not aml.uploads


def test_a_second_job_reuses_the_uploaded_code_snapshot(aml):
    jobs = _jobs(aml)
    jobs.submit(_request(job_name="train-churn-data-1"))
    jobs.submit(_request(job_name="train-churn-data-2"))
    assert len(aml.uploads) == 1
    first, second = (c.body["properties"]["codeId"] for c in aml.http.requests_to("PUT", "/jobs/"))
    assert first == second


def test_a_duplicate_that_loses_the_race_returns_the_job_the_other_created(aml):
    request = _request()
    def created_meanwhile(call, m):
        aml.job(request.job_name, "Queued")
        return Reply(409, {"error": {"code": "UserError", "message": f"Job {request.job_name} already exists."}})
    aml.http.workspace_route("PUT", "/jobs/[^/]+", created_meanwhile)
    assert _jobs(aml).submit(request).status == "Queued"


def test_hyperparameters_the_spec_does_not_declare_go_on_the_command_line(aml):
    _jobs(aml).submit(_request(hyperparameters={"n_estimators": "300", "max_depth": "4", "algorithm": "random forest"}))
    job = _one(aml, "PUT", "/jobs/[^/]+$").body["properties"]
    assert job["inputs"]["n_estimators"]["value"] == "300"
    assert job["command"].endswith("--output ${{outputs.output}} --max-depth 4 --algorithm 'random forest'")
    with pytest.raises(AzureMLAdapterError, match="not a valid option name"):
        _jobs(aml).submit(_request(job_name="train-x", hyperparameters={"x; rm -rf /": "1"}))


def test_get_reports_a_failed_job_with_its_reason(aml, capsys):
    aml.job("train-churn-data-bad", "Failed")
    status = _jobs(aml).get("train-churn-data-bad")
    assert status.status == "Failed" and status.done
    assert status.error.startswith("Execution failed. User process 'python' exited with status code 1")
    assert "the target column 'churned' is missing" in status.error
    # the reason comes from run history, read by the public jobs.stream (found through the workspace's
    # discovery URL), which returns at once for a job that has ended
    details = f"https://eastus.api.azureml.ms/history/v1.0{WORKSPACE_ID}/runs/train-churn-data-bad/details"
    assert [c.url.split("?")[0] for c in aml.http.calls].count(details) == 1
    assert "Execution Summary" in capsys.readouterr().out
    assert not aml.http.unrouted


def test_azure_ai_ml_is_pinned_below_its_next_major_version_and_the_installed_one_fits():
    from importlib.metadata import version

    from packaging.requirements import Requirement
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirement = next(Requirement(line) for line in lines if line and Requirement(line).name == "azure-ai-ml")
    installed = version("azure-ai-ml")
    major = int(installed.split(".")[0])
    assert installed in requirement.specifier, (installed, str(requirement.specifier))
    assert f"{major + 1}.0" not in requirement.specifier, f"azure-ai-ml has no upper bound: {requirement}"


def test_the_failure_reason_comes_from_a_public_azure_ai_ml_api():
    source = (ROOT / "lifecycle" / "adapters" / "azure_jobs.py").read_text()
    private = re.findall(r"ml_client(?:\.[A-Za-z]\w*)*\._\w+", source)      # e.g. jobs._runs_operations
    assert private == [], f"azure-ai-ml's private attributes are used: {private}"


def test_a_failed_job_without_run_history_still_says_where_to_look(aml):
    aml.job("train-churn-data-bad", "Failed")
    aml.http.route("GET", "/history/v1.0/.*", Reply(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    status = _jobs(aml, retry_total=0).get("train-churn-data-bad")
    assert status.status == "Failed" and "az ml job download -n train-churn-data-bad" in status.error


def test_get_an_unknown_job_is_none(aml):
    assert _jobs(aml).get("train-nothing") is None


def test_metrics_come_from_the_jobs_output_folder(aml, azurite):
    aml.job("train-churn-data-ok", "Completed")
    metrics = {"challenger": {"f1": 0.83, "accuracy": 0.88}, "champion": {"f1": 0.8}, "holdout_rows": 2000}
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.get_blob_client(aml.outputs_container, "azureml/train-churn-data-ok/output/metrics.json").upload_blob(
        json.dumps(metrics))

    assert _jobs(aml).metrics("train-churn-data-ok") == metrics
    _one(aml, "GET", "/datastores/workspaceblobstore$")
    _one(aml, "POST", "/datastores/workspaceblobstore/listSecrets$")


def test_metrics_fall_back_to_the_default_output_location(aml, azurite):
    aml.job("train-churn-data-old", "Completed",
            outputs={"output": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount"}})
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.get_blob_client(aml.outputs_container, "azureml/train-churn-data-old/output/metrics.json").upload_blob(
        b'{"challenger": {"f1": 0.7}}')
    assert _jobs(aml).metrics("train-churn-data-old") == {"challenger": {"f1": 0.7}}


def test_metrics_of_an_unfinished_or_silent_job_say_why(aml):
    aml.job("train-running", "Running")
    aml.job("train-no-metrics", "Completed")
    with pytest.raises(AzureMLAdapterError, match="job train-running is Running"):
        _jobs(aml).metrics("train-running")
    with pytest.raises(AzureMLAdapterError, match="wrote no azureml/train-no-metrics/output/metrics.json"):
        _jobs(aml).metrics("train-no-metrics")


# -- registry -----------------------------------------------------------------------------------------------

def test_register_creates_a_version_from_the_job_output(aml):
    version = _registry(aml).register("churn", "train-churn-data-ok", {"mlops.trigger": "data", "metric.f1": "0.83"},
                                      "challenger: f1 0.83 vs champion 0.80")
    assert (version.name, version.version) == ("churn", "1")
    assert version.tags == {"mlops.trigger": "data", "metric.f1": "0.83", "mlops.job": "train-churn-data-ok"}
    body = _one(aml, "PUT", "/models/churn/versions/1$").body["properties"]
    assert body["modelUri"] == MODEL_PATH.format(job="train-churn-data-ok")
    assert body["modelType"] == "mlflow_model"
    assert body["tags"] == version.tags
    assert body["description"] == "challenger: f1 0.83 vs champion 0.80"
    assert not aml.http.unrouted


def test_register_twice_for_one_job_returns_the_registered_version(aml):
    aml.model("churn", "1", "train-a")
    aml.model("churn", "2", "train-b")
    registry = _registry(aml)
    assert registry.register("churn", "train-b", {}).version == "2"
    assert aml.http.writes() == []
    assert registry.register("churn", "train-c", {}).version == "3"
    assert len(aml.http.writes()) == 1


def test_versions_are_sorted_by_number(aml):
    for v in ("10", "2", "1"):
        aml.model("churn", v, f"train-{v}")
    versions = _registry(aml).versions("churn")
    assert [v.version for v in versions] == ["1", "2", "10"]
    assert versions[0].path.endswith("/datastores/workspaceblobstore/paths/azureml/train-1/output/model")
    assert _registry(aml).versions("nothing") == []


def test_update_tags_merges_and_skips_what_is_already_there(aml):
    aml.model("churn", "4", "train-d")
    registry = _registry(aml)
    updated = registry.update_tags("churn", "4", {"mlops.alias": "champion"})
    assert updated.tags == {"mlops.job": "train-d", "mlops.trigger": "data", "mlops.alias": "champion"}
    body = _one(aml, "PUT", "/models/churn/versions/4$").body["properties"]
    assert body["tags"] == updated.tags and body["modelType"] == "mlflow_model"
    assert body["modelUri"].endswith("/datastores/workspaceblobstore/paths/azureml/train-d/output/model")  # unchanged
    registry.update_tags("churn", "4", {"mlops.alias": "champion"})
    assert len(aml.http.writes()) == 1
    assert registry.get("churn", "4").tags["mlops.alias"] == "champion"
    assert registry.get("churn", "99") is None
    with pytest.raises(AzureMLAdapterError, match="churn:99 is not registered"):
        registry.update_tags("churn", "99", {"mlops.alias": "challenger"})


# -- endpoints ----------------------------------------------------------------------------------------------

def test_ensure_endpoint_starts_creating_it_without_waiting(aml):
    endpoints = _endpoints(aml)
    started = time.perf_counter()
    state = endpoints.ensure_endpoint("churn-endpoint")
    assert time.perf_counter() - started < 5       # the poller's first poll is 30 s away (Retry-After)
    assert state.name == "churn-endpoint"
    assert state.scoring_uri == "https://churn-endpoint.eastus.inference.ml.azure.com/score"
    body = _one(aml, "PUT", "/onlineEndpoints/churn-endpoint$").body
    assert body["location"] == "eastus" and body["properties"]["authMode"] == "Key"
    endpoints.ensure_endpoint("churn-endpoint")
    assert len(aml.http.writes()) == 1             # it exists now: nothing more to create


def test_endpoint_state_lists_deployments_with_models_and_failures(aml):
    aml.endpoint("churn-endpoint", traffic={"blue": 90, "green": 10})
    aml.deployment("churn-endpoint", "blue", "churn:1")
    aml.deployment("churn-endpoint", "green", "churn:2", state="Failed")
    state = _endpoints(aml).get("churn-endpoint")
    assert state.traffic == {"blue": 90, "green": 10} and state.mirror_traffic == {}
    blue, green = state.deployments
    assert (blue.name, blue.model, blue.state, blue.error) == ("blue", "churn:1", "Succeeded", None)
    assert (green.model, green.state) == ("churn:2", "Failed")
    assert "User's init function failed" in green.error
    assert _endpoints(aml).get("no-such-endpoint") is None


def test_create_deployment_puts_the_deployment_spec_with_the_model(aml):
    aml.endpoint("churn-endpoint", traffic={"blue": 100})
    aml.deployment("churn-endpoint", "blue", "churn:1")
    started = time.perf_counter()
    _endpoints(aml).create_deployment("churn-endpoint", "green", ModelVersion("churn", "2", MODEL_PATH))
    assert time.perf_counter() - started < 10

    body = _one(aml, "PUT", "/onlineEndpoints/churn-endpoint/deployments/green$").body
    p = body["properties"]
    assert p["model"] == f"{WORKSPACE_ID}/models/churn/versions/2"
    assert p["instanceType"] == "Standard_DS3_v2" and body["sku"]["capacity"] == 1
    assert p["endpointComputeType"] == "Managed"
    assert p["codeConfiguration"]["scoringScript"] == "score.py"
    # the pinned environment (INFERENCE_ENVIRONMENT): no environment version is registered per rollout
    assert p["environmentId"] == f"{WORKSPACE_ID}/environments/mlops-inference/versions/1"
    assert not aml.http.requests_to("PUT", "/environments/")
    collections = p["dataCollector"]["collections"]
    assert {k: v["dataCollectionMode"].lower() for k, v in collections.items()} == {"model_inputs": "enabled",
                                                                                     "model_outputs": "enabled"}
    assert collections["model_inputs"]["dataId"] == f"{WORKSPACE_ID}/data/churn-endpoint-green-model_inputs/versions/1"
    state = _endpoints(aml).get("churn-endpoint")
    assert state.deployment("green").state == "Creating" and state.deployment("green").model == "churn:2"


def test_a_deployment_with_a_missing_environment_is_a_clear_error_and_nothing_is_sent(aml):
    aml.endpoint("churn-endpoint")
    endpoints = AzureMLEndpoints(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, **_client(aml),
                                 deployment_spec=SPECS / "deployment" / "deployment.yml",
                                 environment="mlops-inference:9")
    with pytest.raises(AzureMLAdapterError,
                       match=r"environment mlops-inference:9 \(app setting INFERENCE_ENVIRONMENT\) "
                             r"does not exist in workspace mlw-mlops.*deployment/environment/conda.yml"):
        endpoints.create_deployment("churn-endpoint", "green", ModelVersion("churn", "2", MODEL_PATH))
    assert aml.http.writes() == []


def test_create_deployment_again_changes_nothing_unless_it_failed(aml):
    aml.endpoint("churn-endpoint")
    aml.deployment("churn-endpoint", "green", "churn:2", state="Creating")
    aml.deployment("churn-endpoint", "blue", "churn:1", state="Failed")
    endpoints = _endpoints(aml)
    endpoints.create_deployment("churn-endpoint", "green", ModelVersion("churn", "2", MODEL_PATH))
    assert aml.http.writes() == []
    endpoints.create_deployment("churn-endpoint", "blue", ModelVersion("churn", "1", MODEL_PATH))
    assert len(aml.http.requests_to("PUT", "/deployments/blue$")) == 1


def test_set_traffic_updates_the_split_and_the_mirror(aml):
    aml.endpoint("churn-endpoint", traffic={"blue": 100})
    aml.deployment("churn-endpoint", "blue", "churn:1")
    aml.deployment("churn-endpoint", "green", "churn:2")
    endpoints = _endpoints(aml)
    endpoints.set_traffic("churn-endpoint", {"blue": 100, "green": 0}, {"green": 20})
    body = _one(aml, "PUT", "/onlineEndpoints/churn-endpoint$").body["properties"]
    assert body["traffic"] == {"blue": 100}                 # azure-ai-ml leaves out zero shares
    assert body["mirrorTraffic"] == {"green": 20}
    assert body["authMode"] == "Key"

    endpoints.set_traffic("churn-endpoint", {"blue": 90, "green": 10})
    body = aml.http.requests_to("PUT", "/onlineEndpoints/churn-endpoint$")[-1].body["properties"]
    assert body["traffic"] == {"blue": 90, "green": 10} and body["mirrorTraffic"] == {}
    assert _endpoints(aml).get("churn-endpoint").traffic == {"blue": 90, "green": 10}
    endpoints.set_traffic("churn-endpoint", {"green": 10, "blue": 90})       # a replay
    assert len(aml.http.writes()) == 2


@pytest.mark.parametrize("traffic, mirror, reason", [
    ({"blue": 90}, None, "adds up to 90%"),
    ({"blue": 60, "green": 50}, None, "adds up to 110%"),
    ({"blue": 100}, {"green": 60}, "mirrors at most 50%"),
    ({"blue": 90, "green": 10}, {"green": 10}, "green takes 10% live traffic"),
    ({"blue": 100}, {"green": 10, "red": 10}, "one deployment only"),
    ({"blue": 110, "green": -10}, None, "whole percentage"),
    ({"blue": 99.5, "green": 0.5}, None, "whole percentage"),
])
def test_traffic_azure_would_refuse_is_refused_before_any_request(aml, traffic, mirror, reason):
    with pytest.raises(TrafficError, match=reason):
        _endpoints(aml).set_traffic("churn-endpoint", traffic, mirror)
    assert aml.http.calls == []


def test_traffic_to_a_deployment_that_does_not_exist_is_refused(aml):
    aml.endpoint("churn-endpoint", traffic={"blue": 100})
    aml.deployment("churn-endpoint", "blue", "churn:1")
    with pytest.raises(TrafficError, match="has no deployment purple"):
        _endpoints(aml).set_traffic("churn-endpoint", {"blue": 50, "purple": 50})
    assert aml.http.writes() == []


def test_delete_deployment_starts_deleting_only_a_deployment_without_traffic(aml):
    aml.endpoint("churn-endpoint", traffic={"blue": 100}, mirror={"green": 0})
    aml.deployment("churn-endpoint", "blue", "churn:1")
    aml.deployment("churn-endpoint", "green", "churn:2")
    endpoints = _endpoints(aml)
    with pytest.raises(TrafficError, match="blue still takes 100% live"):
        endpoints.delete_deployment("churn-endpoint", "blue")
    endpoints.delete_deployment("churn-endpoint", "green")
    assert [str(c) for c in aml.http.writes()] == [
        f"DELETE {WORKSPACE_ID}/onlineEndpoints/churn-endpoint/deployments/green"]
    endpoints.delete_deployment("churn-endpoint", "green")         # gone already: nothing to do
    endpoints.delete_deployment("no-such-endpoint", "green")


def _credentials_route(aml: AzureMLService, action: str, body: dict) -> None:
    """What the service answers for an endpoint's keys (listKeys) or its Azure ML token (token)."""
    aml.http.workspace_route("POST", f"/onlineEndpoints/[^/]+/{action}", Reply(200, body))


def test_scoring_key_is_the_primary_key_of_a_key_auth_endpoint(aml):
    aml.endpoint("churn-endpoint")
    _credentials_route(aml, "listKeys", {"primaryKey": "primary-secret", "secondaryKey": "secondary-secret"})
    assert _endpoints(aml).scoring_key("churn-endpoint") == "primary-secret"
    assert [str(c) for c in aml.http.writes()] == [f"POST {WORKSPACE_ID}/onlineEndpoints/churn-endpoint/listKeys"]


def test_scoring_key_of_a_token_auth_endpoint_is_its_access_token(aml):
    body = canned("online_endpoint", name="churn-endpoint")
    body["properties"]["authMode"] = "AMLToken"
    aml.arm.put("onlineEndpoints/churn-endpoint", body)
    _credentials_route(aml, "token", {"accessToken": "aml-token", "tokenType": "Bearer",
                                      "expiryTimeUtc": 0, "refreshAfterTimeUtc": 0})
    assert _endpoints(aml).scoring_key("churn-endpoint") == "aml-token"
    assert not aml.http.requests_to("POST", "/listKeys$")


def test_scoring_key_of_an_unknown_endpoint_is_a_clear_error(aml):
    with pytest.raises(AzureMLAdapterError, match="endpoint no-such-endpoint does not exist in workspace mlw-mlops"):
        _endpoints(aml).scoring_key("no-such-endpoint")
    assert aml.http.writes() == []

# -- the project's own specs, once they exist -----------------------------------------------------------------

def test_the_project_job_spec_submits(aml, azurite):
    spec = ROOT / "training" / "job.yml"
    if not spec.exists():
        pytest.skip("training/job.yml is not written yet")
    status = _jobs(aml, spec=spec).submit(_request(champion="churn:3"))
    assert status.status == "Starting"
    job = _one(aml, "PUT", "/jobs/[^/]+$").body["properties"]
    assert job["inputs"]["champion_model"]["uri"] == f"{WORKSPACE_ID}/models/churn/versions/3"
    assert job["inputs"]["data"]["mode"] == "ReadOnlyMount"
    uploaded = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(aml.uploads[0])
    assert "training/train.py" in {b.name for b in uploaded.list_blobs()}
    assert not aml.http.unrouted


def test_the_project_job_spec_takes_the_requests_values():
    spec = ROOT / "training" / "job.yml"
    if not spec.exists():
        pytest.skip("training/job.yml is not written yet")
    jobs = AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(), job_spec=spec)
    job = jobs.job(_request(champion="churn:3"))
    assert job.name == _request().job_name and job.experiment_name == "mlops-training"
    assert {"data", "target", "model_name", "champion_model"} <= set(job.inputs)
    assert "output" in job.outputs
    rest = job._to_job()._to_rest_object().properties          # what create_or_update would send (before uploads)
    assert rest.inputs["data"].uri == "azureml://datastores/mlopsdata/paths/drops/2025-05-01/"
    assert rest.inputs["target"].value == "churned" and rest.inputs["model_name"].value == "churn"
    assert rest.inputs["champion_model"].uri.endswith("churn:3")
    assert rest.inputs["data"].mode == "ReadOnlyMount"          # the spec's mode survives the override
    assert rest.tags["mlops.data_batches"] == "batch-7f3a"
    assert "--champion-model ${{inputs.champion_model}}" in job.command


def test_the_project_job_spec_without_a_champion_drops_the_optional_group():
    spec = ROOT / "training" / "job.yml"
    jobs = AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(), job_spec=spec)
    job = jobs.job(_request())
    assert "champion_model" not in job.inputs and "--champion-model" not in job.command
    # azure-ai-ml's own check of the command against the inputs (it also dislikes the hyphens of a job name
    # used as a component name, which the service replaces for an anonymous component)
    problems = job.component._validate().error_messages
    assert set(problems) <= {"name"}, problems
    with_group = AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(), job_spec=spec)
    as_written = with_group.job(_request(champion="churn:3"))
    assert set(as_written.component._validate().error_messages) <= {"name"}


def test_the_project_deployment_specs_load_with_overrides():
    endpoint, deployment = ROOT / "deployment" / "endpoint.yml", ROOT / "deployment" / "deployment.yml"
    if not (endpoint.exists() and deployment.exists()):
        pytest.skip("deployment/endpoint.yml and deployment.yml are not written yet")
    from azure.ai.ml import load_online_deployment, load_online_endpoint
    assert load_online_endpoint(endpoint, params_override=[{"name": "e1"}]).name == "e1"
    d = load_online_deployment(deployment, params_override=[{"name": "green"}, {"endpoint_name": "e1"},
                                                             {"model": "azureml:churn:2"}])
    # the loader keeps the asset reference without its azureml: prefix; the PUT body carries the ARM id
    assert (d.name, d.endpoint_name, d.model) == ("green", "e1", "churn:2")
    assert d.data_collector is not None and {"model_inputs", "model_outputs"} <= set(d.data_collector.collections)


# -- the settings that pin what the infrastructure creates ------------------------------------------------------

def _azure_settings(**values: str):
    from lifecycle.settings import Settings
    return Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "MLOPS_PLATFORM": "azure",
                              "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION, "AZURE_RESOURCE_GROUP": RESOURCE_GROUP,
                              "AZUREML_WORKSPACE": WORKSPACE, "EVENTGRID_TOPIC_ENDPOINT": "https://topic.example/api/events",
                              "EVENTGRID_TOPIC_KEY": "key", **values})


def test_environments_and_compute_default_to_what_the_infrastructure_creates():
    settings = _azure_settings()
    assert (settings.training_environment, settings.inference_environment, settings.monitoring_environment,
            settings.job_compute) == ("mlops-training:1", "mlops-inference:1", "mlops-monitoring:1", "cpu-cluster")


def test_the_composition_root_hands_the_settings_to_the_azure_ml_adapters():
    from lifecycle.bootstrap import build_platform
    p = build_platform(_azure_settings(TRAINING_ENVIRONMENT="churn-training:4", INFERENCE_ENVIRONMENT="churn-serving:2",
                                       JOB_COMPUTE="gpu-cluster"))
    assert (p.jobs.environment.ref, p.jobs.compute, p.endpoints.environment.ref) == (
        "churn-training:4", "gpu-cluster", "churn-serving:2")
