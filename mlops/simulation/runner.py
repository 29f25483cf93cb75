"""A whole simulation: each policy's run (side by side in processes of their own), scored against the history's
known drifts, and the recommendation."""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from lifecycle.core.policies import PolicyError, check_schedule
from lifecycle.settings import SettingsError
from mlops.simulation import scoring
from mlops.simulation.engine import Candidate, SimOptions, app_settings, measured_start, policies_of, run_policy
from mlops.simulation.histories import History
from mlops.simulation.outcome import DriftPoint, PolicyRun, SimulationResult

Progress = Callable[[str, int], None]       # (policy, measured days done)


def check(history: History, candidates: list[Candidate], options: SimOptions) -> None:
    """Each policy's settings built as the app builds them, before anything runs: a SettingsError names the
    policy and the setting."""
    if not candidates:
        raise SettingsError("no policy to simulate")
    if sum(len(day) for day in history.days[:options.warmup_days]) == 0:
        raise SettingsError(f"the first {options.warmup_days} day(s) of the history hold no rows: the first model "
                            "trains on them (--warmup-days)")
    if len(history.days) <= options.warmup_days:
        raise SettingsError(f"the history has {len(history.days)} day(s): more than the {options.warmup_days} warm-up "
                            "day(s) are needed (--warmup-days)")
    for candidate in candidates:
        try:
            settings = app_settings(history, candidate, options)
            for name in ("RETRAIN_SCHEDULE", "MONITOR_SCHEDULE"):
                try:
                    check_schedule(settings[name] or "-")      # the timers' own rule (the models file's too)
                except PolicyError as error:
                    raise SettingsError(f"app setting {name} is {settings[name]!r}: "
                                        f"{str(error).removeprefix('must be ')}") from None
            policies_of(history, settings)
        except SettingsError as error:
            raise SettingsError(f"policy {candidate.name!r}: {error}") from None


def simulate(history: History, candidates: list[Candidate], options: SimOptions, processes: int = 0,
             progress: Progress | None = None) -> SimulationResult:
    check(history, candidates, options)
    processes = processes or min(len(candidates), os.cpu_count() or 1)
    if processes <= 1:
        runs = [_run(history, c, options, progress) for c in candidates]
    else:
        runs = _in_processes(history, candidates, options, processes, progress)
    drifts = measured_drifts(history, options)
    outcomes = [scoring.score(run, drifts if history.drifts_known else None) for run in runs]
    metric = "r2" if history.task == "regression" else "accuracy"
    return SimulationResult(
        history=history.description, task=history.task, metric=metric,
        start=measured_start(history, options).isoformat(), days=len(history.days) - options.warmup_days,
        seed=options.seed, drifts=drifts, outcomes=tuple(outcomes),
        recommendation=scoring.recommend(outcomes, metric=metric), warmup_days=options.warmup_days,
        notes=tuple(f"{run.name}: {len(run.undelivered)} event(s) a handler failed on after every retry, e.g. "
                    f"{run.undelivered[0]}" for run in runs if run.undelivered))


def measured_drifts(history: History, options: SimOptions) -> tuple[DriftPoint, ...]:
    """The history's drifts in measured days."""
    w = options.warmup_days
    # a drift still under way when the measured days start is measured from day 0; one over by then is left out
    return tuple(DriftPoint(max(0, d.day - w), d.ends - w, d.kind, d.what) for d in history.drifts if d.ends > w)


def _run(history: History, candidate: Candidate, options: SimOptions, progress: Progress | None) -> PolicyRun:
    return run_policy(history, candidate, options,
                      progress=(lambda day: progress(candidate.name, day)) if progress else None)


def _in_processes(history: History, candidates: list[Candidate], options: SimOptions, processes: int,
                  progress: Progress | None) -> list[PolicyRun]:
    context = multiprocessing.get_context("spawn")     # a fresh interpreter: no threads or clock forked over
    with context.Manager() as manager:
        queue = manager.Queue() if progress else None
        with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
            futures = [pool.submit(_worker, history, c, options, queue, os.getpid()) for c in candidates]
            while queue is not None and not all(f.done() for f in futures):
                _report(queue, progress)
            if queue is not None:
                _report(queue, progress, wait=False)
            return [f.result() for f in futures]


def _report(queue, progress: Progress | None, wait: bool = True) -> None:
    import queue as queues
    try:
        while True:
            name, day = queue.get(timeout=0.2) if wait else queue.get_nowait()
            if progress:
                progress(name, day)
            wait = False
    except queues.Empty:
        return


def _worker(history: History, candidate: Candidate, options: SimOptions, queue, parent: int) -> PolicyRun:
    import logging
    logging.disable(logging.WARNING)        # the handlers' log lines would interleave; the markers tell the story

    def tell(name: str, day: int) -> None:
        if os.getppid() != parent:          # the command was stopped (killed, not interrupted): stop too
            os._exit(1)
        if queue is not None:
            queue.put((name, day))
    return _run(history, candidate, options, tell)
