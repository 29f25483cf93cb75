"""A simulation's result for a person at a terminal (a Rich table that fits 80 columns) and for a program
(`to_json`: plain JSON types, in the dataclasses' field order)."""
from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops.simulation.outcome import DriftPoint, PolicyOutcome, SimulationResult

# (header, justify): short, broken by hand, so that the table fits 80 columns with a policy name of up to 18
# characters without folding a word anywhere (a longer name folds when it must, never cut)
COLUMNS = (("mean", "right"), ("last\n7d", "right"), ("train\njobs", "right"), ("reg.", "right"),
           ("prom.", "right"), ("roll-\nbacks", "right"), ("alerts", "right"), ("recovery", "left"),
           ("false/\nmissed", "left"), ("train\ncpu s", "right"))
NAME_FITS = 18
LEGEND = ("mean: over the days with labels; last 7d: over the last 7 of them; train jobs: trainings started; "
          "reg./prom.: models registered, promoted; recovery: days to come back after each known drift; "
          "false/missed: false alarms, missed drifts; train cpu s: training compute in seconds")


def table(result: SimulationResult) -> Table:
    """One row per policy: its metric, what its lifecycle did, how it met the known drifts, its compute. The
    numbers' columns are as wide as their header's words and values; the recovery column wraps between drifts,
    and a policy's name is never cut nor folded."""
    grid = Table(title=f"{result.metric} per policy", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                 pad_edge=False, padding=0)
    chosen = result.recommendation.policy if result.recommendation else None
    best = max((o.mean_metric for o in result.outcomes if o.mean_metric is not None), default=None)
    rows = [_cells(o) for o in result.outcomes]
    columns = (("policy", "left"), *COLUMNS)
    for i, (header, justify) in enumerate(columns):
        words = [len(w) for line in [header, *(row[i] for row in rows)] for w in line.split()]
        widest = max(len(line) for line in [*header.split("\n"), *(row[i] for row in rows)])
        if header == "policy":
            grid.add_column(header, no_wrap=widest <= NAME_FITS, overflow="fold")
        elif header == "recovery":
            grid.add_column(header, min_width=max(words), overflow="fold")
        else:
            grid.add_column(header, justify=justify, width=widest, no_wrap=True)  # type: ignore[arg-type]
    for o, row in zip(result.outcomes, rows):
        styled = [escape(cell) for cell in row]
        if o.run.name == chosen:
            styled[0] = f"[bold green]{styled[0]}[/]"
        if best is not None and o.mean_metric == best:
            styled[1] = f"[bold]{styled[1]}[/]"
        grid.add_row(*styled)
    return grid


def print_result(result: SimulationResult, console: Console) -> None:
    """The title line, the table, the known drifts and the recommendation."""
    warmup = f" after {result.warmup_days} days of warm-up" if result.warmup_days else ""
    console.print(f"[bold]{escape(result.history)}[/]: {result.days} days from {escape(result.start)}{warmup}, "
                  f"seed {result.seed} ({escape(result.task)}, {escape(result.metric)})")
    console.print(table(result))
    console.print(f"[dim]{LEGEND}[/]")
    if result.drifts:
        console.print("[bold]known drifts[/]")
        for d in result.drifts:
            console.print(f"  {escape(drift_text(d, result.start))}")
    elif drifts_known(result):
        console.print("[dim]no known drift in this history[/]")
    else:
        console.print("[dim]drifts not known (a folder of data): recovery and alarms are not judged[/]")
    for note in result.notes:
        console.print(f"[dim]{escape(note)}[/]")
    if result.recommendation:
        console.print(f"[bold green]recommended: {escape(result.recommendation.policy)}[/]: "
                      f"{escape(result.recommendation.reason)}")
    else:
        console.print("[yellow]no recommendation: no policy had labelled days to score[/]")


def to_json(result: SimulationResult) -> dict:
    """The result as plain JSON types, keys in the dataclasses' field order; a non-finite number is null."""
    return _plain(result)


# ---- cells -------------------------------------------------------------------------------------------------

def _cells(o: PolicyOutcome) -> list[str]:
    r = o.run
    return [r.name, metric_text(o.mean_metric), metric_text(o.final_metric), str(r.trainings), str(r.registered),
            str(r.promoted), str(r.rolled_back), str(r.alerts), recovery_text(o), alarms_text(o),
            seconds_text(r.training_seconds)]


def metric_text(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def recovery_text(o: PolicyOutcome) -> str:
    """Per drift, the days to recover ("4d"), "never", or "-" without a level before it."""
    if not o.recoveries:
        return "—" if o.alarms is None else "-"
    return ", ".join("-" if r.before is None else "never" if r.days is None else f"{r.days}d" for r in o.recoveries)


def alarms_text(o: PolicyOutcome) -> str:
    return "—" if o.alarms is None else f"{o.alarms.false}/{o.alarms.missed}"


def seconds_text(seconds: float) -> str:
    return f"{seconds:,.0f}" if seconds >= 100 else f"{seconds:.1f}"


def drift_text(d: DriftPoint, start: str = "") -> str:
    """"day 120 (2026-05-01): sudden, concept: SEA threshold 8 → 9.5"; a gradual one with its span."""
    span = f"day {d.day}" if d.ends <= d.day + 1 else f"days {d.day}–{d.ends - 1}"
    when = day_date(start, d.day)
    return f"{span}{f' ({when})' if when else ''}: {d.kind}{f', {d.what}' if d.what else ''}"


def drifts_known(result: SimulationResult) -> bool:
    """Whether the history's drifts are known (a generated history), even when there are none."""
    return bool(result.drifts) or any(o.alarms is not None for o in result.outcomes)


def day_date(start: str, day: int) -> str:
    """The ISO date of a measured day, or "" when the start is not a date."""
    try:
        return (date.fromisoformat(start[:10]) + timedelta(days=day)).isoformat()
    except (TypeError, ValueError):
        return ""


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
