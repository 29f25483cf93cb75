"""The feedback container's file format, shared by the function app's reader and the monitoring job:
CSV with a header, or JSON lines; each row a `request_id` and the label (the model's target column, or
`label`). Plain Python: the function app imports it."""
from __future__ import annotations

import csv
import io
import json

REQUEST_ID = "request_id"


def parse_labels(text: str, name: str, label_columns: list[str]) -> tuple[dict[str, object], int]:
    """request_id → label of one file, and how many rows had no request id or no label."""
    if text.lstrip().startswith("{") or name.endswith((".jsonl", ".json")):
        rows = []
        for line in text.splitlines():
            try:
                row = json.loads(line) if line.strip() else None
            except ValueError:
                row = None
            if line.strip():
                rows.append(row if isinstance(row, dict) else {})
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    found, skipped = {}, 0
    for row in rows:
        label = next((row[c] for c in label_columns if row.get(c) not in (None, "")), None)
        request_id = row.get(REQUEST_ID)
        if request_id in (None, "") or label is None:
            skipped += 1
            continue
        found[str(request_id)] = label
    return found, skipped
