"""The `mlops` command line: run the local stack and look at what the lifecycle did."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from emulator.home import StackHome
from mlops.foreground import print_info as _print_info
from mlops.foreground import print_json as _json
from mlops.homes import HomeError, Resolved
from mlops.runs_command import runs
from mlops.simulate_command import simulate

app = typer.Typer(help="Event-driven MLOps for Azure: the local stack and the lifecycle's records.",
                  no_args_is_help=True, add_completion=True)
console = Console()
err = Console(stderr=True)

# Every command that reads a stack takes these two; mlops/homes.py has the rule when neither is given.
HOME_HELP = ("the stack's home (default: MLOPS_HOME, else the stack running from .mlops, else the one that ran "
             "last there: .mlops, or the demo's .mlops/demo)")
ENV_HELP = "preprod | prod, for a home holding both environments (mlops up --environments, the demo); default preprod"
JSON_HELP = "print JSON on stdout (messages go to stderr)"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            shown = version("mlops-azure")
        except PackageNotFoundError:
            shown = "unknown (not installed: pip install -e .)"
        print(f"mlops {shown}")
        raise typer.Exit()


@app.callback()
def main(_version_: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="print the version and exit")) -> None:
    """Event-driven MLOps for Azure: the local stack and the lifecycle's records.

    \b
    Which stack a command shows: --home (and --env preprod|prod), else MLOPS_HOME, else the stack running from
    .mlops, else the one that ran last (.mlops, or the demo's .mlops/demo/preprod and prod).
    """


def _resolve(home: Path | None = None, env: str | None = None) -> Resolved:
    """The home a command shows (mlops/homes.py); a dim line on stderr when it is not the one asked for."""
    from mlops.homes import resolve
    try:
        resolved = resolve(home, env)
    except HomeError as error:
        bad_option = str(error).startswith("--env")
        err.print(f"[red]{escape(str(error))}[/]", soft_wrap=True)
        raise typer.Exit(2 if bad_option else 1) from None
    if resolved.note:
        err.print(f"[dim]{escape(resolved.note)}[/]", soft_wrap=True)
    return resolved


class _Stopped(Exception):
    """The stack at this home is not running."""

    def __init__(self, resolved: Resolved) -> None:
        super().__init__(str(resolved.home.root))
        self.resolved = resolved


def _not_running(resolved: Resolved):
    from mlops.homes import read_snapshot
    snapshot = read_snapshot(resolved.home)
    stopped = f" (it stopped; its status at {snapshot['written_at']}: mlops status)" if snapshot else ""
    err.print(f"[red]The local stack at {escape(str(resolved.home.root))} is not running{stopped}.[/] Start one with "
              "[bold]mlops up[/] (or [bold]make up[/]).", soft_wrap=True)
    raise typer.Exit(1)


def _running_info(home: Path | None = None, env: str | None = None):
    from emulator.stack import StackInfo
    resolved = _resolve(home, env)
    info = StackInfo.read(resolved.home)
    if info is None:
        _not_running(resolved)
    return info


@app.command()
def up(
    app_ref: str = typer.Option("function_app:app", "--app", help="the function app to host, as module:attribute"),
    routes: Path | None = typer.Option(None, help="routing table (default infra/event-subscriptions.json)"),
    retry_scale: float | None = typer.Option(None, min=0.0001, help="compress Event Grid's retry schedule, e.g. 0.01"),
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
    as_json: bool = typer.Option(False, "--json", help="once started, print the stack's info as JSON on stdout "
                                                       "(as mlops info --json; messages go to stderr)"),
    with_dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard",
                                        help="also serve the dashboard (mlops dashboard) of each stack, on a free "
                                             "port of 127.0.0.1"),
) -> None:
    """Start the whole local stack in the foreground (home: MLOPS_HOME, else .mlops); Ctrl-C stops all of it.

    When it stops, it leaves <home>/status.json (each environment's, with --environments): what `mlops status`
    showed last, which `mlops status` and the dashboard show of the stopped stack.

    \b
    Exit code: 0 stopped by Ctrl-C (or SIGTERM), 1 it could not start (one runs from this home already, a port or
    a part failed) or a part died while running, 2 bad options.
    """
    import os

    from emulator.faults import STACK_PID
    from emulator.stack import Stack, StackOptions
    from mlops.foreground import run_in_foreground, up_environments
    os.environ[STACK_PID] = str(os.getpid())     # its processes know their stack (crash injection, orphan checks)
    extra = {"MLOPS_CONFIG": str(models.resolve())} if models else None
    options = StackOptions.from_env(app=app_ref, routing_table=routes, retry_scale=retry_scale, settings_file=settings,
                                    extra_settings=extra)
    if environments is not None:
        up_environments(options, environments, approval, as_json, with_dashboard)
        return
    if approval != "none":
        err.print("[red]--approval is for prod: give it with --environments preprod,prod[/]")
        raise typer.Exit(2)
    stack = Stack(StackHome.default(), options)
    shown = (lambda info: _json({**asdict(info), "scoring_key": None})) if as_json else _print_info
    run_in_foreground(stack, "the local stack", shown, [stack.home], as_json, with_dashboard)


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
         home: Path | None = typer.Option(None, help=HOME_HELP),
         env: str | None = typer.Option(None, help=ENV_HELP)) -> None:
    """How to reach the running local stack: connection string, endpoints, keys, functions.

    \b
    Exit code: 0 shown, 1 no stack is running there, 2 bad --env.
    """
    running = _running_info(home, env)
    if as_json:
        _json({**asdict(running), "scoring_key": _scoring_key(running)})
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


def _platform(home: Path | None = None, env: str | None = None, stopped_ok: bool = False):
    """The lifecycle's platform as the function app sees it: the running local stack's, or Azure's from
    the environment when MLOPS_PLATFORM=azure. A stopped stack raises _Stopped with `stopped_ok`, else exits 1."""
    import os

    from lifecycle.bootstrap import platform
    if os.environ.get("MLOPS_PLATFORM", "").lower() == "azure":
        return platform()
    from mlops.local import local_platform
    resolved = _resolve(home, env)
    if not resolved.running:
        if stopped_ok:
            raise _Stopped(resolved)
        _not_running(resolved)
    return local_platform(resolved.home)


@app.command()
def status(model: str = typer.Argument("", help="one model of the app (default: every model)"),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
           home: Path | None = typer.Option(None, help=HOME_HELP),
           env: str | None = typer.Option(None, help=ENV_HELP)) -> None:
    """Models and versions with metrics and lineage, training jobs, endpoints, deployments and traffic.

    Of a stack that stopped, the status it left in <home>/status.json when it stopped (said on stderr).

    \b
    Exit code: 0 shown, 1 no stack has run there (or it stopped without leaving its status), 2 unknown model or
    bad --env.
    """
    from lifecycle.model_scope import UnknownModel
    from mlops.status import collect
    from mlops.status_view import render
    try:
        shown = collect(_platform(home, env, stopped_ok=True), model)
    except UnknownModel as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    except _Stopped as stopped:
        shown = _snapshot(stopped.resolved, model)
    if as_json:
        _json(shown)
    else:
        render(console, shown)


def _snapshot(resolved: Resolved, model: str) -> dict:
    """The status a stopped stack left, of one model or all of them."""
    from mlops.homes import read_snapshot
    snapshot = read_snapshot(resolved.home)
    if snapshot is None:
        err.print(f"[red]The local stack at {escape(str(resolved.home.root))} is not running and left no "
                  "status.json[/] (stacks leave it when they stop). Start it with [bold]mlops up[/]; its "
                  "deliveries: [bold]mlops events[/], its monitoring: [bold]mlops report[/].", soft_wrap=True)
        raise typer.Exit(1)
    shown = snapshot["status"]
    if model:
        models = shown.get("app_models") or [shown]
        found = [m for m in models if m.get("model_name") == model]
        if not found:
            names = ", ".join(m.get("model_name", "?") for m in models)
            err.print(f"[red]unknown model {model!r}: the stack's models are {names}[/]")
            raise typer.Exit(2)
        shown = found[0]
    err.print(f"[dim]a snapshot of a stopped stack, written at {snapshot['written_at']} when it stopped "
              f"({escape(str(resolved.home.path('status.json')))})[/]", soft_wrap=True)
    return shown


@app.command()
def rollout(
    action: str = typer.Argument(..., help="promote | rollback | pause | resume"),
    endpoint: str | None = typer.Argument(None, help="the endpoint (default: the app's ENDPOINT_NAME)"),
    as_json: bool = typer.Option(False, "--json", help="print the rollout as JSON"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option(None, help=ENV_HELP),
) -> None:
    """Steer the endpoint's rollout by hand: promote or roll back now, pause or resume the canary.

    \b
    Exit code: 0 done, 1 refused (no rollout on the endpoint, or not in a phase that allows it) or no stack is
    running, 2 unknown action or bad --env.
    """
    from lifecycle.handlers.rollout import override
    if action not in ("promote", "rollback", "pause", "resume"):
        err.print(f"[red]unknown action {action!r}: promote, rollback, pause or resume[/]")
        raise typer.Exit(2)
    p = _platform(home, env)
    try:
        r = override(p, endpoint or p.policies.model.endpoint, action)
    except (ValueError, RuntimeError) as error:
        err.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        _json({**asdict(r), "active": r.active, "live_model": r.live_model})
        return
    console.print(f"{r.endpoint}: {r.model} on {r.colour} is now [bold]{r.phase}[/]"
                  + (" (paused)" if r.paused else ""))


@app.command()
def promote(
    action: str = typer.Argument(..., help="approve | reject"),
    model: str = typer.Argument(..., help="the promotion awaiting approval, as name:version (see `mlops status`)"),
    by: str | None = typer.Option(None, help="who decides (default: your user name)"),
    as_json: bool = typer.Option(False, "--json", help="print the promotion as JSON"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option("prod", help="the environment whose promotion it is, for a home holding both"),
) -> None:
    """In production: approve a model shared from preprod (its rollout starts), or reject it (nothing changes).

    \b
    Exit code: 0 decided, 1 refused (no such promotion awaiting approval) or no stack is running, 2 unknown
    action or bad --env.
    """
    import getpass

    from lifecycle.handlers.promotion import review
    if action not in ("approve", "reject"):
        err.print(f"[red]unknown action {action!r}: approve or reject[/]")
        raise typer.Exit(2)
    p = _platform(home, _env_if_both(home, env))
    try:
        promotion = review(p, model, approve=action == "approve", by=by or getpass.getuser())
    except ValueError as error:
        err.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        _json(asdict(promotion))
        return
    console.print(f"{promotion.model}: {promotion.status} ({promotion.reason})", soft_wrap=True)


def _env_if_both(home: Path | None, env: str | None) -> str | None:
    """`env` where the home holds both environments; None (a single stack) where it does not."""
    from mlops.homes import resolve
    try:
        return env if resolve(home, env).environment else None
    except HomeError:
        return None


def _review(job: str, approve: bool, by: str | None, as_json: bool, home: Path | None, env: str | None) -> None:
    import getpass

    from lifecycle.handlers.registration import review
    p = _platform(home, env)
    try:
        decision = review(p, job, approve=approve, by=by or getpass.getuser())
    except ValueError as error:
        err.print(f"[red]{error}[/]", soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        _json(asdict(decision))
        return
    shown = f"registered as version {decision.version}" if decision.version else decision.outcome
    console.print(f"job {job}: {shown} ({decision.reasons[-1]})", soft_wrap=True)


@app.command()
def approve(job: str = typer.Argument(..., help="the training job whose model the gate held"),
            by: str | None = typer.Option(None, help="who approves (default: your user name)"),
            as_json: bool = typer.Option(False, "--json", help="print the gate's decision as JSON"),
            home: Path | None = typer.Option(None, help=HOME_HELP),
            env: str | None = typer.Option(None, help=ENV_HELP)) -> None:
    """Register a model the gate held for a person (a likely leak, or inputs or labels that changed).

    \b
    Exit code: 0 decided, 1 refused (no model of that job held for a person) or no stack is running, 2 bad --env.
    """
    _review(job, True, by, as_json, home, env)


@app.command()
def reject(job: str = typer.Argument(..., help="the training job whose model the gate held"),
           by: str | None = typer.Option(None, help="who rejects (default: your user name)"),
           as_json: bool = typer.Option(False, "--json", help="print the gate's decision as JSON"),
           home: Path | None = typer.Option(None, help=HOME_HELP),
           env: str | None = typer.Option(None, help=ENV_HELP)) -> None:
    """Reject a model the gate held for a person; it is never registered.

    \b
    Exit code: 0 decided, 1 refused (no model of that job held for a person) or no stack is running, 2 bad --env.
    """
    _review(job, False, by, as_json, home, env)


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"{value:g}: give a number above 0")
    return value


@app.command()
def score(
    requests_: int = typer.Option(100, "--requests", min=1, help="how many requests to send (at least 1)"),
    rate: float = typer.Option(20, callback=_positive, help="requests per second (above 0)"),
    rows: int = typer.Option(1, min=1, help="rows per request (at least 1)"),
    file: Path | None = typer.Option(None, exists=True, help="CSV of feature rows (default: generated demo rows, "
                                                             "or with --model the live model's reference sample)"),
    model: str = typer.Option("", help="score this model's endpoint (default: the app's ENDPOINT_NAME)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON (no progress bar)"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option(None, help=ENV_HELP),
) -> None:
    """Send test traffic to the endpoint and show how it was answered, per deployment.

    \b
    Exit code: 0 every request answered 200, 1 some were not (or no stack is running, the endpoint does not
    exist yet, no rows to send), 2 bad options (a value of 0, an unknown model).
    """
    from rich.progress import Progress

    from lifecycle.model_scope import UnknownModel, for_model
    from mlops.traffic import Traffic
    running = _running_info(home, env)
    endpoint, scoring_uri = running.endpoint_name, running.scoring_uri
    if model:
        try:
            p = for_model(_platform(home, env), model)
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
    with Progress(console=err if as_json else console, disable=as_json) as progress:
        task = progress.add_task(f"scoring {scoring_uri}", total=requests_)
        for _ in range(requests_):
            started = time.monotonic()
            traffic.send_one()
            progress.advance(task)
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    summary = traffic.latency_summary()
    failed = [a for a in traffic.answers if a.status != 200]
    if as_json:
        _json({"endpoint": endpoint, "scoring_uri": scoring_uri, **summary,
               "errors": [a.error for a in failed if a.error][:10]})
    else:
        console.print(f"{summary['requests']} requests: status {summary['status']}, "
                      f"by deployment {summary['deployments']}, "
                      f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms", soft_wrap=True)
        errors = [a.error for a in failed if a.error]
        if errors:
            console.print(f"[yellow]first error:[/] {escape(errors[0])}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def drop(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="CSV or Parquet files"),
    prefix: str | None = typer.Option(None, help="folder in the data container (default drops/<time>/, under "
                                                 "the model's dataset root with --model)"),
    marker: bool = typer.Option(True, help="finish the drop with a _SUCCESS marker, so training starts at once"),
    model: str = typer.Option("", help="the model whose data it is (its dataset root; default: the app's only "
                                       "model)"),
    as_json: bool = typer.Option(False, "--json", help="print where the files went as JSON (progress on stderr)"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option(None, help=ENV_HELP),
) -> None:
    """Upload files into the data container as one drop, with a progress bar.

    \b
    Exit code: 0 uploaded, 1 no stack is running, 2 a file that does not exist, an unknown model or bad --env.
    """
    from lifecycle.model_scope import UnknownModel, for_model
    from mlops.local import app_settings
    from mlops.upload import upload_drop
    running = _running_info(home, env)
    values = app_settings(StackHome(Path(running.home)))
    try:
        root = for_model(_platform(home, env), model).policies.model.data_root
    except UnknownModel as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    if prefix and root and not prefix.startswith(root):
        prefix = root + prefix
    container = values.get("DATA_CONTAINER", "data")
    folder = upload_drop(running.storage_connection_string, container, files,
                         prefix or (time.strftime(f"{root}drops/%Y-%m-%dT%H-%M-%S") if root else None), marker,
                         err if as_json else console)
    if as_json:
        _json({"container": container, "folder": folder, "files": [f"{folder}{f.name}" for f in files],
               "marker": marker})
        return
    console.print(f"[green]dropped {len(files)} file(s) into {folder}[/]; follow the chain with [bold]mlops events[/]",
                  soft_wrap=True)


@app.command()
def events(
    as_json: bool = typer.Option(False, "--json", help="print a JSON list of delivery records"),
    limit: int = typer.Option(50, min=0, help="show the last N records the filters keep (0: all)"),
    event_type: str | None = typer.Option(None, "--type", help="only event types containing this, any case "
                                                               "(BlobCreated, MLOps.Model, RunStatusChanged)"),
    function: str | None = typer.Option(None, help="only functions whose name contains this (on_data_arrived)"),
    outcome: str | None = typer.Option(None, help="only these outcomes, comma-separated: delivered, failed, "
                                                  "dead-lettered, rejected, skipped, dropped, unmatched"),
    since: str | None = typer.Option(None, help="only records since a time: a duration back from now (90s, 10m, "
                                                "2h, 1d, 1h30m) or an ISO time (2026-11-30T12:00Z; UTC without an "
                                                "offset)"),
    ticks: bool = typer.Option(False, "--ticks", help="show timer ticks too (the reconciler's and the monitor's "
                                                      "invocations, hidden by default)"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option(None, help=ENV_HELP),
) -> None:
    """The delivery timeline: each event, timer tick and HTTP call handed to a function, with its outcome.

    Read from <home>/timeline.jsonl, so a stopped stack's (the demo's) shows too. Filters combine; --limit
    counts what they keep.

    \b
    Exit code: 0 shown (an empty table when nothing matches), 1 no stack has run there, 2 a bad filter
    (--since, --outcome) or --env.
    """
    from lifecycle.clock import now
    from mlops.events_view import BadFilter, Filters, select, table
    try:
        filters = Filters.parse(event_type, function, outcome, since, ticks, now())
    except BadFilter as error:
        err.print(f"[red]{escape(str(error))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    resolved = _resolve(home, env)
    if not resolved.home.timeline.exists():
        err.print(f"[red]no timeline at {escape(str(resolved.home.timeline))}:[/] no local stack has run from "
                  f"{escape(str(resolved.home.root))}", soft_wrap=True)
        raise typer.Exit(1)
    from emulator.timeline import Timeline
    records, kept, hidden = select(Timeline(resolved.home.timeline).read(), filters, limit)
    if as_json:
        _json([asdict(r) for r in records])
        return
    console.print(table(records))
    notes = []
    if len(records) < kept:
        notes.append(f"the last {len(records)} of {kept} (--limit 0: all)")
    if hidden:
        notes.append(f"{hidden} timer tick{'s' if hidden != 1 else ''} hidden (--ticks shows them)")
    if notes:
        console.print(f"[dim]{'; '.join(notes)}[/]")


@app.command()
def dashboard(
    port: int = typer.Option(0, min=0, max=65535, help="the port on 127.0.0.1 (0: a free one)"),
    key: str | None = typer.Option(None, help="the key the page and its API require (default: a new random one, "
                                              "written to <home>/dashboard.json, owner only)"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option(None, help=ENV_HELP),
) -> None:
    """A live web page of the stack on 127.0.0.1, behind a key: the timeline, each model's lineage, the rollout
    with the judge's evidence and its override buttons, monitoring over time (`mlops up` starts one too).

    It shows what `mlops status` shows; a stopped stack's (the demo's) from the status it left, read-only.

    \b
    Exit code: 0 stopped by Ctrl-C, 1 it could not listen (the port is taken), 2 bad options.
    """
    from mlops.dashboard.command import run_dashboard
    raise typer.Exit(run_dashboard(_resolve(home, env).home, port, key, console))


@app.command()
def demo(timeout: float = typer.Option(120, callback=_positive, help="seconds to wait for each step (above 0)"),
         as_json: bool = typer.Option(False, "--json", help="the steps go to stderr; at the end, a JSON summary on "
                                                            "stdout (outcome, steps, homes, each model's status)")
         ) -> None:
    """Run the lifecycle end to end on fresh local stacks (preprod and prod, under <home>/demo) and show each step.

    The stacks stop at the end and leave their records: `mlops status`, `mlops events` and `mlops dashboard`
    show the demo's run afterwards (preprod; --env prod for production), until another stack runs.

    \b
    Exit code: 0 the whole lifecycle ran, 1 a step failed or timed out (or the stacks could not start).
    """
    from mlops.demo import run_demo
    sys.exit(run_demo(err if as_json else console, timeout, as_json=as_json))


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


app.command()(simulate)
app.command()(runs)


@app.command()
def report(
    out: Path | None = typer.Option(None, help="the HTML file (default <stack home>/reports/monitoring-<time>.html)"),
    home: Path | None = typer.Option(None, help=HOME_HELP),
    env: str | None = typer.Option(None, help=ENV_HELP),
    model: str | None = typer.Option(None, help="a model's name (its version monitored last), or name:version "
                                                "(default: the model monitored last)"),
    as_json: bool = typer.Option(False, "--json", help="print the report's path and notes as JSON"),
) -> None:
    """Write the HTML monitoring report of the running (or last) local stack and print its path.

    \b
    Exit code: 0 written, 1 no stack has run there, no monitoring pass recorded yet, or the file cannot be
    written, 2 bad --env.
    """
    from mlops.report_commands import ReportError, stack_report
    resolved = _resolve(home, env)
    try:
        with (err if as_json else console).status("writing the monitoring report"):
            path, notes = stack_report(resolved.home, out, model)
    except ReportError as error:
        err.print(f"[red]{escape(str(error))}[/]", soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        _json({"path": str(path), "notes": notes})
        return
    for note in notes:
        err.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)
    console.print(escape(str(path)), soft_wrap=True)


if __name__ == "__main__":
    app()
