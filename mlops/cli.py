"""The `mlops` command line: run the local stack and look at what the lifecycle did."""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from emulator.home import StackHome

app = typer.Typer(help="Event-driven MLOps for Azure: the local stack and the lifecycle's records.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)


def _running_info():
    from emulator.stack import StackInfo
    info = StackInfo.read(StackHome.default())
    if info is None:
        err.print("[red]No local stack is running.[/] Start one with [bold]mlops up[/] (or [bold]make up[/]).")
        raise typer.Exit(1)
    return info


@app.command()
def up(
    app_ref: str = typer.Option("function_app:app", "--app", help="the function app to host, as module:attribute"),
    routes: Path | None = typer.Option(None, help="routing table (default infra/event-subscriptions.json)"),
    retry_scale: float | None = typer.Option(None, help="compress Event Grid's retry schedule, e.g. 0.01"),
    settings: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                            help="app settings in local.settings.json's format (default "
                                                 "local.settings.json, else local.settings.example.json)"),
    environments: str | None = typer.Option(None, help="preprod,prod: both environments side by side (one "
                                                       "Azurite, a shared model registry, a stack each under "
                                                       "<home>/preprod and <home>/prod)"),
    approval: str = typer.Option("none", help="with --environments: none | required, whether a person approves "
                                              "a shared model before prod rolls it out (PROMOTION_APPROVAL)"),
    models: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                       help="the models file (MLOPS_CONFIG), e.g. mlops.yaml: several models, each "
                                            "with its data, training and policies"),
) -> None:
    """Start the whole local stack in the foreground; Ctrl-C stops all of it."""
    import os

    from emulator.faults import STACK_PID
    from emulator.stack import Stack, StackOptions
    os.environ[STACK_PID] = str(os.getpid())     # its processes know their stack (crash injection, orphan checks)
    extra = {"MLOPS_CONFIG": str(models.resolve())} if models else None
    options = StackOptions.from_env(app=app_ref, routing_table=routes, retry_scale=retry_scale, settings_file=settings,
                                    extra_settings=extra)
    if environments is not None:
        _up_environments(options, environments, approval)
        return
    if approval != "none":
        err.print("[red]--approval is for prod: give it with --environments preprod,prod[/]")
        raise typer.Exit(2)
    _run_in_foreground(Stack(StackHome.default(), options), "the local stack", _print_info)


def _up_environments(options, environments: str, approval: str) -> None:
    """`mlops up --environments preprod,prod`: both in the foreground until Ctrl-C or a part dies."""
    from emulator.environments import Environments, parse_environments
    from emulator.stack import StackError
    try:
        parse_environments(environments)
        running = Environments(StackHome.default(), options, approval=approval)
    except StackError as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2)

    def show(info) -> None:
        for name in ("preprod", "prod"):
            console.rule(f"[bold]{name}[/]")
            _print_info(running.infos[name])
            console.print(f"[dim]MLOPS_HOME={running.homes[name].root} mlops status | info | events | drop ...[/]",
                          soft_wrap=True)
        console.rule()
        console.print(f"registry [bold]{info.registry['name']}[/] shared by both; prod's approval: {info.approval}; "
                      f"both environments: {running.info_path}", soft_wrap=True)
    _run_in_foreground(running, "preprod and prod", show)


def _run_in_foreground(runner, what: str, show) -> None:
    """Start `runner` (a Stack, or the Environments), show it, and keep it until Ctrl-C or a part dies."""
    from emulator.stack import AlreadyRunning, StackError
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        with console.status(f"starting {what}") as status:
            info = runner.start(progress=lambda message: status.update(message))
    except AlreadyRunning as error:
        err.print(f"[yellow]{error}[/]")
        raise typer.Exit(1)
    except StackError as error:
        err.print(f"[red]{what.capitalize()} could not start:[/] {error}")
        raise typer.Exit(1)
    show(info)
    console.print(f"[green]{what.capitalize()}: running.[/] Ctrl-C stops it all.")
    failure = None
    while not stopping.wait(0.5):
        failure = runner.failure()
        if failure:
            err.print(f"[red]{failure}[/]")
            break
    with console.status(f"stopping {what}"):
        runner.stop()
    console.print(f"{what.capitalize()}: stopped.")
    if failure:
        raise typer.Exit(1)


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """How to reach the running local stack: connection string, endpoints, keys, functions."""
    running = _running_info()
    if as_json:
        print(json.dumps({**asdict(running), "scoring_key": _scoring_key(running)}, indent=2))
    else:
        _print_info(running)


def _scoring_key(info, endpoint: str = "") -> str | None:
    """The endpoint's key (default: the app's ENDPOINT_NAME), once the chain has created the endpoint."""
    from lifecycle.adapters.local_ml import LocalAMLError
    from mlops.local import local_platform
    try:
        return local_platform(StackHome(Path(info.home))).endpoints.scoring_key(endpoint or info.endpoint_name)
    except LocalAMLError:
        return None


def _platform():
    """The lifecycle's platform as the function app sees it: the running local stack's, or Azure's from
    the environment when MLOPS_PLATFORM=azure."""
    import os

    from lifecycle.bootstrap import platform
    if os.environ.get("MLOPS_PLATFORM", "").lower() == "azure":
        return platform()
    from mlops.local import local_platform
    return local_platform(StackHome(Path(_running_info().home)))


@app.command()
def status(model: str = typer.Argument("", help="one model of the app (default: every model)"),
           as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Models and versions with metrics and lineage, training jobs, endpoints, deployments and traffic."""
    from lifecycle.model_scope import UnknownModel
    from mlops.status import collect
    from mlops.status_view import render
    try:
        shown = collect(_platform(), model)
    except UnknownModel as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(shown, indent=2, default=str))
    else:
        render(console, shown)


@app.command()
def rollout(
    action: str = typer.Argument(..., help="promote | rollback | pause | resume"),
    endpoint: str | None = typer.Argument(None, help="the endpoint (default: the app's ENDPOINT_NAME)"),
) -> None:
    """Steer the endpoint's rollout by hand: promote or roll back now, pause or resume the canary."""
    from lifecycle.handlers.rollout import override
    p = _platform()
    try:
        r = override(p, endpoint or p.policies.model.endpoint, action)
    except (ValueError, RuntimeError) as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(1)
    console.print(f"{r.endpoint}: {r.model} on {r.colour} is now [bold]{r.phase}[/]"
                  + (" (paused)" if r.paused else ""))


@app.command()
def promote(
    action: str = typer.Argument(..., help="approve | reject"),
    model: str = typer.Argument(..., help="the promotion awaiting approval, as name:version (see `mlops status`)"),
    by: str | None = typer.Option(None, help="who decides (default: your user name)"),
) -> None:
    """In production: approve a model shared from preprod (its rollout starts), or reject it (nothing changes)."""
    import getpass

    from lifecycle.handlers.promotion import review
    if action not in ("approve", "reject"):
        err.print(f"[red]unknown action {action!r}: approve or reject[/]")
        raise typer.Exit(2)
    try:
        promotion = review(_platform(), model, approve=action == "approve", by=by or getpass.getuser())
    except ValueError as error:
        err.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"{promotion.model}: {promotion.status} ({promotion.reason})", soft_wrap=True)


def _review(job: str, approve: bool, by: str | None) -> None:
    import getpass

    from lifecycle.handlers.registration import review
    try:
        decision = review(_platform(), job, approve=approve, by=by or getpass.getuser())
    except ValueError as error:
        err.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1)
    shown = f"registered as version {decision.version}" if decision.version else decision.outcome
    console.print(f"job {job}: {shown} ({decision.reasons[-1]})", soft_wrap=True)


@app.command()
def approve(job: str = typer.Argument(..., help="the training job whose model the gate held"),
            by: str | None = typer.Option(None, help="who approves (default: your user name)")) -> None:
    """Register a model the gate held for a person (a likely leak, or inputs or labels that changed)."""
    _review(job, True, by)


@app.command()
def reject(job: str = typer.Argument(..., help="the training job whose model the gate held"),
           by: str | None = typer.Option(None, help="who rejects (default: your user name)")) -> None:
    """Reject a model the gate held for a person; it is never registered."""
    _review(job, False, by)


@app.command()
def score(
    requests_: int = typer.Option(100, "--requests", help="how many requests to send"),
    rate: float = typer.Option(20, help="requests per second"),
    rows: int = typer.Option(1, help="rows per request"),
    file: Path | None = typer.Option(None, exists=True, help="CSV of feature rows (default: generated demo rows, "
                                                             "or with --model the live model's reference sample)"),
    model: str = typer.Option("", help="score this model's endpoint (default: the app's ENDPOINT_NAME)"),
) -> None:
    """Send test traffic to the endpoint and show how it was answered, per deployment."""
    import time

    from rich.progress import Progress

    from lifecycle.model_scope import UnknownModel, for_model
    from mlops.traffic import Traffic
    running = _running_info()
    endpoint, scoring_uri = running.endpoint_name, running.scoring_uri
    if model:
        try:
            p = for_model(_platform(), model)
        except UnknownModel as error:
            err.print(f"[red]{error}[/]")
            raise typer.Exit(2) from None
        endpoint = p.policies.model.endpoint
        scoring_uri = scoring_uri.replace(f"/endpoints/{running.endpoint_name}/", f"/endpoints/{endpoint}/")
    key = _scoring_key(running, endpoint)
    if key is None:
        err.print(f"[red]endpoint {endpoint} does not exist yet:[/] drop data first (mlops drop)")
        raise typer.Exit(1)
    from mlops.score_rows import NoRows, file_rows, reference_rows
    try:
        columns, data = file_rows(file) if file or not model else reference_rows(p)
    except NoRows as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    traffic = Traffic(scoring_uri, key, columns, data, rate=rate, rows_per_request=rows)
    with Progress(console=console) as progress:
        task = progress.add_task(f"scoring {scoring_uri}", total=requests_)
        for _ in range(requests_):
            started = time.monotonic()
            traffic.send_one()
            progress.advance(task)
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    summary = traffic.summary()
    latencies = sorted(a.latency_ms for a in traffic.answers)
    console.print(f"{summary['requests']} requests: status {summary['status']}, "
                  f"by deployment {summary['deployments']}, "
                  f"p50 {latencies[len(latencies) // 2]:.1f} ms, "
                  f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.1f} ms")
    errors = [a.error for a in traffic.answers if a.error]
    if errors:
        console.print(f"[yellow]first error:[/] {errors[0]}")


@app.command()
def drop(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="CSV or Parquet files"),
    prefix: str | None = typer.Option(None, help="folder in the data container (default drops/<time>/, under "
                                                 "the model's dataset root with --model)"),
    marker: bool = typer.Option(True, help="finish the drop with a _SUCCESS marker, so training starts at once"),
    model: str = typer.Option("", help="the model whose data it is (its dataset root; default: the app's only "
                                       "model)"),
) -> None:
    """Upload files into the data container as one drop, with a progress bar."""
    from lifecycle.model_scope import UnknownModel, for_model
    from mlops.local import app_settings
    from mlops.upload import upload_drop
    running = _running_info()
    values = app_settings(StackHome(Path(running.home)))
    try:
        root = for_model(_platform(), model).policies.model.data_root
    except UnknownModel as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    if prefix and root and not prefix.startswith(root):
        prefix = root + prefix
    folder = upload_drop(running.storage_connection_string, values.get("DATA_CONTAINER", "data"), files,
                         prefix or (time.strftime(f"{root}drops/%Y-%m-%dT%H-%M-%S") if root else None), marker,
                         console)
    console.print(f"[green]dropped {len(files)} file(s) into {folder}[/]; follow the chain with [bold]mlops events[/]")


def _print_info(info) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("storage", info.blob_endpoint)
    table.add_row("event grid topic", info.eventgrid_endpoint)
    table.add_row("functions host", info.functions_url)
    for fn in info.functions:
        detail = fn.get("schedule") or fn.get("route") or ""
        table.add_row("", f"{fn['name']}  [dim]{fn['trigger']} {detail}[/]")
    table.add_row("home", info.home)
    console.print(table)
    console.print("[dim]keys and the connection string: mlops info --json[/]")


@app.command()
def events(
    as_json: bool = typer.Option(False, "--json", help="print a JSON list of delivery records"),
    limit: int = typer.Option(50, help="show the last N records (0: all)"),
    function: str | None = typer.Option(None, help="only this function"),
) -> None:
    """The delivery timeline: each event, timer tick and HTTP call handed to a function, with its outcome."""
    from emulator.timeline import Timeline
    records = [r for r in Timeline(StackHome.default().timeline).read() if not function or r.function == function]
    if limit:
        records = records[-limit:]
    if as_json:
        print(json.dumps([asdict(r) for r in records], indent=2))
        return
    table = Table("time", "event", "type", "subject", "function", "try", "outcome")
    colours = {"delivered": "green", "failed": "yellow", "dead-lettered": "red", "dropped": "red", "rejected": "red",
               "unmatched": "dim"}
    for r in records:
        outcome = f"[{colours.get(r.outcome, 'white')}]{r.outcome}[/]" + (f"\n[dim]{r.detail}[/]" if r.detail else "")
        table.add_row(r.time[11:23], r.event_id[:8], r.event_type, _short(r.subject), r.function or "-",
                      str(r.attempt), outcome)
    console.print(table)


def _short(subject: str, width: int = 48) -> str:
    return subject if len(subject) <= width else "…" + subject[-(width - 1):]


@app.command()
def demo(timeout: float = typer.Option(120, help="seconds to wait for each step")) -> None:
    """Run the lifecycle end to end on a fresh local stack and show each step."""
    from mlops.demo import run_demo
    sys.exit(run_demo(console, timeout))


@app.command()
def drift(
    reference: str = typer.Argument(..., help="reference: a data file, a folder of them, a quoted glob "
                                              "('ref/*.csv'), or a saved profile.json"),
    current: str = typer.Argument(..., help="current data: a data file, a folder of them, or a quoted glob"),
    as_json: bool = typer.Option(False, "--json", help="print the drift report as JSON (with the decision and the "
                                                       "warnings), nothing else"),
    html: Path | None = typer.Option(None, "--html", help="also write an HTML report to this file (written before "
                                                          "anything is printed)"),
    target: str | None = typer.Option(None, help="the label column, left out of the comparison"),
    threshold: list[str] | None = typer.Option(None, "--threshold", metavar="METRIC=VALUE",
                                               help="a threshold of monitoring.drift.Thresholds, e.g. psi=0.25 or "
                                                    "fdr=0.05; repeatable; overrides DRIFT_THRESHOLDS"),
    require_same_columns: bool = typer.Option(False, "--require-same-columns",
                                              help="columns only on one side are an error (exit 2), not a warning"),
) -> None:
    """Compare current data with a reference for data drift, by the monitor's rules.

    \b
    Data: .csv, .csv.gz, .parquet/.pq, .json (a JSON array of rows, or JSON lines), .jsonl/.ndjson (rows, or the
    data collector's {"data": [rows]} lines; gzipped too), folders (searched recursively) and quoted globs.
    Thresholds: the monitor's defaults, then the DRIFT_THRESHOLDS setting (psi=0.25,fdr=0.05), then --threshold.

    \b
    Exit code: 0 no drift, 1 drift, 2 bad input (unreadable or empty data, unknown threshold, mismatched columns
    with --require-same-columns).
    """
    import os

    from rich.markup import escape

    from mlops.drift_command import PipeConsole, drift_table, run_drift, thresholds, verdict, write_html
    from mlops.drift_inputs import InputError
    try:
        run = run_drift(reference, current, target, thresholds(threshold, os.environ.get("DRIFT_THRESHOLDS", "")),
                        require_same_columns)
        # the file first: a closed pipe on stdout (`| head -1`) must not lose it
        written = write_html(html, run) if html is not None else None
    except InputError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2)
    code = 1 if run.report.drifted else 0
    for warning in run.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    out = PipeConsole()
    try:
        if as_json:
            print(json.dumps(run.to_dict()))
        else:
            out.print(drift_table(run.report))
            out.print(f"[dim]rule: {escape(run.decision['rule'])}[/]", soft_wrap=True)
            out.print(f"[{'red' if code else 'green'}]{escape(verdict(run.report))}[/]", soft_wrap=True)
        if written is not None:
            (err if as_json else out).print(f"report: {escape(str(written))}", soft_wrap=True)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader stopped early (`| head`): as other command-line tools, stop quietly with the decision's
        # code; stdout goes to /dev/null so that the interpreter's last flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(code)


@app.command()
def report(
    out: Path | None = typer.Option(None, help="the HTML file (default <stack home>/reports/monitoring-<time>.html)"),
    home: Path | None = typer.Option(None, help="the stack's home (default .mlops, or MLOPS_HOME)"),
    model: str | None = typer.Option(None, help="a model's name (its version monitored last), or name:version "
                                                "(default: the model monitored last)"),
) -> None:
    """Write the HTML monitoring report of the running (or last) local stack and print its path."""
    from rich.markup import escape

    from mlops.report_commands import ReportError, stack_report
    try:
        with console.status("writing the monitoring report"):
            path, notes = stack_report(StackHome(home.resolve()) if home else StackHome.default(), out, model)
    except ReportError as error:
        err.print(f"[red]{escape(str(error))}[/]", soft_wrap=True)
        raise typer.Exit(1)
    for note in notes:
        err.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)
    console.print(escape(str(path)), soft_wrap=True)


if __name__ == "__main__":
    app()
