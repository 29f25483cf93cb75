"""What the lifecycle records: plain values, stored as JSON by the state adapter."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from lifecycle.events import BlobCreated


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class DataBatch:
    """One committed version of one blob in the data container: the unit training data is counted in."""
    batch_id: str            # stable for url + eTag, so a duplicate event finds the same record
    container: str
    blob_path: str
    url: str
    etag: str
    content_length: int
    content_type: str
    sequencer: str
    event_id: str
    recorded_at: str

    @staticmethod
    def id_for(url: str, etag: str) -> str:
        return hashlib.sha256(f"{url}\n{etag}".encode()).hexdigest()[:24]

    @classmethod
    def from_event(cls, event: BlobCreated) -> "DataBatch":
        return cls(
            batch_id=cls.id_for(event.url, event.etag), container=event.container, blob_path=event.blob_path,
            url=event.url, etag=event.etag, content_length=event.content_length, content_type=event.content_type,
            sequencer=event.sequencer, event_id=event.id, recorded_at=utcnow(),
        )

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    """An event the app could not act on, kept with the reason so the user can see and replay it."""
    event_id: str
    event_type: str
    subject: str
    function: str
    reason: str
    event: dict
    rejected_at: str

    def to_json(self) -> dict:
        return asdict(self)
