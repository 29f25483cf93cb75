"""Emits Microsoft.Storage.BlobCreated for Azurite, which has no events of its own.

It lists the watched containers a few times a second and publishes one event per new committed
blob version (a new ETag), in the real schema. What it has seen, and its sequencer, are kept on disk
so a restart neither repeats events nor misses blobs written while the stack was down. Two writes
to one blob between two looks produce one event for the later version.

An event counts as seen on disk only DURABLE_AFTER seconds after it was published: the event waits in
an Azurite queue, and Azurite saves its data every few seconds, so a kill can lose an event published
just before it. Remembering it later means such an event is published again after a restart, at worst
twice; never lost."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from pathlib import Path

from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from emulator.eventgrid.broker import EventGrid
from emulator.eventgrid.schema import system_event

log = logging.getLogger("emulator.eventgrid.blobwatch")
SUBJECT_PREFIX = "/blobServices/default/containers/"
SINGLE_PUT_LIMIT = 64 * 1024 * 1024   # the SDKs upload up to this size in one PutBlob
DURABLE_AFTER = 8.0                   # seconds: more than Azurite's 5 s between saves of its data


def watched_containers(grid: EventGrid, topic: str) -> set[str] | None:
    """Containers named by the storage subscriptions' subject filters; None means all of them."""
    containers: set[str] = set()
    for sub in grid.table.subscriptions:
        if sub.topic != topic:
            continue
        prefix = sub.filter.subject_begins_with or ""
        if not prefix.lower().startswith(SUBJECT_PREFIX.lower()):
            return None
        container = prefix[len(SUBJECT_PREFIX):].split("/", 1)[0]
        if not container:
            return None
        containers.add(container.lower())
    return containers


class BlobWatcher:
    def __init__(self, grid: EventGrid, connection_string: str, topic: str, state_path: Path,
                 interval: float = 0.25) -> None:
        self.grid = grid
        self.topic = topic
        self.topic_id = grid.topic_ids[topic]
        self.state_path = state_path
        self.interval = interval
        self._service = BlobServiceClient.from_connection_string(connection_string)
        self._containers = watched_containers(grid, topic)
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        self._seen: dict[str, str] = state.get("seen", {})
        self._saved: dict[str, str] = dict(self._seen)          # what the file says: only durable events
        self._unsaved: list[tuple[float, str, str]] = []         # (published at, blob, etag), oldest first
        self._sequencer: int = state.get("sequencer", 0)

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # Azurite hiccups are transient; the next look catches up
                log.exception("looking for new blobs failed")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """A clean stop: Azurite saves its data when it stops after this, so everything seen is durable."""
        self._saved, self._unsaved = dict(self._seen), []
        self._save()
        await self._service.close()

    async def poll(self) -> int:
        """One look at the watched containers; returns how many events it published."""
        names = self._containers
        if names is None:
            names = {c.name async for c in self._service.list_containers()}
        present: dict[str, str] = {}
        events = []
        for name in sorted(names):
            container = self._service.get_container_client(name)
            try:
                async for blob in container.list_blobs():
                    key = f"{name}/{blob.name}"
                    present[key] = blob.etag
                    if self._seen.get(key) != blob.etag:
                        events.append(self._event(container, blob))
            except Exception as error:
                if getattr(error, "error_code", None) == "ContainerNotFound":
                    continue  # not created yet: nothing to announce
                raise
        if events:
            # Publish before remembering: a crash in between repeats an event rather than losing it.
            await self.grid.publish(self.topic, events)
            now = time.monotonic()
            self._unsaved += [(now, key, etag) for key, etag in present.items() if self._seen.get(key) != etag]
        self._seen = present
        self._save_durable()
        return len(events)

    def _save_durable(self) -> None:
        durable_before = time.monotonic() - DURABLE_AFTER
        saved = {key: etag for key, etag in self._saved.items() if key in self._seen}    # deletions: at once
        while self._unsaved and self._unsaved[0][0] <= durable_before:
            _, key, etag = self._unsaved.pop(0)
            if self._seen.get(key) == etag:
                saved[key] = etag
        if saved != self._saved:
            self._saved = saved
            self._save()

    def _event(self, container: ContainerClient, blob) -> object:
        self._sequencer += 1
        size = blob.size or 0
        api = "CopyBlob" if blob.copy and blob.copy.id else ("PutBlob" if size <= SINGLE_PUT_LIMIT else "PutBlockList")
        data = {
            "api": api,
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": _quoted(blob.etag),
            "contentType": blob.content_settings.content_type or "application/octet-stream",
            "contentLength": size,
            "blobType": str(getattr(blob.blob_type, "value", blob.blob_type)),
            "url": container.get_blob_client(blob.name).url,
            "sequencer": f"{self._sequencer:032X}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        }
        subject = f"{SUBJECT_PREFIX}{container.container_name}/blobs/{blob.name}"
        return system_event(topic_id=self.topic_id, subject=subject,
                            event_type="Microsoft.Storage.BlobCreated", data=data, data_version="")

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sequencer": self._sequencer, "seen": self._saved}))
        os.replace(tmp, self.state_path)


def _quoted(etag: str) -> str:
    # Listings give the bare value; Azure's events (and the ETag header) carry it in quotes.
    return etag if etag.startswith('"') else f'"{etag}"'
