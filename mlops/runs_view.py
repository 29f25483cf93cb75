"""How `mlops runs` shows runs: the table (a column per field in a wide terminal, stacked to fit 80 columns) and
one run in detail. Both read the records of mlops/runs_command.py (plain dicts, as --json prints them)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from monitoring.compute_report import duration

SHORT_NAMES = {"accuracy": "acc"}
WIDE = 150                                # a terminal this wide gets a column per field

_STATUS = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow", "RUNNING": "cyan", "SCHEDULED": "dim"}
_GATE = {"registered": "green", "rejected": "yellow", "failed": "red"}


def runs_table(records: list[dict], width: int) -> Table:
    """A column per field in a wide terminal; in 80 columns the job name whole, with model, trigger, data and id
    on a dim line under it, and status, start and duration stacked."""
    wide = width >= WIDE
    table = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True, header_style="bold")
    # the job name whole, never folded; the dim line of facts under it wraps at its width
    table.add_column("run", min_width=max(len(r["run_name"]) + (4 if r["parent_run_id"] else 0) for r in records),
                     no_wrap=wide)
    if wide:
        for name in ("model", "trigger", "status", "started UTC", "took"):
            table.add_column(name, no_wrap=True)
    else:
        table.add_column("status\nstart UTC", no_wrap=True)
    table.add_column("metrics", max_width=None if wide else 9)     # "acc 0.863"; "rmse 23,150" on two lines
    table.add_column("gate", min_width=10)        # "registered" whole, its version on the next line
    if wide:
        table.add_column("data", no_wrap=True)
        table.add_column("run id", no_wrap=True)
    for r in records:
        child = bool(r["parent_run_id"])
        name = f"  └ {escape(r['run_name'])}" if child else escape(r["run_name"])
        steps = len(r["child_runs"])
        steps_said = f"{steps} step{'s' if steps != 1 else ''}" if steps and not child else ""
        status = f"[{_STATUS.get(r['status'], 'white')}]{r['status'].lower()}[/]"
        metrics = "\n".join(f"{SHORT_NAMES.get(k, k)} {_number(v)}" for k, v in r["headline"].items()) or "-"
        if wide:
            table.add_row(name + (f" [dim]({steps_said})[/]" if steps_said else ""), escape(r["model"] or "-"),
                          escape(r["trigger"] or "-"), status, _when(r["start"], long=True),
                          duration(r["duration_seconds"]), metrics.replace("\n", " "), _gate(r),
                          escape(_last_part(r["data"]) or "-"), r["run_id"][:8])
        else:
            # the model is left out where the job name says it (train-<model>-<trigger>-<hash>)
            model = r["model"] if r["model"] and r["model"] not in r["run_name"] else ""
            facts = [model, r["trigger"], steps_said, _last_part(r["data"]), r["run_id"][:8]]
            under = " · ".join(escape(f) for f in facts if f)
            when = f"{status}\n{_when(r['start'])}\n{duration(r['duration_seconds'])}"
            table.add_row(f"[bold]{name}[/]\n[dim]{under}[/]", when, metrics, _gate(r, "\n"))
    return table


def print_detail(out: Console, r: dict) -> None:
    out.print(f"[bold]{escape(r['run_name'])}[/]  [dim]run {r['run_id']}[/]", soft_wrap=True)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("experiment", escape(r["experiment"]))
    ended = f", ended {_when(r['end'], long=True)[11 if _same_day(r) else 0:]}" if r["end"] else ""
    facts.add_row("status", f"[{_STATUS.get(r['status'], 'white')}]{r['status'].lower()}[/], started "
                            f"{_when(r['start'], long=True)} UTC{ended}, took {duration(r['duration_seconds'])}")
    for label, key in (("model", "model"), ("trigger", "trigger"), ("data", "data")):
        if r[key]:
            facts.add_row(label, escape(r[key]))
    if r["gate"] or r["registered_version"]:
        reasons = r["tags"].get("mlops.gate_reasons")
        facts.add_row("gate", _gate(r) + (f": {escape(reasons)}" if reasons else ""))
    if r["parent_run_id"]:
        facts.add_row("step of", r["parent_run_id"])
    out.print(facts)
    _pairs(out, "params", r["params"])
    general = {k: v for k, v in r["metrics"].items() if not k.startswith("compute.")}
    _pairs(out, "metrics", {k: f"{v:.6g}" for k, v in general.items()})
    _pairs(out, "compute", {k: _compute(k, v) for k, v in r["metrics"].items() if k.startswith("compute.")})
    _pairs(out, "tags", r["tags"])
    if r["child_runs"]:
        out.print("\n[bold]steps[/]")
        steps = Table.grid(padding=(0, 2))
        for c in r["child_runs"]:
            status = f"[{_STATUS.get(c['status'], 'white')}]{c['status'].lower()}[/]"
            steps.add_row(f"  {escape(c['run_name'])}", status, duration(c["duration_seconds"]),
                          f"[dim]{c['run_id']}[/]")
        out.print(steps)
    out.print("\n[bold]artifacts[/]")
    for a in r["artifacts"]:
        size = "" if a["is_dir"] or a["size"] is None else f"  [dim]{a['size']} bytes[/]"
        out.print(f"  {escape(a['path'])}{'/' if a['is_dir'] else ''}{size}", soft_wrap=True)
    if not r["artifacts"]:
        out.print(f"  [dim]{escape(r.get('artifacts_error') or 'none')}[/]", soft_wrap=True)
    out.print("\n[bold]registered model versions[/]")
    for v in r["model_versions"]:
        out.print(f"  {escape(v['name'])}:{v['version']}  [dim]{escape(v['source'] or '')}  {v['created'] or ''}[/]",
                  soft_wrap=True)
    if not r["model_versions"]:
        out.print(f"  [dim]{escape(r.get('model_versions_error') or 'none')}[/]", soft_wrap=True)


def _pairs(out: Console, title: str, values: dict) -> None:
    if not values:
        return
    out.print(f"\n[bold]{title}[/]")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for k in sorted(values):
        grid.add_row(f"  {escape(k)}", escape(str(values[k])))
    out.print(grid)


def _compute(name: str, value: float) -> str:
    """compute.* metrics with their unit: 723 (12m03s), 87.5%, 310 MB."""
    if name.endswith("_seconds"):
        return f"{value:.6g} ({duration(value)})"
    if name.endswith("_percent"):
        return f"{value:.3g}%"
    return f"{value:.6g} MB" if name.endswith("_mb") else f"{value:.6g}"


def _gate(r: dict, between: str = " ") -> str:
    gate, version = r["gate"], r["registered_version"]
    if not gate and not version:
        return "-"
    shown = escape(gate or "registered")
    if version:
        name, _, number = version.rpartition(":")
        shown += between + (f"v{escape(number)}" if name in ("", r["model"]) else escape(version))
    return f"[{_GATE.get(gate or 'registered', 'white')}]{shown}[/]"


def _last_part(url: str | None) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else ""


def _number(value: float) -> str:
    """0.863, 12.35, 23,150: three decimals for scores, fewer as values grow (an RMSE in dollars)."""
    if abs(value) < 10:
        return f"{value:.3f}"
    if abs(value) < 1000:
        return f"{value:.4g}"
    return f"{value:,.0f}" if abs(value) < 1e9 else f"{value:.3g}"


def _when(iso: str | None, long: bool = False) -> str:
    """'11-30 10:00' (UTC, as the rest of the command line shows times), or '2026-11-30 10:00:05'."""
    if not iso:
        return "-"
    return iso[:19].replace("T", " ") if long else iso[5:16].replace("T", " ")


def _same_day(r: dict) -> bool:
    return bool(r["start"] and r["end"] and r["start"][:10] == r["end"][:10])
