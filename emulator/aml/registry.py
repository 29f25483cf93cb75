"""The local model registry: versions kept in blob storage with the fields Azure ML keeps, artifacts
copied from the job's output, and ModelRegistered published like the workspace does."""
from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient

from emulator.aml.events import model_registered
from emulator.eventgrid.schema import WireEvent
from emulator.timeline import utcnow_iso

CONTAINER = "azureml-registry"
Publish = Callable[[list[WireEvent]], Awaitable[None]]


class RegistryError(ValueError):
    pass


class LocalRegistry:
    def __init__(self, root: Path, connection_string: str, publish: Publish, topic_id: str,
                 job_output: Callable[[str], Path]) -> None:
        self.root = root
        self._service = BlobServiceClient.from_connection_string(connection_string)
        self._container = self._service.get_container_client(CONTAINER)
        self._publish = publish
        self._topic_id = topic_id
        self._job_output = job_output
        self._lock = asyncio.Lock()   # one registration at a time: version numbers stay dense

    async def start(self) -> None:
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass

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
        (like `az ml model create --path`). Returns (model, created)."""
        if not job_name and not path:
            raise RegistryError("give the job whose output to register, or a local model folder")
        async with self._lock:
            known = await self._read(f"models/{name}/jobs/{job_name}.json") if job_name else None
            if known:
                return await self.get(name, known["version"]), False
            source = self._job_output(job_name) if job_name else Path(path)
            if not (source / "MLmodel").exists():
                where = f"azureml://jobs/{job_name}/outputs/output/paths/model" if job_name else str(source)
                raise RegistryError(f"no MLflow model (MLmodel file) at {where}")
            versions = await self.versions(name)
            version = str(max((int(v["version"]) for v in versions), default=0) + 1)
            await asyncio.to_thread(shutil.copytree, source, self.model_dir(name, version))
            uri = f"azureml://jobs/{job_name}/outputs/output/paths/model" if job_name else source.resolve().as_uri()
            model = {"name": name, "version": version, "path": uri, "type": "mlflow_model",
                     "tags": {**tags, "mlops.job": job_name} if job_name else dict(tags), "description": description,
                     "properties": {}, "created": utcnow_iso()}
            await self._write(f"models/{name}/versions/{version}.json", model, new=True)
            if job_name:
                await self._write(f"models/{name}/jobs/{job_name}.json", {"version": version}, new=True)
        await self._publish([model_registered(self._topic_id, model)])
        return model, True

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

    async def _write(self, blob: str, body: dict, *, new: bool) -> None:
        await self._container.upload_blob(blob, json.dumps(body, indent=1), overwrite=not new)
