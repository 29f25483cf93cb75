"""Uploading a drop into the data container, with progress."""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

MARKER = "_SUCCESS"
CONTENT_TYPES = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet", ".gz": "application/gzip"}


def upload_drop(connection_string: str, container: str, files: list[Path], prefix: str | None, marker: bool,
                console: Console) -> str:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient, ContentSettings

    folder = (prefix or time.strftime("drops/%Y-%m-%dT%H-%M-%S")).strip("/") + "/"
    client = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console) as progress:
        for path in files:
            size = path.stat().st_size
            task = progress.add_task(path.name, total=size)
            settings = ContentSettings(content_type=CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))
            with path.open("rb") as data:
                client.upload_blob(folder + path.name, data, length=size, overwrite=True, content_settings=settings,
                                   progress_hook=lambda done, total, task=task: progress.update(task, completed=done))
            progress.update(task, completed=size)
    if marker:
        client.upload_blob(folder + MARKER, b"", overwrite=True)
    return f"{container}/{folder}"
