"""`mlops up` in the foreground: start the stack (or preprod and prod), show how to reach it, serve its
dashboards, and on Ctrl-C (or a part dying) leave each stack's status.json and stop it all. The command in
cli.py only parses its options."""
from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emulator.home import StackHome

console = Console()
err = Console(stderr=True)


def print_json(value) -> None:
    print(json.dumps(value, indent=2, default=str))


def up_environments(options, environments: str, approval: str, as_json: bool, with_dashboard: bool) -> None:
    """`mlops up --environments preprod,prod`: both in the foreground until Ctrl-C or a part dies."""
    from emulator.environments import Environments, parse_environments
    from emulator.stack import StackError
    try:
        parse_environments(environments)
        running = Environments(StackHome.default(), options, approval=approval)
    except StackError as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None

    def show(info) -> None:
        if as_json:
            print_json({**asdict(info), "stacks": {name: asdict(running.infos[name]) for name in running.infos}})
            return
        for name in ("preprod", "prod"):
            console.rule(f"[bold]{name}[/]")
            print_info(running.infos[name])
            console.print(f"[dim]mlops status | info | events | drop ... --env {name}[/]", soft_wrap=True)
        console.rule()
        console.print(f"registry [bold]{info.registry['name']}[/] shared by both; prod's approval: {info.approval}; "
                      f"both environments: {running.info_path}", soft_wrap=True)
    run_in_foreground(running, "preprod and prod", show, list(running.homes.values()), as_json, with_dashboard)


def run_in_foreground(runner, what: str, show, homes: list[StackHome], as_json: bool = False,
                       with_dashboard: bool = False) -> None:
    """Start `runner` (a Stack, or the Environments), show it, and keep it until Ctrl-C or a part dies; before
    it stops, each stack's status goes to <home>/status.json."""
    from emulator.stack import AlreadyRunning, StackError
    out = err if as_json else console
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        with out.status(f"starting {what}") as status:
            info = runner.start(progress=lambda message: status.update(message))
    except AlreadyRunning as error:
        err.print(f"[yellow]{error}[/]")
        raise typer.Exit(1) from None
    except StackError as error:
        err.print(f"[red]{what.capitalize()} could not start:[/] {error}")
        raise typer.Exit(1) from None
    show(info)
    sys.stdout.flush()
    dashboards = _start_dashboards(homes, out) if with_dashboard else []
    out.print(f"[green]{what.capitalize()}: running.[/] Ctrl-C stops it all.")
    failure = None
    while not stopping.wait(0.5):
        failure = runner.failure()
        if failure:
            err.print(f"[red]{failure}[/]")
            break
    for running_dashboard in dashboards:
        running_dashboard.stop()
    with out.status(f"stopping {what}: writing its status"):
        _write_snapshots(homes, out)
    with out.status(f"stopping {what}"):
        runner.stop()
    out.print(f"{what.capitalize()}: stopped.")
    if failure:
        raise typer.Exit(1)


def _start_dashboards(homes: list[StackHome], out: Console) -> list:
    """A dashboard per stack, each on a free port; one that cannot listen is only warned of."""
    from mlops.dashboard.server import Dashboard
    started = []
    for home in homes:
        try:
            started.append(Dashboard(home).start())
        except OSError as error:
            err.print(f"[yellow]the dashboard of {escape(str(home.root))} could not start: {escape(str(error))}[/]",
                      soft_wrap=True)
            continue
        shown = f" ({home.root.name})" if len(homes) > 1 else ""
        out.print(f"dashboard{shown}: [bold]{started[-1].url}/?key={started[-1].key}[/]", soft_wrap=True)
    return started


def _write_snapshots(homes: list[StackHome], out: Console) -> list[Path]:
    """<home>/status.json for each stack about to stop; a stack that cannot say its status is only warned of."""
    from mlops.homes import write_snapshot
    written = []
    for home in homes:
        try:
            written.append(write_snapshot(home))
        except Exception as error:          # noqa: BLE001  (a snapshot must never keep a stack from stopping)
            err.print(f"[yellow]could not write {home.path('status.json')}: {escape(str(error))}[/]", soft_wrap=True)
    return written


def print_info(info) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("storage", info.blob_endpoint)
    table.add_row("event grid topic", info.eventgrid_endpoint)
    table.add_row("functions host", info.functions_url)
    for fn in info.functions:
        detail = fn.get("schedule") or fn.get("route") or ""
        table.add_row("", f"{fn['name']}  [dim]{fn['trigger']} {detail}[/]")
    table.add_row("home", info.home)
    table.columns[1].overflow = "fold"
    console.print(table)
    console.print("[dim]keys and the connection string: mlops info --json[/]")
