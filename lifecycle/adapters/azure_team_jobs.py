"""A team's own training spec (a command or pipeline job YAML, TrainingRequest.spec) wrapped in a pipeline job
between our two steps (training/components/): split (its train_data is the team's `data` input; its holdout only
ours) → the team's job (a command job as a node, a pipeline job as a sub-pipeline) → evaluate (scores the team's
`model` and the champion on the holdout), whose `output` is the pipeline's, so the job's output/model/ and
output/metrics.json are where training/job.yml puts them. Also what both kinds of training job share: a training
window as a manifest file, and a row window's check."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lifecycle.adapters.azure_environments import PinnedEnvironment
from lifecycle.adapters.azure_workspace import PROJECT_ROOT, AzureMLAdapterError, datastore_path, split_ref
from lifecycle.core.platform_values import TrainingRequest

COMPONENTS = PROJECT_ROOT / "training" / "components"     # our split.yml and evaluate.yml
OUTPUT = "output"                 # the job's uri_folder output; train.py writes model/ and metrics.json into it
TEAM_STEP = "train"               # the team's job as a node of the wrapped pipeline
MODEL_OUTPUTS = ("mlflow_model", "uri_folder", "custom_model")
OUTPUTS_DATASTORE = "workspaceblobstore"      # every workspace's default datastore, where job outputs go
WINDOWS = Path(tempfile.gettempdir()) / "mlops-training-windows"      # manifests, until azure-ai-ml uploads them


@dataclass(frozen=True)
class TeamPipelineJob:
    """Builds the wrapping pipeline job for a request with a team's spec, with AzureMLJobs' settings."""
    app_root: Path
    environment: PinnedEnvironment
    datastore: str
    data_container: str | None
    compute: str
    tags: dict[str, str] = field(default_factory=dict)      # training/job.yml's own, on every training job

    def job(self, request: TrainingRequest) -> Any:
        """The pipeline job for a request with a team's spec: our split step, the team's job (node `train`),
        our evaluation step, whose output is the pipeline's `output`. Our steps run in the pinned training
        environment; the team's keep their own (the pinned one where a command has none); everything runs
        on JOB_COMPUTE but a team's step that names its own compute."""
        from azure.ai.ml import Input, Output
        from azure.ai.ml.entities import ManagedIdentityConfiguration, PipelineJob, PipelineJobSettings
        path = self._spec_path(request.spec)
        spec = _read_team_spec(path, request)
        team = self._team_node(path, spec, request)
        folder, files = _folder_and_window(request.data, request.data_files)
        data_uri, _ = datastore_path(folder, self.datastore, self.data_container)
        inputs: dict[str, Any] = {"data": Input(type="uri_folder", path=data_uri, mode="ro_mount")}
        split = self._our_component("split")(data="${{parent.inputs.data}}", target=request.target,
                                             task=request.task)
        if files:
            inputs["data_files"] = Input(type="uri_file", path=str(window_manifest(request.job_name, files)))
            split.inputs.data_files = "${{parent.inputs.data_files}}"
        if request.holdout_files:
            holdout = window_manifest(request.job_name, request.holdout_files, "holdout_files")
            inputs["holdout_files"] = Input(type="uri_file", path=str(holdout))
            split.inputs.holdout_files = "${{parent.inputs.holdout_files}}"
        if row_window(request):
            split.inputs.window_column = request.window_column
            split.inputs.window_days = request.window_days
        evaluate = self._our_component("evaluate")(
            model=f"${{{{parent.jobs.{TEAM_STEP}.outputs.model}}}}", holdout="${{parent.jobs.split.outputs.holdout}}",
            train_data="${{parent.jobs.split.outputs.train_data}}", target=request.target, task=request.task,
            model_name=request.model_name)
        if request.champion:
            name, version = split_ref(request.champion)
            inputs["champion_model"] = Input(type="mlflow_model", path=f"azureml:{name}:{version}")
            evaluate.inputs.champion_model = "${{parent.inputs.champion_model}}"
        evaluate.outputs.output = "${{parent.outputs.output}}"
        # A set path: the job's output where metrics() and the registry look for it, not under a step's run id.
        output = Output(type="uri_folder",
                        path=f"azureml://datastores/{OUTPUTS_DATASTORE}/paths/azureml/{request.job_name}/{OUTPUT}/")
        return PipelineJob(
            name=request.job_name, display_name=request.job_name, experiment_name=request.experiment,
            description=f"{request.model_name}: {request.spec} between the split and evaluation steps",
            tags={**self.tags, **request.tags},
            jobs={"split": split, TEAM_STEP: team, "evaluate": evaluate}, inputs=inputs, outputs={OUTPUT: output},
            settings=PipelineJobSettings(default_compute=self.compute),      # a name: "azureml:" would stay in the id
            # as training/job.yml: the cluster's identity reads and writes the identity-based datastores
            identity=ManagedIdentityConfiguration())

    def _spec_path(self, spec: str) -> Path:
        path = (self.app_root / spec).resolve()
        if not path.is_relative_to(self.app_root) or not path.is_file():
            raise AzureMLAdapterError(f"the training spec {spec} does not exist in the app (a path relative to "
                                      "its root, deployed with it)")
        return path

    def _our_component(self, name: str) -> Any:
        from azure.ai.ml import load_component
        component: Any = load_component(COMPONENTS / f"{name}.yml")
        component.environment = self.environment.asset_id      # pinned: never an anonymous one per job
        return component

    def _team_node(self, path: Path, spec: dict, request: TrainingRequest) -> Any:
        """The team's job as a node: a command job as it is, a pipeline job as a sub-pipeline (its steps and
        their bindings unchanged), with `data` bound to our split's train_data and the request's values set."""
        from azure.ai.ml import Input, Output, load_job
        from azure.ai.ml.entities import PipelineComponent
        # azure-ai-ml refuses a command without an environment: the pinned one where the team names none
        if spec["type"] == "command":
            missing = [] if spec.get("environment") else ["environment"]
        else:
            missing = [f"jobs.{name}.environment" for name, step in (spec.get("jobs") or {}).items()
                       if isinstance(step, dict) and not step.get("component") and not step.get("environment")]
        try:
            team: Any = load_job(path, params_override=[{key: self.environment.asset_id} for key in missing])
        except Exception as error:      # azure-ai-ml's own validation of the team's YAML, offline
            raise AzureMLAdapterError(f"the training spec {request.spec} is not a valid Azure ML job: "
                                      f"{_first_lines(str(error))}") from None
        data = "${{parent.jobs.split.outputs.train_data}}"
        values = _team_values(spec, request)
        if spec["type"] == "command":
            team.inputs.data = data
            for key, value in values.items():
                setattr(team.inputs, key, value)       # the attribute: it wraps the value as a node input
            return team
        declared, given = {}, {}
        for key, value in (spec.get("inputs") or {}).items():
            if key == "data":
                declared[key] = Input(type="uri_folder")
            elif isinstance(value, dict):            # data of its own: declared by type, given as written
                declared[key] = Input(type=value.get("type", "uri_folder"), optional=True)
                given[key] = Input(**{k: value[k] for k in ("type", "path", "mode") if k in value})
            else:
                declared[key] = Input(type=_literal_type(value), optional=value is None,
                                      **({"default": value} if value is not None else {}))
        outputs = {key: Output(type=value.get("type", "uri_folder") if isinstance(value, dict) else "uri_folder")
                   for key, value in (spec.get("outputs") or {}).items()}
        component = PipelineComponent(jobs=team.jobs, inputs=declared, outputs=outputs,
                                      display_name=spec.get("display_name") or TEAM_STEP,
                                      description=spec.get("description"))
        return component(data=data, **given, **values)


def _read_team_spec(path: Path, request: TrainingRequest) -> dict:
    """The team's YAML, checked against the contract: a command or pipeline job, a uri_folder input `data`,
    an output `model` (an MLflow model folder), hyperparameters that are its inputs."""
    import yaml  # a dependency of azure-ai-ml
    where = f"the training spec {request.spec}"
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise AzureMLAdapterError(f"{where} is not readable YAML: {error}") from None
    if not isinstance(spec, dict) or spec.get("type") not in ("command", "pipeline"):
        kind = spec.get("type") if isinstance(spec, dict) else None
        raise AzureMLAdapterError(f"{where} is of type {kind!r}; a team's training is a command or a pipeline job")
    inputs, outputs = spec.get("inputs") or {}, spec.get("outputs") or {}
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        raise AzureMLAdapterError(f"{where}: inputs and outputs must be mappings of name: value")
    data = inputs.get("data")
    if not isinstance(data, dict) or data.get("type", "uri_folder") != "uri_folder":
        raise AzureMLAdapterError(f"{where} has no uri_folder input named data; the contract is a uri_folder input "
                                  "`data`, which the chain's split step feeds with the training rows")
    model = outputs.get("model")
    if "model" not in outputs or (isinstance(model, dict) and model.get("type", "uri_folder") not in MODEL_OUTPUTS):
        raise AzureMLAdapterError(f"{where} has no output named model of type {', '.join(MODEL_OUTPUTS)}; the "
                                  "contract is an MLflow model output `model`, which the chain's evaluation reads")
    unknown = [k for k in request.hyperparameters if k not in inputs or k == "data"]
    if unknown:
        raise AzureMLAdapterError(f"{where}: hyperparameters {', '.join(unknown)} are not inputs of the job; its "
                                  f"inputs are {', '.join(k for k in inputs if k != 'data')}")
    return spec


def _team_values(spec: dict, request: TrainingRequest) -> dict[str, str]:
    """The team's inputs the request sets: its hyperparameters, and inputs named `target` (the label column) and
    `task` (classification or regression) when the spec declares them."""
    declared = spec.get("inputs") or {}
    values = {name: value for name, value in (("target", request.target), ("task", request.task)) if name in declared}
    return {**values, **request.hyperparameters}


def row_window(request: TrainingRequest) -> bool:
    """Whether the request names a row window; raises AzureMLAdapterError for half of one."""
    if bool(request.window_column) != bool(request.window_days):
        raise AzureMLAdapterError(f"job {request.job_name}: a row window is a date column and a number of days: "
                                  f"window_column {request.window_column!r}, window_days {request.window_days}")
    if request.window_days < 0:
        raise AzureMLAdapterError(f"job {request.job_name}: window_days is {request.window_days}; a row window is "
                                  "at least 1 day")
    return bool(request.window_column)


def _literal_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "integer" if isinstance(value, int) else "number" if isinstance(value, float) else "string"


def _folder_and_window(url: str, files: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """A data URL as (folder URL, its files to read): a single blob is its folder and its own name."""
    if url.endswith("/"):
        return url, files
    if files:
        raise AzureMLAdapterError(f"a training window (data_files) names files under a folder, but data {url} "
                                  "is one file")
    folder, _, name = url.rpartition("/")
    return folder + "/", (unquote(name),)


def window_manifest(job_name: str, files: tuple[str, ...] | list[str], name: str = "data_files") -> Path:
    """The training window (or its new files: holdout_files) as split.py and train.py read it (--data-files,
    --holdout-files): one path a line, relative to the data folder. A local file: azure-ai-ml uploads it to the
    default datastore when the job is created."""
    for file in files:
        if file.startswith("/") or ".." in file.split("/"):
            raise AzureMLAdapterError(f"job {job_name}: {name} entry {file!r} is not a path under the data folder")
    path = WINDOWS / job_name / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{file}\n" for file in files))
    return path


def _first_lines(message: str, limit: int = 1500) -> str:
    return message if len(message) <= limit else message[:limit] + "…"
