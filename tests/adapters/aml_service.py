"""One Azure ML workspace as azure-ai-ml sees it: the route table for a RecordedService (recorded.py).

Each route answers with the service's shape (responses/*.json) and ARM's resource semantics (ArmResources),
plus what the service fills in itself: a job's status and services, a model's flavors, an endpoint's scoring
URI and provisioning state, the operation to poll for a long-running PUT or DELETE."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.adapters.recorded import (
    ARM,
    SUBSCRIPTION,
    WORKSPACE_ID,
    ArmResources,
    Call,
    RecordedService,
    Reply,
    arm_not_found,
    canned,
)

OPERATIONS = (f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices"
              "/locations/eastus/mfeOperationsStatus")


class AzureMLService:
    """The calls azure-ai-ml makes for jobs, code snapshots, environments, datastores, run history, models,
    data assets, online endpoints and deployments.

    Code snapshots go where the real service sends them: `startPendingUpload` answers with a SAS link to a
    fresh container, here on Azurite, and azure-ai-ml uploads the folder there with azure-storage-blob."""

    def __init__(self, azurite_blob: str, account: str, account_key: str) -> None:
        self.http = RecordedService()
        self.arm = ArmResources(self.http)
        self.azurite_blob = azurite_blob
        self.account = account
        self.account_key = account_key
        self.uploads: list[str] = []                       # containers that received a code snapshot
        self.run_times: dict[str, tuple[str, str]] = {}    # a job's run: when it started and ended (run history)
        self.outputs_container = f"azureml-blobstore-{uuid.uuid4()}"      # the default datastore's container
        self._blob_service().create_container(self.outputs_container)
        http, arm = self.http, self.arm

        http.route("GET", re.escape(WORKSPACE_ID), canned("workspace"))
        http.route("GET", "/discovery", canned("discovery"))
        # An operation is done when first polled: azure-ai-ml's poller threads (which the adapters never
        # wait on) then end within the test instead of printing their progress dots into later tests.
        http.route("GET", OPERATIONS + "/(?P<operation>[^/]+)",
                   lambda call, m: Reply(200, canned("operation_status", operation=m["operation"])))

        # jobs, and what a job submission creates first: the code snapshot and the anonymous environment
        arm.serve("jobs", "Microsoft.MachineLearningServices/workspaces/jobs", _job_submitted)
        arm.serve("codes/[^/]+/versions", "Microsoft.MachineLearningServices/workspaces/codes/versions")
        http.workspace_route("GET", "/codes/[^/]+/versions", self._codes_with_hash)
        http.workspace_route("POST", "/codes/[^/]+/versions/[^/]+/startPendingUpload", self._pending_upload)
        arm.serve("environments/[^/]+/versions", "Microsoft.MachineLearningServices/workspaces/environments/versions",
                  _environment_registered)
        http.route("GET", "/history/v1.0" + re.escape(WORKSPACE_ID) + "/runs/(?P<run>[^/]+)/details",
                   lambda call, m: canned("run_details_failed", name=m["run"]))
        # jobs.update: run history's PATCH of the job's run, which merges tags into the job's
        http.route("PATCH", "/history/v1.0" + re.escape(WORKSPACE_ID) + "/experiments/(?P<experiment>[^/]+)"
                   "/runs/(?P<run>[^/]+)", self._patch_run)
        # the workspace's MLflow endpoint (the job's Tracking service), where the job's name is the run id
        http.route("GET", "/mlflow/v1.0" + re.escape(WORKSPACE_ID) + "/api/2.0/mlflow/runs/get", self._mlflow_run)

        # the pinned environments the infrastructure creates (TRAINING_ENVIRONMENT, INFERENCE_ENVIRONMENT)
        self.environment("mlops-training", "1")
        self.environment("mlops-inference", "1")

        # datastores: the default one holds job outputs; its account is Azurite's
        arm.serve("datastores", "Microsoft.MachineLearningServices/workspaces/datastores")
        arm.put("datastores/workspaceblobstore", canned("datastore_blob", name="workspaceblobstore", account=account,
                                                        container=self.outputs_container))
        # every workspace also has the artifact store that holds run logs (jobs.stream looks it up)
        arm.put("datastores/workspaceartifactstore", canned("datastore_blob", name="workspaceartifactstore",
                                                            account=account, container="azureml"))
        http.workspace_route("POST", "/datastores/[^/]+/listSecrets",
                             canned("datastore_secrets_account_key", key=account_key))

        # models
        arm.serve("models/[^/]+/versions", "Microsoft.MachineLearningServices/workspaces/models/versions",
                  _model_registered)
        http.workspace_route("GET", "/models/(?P<name>[^/]+)", self._model_container)

        # online endpoints and deployments: long-running operations, answered 201/202 with an operation to poll
        arm.serve("onlineEndpoints", "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                  _endpoint_accepted, put_headers=_operation("oe"))
        arm.serve("onlineEndpoints/[^/]+/deployments",
                  "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                  _deployment_accepted, put_headers=_operation("od"), delete_headers=_operation("od"))
        # a deployment with data collection registers one data asset per collection
        arm.serve("data/[^/]+/versions", "Microsoft.MachineLearningServices/workspaces/data/versions", _data_registered)
        http.workspace_route("POST", "/onlineEndpoints/(?P<endpoint>[^/]+)/deployments/(?P<name>[^/]+)/getLogs",
                             self._deployment_logs)

    # -- seeding what exists before a test -------------------------------------------------------------

    def job(self, name: str, status: str, *, started: str = "", ended: str = "", **changes: Any) -> dict:
        """A job as the service holds it; `started` and `ended` (ISO 8601) are its run's times in run history."""
        body = canned("job_command", name=name, status=status)
        body["properties"].update(changes)
        self.run_times[name] = (started, ended)
        return self.arm.put(f"jobs/{name}", body)

    def environment(self, name: str, version: str) -> dict:
        body = {"properties": {"description": None, "tags": {}, "properties": {},
                               "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
                               "condaFile": "name: env\ndependencies:\n  - python=3.11\n"}}
        return self.arm.put(f"environments/{name}/versions/{version}", body,
                            "Microsoft.MachineLearningServices/workspaces/environments/versions",
                            _environment_registered)

    def model(self, name: str, version: str, job: str, **tags: str) -> dict:
        body = canned("model_version", name=name, version=version, job=job,
                      created=f"2025-05-01T09:31:{int(version) % 60:02d}.221Z")
        body["properties"]["tags"].update(tags)
        return self.arm.put(f"models/{name}/versions/{version}", body)

    def endpoint(self, name: str, traffic: dict[str, int] | None = None, mirror: dict[str, int] | None = None) -> dict:
        body = canned("online_endpoint", name=name)
        body["properties"].update(traffic=traffic or {}, mirrorTraffic=mirror or {})
        return self.arm.put(f"onlineEndpoints/{name}", body)

    def deployment(self, endpoint: str, name: str, model: str, state: str = "Succeeded") -> dict:
        model_name, version = model.split(":")
        body = canned("online_deployment", endpoint=endpoint, name=name, model=model_name, version=version, state=state)
        return self.arm.put(f"onlineEndpoints/{endpoint}/deployments/{name}", body)

    # -- answers that need the request -----------------------------------------------------------------

    def _codes_with_hash(self, call: Call, m: re.Match) -> Reply:
        """Azure ML finds an uploaded snapshot by its content hash, whatever name the client proposes."""
        wanted = call.query.get("hash", [None])[0]
        found = [v for k, v in self.arm.items.items() if "/codes/" in k
                 and v["properties"].get("properties", {}).get("hash_sha256") == wanted]
        return Reply(200, {"value": found})

    def _pending_upload(self, call: Call, m: re.Match) -> Reply:
        from datetime import timedelta

        from azure.storage.blob import ContainerSasPermissions, generate_container_sas
        container = f"{uuid.uuid4()}"          # the service hands out a fresh temporary container
        self._blob_service().create_container(container)
        sas = generate_container_sas(self.account, container, account_key=self.account_key,
                                     permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
                                     expiry=datetime.now(UTC) + timedelta(hours=1))
        self.uploads.append(container)
        blob_uri = f"{self.azurite_blob}/{self.account}/{container}"
        return Reply(200, canned("code_pending_upload", blob_uri=blob_uri, sas_uri=f"{blob_uri}?{sas}",
                                 pending_upload_id=container))

    def _job_or_none(self, name: str) -> dict | None:
        return self.arm.get(f"jobs/{name}")

    def _patch_run(self, call: Call, m: re.Match) -> Reply:
        """Run history merges the body's tags (and properties) into the run, so into the job's."""
        job = self._job_or_none(m["run"])
        if job is None or job["properties"].get("experimentName") != m["experiment"]:
            return Reply(404, {"error": {"code": "UserError", "message": f"Run {m['run']} was not found",
                                         "details": [], "innerError": {"code": "NotFoundError"}}})
        body = call.body if isinstance(call.body, dict) else {}
        job["properties"]["tags"] = {**(job["properties"].get("tags") or {}), **(body.get("tags") or {})}
        job["properties"]["properties"] = {**(job["properties"].get("properties") or {}),
                                           **(body.get("properties") or {})}
        run = canned("run_patched", name=m["run"], status=job["properties"]["status"])
        run.update(tags=job["properties"]["tags"], properties=job["properties"]["properties"])
        return Reply(200, run)

    def _mlflow_run(self, call: Call, m: re.Match) -> Reply:
        """MLflow's runs/get: the run's status, its start and end in milliseconds (no end while it runs)."""
        name = call.query.get("run_id", [""])[0]
        job = self._job_or_none(name)
        if job is None:
            return Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run '{name}' not found."})
        status = job["properties"]["status"]
        body = canned("mlflow_run", name=name, mlflow_status=_MLFLOW_STATUS.get(status, "SCHEDULED"))
        info = body["run"]["info"]
        started, ended = self.run_times.get(name, ("", ""))
        for key, when in (("start_time", started), ("end_time", ended)):
            if when:
                info[key] = int(datetime.fromisoformat(when).timestamp() * 1000)
            else:
                del info[key]
        body["run"]["data"]["tags"] += [{"key": k, "value": v} for k, v in (job["properties"]["tags"] or {}).items()]
        return Reply(200, body)

    def _blob_service(self) -> Any:
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient(f"{self.azurite_blob}/{self.account}",
                                 credential={"account_name": self.account, "account_key": self.account_key})

    def _model_container(self, call: Call, m: re.Match) -> Reply:
        versions = [int(v["name"]) for k, v in self.arm.items.items()
                    if k.startswith(call.path.lower() + "/versions/") and v["name"].isdigit()]
        if not versions:
            return arm_not_found(f"model container {m['name']}")
        return Reply(200, {"id": call.path, "name": m["name"],
                           "type": "Microsoft.MachineLearningServices/workspaces/models",
                           "properties": {"description": None, "tags": {}, "properties": {}, "isArchived": False,
                                          "latestVersion": str(max(versions)), "nextVersion": str(max(versions) + 1)},
                           "systemData": {"createdAt": "2025-05-01T09:31:00.000Z", "createdBy": "func-mlops",
                                          "createdByType": "Application"}})

    def _deployment_logs(self, call: Call, m: re.Match) -> Reply:
        deployment = self.arm.get(f"onlineEndpoints/{m['endpoint']}/deployments/{m['name']}")
        if deployment is None:
            return arm_not_found(f"deployment {m['name']}")
        model = re.search(r"/models/([^/]+)/versions/([^/]+)$", deployment["properties"]["model"])
        return Reply(200, canned("deployment_logs", model=model[1], version=model[2]))


# Azure ML's job status -> its MLflow run's status
_MLFLOW_STATUS = {"Running": "RUNNING", "Finalizing": "RUNNING", "CancelRequested": "RUNNING",
                  "Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}


def _operation(prefix: str) -> Callable[[Call], dict[str, str]]:
    def headers(call: Call) -> dict[str, str]:
        url = (f"{ARM}{OPERATIONS}/{prefix}:5b2f7c1e-3d4a-4e8b-9c0d-1a2b3c4d5e6f:{abs(hash(call.path)) % 10**8:08d}"
               "?api-version=2023-04-01-preview")
        return {"Azure-AsyncOperation": url, "Location": url, "Retry-After": "1"}
    return headers


def _job_submitted(resource: dict, previous: dict) -> dict:
    p = resource["properties"]
    name = resource["name"]
    p["status"] = "Starting"
    p.setdefault("services", {
        "Tracking": {"jobServiceType": "Tracking", "endpoint": f"azureml://eastus.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}?"},
        "Studio": {"jobServiceType": "Studio", "endpoint": f"https://ml.azure.com/runs/{name}?wsid={WORKSPACE_ID}"},
    })
    p.setdefault("outputs", {})["default"] = {
        "jobOutputType": "uri_folder", "mode": "ReadWriteMount",
        "uri": f"azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{name}"}
    return resource


def _environment_registered(resource: dict, previous: dict) -> dict:
    resource["properties"].update(osType="Linux", stage="Development", autoRebuild="Disabled")
    return resource


def _data_registered(resource: dict, previous: dict) -> dict:
    resource["properties"].update(isArchived=False, isAnonymous=False, stage="Development")
    return resource


def _model_registered(resource: dict, previous: dict) -> dict:
    """The service reads the MLmodel file and fills in the flavors; azure-ai-ml needs the field."""
    p = resource["properties"]
    p.setdefault("flavors", {"python_function": {"data": {"loader_module": "mlflow.sklearn",
                                                          "model_path": "model.pkl"}}})
    p.setdefault("stage", "Development")
    return resource


def _endpoint_accepted(resource: dict, previous: dict) -> dict:
    p = resource["properties"]
    name = resource["name"]
    p["provisioningState"] = "Updating" if previous else "Creating"
    p.setdefault("scoringUri", f"https://{name}.eastus.inference.ml.azure.com/score")
    p.setdefault("swaggerUri", f"https://{name}.eastus.inference.ml.azure.com/swagger.json")
    p.setdefault("traffic", {})
    p.setdefault("mirrorTraffic", {})
    return resource


def _deployment_accepted(resource: dict, previous: dict) -> dict:
    p = resource["properties"]
    p["provisioningState"] = "Updating" if previous else "Creating"
    probe = {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S",
             "initialDelay": "PT10S"}
    p.setdefault("livenessProbe", probe)
    p.setdefault("readinessProbe", probe)
    p.setdefault("requestSettings", {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1})
    p.setdefault("scaleSettings", {"scaleType": "Default"})
    p.setdefault("endpointComputeType", "Managed")
    return resource
