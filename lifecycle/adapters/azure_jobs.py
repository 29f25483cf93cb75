"""The Jobs port on Azure ML command jobs: training/job.yml submitted through azure-ai-ml.

A job is named by the request (deterministic), so a replayed event finds the job instead of submitting a
second one. The spec is loaded with azure-ai-ml's own `load_job`, with the request's values applied as
`params_override` (what `az ml job create --set` does), so they pass the same schema validation as the YAML.
Hyperparameters the spec declares as inputs are set as inputs; others are appended to the command as
`--name value`, the way the local stand-in passes them to train.py."""
from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

from lifecycle.adapters.azure_environments import PinnedEnvironment
from lifecycle.adapters.azure_monitoring_job import MonitoringJobSpec
from lifecycle.adapters.azure_workspace import (
    PROJECT_ROOT,
    AzureMLAdapterError,
    WorkspaceClient,
    created_at,
    datastore_path,
    parse_datastore_uri,
    split_ref,
    text,
)
from lifecycle.core.platform_values import JobStatus, MonitoringRequest, TrainingRequest

log = logging.getLogger(__name__)

JOB_SPEC = PROJECT_ROOT / "training" / "job.yml"
OUTPUT = "output"                 # the job's uri_folder output; train.py writes model/ and metrics.json into it
TRAINING_SETTING = "TRAINING_ENVIRONMENT"


_CHAMPION_GROUP = re.compile(r"\$\[\[[^\]]*inputs\.champion_model[^\]]*\]\]")


class AzureMLJobs(WorkspaceClient):
    def __init__(self, subscription_id: str, resource_group: str, workspace_name: str, *,
                 datastore: str = "mlopsdata", data_container: str | None = None,
                 job_spec: str | Path = JOB_SPEC, environment: str = "mlops-training:1",
                 compute: str = "cpu-cluster", credential: Any = None, monitoring: MonitoringJobSpec | None = None,
                 storage_kwargs: dict[str, Any] | None = None, **client_kwargs: Any) -> None:
        """`datastore` is the Azure ML datastore over the data container (`data_container`, if given, is
        checked against each request's URL). `environment` ("name:version", TRAINING_ENVIRONMENT) and
        `compute` (JOB_COMPUTE) replace the spec's own: the infrastructure creates both. `storage_kwargs` go
        to the BlobServiceClient that reads a job's metrics.json from its output datastore."""
        super().__init__(subscription_id, resource_group, workspace_name, credential=credential, **client_kwargs)
        self.datastore = datastore
        self.data_container = data_container
        self.job_spec = Path(job_spec)
        self.environment = PinnedEnvironment(environment, TRAINING_SETTING, "training/environment/conda.yml")
        self.compute = compute
        self.monitoring = monitoring or MonitoringJobSpec(compute=compute)     # monitoring/job.yml
        self.storage_kwargs = storage_kwargs or {}

    # -- the port --------------------------------------------------------------------------------------

    def submit(self, request: TrainingRequest) -> JobStatus:
        existing = self.get(request.job_name)
        if existing is not None:
            return existing
        job = self.job(request)
        self.environment.require(self.ml_client, self.workspace_name)
        return self._create(request.job_name, job)

    def get(self, name: str) -> JobStatus | None:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            job = self.ml_client.jobs.get(name)
        except ResourceNotFoundError:
            return None
        return _status(job, self._failure(name) if text(job.status) == "Failed" else None)

    def metrics(self, name: str) -> dict:
        """metrics.json from the job's `output` folder, read straight from the output's datastore."""
        from azure.core.exceptions import ResourceNotFoundError
        try:
            job = self.ml_client.jobs.get(name)
        except ResourceNotFoundError:
            raise AzureMLAdapterError(f"no Azure ML job named {name!r} in workspace {self.workspace_name}") from None
        if text(job.status) != "Completed":
            raise AzureMLAdapterError(f"job {name} is {text(job.status)}: its metrics.json exists only once it "
                                      f"has completed")
        datastore, folder = parse_datastore_uri(self._output_uri(job))
        path = f"{folder.rstrip('/')}/metrics.json".lstrip("/")
        try:
            return json.loads(self._read_blob(datastore, path))
        except ResourceNotFoundError:
            raise AzureMLAdapterError(f"job {name} completed but wrote no {path} on datastore {datastore}: "
                                      "training/train.py must write metrics.json into its output folder") from None

    def submit_monitoring(self, request: MonitoringRequest) -> JobStatus:
        """monitoring/job.yml over the request's window, unless a job of that name exists."""
        existing = self.get(request.job_name)
        if existing is not None:
            return existing
        job = self.monitoring.job(request)
        self.monitoring.environment.require(self.ml_client, self.workspace_name)
        return self._create(request.job_name, job)

    def _create(self, name: str, job: Any) -> JobStatus:
        from azure.core.exceptions import HttpResponseError
        try:
            created = self.ml_client.jobs.create_or_update(job)
        except HttpResponseError as error:
            # A duplicate delivery (or a replayed tick) may have created the job between our get and our PUT.
            raced = self.get(name) if error.status_code in (400, 409) else None
            if raced is None:
                raise
            return raced
        log.info("submitted Azure ML job %s (experiment %s)", created.name, created.experiment_name)
        return _status(created)

    def output(self, name: str, output: str, path: str) -> bytes | None:
        """A file of the job's named output folder, read straight from the output's datastore."""
        from azure.core.exceptions import ResourceNotFoundError
        try:
            job = self.ml_client.jobs.get(name)
        except ResourceNotFoundError:
            return None
        datastore, folder = parse_datastore_uri(self._output_uri(job, output))
        try:
            return self._read_blob(datastore, f"{folder.rstrip('/')}/{path}".lstrip("/"))
        except ResourceNotFoundError:
            return None

    # -- building the job ------------------------------------------------------------------------------

    def job(self, request: TrainingRequest) -> Any:
        """The command job for a request: training/job.yml with the request's name, experiment, tags and inputs."""
        from azure.ai.ml import load_job
        if not self.job_spec.is_file():
            raise AzureMLAdapterError(f"the training job spec {self.job_spec} does not exist")
        spec = self._spec()
        declared = spec.get("inputs") or {}
        data_uri, data_type = datastore_path(request.data, self.datastore, self.data_container)
        found = declared.get("data")
        data = found if isinstance(found, dict) else {}
        overrides: list[dict[str, Any]] = [
            {"name": request.job_name},
            {"display_name": request.job_name},
            {"experiment_name": request.experiment},
            {"tags": {**(spec.get("tags") or {}), **request.tags}},
            {"inputs.data": {**data, "type": data_type, "path": data_uri}},     # keeps the spec's mode
            {"inputs.target": request.target},
            {"inputs.model_name": request.model_name},
            {"environment": self.environment.asset_id},
            {"compute": f"azureml:{self.compute}"},
        ]
        if request.champion:
            name, version = split_ref(request.champion)
            overrides.append({"inputs.champion_model": {"type": "mlflow_model", "path": f"azureml:{name}:{version}"}})
        flags = []
        for key, value in request.hyperparameters.items():
            if key in declared:
                overrides.append({f"inputs.{key}": value})
            elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
                # as the local stand-in passes them
                flags.append(f"--{key.replace('_', '-')} {shlex.quote(str(value))}")
            else:
                raise AzureMLAdapterError(f"hyperparameter {key!r} is not a valid option name for train.py")
        command = str(spec.get("command", "")).strip()
        if not request.champion:
            # A command job cannot declare an optional input, and azure-ai-ml rejects a command naming an
            # input the job lacks: without a champion the optional $[[...]] group goes.
            command = _CHAMPION_GROUP.sub("", command).strip()
        overrides.append({"command": " ".join([command, *flags])})
        return load_job(self.job_spec, params_override=overrides)

    def _spec(self) -> dict:
        import yaml  # a dependency of azure-ai-ml
        return yaml.safe_load(self.job_spec.read_text()) or {}

    # -- reading results -------------------------------------------------------------------------------

    def _failure(self, name: str) -> str:
        """Why a job failed, from its run history, through azure-ai-ml's public `jobs.stream` (what `az ml job
        stream` shows): for a job that has ended it prints the summary, returns at once, and for a failed one
        raises JobException carrying the run's error."""
        from azure.ai.ml.exceptions import JobException
        from azure.core.exceptions import HttpResponseError
        try:
            self.ml_client.jobs.stream(name)
        except JobException as failed:
            message = run_error_message(str(failed.message))
            if message:
                return message
        except HttpResponseError as error:
            log.warning("could not read the failure reason of job %s: %s", name, error)
        return f"job {name} failed and Azure ML gave no reason: see its logs (az ml job download -n {name} --all)"

    def _output_uri(self, job: Any, name: str = OUTPUT) -> str:
        output = (job.outputs or {}).get(name)
        uri = getattr(output, "path", None)
        if uri and uri.startswith("azureml://") and "/datastores/" in uri:
            return uri
        # Not reported by the service: Azure ML's default location for a named output.
        default = self.ml_client.datastores.get_default().name
        return f"azureml://datastores/{default}/paths/azureml/{job.name}/{name}/"

    def _read_blob(self, datastore: str, path: str) -> bytes:
        from azure.storage.blob import BlobServiceClient
        store = self.ml_client.datastores.get(datastore, include_secrets=True)
        container = getattr(store, "container_name", None) or getattr(store, "filesystem", None)
        if not container or not getattr(store, "account_name", None):
            raise AzureMLAdapterError(f"datastore {datastore} is not a blob or ADLS Gen2 datastore")
        account_url = f"{store.protocol or 'https'}://{store.account_name}.blob.{store.endpoint or 'core.windows.net'}"
        secret = getattr(store.credentials, "account_key", None) or getattr(store.credentials, "sas_token", None)
        service = BlobServiceClient(account_url, credential=secret or self.credential, **self.storage_kwargs)
        return service.get_blob_client(container, path).download_blob().readall()


def _status(job: Any, error: str | None = None) -> JobStatus:
    return JobStatus(name=job.name, status=text(job.status) or "Unknown", experiment=text(job.experiment_name),
                     tags=dict(job.tags or {}), error=error, created=created_at(job))


def run_error_message(raised: str) -> str:
    """The innermost message of the run error that `jobs.stream` raises as JSON ('' if it holds none)."""
    start = raised.find("{")
    try:
        error = json.loads(raised[start:]) if start >= 0 else None
    except ValueError:
        return ""
    while isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    message = error.get("message") if isinstance(error, dict) else None
    return message.strip() if isinstance(message, str) else ""
