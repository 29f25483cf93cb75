"""Collected requests joined to their ground-truth labels, as plain rows and CSV (no pandas: the Function App
does not ship it).

An alert retrains on these: the live deployment's inputs whose request_id has a label in the feedback
container, the label in the target column, the request_id dropped (it is not a feature)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from monitoring.feedback_format import REQUEST_ID


def labelled_rows(inputs: Iterable[Mapping], labels: Mapping[str, object], target: str) -> list[dict]:
    """The inputs that have a label, in collection order; a request collected twice counts once, as last seen."""
    last: dict[str, tuple[int, Mapping]] = {}
    for position, row in enumerate(inputs):
        request_id = row.get(REQUEST_ID)
        if request_id is not None and str(request_id) in labels:
            last[str(request_id)] = (position, row)
    ordered = sorted(last.items(), key=lambda item: item[1][0])
    return [{**{k: v for k, v in row.items() if k != REQUEST_ID}, target: labels[request_id]}
            for request_id, (_, row) in ordered]


def rows_to_csv(rows: list[dict]) -> bytes:
    """CSV with a header of every column in order of first appearance; a column a row lacks is left empty."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    body = io.StringIO()
    writer = csv.DictWriter(body, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return body.getvalue().encode()
