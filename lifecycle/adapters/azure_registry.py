"""The Registry port on the Azure ML workspace's model registry (or, with `registry_name`, on the Azure ML
registry production deploys from), through azure-ai-ml; and the SharedRegistry port preprod shares into.

A model is registered from its training job's output (azureml://jobs/<job>/outputs/output/paths/model), never
from a local path, and tagged with the job: a replayed RunCompleted finds the version already registered."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lifecycle.adapters.azure_workspace import AzureMLAdapterError, WorkspaceClient, created_at
from lifecycle.core.platform_values import ModelReference, ModelVersion

log = logging.getLogger(__name__)

JOB_TAG = "mlops.job"
MODEL_FOLDER = "azureml://jobs/{job}/outputs/output/paths/model"     # train.py saves the MLflow model in output/model


class AzureMLRegistry(WorkspaceClient):

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a registered version's files never change: the monitor timer asks for the same one every tick
        self._references: dict[tuple[str, str], ModelReference] = {}

    def register(self, name: str, job_name: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        if self.registry_name:
            raise AzureMLAdapterError(f"registry {self.registry_name} takes models shared from a workspace, "
                                      "not a job's output")
        for existing in self._list(name):
            if (existing.tags or {}).get(JOB_TAG) == job_name:
                return _version(existing)
        from azure.ai.ml.entities import Model
        model = Model(name=name, path=MODEL_FOLDER.format(job=job_name), type="mlflow_model",
                      tags={**tags, JOB_TAG: job_name}, description=description or None)
        created = self.ml_client.models.create_or_update(model)
        log.info("registered model %s:%s from job %s", created.name, created.version, job_name)
        return _version(created)

    def get(self, name: str, version: str) -> ModelVersion | None:
        model = self._get(name, version)
        return _version(model, self.registry_name) if model is not None else None

    def versions(self, name: str) -> list[ModelVersion]:
        return sorted((_version(m, self.registry_name) for m in self._list(name)), key=lambda m: _number(m.version))

    def update_tags(self, name: str, version: str, tags: dict[str, str]) -> ModelVersion:
        """Merge `tags` into the version's tags (the champion/challenger aliases move this way)."""
        model = self._get(name, version)
        if model is None:
            raise AzureMLAdapterError(f"model {name}:{version} is not registered in workspace {self.workspace_name}")
        if all((model.tags or {}).get(k) == v for k, v in tags.items()):
            return _version(model, self.registry_name)
        model.tags = {**(model.tags or {}), **tags}
        return _version(self.ml_client.models.create_or_update(model), self.registry_name)

    def reference_sample(self, name: str, version: str, rows: int) -> list[dict]:
        """reference/sample.csv from the registered model's files (downloaded from its storage)."""
        import csv
        with self._downloaded(name, version) as folder:
            found = next(folder.rglob("reference/sample.csv"), None) if folder else None
            if found is None:
                return []
            with found.open(newline="") as sample:
                return [{k: _value(v) for k, v in row.items()} for _, row in zip(range(rows), csv.DictReader(sample))]

    def reference(self, name: str, version: str) -> ModelReference | None:
        """reference/profile.json and the metrics.json beside MLmodel, from the registered model's files; None if
        the model or its profile is missing (metrics {} if only metrics.json is)."""
        if (name, str(version)) in self._references:
            return self._references[(name, str(version))]
        from training.reference_files import read_reference  # plain JSON: no numpy in the Function App
        with self._downloaded(name, version) as folder:
            try:
                read = read_reference(folder) if folder else None
            except ValueError as err:
                raise AzureMLAdapterError(f"model {name}:{version} in workspace {self.workspace_name} has an "
                                          f"unreadable reference/profile.json or metrics.json: {err}") from err
        if read is None:
            return None
        found = self._references[(name, str(version))] = ModelReference(*read)
        return found

    @contextmanager
    def _downloaded(self, name: str, version: str) -> Iterator[Path | None]:
        """The registered model's files, downloaded from its datastore into a temporary folder that is removed
        afterwards; None if no such version is registered."""
        import tempfile

        from azure.core.exceptions import ResourceNotFoundError
        with tempfile.TemporaryDirectory(prefix="model-") as folder:
            try:
                self.ml_client.models.download(name=name, version=str(version), download_path=folder)
            except ResourceNotFoundError:
                yield None
                return
            yield Path(folder)

    def _get(self, name: str, version: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return self.ml_client.models.get(name=name, version=str(version))
        except ResourceNotFoundError:
            return None

    def _list(self, name: str) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return list(self.ml_client.models.list(name=name))
        except ResourceNotFoundError:       # no version of that name yet
            return []


def _number(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def _version(model: Any, registry: str = "") -> ModelVersion:
    return ModelVersion(name=model.name, version=str(model.version), path=str(model.path or ""),
                        tags=dict(model.tags or {}), description=model.description or "", created=created_at(model),
                        registry=registry)


class AzureMLSharedRegistry(WorkspaceClient):
    """Preprod's side of the registry: `models.share` copies a workspace version into it (same name and
    version, so lineage reads straight across), then the tags carry the preprod lineage."""

    def __init__(self, *args: Any, shared_registry: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared_registry = shared_registry
        self._in_registry = AzureMLRegistry(*args, registry_name=shared_registry, **kwargs)

    def share(self, name: str, version: str, tags: dict[str, str], description: str = "") -> ModelVersion:
        found = self._in_registry.get(name, version)
        if found is None:
            # a long-running copy: waited for here, the delivery is retried if the function times out
            self.ml_client.models.share(name=name, version=version, registry_name=self.shared_registry,
                                        share_with_name=name, share_with_version=version)
            log.info("shared %s:%s into registry %s", name, version, self.shared_registry)
        return self._in_registry.update_tags(name, version, tags)

    def get(self, name: str, version: str) -> ModelVersion | None:
        return self._in_registry.get(name, version)


def _value(text: str):
    """CSV text back to JSON values (no pandas in the Function App): numbers, empty → null."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
