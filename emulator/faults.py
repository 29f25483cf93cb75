"""Crash injection for the local stack: kill the whole stack with SIGKILL at a named point, to prove that
the chain recovers from a crash anywhere (tests/faults, bench/faults.py).

    MLOPS_CRASH_AT="job.running+2"                      2 s after a training process started
    MLOPS_CRASH_AT="traffic.set#2"                      at the second traffic change of an endpoint
    MLOPS_CRASH_AT="event.published=MLOps.ModelPromoted"
    MLOPS_CRASH_AT="function.invoked=on_alert_event+0.2"

    point[=detail][#n][+seconds]: the n-th time (default the first) the point is reached with that detail
    (default any), after a delay, everything dies at once: the stack's own process and every process it
    started (Azurite, the Functions host, deployments, training jobs), as a power cut would leave them.

The points sit in the stand-in and the local Event Grid and Functions host, never in the function app: the
app must not know it is being tested. With MLOPS_CRASH_AT unset, reaching a point costs a dict lookup."""
from __future__ import annotations

import logging
import os
import re
import signal
import threading
from dataclasses import dataclass

log = logging.getLogger("emulator.faults")
ENV = "MLOPS_CRASH_AT"
STACK_PID = "MLOPS_STACK_PID"          # set by `mlops up`: the process whose tree a crash kills
_SPEC = re.compile(r"^(?P<point>[a-z.]+)(?:=(?P<detail>[^#+]+))?(?:#(?P<nth>\d+))?(?:\+(?P<delay>[\d.]+))?$")


@dataclass(frozen=True)
class CrashPlan:
    point: str
    detail: str | None = None
    nth: int = 1
    delay: float = 0.0

    @classmethod
    def parse(cls, text: str) -> CrashPlan:
        match = _SPEC.match(text.strip())
        if not match:
            raise ValueError(f"{ENV}={text!r} is not point[=detail][#n][+seconds], e.g. 'traffic.set#2'")
        return cls(match["point"], match["detail"], int(match["nth"] or 1), float(match["delay"] or 0))


_plan: CrashPlan | None = CrashPlan.parse(os.environ[ENV]) if os.environ.get(ENV) else None
_seen = 0
_lock = threading.Lock()


def reached(point: str, detail: str = "") -> None:
    """A named point of the stack's work: crash here if the plan says so."""
    global _seen
    plan = _plan
    if plan is None or plan.point != point or (plan.detail is not None and plan.detail != detail):
        return
    with _lock:
        _seen += 1
        if _seen != plan.nth:
            return
    log.warning("crash injection: killing the stack at %s %s (occurrence %d)", point, detail, plan.nth)
    if plan.delay:
        threading.Timer(plan.delay, kill_stack).start()
    else:
        kill_stack()


def kill_stack() -> None:
    """SIGKILL the stack's process tree at once, this process last."""
    import psutil
    root = int(os.environ.get(STACK_PID) or os.getpid())
    try:
        tree = [psutil.Process(root)]
        tree += tree[0].children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    me = os.getpid()
    for process in tree:
        if process.pid != me:
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
    os.kill(me, signal.SIGKILL)
