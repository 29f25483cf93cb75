"""Local jobs, as Azure ML runs them: a training job runs training/train.py in a subprocess with the job's arguments; a
command job (monitoring/job.yml) runs its spec's command with ${{inputs.x}} and ${{outputs.y}} replaced by local
folders; a training job with a team's spec (a command or pipeline job YAML: bring your own training) runs as the
pipeline the Azure adapter submits: our split step, the team's steps, our evaluation step (planned by
team_pipelines.py), each a subprocess in dependency order with its outputs wired to the inputs that name them.
Inputs are downloaded from blob storage first (job_inputs.py: Azure ML's download mode; of a training window only
its files), logs are kept (one per step), and RunStatusChanged / RunCompleted are published like the workspace's
system topic does. Each job's process tree is measured while it runs (job.json's "usage", job_usage.py), and each
job is an MLflow run in the stand-in's tracking store (tracking.py), its steps child runs."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from emulator import faults
from emulator.aml.events import run_event
from emulator.aml.job_inputs import check_window, download, folder_and_window, holdout_manifest
from emulator.aml.job_usage import TreeMeter, combined
from emulator.aml.team_pipelines import COMPONENTS, REFERENCE, JobError, spec_path, wrapped_steps
from emulator.aml.tracking import Tracking, compute_metrics
from emulator.azurite import PROJECT_ROOT
from emulator.eventgrid.schema import WireEvent
from emulator.processes import die_with_parent
from emulator.timeline import utcnow_iso
from lifecycle.core.platform_values import seconds_between

log = logging.getLogger("emulator.aml.jobs")
TRAIN_SCRIPT = PROJECT_ROOT / "training" / "train.py"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
OPTIONAL_GROUP = re.compile(r"\$\[\[(.*?)\]\]")
MODEL_INPUTS = ("mlflow_model", "custom_model")
MAX_ERROR_CHARS = 4000
TERMINAL = ("Completed", "Failed", "Canceled")

Publish = Callable[[list[WireEvent]], Awaitable[None]]


class LocalJobs:
    def __init__(self, root: Path, connection_string: str, publish: Publish, topic_id: str,
                 resolve_model: Callable[[str], Path | None], max_parallel: int = 1,
                 components: Path = COMPONENTS, tracking: Tracking | None = None) -> None:
        """`components`: the folder of our split.yml and evaluate.yml, which wrap a team's training.
        `tracking`: the MLflow tracking store jobs log into (None: no tracking)."""
        self.root = root
        self._components = components
        self._connection_string = connection_string
        self._publish = publish
        self._topic_id = topic_id
        self._resolve_model = resolve_model
        self._slots = asyncio.Semaphore(max_parallel)   # 2 cores: one training run at a time by default
        self._command_slots = asyncio.Semaphore(1)       # and one command job (monitoring) beside it
        self._tasks: set[asyncio.Task] = set()
        self._tracking = tracking
        self._active: dict[str, dict] = {}                # jobs running here: a tag update goes into their record
        self.root.mkdir(parents=True, exist_ok=True)

    # -- records on disk -------------------------------------------------------------------
    def folder(self, name: str) -> Path:
        return self.root / name

    def get(self, name: str) -> dict | None:
        if name in self._active:
            return self._active[name]
        path = self.folder(name) / "job.json"
        return json.loads(path.read_text()) if path.exists() else None

    def list(self) -> list[dict]:
        jobs = [self.get(p.name) for p in self.root.iterdir() if (p / "job.json").exists()]
        return sorted(jobs, key=lambda j: j["created"])

    def _save(self, job: dict) -> None:
        path = self.folder(job["name"]) / "job.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(job, indent=1))
        os.replace(tmp, path)

    def metrics(self, name: str) -> dict | None:
        path = self.folder(name) / "outputs" / "output" / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    def model_dir(self, name: str) -> Path:
        return self.folder(name) / "outputs" / "output" / "model"

    def output_file(self, name: str, output: str, path: str) -> bytes | None:
        """A file of a job's named output folder (None if absent; a path leaving the folder is refused)."""
        folder = (self.folder(name) / "outputs" / output).resolve()
        file = (folder / path).resolve()
        if not file.is_relative_to(folder) or folder.parent != (self.folder(name) / "outputs").resolve():
            raise JobError(f"job {name}: {output}/{path} is not a file of an output folder")
        return file.read_bytes() if file.is_file() else None

    def logs(self, name: str, step: str | None = None) -> str:
        """The job's log; of a pipeline job, one step's (`step`), or each step's under a header line."""
        job = self.get(name)
        if job and job.get("steps"):
            if step is None:
                return "".join(f"== step {s['name']} ({s['status']}) ==\n{self._step_log(name, s)}"
                               for s in job["steps"])
            found = [s for s in job["steps"] if s["name"] == step]
            if not found:
                raise JobError(f"job {name} has no step {step!r}: its steps are "
                               f"{', '.join(s['name'] for s in job['steps'])}")
            return self._step_log(name, found[0])
        if step is not None:
            raise JobError(f"job {name} is not a pipeline job: it has no steps")
        path = self.folder(name) / "user_logs" / "std_log.txt"
        return path.read_text(errors="replace") if path.exists() else ""

    def _step_log(self, name: str, step: dict) -> str:
        path = self.folder(name) / "user_logs" / step["name"] / "std_log.txt"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- submission ------------------------------------------------------------------------
    def submit(self, spec: dict) -> tuple[dict, bool]:
        """Create the job unless one of that name exists; returns (job, created). Runs in the background."""
        name = spec.get("name", "")
        if not NAME.match(name):
            raise JobError(f"job name {name!r} is not valid: letters, digits, '_' and '-', starting with a letter")
        command = spec.get("command")
        if command is not None:
            _check_command_job(name, spec)
        else:
            for key in ("data", "target", "model_name"):
                if not spec.get(key):
                    raise JobError(f"job {name}: input '{key}' is required")
            check_window(name, spec)
        existing = self.get(name)
        if existing:
            return existing, False
        job = {"name": name, "experiment": spec.get("experiment") or "Default", "status": "Queued",
               "inputs": {k: spec.get(k) for k in ("data", "target", "model_name", "champion")},
               "hyperparameters": dict(spec.get("hyperparameters") or {}), "tags": dict(spec.get("tags") or {}),
               "error": None, "created": utcnow_iso(), "started": None, "ended": None}
        if command is not None:
            job.update(command=command, inputs=dict(spec.get("inputs") or {}), outputs=dict(spec.get("outputs") or {}))
        else:
            job.update(task=spec.get("task") or "classification", data_files=list(spec.get("data_files") or []),
                       holdout_files=list(spec.get("holdout_files") or []),
                       window_column=spec.get("window_column") or "", window_days=int(spec.get("window_days") or 0))
        if command is None and spec.get("spec"):
            # The plan is made (and the spec refused) now, as Azure ML validates a pipeline when it is submitted.
            job["spec"] = str(spec["spec"])
            job["steps"] = wrapped_steps(spec_path(name, spec["spec"]), job, self._components)
        self.folder(name).mkdir(parents=True, exist_ok=True)   # may exist from a submission cut short
        self._save(job)
        self._active[name] = job
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job, True

    async def tag(self, name: str, tags: dict[str, str]) -> dict | None:
        """Add tags to a job (None if there is no such job), and to its MLflow run: in Azure ML a job's tags
        are its run's."""
        job = self.get(name)
        if job is None:
            return None
        job["tags"] = {**(job.get("tags") or {}), **{k: str(v) for k, v in tags.items()}}
        self._save(job)
        if self._tracking is not None and job.get("mlflow_run_id"):
            await asyncio.to_thread(self._tracking.set_tags, job["mlflow_run_id"], tags)
        return job

    async def _run(self, job: dict) -> None:
        try:
            await self._run_in_slot(job)
        finally:
            self._active.pop(job["name"], None)

    async def _run_in_slot(self, job: dict) -> None:
        async with self._command_slots if "command" in job else self._slots:
            try:
                await self._set(job, "Running", started=utcnow_iso())
                env = await self._start_run(job)
                if job.get("steps"):
                    await self._pipeline(job)
                    return
                if "command" in job:
                    command, cwd = await self._command_job(job), PROJECT_ROOT     # code: the project root
                else:
                    command, cwd = await self._command(job), TRAIN_SCRIPT.parent
                code = await self._execute(job, command, cwd, self.folder(job["name"]) / "user_logs", job, env)
                if code == 0:
                    await self._set(job, "Completed", ended=utcnow_iso())
                else:
                    error = _error_from(self.logs(job["name"]), code, "the job's command" if "command" in job
                                        else "train.py")
                    if "command" not in job:
                        # Name the file as the user knows it: the blob, not the job's local copy.
                        local = str(self.folder(job["name"]) / "inputs" / "data")
                        error = error.replace(local, job["inputs"]["data"].rstrip("/"))
                    await self._set(job, "Failed", ended=utcnow_iso(), error=error)
            except asyncio.CancelledError:
                _end_steps(job, "Canceled")
                await self._set(job, "Canceled", ended=utcnow_iso(), retryable=True,
                                error="the local stack stopped during the job")
                raise
            except Exception as error:  # inputs that cannot be fetched etc.: the job fails with the reason
                log.exception("job %s failed before training", job["name"])
                _end_steps(job, "Failed")
                await self._set(job, "Failed", ended=utcnow_iso(), error=str(error))

    async def _set(self, job: dict, status: str, **fields) -> None:
        if fields.get("error") and len(fields["error"]) > MAX_ERROR_CHARS:   # a run's error travels in its events
            fields["error"] = fields["error"][:MAX_ERROR_CHARS] + f"… ({len(fields['error']):,} characters in all)"
        if status in TERMINAL:
            if job.get("steps"):
                fields["usage"] = combined([s.get("usage") for s in job["steps"]])
            # the runs end first: a job seen ended has its run ended, and a stop in between leaves it unended
            await self._end_runs({**job, "status": status, **fields})
        job.update(status=status, **fields)
        self._save(job)
        events = [run_event(self._topic_id, "RunStatusChanged", job)]
        if status == "Completed":
            events.append(run_event(self._topic_id, "RunCompleted", job))
        await self._publish(events)

    async def _command(self, job: dict) -> list[str]:
        folder = self.folder(job["name"])
        inputs = job["inputs"]
        data = await self._download(inputs["data"], folder / "inputs" / "data", files=job.get("data_files"))
        command = [sys.executable, str(TRAIN_SCRIPT), "--data", str(data), "--target", inputs["target"],
                   "--model-name", inputs["model_name"], "--output", str(folder / "outputs" / "output")]
        if job.get("task"):
            command += ["--task", job["task"]]
        if job.get("holdout_files"):
            command += ["--holdout-files", str(holdout_manifest(folder, job["holdout_files"]))]
        if job.get("window_column"):
            command += ["--window-column", job["window_column"], "--window-days", str(job["window_days"])]
        if inputs.get("champion"):
            champion = self._resolve_model(inputs["champion"])
            if champion is None:
                raise JobError(f"input champion_model: model {inputs['champion']} is not registered")
            command += ["--champion-model", str(champion)]
        for key, value in job["hyperparameters"].items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        return command

    async def _command_job(self, job: dict) -> list[str]:
        """The spec's command with its inputs downloaded and its references replaced by local paths (quoted);
        an optional $[[...]] group stays only when every input it names is given, as in Azure ML."""
        folder = self.folder(job["name"])
        values: dict[str, dict[str, str]] = {"inputs": {}, "outputs": {}}
        for name, given in job["inputs"].items():
            if not isinstance(given, dict):
                values["inputs"][name] = str(given)                      # a literal
            elif given.get("type") in MODEL_INPUTS:
                path = str(given.get("path", ""))       # azureml:<name>:<version>, or a registry's asset id
                model = self._resolve_model(path if path.startswith("azureml://") else path.removeprefix("azureml:"))
                if model is None:
                    raise JobError(f"input {name}: model {given.get('path')} is not registered")
                values["inputs"][name] = str(model)
            else:
                local = await self._download(given.get("path", ""), folder / "inputs" / name, name, required=False)
                values["inputs"][name] = str(local)
        for name in job.get("outputs") or {}:
            (folder / "outputs" / name).mkdir(parents=True, exist_ok=True)
            values["outputs"][name] = str(folder / "outputs" / name)
        argv = _argv(job["command"], values, f"job {job['name']}")
        return [sys.executable, *argv[1:]]

    # -- a team's training as a pipeline: split → the team's steps → evaluate -------------------------------
    async def _pipeline(self, job: dict) -> None:
        """Run the wrapped pipeline's steps one at a time, in the order planned (a topological one: 2 cores);
        the first step that fails fails the job, naming the step, and the steps after it never start."""
        folder = self.folder(job["name"])
        inputs = job["inputs"]
        data_url, files = folder_and_window(inputs["data"], job.get("data_files") or [])
        local: dict[str, str] = {"data": str(await self._download(data_url, folder / "inputs" / "data",
                                                                  files=files))}
        if inputs.get("champion"):
            champion = self._resolve_model(inputs["champion"])
            if champion is None:
                raise JobError(f"input champion_model: model {inputs['champion']} is not registered")
            local["champion"] = str(champion)
        if job.get("holdout_files"):
            local["holdout_files"] = str(holdout_manifest(folder, job["holdout_files"]))
        outputs = {step["name"]: step["outputs"] for step in job["steps"]}
        for step in job["steps"]:
            values: dict[str, dict[str, str]] = {"inputs": {}, "outputs": {}}
            for name, bound in step["inputs"].items():
                if "value" in bound:
                    values["inputs"][name] = bound["value"]
                elif "step" in bound:
                    values["inputs"][name] = str(folder / outputs[bound["step"]][bound["output"]])
                elif bound["job"] in local:            # a job input the request gave (the champion is optional)
                    values["inputs"][name] = local[bound["job"]]
            for name, path in step["outputs"].items():
                (folder / path).mkdir(parents=True, exist_ok=True)
                values["outputs"][name] = str(folder / path)
            argv = _argv(step["command"], values, f"job {job['name']}, step {step['name']}")
            step.update(status="Running", started=utcnow_iso())
            env = await self._start_run(job, step)
            self._save(job)
            code = await self._execute(job, [sys.executable, *argv[1:]], Path(step["code"]),
                                       folder / "user_logs" / step["name"], step, env)
            step.update(status="Completed" if code == 0 else "Failed", ended=utcnow_iso())
            if code != 0:
                error = _error_from(self._step_log(job["name"], step), code, "its command")
                # Name the data as the user knows it: the blob, not the job's local copy.
                error = error.replace(local["data"], data_url.rstrip("/"))
                await self._set(job, "Failed", ended=utcnow_iso(), error=f"step {step['name']} failed: {error}")
                return
            self._save(job)
        await self._set(job, "Completed", ended=utcnow_iso())

    async def _execute(self, job: dict, command: list[str], cwd: Path, logs: Path, record: dict,
                       tracking_env: dict[str, str]) -> int:
        """Run one process of the job; its measured usage goes into `record` (the job's, or its step's)."""
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "std_log.txt").open("wb") as out:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            # One thread per job: OpenMP's spinning threads make gradient boosting ~3x slower on 2 busy cores.
            # Without a run of its own the process must not log into one the stand-in's environment names.
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **tracking_env}
            process = await asyncio.create_subprocess_exec(*command, stdout=out, stderr=out, cwd=cwd,
                                                           env=env, preexec_fn=die_with_parent)
            meter = TreeMeter(process.pid)
            sampling = asyncio.get_running_loop().create_task(meter.run())
            faults.reached("job.running", job["name"])
            try:
                return await process.wait()
            except asyncio.CancelledError:
                process.kill()
                raise
            finally:
                sampling.cancel()
                await asyncio.gather(sampling, return_exceptions=True)
                try:
                    record["usage"] = meter.usage()
                except Exception:             # measuring is best effort: the job's outcome stands without it
                    log.warning("job %s: could not read its usage", job["name"], exc_info=True)

    # -- MLflow tracking: a run per job, a child run per pipeline step -----------------------------------
    async def _start_run(self, job: dict, step: dict | None = None) -> dict[str, str]:
        """Create the job's (or step's) MLflow run; returns the env its process logs into the run with
        ({} without a tracking store, or if it cannot be written: the job runs untracked)."""
        if self._tracking is None or (step is not None and not job.get("mlflow_run_id")):
            return {}
        created = await asyncio.to_thread(self._tracking.start_run, job, step)
        if created is None:
            return {}
        run_id, experiment_id = created
        (step if step is not None else job)["mlflow_run_id"] = run_id
        self._save(job)
        return self._tracking.env(run_id, experiment_id)

    async def _end_runs(self, job: dict) -> None:
        """At the job's end: its steps' runs and its own take their status and compute.* metrics."""
        if self._tracking is None:
            return
        for step in job.get("steps") or ():
            if step.get("mlflow_run_id"):
                await asyncio.to_thread(self._tracking.end_run, step["mlflow_run_id"], step["status"],
                                        compute_metrics(step), step.get("ended"))
        if job.get("mlflow_run_id"):
            queue = seconds_between(job.get("created"), job.get("started"))
            await asyncio.to_thread(self._tracking.end_run, job["mlflow_run_id"], job["status"],
                                    compute_metrics(job, queue), job.get("ended"))

    async def _download(self, url: str, target: Path, input_name: str = "data", required: bool = True,
                        files: list[str] | None = None) -> Path:
        return await download(self._connection_string, url, target, input_name, required, files)

    async def recover(self) -> list[dict]:
        """Jobs a previous run of the stand-in left Queued or Running: their process died with it (a kill,
        a power cut). They end Canceled, marked retryable, with RunStatusChanged published, as Azure ML
        reports a job whose node was lost; the lifecycle offers their data to a new job."""
        orphans = [job for job in self.list() if job["status"] in ("Queued", "Running")]
        for job in orphans:
            log.warning("job %s was %s when the stand-in stopped: its process is gone", job["name"], job["status"])
            _end_steps(job, "Canceled")
            await self._set(job, "Canceled", ended=utcnow_iso(), retryable=True,
                            error=f"the job's process is gone: the local stack stopped while it was {job['status']}")
        return orphans

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _check_command_job(name: str, spec: dict) -> None:
    command = spec.get("command")
    if not isinstance(command, str) or not command.strip().startswith("python "):
        raise JobError(f"job {name}: the local stand-in runs commands that start with 'python ', not {command!r}")
    for key in ("inputs", "outputs"):
        if not isinstance(spec.get(key) or {}, dict):
            raise JobError(f"job {name}: {key} must be an object of name: value")


def _error_from(logs: str, code: int, what: str = "train.py") -> str:
    """train.py and monitoring/run.py report bad input as one 'error: ...' line; otherwise the log's last lines
    say what happened."""
    errors = [line[len("error: "):] for line in logs.splitlines() if line.startswith("error: ")]
    if errors:
        return errors[-1]
    tail = [line for line in logs.strip().splitlines()[-5:] if line.strip()]
    return f"{what} exited with code {code}: " + " | ".join(tail)


def _argv(command: str, values: dict[str, dict[str, str]], what: str) -> list[str]:
    """A spec's command with its references replaced by local paths and values (quoted); an optional $[[...]]
    group stays only when every input it names is given, as in Azure ML."""
    def group(match: re.Match) -> str:
        named = [n for kind, n in REFERENCE.findall(match[1]) if kind == "inputs"]
        return match[1] if all(n in values["inputs"] for n in named) else ""

    def reference(match: re.Match) -> str:
        if match[2] not in values[match[1]]:
            raise JobError(f"{what}: the command names {match[1]}.{match[2]}, which the job does not have")
        return shlex.quote(values[match[1]][match[2]])

    return shlex.split(REFERENCE.sub(reference, OPTIONAL_GROUP.sub(group, command)))


def _end_steps(job: dict, status: str) -> None:
    """Steps a job's end cut short take its status (those never started stay NotStarted, as in Azure ML)."""
    for step in job.get("steps") or ():
        if step["status"] in ("Queued", "Running"):
            step.update(status=status, ended=utcnow_iso())
