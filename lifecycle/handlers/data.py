"""Data landing in the data container (BlobCreated): recorded as a data batch of its drop."""
from __future__ import annotations

from datetime import datetime

from lifecycle import clock
from lifecycle.core.incoming_events import BlobCreated
from lifecycle.core.state_records import DataBatch
from lifecycle.dispatch import Rejected
from lifecycle.steps.data_batches import DataPorts, record_blob


def data_arrived(event: object, p: DataPorts, now: datetime | None = None) -> DataBatch | None:
    if not isinstance(event, BlobCreated):
        got = getattr(event, "event_type", type(event).__name__)
        raise Rejected(f"expected Microsoft.Storage.BlobCreated, got {got}")
    return record_blob(event, p, now or clock.now())
