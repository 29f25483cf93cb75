"""The DataStore port on the data container (blob storage in both modes)."""
from __future__ import annotations

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings

from lifecycle.records import MARKER


class BlobData:
    def __init__(self, connection_string: str, container: str) -> None:
        self._container = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)

    def url_of(self, prefix: str) -> str:
        return f"{self._container.url}/{prefix}"

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
