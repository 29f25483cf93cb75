"""What every drift runner of bench/drift_quality.py shares: the manifest it reads, the lines it prints.

A runner runs in its own interpreter (a peer's throw-away venv, or the project's for the engine) as
``python RUNNER MANIFEST.json``. The manifest names the reference and the windows, all Parquet files:

    {"reference": "ref.parquet", "windows": ["w0000.parquet", ...],
     "numeric": [column, ...], "categorical": [column, ...], "reference_chunk_rows": int}

For each window and method the runner prints one JSON line as soon as it is decided (so that a runner
killed by the bench's timeout still hands over what it finished):

    {"window": i, "method": "evidently", "drifted": true | false | null, "seconds": s, "error": str | null}

"seconds" is the method's time on that window: reading its Parquet file and deciding, not the imports nor
fitting on the reference (that is printed once as {"setup": method, "seconds": s, "version": ...}).
This file must import nothing beyond the standard library: it runs in every runner's environment.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any


def manifest() -> dict:
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def run(main: Callable[[], None]) -> None:
    """A runner's entry point: a failure is also printed as a {"fatal": ...} line the bench can show."""
    try:
        main()
    except Exception as exc:  # noqa: BLE001
        emit(fatal=f"{type(exc).__name__}: {exc}"[:300])
        raise


def timed_setup(method: str, version: str, fit: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    fitted = fit()
    emit(setup=method, seconds=time.perf_counter() - start, version=version)
    return fitted


def run_windows(paths: list[str], decide: Callable[[str], dict[str, Any]], methods: list[str]) -> None:
    """decide(path) -> {method: drifted or (drifted, seconds)}: without its own seconds a method is given the
    whole call's time (two readings of one report). A window that fails is reported as such; the rest go on."""
    for i, path in enumerate(paths):
        start = time.perf_counter()
        try:
            decisions = decide(path)
            error = None
        except Exception as exc:  # noqa: BLE001  (a peer's crash on one window is a result to print, not a stop)
            decisions, error = {}, f"{type(exc).__name__}: {exc}"[:300]
            traceback.print_exc(file=sys.stderr)
        seconds = time.perf_counter() - start
        for method in methods:
            value = decisions.get(method)
            own = value if isinstance(value, tuple) else (value, seconds)
            emit(window=i, method=method, drifted=None if own[0] is None else bool(own[0]), seconds=own[1],
                 error=error)
