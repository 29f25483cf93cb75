"""What `mlops drift` and `mlops report` do: compare two files directly, and write the monitoring report of
the local stack. The commands in cli.py only parse arguments and print."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from emulator.home import StackHome
from lifecycle.ports import Registry, State

SHORT = {"normalized_wasserstein": "W/σ", "jensen_shannon": "JS", "psi": "PSI", "ks_pvalue": "KS p",
         "chi2_pvalue": "χ² p"}
DATA_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


class InputError(ValueError):
    """Input the user has to fix; the message is one line saying what is wrong with which file."""


class ReportError(RuntimeError):
    """The report cannot be made (no stack, no monitoring yet); the message says what to do."""


# ---- mlops drift ---------------------------------------------------------------------------------------------

def compare_files(reference: Path, current: Path, target: str | None = None):
    """(profile, DriftReport) of CUR against REF: a data file (profiled here, without the target column)
    or a saved profile.json."""
    from monitoring.drift import compare
    from monitoring.window import read_window
    profile = reference_profile(reference, target)
    if not profile["features"] and not profile.get("outputs"):
        raise InputError(f"{reference}: no column that can be profiled (numbers or categories)")
    _format_of(current)
    try:
        window = read_window(profile, current)
    except (OSError, ValueError, KeyError) as error:         # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{current}: cannot be read: {_first_line(error)}") from None
    if window.rows == 0:
        raise InputError(f"{current}: no rows (.jsonl must hold data collector lines: {{\"data\": [rows]}})")
    report = compare(profile, window)
    if not report.features and not report.outputs:
        names = ", ".join(list(profile["features"])[:8]) + (", …" if len(profile["features"]) > 8 else "")
        raise InputError(f"{current} has none of the columns of {reference} ({names})")
    return profile, report


def reference_profile(path: Path, target: str | None = None) -> dict:
    """A profile.json as it is (recognised by its "profile_version"), or the profile of a data file."""
    from training.reference_profile import build_profile
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    saved = _saved_profile(path)
    if saved is not None:
        features = {k: v for k, v in saved.get("features", {}).items() if k != target}
        return {**saved, "features": features}
    frame = _read_frame(path)
    if target and target not in frame.columns:
        raise InputError(f"{path}: no column {target!r} to leave out as the target")
    return build_profile(frame, target)


def _saved_profile(path: Path) -> dict | None:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head.lstrip().startswith(b"{") or b'"profile_version"' not in head:
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None                                          # JSON lines that mention it: data
    if isinstance(loaded, dict) and "profile_version" in loaded:
        if not isinstance(loaded.get("features"), dict):
            raise InputError(f"{path}: a profile without its \"features\"")
        return loaded
    return None


def _read_frame(path: Path):
    import pandas as pd

    from monitoring.window import jsonl_rows
    kind = _format_of(path)
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        with path.open(encoding="utf-8") as handle:
            rows = list(jsonl_rows(handle))
        return pd.DataFrame.from_records(rows) if rows else pd.read_json(path, lines=True)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{path}: cannot be read: {_first_line(error)}") from None


def _format_of(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = DATA_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown format {path.suffix or '(no suffix)'!r}; use .csv, .parquet, "
                         ".jsonl, or a profile.json")
    return kind


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def drift_table(report) -> Table:
    """One row per feature and model output: its deciding metrics, drifted or not, quality issues."""
    t = report.thresholds
    table = Table("feature", "kind", "deciding metrics", "drifted", "quality issues")
    for side, features in (("", report.features), ("output, ", report.outputs)):
        for name, f in sorted(features.items(), key=lambda kv: not kv[1].drifted):
            decisive = t.decisive_numeric if f.kind == "numeric" else t.decisive_categorical
            values = "  ".join(f"{'[red]' if f.flags.get(m) else ''}{SHORT.get(m, m)} {_value(f.metrics.get(m))}"
                               f"{'[/]' if f.flags.get(m) else ''}" for m in decisive)
            issues = ", ".join(k for k, on in f.quality_flags.items() if on) or "-"
            table.add_row(_plain(name), side + f.kind, values, "[red]✓[/]" if f.drifted else "[green]✗[/]",
                          f"[yellow]{issues}[/]" if f.quality_breached else issues)
    return table


def verdict(report) -> str:
    if not report.drifted:
        text = f"no drift in {len(report.features)} feature(s)"
    else:
        parts = [f"drift in {len(report.drifted_features)} of {len(report.features)} feature(s): "
                 + ", ".join(report.drifted_features)] if report.drifted_features else []
        if report.drifted_outputs:
            parts.append("prediction drift: " + ", ".join(report.drifted_outputs))
        text = "; ".join(parts)
    if report.quality_issues:
        text += "; data quality issues: " + ", ".join(report.quality_issues)
    return f"{text} ({report.rows:,} rows compared)"


def _value(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.3g}"


def _plain(text: str) -> str:
    from rich.markup import escape
    return escape(text)


def synthetic_result(report, reference: Path, current: Path) -> dict:
    """The one monitoring result a file comparison amounts to: a window named after the two files."""
    drifted = report.drifted_features + report.drifted_outputs
    alerts = ([{"type": "MLOps.DriftDetected", "condition": "data drift",
                "summary": "drift in " + ", ".join(drifted)}] if drifted else [])
    return {"window": {"start": reference.name, "end": current.name, "endpoint": "-", "deployment": "-",
                       "model": f"reference {reference.name}", "rows": report.rows, "labelled": 0},
            "drift": json.loads(report.to_json()), "performance": None, "estimated_performance": None,
            "concept_drift": None, "fairness": None, "utilisation": None, "alerts": alerts}


def write_drift_report(out: Path, profile: dict, report, reference: Path, current: Path) -> Path:
    from monitoring.report import write_report
    try:
        return write_report(out, profile, [synthetic_result(report, reference, current)],
                            title=f"Drift of {current.name} against {reference.name}")
    except OSError as error:
        raise InputError(f"{out}: cannot write the report: {error.strerror or error}") from None


# ---- mlops report ------------------------------------------------------------------------------------------

def stack_report(home: StackHome, out: Path | None = None, model: str | None = None) -> tuple[Path, list[str]]:
    """Write the monitoring report of one model (default: the one monitored last) of the stack at home;
    (the file, notes for the user)."""
    from lifecycle.core.state_records import MonitorRun
    from monitoring.report import write_report
    notes: list[str] = []
    with stack_records(home) as (state, registry):
        # passes that judged their window (not one still running, failed, or without collected data)
        runs = sorted((r for r in state.list(MonitorRun) if r.status == "Completed" and not r.result.get("skipped")),
                      key=lambda r: r.window_end)
        if not runs:
            raise ReportError(f"no monitoring run recorded yet in {home.root}: monitoring runs on its timer "
                              "(MONITOR_SCHEDULE) once a model is live and has served traffic")
        if model and ":" not in model:          # a model's name: its version monitored last
            model = next((r.model for r in reversed(runs) if r.model.startswith(f"{model}:")), f"{model}:")
        model = model or runs[-1].model
        runs = [r for r in runs if r.model == model]
        if not runs:
            raise ReportError(f"no monitoring run of {model} recorded in {home.root}")
        name, _, version = model.rpartition(":")
        reference = registry.reference(name, version) if registry is not None and name else None
    if reference is None:
        notes.append(f"no reference profile for {model}" + ("" if registry else " (the stack is not running)")
                     + ": the report shows the recorded bins only")
    profile = reference.profile if reference is not None else {"features": {}}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out or home.path("reports", f"monitoring-{stamp}.html")
    try:
        write_report(path, profile, [r.result for r in runs], title=f"Monitoring of {model}")
    except OSError as error:
        raise ReportError(f"{path}: cannot write the report: {error.strerror or error}") from None
    return path, notes


@contextmanager
def stack_records(home: StackHome) -> Iterator[tuple[State, Registry | None]]:
    """The lifecycle's records and model registry of the stack at home. When that stack has stopped, its
    records are read from its Azurite data, started for the while; its registry is then out of reach (None)."""
    import fcntl

    from emulator.azurite import Azurite, AzuriteError
    from emulator.stack import StackInfo
    from lifecycle.bootstrap import build_state
    from mlops.local import local_platform, local_settings
    if not home.path("functions", "settings.json").is_file():
        raise ReportError(f"no local stack has run from {home.root}: start one with `mlops up`, or pass --home")
    if StackInfo.read(home) is not None:
        p = local_platform(home)
        yield p.state, p.registry
        return
    with home.lock.open("a+") as lock:
        try:                                  # the stack's own lock: no stack may start on the data meanwhile
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReportError(f"a local stack is starting from {home.root}: try again once it runs") from None
        try:
            with Azurite(home.azurite) as storage:
                yield build_state(local_settings(home, AzureWebJobsStorage=storage.connection_string)), None
        except AzuriteError as error:
            raise ReportError(f"cannot open the stopped stack's storage in {home.azurite}: {error}") from None
