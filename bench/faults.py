"""The fault-injection figures: the local stack (`mlops up`, in its own process) under replayed events,
crashes at every point of the lifecycle, poison input and simultaneous triggers, counted.

    .venv/bin/python bench/faults.py [--only replay,crash,poison,concurrency] [--crashes N] [--keep DIR]

replay       every event of 3 lifecycles delivered 3 more times in shuffled order (EventGridPublisherClient,
             a plain POST to the topic, straight to the function's webhook), plus late replays of each
             lifecycle's events after the next one is promoted: jobs per batch, versions per job, rollouts
             per version (each must be 1), re-promotions of an older version (must be 0)
crash        the whole stack killed with SIGKILL at each point of tests/faults/scenarios.CRASHES, then
             started again: recovered (the lifecycle ended, no process outlived the crash, nothing stuck,
             registry and state agree), and how long scoring took to answer again after the restart
poison       bad files, events and HTTP requests on the stack: each rejected with a reason the user can see,
             nothing lost (a good drop afterwards still trains and serves); plus the 104 malformed HTTP
             requests of tests/emulator/poison_http_cases.py, counted by tests/emulator/test_poison_http.py
concurrency  two drops, an alert and a forced retrain at one instant: trainings per batch, overlapping rollouts

Takes about 25 minutes for everything (the crash matrix is most of it). Prints the table the README quotes;
always exits 0 (the fault tests assert).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.scenarios import CRASHES, concurrency_scenario, crash_scenario, poison_scenario, replay_scenario  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="replay,crash,poison,concurrency")
    parser.add_argument("--crashes", type=int, default=len(CRASHES), help="how many crash points (default all)")
    parser.add_argument("--keep", type=Path, help="keep the stacks' homes here (default: a temporary folder)")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="mlops-faults-"))
    rows: list[tuple[str, str]] = []
    lost = 0
    started = time.monotonic()

    if "replay" in chosen:
        t = time.monotonic()
        r = replay_scenario(workdir)
        rows.append(("replays", f"{r.replays} deliveries of {r.events} events ({r.lifecycles} lifecycles: "
                                f"{', '.join(r.outcomes)})  duplicates {r.duplicates}  re-promotions {r.re_promotions}"
                                f"  [{time.monotonic() - t:.0f} s]"))
        lost += len([p for p in r.problems if "never trained" in p])
        if r.problems:
            rows.append(("", "problems: " + "; ".join(r.problems)))

    if "crash" in chosen:
        t = time.monotonic()
        outcomes = crash_scenario(workdir, CRASHES[:args.crashes],
                                  progress=lambda o: print(f"  crash {o.case!r}: recovered {o.recovered} "
                                                           f"({o.seconds} s) {o.end}", file=sys.stderr, flush=True))
        serving = [o.serving_after_s for o in outcomes if o.serving_after_s is not None]
        recovered = sum(o.recovered for o in outcomes)
        rows.append(("crashes", f"{sum(o.crashed for o in outcomes)} of {len(outcomes)} points reached  recovered "
                                f"{recovered}/{len(outcomes)}  orphan processes {sum(len(o.orphans) for o in outcomes)}"
                                + (f"  serving again {statistics.median(serving):.1f} s after restart (median, "
                                   f"max {max(serving):.1f} s)" if serving else "")
                                + f"  [{time.monotonic() - t:.0f} s]"))
        for o in outcomes:
            if not o.recovered:
                rows.append(("", f"not recovered: {o.case} ({o.plan}): {'; '.join(o.problems) or o.end}"))
        lost += sum(1 for o in outcomes for p in o.problems if "never trained" in p)

    if "poison" in chosen:
        t = time.monotonic()
        pr = poison_scenario(workdir)
        rows.append(("poison cases", f"{len(pr.outcomes)} on the stack (+104 HTTP requests in the emulator tests)  "
                                     f"rejected with reason {pr.rejected}/{len(pr.outcomes)}  server errors "
                                     f"{len(pr.server_errors)}  good drop afterwards: {pr.good_drop_after}"
                                     f"  [{time.monotonic() - t:.0f} s]"))
        for po in pr.outcomes:
            if not po.rejected_with_reason:
                rows.append(("", f"no reason shown: {po.case.name}: {po.seen}"))
        lost += len(pr.lost)

    if "concurrency" in chosen:
        t = time.monotonic()
        cr = concurrency_scenario(workdir)
        most = max(cr.trainings_per_batch.values(), default=0)
        rows.append(("concurrency", f"{cr.jobs} jobs, most trainings of one batch {most}, overlapping rollouts "
                                    f"{len(cr.overlapping_rollouts)}, lost decisions {len(cr.lost_decisions)}; "
                                    f"alert: {cr.alert_outcome[:60]}  [{time.monotonic() - t:.0f} s]"))

    rows.append(("lost", str(lost)))
    width = max(len(name) for name, _ in rows)
    print(f"fault injection on the local stack ({time.monotonic() - started:.0f} s; homes in {workdir})")
    for name, text in rows:
        print(f"  {name:<{width}}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
