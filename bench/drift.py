"""Drift engine benchmark: all metrics on a generated window, against a pure numpy/scipy implementation.

    .venv/bin/python bench/drift.py [--rows 1000000,10000000]

The window (16 numeric + 4 categorical columns, drift in x0, x5, x10 and c1) is written once per size to
a Parquet file in a temp dir, in 1M-row chunks; the reference profile comes from 200k undrifted rows via
training.reference_profile.build_profile. Each measurement runs in a fresh subprocess and reports its
wall time and peak RSS (ru_maxrss, which counts numpy and arrow buffers, unlike tracemalloc):

* engine   monitoring.window.read_parquet in chunks + monitoring.drift.compare
* scipy    the whole window loaded into pandas; numpy bin counts; scipy.stats.ks_2samp and
           wasserstein_distance on the full columns, scipy.spatial.distance.jensenshannon,
           scipy.stats.chi2_contingency

Printed: times, peak memory, ratios, and how far the engine's values are from the full-data ones (binned
metrics must agree exactly; KS and Wasserstein within the sampling bound). Always exits 0.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NUMERIC, CATEGORICAL = 16, 4
DRIFT = {"x0": ("shift", 0.5), "x5": ("scale", 1.5), "x10": ("shift", 0.2), "c1": ("roll", 1)}
CASE_TIMEOUT = 600


def generate(rows: int, seed: int, drift: bool):
    """A pandas DataFrame of the benchmark's columns."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray | pd.Categorical[str]] = {}
    for i in range(NUMERIC):
        x = rng.standard_normal(rows) * (1 + i % 4) + i
        kind, amount = DRIFT.get(f"x{i}", (None, 0)) if drift else (None, 0)
        if kind == "shift":
            x += amount * (1 + i % 4)
        elif kind == "scale":
            x = (x - i) * amount + i
        cols[f"x{i}"] = x
    for j in range(CATEGORICAL):
        k = 5 + 5 * j
        p = np.arange(k, 0, -1, dtype=float)
        p /= p.sum()
        if drift and f"c{j}" in DRIFT:
            p = np.roll(p, int(DRIFT[f"c{j}"][1]))
        codes = rng.choice(k, rows, p=p).astype(np.int32)
        cols[f"c{j}"] = pd.Categorical.from_codes(codes, pd.Index([f"v{v}" for v in range(k)]))
    return pd.DataFrame(cols)


def prepare(rows: int, folder: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.reference_profile import build_profile
    profile_path = folder / "profile.json"
    if not profile_path.exists():
        ref = generate(200_000, 1, drift=False)
        ref = ref.astype({f"c{j}": str for j in range(CATEGORICAL)})
        profile_path.write_text(json.dumps(build_profile(ref)))
    path = folder / f"window_{rows}.parquet"
    writer = None
    for start in range(0, rows, 1_000_000):
        table = pa.Table.from_pandas(generate(min(1_000_000, rows - start), 100 + start // 1_000_000, True),
                                     preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=256 * 1024)
    if writer is None:
        raise ValueError(f"a window of {rows} rows: nothing to write")
    writer.close()
    return profile_path, path


def case_engine(profile_path: Path, window_path: Path) -> dict:
    from monitoring.drift import compare
    from monitoring.window import CurrentWindow, read_parquet
    profile = json.loads(profile_path.read_text())
    start = time.perf_counter()
    window = read_parquet(CurrentWindow.for_profile(profile), window_path)
    report = compare(profile, window)
    seconds = time.perf_counter() - start
    metrics = {n: f.metrics for n, f in report.features.items()}
    return {"seconds": seconds, "drifted": report.drifted_features, "metrics": metrics}


def case_scipy(profile_path: Path, window_path: Path) -> dict:
    import numpy as np
    import pyarrow.parquet as pq
    from scipy import stats
    from scipy.spatial.distance import jensenshannon
    profile = json.loads(profile_path.read_text())
    start = time.perf_counter()
    df = pq.read_table(window_path).to_pandas()
    metrics, drifted = {}, []
    for name, spec in profile["features"].items():
        col = df[name]
        if spec["type"] == "numeric":
            x = col.to_numpy(dtype=np.float64)
            finite = x[np.isfinite(x)]
            edges = np.asarray(spec["histogram"]["edges"])
            p = np.asarray(spec["histogram"]["counts"], float)
            q = np.bincount(np.searchsorted(edges[1:-1], finite, side="right"), minlength=len(p)).astype(float)
            ref_sample = np.asarray(spec["sample"])
            ks = stats.ks_2samp(ref_sample, finite)
            w = stats.wasserstein_distance(ref_sample, finite)
            m = {"normalized_wasserstein": w / spec["std"], "ks_statistic": ks.statistic, "ks_pvalue": ks.pvalue,
                 "out_of_range_rate": float(np.mean((x < spec["min"]) | (x > spec["max"])))}
        else:
            counts = col.astype(str).value_counts()
            keys = list(spec["frequencies"])
            p = np.array([spec["frequencies"][k] for k in keys], float)
            q = counts.reindex(keys, fill_value=0).to_numpy(float)
            chi2, pvalue, _, _ = stats.chi2_contingency(np.vstack([p, q]))
            m = {"chi2_statistic": chi2, "chi2_pvalue": pvalue}
        pp, qq = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
        m["psi"] = float(np.sum((qq - pp) * np.log(qq / pp)))
        m["jensen_shannon"] = float(jensenshannon(p, q, base=2))
        m["null_rate"] = float(col.isna().mean())
        metrics[name] = m
        key = "normalized_wasserstein" if spec["type"] == "numeric" else "jensen_shannon"
        if m[key] > 0.1 or m["psi"] > 0.2:
            drifted.append(name)
    return {"seconds": time.perf_counter() - start, "drifted": drifted, "metrics": metrics}


def run_case(case: str, profile_path: Path, window_path: Path) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--profile", str(profile_path), "--window", str(window_path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=CASE_TIMEOUT, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CASE_TIMEOUT} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(case: str, profile_path: Path, window_path: Path) -> None:
    import numpy  # noqa: E401,F401  imports are not the work measured
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = (case_engine if case == "engine" else case_scipy)(profile_path, window_path)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["imports_mb"] = base / 1024
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--case", choices=["prepare", "engine", "scipy"])
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--window", type=Path)
    args = parser.parse_args()
    if args.case == "prepare":
        prepare(int(args.rows), args.window)
        return 0
    if args.case:
        child(args.case, args.profile, args.window)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        for rows in (int(r) for r in args.rows.split(",") if r.strip()):
            t0 = time.perf_counter()
            # in a child too: ru_maxrss survives fork+exec, so the parent must stay small for the cases' figures
            subprocess.run([sys.executable, __file__, "--case", "prepare", "--rows", str(rows), "--window", tmp],
                           check=True, cwd=ROOT, timeout=CASE_TIMEOUT)
            profile_path, window_path = Path(tmp) / "profile.json", Path(tmp) / f"window_{rows}.parquet"
            print(f"\n== {rows:,} rows x {NUMERIC} numeric + {CATEGORICAL} categorical "
                  f"(generated + written in {time.perf_counter() - t0:.1f} s, "
                  f"{window_path.stat().st_size / 2**20:.0f} MiB parquet; drift in {', '.join(DRIFT)})")
            engine = run_case("engine", profile_path, window_path)
            baseline = run_case("scipy", profile_path, window_path)
            for name, r in (("engine", engine), ("numpy/scipy", baseline)):
                if "error" in r:
                    print(f"  {name:12s} failed: {r['error']}")
                else:
                    print(f"  {name:12s} {r['seconds']:7.2f} s   peak RSS {r['peak_mb']:7.0f} MiB "
                          f"(imports {r['imports_mb']:.0f})   drifted: {', '.join(r['drifted'])}")
            if "error" not in engine and "error" not in baseline:
                print(f"  ratio        {baseline['seconds'] / engine['seconds']:7.1f}x faster, "
                      f"{baseline['peak_mb'] / engine['peak_mb']:.1f}x less memory")
                diffs: dict[str, float] = {}
                for name, m in baseline["metrics"].items():
                    for key, value in m.items():
                        if key in engine["metrics"][name] and value is not None:
                            d = abs(engine["metrics"][name][key] - value)
                            diffs[key] = max(diffs.get(key, 0.0), d)
                print("  max |engine - full data| per metric: "
                      + ", ".join(f"{k} {v:.2g}" for k, v in sorted(diffs.items())))
            window_path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
