"""Data landing in the data container: record each committed blob version as a data batch, add it to
its drop, and start training once the retrain policy says the drop is ready."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from lifecycle.core import model_catalog
from lifecycle.core.incoming_events import BlobCreated
from lifecycle.core.policies import DATA
from lifecycle.core.state_records import MARKER, DataBatch, Drop
from lifecycle.dispatch import Rejected, reject
from lifecycle.model_scope import scoped
from lifecycle.ports import UsesData, UsesEvents, UsesJobs, UsesPolicies, UsesState
from lifecycle.steps.training_runs import start_ready_training

log = logging.getLogger("lifecycle.data")


class DataPorts(UsesPolicies, UsesState, UsesJobs, UsesData, UsesEvents, Protocol):
    """What recording data uses of the platform (a ready drop starts training)."""


def record_blob(event: BlobCreated, p: DataPorts, now: datetime) -> DataBatch | None:
    """Record a committed blob as a data batch of its drop, and start its model's training if the drop is
    ready. A blob under no model's dataset root is not training data: it is left alone."""
    policies = model_catalog.by_blob(p.catalog, event.container, event.blob_path)
    if policies is None:
        roots = ", ".join(f"{m.model.name}: {m.model.data_container}/{m.model.data_root}" for m in p.catalog)
        log.info("ignored %s: under no model's dataset root (%s)", event.subject, roots)
        return None
    p = scoped(p, policies)
    marker = event.blob_path.rsplit("/", 1)[-1] == MARKER
    if not event.committed and not (marker and event.api != "CreateFile"):
        if event.content_length == 0 and event.completes_blob:
            raise Rejected(f"{event.blob_path} is an empty file (0 bytes): there is nothing in it to train on; "
                           "upload it again with its data")
        # ADLS Gen2 CreateFile: the file's data comes with a later FlushWithClose event
        log.info("ignored %s: nothing committed (api %s, %d bytes)", event.blob_path, event.api, event.content_length)
        return None
    batch = DataBatch.from_event(event, now)
    if p.state.create(batch):
        log.info("recorded data batch %s: %s (%d bytes)", batch.batch_id, batch.blob_path, batch.content_length)
    else:
        batch = p.state.get(DataBatch, batch.batch_id) or batch
        log.info("data batch %s already recorded: duplicate delivery of %s", batch.batch_id, batch.blob_path)
    drop = Drop.for_batch(batch)
    p.state.update(Drop, drop.drop_id, lambda current: (current or drop).with_batch(batch))
    start_ready_training(p, now, cause=DATA)
    return batch


def find_missed_data(p: DataPorts, now: datetime, lookback: timedelta = timedelta(hours=24)) -> list[DataBatch]:
    """Blobs written to the data container over the last day that no event recorded: a BlobCreated lost
    to a crash, or delivered while the records it wrote were lost. Each goes through data_arrived as its
    event would have; a blob already recorded costs one read."""
    found, container = [], p.policies.model.data_container     # one data container for the app's models
    for blob in p.data.changed_since(now - lookback):
        batch_id = DataBatch.id_for(container, blob.path, blob.etag)
        if p.state.get(DataBatch, batch_id) is not None:
            continue
        log.warning("found %s in the data container with no record of its event: recording it now", blob.path)
        event = BlobCreated(id=f"scan-{batch_id}", subject=f"/blobServices/default/"
                            f"containers/{container}/blobs/{blob.path}", event_time=blob.last_modified,
                            container=container, blob_path=blob.path, api="PutBlob", etag=blob.etag,
                            content_type=blob.content_type, content_length=blob.size, blob_type="BlockBlob",
                            url=blob.url, sequencer="")
        try:
            batch = record_blob(event, p, now)
        except Rejected as error:
            reject(p, {"id": event.id, "eventType": event.event_type, "subject": event.subject,
                       "data": {"url": blob.url}}, "on_data_arrived", str(error))
            continue
        if batch is not None:
            found.append(batch)
    return found
