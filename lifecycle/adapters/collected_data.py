"""The Collected port over Azure ML's data collector layout in blob storage (the workspace's blob store
in Azure; Azurite locally, where the local router writes the same layout):

    modelDataCollector/{endpoint}/{deployment}/{model_inputs|model_outputs}/{yyyy}/{MM}/{dd}/{HH}/*.jsonl"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient


class BlobCollected:
    def __init__(self, connection_string: str, container: str) -> None:
        self._container = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)

    def records(self, endpoint: str, deployment: str, collection: str, since: datetime,
                until: datetime | None = None) -> Iterator[dict]:
        """The collected rows (records) of requests answered in [since, until)."""
        until = until or datetime.now(timezone.utc)
        since = since.replace(microsecond=since.microsecond // 1000 * 1000)   # lines are stamped to the millisecond
        for line in self._lines(endpoint, deployment, collection, since, until):
            when = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
            if since <= when < until:
                yield from line.get("data") or ()

    def predictions(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> list:
        return [r["prediction"] for r in self.records(endpoint, deployment, "model_outputs", since, until)
                if "prediction" in r]

    def _lines(self, endpoint: str, deployment: str, collection: str, since: datetime, until: datetime) -> Iterator[dict]:
        hour = since.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
        while hour < until:
            prefix = f"modelDataCollector/{endpoint}/{deployment}/{collection}/{hour:%Y/%m/%d/%H}/"
            try:
                for blob in self._container.list_blobs(name_starts_with=prefix):
                    if blob.last_modified and blob.last_modified < since.replace(microsecond=0):
                        continue   # written before the window opened
                    text = self._container.download_blob(blob.name).readall().decode()
                    for raw in text.splitlines():
                        if raw.strip():
                            yield json.loads(raw)
            except ResourceNotFoundError:
                return   # nothing collected yet
            hour += timedelta(hours=1)
