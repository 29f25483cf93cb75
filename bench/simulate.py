"""`mlops simulate` benchmark: a year of daily data through the app's own handlers, beside a bare scikit-learn loop.

    .venv/bin/python bench/simulate.py [--days 365] [--rows-per-day 1000] [--policy NAME ...] [--processes N]
                                       [--quick] [--json] [--timeout SECONDS]

The user's command, timed whole as a process (spawn to exit, imports and the policies' worker processes included):

    mlops simulate --days 365 --rows-per-day 1000 --warmup-days 14 --drifts sudden@120,gradual@240-270 --json

the default generated history (SEA concepts, seed 0, a sudden drift at day 120 and a gradual one over days
240-270), every built-in policy (never, weekly, daily, on-drift, on-performance) unless --policy names some. With
--days other than 365 the drifts move with it (the same fractions of the history: --quick is 60 days, drifts
sudden@20,gradual@39-44). Printed: the wall time, the measured days x policies, the speed-up over real time
(measured days x 86,400 s / wall seconds: for the whole run, and per policy on the policy's own wall_seconds, which
run side by side in --processes processes), and per policy from the command's JSON its trainings, mean accuracy
and its wall_seconds split into training_seconds (training/train.py in-process), monitoring_seconds
(monitoring/run.py in-process) and the rest (the handlers, routing, serving through deployment/score.py, state).
Peak memory: the largest single process (os.wait4's ru_maxrss, which includes the waited-for workers) and the
whole process tree's summed RSS, sampled with psutil every 0.25 s.

The peer, side by side in the same run, is a lower bound on the model work: the same history (the same call to
mlops.simulation.histories.generate in a child process, the same rows) replayed by a plain loop with no lifecycle
at all. For each policy it does exactly as many fits as the simulation started trainings for it (read from the
JSON's "trained" markers, at the same simulated times), plus the first model on the warm-up days:

* a fit is scikit-learn's HistGradientBoostingClassifier as training/train.py builds it (max_iter 100,
  learning_rate 0.1, random_state 42), on the rows that had landed by then within the policy's TRAINING_WINDOW
  (from the JSON's settings: "14 days" for weekly and daily; the app's own TrainingWindow parser), less a 20%
  stratified holdout cut from the rows new since the previous fit (from all rows when that holds fewer than 20),
  as training/split.py cuts it; a policy that retrains on alerts alone (RETRAIN_ON drift or performance: on-drift,
  on-performance) fits, as the app does (lifecycle/steps/alert_response.py), on the day of traffic the monitor
  pass that raised the alert looked at, alone; so it fits about as many rows as the training jobs do;
* every fit goes live at the start of the next day: no gate, no champion scoring, no canary, no rollback;
* each measured day's rows are predicted once, in one call, by the live model, and scored on their labels.

It does not: read or write CSV files, build the preprocessing pipeline, evaluate the holdout, write an MLflow model
or its reference profile, check leakage, route an event, keep state, split traffic, serialise requests as JSON,
monitor anything, nor wait for labels. The ratio (simulate wall / bare loop wall) is therefore what all of that
costs over the bare model work. Its accuracy differs from the simulation's because every fit is promoted at once.
The peer's policies run in the same number of processes as the simulation's (spawned, one OpenMP thread each).

Nothing asserts timings; always exits 0 (a failed command is printed, with its last stderr line).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAYS, QUICK_DAYS, WARMUP = 365, 60, 14
DRIFTS = ((120, None), (240, 270))          # at 365 days: sudden@120, gradual@240-270 (the command's default)
MIN_HOLDOUT_ROWS, TEST_SIZE, SEED = 20, 0.2, 42   # training/split.py and training/train.py's defaults
DAY_SECONDS = 86_400


def drifts_for(days: int) -> str:
    """The default drifts at the same fractions of a history of `days` days ("sudden@120,gradual@240-270" at 365)."""
    if days == DAYS:
        return "sudden@120,gradual@240-270"
    at = lambda d: max(1, min(days - 1, round(d * days / DAYS)))  # noqa: E731
    sudden, (first, ends) = at(DRIFTS[0][0]), DRIFTS[1]
    a, b = at(first), max(at(first) + 1, min(days, round(ends * days / DAYS)))
    return f"sudden@{sudden}" + (f",gradual@{a}-{b}" if a > sudden and b <= days else "")


def mlops_command() -> list[str]:
    entry = ROOT / ".venv" / "bin" / "mlops"
    return [str(entry)] if entry.exists() else [sys.executable, "-m", "mlops.cli"]


def timed_tree(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Wall time from spawn to exit; peak RSS of the largest process (os.wait4, waited-for descendants included)
    and of the whole tree summed (psutil, sampled every 0.25 s); exit code, stdout, stderr's tail."""
    import psutil
    start = time.perf_counter()
    tree_peak = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        watched = psutil.Process(proc.pid)
        next_sample = start
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now > start + timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout:.0f} s", "seconds": now - start}
            if now >= next_sample:
                next_sample = now + 0.25
                try:
                    rss = watched.memory_info().rss
                    for child in watched.children(recursive=True):
                        try:
                            rss += child.memory_info().rss
                        except psutil.Error:
                            pass
                    tree_peak = max(tree_peak, rss)
                except psutil.Error:
                    pass
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    result: dict[str, Any] = {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "tree_peak_mb": tree_peak / 2**20,
                              "exit": code, "stdout": stdout}
    if code != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        result["error"] = (lines or [f"exit {code}"])[-1][:300]
    return result


# ---- the peer: a bare scikit-learn loop, in a child process ---------------------------------------------

def bare_policy(days: list[Any], warmup: int, trained_at: list[float], window: str,
                on_alerts: bool = False) -> dict[str, Any]:
    """One policy's fits and daily predictions on the history's frames (see the module docstring). Times are in
    measured days: the warm-up days land as one drop at -0.5 (the simulation's bootstrap), measured day j's rows
    at j + 1 day 5 minutes; a fit at t reads the drops landed before t within the policy's TRAINING_WINDOW, or
    (on_alerts) the rows of the day before t alone, the day the monitor pass that raised the alert looked at."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from lifecycle.core.policies import TrainingWindow
    started = time.perf_counter()
    spec = TrainingWindow.parse(window) if window else TrainingWindow()
    target = "label"
    drops = [(-0.5, pd.concat(days[:warmup], ignore_index=True))]
    drops += [(j + 1 + 5 / 1440, frame) for j, frame in enumerate(days[warmup:])]
    fit_seconds = predict_seconds = 0.0
    rows_fitted = 0
    correct = []
    with threadpool_limits(1):                 # after sklearn's import, so that its OpenMP runtime is limited too
        def fit(at: float, since: float) -> Any:
            nonlocal fit_seconds, rows_fitted
            t0 = time.perf_counter()
            landed = [(when, frame) for when, frame in drops if when < at]
            if on_alerts and at > 0:
                landed = [(at, days[min(len(days) - 1, warmup + max(0, math.floor(at) - 1))])]
            elif spec.kind == "days":
                landed = [(when, frame) for when, frame in landed if when >= at - spec.size] or landed[-1:]
            elif spec.kind == "drops":
                landed = landed[-spec.size:]
            frame = pd.concat([f for _, f in landed], ignore_index=True)
            labels = frame[target].to_numpy()
            new = np.concatenate([np.full(len(f), when > since) for when, f in landed])
            old, fresh = np.flatnonzero(~new), np.flatnonzero(new)
            if math.ceil(TEST_SIZE * len(fresh)) >= MIN_HOLDOUT_ROWS and len(np.unique(labels[fresh])) > 1:
                train, _ = train_test_split(fresh, test_size=TEST_SIZE, random_state=SEED, stratify=labels[fresh])
                train = np.concatenate([old, train])
            else:
                train, _ = train_test_split(np.arange(len(frame)), test_size=TEST_SIZE, random_state=SEED,
                                            stratify=labels)
            model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=SEED)
            model.fit(frame.drop(columns=[target]).iloc[train], labels[train])
            rows_fitted += len(train)
            fit_seconds += time.perf_counter() - t0
            return model

        model, last = fit(-0.5 + 1e-6, -math.inf), -0.5 + 1e-6
        live_from: dict[int, list[float]] = {}     # a fit at t answers from the next day on
        for t in sorted(trained_at):
            live_from.setdefault(math.floor(t) + 1, []).append(t)
        for j, frame in enumerate(days[warmup:]):
            for t in live_from.pop(j, []):
                model, last = fit(t, last), t
            t0 = time.perf_counter()
            predicted = model.predict(frame.drop(columns=[target]))
            predict_seconds += time.perf_counter() - t0
            correct.append(float(np.mean(predicted == frame[target].to_numpy())))
        for t in sorted(t for ts in live_from.values() for t in ts):
            model, last = fit(t, last), t          # trained on the last day: no day left to answer, still a fit
    return {"fits": 1 + len(trained_at), "window": "the alert's day alone" if on_alerts else str(spec),
            "seconds": time.perf_counter() - started, "fit_seconds": fit_seconds,
            "predict_seconds": predict_seconds, "rows_fitted": rows_fitted,
            "mean_accuracy": float(np.mean(correct)) if correct else None}


def bare_child(plan_path: Path, days: int, rows_per_day: int, drifts: str, processes: int) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from mlops.simulation.histories import generate
    plan: dict[str, dict[str, Any]] = json.loads(plan_path.read_text())
    started = time.perf_counter()
    history = generate("sea", days=days, seed=0, drifts=drifts, rows_per_day=rows_per_day)
    frames = list(history.days)
    generated = time.perf_counter() - started
    workers = processes or min(len(plan), os.cpu_count() or 1)
    if workers <= 1:
        runs = {name: bare_policy(frames, WARMUP, p["trained_at"], p["window"], p["on_alerts"])
                for name, p in plan.items()}
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(bare_policy, frames, WARMUP, p["trained_at"], p["window"], p["on_alerts"])
                       for name, p in plan.items()}
            runs = {name: f.result() for name, f in futures.items()}
    print(json.dumps({"generate_seconds": generated, "policies": runs}))


# ---- the run ----------------------------------------------------------------------------------------------

def alerts_only(retrain_on: str) -> bool:
    """Whether a policy's trainings all start from alerts (RETRAIN_ON drift and/or performance alone): those train
    on the live deployment's labelled traffic of the monitor's window alone (lifecycle/steps/alert_response.py)."""
    triggers = {t.strip().lower() for t in retrain_on.split(",") if t.strip()}
    return bool(triggers) and triggers <= {"drift", "performance"}


def summarise(result: dict[str, Any], measured: int) -> list[dict[str, Any]]:
    rows = []
    for outcome in result["outcomes"]:
        run = outcome["run"]
        wall = run["wall_seconds"]
        rows.append({"policy": run["name"], "trainings": run["trainings"], "failed": run["failed_trainings"],
                     "registered": run["registered"], "rejected": run["rejected"], "promoted": run["promoted"],
                     "rolled_back": run["rolled_back"], "alerts": run["alerts"],
                     "monitoring_jobs": run["monitoring_jobs"], "mean_accuracy": outcome["mean_metric"],
                     "final_accuracy": outcome["final_metric"], "wall_seconds": wall,
                     "training_seconds": run["training_seconds"], "monitoring_seconds": run["monitoring_seconds"],
                     "other_seconds": wall - run["training_seconds"] - run["monitoring_seconds"],
                     "speedup": measured * DAY_SECONDS / wall if wall else None,
                     "window": run["settings"].get("TRAINING_WINDOW", "all"),
                     "on_alerts": alerts_only(run["settings"].get("RETRAIN_ON", "")),
                     "trained_at": [m["day"] for m in run["markers"] if m["kind"] == "trained"]})
    return rows


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def code_version() -> str:
    """The commit the command ran from, and whether the code it runs had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mlops", "lifecycle", "training", "monitoring",
                                "deployment", "functions"], capture_output=True, text=True, cwd=ROOT,
                               timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def report(out: dict[str, Any]) -> None:
    sim, bare = out["simulate"], out["bare"]
    print(f"== mlops simulate: {out['days']} days of {out['rows_per_day']:,} rows ({out['warmup_days']} warm-up, "
          f"{out['measured_days']} measured), drifts {out['drifts']}; load average {out['load_before']:.1f} before, "
          f"{out['load_after']:.1f} after, {os.cpu_count()} CPUs")
    print(f"  $ {' '.join(out['command'])}   (code: {out['code']})")
    if "error" in sim:
        print(f"  simulate failed after {sim.get('seconds', 0):.0f} s: {sim['error']}")
        return
    policies = out["policies"]
    print(f"  simulate (process)   {sim['seconds']:8.1f} s wall   peak RSS {sim['peak_mb']:6.0f} MiB largest process, "
          f"{sim['tree_peak_mb']:6.0f} MiB the tree")
    print(f"  simulated            {out['measured_days']} days x {len(policies)} policies = "
          f"{out['measured_days'] * len(policies):,} policy-days ({out['processes']} processes)")
    print(f"  speed-up             {out['speedup']:8,.0f}x real time ({out['measured_days']} days in "
          f"{sim['seconds'] / 60:.1f} min); {out['speedup'] * len(policies):,.0f}x counting every policy's days")
    if "error" in bare:
        print(f"  bare loop failed: {bare['error']}")
    else:
        print(f"  bare sklearn loop    {bare['seconds']:8.1f} s wall   peak RSS {bare['peak_mb']:6.0f} MiB largest "
              f"process, {bare['tree_peak_mb']:6.0f} MiB the tree (history generated in "
              f"{bare['generate_seconds']:.1f} s)")
        print(f"  ratio                {sim['seconds'] / bare['seconds']:8.1f}x the bare loop's wall time "
              f"(what the handlers, gate, judge, monitor and files cost over the model work)")
    header = (f"  {'policy':15s} {'trains':>6s} {'acc':>6s} {'wall s':>8s} {'train s':>8s} {'monit s':>8s} "
              f"{'other s':>8s} {'speed-up':>9s} | {'bare fits':>9s} {'bare s':>7s} {'bare acc':>8s} {'ratio':>6s}")
    print()
    print(header)
    print("  " + "-" * (len(header) - 2))
    for p in policies:
        b = (bare.get("policies") or {}).get(p["policy"], {})
        ratio = p["wall_seconds"] / b["seconds"] if b.get("seconds") else None
        print(f"  {p['policy']:15s} {p['trainings']:6d} {fmt(p['mean_accuracy'], '6.3f')} {p['wall_seconds']:8.1f} "
              f"{p['training_seconds']:8.1f} {p['monitoring_seconds']:8.1f} {p['other_seconds']:8.1f} "
              f"{fmt(p['speedup'], '8,.0f')}x | {b.get('fits', 0):9d} {fmt(b.get('seconds'), '7.1f')} "
              f"{fmt(b.get('mean_accuracy'), '8.3f')} {fmt(ratio, '5.1f')}x")
    print("  trains: training jobs started (bare fits: the same, plus the first model); acc: mean daily accuracy; "
          "wall/train/monit/other s: the policy's wall_seconds and its split; speed-up: measured days x 86,400 s / "
          "the policy's wall s; ratio: the policy's wall s / its bare loop's s")
    for p in policies:
        odd = []
        if p["failed"]:
            odd.append(f"{p['failed']} failed trainings")
        if p["trainings"] and p["registered"] + p["rejected"] + p["failed"] < p["trainings"]:
            odd.append(f"{p['trainings']} trainings but {p['registered']} registered + {p['rejected']} rejected")
        if odd:
            print(f"  note: {p['policy']}: {'; '.join(odd)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, help=f"days of generated history (default {DAYS}; --quick {QUICK_DAYS})")
    parser.add_argument("--rows-per-day", type=int, default=1000)
    parser.add_argument("--policy", action="append", default=[], help="simulate only this policy (repeatable)")
    parser.add_argument("--processes", type=int, default=0, help="policies side by side (default: one per CPU)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DAYS} days, a smoke check")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON, nothing else")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per command (default 6 h)")
    parser.add_argument("--case", choices=["bare"], help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--drifts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    days = args.days or (QUICK_DAYS if args.quick else DAYS)
    drifts = args.drifts or drifts_for(days)
    if args.case == "bare":
        bare_child(args.plan, days, args.rows_per_day, drifts, args.processes)
        return 0

    command = [*mlops_command(), "simulate", "--days", str(days), "--rows-per-day", str(args.rows_per_day),
               "--warmup-days", str(WARMUP), "--drifts", drifts, "--json"]
    for name in args.policy:
        command += ["--policy", name]
    if args.processes:
        command += ["--processes", str(args.processes)]
    measured = days - WARMUP
    policies_asked = len(args.policy) or 5
    out: dict[str, Any] = {"days": days, "rows_per_day": args.rows_per_day, "warmup_days": WARMUP,
                           "measured_days": measured, "drifts": drifts, "command": command,
                           "processes": args.processes or min(policies_asked, os.cpu_count() or 1),
                           "load_before": os.getloadavg()[0], "code": code_version()}
    if not args.json:
        print(f"running: {' '.join(command)}", flush=True)
    sim = timed_tree(command, args.timeout)
    result = None
    if "error" not in sim:
        try:
            result = json.loads(sim["stdout"])
        except json.JSONDecodeError as error:
            sim["error"] = f"the command's output is not JSON: {error}"
    out["simulate"] = {k: v for k, v in sim.items() if k != "stdout"}
    out["policies"] = summarise(result, measured) if result else []
    out["speedup"] = measured * DAY_SECONDS / sim["seconds"] if result else None
    out["bare"] = {"error": "not run: the simulation failed"}
    if result:
        with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
            plan = Path(tmp) / "plan.json"
            plan.write_text(json.dumps({p["policy"]: {"trained_at": p["trained_at"], "window": p["window"],
                                                        "on_alerts": p["on_alerts"]}
                                       for p in out["policies"]}))
            if not args.json:
                print("running: the bare scikit-learn loop (the same fits)", flush=True)
            bare = timed_tree([sys.executable, __file__, "--case", "bare", "--plan", str(plan), "--days", str(days),
                               "--rows-per-day", str(args.rows_per_day), "--drifts", drifts,
                               "--processes", str(out["processes"])], args.timeout)
        if "error" not in bare:
            bare.update(json.loads(bare["stdout"].strip().splitlines()[-1]))
            out["ratio"] = sim["seconds"] / bare["seconds"]
        out["bare"] = {k: v for k, v in bare.items() if k != "stdout"}
    out["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out))
    else:
        report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
