"""The State port on blob storage (Azure Storage, or Azurite locally): one JSON blob per record,
written with if-none-match so a replayed event finds its record instead of writing a second one."""
from __future__ import annotations

import json
from typing import Iterator

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from lifecycle.records import DataBatch, Rejection


class BlobState:
    def __init__(self, connection_string: str, container: str) -> None:
        self._container: ContainerClient = BlobServiceClient.from_connection_string(
            connection_string).get_container_client(container)
        self._ready = False

    def record_data_batch(self, batch: DataBatch) -> bool:
        return self._create(f"data-batches/{batch.batch_id}.json", batch.to_json())

    def data_batches(self) -> list[DataBatch]:
        return sorted((DataBatch(**r) for r in self._read_all("data-batches/")), key=lambda b: b.recorded_at)

    def record_rejection(self, rejection: Rejection) -> bool:
        return self._create(f"rejections/{rejection.function}/{rejection.event_id}.json", rejection.to_json())

    def rejections(self) -> list[Rejection]:
        return sorted((Rejection(**r) for r in self._read_all("rejections/")), key=lambda r: r.rejected_at)

    def _create(self, name: str, record: dict) -> bool:
        self._ensure_container()
        try:
            self._container.upload_blob(name, json.dumps(record, indent=1), overwrite=False,
                                        content_settings=_JSON)
            return True
        except ResourceExistsError:
            return False

    def _read_all(self, prefix: str) -> Iterator[dict]:
        try:
            for item in self._container.list_blobs(name_starts_with=prefix):
                yield json.loads(self._container.download_blob(item.name).readall())
        except ResourceNotFoundError:
            return  # no container yet: nothing recorded

    def _ensure_container(self) -> None:
        if self._ready:
            return
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        self._ready = True


_JSON = ContentSettings(content_type="application/json")
