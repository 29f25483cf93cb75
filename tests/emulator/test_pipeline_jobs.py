"""The local stand-in running a team's training spec (a command or pipeline job YAML) as the pipeline the Azure
adapter submits: our split step, the team's steps, our evaluation step. The plan (order, wiring, refusals) is
checked without processes; two runs check what a failing step and a training window do for real."""
from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import pytest
import yaml

from emulator.aml.jobs import JobError, LocalJobs, _argv
from emulator.aml.team_pipelines import wrapped_steps
from tests.examples.standin import breast_cancer_csv, components, run_job, upload_table
from training import split as split_py

DATA = "http://127.0.0.1:10000/devstoreaccount1/data/drops/"


def team_pipeline() -> dict:
    """Two steps, written in the order they do not run (fit reads prep's output)."""
    return {
        "type": "pipeline",
        "inputs": {"data": {"type": "uri_folder"}, "target": "y", "rounds": 3},
        "outputs": {"model": {"type": "mlflow_model"}},
        "jobs": {
            "fit": {"type": "command", "code": ".",
                    "command": "python fit.py --data ${{inputs.data}} --rounds ${{inputs.rounds}} "
                               "--model ${{outputs.model}}",
                    "inputs": {"data": "${{parent.jobs.prep.outputs.rows}}", "rounds": "${{parent.inputs.rounds}}"},
                    "outputs": {"model": "${{parent.outputs.model}}"}},
            "prep": {"type": "command", "code": ".",
                     "command": "python prep.py --data ${{inputs.data}} --target ${{inputs.target}} "
                                "--rows ${{outputs.rows}}",
                     "inputs": {"data": "${{parent.inputs.data}}", "target": "${{parent.inputs.target}}"},
                     "outputs": {"rows": {"type": "uri_folder"}}},
        },
    }


def job_for(spec: str, **changes) -> dict:
    return {"name": "train-m-1", "spec": spec, "task": "classification", "hyperparameters": {},
            "inputs": {"data": DATA, "target": "label", "model_name": "m", "champion": None}, **changes}


def plan(tmp_path: Path, spec: dict, **changes) -> list[dict]:
    path = tmp_path / "team" / "pipeline.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return wrapped_steps(path, job_for(str(path), **changes))


def test_the_team_pipeline_runs_between_our_split_and_our_evaluation_in_dependency_order(tmp_path):
    steps = plan(tmp_path, team_pipeline(), hyperparameters={"rounds": "7"})
    by_name = {s["name"]: s for s in steps}
    assert list(by_name) == ["split", "train/prep", "train/fit", "evaluate"]
    assert by_name["split"]["inputs"]["data"] == {"job": "data"}
    assert by_name["split"]["inputs"]["target"] == {"value": "label"}
    # the team's `data` is our split's train_data; the holdout goes to our evaluation only
    assert by_name["train/prep"]["inputs"] == {"data": {"step": "split", "output": "train_data"},
                                               "target": {"value": "label"}}     # the model's label column
    assert by_name["train/fit"]["inputs"] == {"data": {"step": "train/prep", "output": "rows"},
                                              "rounds": {"value": "7"}}         # the request's hyperparameter
    evaluate = by_name["evaluate"]["inputs"]
    assert evaluate["model"] == {"step": "train/fit", "output": "model"}
    assert evaluate["holdout"] == {"step": "split", "output": "holdout"}
    assert evaluate["train_data"] == {"step": "split", "output": "train_data"}
    assert by_name["evaluate"]["outputs"] == {"output": "outputs/output"}       # the job's output
    assert by_name["train/prep"]["code"] == str((tmp_path / "team").resolve())   # code: against the spec's folder
    assert by_name["train/fit"]["outputs"] == {"model": "steps/train/fit/model"}
    assert all(s["status"] == "NotStarted" for s in steps)


def test_a_command_job_is_one_step_named_train(tmp_path):
    spec = {"type": "command", "code": ".", "command": "python t.py --data ${{inputs.data}} --lr ${{inputs.lr}} "
                                                       "--out ${{outputs.model}}",
            "inputs": {"data": {"type": "uri_folder", "path": "azureml://datastores/d/paths/x/"}, "lr": 0.1},
            "outputs": {"model": {"type": "mlflow_model"}}}
    steps = plan(tmp_path, spec)
    assert [s["name"] for s in steps] == ["split", "train", "evaluate"]
    assert steps[1]["inputs"] == {"data": {"step": "split", "output": "train_data"}, "lr": {"value": "0.1"}}
    assert steps[2]["inputs"]["model"] == {"step": "train", "output": "model"}


def _set(spec: dict, path: str, value) -> dict:
    spec = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return spec


@pytest.mark.parametrize("path, value, message", [
    ("jobs.fit.inputs.data", "${{parent.jobs.prep.outputs.cleaned}}",
     r"step fit: input data is bound to \$\{\{parent.jobs.prep.outputs.cleaned\}\}, but step prep has no output "
     r"cleaned \(its outputs: rows\)"),
    ("jobs.fit.inputs.data", "${{parent.jobs.clean.outputs.rows}}", "the job has no step clean"),
    ("jobs.prep.inputs.data", "${{parent.inputs.rows}}", "the job has no input rows"),
    ("jobs.prep.inputs.data", "${{parent.jobs.prep.rows}}", "not a binding the stand-in knows"),
    ("jobs.prep.inputs.data", "azureml:rows:1", None),           # a literal: fine (prep reads it as text)
    ("jobs.fit.outputs.model", "${{parent.outputs.report}}", "which the job does not declare"),
    ("jobs.fit.outputs.model", {"type": "mlflow_model"}, "no step writes the output model"),
    ("jobs.prep.inputs.data", "${{parent.jobs.fit.outputs.model}}", "wait on each other's outputs in a cycle"),
    ("inputs.data", None, "the job has no input named data; the contract is a uri_folder input `data`"),
    ("inputs.data", {"type": "uri_file"}, "input data must be a uri_folder"),
    ("outputs.model", None, "the job has no output named model; the contract is an MLflow model output"),
    ("outputs.model", {"type": "uri_file"}, "output model is of type uri_file"),
    ("jobs.fit.type", "sweep", "step fit is a sweep step"),
    ("jobs.prep.component", "azureml:prep:1", "component 'azureml:prep:1' cannot run locally"),
    ("jobs.prep.component", "file:./missing.yml", r"component ./missing.yml\): .*missing.yml does not exist"),
    ("jobs.prep.command", "bash prep.sh", "commands that start with 'python '"),
    ("jobs.prep.command", "python prep.py ${{inputs.missing}}", r"names inputs.missing, which the step does not have"),
    ("jobs.prep.command", "python prep.py ${{name}}", r"the command names \$\{\{name\}\}"),
    ("jobs.prep.code", "./nope", "its code folder ./nope does not exist"),
    ("jobs.Prep-1", {"command": "python x.py"}, "step name 'Prep-1' is not valid"),
    ("type", "spark", "type is 'spark'; a team's training is a command or a pipeline job"),
])
def test_a_spec_outside_the_contract_is_refused_by_its_part(tmp_path, path, value, message):
    spec = _set(team_pipeline(), path, value)
    if message is None:
        plan(tmp_path, spec)
        return
    with pytest.raises(JobError, match=message):
        plan(tmp_path, spec)


def test_a_hyperparameter_must_be_an_input_of_the_team_job(tmp_path):
    with pytest.raises(JobError, match="hyperparameter depth is not an input of the job; its inputs are target, "
                                       "rounds"):
        plan(tmp_path, team_pipeline(), hyperparameters={"depth": "3"})


def test_a_component_file_brings_its_declarations_and_defaults(tmp_path):
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "prep.yml").write_text(yaml.safe_dump({
        "type": "command", "code": ".", "command": "python prep.py --data ${{inputs.data}} --rows ${{outputs.rows}} "
                                                   "--min ${{inputs.min_rows}} $[[--drop ${{inputs.drop}}]]",
        "inputs": {"data": {"type": "uri_folder"}, "min_rows": {"type": "integer", "default": 10},
                   "drop": {"type": "string", "optional": True}},
        "outputs": {"rows": {"type": "uri_folder"}}}, sort_keys=False))
    spec = _set(team_pipeline(), "jobs.prep", {"type": "command", "component": "file:./prep.yml",
                                               "inputs": {"data": "${{parent.inputs.data}}"}})
    prep = plan(tmp_path, spec)[1]
    assert prep["inputs"] == {"data": {"step": "split", "output": "train_data"}, "min_rows": {"value": "10"}}
    with pytest.raises(JobError, match=r"the component has no input target \(its inputs: data, min_rows, "
                                       r"drop\)"):
        plan(tmp_path, _set(spec, "jobs.prep.inputs.target", "${{parent.inputs.target}}"))


def test_submit_refuses_a_bad_spec_at_once_and_a_missing_one(tmp_path):
    jobs = LocalJobs(tmp_path / "jobs", "", publish=None, topic_id="t", resolve_model=lambda ref: None)
    path = tmp_path / "team" / "pipeline.yml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(_set(team_pipeline(), "jobs.fit.inputs.data", "${{parent.jobs.prep.outputs.x}}")))
    request = {"name": "train-m-1", "data": DATA, "target": "label", "model_name": "m", "spec": str(path)}
    with pytest.raises(JobError, match="step prep has no output x"):
        jobs.submit(request)
    assert jobs.get("train-m-1") is None                      # nothing recorded, nothing run
    with pytest.raises(JobError, match="the training spec teams/none.yml does not exist"):
        jobs.submit({**request, "spec": "teams/none.yml"})
    with pytest.raises(JobError, match="data_files entry '../secrets.csv' is not a path under the data folder"):
        jobs.submit({**request, "data_files": ["../secrets.csv"]})
    with pytest.raises(JobError, match="task 'ranking' is not one of classification, regression"):
        jobs.submit({**request, "task": "ranking"})


def test_a_row_window_is_bound_to_the_split_step_as_literals(tmp_path):
    steps = plan(tmp_path, team_pipeline(), window_column="day", window_days=30)
    split = steps[0]
    assert (split["inputs"]["window_column"], split["inputs"]["window_days"]) == ({"value": "day"}, {"value": "30"})
    values = {"inputs": {"data": "/d", "target": "label", "task": "classification", "test_size": "0.2", "seed": "42",
                         "window_column": "day", "window_days": "30"},
              "outputs": {"train_data": "/t", "holdout": "/h"}}
    argv = _argv(split["command"], values, "split")
    assert argv[argv.index("--window-column"):][:4] == ["--window-column", "day", "--window-days", "30"]
    args = split_py.parse_args(argv[2:])                       # a command split.py accepts
    assert (args.window_column, args.window_days) == ("day", 30)
    # without one the inputs stay unset, and the command's group goes
    plain = plan(tmp_path, team_pipeline())[0]
    assert not {"window_column", "window_days"} & set(plain["inputs"])
    values["inputs"] = {k: v for k, v in values["inputs"].items() if not k.startswith("window_")}
    assert "--window-column" not in _argv(plain["command"], values, "split")


def test_train_py_is_given_the_row_window(tmp_path):
    jobs = LocalJobs(tmp_path / "jobs", "", publish=None, topic_id="t", resolve_model=lambda ref: None)

    async def download(url, target, input_name="data", required=True, files=None):
        return target

    jobs._download = download                                  # type: ignore[method-assign]
    base = {"name": "train-m-1", "inputs": {"data": DATA, "target": "label", "model_name": "m", "champion": None},
            "task": "classification", "hyperparameters": {}}
    command = asyncio.run(jobs._command({**base, "window_column": "day", "window_days": 30}))
    assert command[command.index("--window-column"):][:4] == ["--window-column", "day", "--window-days", "30"]
    assert "--window-column" not in asyncio.run(jobs._command({**base, "window_column": "", "window_days": 0}))
    assert "--window-column" not in asyncio.run(jobs._command(base))        # a job recorded before row windows
    request = {"name": "train-m-1", "data": DATA, "target": "label", "model_name": "m"}
    for half in ({"window_column": "day"}, {"window_days": 30}):
        with pytest.raises(JobError, match="give window_column and window_days together"):
            jobs.submit({**request, **half})
    with pytest.raises(JobError, match="a row window is window_column, a column name, and window_days"):
        jobs.submit({**request, "window_column": "day", "window_days": "30"})
    assert jobs.get("train-m-1") is None


def test_a_stopped_pipeline_job_ends_canceled_with_its_running_step(tmp_path):
    async def run():
        published = []

        async def publish(events):
            published.extend(events)
        jobs = LocalJobs(tmp_path, "", publish, "t", resolve_model=lambda ref: None)
        folder = tmp_path / "train-m-1"
        folder.mkdir()
        job = {**job_for("x.yml"), "experiment": "e", "status": "Running", "tags": {}, "error": None,
               "created": "2026-01-01T00:00:00Z", "steps": [{"name": "split", "status": "Completed"},
                                                         {"name": "train", "status": "Running"},
                                                         {"name": "evaluate", "status": "NotStarted"}]}
        (folder / "job.json").write_text(json.dumps(job))
        await jobs.recover()
        return jobs.get("train-m-1"), published

    job, published = asyncio.run(run())
    assert job["status"] == "Canceled" and job["retryable"]
    assert [s["status"] for s in job["steps"]] == ["Completed", "Canceled", "NotStarted"]
    assert len(published) == 1


# -- runs: subprocesses on Azurite ---------------------------------------------------------------------------

FAILING_PREP = """\
import sys
print("prep: reading", sys.argv[2])
print("prep: 455 rows")
raise RuntimeError("the prep step broke on purpose")
"""


def test_a_failing_step_fails_the_job_with_its_name_and_its_log_tail(tmp_path, azurite):
    team = tmp_path / "team"
    team.mkdir()
    (team / "prep.py").write_text(FAILING_PREP)
    (team / "pipeline.yml").write_text(yaml.safe_dump(team_pipeline()))
    data = upload_table(azurite.connection_string, {"cancer.csv": breast_cancer_csv()})
    request = {"name": "train-m-1", "experiment": "mlops-training", "data": data, "target": "label",
               "model_name": "m", "spec": str(team / "pipeline.yml")}
    jobs, published = run_job(tmp_path / "jobs", azurite.connection_string, request, components(tmp_path))

    job = jobs.get("train-m-1")
    assert job["status"] == "Failed"
    assert job["error"].startswith("step train/prep failed: its command exited with code 1: ")
    assert "RuntimeError: the prep step broke on purpose" in job["error"]
    assert [(s["name"], s["status"]) for s in job["steps"]] == [
        ("split", "Completed"), ("train/prep", "Failed"), ("train/fit", "NotStarted"), ("evaluate", "NotStarted")]
    # each step has its own log under the job's folder
    assert "prep: 455 rows" in (jobs.folder("train-m-1") / "user_logs" / "train" / "prep" / "std_log.txt").read_text()
    assert "prep: 455 rows" in jobs.logs("train-m-1", "train/prep")
    assert "== step split (Completed) ==" in jobs.logs("train-m-1")
    with pytest.raises(JobError, match="has no step 'fit': its steps are split, train/prep, train/fit, evaluate"):
        jobs.logs("train-m-1", "fit")
    assert published == ["RunStatusChanged:Running", "RunStatusChanged:Failed"]


def test_a_training_window_downloads_only_its_files(tmp_path, azurite):
    """What a job with data_files reads: the files named, and everything under a folder named with '/'."""
    data = upload_table(azurite.connection_string, {"2025/05/01/a.csv": b"x,label\n1,0\n",
                                                    "2025/05/02/b.csv": b"x,label\n2,1\n",
                                                    "2025/05/02/c.csv": b"x,label\n3,1\n",
                                                    "old/bad.csv": b"no table here\n"})

    async def download(files):
        jobs = LocalJobs(tmp_path / "jobs", azurite.connection_string, None, "t", resolve_model=lambda ref: None)
        target = tmp_path / "inputs" / str(len(files))
        await jobs._download(data, target, files=files)
        return sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())

    assert asyncio.run(download(["2025/05/01/a.csv", "2025/05/02/"])) == [
        "2025/05/01/a.csv", "2025/05/02/b.csv", "2025/05/02/c.csv"]
    assert asyncio.run(download(["old/bad.csv"])) == ["old/bad.csv"]
    with pytest.raises(JobError, match=r"input data: .*/drops/2025/05/03.csv does not exist \(the training window"):
        asyncio.run(download(["2025/05/03.csv"]))
