"""The DataStore port on the data container (blob storage in both modes)."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

from lifecycle.core.platform_values import StoredBlob
from lifecycle.core.state_records import MARKER


class BlobData:
    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._container = service.get_container_client(container)

    def url_of(self, prefix: str) -> str:
        return f"{self._container.url}/{quote(prefix, safe='/')}"

    def changed_since(self, since: datetime) -> list[StoredBlob]:
        return [blob for blob in self._listed("") if blob.last_modified >= since]

    def files_under(self, prefix: str) -> list[StoredBlob]:
        return self._listed(prefix)

    def _listed(self, prefix: str) -> list[StoredBlob]:
        found = []
        try:
            for blob in self._container.list_blobs(name_starts_with=prefix or None):
                etag = blob.etag if blob.etag.startswith('"') else f'"{blob.etag}"'
                found.append(StoredBlob(blob.name, self.url_of(blob.name), etag, blob.size or 0,
                                        blob.content_settings.content_type or "application/octet-stream",
                                        blob.last_modified))
        except ResourceNotFoundError:
            return []                     # no data container yet
        return found

    def write_drop(self, prefix: str, files: dict[str, bytes]) -> str:
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        for name, body in files.items():
            content_type = "text/csv" if name.endswith(".csv") else "application/octet-stream"
            self._container.upload_blob(prefix + name, body, overwrite=True,
                                        content_settings=ContentSettings(content_type=content_type))
        self._container.upload_blob(prefix + MARKER, b"", overwrite=True)   # last: the drop is complete
        return self.url_of(prefix)
