"""A team's own training (TrainingRequest.spec) on Azure ML: the pipeline job AzureMLJobs builds around it, our
split step → the team's job → our evaluation step, checked as azure-ai-ml's objects (what create_or_update
sends) and, once, submitted through the recorded service (tests/adapters/recorded.py). Nothing reaches Azure."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import jwt
import pytest
import yaml
from azure.core.pipeline.transport import RequestsTransport

from emulator.azurite import ACCOUNT, ACCOUNT_KEY
from lifecycle.adapters.azure_jobs import WINDOWS
from lifecycle.adapters.azure_ml import AzureMLAdapterError, AzureMLJobs
from lifecycle.core.platform_values import TrainingRequest, job_name_for
from tests.adapters.aml_service import AzureMLService
from tests.adapters.recorded import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, WORKSPACE_ID, FakeCredential

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml")

ROOT = Path(__file__).resolve().parents[2]
DATA = "https://stmlopsdata.blob.core.windows.net/data/churn/"
PIPELINE = "examples/pipeline/pipeline.yml"
COMMAND_JOB = "examples/command-job/job.yml"
PINNED = "azureml:mlops-training:1"


@pytest.fixture(autouse=True)
def _no_manifests_left():
    """job() alone writes a window's manifest that submit() would upload and remove: remove them here."""
    yield
    for name in (_request().job_name, "train-one"):
        shutil.rmtree(WINDOWS / name, ignore_errors=True)


def _request(**changes) -> TrainingRequest:
    values = dict(job_name=job_name_for("churn", "data", "batch-7f3a"), model_name="churn", data=DATA,
                  target="churned", trigger="data", data_batches=("batch-7f3a",), spec=PIPELINE)
    return TrainingRequest(**{**values, **changes})


def _jobs(**kwargs) -> AzureMLJobs:
    return AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(), **kwargs)


def _spec(tmp_path: Path, body: dict, name: str = "pipeline.yml") -> str:
    """A team spec in an app whose root is tmp_path; returns it as a request names it (use _jobs(app_root=...))."""
    folder = tmp_path / "team"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(body, sort_keys=False))
    return f"team/{name}"


def test_a_team_pipeline_runs_between_our_split_and_evaluation_steps():
    job = _jobs().job(_request(champion="churn:3", hyperparameters={"n_estimators": "300"}))
    assert job._validate().error_messages == {}
    d = job._to_dict()
    assert (d["type"], d["name"], d["display_name"], d["experiment_name"]) == (
        "pipeline", _request().job_name, _request().job_name, "mlops-training")
    assert d["tags"] == {"mlops.component": "training", **_request(champion="churn:3").tags}
    assert job.settings.default_compute == "cpu-cluster"                     # JOB_COMPUTE, by name
    assert d["identity"] == {"type": "managed_identity"}                       # as training/job.yml
    assert d["inputs"] == {
        "data": {"type": "uri_folder", "mode": "ro_mount", "path": "azureml://datastores/mlopsdata/paths/churn/"},
        "champion_model": {"type": "mlflow_model", "path": "azureml:churn:3"}}
    # the job's `output` is our evaluation's, where metrics() and the registry read it
    assert d["outputs"] == {"output": {"type": "uri_folder", "path": "azureml://datastores/workspaceblobstore"
                                                                      f"/paths/azureml/{_request().job_name}/output/"}}
    jobs = d["jobs"]
    assert list(jobs) == ["split", "train", "evaluate"]
    assert jobs["split"]["inputs"] == {"data": {"path": "${{parent.inputs.data}}"}, "target": "churned",
                                       "task": "classification"}
    # the team's pipeline as a sub-pipeline: `data` is our split's train_data, the holdout never reaches it
    assert jobs["train"]["type"] == "pipeline"
    assert jobs["train"]["inputs"] == {"data": {"path": "${{parent.jobs.split.outputs.train_data}}"},
                                       "target": "churned", "task": "classification", "n_estimators": "300"}
    assert jobs["evaluate"]["inputs"] == {
        "model": {"path": "${{parent.jobs.train.outputs.model}}"},
        "holdout": {"path": "${{parent.jobs.split.outputs.holdout}}"},
        "train_data": {"path": "${{parent.jobs.split.outputs.train_data}}"},
        "champion_model": {"path": "${{parent.inputs.champion_model}}"},
        "target": "churned", "task": "classification", "model_name": "churn"}
    assert jobs["evaluate"]["outputs"] == {"output": "${{parent.outputs.output}}"}
    # our steps run in the pinned environment, from the training folder; the team's keep their own
    for ours in ("split", "evaluate"):
        assert jobs[ours]["component"]["environment"] == PINNED
        assert jobs[ours]["component"]["code"] == str(ROOT / "training")
    team = jobs["train"]["component"]["jobs"]
    assert list(team) == ["prep", "train"]
    assert team["train"]["inputs"]["data"] == {"path": "${{parent.jobs.prep.outputs.prepared}}"}
    assert team["train"]["outputs"] == {"model": "${{parent.outputs.model}}"}
    assert team["prep"]["component"]["code"] == team["train"]["component"]["code"] == str(ROOT / "examples/pipeline")
    assert team["train"]["component"]["environment"]["conda_file"]["name"] == "churn-training"
    rest = job._to_rest_object().properties                 # what create_or_update sends (before uploads)
    assert rest.job_type == "Pipeline" and list(rest.jobs) == ["split", "train", "evaluate"]
    assert rest.inputs["data"].mode == "ReadOnlyMount"


def test_a_team_command_job_is_a_node_with_its_own_environment():
    job = _jobs().job(_request(spec=COMMAND_JOB, hyperparameters={"learning_rate": "0.05"}))
    assert job._validate().error_messages == {}
    train = job._to_dict()["jobs"]["train"]
    assert train["type"] == "command"
    assert train["inputs"] == {"data": {"path": "${{parent.jobs.split.outputs.train_data}}"}, "target": "churned",
                               "learning_rate": "0.05"}
    assert train["outputs"] == {"model": {"type": "mlflow_model"}}
    assert train["component"]["environment"]["conda_file"]["name"] == "churn-training"
    assert "compute" not in train                           # the pipeline's: JOB_COMPUTE


def test_a_team_command_without_an_environment_gets_the_pinned_one_and_keeps_its_compute(tmp_path):
    (tmp_path / "team").mkdir()
    spec = _spec(tmp_path, {"type": "command", "code": ".", "command": "python t.py --data ${{inputs.data}} "
                                                                      "--model ${{outputs.model}}",
                            "inputs": {"data": {"type": "uri_folder"}}, "outputs": {"model": {"type": "mlflow_model"}},
                            "compute": "azureml:gpu-cluster"})
    train = _jobs(app_root=tmp_path).job(_request(spec=spec)).jobs["train"]
    assert (train.environment, train.compute) == ("mlops-training:1", "gpu-cluster")   # as azure-ai-ml holds them


def test_a_training_window_is_a_manifest_the_split_step_reads():
    request = _request(data_files=("2025/05/01/part-0.csv", "2025/05/02/"))
    job = _jobs().job(request)
    window = job.inputs["data_files"]._data                 # the Input the pipeline's input wraps
    manifest = Path(window.path)
    assert window.type == "uri_file" and manifest.is_relative_to(WINDOWS)   # a local file: uploaded on create
    assert manifest.read_text() == "2025/05/01/part-0.csv\n2025/05/02/\n"      # one path a line
    assert job._to_dict()["jobs"]["split"]["inputs"]["data_files"] == {"path": "${{parent.inputs.data_files}}"}
    # one file as the data: its folder, and a window of that file
    single = _jobs().job(_request(job_name="train-one", data=DATA + "drop%201.csv"))
    assert single.inputs["data"].path == "azureml://datastores/mlopsdata/paths/churn/"
    assert Path(single.inputs["data_files"]._data.path).read_text() == "drop 1.csv\n"
    with pytest.raises(AzureMLAdapterError, match="data_files entry '../x.csv' is not a path under the data folder"):
        _jobs().job(_request(data_files=("../x.csv",)))


def test_the_holdout_comes_from_the_new_files_in_both_kinds_of_job():
    team = _jobs().job(_request(data_files=("a.csv", "b.csv"), holdout_files=("b.csv",)))
    assert Path(team.inputs["holdout_files"]._data.path).read_text() == "b.csv\n"
    assert team._to_dict()["jobs"]["split"]["inputs"]["holdout_files"] == {"path": "${{parent.inputs.holdout_files}}"}
    ours = _jobs(job_spec=ROOT / "training" / "job.yml").job(_request(spec="", data_files=("a.csv", "b.csv"),
                                                                      holdout_files=("b.csv",)))
    assert "--holdout-files ${{inputs.holdout_files}}" in ours.command
    assert Path(ours.inputs["holdout_files"].path).read_text() == "b.csv\n"
    plain = _jobs(job_spec=ROOT / "training" / "job.yml").job(_request(spec=""))
    assert "holdout_files" not in plain.inputs and "--holdout-files" not in plain.command


def test_our_train_py_reads_the_window_and_the_task_too():
    spec = ROOT / "training" / "job.yml"
    job = _jobs(job_spec=spec).job(_request(spec="", task="regression", data_files=("2025/a.csv",)))
    assert "--data-files ${{inputs.data_files}}" in job.command and job.inputs["task"]._data == "regression"
    assert Path(job.inputs["data_files"].path).read_text() == "2025/a.csv\n"
    plain = _jobs(job_spec=spec).job(_request(spec=""))
    assert "data_files" not in plain.inputs and "--data-files" not in plain.command
    assert set(plain.component._validate().error_messages) <= {"name"}     # see test_azure_ml.py


def test_a_row_window_is_two_literal_inputs_in_both_kinds_of_job(tmp_path):
    spec = ROOT / "training" / "job.yml"
    ours = _jobs(job_spec=spec).job(_request(spec="", window_column="day", window_days=30))
    assert "$[[--window-column ${{inputs.window_column}} --window-days ${{inputs.window_days}}]]" in ours.command
    assert (ours.inputs["window_column"]._data, ours.inputs["window_days"]._data) == ("day", 30)
    assert set(ours.component._validate().error_messages) <= {"name"}     # see test_azure_ml.py
    team = _jobs().job(_request(window_column="day", window_days=30))
    assert team._validate().error_messages == {}
    split = team._to_dict()["jobs"]["split"]["inputs"]
    assert (split["window_column"], split["window_days"]) == ("day", 30)
    # without one: no inputs, and the group leaves train.py's command
    plain = _jobs(job_spec=spec).job(_request(spec=""))
    assert "window_column" not in plain.inputs and "window_days" not in plain.inputs
    assert "--window-column" not in plain.command and "--window-days" not in plain.command
    assert not {"window_column", "window_days"} & set(_jobs().job(_request())._to_dict()["jobs"]["split"]["inputs"])
    # half a window, or a spec that cannot take one, is refused before anything is sent
    with pytest.raises(AzureMLAdapterError, match="a row window is a date column and a number of days"):
        _jobs().job(_request(window_column="day"))
    with pytest.raises(AzureMLAdapterError, match="a row window is a date column and a number of days"):
        _jobs(job_spec=spec).job(_request(spec="", window_days=30))
    narrow = tmp_path / "job.yml"
    narrow.write_text(spec.read_text().replace(
        "$[[--window-column ${{inputs.window_column}} --window-days ${{inputs.window_days}}]]", ""))
    with pytest.raises(AzureMLAdapterError, match="takes no row window"):
        _jobs(job_spec=narrow).job(_request(spec="", window_column="day", window_days=30))


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(type="sweep"), "is of type 'sweep'; a team's training is a command or a pipeline job"),
    (lambda s: s["inputs"].pop("data"), "has no uri_folder input named data; the contract"),
    (lambda s: s["outputs"].pop("model"), "has no output named model of type mlflow_model, uri_folder, custom_model"),
    (lambda s: s["jobs"]["train"]["inputs"].update(data="${{parent.jobs.prep.outputs.cleaned}}"),
     r"is not a valid Azure ML job: .*parent.jobs.prep.outputs.cleaned"),
])
def test_a_spec_outside_the_contract_is_refused_before_anything_is_sent(tmp_path, change, message):
    body = yaml.safe_load((ROOT / PIPELINE).read_text())
    change(body)
    for file in ("prep.yml", "conda.yml"):
        (tmp_path / "team").mkdir(exist_ok=True)
        (tmp_path / "team" / file).write_text((ROOT / "examples" / "pipeline" / file).read_text())
    with pytest.raises(AzureMLAdapterError, match=message):
        _jobs(app_root=tmp_path).job(_request(spec=_spec(tmp_path, body)))


def test_unknown_hyperparameters_and_missing_specs_are_refused():
    with pytest.raises(AzureMLAdapterError, match="hyperparameters depth are not inputs of the job; its inputs are "
                                                  "target, task, n_estimators"):
        _jobs().job(_request(hyperparameters={"depth": "3"}))
    with pytest.raises(AzureMLAdapterError, match="the training spec teams/none.yml does not exist in the app"):
        _jobs().job(_request(spec="teams/none.yml"))
    with pytest.raises(AzureMLAdapterError, match="does not exist in the app"):
        _jobs().job(_request(spec="../../etc/passwd"))


# -- submitted through the recorded service -------------------------------------------------------------------

class AmlTokenCredential(FakeCredential):
    """azure-ai-ml sends a pipeline job with an Azure ML token of the caller and checks its audience first."""

    def get_token(self, *scopes: str, **kwargs):
        from azure.core.credentials import AccessToken
        audience = scopes[0].removesuffix("/.default").rstrip("/")
        return AccessToken(jwt.encode({"aud": audience, "tid": "t"}, "k" * 32), int(time.time()) + 3600)


def test_submit_creates_the_pipeline_job_with_our_components_and_the_teams(azurite):
    aml = AzureMLService(azurite.blob, ACCOUNT, ACCOUNT_KEY)
    aml.arm.serve("components/[^/]+/versions", "Microsoft.MachineLearningServices/workspaces/components/versions")
    jobs = AzureMLJobs(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=AmlTokenCredential(),
                       transport=RequestsTransport(session=aml.http.session))
    request = _request(champion="churn:3")
    status = jobs.submit(request)

    assert (status.name, status.status, status.experiment) == (request.job_name, "Starting", "mlops-training")
    [put] = aml.http.requests_to("PUT", f"/jobs/{request.job_name}$")
    job = put.body["properties"]
    assert job["jobType"] == "Pipeline" and set(job["jobs"]) == {"split", "train", "evaluate"}
    assert job["settings"]["default_compute"] == f"{WORKSPACE_ID}/computes/cpu-cluster"
    assert job["outputs"]["output"]["uri"].endswith(f"/paths/azureml/{request.job_name}/output/")
    components = {c.body["properties"]["componentSpec"].get("display_name"): c.body["properties"]["componentSpec"]
                  for c in aml.http.requests_to("PUT", "/components/")}
    assert {"split", "evaluate", "prep", "churn-training"} <= set(components)
    for ours in ("split", "evaluate"):           # the pinned environment, never an anonymous one of ours
        assert components[ours]["environment"] == f"azureml:{WORKSPACE_ID}/environments/mlops-training/versions/1"
    # two code snapshots: the training folder (our steps) and the team's folder
    assert len(aml.uploads) == 2
    assert not aml.http.unrouted
    assert not (WINDOWS / request.job_name).exists()
