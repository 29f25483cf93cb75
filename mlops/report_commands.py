"""What `mlops report` does: write the monitoring report of the local stack. The command in cli.py only parses
arguments and prints. (`mlops drift` is mlops/drift_command.py.)"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from emulator.home import StackHome
from lifecycle.ports import Registry, State


class ReportError(RuntimeError):
    """The report cannot be made (no stack, no monitoring yet); the message says what to do."""


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
    compute = stack_compute(home, name, notes)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out or home.path("reports", f"monitoring-{stamp}.html")
    try:
        write_report(path, profile, [r.result for r in runs], title=f"Monitoring of {model}", compute=compute)
    except OSError as error:
        raise ReportError(f"{path}: cannot write the report: {error.strerror or error}") from None
    return path, notes


def stack_compute(home: StackHome, model_name: str, notes: list[str]) -> dict | None:
    """The model's training compute as `mlops status` shows it: collected from the running stack, or from the
    status a stopped one left (<home>/status.json); None when neither has it (a note says why, when it failed)."""
    from emulator.stack import StackInfo
    from mlops.homes import read_snapshot
    if StackInfo.read(home) is not None:
        from mlops.local import local_platform
        from mlops.status import collect
        try:
            status = collect(local_platform(home), model_name)
        except Exception as error:      # the monitoring report stands without it: say so, and write it
            notes.append(f"training compute could not be read from the stack: {error}")
            return None
    else:
        snapshot = read_snapshot(home)
        status = snapshot["status"] if snapshot else {}
    models = status.get("app_models") or [status]
    return next((m.get("compute") for m in models if m.get("model_name") == model_name), None)


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
