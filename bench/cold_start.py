"""Cold start: wall time of `import function_app` against `import azure.ai.ml`, measured in fresh
interpreters in the same run (median of several), and proof that the app never imports azure.ai.ml.

Goal: import function_app <= 0.5 s."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def wall(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
    return time.perf_counter() - started


def median_wall(statement: str) -> float:
    wall(statement)  # warm the file cache once
    return statistics.median(wall(statement) for _ in range(RUNS))


def main() -> None:
    interpreter = median_wall("pass")
    app = median_wall("import function_app") - interpreter
    ml = median_wall("import azure.ai.ml") - interpreter
    leaked = subprocess.run(
        [sys.executable, "-c",
         "import sys, function_app; print(sorted(m for m in sys.modules if m.startswith('azure.ai.ml')))"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    print(f"interpreter start-up        {interpreter * 1000:8.0f} ms (subtracted below)")
    print(f"import function_app         {app * 1000:8.0f} ms   goal <= 500 ms: {'met' if app <= 0.5 else 'NOT met'}")
    print(f"import azure.ai.ml          {ml * 1000:8.0f} ms")
    print(f"ratio function_app / azure.ai.ml = {app / ml:.2f}")
    print(f"azure.ai.ml modules loaded by function_app: {leaked}")


if __name__ == "__main__":
    main()
