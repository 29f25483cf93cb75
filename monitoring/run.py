"""Monitoring over a window too large for a function: the same computation, as an Azure ML command job
(monitoring/job.yml) or on any machine, over the data collector's files.

    python -m monitoring.run --model DIR --inputs DIR --outputs DIR [--labels DIR] --output DIR
                             [--start ISO] [--end ISO] [--sensitive-column COL] [--min-labels N]
                             [--min-rows N] [--drift-thresholds psi=0.25,...] [--endpoint E --deployment D
                             --model-id NAME:VERSION] [--previous-alerts ID,ID] [--task classification|regression]

--model    the registered model's folder (Azure ML mounts it): reference/profile.json and metrics.json
           are found beneath it
--inputs   modelDataCollector/<endpoint>/<deployment>/model_inputs/ (JSON lines, searched recursively)
--outputs  the same for model_outputs
--labels   the feedback container's files (CSV or JSON lines with request_id and the label)
--output   result.json (what the monitor timer stores), alerts.json (the events to publish: type and
           data of each alert) and report.html are written here
--endpoint, --deployment, --model-id   name the window as the monitor timer does (its alert ids)
--previous-alerts   the alert ids the previous pass fired: those no longer breached come out Resolved
--min-rows  fewer collected rows than this are not judged: result.json then says why, with no alerts
--task      the model's task; without it, metrics.json's (then what the predictions look like)
--no-report result.json and alerts.json only, no report.html

Memory stays bounded by the window's labelled rows and the outputs' probabilities: the drift engine
reads the inputs in chunks (monitoring/window.py), and only the inputs of labelled requests are kept, with,
for a regression model, a uniform sample of up to LOSS_SAMPLE_ROWS others for direct loss estimation
(a mean over that many rows is as good as over all of them: its error is the estimator's, not sampling's)."""
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
from monitoring.ground_truth import REQUEST_ID
from monitoring.holdout import read_holdout
from monitoring.monitor import MonitorConfig, evaluate
from monitoring.task import REGRESSION, model_task, stated_task
from monitoring.window import CurrentWindow
from training.reference_profile import read_reference

CHUNK_ROWS = 100_000
LOSS_SAMPLE_ROWS = 20_000


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
    p.add_argument("--min-rows", type=int, default=0)
    p.add_argument("--drift-thresholds", default="", help="overrides of the default thresholds: metric=number,...")
    p.add_argument("--endpoint", default="")
    p.add_argument("--deployment", default="")
    p.add_argument("--model-id", default="", help="the model as name:version")
    p.add_argument("--previous-alerts", default="", help="comma-separated alert ids")
    p.add_argument("--task", default="", help="the model's task: classification or regression (default: "
                   "metrics.json's)")
    p.add_argument("--no-report", action="store_true", help="leave report.html out (`mlops simulate` reads only "
                   "result.json and alerts.json, and drawing its plots costs more than the pass)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        profile, metrics = reference(args.model)
        labels = read_labels(args.labels, metrics.get("target")) if args.labels else {}
        config = MonitorConfig.create(threshold_overrides(args.drift_thresholds), args.min_labels,
                                      args.sensitive_column)
        task = stated_task(args.task, metrics, profile)     # None: the predictions will tell, once read
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    named = {"start": _iso(args.start), "end": _iso(args.end), "endpoint": args.endpoint,
             "deployment": args.deployment, "model": args.model_id or metrics.get("model_name", "")}
    if not (args.endpoint or args.deployment or args.model_id):
        named = {k: named[k] for k in ("start", "end", "model")}
    window = CurrentWindow.for_profile(profile)
    labelled_inputs = []
    # a regression model's loss estimate needs inputs of unlabelled requests too; without a task yet, kept anyway
    sample = LossSample(LOSS_SAMPLE_ROWS) if task in (REGRESSION, None) else None
    for chunk in chunks(args.inputs, args.start, args.end):
        window.update(chunk.drop(columns=[REQUEST_ID], errors="ignore"))
        if labels and REQUEST_ID in chunk.columns:
            has_label = np.fromiter((str(i) in labels for i in chunk[REQUEST_ID]), dtype=bool, count=len(chunk))
            labelled_inputs.append(chunk[has_label])
        if sample is not None:
            sample.add(chunk)
        log(f"inputs: {window.rows:,} rows")
    if window.rows < args.min_rows:
        reason = (f"{window.rows:,} rows collected in the window, "
                  f"fewer than MONITOR_MIN_ROWS ({args.min_rows:,}): not judged")
        write_outputs(args.output, {"window": {**named, "rows": window.rows, "labelled": 0}, "skipped": reason}, [])
        log(reason)
        return 0
    keep = [f"probability_{c}" for c in metrics.get("classes") or []] + ["prediction", REQUEST_ID]
    outputs = []
    for chunk in chunks(args.outputs, args.start, args.end):
        window.update_outputs(chunk)
        outputs.append(chunk[[c for c in keep if c in chunk.columns]])
    outputs_frame = pd.concat(outputs, ignore_index=True) if outputs else pd.DataFrame()
    if sample is not None and sample.frame is not None:
        labelled_inputs.append(sample.frame)
    inputs = pd.concat(labelled_inputs, ignore_index=True) if labelled_inputs else pd.DataFrame()
    if REQUEST_ID in inputs.columns:
        inputs = inputs.drop_duplicates(REQUEST_ID, keep="last")
    previous = tuple(a for a in args.previous_alerts.split(",") if a)
    task = model_task(task, metrics, profile, outputs_frame.get("prediction"))
    holdout = read_holdout(args.model)      # a regression model's loss estimate, and attribution drift
    result = evaluate(profile, metrics, inputs, outputs_frame, labels, current=window, window=named, config=config,
                      previous_alerts=previous, task=task, holdout=holdout)
    doc = result.to_dict()
    write_outputs(args.output, doc, [{"type": a.event_type, "data": a.data()} for a in result.alerts])
    if not args.no_report:
        from monitoring.report import write_report
        write_report(args.output / "report.html", profile, [doc],
                     title=f"Monitoring of {metrics.get('model_name', 'the model')}")
    log(f"{window.rows:,} rows, {result.labelled:,} labelled, in {time.perf_counter() - started:.1f} s; alerts: "
        + ("; ".join(f"{a.signal} ({a.summary})" for a in result.alerts) or "none"))
    return 0


class LossSample:
    """A uniform sample of at most `size` input rows of the window, the same however it is chunked: the rows
    whose request_id hashes lowest (a bottom-k sample)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: pd.DataFrame | None = None

    def add(self, chunk: pd.DataFrame) -> None:
        if REQUEST_ID not in chunk.columns or chunk.empty:
            return
        keys = pd.util.hash_array(chunk[REQUEST_ID].astype(str).to_numpy(dtype=object))
        both = pd.concat([x for x in (self.rows, chunk.assign(_key=keys)) if x is not None], ignore_index=True)
        self.rows = both.nsmallest(self.size, "_key") if len(both) > self.size else both

    @property
    def frame(self) -> pd.DataFrame | None:
        return None if self.rows is None else self.rows.drop(columns="_key")


def write_outputs(folder: Path, result: dict, alerts: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result, indent=2))
    (folder / "alerts.json").write_text(json.dumps(alerts, indent=2))


def threshold_overrides(text: str) -> dict[str, float]:
    """DRIFT_THRESHOLDS' format: metric=number pairs separated by commas."""
    overrides = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--drift-thresholds has {item!r}: use metric=number pairs separated by commas") from None
    return overrides


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
