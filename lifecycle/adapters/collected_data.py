"""The Collected port over Azure ML's data collector layout in blob storage:

    modelDataCollector/{endpoint}/{deployment}/{model_inputs|model_outputs}/{yyyy}/{MM}/{dd}/{HH}/*.jsonl

In Azure the collector writes to the workspace's default datastore (workspaceblobstore, container
azureml-blobstore-<workspace id>), found with azure-ai-ml and read with the app's token; DATA_COLLECTOR_BLOB_URI
(a container URL) overrides it. Locally the router writes the same layout to the `azureml` container in Azurite.

A container that is not there is not "no traffic": it is said, with the place looked at, so monitoring never
reports zero rows in silence."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from lifecycle.adapters.lazy_client import lazy_client
from lifecycle.core.times import parse_time

log = logging.getLogger("lifecycle.collected")


class BlobCollected:
    """`container` is the collector's ContainerClient, or a function that makes it on first use (in Azure
    finding it asks Azure ML, which a function's cold start should not pay for)."""

    def __init__(self, container: ContainerClient | Callable[[], ContainerClient]) -> None:
        self._container = container if isinstance(container, ContainerClient) else None
        self._make = None if isinstance(container, ContainerClient) else container

    @lazy_client("_container")
    def container(self) -> ContainerClient:
        assert self._make is not None     # one of the two was given
        return self._make()

    def location(self, endpoint: str, deployment: str) -> tuple[str, bool]:
        """Where the deployment's collected data is looked for (a URL), and whether anything is there: False
        when the container is missing or holds nothing under the deployment's folder."""
        prefix = _folder(endpoint, deployment)
        url = f"{self.container.url.rstrip('/')}/{prefix}"
        try:
            found = next(iter(self.container.list_blobs(name_starts_with=prefix, results_per_page=1)), None)
        except ResourceNotFoundError:
            return url, False
        return url, found is not None

    def records(self, endpoint: str, deployment: str, collection: str, since: datetime,
                until: datetime | None = None) -> Iterator[dict]:
        """The collected rows (records) of requests answered in [since, until)."""
        until = until or datetime.now(UTC)
        since = since.replace(microsecond=since.microsecond // 1000 * 1000)   # lines are stamped to the millisecond
        for line in self._lines(endpoint, deployment, collection, since, until):
            when = parse_time(line["time"])
            if since <= when < until:
                yield from line.get("data") or ()

    def predictions(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> list:
        return [r["prediction"] for r in self.records(endpoint, deployment, "model_outputs", since, until)
                if "prediction" in r]

    def _lines(self, endpoint: str, deployment: str, collection: str, since: datetime,
               until: datetime) -> Iterator[dict]:
        container = self.container
        hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while hour < until:
            prefix = f"{_folder(endpoint, deployment)}{collection}/{hour:%Y/%m/%d/%H}/"
            try:
                for blob in container.list_blobs(name_starts_with=prefix):
                    if blob.last_modified and blob.last_modified < since.replace(microsecond=0):
                        continue   # written before the window opened
                    text = container.download_blob(blob.name).readall().decode()
                    for raw in text.splitlines():
                        if raw.strip():
                            yield json.loads(raw)
            except ResourceNotFoundError:
                log.warning("collected data: container %s does not exist, so %s/%s has no %s to read: is the "
                            "deployment's data collector on, and DATA_COLLECTOR_BLOB_URI (or the workspace's "
                            "default datastore) the place it writes to?", container.url, endpoint, deployment,
                            collection)
                return
            hour += timedelta(hours=1)


def _folder(endpoint: str, deployment: str) -> str:
    return f"modelDataCollector/{endpoint}/{deployment}/"


def default_datastore_url(ml_client: Any) -> str:
    """The container URL of the workspace's default datastore (workspaceblobstore), where Azure ML's data
    collector writes, from azure-ai-ml's datastores.get_default()."""
    store = ml_client.datastores.get_default()
    account, container = getattr(store, "account_name", None), getattr(store, "container_name", None)
    if not (account and container):
        raise ValueError(f"the workspace's default datastore {store.name!r} is not a blob container "
                         f"({type(store).__name__}): set DATA_COLLECTOR_BLOB_URI to the data collector's container URL")
    return f"{store.protocol or 'https'}://{account}.blob.{store.endpoint or 'core.windows.net'}/{container}"


def workspace_collected(workspace: Any, credential: Any, container_url: str = "") -> BlobCollected:
    """The collected data in Azure: the container at `container_url` (DATA_COLLECTOR_BLOB_URI) if given, else
    the default datastore of `workspace` (a WorkspaceClient), found on first read; read with `credential`."""
    return BlobCollected(lambda: ContainerClient.from_container_url(
        container_url or default_datastore_url(workspace.ml_client), credential=credential))
