"""The local stand-in for an Azure ML registry: models shared between workspaces (preprod shares a model
it promoted, prod deploys it from here), addressed by asset id

    azureml://registries/<registry>/models/<name>/versions/<version>

Versions are kept as a workspace's are (emulator/aml/registry.py): a record per version in a blob container
of their own (`azureml-registry-<name>`) and the files under root/<name>/<version>/model. Azure ML raises no
events for registries, and neither does this.

One registry serves the stand-ins of several environments, each on its own event loop: each loop gets its
own storage client, and what decides between writers is storage itself (a version's record is written only
if absent, tags are changed only over the record they read), never a lock of this process."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from emulator import faults
from emulator.timeline import utcnow_iso

log = logging.getLogger("emulator.aml.shared_registry")
ASSET_ID = re.compile(r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")
STALE_COPY_SECONDS = 3600.0      # a copy this old under a version's folder was cut short by a kill


class SharedRegistryError(ValueError):
    """A request the registry refuses (400), or (status 404) a registry or model it does not have."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def asset_id(registry: str, name: str, version: str) -> str:
    return f"azureml://registries/{registry}/models/{name}/versions/{version}"


def parse_asset_id(ref: str) -> tuple[str, str, str] | None:
    """(registry, name, version) of a registry model's asset id; None for anything else."""
    match = ASSET_ID.match(ref)
    return (match["registry"], match["name"], match["version"]) if match else None


class SharedRegistry:
    def __init__(self, root: Path, connection_string: str, name: str, container: str | None = None) -> None:
        if not _NAME.match(name):
            raise SharedRegistryError(f"registry name {name!r} must be letters, digits, '-', '_' and '.'")
        self.root = Path(root)
        self.name = name
        self.container = container or f"azureml-registry-{name}".lower()[:63]
        self._connection_string = connection_string
        self._clients: dict[asyncio.AbstractEventLoop, BlobServiceClient] = {}
        self._guard = threading.Lock()

    # -- storage clients: one per event loop ---------------------------------------------------------------
    def _records(self) -> ContainerClient:
        loop = asyncio.get_running_loop()
        with self._guard:
            service = self._clients.get(loop)
            if service is None:
                service = self._clients[loop] = BlobServiceClient.from_connection_string(self._connection_string)
        return service.get_container_client(self.container)

    async def start(self) -> None:
        """Make the records' container (if absent) and drop copies a killed share left behind."""
        try:
            await self._records().create_container()
        except ResourceExistsError:
            pass
        await asyncio.to_thread(self._drop_stale_copies)

    async def close(self) -> None:
        """Close the storage client of the running loop (each user of the registry closes its own)."""
        with self._guard:
            service = self._clients.pop(asyncio.get_running_loop(), None)
        if service is not None:
            await service.close()

    # -- models ------------------------------------------------------------------------------------------
    def asset_id(self, name: str, version: str) -> str:
        return asset_id(self.name, name, version)

    def model_dir(self, name: str, version: str) -> Path:
        _check(name, version)
        return self.root / name / str(version) / "model"

    def resolve(self, ref: str) -> Path | None:
        """A model's folder, by asset id (of this registry) or as 'name:version'; None if it has none."""
        parsed = parse_asset_id(ref)
        if parsed:
            registry, name, version = parsed
            if registry != self.name:
                return None
        else:
            name, _, version = ref.partition(":")
        if not (_NAME.match(name) and _VERSION.match(version)):
            return None
        path = self.model_dir(name, version)
        return path if (path / "MLmodel").exists() else None

    async def share(self, source_folder: Path, name: str, version: str, tags: dict[str, str],
                    description: str = "", properties: dict[str, str] | None = None) -> tuple[dict, bool]:
        """Copy a model folder into the registry as name/version. Returns (model, created).

        A version is never changed once it exists: sharing it again returns it as it is. The files go in
        first (copied beside the version's folder, then renamed into place, so the folder is whole or
        absent), then the record; a share cut short between the two is finished by the next one."""
        _check(name, version)
        existing = await self.get(name, version)
        if existing is not None:
            return existing, False
        source = Path(source_folder)
        if not (source / "MLmodel").exists():
            raise SharedRegistryError(f"no MLflow model (MLmodel file) at {source}")
        target = self.model_dir(name, version)
        if not (target / "MLmodel").exists():
            await asyncio.to_thread(_copy_into_place, source, target)
        faults.reached("registry.files", f"{name}:{version}")
        model = {"name": name, "version": str(version), "path": target.resolve().as_uri(), "type": "mlflow_model",
                 "tags": dict(tags), "description": description, "properties": dict(properties or {}),
                 "created": utcnow_iso(), "registry": self.name, "asset_id": self.asset_id(name, version)}
        try:
            await self._write_record(name, version, model)
        except ResourceExistsError:           # another environment's stand-in shared it meanwhile
            found = await self.get(name, version)
            if found is None:
                raise
            return found, False
        faults.reached("registry.shared", f"{name}:{version}")
        return model, True

    async def get(self, name: str, version: str) -> dict | None:
        if not (_NAME.match(name) and _VERSION.match(str(version))):
            return None
        found = await self._read(_record(name, version))
        return found[0] if found else None

    async def versions(self, name: str) -> list[dict]:
        if not _NAME.match(name):
            return []
        models = []
        async for blob in self._records().list_blobs(name_starts_with=f"models/{name}/versions/"):
            found = await self._read(blob.name)
            if found:
                models.append(found[0])
        return sorted(models, key=_version_order)

    async def names(self) -> list[str]:
        found = set()
        async for blob in self._records().list_blobs(name_starts_with="models/"):
            found.add(blob.name.split("/")[1])
        return sorted(found)

    async def update_tags(self, name: str, version: str, tags: dict[str, str]) -> dict:
        """Merge `tags` into the version's tags. Concurrent writers each see the other's tags: a write only
        replaces the record it read, else it reads again."""
        for _ in range(20):
            found = await self._read(_record(name, version)) if _NAME.match(name) and _VERSION.match(version) \
                else None
            if found is None:
                raise SharedRegistryError(f"model {name}:{version} is not in registry {self.name}", 404)
            model, etag = found
            model["tags"] = {**model.get("tags", {}), **{str(k): str(v) for k, v in tags.items()}}
            try:
                await self._records().upload_blob(_record(name, version), json.dumps(model, indent=1),
                                                   overwrite=True, etag=etag,
                                                   match_condition=MatchConditions.IfNotModified)
                return model
            except ResourceModifiedError:
                await asyncio.sleep(0.01)
        raise SharedRegistryError(f"model {name}:{version}: its tags kept changing under this update; try again", 409)

    # -- records -----------------------------------------------------------------------------------------
    async def _write_record(self, name: str, version: str, model: dict) -> None:
        """Create the version's record; ResourceExistsError if it exists (whoever wrote it first wins)."""
        await self._records().upload_blob(_record(name, version), json.dumps(model, indent=1), overwrite=False)

    async def _read(self, blob: str) -> tuple[dict, str] | None:
        try:
            downloader = await self._records().download_blob(blob)
            return json.loads(await downloader.readall()), downloader.properties.etag
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:
            if (error.status_code or 0) < 500:
                raise
            log.warning("registry record %s is unreadable (%s): skipped", blob, error.reason)
            return None

    def _drop_stale_copies(self) -> None:
        cutoff = time.time() - STALE_COPY_SECONDS
        for copy in self.root.glob("*/*/.model.*.tmp"):
            try:
                if copy.stat().st_mtime < cutoff:
                    shutil.rmtree(copy, ignore_errors=True)
            except FileNotFoundError:
                pass


def _record(name: str, version: str) -> str:
    return f"models/{name}/versions/{version}.json"


def _check(name: str, version: str) -> None:
    if not _NAME.match(name):
        raise SharedRegistryError(f"model name {name!r} must start with a letter or digit and hold only letters, "
                                  "digits, '-', '_' and '.'")
    if not _VERSION.match(str(version)):
        raise SharedRegistryError(f"model version {version!r} must start with a letter or digit and hold only "
                                  "letters, digits, '-', '_' and '.'")


def _version_order(model: dict) -> tuple:
    version = str(model["version"])
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def _copy_into_place(source: Path, target: Path) -> None:
    """Copy `source` to `target` so that `target` appears whole or not at all: into a fresh folder beside
    it, then renamed. If another writer's copy got there first, that one stays (it is the same model)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    copy = target.parent / f".model.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copytree(source, copy)
        try:
            copy.rename(target)
        except OSError:
            if not (target / "MLmodel").exists():
                raise
    finally:
        shutil.rmtree(copy, ignore_errors=True)
