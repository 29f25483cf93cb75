"""Drift engine benchmark: all metrics on a generated window, against a pure numpy/scipy implementation.

    .venv/bin/python bench/drift.py [--rows 1000000,10000000] [--wide 1000000x1000] [--peer 100000x100]
                                    [--command 1000000]

The larger cases run only when asked (`make bench` runs the default):

* --wide RxC     R rows x C float64 columns (drift in 10 of them), the engine alone as a whole process
                 (imports included) and its own read + count + compare time, with peak RSS. Goal: 1M x 1,000
                 in <= 30 s and <= 2 GB on two cores.
* --peer RxC     the same kind of table, small enough for Evidently: `mlops drift REF.parquet CUR.parquet` as
                 a process beside Evidently's DataDriftPreset (PSI) on the same two files, in Evidently's own
                 throw-away venv (see evidently_python; not a project dependency).
* --command R    `mlops drift REF.parquet CUR.parquet` on R rows x 20 columns (the default case's table, the
                 reference R undrifted rows) as a process, beside Evidently on the same files.

Whole-process figures are wall time from spawn to exit and the child's peak RSS (os.wait4).

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
import os
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
    parser.add_argument("--wide", help="RxC: the wide case, e.g. 1000000x1000")
    parser.add_argument("--peer", help="RxC: the side-by-side with Evidently on a wide slice, e.g. 100000x100")
    parser.add_argument("--command", type=int, help="rows: mlops drift on R x 20 as a process, beside Evidently")
    parser.add_argument("--case", choices=["prepare", "engine", "scipy", "prepare-wide", "wide"])
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--window", type=Path)
    args = parser.parse_args()
    if args.case == "prepare":
        prepare(int(args.rows), args.window)
        return 0
    if args.case == "prepare-wide":
        prepare_wide(args.wide, args.window)
        return 0
    if args.case == "wide":
        child_wide(args.profile, args.window)
        return 0
    if args.case:
        child(args.case, args.profile, args.window)
        return 0
    if args.wide or args.peer or args.command:
        with tempfile.TemporaryDirectory(prefix="bench-drift-", dir=BIG_TMP) as tmp:
            if args.wide:
                bench_wide(args.wide, Path(tmp))
            if args.peer:
                bench_peer(args.peer, Path(tmp))
            if args.command:
                bench_command(args.command, Path(tmp))
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


# ---- wide tables, the whole command, and Evidently ------------------------------------------------------

BIG_TMP = os.environ.get("BENCH_TMP", "/tmp")
WIDE_DRIFTED = 10                      # the first columns of a wide table are shifted by half a std
PEERS_HOME = Path(os.environ.get("MLOPS_BENCH_PEERS", "/tmp/mlops-bench-peers"))
EVIDENTLY = """
import sys, time, pandas as pd, evidently
ref_path, cur_path = sys.argv[1], sys.argv[2]
ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
try:                                   # evidently >= 0.7
    from evidently import Report
    from evidently.presets import DataDriftPreset
    try:
        preset, method = DataDriftPreset(method="psi"), "psi"
    except TypeError:
        preset, method = DataDriftPreset(), "default"
    snapshot = Report([preset]).run(cur, ref)
    result = snapshot.dict()
except ImportError:                    # evidently < 0.7
    from evidently.report import Report
    from evidently.metric_preset import DataDriftPreset
    report = Report(metrics=[DataDriftPreset(stattest="psi")])
    report.run(reference_data=ref, current_data=cur)
    result, method = report.as_dict(), "psi"
print("evidently", evidently.__version__, method)
"""


def parse_shape(text: str) -> tuple[int, int]:
    rows, _, cols = text.lower().partition("x")
    return int(float(rows)), int(cols)


def wide_frame(rows: int, cols: int, seed: int, drift: bool):
    import numpy as np
    import pandas as pd
    x = np.random.default_rng(seed).standard_normal((rows, cols))
    x += np.arange(cols) % 7                                   # columns of different means
    if drift:
        x[:, :WIDE_DRIFTED] += 0.5
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(cols)])


def write_parquet(path: Path, rows: int, cols: int, seed: int, drift: bool, chunk_cells: int = 25_000_000) -> None:
    """A generated table, written a slice of rows at a time (one row group each) so the writer stays small."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    step = max(1, chunk_cells // cols)
    writer = None
    for start in range(0, rows, step):
        table = pa.Table.from_pandas(wide_frame(min(step, rows - start), cols, seed + start, drift),
                                     preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def prepare_wide(shape: str, folder: Path) -> None:
    """The wide case's files: profile.json (numeric_profile per column of 50k undrifted rows: without the
    multivariate part, whose cost grows with the columns and is not what this case measures) and wide.parquet."""
    from training.reference_profile import PROFILE_VERSION, numeric_profile
    rows, cols = parse_shape(shape)
    ref = wide_frame(50_000, cols, 1, drift=False)
    features = {name: numeric_profile(ref[name]) for name in ref.columns}
    (folder / "wide_profile.json").write_text(json.dumps({"profile_version": PROFILE_VERSION, "rows": len(ref),
                                                          "target": None, "features": features}))
    write_parquet(folder / "wide.parquet", rows, cols, 100, drift=True)


def child_wide(profile_path: Path, window_path: Path) -> None:
    start = time.perf_counter()
    from monitoring.drift import compare
    from monitoring.window import CurrentWindow, read_parquet
    imported = time.perf_counter()
    profile = json.loads(profile_path.read_text())
    loaded = time.perf_counter()
    window = read_parquet(CurrentWindow.for_profile(profile), window_path)
    counted = time.perf_counter()
    report = compare(profile, window)
    done = time.perf_counter()
    sample = window.row_sample()
    print(json.dumps({"imports": imported - start, "profile": loaded - imported, "read": counted - loaded,
                      "compare": done - counted, "rows": window.rows, "drifted": report.drifted_features,
                      "row_sample": list(sample.shape) if sample is not None else None}))


def timed_process(cmd: list[str], timeout: float = CASE_TIMEOUT) -> dict:
    """Wall time from spawn to exit, the child's peak RSS (MiB), exit code and output (os.wait4)."""
    import os as _os
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        deadline = start + timeout
        while True:
            pid, status, usage = _os.wait4(proc.pid, _os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout:.0f} s"}
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        proc.returncode = _os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    result = {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "exit": proc.returncode, "stdout": stdout}
    if proc.returncode not in (0, 1):
        result["error"] = (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]
    return result


def evidently_python() -> tuple[Path | None, str]:
    """A python with Evidently: the shared peers venv if it has it (bench/drift_quality.py installs it there),
    else one made here (`python -m venv` + `pip install evidently "pandas<3"`); (None, why) when that fails."""
    for home in (PEERS_HOME / "evidently", Path(BIG_TMP) / "mlops-bench-drift-evidently"):
        python = home / "bin" / "python"
        if python.exists():
            check = subprocess.run([str(python), "-c", "import evidently; print(evidently.__version__)"],
                                   capture_output=True, text=True, timeout=300)
            if check.returncode == 0:
                return python, f"evidently {check.stdout.strip()} ({home})"
    home = Path(BIG_TMP) / "mlops-bench-drift-evidently"
    print(f"  installing Evidently into {home} (once; not a project dependency) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True, capture_output=True,
                       timeout=300)
        done = subprocess.run([str(home / "bin" / "pip"), "install", "-q", "evidently", "pandas<3"],
                              capture_output=True, text=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"venv or pip failed: {exc}"
    if done.returncode != 0:
        return None, "pip install evidently failed: " + " ".join(done.stderr.strip().splitlines()[-2:])[:300]
    return home / "bin" / "python", f"evidently (installed into {home})"


def show(name: str, r: dict, extra: str = "") -> None:
    if "error" in r:
        print(f"  {name:24s} failed: {r['error']}")
    else:
        print(f"  {name:24s} {r['seconds']:7.2f} s   peak RSS {r['peak_mb']:7.0f} MiB{extra}")


def ratio(engine: dict, peer: dict, name: str = "Evidently") -> None:
    if "error" not in engine and "error" not in peer:
        print(f"  ratio vs {name:14s} {peer['seconds'] / engine['seconds']:7.1f}x faster, "
              f"{peer['peak_mb'] / engine['peak_mb']:.1f}x less memory")


def bench_wide(shape: str, folder: Path) -> None:
    rows, cols = parse_shape(shape)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--case", "prepare-wide", "--wide", shape, "--window", str(folder)],
                   check=True, cwd=ROOT, timeout=3600)
    window = folder / "wide.parquet"
    print(f"\n== wide: {rows:,} rows x {cols:,} float64 columns (generated + written in "
          f"{time.perf_counter() - t0:.0f} s, {window.stat().st_size / 2**20:,.0f} MiB parquet; drift in "
          f"f0..f{WIDE_DRIFTED - 1})")
    r = timed_process([sys.executable, __file__, "--case", "wide", "--profile", str(folder / "wide_profile.json"),
                       "--window", str(window)], timeout=3600)
    if "error" not in r:
        inner = json.loads(r["stdout"].strip().splitlines()[-1])
        drifted = inner["drifted"]
        print(f"  engine, whole process   {r['seconds']:7.2f} s   peak RSS {r['peak_mb']:7.0f} MiB   (imports "
              f"{inner['imports']:.2f} s, profile {inner['profile']:.2f} s, read + count {inner['read']:.2f} s, "
              f"compare {inner['compare']:.2f} s; row sample {inner['row_sample']})")
        print(f"  drifted: {len(drifted)} of {cols} ({', '.join(drifted[:12])}{', ...' if len(drifted) > 12 else ''})")
    else:
        show("engine", r)
    window.unlink()


def command_vs_evidently(ref: Path, cur: Path, label: str) -> None:
    engine = timed_process([str(ROOT / ".venv" / "bin" / "mlops"), "drift", str(ref), str(cur)])
    show("mlops drift (process)", engine)
    python, about = evidently_python()
    if python is None:
        print(f"  Evidently: not run ({about})")
        return
    peer = timed_process([str(python), "-c", EVIDENTLY, str(ref), str(cur)], timeout=3600)
    shown = (peer.get("stdout") or "").strip().splitlines()
    show("Evidently (process)", peer, f"   ({shown[-1] if shown else about}, DataDriftPreset)")
    ratio(engine, peer)


def bench_peer(shape: str, folder: Path) -> None:
    rows, cols = parse_shape(shape)
    ref, cur = folder / "peer_ref.parquet", folder / "peer_cur.parquet"
    write_parquet(ref, rows, cols, 1, drift=False)
    write_parquet(cur, rows, cols, 100, drift=True)
    print(f"\n== side by side: {rows:,} rows x {cols} float64 columns, reference and current of that size "
          f"(drift in f0..f{WIDE_DRIFTED - 1})")
    command_vs_evidently(ref, cur, shape)


def bench_command(rows: int, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    ref, cur = folder / "cmd_ref.parquet", folder / "cmd_cur.parquet"
    for path, seed, drift in ((ref, 1, False), (cur, 100, True)):
        frame = generate(rows, seed, drift)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=256 * 1024)
    print(f"\n== the command: mlops drift REF.parquet CUR.parquet, {rows:,} rows x {NUMERIC} numeric + "
          f"{CATEGORICAL} categorical on each side (drift in {', '.join(DRIFT)}); goal <= 2 s")
    command_vs_evidently(ref, cur, f"{rows}x20")


if __name__ == "__main__":
    sys.exit(main())
