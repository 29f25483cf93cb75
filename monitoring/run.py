"""Monitoring over a window too large for a function: the same computation, as an Azure ML command job
(monitoring/job.yml) or on any machine, over the data collector's files.

    python -m monitoring.run --model DIR --inputs DIR --outputs DIR [--labels DIR] --output DIR
                             [--start ISO] [--end ISO] [--sensitive-column COL] [--min-labels N]

--model    the registered model's folder (Azure ML mounts it): reference/profile.json and metrics.json
           are found beneath it
--inputs   modelDataCollector/<endpoint>/<deployment>/model_inputs/ (JSON lines, searched recursively)
--outputs  the same for model_outputs
--labels   the feedback container's files (CSV or JSON lines with request_id and the label)
--output   result.json (what the monitor timer stores) and report.html are written here

Memory stays bounded by the window's labelled rows and the outputs' probabilities: the drift engine
reads the inputs in chunks (monitoring/window.py), and only the inputs of labelled requests are kept."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.feedback_format import parse_labels
from monitoring.labels import REQUEST_ID
from monitoring.monitor import MonitorConfig, evaluate
from monitoring.window import CurrentWindow
from training.reference_profile import read_reference

CHUNK_ROWS = 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="monitoring.run", description="Monitor one window of collected data.")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--inputs", required=True, type=Path)
    p.add_argument("--outputs", required=True, type=Path)
    p.add_argument("--labels", type=Path)
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--start", type=datetime.fromisoformat, help="first collection time to include (ISO 8601)")
    p.add_argument("--end", type=datetime.fromisoformat, help="collection times before this (ISO 8601)")
    p.add_argument("--sensitive-column", default="")
    p.add_argument("--min-labels", type=int, default=100)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        profile, metrics = reference(args.model)
        labels = read_labels(args.labels, metrics.get("target")) if args.labels else {}
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    window = CurrentWindow.for_profile(profile)
    labelled_inputs = []
    for chunk in chunks(args.inputs, args.start, args.end):
        window.update(chunk.drop(columns=[REQUEST_ID], errors="ignore"))
        if labels and REQUEST_ID in chunk.columns:
            has_label = np.fromiter((str(i) in labels for i in chunk[REQUEST_ID]), dtype=bool, count=len(chunk))
            labelled_inputs.append(chunk[has_label])
        log(f"inputs: {window.rows:,} rows")
    keep = [f"probability_{c}" for c in metrics.get("classes") or []] + ["prediction", REQUEST_ID]
    outputs = []
    for chunk in chunks(args.outputs, args.start, args.end):
        window.update_outputs(chunk)
        outputs.append(chunk[[c for c in keep if c in chunk.columns]])
    inputs = pd.concat(labelled_inputs, ignore_index=True) if labelled_inputs else pd.DataFrame()
    result = evaluate(profile, metrics, inputs, pd.concat(outputs, ignore_index=True) if outputs else pd.DataFrame(),
                      labels, current=window, window={"start": _iso(args.start), "end": _iso(args.end),
                                                      "model": metrics.get("model_name", "")},
                      config=MonitorConfig(min_labels=args.min_labels, sensitive_column=args.sensitive_column))
    args.output.mkdir(parents=True, exist_ok=True)
    doc = result.to_dict()
    (args.output / "result.json").write_text(json.dumps(doc, indent=2))
    from monitoring.report import write_report
    write_report(args.output / "report.html", profile, [doc], title=f"Monitoring of {metrics.get('model_name', 'the model')}")
    log(f"{window.rows:,} rows, {result.labelled:,} labelled, in {time.perf_counter() - started:.1f} s; alerts: "
        + ("; ".join(f"{a.signal} ({a.summary})" for a in result.alerts) or "none"))
    return 0


def reference(model: Path) -> tuple[dict, dict]:
    found = read_reference(model)
    if found is None:
        raise FileNotFoundError(f"no reference/profile.json under {model}: is it a model trained by training/train.py?")
    return found


def chunks(folder: Path, start: datetime | None, end: datetime | None) -> Iterator[pd.DataFrame]:
    """The collected rows under folder, CHUNK_ROWS at a time, from lines stamped in [start, end)."""
    rows: list[dict] = []
    files = sorted(folder.rglob("*.jsonl")) if folder.is_dir() else [folder]
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for raw in lines:
                if not raw.strip():
                    continue
                line = json.loads(raw)
                if (start or end) and not _within(line.get("time"), start, end):
                    continue
                data = line.get("data")
                rows.extend(data if isinstance(data, list) else [data] if isinstance(data, dict) else [])
                if len(rows) >= CHUNK_ROWS:
                    yield pd.DataFrame.from_records(rows)
                    rows = []
    if rows:
        yield pd.DataFrame.from_records(rows)


def read_labels(folder: Path, target: str | None) -> dict[str, object]:
    labels: dict[str, object] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        found, _ = parse_labels(path.read_text(encoding="utf-8", errors="replace"), path.name,
                                [c for c in (target, "label") if c])
        labels.update(found)
    return labels


def _within(stamp: str | None, start: datetime | None, end: datetime | None) -> bool:
    if not stamp:
        return False
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (start is None or when >= start) and (end is None or when < end)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
