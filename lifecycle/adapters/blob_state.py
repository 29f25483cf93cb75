"""The State port on blob storage (Azure Storage, or Azurite locally): one JSON blob per record.
Creates use if-none-match, updates compare ETags, so concurrent and replayed events cannot clobber."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from lifecycle.core.state_records import R, Record

log = logging.getLogger("lifecycle.state")
_JSON = ContentSettings(content_type="application/json")
_ATTEMPTS = 20


class StateConflict(RuntimeError):
    """Too many concurrent writers on one record; raising lets delivery retry the event later."""


class BlobState:
    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._container: ContainerClient = service.get_container_client(container)
        self._ready = False

    def create(self, record: Record) -> bool:
        self._ensure_container()
        try:
            self._container.upload_blob(_name(type(record), record.key), _dump(record), overwrite=False,
                                        content_settings=_JSON)
            return True
        except ResourceExistsError:
            return False

    def get(self, kind: type[R], key: str) -> R | None:
        found = self._read(_name(kind, key))
        return None if found is None else kind.from_json(found[0])

    def update(self, kind: type[R], key: str, change: Callable[[R | None], R | None]) -> R | None:
        self._ensure_container()
        name = _name(kind, key)
        for _ in range(_ATTEMPTS):
            found = self._read(name)
            current = None if found is None else kind.from_json(found[0])
            changed = change(current)
            if changed is None or changed == current:
                return current
            try:
                if found is None:
                    self._container.upload_blob(name, _dump(changed), overwrite=False, content_settings=_JSON)
                else:
                    self._container.upload_blob(name, _dump(changed), overwrite=True, content_settings=_JSON,
                                                etag=found[1], match_condition=MatchConditions.IfNotModified)
                return changed
            except (ResourceExistsError, ResourceModifiedError):
                continue   # someone wrote in between: read again and re-apply
        raise StateConflict(f"{name} kept changing under {_ATTEMPTS} attempts to update it")

    def list(self, kind: type[R]) -> list[R]:
        records = []
        try:
            for item in self._container.list_blobs(name_starts_with=f"{kind.COLLECTION}/"):
                try:
                    found = self._read(item.name)
                except HttpResponseError as error:
                    if (error.status_code or 0) < 500:
                        raise
                    # One record the store cannot serve (the SDK has retried) must not stop every listing,
                    # or every tick: a listing decides what to do next, and a missing record only defers it.
                    log.error("state record %s is unreadable after retries (%s): left out of the listing",
                              item.name, error.reason)
                    continue
                if found is not None:
                    records.append(kind.from_json(found[0]))
        except ResourceNotFoundError:
            return []   # no container yet: nothing recorded
        return records

    def _read(self, name: str) -> tuple[dict, str] | None:
        try:
            download = self._container.download_blob(name)
        except ResourceNotFoundError:
            return None
        return json.loads(download.readall()), download.properties.etag

    def _ensure_container(self) -> None:
        if self._ready:
            return
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        self._ready = True


def _name(kind: type[Record], key: str) -> str:
    return f"{kind.COLLECTION}/{key}.json"


def _dump(record: Record) -> str:
    return json.dumps(record.to_json(), indent=1, default=str)
