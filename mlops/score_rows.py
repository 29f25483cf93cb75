"""The rows `mlops score` sends: a CSV file's, the live model's reference sample, or generated demo rows."""
from __future__ import annotations

import csv
from pathlib import Path


class NoRows(ValueError):
    """Nothing to score with: the user gives rows with --file."""


def reference_rows(p) -> tuple[list[str], list[list]]:
    """The live model's reference sample, saved with it, as request rows."""
    from lifecycle.core.rollout_machine import Rollout
    model = p.policies.model
    r = p.state.get(Rollout, model.endpoint)
    name, _, version = (r.live_model if r else "").partition(":")
    sample = p.registry.reference_sample(name, version, 500) if version else []
    if not sample:
        raise NoRows(f"{model.name} has no live model yet: give rows with --file")
    columns = [c for c in sample[0] if c != model.target_column]
    return columns, [[row[c] for c in columns] for row in sample]


def file_rows(file: Path | None) -> tuple[list[str], list[list]]:
    """A CSV file's rows, numbers as numbers; without a file, generated loan rows (the demo's model)."""
    if file is None:
        from mlops.demo_data import COLUMNS, loan_rows
        return COLUMNS[:-1], [r[:-1] for r in loan_rows(500, seed=123)]
    with file.open(newline="") as handle:
        reader = csv.reader(handle)
        columns = next(reader)
        return columns, [[_number(v) for v in row] for row in reader]


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text if text != "" else None
