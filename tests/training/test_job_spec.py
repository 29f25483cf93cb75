"""training/job.yml and the training environment load and validate offline with azure-ai-ml's own loaders,
and the job's command is one train.py accepts."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from training.train import parse_args

TRAINING = Path(__file__).resolve().parents[2] / "training"
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]")
REFERENCE = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")


@pytest.fixture(scope="module")
def job():
    from azure.ai.ml import load_job

    return load_job(TRAINING / "job.yml")


def test_job_loads_and_validates_offline(job):
    from azure.ai.ml.entities import Command

    assert isinstance(job, Command)                                  # load_job's form of a command job
    result = job._validate()
    assert result.passed, result.error_messages
    assert (Path(job.base_path) / job.code).resolve() == TRAINING     # the code snapshot is training/
    assert job.compute == "cpu-cluster" and job.experiment_name == "mlops-training" and job.display_name
    assert job.inputs["data"].type == "uri_folder" and job.inputs["data"].path.startswith("azureml://datastores/")
    assert job.outputs["output"].type == "uri_folder"
    assert {"target", "model_name"} <= set(job.inputs)


def test_command_references_every_input_and_output(job):
    required = OPTIONAL.sub("", job.command)
    referenced = {(kind, name) for kind, name in REFERENCE.findall(required)}
    declared = {("inputs", name) for name in job.inputs} | {("outputs", name) for name in job.outputs}
    assert referenced == declared                                     # nothing unused, nothing undeclared
    optional = [REFERENCE.findall(group) for group in OPTIONAL.findall(job.command)]
    # the training window, its new files (where the holdout comes from), the row window (a column and a number
    # of days, together) and the live model, each only when given
    assert optional == [[("inputs", "data_files")], [("inputs", "holdout_files")],
                        [("inputs", "window_column"), ("inputs", "window_days")], [("inputs", "champion_model")]]


@pytest.mark.parametrize("with_optional", [False, True])
def test_command_resolves_to_arguments_train_py_accepts(job, with_optional):
    values = {"inputs.data": "/mnt/data", "inputs.target": "default", "inputs.task": "regression",
              "inputs.model_name": "loans", "outputs.output": "/mnt/out", "inputs.champion_model": "/mnt/champion",
              "inputs.data_files": "/mnt/window.txt", "inputs.holdout_files": "/mnt/new.txt",
              "inputs.window_column": "day", "inputs.window_days": "30"}
    command = OPTIONAL.sub(lambda m: m.group(1) if with_optional else "", job.command)
    command = re.sub(r"\$\{\{([\w.]+)\}\}", lambda m: values[m.group(1)], command)
    argv = shlex.split(command)
    assert argv[:2] == ["python", "train.py"] and (TRAINING / argv[1]).is_file()
    args = parse_args(argv[2:])
    assert (args.data, args.target, args.model_name, args.output) == (["/mnt/data"], "default", "loans", "/mnt/out")
    assert args.task == "regression"
    assert args.champion_model == ("/mnt/champion" if with_optional else None)
    assert args.data_files == ("/mnt/window.txt" if with_optional else None)
    assert args.holdout_files == ("/mnt/new.txt" if with_optional else None)
    assert (args.window_column, args.window_days) == (("day", 30) if with_optional else (None, None))


def test_submitting_with_and_without_the_optional_inputs():
    """The ways the job is submitted, as job.yml's comment describes, pass the check azure-ai-ml makes on
    the job's command (the job's anonymous component): with a champion, a training window and its new
    files and a row window, or with the groups of those it lacks dropped; the file as written, without them,
    does not."""
    from azure.ai.ml import load_job

    champion = {"inputs.champion_model": {"type": "mlflow_model", "path": "azureml:loans:3"}}
    window = {"inputs.data_files": {"type": "uri_file", "path": "azureml://datastores/workspaceblobstore/paths/w.txt"}}
    new = {"inputs.holdout_files": {"type": "uri_file", "path": "azureml://datastores/workspaceblobstore/paths/n.txt"}}
    rows = [{"inputs.window_column": "day"}, {"inputs.window_days": 30}]
    with_both = load_job(TRAINING / "job.yml", params_override=[champion, window, new, *rows])
    assert with_both.component._validate().passed
    assert (with_both.inputs["window_column"]._data, with_both.inputs["window_days"]._data) == ("day", 30)
    assert with_both.inputs["champion_model"].type == "mlflow_model"
    assert with_both.inputs["data_files"].type == with_both.inputs["holdout_files"].type == "uri_file"

    as_written = load_job(TRAINING / "job.yml")
    no_window = OPTIONAL.sub(lambda m: "" if "_files" in m.group(1) or "window_" in m.group(1) else m.group(0),
                             as_written.command).strip()
    with_champion = load_job(TRAINING / "job.yml", params_override=[champion, {"command": no_window}])
    assert with_champion.component._validate().passed and "--data-files" not in with_champion.command
    assert "--holdout-files" not in with_champion.command and "--window-column" not in with_champion.command
    dropped = OPTIONAL.sub("", as_written.command).strip()
    without = load_job(TRAINING / "job.yml", params_override=[{"command": dropped}])
    assert without.component._validate().passed and "--champion-model" not in without.command
    assert not as_written.component._validate().passed


def test_job_environment_is_the_training_conda_file(job):
    assert job.environment.image.startswith("mcr.microsoft.com/azureml/")
    assert job.environment.conda_file == yaml.safe_load((TRAINING / "environment" / "conda.yml").read_text())


def test_environment_spec_loads():
    from azure.ai.ml import load_environment

    environment = load_environment(TRAINING / "environment.yml")
    assert environment.name == "mlops-training" and environment.version
    assert environment.image.startswith("mcr.microsoft.com/azureml/openmpi")
    pip = next(d["pip"] for d in environment.conda_file["dependencies"] if isinstance(d, dict))
    names = {re.split(r"[<>=~ ]", p)[0] for p in pip}
    assert {"scikit-learn", "pandas", "pyarrow", "mlflow-skinny", "azureml-mlflow", "cloudpickle"} <= names
    assert "python=3.11" in environment.conda_file["dependencies"]


def test_conda_pins_admit_what_trained_here():
    """The model is a pickle: the training environment must allow the versions this venv trains with."""
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    conda = yaml.safe_load((TRAINING / "environment" / "conda.yml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    for line in pip:
        requirement = line.split("#")[0].strip()
        name, spec = re.match(r"([\w.-]+)(.*)", requirement).groups()
        if name == "azureml-mlflow":                                  # Azure-only: not installed here
            continue
        assert version(name) in SpecifierSet(spec.replace(" ", "")), (name, version(name), spec)


@pytest.mark.parametrize("spec", ["training/job.yml", "monitoring/job.yml"])
def test_jobs_reach_the_identity_based_datastores_as_the_clusters_managed_identity(spec):
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import ManagedIdentityConfiguration
    assert isinstance(load_job(Path(__file__).resolve().parents[2] / spec).identity, ManagedIdentityConfiguration)
