"""Data landing in the data container: record each committed blob version as a data batch."""
from __future__ import annotations

import logging

from lifecycle.dispatch import Rejected
from lifecycle.events import BlobCreated
from lifecycle.ports import Platform
from lifecycle.records import DataBatch

log = logging.getLogger("lifecycle.data")


def data_arrived(event: object, p: Platform) -> DataBatch | None:
    if not isinstance(event, BlobCreated):
        raise Rejected(f"expected Microsoft.Storage.BlobCreated, got {getattr(event, 'event_type', type(event).__name__)}")
    if event.container != p.settings.data_container:
        log.info("ignored %s: not in the data container '%s'", event.subject, p.settings.data_container)
        return None
    if not event.committed:   # ADLS Gen2 CreateFile, or an empty blob: nothing to train on yet
        log.info("ignored %s: nothing committed (api %s, %d bytes)", event.blob_path, event.api, event.content_length)
        return None
    batch = DataBatch.from_event(event)
    if p.state.record_data_batch(batch):
        log.info("recorded data batch %s: %s (%d bytes)", batch.batch_id, batch.blob_path, batch.content_length)
    else:
        log.info("data batch %s already recorded: duplicate delivery of %s", batch.batch_id, batch.blob_path)
    return batch
