"""Local jobs, as Azure ML runs them: a training job runs training/train.py in a subprocess with the job's
arguments; a command job (monitoring/job.yml) runs its spec's command with ${{inputs.x}} and ${{outputs.y}}
replaced by local folders. Inputs are downloaded from blob storage first (Azure ML's download mode), logs
are kept, and RunStatusChanged / RunCompleted are published like the workspace's system topic does."""
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
from urllib.parse import unquote, urlparse

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient

from emulator import faults
from emulator.aml.events import run_event
from emulator.azurite import PROJECT_ROOT
from emulator.eventgrid.schema import WireEvent
from emulator.processes import die_with_parent
from emulator.timeline import utcnow_iso

log = logging.getLogger("emulator.aml.jobs")
TRAIN_SCRIPT = PROJECT_ROOT / "training" / "train.py"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
OPTIONAL_GROUP = re.compile(r"\$\[\[(.*?)\]\]")
REFERENCE = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
MODEL_INPUTS = ("mlflow_model", "custom_model")
MAX_ERROR_CHARS = 4000

Publish = Callable[[list[WireEvent]], Awaitable[None]]


class JobError(ValueError):
    """A job request the service would refuse (400)."""


class LocalJobs:
    def __init__(self, root: Path, connection_string: str, publish: Publish, topic_id: str,
                 resolve_model: Callable[[str], Path | None], max_parallel: int = 1) -> None:
        self.root = root
        self._connection_string = connection_string
        self._publish = publish
        self._topic_id = topic_id
        self._resolve_model = resolve_model
        self._slots = asyncio.Semaphore(max_parallel)   # 2 cores: one training run at a time by default
        self._command_slots = asyncio.Semaphore(1)       # and one command job (monitoring) beside it
        self._tasks: set[asyncio.Task] = set()
        self.root.mkdir(parents=True, exist_ok=True)

    # -- records on disk -------------------------------------------------------------------
    def folder(self, name: str) -> Path:
        return self.root / name

    def get(self, name: str) -> dict | None:
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

    def logs(self, name: str) -> str:
        path = self.folder(name) / "user_logs" / "std_log.txt"
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
        existing = self.get(name)
        if existing:
            return existing, False
        self.folder(name).mkdir(parents=True, exist_ok=True)   # may exist from a submission cut short
        job = {"name": name, "experiment": spec.get("experiment") or "Default", "status": "Queued",
               "inputs": {k: spec.get(k) for k in ("data", "target", "model_name", "champion")},
               "hyperparameters": dict(spec.get("hyperparameters") or {}), "tags": dict(spec.get("tags") or {}),
               "error": None, "created": utcnow_iso(), "started": None, "ended": None}
        if command is not None:
            job.update(command=command, inputs=dict(spec.get("inputs") or {}), outputs=dict(spec.get("outputs") or {}))
        self._save(job)
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job, True

    async def _run(self, job: dict) -> None:
        async with self._command_slots if "command" in job else self._slots:
            try:
                await self._set(job, "Running", started=utcnow_iso())
                if "command" in job:
                    command, cwd = await self._command_job(job), PROJECT_ROOT     # code: the project root
                else:
                    command, cwd = await self._command(job), TRAIN_SCRIPT.parent
                code = await self._execute(job, command, cwd)
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
                await self._set(job, "Canceled", ended=utcnow_iso(), retryable=True,
                                error="the local stack stopped during the job")
                raise
            except Exception as error:  # inputs that cannot be fetched etc.: the job fails with the reason
                log.exception("job %s failed before training", job["name"])
                await self._set(job, "Failed", ended=utcnow_iso(), error=str(error))

    async def _set(self, job: dict, status: str, **fields) -> None:
        if fields.get("error") and len(fields["error"]) > MAX_ERROR_CHARS:   # a run's error travels in its events
            fields["error"] = fields["error"][:MAX_ERROR_CHARS] + f"… ({len(fields['error']):,} characters in all)"
        job.update(status=status, **fields)
        self._save(job)
        events = [run_event(self._topic_id, "RunStatusChanged", job)]
        if status == "Completed":
            events.append(run_event(self._topic_id, "RunCompleted", job))
        await self._publish(events)

    async def _command(self, job: dict) -> list[str]:
        folder = self.folder(job["name"])
        inputs = job["inputs"]
        data = await self._download(inputs["data"], folder / "inputs" / "data")
        command = [sys.executable, str(TRAIN_SCRIPT), "--data", str(data), "--target", inputs["target"],
                   "--model-name", inputs["model_name"], "--output", str(folder / "outputs" / "output")]
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

        def group(match: re.Match) -> str:
            named = [n for kind, n in REFERENCE.findall(match[1]) if kind == "inputs"]
            return match[1] if all(n in values["inputs"] for n in named) else ""

        def reference(match: re.Match) -> str:
            if match[2] not in values[match[1]]:
                raise JobError(f"job {job['name']}: the command names {match[1]}.{match[2]}, "
                               f"which the job does not have")
            return shlex.quote(values[match[1]][match[2]])

        argv = shlex.split(REFERENCE.sub(reference, OPTIONAL_GROUP.sub(group, job["command"])))
        return [sys.executable, *argv[1:]]

    async def _execute(self, job: dict, command: list[str], cwd: Path) -> int:
        logs = self.folder(job["name"]) / "user_logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "std_log.txt").open("wb") as out:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            # One thread per job: OpenMP's spinning threads make gradient boosting ~3x slower on 2 busy cores.
            env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            process = await asyncio.create_subprocess_exec(*command, stdout=out, stderr=out, cwd=cwd,
                                                           env=env, preexec_fn=die_with_parent)
            faults.reached("job.running", job["name"])
            try:
                return await process.wait()
            except asyncio.CancelledError:
                process.kill()
                raise

    async def _download(self, url: str, target: Path, input_name: str = "data", required: bool = True) -> Path:
        """Fetch a blob folder (URL ending in '/') or a single blob from storage into the job's inputs. A folder
        not required to hold anything (a command job's input) may be empty, as a mount of it would be."""
        parts = urlparse(url)
        segments = unquote(parts.path).lstrip("/").split("/", 2)   # account / container / path
        if len(segments) < 2:
            raise JobError(f"input {input_name}: {url} is not a blob or folder URL")
        container, prefix = segments[1], segments[2] if len(segments) > 2 else ""
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        async with BlobServiceClient.from_connection_string(self._connection_string) as service:
            client = service.get_container_client(container)
            folder = prefix.endswith("/") or not prefix
            try:
                names = [b.name async for b in client.list_blobs(name_starts_with=prefix)] if folder else [prefix]
            except ResourceNotFoundError:
                names = []                         # no such container
            if folder and not names and not required:
                return target
            for name in names:
                local = target / (name[len(prefix):] if folder else name.rsplit("/", 1)[-1])
                local.parent.mkdir(parents=True, exist_ok=True)
                stream = await client.download_blob(name)
                local.write_bytes(await stream.readall())
                count += 1
        if count == 0:
            raise JobError(f"input {input_name}: nothing found at {url}")
        return target

    async def recover(self) -> list[dict]:
        """Jobs a previous run of the stand-in left Queued or Running: their process died with it (a kill,
        a power cut). They end Canceled, marked retryable, with RunStatusChanged published, as Azure ML
        reports a job whose node was lost; the lifecycle offers their data to a new job."""
        orphans = [job for job in self.list() if job["status"] in ("Queued", "Running")]
        for job in orphans:
            log.warning("job %s was %s when the stand-in stopped: its process is gone", job["name"], job["status"])
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
