"""Data landing in the data container: record each committed blob version as a data batch, add it to
its drop, and start training once the retrain policy says the drop is ready."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from lifecycle.dispatch import Rejected
from lifecycle.events import BlobCreated
from lifecycle.handlers.training import start_ready_training
from lifecycle.ports import Platform
from lifecycle.records import MARKER, DataBatch, Drop

log = logging.getLogger("lifecycle.data")


def data_arrived(event: object, p: Platform) -> DataBatch | None:
    if not isinstance(event, BlobCreated):
        raise Rejected(f"expected Microsoft.Storage.BlobCreated, got {getattr(event, 'event_type', type(event).__name__)}")
    if event.container != p.settings.data_container:
        log.info("ignored %s: not in the data container '%s'", event.subject, p.settings.data_container)
        return None
    marker = event.blob_path.rsplit("/", 1)[-1] == MARKER
    # ADLS Gen2 CreateFile, or an empty blob: nothing to train on yet. An empty _SUCCESS marker still counts.
    if not event.committed and not (marker and event.api != "CreateFile"):
        log.info("ignored %s: nothing committed (api %s, %d bytes)", event.blob_path, event.api, event.content_length)
        return None
    batch = DataBatch.from_event(event)
    if p.state.create(batch):
        log.info("recorded data batch %s: %s (%d bytes)", batch.batch_id, batch.blob_path, batch.content_length)
    else:
        batch = p.state.get(DataBatch, batch.batch_id) or batch
        log.info("data batch %s already recorded: duplicate delivery of %s", batch.batch_id, batch.blob_path)
    drop = Drop.for_batch(batch)
    p.state.update(Drop, drop.drop_id, lambda current: (current or drop).with_batch(batch))
    start_ready_training(p, datetime.now(timezone.utc))
    return batch
