"""The Feedback port over the feedback container: ground truth that arrives after the predictions.

Each blob is CSV (a header with `request_id` and the label column) or JSON lines ({"request_id": ...,
"<label column>": ...}); the label column is the model's target column, or `label`. Blobs are read
whole, newest last, so a later label for the same request wins. Rows without a request id or a label
are skipped and counted in the log: they cannot be joined to a prediction."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from monitoring.feedback_format import REQUEST_ID, parse_labels

log = logging.getLogger("lifecycle.feedback")
MAX_BLOB_BYTES = 256 << 20      # a feedback file beyond this is skipped with a warning, not read into memory


class BlobFeedback:
    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._container = service.get_container_client(container)

    def labels(self, since: datetime, until: datetime | None = None, label_column: str = "") -> dict[str, object]:
        until = until or datetime.now(UTC)
        labels: dict[str, object] = {}
        columns = [c for c in (label_column, "label") if c]
        try:
            blobs = [b for b in self._container.list_blobs()
                     if b.last_modified and since.replace(microsecond=0) <= b.last_modified < until]
        except ResourceNotFoundError:
            return labels     # no feedback container yet: no labels
        for blob in sorted(blobs, key=lambda b: b.last_modified):
            if blob.size > MAX_BLOB_BYTES:
                log.warning("skipped feedback blob %s: %d bytes is over the %d-byte limit", blob.name, blob.size,
                            MAX_BLOB_BYTES)
                continue
            text = self._container.download_blob(blob.name).readall().decode("utf-8", errors="replace")
            found, skipped = parse_labels(text, blob.name, columns)
            labels.update(found)
            if skipped:
                log.warning("feedback blob %s: %d row(s) without %s or a label (%s) were skipped", blob.name,
                            skipped, REQUEST_ID, " / ".join(columns))
        return labels
