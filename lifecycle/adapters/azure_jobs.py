"""The Jobs port on Azure ML jobs: training/job.yml (our train.py) as a command job, or a team's own training
spec (a command or pipeline job YAML, TrainingRequest.spec) wrapped in a pipeline job, both through azure-ai-ml.

A job is named by the request (deterministic), so a replayed event finds the job instead of submitting a
second one. training/job.yml is loaded with azure-ai-ml's own `load_job`, with the request's values applied as
`params_override` (what `az ml job create --set` does), so they pass the same schema validation as the YAML.
Hyperparameters the spec declares as inputs are set as inputs; others are appended to the command as
`--name value`, the way the local stand-in passes them to train.py.

A team's spec is wrapped in a pipeline job between our split and evaluation steps (azure_team_jobs.py). A training
window (TrainingRequest.data_files) is a small manifest, one path a line, that azure-ai-ml uploads as a uri_file; a
row window (window_column, window_days) is two literal inputs of train.py or of the split step."""
from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifecycle.adapters.azure_environments import PinnedEnvironment
from lifecycle.adapters.azure_monitoring_job import MonitoringJobSpec
from lifecycle.adapters.azure_team_jobs import OUTPUT, WINDOWS, TeamPipelineJob, row_window, window_manifest
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
from lifecycle.adapters.lazy_client import lazy_client
from lifecycle.core.platform_values import JobStatus, MonitoringRequest, TrainingRequest

log = logging.getLogger(__name__)

JOB_SPEC = PROJECT_ROOT / "training" / "job.yml"
TRAINING_SETTING = "TRAINING_ENVIRONMENT"
# Statuses of a job that has not run yet: its run has no start time, so get() asks for nothing more.
NOT_STARTED = frozenset({"NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Unknown", ""})
# The workspace's MLflow endpoint takes an ARM token (Azure/azureml-examples, using_mlflow_rest_api.ipynb).
TRACKING_SCOPE = "https://management.azure.com/.default"


def _group(input_name: str) -> re.Pattern:
    """A command's optional $[[...]] group that names the input."""
    return re.compile(r"\$\[\[[^\]]*inputs\." + input_name + r"\b[^\]]*\]\]")


_CHAMPION_GROUP = _group("champion_model")
_WINDOW_GROUP = _group("data_files")
_HOLDOUT_GROUP = _group("holdout_files")
_ROW_WINDOW_GROUP = _group("window_column")        # with window_days: --window-column and --window-days


class AzureMLJobs(WorkspaceClient):
    def __init__(self, subscription_id: str, resource_group: str, workspace_name: str, *,
                 datastore: str = "mlopsdata", data_container: str | None = None,
                 job_spec: str | Path = JOB_SPEC, environment: str = "mlops-training:1",
                 compute: str = "cpu-cluster", credential: Any = None, monitoring: MonitoringJobSpec | None = None,
                 storage_kwargs: dict[str, Any] | None = None, app_root: Path = PROJECT_ROOT,
                 **client_kwargs: Any) -> None:
        """`datastore` is the Azure ML datastore over the data container (`data_container`, if given, is
        checked against each request's URL). `environment` ("name:version", TRAINING_ENVIRONMENT) and
        `compute` (JOB_COMPUTE) replace the spec's own: the infrastructure creates both. `storage_kwargs` go
        to the BlobServiceClient that reads a job's metrics.json from its output datastore. A team's spec
        (TrainingRequest.spec) is a path in `app_root`, the app's folder, deployed with it."""
        super().__init__(subscription_id, resource_group, workspace_name, credential=credential, **client_kwargs)
        self.datastore = datastore
        self.data_container = data_container
        self.job_spec = Path(job_spec)
        self.environment = PinnedEnvironment(environment, TRAINING_SETTING, "training/environment/conda.yml")
        self.compute = compute
        self.monitoring = monitoring or MonitoringJobSpec(compute=compute)     # monitoring/job.yml
        self.storage_kwargs = storage_kwargs or {}
        self.app_root = Path(app_root).resolve()
        self._tracking: Any = None

    # -- the port --------------------------------------------------------------------------------------

    def submit(self, request: TrainingRequest) -> JobStatus:
        existing = self.get(request.job_name)
        if existing is not None:
            return existing
        try:
            job = self.job(request)
            self.environment.require(self.ml_client, self.workspace_name)
            return self._create(request.job_name, job)
        finally:
            shutil.rmtree(WINDOWS / request.job_name, ignore_errors=True)     # uploaded by create_or_update

    def get(self, name: str) -> JobStatus | None:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            job = self.ml_client.jobs.get(name)
        except ResourceNotFoundError:
            return None
        status = text(job.status)
        error = self._failure(name) if status == "Failed" else None
        started, ended = ("", "") if status in NOT_STARTED else self._run_times(job)
        return _status(job, error, started, ended)

    def tag(self, name: str, tags: dict[str, str]) -> None:
        """Adds `tags` to job `name`, finished or not (Azure ML's job tags are its MLflow run's tags).

        Through azure-ai-ml's public `jobs.update` (1.35+): a PATCH of the job's run in run history, which merges
        the tags into the job's, for a completed job too and for every job type; it is what Studio's inline tag
        edit sends. Not `jobs.create_or_update` of the fetched job: that ARM PUT (REST "Jobs - Create Or Update")
        replaces the job's tags with the definition's, and azure-ai-ml before 1.35 fails to round-trip a
        fetched job through it. Not MLflow's set_tag either: the function app has no azureml-mlflow."""
        from azure.core.exceptions import ResourceNotFoundError
        if not tags:
            return
        update = getattr(self.ml_client.jobs, "update", None)
        if update is None:
            raise AzureMLAdapterError("tagging an Azure ML job needs azure-ai-ml 1.35 or later (jobs.update): "
                                      "upgrade it in requirements.txt")
        try:
            update(name, tags={key: str(value) for key, value in tags.items()})
        except ResourceNotFoundError:
            raise AzureMLAdapterError(f"no Azure ML job named {name!r} in workspace {self.workspace_name}: "
                                      f"cannot tag it") from None

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
            raise AzureMLAdapterError(f"job {name} completed but wrote no {path} on datastore {datastore}: its last "
                                      "step (train.py, or evaluate.py after a team's job) must write metrics.json "
                                      "into its output folder") from None

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
        """The command job for a request: training/job.yml with the request's name, experiment, tags and inputs;
        or, for a request with a team's spec, the pipeline job that wraps it (team_job)."""
        from azure.ai.ml import load_job
        if request.spec:
            return TeamPipelineJob(self.app_root, self.environment, self.datastore, self.data_container,
                                   self.compute, self._spec().get("tags") or {}).job(request)
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
        if "task" in declared:
            overrides.append({"inputs.task": request.task})
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
        if request.data_files:
            if data_type != "uri_folder":
                raise AzureMLAdapterError(f"job {request.job_name}: a training window (data_files) names files "
                                          f"under a folder, but data {request.data} is one file")
            if not _WINDOW_GROUP.search(command):
                raise AzureMLAdapterError(f"{self.job_spec} takes no training window: its command has no "
                                          "$[[--data-files ${{inputs.data_files}}]]")
            manifest = window_manifest(request.job_name, request.data_files)
            overrides.append({"inputs.data_files": {"type": "uri_file", "path": str(manifest)}})
        else:
            command = _WINDOW_GROUP.sub("", command).strip()
        if request.holdout_files and _HOLDOUT_GROUP.search(command):
            manifest = window_manifest(request.job_name, request.holdout_files, "holdout_files")
            overrides.append({"inputs.holdout_files": {"type": "uri_file", "path": str(manifest)}})
        else:
            command = _HOLDOUT_GROUP.sub("", command).strip()
        if row_window(request):
            if not _ROW_WINDOW_GROUP.search(command):
                raise AzureMLAdapterError(f"{self.job_spec} takes no row window: its command has no "
                                          "$[[--window-column ${{inputs.window_column}} --window-days "
                                          "${{inputs.window_days}}]]")
            overrides += [{"inputs.window_column": request.window_column},
                          {"inputs.window_days": request.window_days}]
        else:
            command = _ROW_WINDOW_GROUP.sub("", command).strip()
        overrides.append({"command": " ".join([" ".join(command.split()), *flags])})
        return load_job(self.job_spec, params_override=overrides)

    def _spec(self) -> dict:
        import yaml  # a dependency of azure-ai-ml
        return yaml.safe_load(self.job_spec.read_text()) or {}

    # -- reading results -------------------------------------------------------------------------------

    def _run_times(self, job: Any) -> tuple[str, str]:
        """When the job's run started and ended (ISO 8601 UTC, "" when not yet), from its MLflow run.

        Azure ML's Job entity has no start or end time (JobBaseProperties in the REST spec: status, services,
        properties, no times); run history has them, and the public way to it is the workspace's MLflow REST API
        (MLflow's `runs/get`; "Query & compare experiments and runs with MLflow" in Azure ML's docs), where the
        job's name is the run id. Its address is the job's own Tracking service, so this is one GET, and only
        for a job that has started. A failure here is logged, not raised: the job's status is what counts."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest
        url = _tracking_url(job)
        if not url:
            return "", ""
        try:
            response = self.tracking_client.send_request(
                HttpRequest("GET", f"{url}/api/2.0/mlflow/runs/get", params={"run_id": job.name}))
            response.raise_for_status()
            info = (response.json().get("run") or {}).get("info") or {}
        except (AzureError, ValueError, AttributeError) as error:
            log.warning("could not read when job %s started and ended (MLflow runs/get): %s", job.name, error)
            return "", ""
        return _from_epoch_ms(info.get("start_time")), _from_epoch_ms(info.get("end_time"))

    @lazy_client("_tracking")
    def tracking_client(self) -> Any:
        """An azure-core pipeline to the workspace's MLflow endpoint (the MLClient's transport and retries)."""
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            NetworkTraceLoggingPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )
        retries = {key: value for key, value in self._client_kwargs.items() if key.startswith("retry_")}
        transport = {"transport": self._client_kwargs["transport"]} if "transport" in self._client_kwargs else {}
        return PipelineClient("https://api.azureml.ms", policies=[
            HeadersPolicy({"Accept": "application/json"}), UserAgentPolicy("mlops-lifecycle"), RetryPolicy(**retries),
            BearerTokenCredentialPolicy(self.credential, TRACKING_SCOPE), NetworkTraceLoggingPolicy()], **transport)

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



def _status(job: Any, error: str | None = None, started: str = "", ended: str = "") -> JobStatus:
    # Azure ML's MLflow run id is the job's name: the run Studio and `mlflow.get_run(name)` show.
    return JobStatus(name=job.name, status=text(job.status) or "Unknown", experiment=text(job.experiment_name),
                     tags=dict(job.tags or {}), error=error, created=created_at(job), started=started, ended=ended,
                     tracking_run=job.name, compute=_compute_name(job))


def _compute_name(job: Any) -> str:
    """The cluster's name: a command job's compute, a pipeline job's default compute (an ARM id or azureml:name)."""
    compute = getattr(job, "compute", None) or getattr(getattr(job, "settings", None), "default_compute", None)
    return str(compute or "").rsplit("/", 1)[-1].removeprefix("azureml:")


def _tracking_url(job: Any) -> str:
    """The https address of the workspace's MLflow endpoint, from the job's Tracking service (azureml://...)."""
    service = (getattr(job, "services", None) or {}).get("Tracking")
    endpoint = str(getattr(service, "endpoint", None) or "")
    if not endpoint.startswith("azureml://"):
        return ""
    return "https://" + endpoint.removeprefix("azureml://").split("?", 1)[0].rstrip("/")


def _from_epoch_ms(value: Any) -> str:
    """ISO 8601 UTC from MLflow's milliseconds since the epoch (a number, or a string in proto JSON)."""
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms > 0 else ""


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
