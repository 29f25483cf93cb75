"""What `mlops drift REF CUR` does: compare the current data with a reference (data or a saved profile) by the
monitor's own rules and thresholds, and say what was compared. The command in cli.py parses and prints.

The reference is profiled as training profiles it (training.reference_profile), the current side is counted
into a streamed window (monitoring.window) and compared (monitoring.drift.compare). Thresholds are the
monitor's defaults, then the DRIFT_THRESHOLDS setting (the app setting's format, read by its own parser),
then each --threshold option.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops.drift_inputs import InputError, data_files, describe, fill_window, first_line, read_frame

if TYPE_CHECKING:
    from monitoring.drift import DriftReport

SHORT = {"normalized_wasserstein": "W/σ", "jensen_shannon": "JS", "psi": "PSI", "ks_pvalue": "KS p",
         "chi2_pvalue": "χ² p"}
NOT_COMPARED = ("request_id",)          # the serving path's join key (training.dataset.IGNORED_COLUMNS)


@dataclass
class DriftRun:
    profile: dict
    report: DriftReport
    reference: str                      # each side as the messages name it
    current: str
    only_reference: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return column_warnings(self.only_reference, self.only_current)

    @property
    def decision(self) -> dict:
        """The dataset-level decision: drifted or not, and the rule that decided, with its numbers."""
        return self.report.decision

    def to_dict(self) -> dict:
        """The report as JSON: the drift report, its decision, and the warnings."""
        from monitoring.json_values import json_safe
        out = self.report.to_dict()
        out["decision"] = self.decision
        out["warnings"] = self.warnings
        out["columns"] = {"only_reference": self.only_reference, "only_current": self.only_current}
        return json_safe(out)


def column_warnings(only_reference: list[str], only_current: list[str]) -> list[str]:
    out = []
    if only_reference:
        out.append(f"columns only in the reference, not compared: {', '.join(only_reference)}")
    if only_current:
        out.append(f"columns only in the current data, not compared: {', '.join(only_current)}")
    return out


# ---- thresholds -------------------------------------------------------------------------------------------------

def thresholds(options: list[str] | None = None, setting: str = ""):
    """monitoring.drift.Thresholds: the defaults, then DRIFT_THRESHOLDS (setting), then each
    metric=value option, checked by the monitor's own MonitorConfig.create."""
    from lifecycle.settings import Settings, SettingsError
    from monitoring.drift import Thresholds
    from monitoring.monitor import MonitorConfig
    overrides: dict[str, float] = {}
    sources = [("DRIFT_THRESHOLDS", setting)] + [("--threshold", item) for item in options or []]
    for source, text in sources:
        try:
            parsed = Settings(drift_thresholds=text).drift_threshold_overrides()   # the app setting's parser
        except SettingsError:
            raise InputError(f"{source} {text!r}: use metric=number (e.g. psi=0.25)"
                             + (", pairs separated by commas" if source == "DRIFT_THRESHOLDS" else "")) from None
        known = numeric_thresholds(Thresholds)
        for name, value in parsed.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(f"{source} names an unknown metric {name!r}{hint}; known: {', '.join(known)}")
            if not value == value or value in (float("inf"), float("-inf")) or value < 0:
                raise InputError(f"{source} {name}={value}: a threshold is a number >= 0")
        overrides.update(parsed)
    return MonitorConfig.create(overrides).thresholds


def numeric_thresholds(cls) -> list[str]:
    """The Thresholds fields that are numbers (not the lists of decisive metrics or the switches)."""
    default = cls()
    return [f.name for f in fields(cls)
            if isinstance(getattr(default, f.name), (int, float)) and not isinstance(getattr(default, f.name), bool)]


# ---- the comparison -------------------------------------------------------------------------------------------

def run_drift(reference: str | Path, current: str | Path, target: str | None = None, limits=None,
              require_same_columns: bool = False) -> DriftRun:
    """Compare CUR with REF (a data file, folder or glob, or a saved profile.json)."""
    from monitoring.drift import Thresholds, compare
    from monitoring.window import CurrentWindow
    _warm_classifier_imports()
    profile, ref_columns, ref_name = reference_profile(reference, target)
    if not profile["features"] and not profile.get("outputs"):
        raise InputError(f"{ref_name}: no column that can be profiled (numbers or categories)")
    files = data_files(current)
    cur_name = describe(files, current)
    window = CurrentWindow.for_profile(profile)
    cur_columns = fill_window(window, files)
    if window.rows == 0:
        raise InputError(f"{cur_name}: no rows" + (f" (columns: {_names(sorted(cur_columns))})" if cur_columns
                                                   else ""))
    ignored = {target, *NOT_COMPARED}
    only_ref = [c for c in ref_columns if c not in cur_columns and c not in ignored]
    only_cur = sorted(c for c in cur_columns if c not in ref_columns and c not in ignored)
    if require_same_columns and (only_ref or only_cur):
        sides = [f"only in the reference: {', '.join(only_ref)}"] if only_ref else []
        sides += [f"only in the current data: {', '.join(only_cur)}"] if only_cur else []
        raise InputError("the columns differ (--require-same-columns): " + "; ".join(sides))
    report = compare(profile, window, limits or Thresholds())
    if not report.features and not report.outputs:
        raise InputError(f"{cur_name} has none of the columns of {ref_name} ({_names(list(profile['features']))})")
    return DriftRun(profile, report, ref_name, cur_name, only_ref, only_cur)


def _warm_classifier_imports() -> None:
    """Import scikit-learn's trees (the multivariate domain classifier's, ~1.2 s, most of it scipy.stats'
    docstrings) on a thread while the files are read: reading and sorting are numpy and Arrow work that
    releases the GIL, so the import costs the command almost nothing; compare() finds it done."""
    import threading

    def load() -> None:
        import sklearn.ensemble  # noqa: F401
        import sklearn.model_selection  # noqa: F401
    threading.Thread(target=load, name="warm-imports", daemon=True).start()


def reference_profile(spec: str | Path, target: str | None = None) -> tuple[dict, list[str], str]:
    """(profile, the reference's columns, its name): a profile.json as it is (recognised by its
    "profile_version"), or the profile of the data files the path names."""
    from training.reference_profile import build_profile
    files = data_files(spec)
    name = describe(files, spec)
    saved = _saved_profile(files[0]) if len(files) == 1 else None
    if saved is not None:
        features = {k: v for k, v in saved.get("features", {}).items() if k != target}
        return {**saved, "features": features}, list(features), name
    frame = read_frame(files)
    if len(frame) == 0:
        columns = f" (columns: {_names([str(c) for c in frame.columns])})" if len(frame.columns) else ""
        raise InputError(f"{name}: no rows{columns}: there is nothing to compare with")
    if target and target not in frame.columns:
        raise InputError(f"{name}: no column {target!r} to leave out as the target")
    return build_profile(frame, target), [str(c) for c in frame.columns], name


def _saved_profile(path: Path) -> dict | None:
    if path.suffix.lower() != ".json":
        return None
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


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


# ---- what is shown --------------------------------------------------------------------------------------------

class PipeConsole(Console):
    """A console whose closed pipe (`| head -1`) reaches the caller as BrokenPipeError: rich's own handling
    exits with code 1, and the command's code must stay the decision's."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError



def drift_table(report) -> Table:
    """One row per feature and model output: its deciding metrics, the adjusted p-value of its test (when the
    report has them), drifted or not, quality issues."""
    t = report.thresholds
    every = {**report.features, **report.outputs}
    adjusted = any(f.pvalue_adjusted == f.pvalue_adjusted for f in every.values())      # not all NaN
    table = Table("feature", "kind", "deciding metrics", *(["adj. p"] if adjusted else []), "drifted",
                  "quality issues")
    for side, features in (("", report.features), ("output, ", report.outputs)):
        for name, f in sorted(features.items(), key=lambda kv: not kv[1].drifted):
            decisive = t.decisive_numeric if f.kind == "numeric" else t.decisive_categorical
            values = "  ".join(f"{'[red]' if f.flags.get(m) else ''}{SHORT.get(m, m)} {_value(f.metrics.get(m))}"
                               f"{'[/]' if f.flags.get(m) else ''}" for m in decisive)
            issues = ", ".join(k for k, on in f.quality_flags.items() if on) or "-"
            table.add_row(escape(name), side + f.kind, values,
                          *([_value(f.pvalue_adjusted)] if adjusted else []),
                          "[red]✓[/]" if f.drifted else "[green]✗[/]",
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
        if report.decision.get("multivariate_drifted"):
            parts.append("multivariate drift (the features taken together)")
        if not parts:
            parts.append("drift (the dataset-level rule)")
        text = "; ".join(parts)
    if report.quality_issues:
        text += "; data quality issues: " + ", ".join(report.quality_issues)
    return f"{text} ({report.rows:,} rows compared)"


def _value(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.3g}"


# ---- the HTML page ----------------------------------------------------------------------------------------------

def write_html(out: Path, run: DriftRun) -> Path:
    """The drift-only page (no monitoring sections, no model)."""
    from monitoring.report import write_drift_report
    try:
        return write_drift_report(out, run.profile, run.to_dict(), f"Drift of {run.current} against {run.reference}")
    except OSError as error:
        raise InputError(f"{out}: cannot write the report: {error.strerror or first_line(error)}") from None
