"""The local model registry: versions kept in blob storage with the fields Azure ML keeps, artifacts
copied from the job's output, and ModelRegistered published like the workspace does. Each version is also
created in the stand-in's MLflow model registry (tracking.py), linked to the run of the job it came from."""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient

from emulator import faults
from emulator.aml.events import model_registered
from emulator.aml.tracking import Tracking
from emulator.eventgrid.schema import WireEvent
from emulator.timeline import utcnow_iso

log = logging.getLogger("emulator.aml.registry")
CONTAINER = "azureml-registry"
Publish = Callable[[list[WireEvent]], Awaitable[None]]


class RegistryError(ValueError):
    pass


class LocalRegistry:
    def __init__(self, root: Path, connection_string: str, publish: Publish, topic_id: str,
                 job_output: Callable[[str], Path], container: str = CONTAINER, tracking: Tracking | None = None,
                 job_run: Callable[[str], str | None] = lambda job: None) -> None:
        """`container`: the blob container of the records; stand-ins sharing one Azurite each have their own.
        `tracking`: the MLflow store whose model registry mirrors this one; `job_run`: a job's MLflow run id."""
        self.root = root
        self._service = BlobServiceClient.from_connection_string(connection_string)
        self._container = self._service.get_container_client(container)
        self._publish = publish
        self._topic_id = topic_id
        self._job_output = job_output
        self._tracking = tracking
        self._job_run = job_run
        self._lock = asyncio.Lock()   # one registration at a time: version numbers stay dense

    async def start(self) -> None:
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass
        await self._announce_unpublished()

    async def _announce_unpublished(self) -> None:
        """Versions whose ModelRegistered a previous run never got out (killed in between): publish it now.
        At least once, as Azure ML's events are; versions stored before this flag existed count as announced."""
        for name in await self.names():
            for model in await self.versions(name):
                if model.get("published", True) is False:
                    await self._announce(model)

    async def close(self) -> None:
        await self._service.close()

    def model_dir(self, name: str, version: str) -> Path:
        return self.root / name / str(version) / "model"

    def resolve(self, ref: str) -> Path | None:
        """'name:version' → the registered model's folder, if it exists."""
        name, _, version = ref.partition(":")
        path = self.model_dir(name, version)
        return path if path.exists() else None

    async def register(self, name: str, job_name: str | None, tags: dict[str, str], description: str = "",
                       path: str | None = None) -> tuple[dict, bool]:
        """Register a job's model output (the same job registers once), or a model folder on this machine
        (like `az ml model create --path`). Returns (model, created).

        Each step can be cut short by a kill and done again: the job's claim on a version number is written
        first, then the files (copied over whatever a cut-short attempt left), then the version's record,
        then the event; a second call for the job finishes what the first one began."""
        if not job_name and not path:
            raise RegistryError("give the job whose output to register, or a local model folder")
        async with self._lock:
            claim = await self._read(f"models/{name}/jobs/{job_name}.json") if job_name else None
            if claim:
                model = await self.get(name, claim["version"])
                if model is not None:
                    if model.get("published", True) is False:     # cut short before its MLflow version too?
                        await self._track(model, job_name)
                        await self._announce(model)
                    return model, False
            source = self._job_output(job_name) if job_name else Path(path)
            if not (source / "MLmodel").exists():
                where = f"azureml://jobs/{job_name}/outputs/output/paths/model" if job_name else str(source)
                raise RegistryError(f"no MLflow model (MLmodel file) at {where}")
            version = claim["version"] if claim else await self._next_version(name)
            if job_name and not claim:
                await self._write(f"models/{name}/jobs/{job_name}.json", {"version": version}, new=True)
            target = self.model_dir(name, version)
            await asyncio.to_thread(shutil.rmtree, target, True)        # this claim's own copy, cut short
            await asyncio.to_thread(shutil.copytree, source, target)
            uri = f"azureml://jobs/{job_name}/outputs/output/paths/model" if job_name else source.resolve().as_uri()
            model = {"name": name, "version": version, "path": uri, "type": "mlflow_model",
                     "tags": {**tags, "mlops.job": job_name} if job_name else dict(tags), "description": description,
                     "properties": {}, "created": utcnow_iso(), "published": False}
            await self._write(f"models/{name}/versions/{version}.json", model, new=False)
            await self._track(model, job_name)
            faults.reached("model.registered", f"{name}:{version}")
            await self._announce(model)
        return model, True

    async def _track(self, model: dict, job_name: str | None) -> None:
        """The version in the MLflow registry too, from its job's run (a folder registered: from the stand-in's
        copy). Idempotent: a registration done again finds it. A tracking failure is a warning only."""
        if self._tracking is None:
            return
        run_id = self._job_run(job_name) if job_name else None
        await asyncio.to_thread(self._tracking.register_version, model["name"], model["version"], run_id,
                                self.model_dir(model["name"], model["version"]), model["tags"])

    async def _next_version(self, name: str) -> str:
        """One past the highest version recorded, claimed or on disk. A number whose records were lost
        (Azurite keeps its metadata in memory for a few seconds) is skipped, never reused: a deployment
        restored from it must keep serving the files it had."""
        recorded = [int(v["version"]) for v in await self.versions(name)]
        claimed = [int(c["version"]) async for c in self._claims(name)]
        folders = [int(p.name) for p in (self.root / name).glob("*") if p.name.isdigit()] \
            if (self.root / name).is_dir() else []
        return str(max(recorded + claimed + folders, default=0) + 1)

    async def _claims(self, name: str):
        async for blob in self._container.list_blobs(name_starts_with=f"models/{name}/jobs/"):
            found = await self._read(blob.name)
            if found and str(found.get("version", "")).isdigit():
                yield found

    async def _announce(self, model: dict) -> None:
        await self._publish([model_registered(self._topic_id, {k: v for k, v in model.items() if k != "published"})])
        model["published"] = True
        await self._write(f"models/{model['name']}/versions/{model['version']}.json", model, new=False)

    async def get(self, name: str, version: str) -> dict | None:
        return await self._read(f"models/{name}/versions/{version}.json")

    async def versions(self, name: str) -> list[dict]:
        models = []
        async for blob in self._container.list_blobs(name_starts_with=f"models/{name}/versions/"):
            models.append(await self._read(blob.name))
        return sorted((m for m in models if m), key=lambda m: int(m["version"]))

    async def names(self) -> list[str]:
        found = set()
        async for blob in self._container.list_blobs(name_starts_with="models/"):
            found.add(blob.name.split("/")[1])
        return sorted(found)

    async def update_tags(self, name: str, version: str, tags: dict[str, str]) -> dict:
        async with self._lock:
            model = await self.get(name, version)
            if model is None:
                raise RegistryError(f"model {name}:{version} is not registered")
            model["tags"] = {**model["tags"], **tags}
            await self._write(f"models/{name}/versions/{version}.json", model, new=False)
            return model

    async def _read(self, blob: str) -> dict | None:
        try:
            return json.loads(await (await self._container.download_blob(blob)).readall())
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:
            if (error.status_code or 0) < 500:
                raise
            # Azurite killed between saving a blob's record and its data answers 500 for it from then on
            log.warning("registry record %s is unreadable (%s): skipped", blob, error.reason)
            return None

    async def _write(self, blob: str, body: dict, *, new: bool) -> None:
        await self._container.upload_blob(blob, json.dumps(body, indent=1), overwrite=not new)
