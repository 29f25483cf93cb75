"""The project's drift engine on each window against the reference (run in the project's venv).

  engine   training.reference_profile.build_profile on the reference (once: the setup), then per window
           monitoring.window.read_parquet into CurrentWindow.for_profile and monitoring.drift.compare, as
           `mlops drift` and the monitor do; drifted = report.drifted (the dataset-level decision)
"""
# mypy: disable-error-code="import-not-found,import-untyped"
# (runs in its own venv, beside common.py: the project's type check does not see those modules)
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import pandas as pd  # noqa: E402
from common import manifest, run, run_windows, timed_setup  # noqa: E402


def main() -> None:
    from monitoring.drift import compare
    from monitoring.window import CurrentWindow, read_parquet
    from training.reference_profile import build_profile
    spec = manifest()
    profile = timed_setup("engine", os.environ.get("ENGINE_VERSION", "project"),
                          lambda: build_profile(pd.read_parquet(spec["reference"])))

    def decide(path: str) -> dict[str, bool]:
        report = compare(profile, read_parquet(CurrentWindow.for_profile(profile), path))
        return {"engine": report.drifted}
    run_windows(spec["windows"], decide, ["engine"])


if __name__ == "__main__":
    run(main)
