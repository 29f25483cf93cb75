"""`mlops simulate`: which retraining policy to run, backtested through the app's own handlers on a simulated clock.
cli.py registers the command; the work is mlops/simulation/."""
from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def simulate(
    data: Path | None = typer.Option(None, "--data", help="a folder of dated data files with labels (each file or "
                                                          "subfolder a day: 2026-01-05.csv, date=2026-01-05/, ...); "
                                                          "default: a generated history"),
    target: str = typer.Option("", help="the label column of --data"),
    task: str = typer.Option("", help="classification | regression (--data; default: as the labels look)"),
    generate: str = typer.Option("sea", help="the generated history: sea (SEA concepts) | hyperplane (rotating "
                                             "hyperplane)"),
    days: int = typer.Option(365, min=2, help="days of generated history (the first --warmup-days train the first "
                                              "model)"),
    drifts: str = typer.Option("sudden@120,gradual@240-270", help="the generated history's known drifts: sudden@DAY "
                                                                  "and gradual@FROM-TO, comma-separated, or none"),
    seasonal: bool = typer.Option(False, help="add a yearly swing of one feature's mean (drift retraining does not "
                                              "mend)"),
    rows_per_day: int = typer.Option(1000, min=1, help="generated rows (production requests) a day"),
    policies: Path | None = typer.Option(None, "--policies", help="a YAML file of policies (app settings each) "
                                                                  "to compare with the built-in ones"),
    policy: list[str] | None = typer.Option(None, "--policy", help="simulate only this policy (repeatable; built-in: "
                                                                   "never, weekly, daily, on-drift, on-performance)"),
    set_: list[str] | None = typer.Option(None, "--set", metavar="NAME=VALUE",
                                          help="an app setting for every policy (repeatable; a policy's "
                                               "own settings win), e.g. ROLLOUT_STEPS=50,100"),
    warmup_days: int = typer.Option(14, min=1, help="days the first model trains on before the measured days"),
    job_minutes: float = typer.Option(20, min=0, help="a training job's simulated duration"),
    label_delay_minutes: float = typer.Option(60, min=0, help="how long ground truth takes to arrive"),
    seed: int = typer.Option(0, help="fixes everything: the same seed, history and policies give the same numbers"),
    processes: int = typer.Option(0, min=0, help="policies simulated side by side (default: one per CPU)"),
    html: Path | None = typer.Option(None, "--html", help="also write the HTML report (accuracy over time per policy, "
                                                          "with its decisions) to this file"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON, nothing else"),
) -> None:
    """Backtest retraining policies: replay a history through the app's own handlers, gate, canary judge and
    monitor, on a simulated clock, once per policy, and compare what each would have done.

    \b
    Each simulated day, production asks the live model about the day's rows (answered by the real scoring code,
    split between deployments as a rollout has it), their labels arrive an hour later, and the day's labelled rows
    land as a data drop; the app's timers (retrain, monitor, reconcile) tick at their schedules. Training runs
    training/train.py; monitoring runs monitoring/run.py. A policy is a set of app settings (RETRAIN_ON,
    RETRAIN_SCHEDULE, DRIFT_THRESHOLDS, GATE_MARGIN, ROLLOUT_STEPS, ...).

    \b
    Exit code: 0 simulated, 2 bad input (a policy's setting, the policies file, the data folder, a drift spec).
    """
    from lifecycle.settings import SettingsError
    from mlops.simulation import candidates as chosen
    from mlops.simulation.engine import SimOptions
    from mlops.simulation.jobs import SimulationUnsupported
    from mlops.simulation.report_text import print_result, to_json
    from mlops.simulation.runner import check
    from mlops.simulation.runner import simulate as run_all
    try:
        history = _history(data, target, task, generate, days, drifts, seasonal, rows_per_day, seed)
        found = list(chosen.BUILT_IN) + (chosen.load_policies(policies) if policies else [])
        candidates = chosen.choose(found, policy or [])
        options = SimOptions(warmup_days=warmup_days, job_minutes=job_minutes, label_delay_minutes=label_delay_minutes,
                             seed=seed, base_settings=chosen.parse_settings(set_ or [], "--set"))
        check(history, candidates, options)      # before the progress bar: bad input prints its error alone
        if html is not None:                     # before minutes of simulation, not after
            _writable(html)
    except (ValueError, SettingsError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2) from None
    shown = err if as_json else Console()
    try:
        with _progress(shown, [c.name for c in candidates], len(history.days) - warmup_days) as tell, _quiet():
            result = run_all(history, candidates, options, processes, tell)
    except SimulationUnsupported as error:      # only what the model's setup asks the simulation cannot do
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2) from None
    unwritten = None
    if html is not None:
        from mlops.simulation.report_html import page
        try:
            html.write_text(page(result), encoding="utf-8")
        except OSError as error:                 # the result is still printed: the simulation is not lost
            unwritten = f"--html {html}: cannot write it ({error.strerror or error})"
    if as_json:
        print(json.dumps(to_json(result)))
    else:
        print_result(result, Console())
    if unwritten:
        err.print(f"[red]error:[/] {escape(unwritten)}", soft_wrap=True)
        raise typer.Exit(2)
    if html is not None:
        err.print(f"report: {escape(str(html))}", soft_wrap=True)
    sys.stdout.flush()


def _writable(html: Path) -> None:
    """The --html file's folder made, and the file writable (ValueError, naming it, if not)."""
    try:
        html.parent.mkdir(parents=True, exist_ok=True)
        if html.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        existed = html.exists()
        with html.open("a", encoding="utf-8"):
            pass
        if not existed:
            html.unlink()                        # written at the end, not left empty if the run fails
    except OSError as error:
        raise ValueError(f"--html {html}: cannot write it ({error.strerror or error})") from None


def _history(data, target, task, generate, days, drifts, seasonal, rows_per_day, seed):
    if data is not None:
        from mlops.simulation.history_folder import read_folder
        if not target:
            raise ValueError("--data needs --target, the label column")
        return read_folder(data, target, task)
    from mlops.simulation.histories import KINDS
    from mlops.simulation.histories import generate as generated
    if generate not in KINDS:
        raise ValueError(f"--generate {generate!r}: use {' or '.join(KINDS)}")
    return generated(generate, days=days, seed=seed, drifts=drifts, seasonal=seasonal, rows_per_day=rows_per_day)


@contextmanager
def _quiet():
    """The handlers' log lines unsaid, in this process as in the runner's workers: they would interleave with
    the progress, and the markers tell the story."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)


class _progress:
    """A progress bar per policy, in simulated days (on stderr with --json, so stdout stays JSON); none on a
    console that is not a terminal, where it would leave only an empty line in the output."""

    def __init__(self, console: Console, names: list[str], days: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("days"), TimeElapsedColumn(), console=console, transient=True,
                            disable=not console.is_terminal)
        self.tasks = {n: self.bar.add_task(escape(n), total=days) for n in names}

    def __enter__(self):
        self.bar.start()
        return lambda name, day: self.bar.update(self.tasks[name], completed=day)

    def __exit__(self, *exc) -> None:
        self.bar.stop()
