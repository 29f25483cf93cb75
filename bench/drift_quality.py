"""Drift detection quality: false alarms on unchanged data and detection of known drift, beside Evidently and NannyML.

    .venv/bin/python bench/drift_quality.py [--quick] [--sizes 200,1000,10000,100000,1000000] [--reps 100]
        [--tables breast_cancer,wine,diabetes,generated] [--peers evidently,nannyml] [--json]

Tables. Three real ones shipped with scikit-learn (no download): breast cancer (569 x 30, plus its
diagnosis as a categorical column), wine (178 x 13, plus the cultivar) and diabetes (442 x 10 raw, sex as a
categorical column, the disease progression as a numeric one), and one generated (12 correlated numeric
columns, Gaussian and log-normal, and a 4-level category tied to them). The larger shipped tables
(fetch_covtype, fetch_california_housing) download and are not used. A real table has a few hundred rows,
so reference and windows are drawn from its smoothed bootstrap: rows resampled with replacement, each
continuous column (> 5 distinct values) plus Gaussian noise of 0.1 x its std, so that a window of 1M rows is
not 2,000 copies of each row; columns of <= 5 values are resampled as they are. The reference (10,000 rows
by default) and every window are independent draws of that one distribution, so a stationary window is
exactly "no drift". The generated table is drawn from its model directly.

Windows, per table and size: stationary ones, and one kind of injected drift each, of known size:
  shift_0.25sd / shift_0.5sd  one continuous column plus 0.25 / 0.5 of its std
  category                    the most frequent category's share + 20 points (e.g. 50/50 -> 70/30), the
                              other columns of those rows unchanged
  subpopulation               rows whose selecting column (another continuous one) is above its median
                              kept always, the others with probability 7/13: 50% -> 65% of rows above it
  correlation                 the most correlated pair's second column permuted among a random half of the
                              window's rows: every marginal exactly as stationary, that pair's correlation
                              (and the column's with the others) about halved. No univariate test sees it.

Methods, on the same Parquet files, each in its own process (bench/peers/*_runner.py):
  engine              the project's: build_profile(reference); compare(profile, window).drifted
  evidently           Evidently's DataDriftPreset, every default; the dataset drift decision (share of
                      drifted columns >= 0.5). evidently-any: any column drifted in that same report
  nannyml-univariate  NannyML's UnivariateDriftCalculator, defaults (Jensen-Shannon, 3-std thresholds from
                      reference chunks); any column alerting
  nannyml-pca         NannyML's DataReconstructionDriftCalculator (PCA reconstruction error, 3-std band)
NannyML: the window is one chunk; the reference is chunked by the window size when it holds >= 10 such
chunks, else in 10 chunks (conservative bands for windows above reference rows / 10: see the runner).
The peers are installed by this bench into their own venvs under /tmp/mlops-bench-peers/<peer> (kept
between runs; set MLOPS_BENCH_PEERS to move them). They are not dependencies of the project. A peer that
fails to install or crashes is reported and the others go on.

Printed, per size and kind: each method's rate of drift decisions (false alarms on stationary windows,
detection on the others) with the number of windows behind it and its exact 95% (Clopper-Pearson) interval,
pooled over the tables; the best peer; the time per window; and whether the engine meets its goals (false
alarms <= 1% at every size, detection >= the best peer at every size and kind). A rate from 100 windows is
only known to a few points: read the interval. Always exits 0 (a benchmark, not a test).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = ROOT / "bench" / "peers"
PEERS_HOME = Path(os.environ.get("MLOPS_BENCH_PEERS", "/tmp/mlops-bench-peers"))
# what pip installs into each peer's venv; pandas < 3: evidently 0.7 and nannyml 0.13 import pandas internals
# that pandas 3 removed
PEERS: dict[str, list[str]] = {"evidently": ["evidently", "pandas<3"],
                               "nannyml": ["nannyml", "statsmodels", "pandas<3"]}
PEER_METHODS = {"evidently": ["evidently", "evidently-any"], "nannyml": ["nannyml-univariate", "nannyml-pca"]}
KINDS = ("stationary", "shift_0.25sd", "shift_0.5sd", "category", "subpopulation", "correlation")
TABLES = ("breast_cancer", "wine", "diabetes", "generated")
JITTER = 0.1            # smoothed bootstrap: noise std as a share of each continuous column's std
DISCRETE = 5            # columns with at most this many distinct values are resampled without noise
CATEGORY_POINTS = 0.20  # the category kind: share added to the most frequent category
KEEP_BELOW = 7 / 13     # subpopulation: rows below the median kept with this probability -> 65% above
PERMUTED_SHARE = 0.5    # correlation: share of rows among which the column is permuted
FA_GOAL = 0.01
PEER_FA_CAP = 0.05      # a peer counts as "best" only where its own false alarms stay under this
SHARDS = {"evidently": 2}   # its runs take seconds each: two processes at once on the two cores
DATA_VERSION = 1        # bump when the tables or windows change: peers' cached decisions are keyed by it


# ---- tables -----------------------------------------------------------------------------------------------

@dataclass
class Table:
    """A distribution to draw windows from, and the columns each kind of drift acts on."""
    name: str
    source: str
    base: pd.DataFrame | None           # real rows (smoothed bootstrap); None: generated
    categorical: str
    numeric: list[str]
    continuous: list[str] = field(default_factory=list)
    shift: str = ""
    select: str = ""
    pair: tuple[str, str] = ("", "")
    std: dict[str, float] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)
    top_category: str = ""
    correlation: float = 0.0            # of the pair, before any drift

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        if self.base is None:
            return _generated(n, rng)
        idx = rng.integers(0, len(self.base), n)
        out = {}
        for name in self.base.columns:
            values = self.base[name].to_numpy()[idx]
            if name in self.continuous:
                values = values + rng.normal(0.0, JITTER * self.base[name].std(), n)
            out[name] = values
        return pd.DataFrame(out)

    def describe(self) -> str:
        a, b = self.pair
        return (f"{self.name} ({self.source}): {len(self.numeric)} numeric + categorical {self.categorical!r}; "
                f"shift {self.shift!r}, subpopulation by {self.select!r}, correlation {a!r} ~ {b!r} "
                f"(r = {self.correlation:.2f}), category {self.top_category!r}")


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns=lambda c: str(c).strip().replace(" ", "_"))


def _real(name: str) -> Table:
    from sklearn import datasets
    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        df = _clean(bunch.data)
        df["diagnosis"] = np.where(bunch.target == 0, "malignant", "benign")
        return Table(name, "scikit-learn load_breast_cancer, 569 rows", df, "diagnosis",
                     [str(c) for c in df if c != "diagnosis"])
    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        df = _clean(bunch.data)
        df["cultivar"] = [f"class_{t}" for t in bunch.target]
        return Table(name, "scikit-learn load_wine, 178 rows", df, "cultivar", [str(c) for c in df if c != "cultivar"])
    bunch = datasets.load_diabetes(as_frame=True, scaled=False)
    df = _clean(bunch.data)
    df["sex"] = df["sex"].astype(int).astype(str)
    df["progression"] = bunch.target.astype(float)
    return Table(name, "scikit-learn load_diabetes (raw), 442 rows", df, "sex", [str(c) for c in df if c != "sex"])


GENERATED_NUMERIC = 12


def _generated(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """12 numeric columns from a fixed 3-factor model (so pairs are correlated), half of them log-normal,
    and a 4-level category whose odds follow the first factor."""
    loadings = np.random.default_rng(12345).normal(0.0, 1.0, (GENERATED_NUMERIC, 3))
    factors = rng.standard_normal((n, 3))
    z = factors @ loadings.T + rng.standard_normal((n, GENERATED_NUMERIC)) * 0.6
    z /= np.sqrt((loadings ** 2).sum(axis=1) + 0.36)
    cols = {f"x{i}": (np.exp(0.5 * z[:, i]) if i % 2 else z[:, i] * (1 + i) + 10 * i) for i in range(GENERATED_NUMERIC)}
    logits = np.outer(factors[:, 0], [1.0, 0.3, -0.3, -1.0]) + np.log([0.4, 0.3, 0.2, 0.1])
    u = rng.random(n)[:, None]
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    cols["segment"] = np.array(["a", "b", "c", "d"])[(u > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 3)]
    return pd.DataFrame(cols)


def load_table(name: str) -> Table:
    table = (Table(name, f"generated, {GENERATED_NUMERIC} numeric + 1 categorical", None, "segment",
                   [f"x{i}" for i in range(GENERATED_NUMERIC)])
             if name == "generated" else _real(name))
    # the distribution's own figures, from a large draw of it (the jitter included)
    big = table.sample(200_000, np.random.default_rng(7)) if table.base is None else None
    source = table.base if table.base is not None else big
    assert source is not None
    table.continuous = [c for c in table.numeric if source[c].nunique() > DISCRETE]
    stats_of = big if big is not None else table.sample(200_000, np.random.default_rng(7))
    table.std = {c: float(stats_of[c].std()) for c in table.numeric}
    table.median = {c: float(stats_of[c].median()) for c in table.numeric}
    table.top_category = str(stats_of[table.categorical].value_counts().idxmax())
    corr = stats_of[table.continuous].corr().abs().to_numpy(copy=True)
    np.fill_diagonal(corr, 0.0)
    i, j = np.unravel_index(int(np.nanargmax(corr)), corr.shape)
    table.pair = (table.continuous[i], table.continuous[j])
    table.correlation = float(stats_of[table.pair[0]].corr(stats_of[table.pair[1]]))
    rest = [c for c in table.continuous if c not in table.pair]
    table.shift, table.select = rest[0], rest[1]
    return table


# ---- windows ----------------------------------------------------------------------------------------------

def make_window(table: Table, kind: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if kind == "subpopulation":
        parts, have = [], 0
        while have < n:
            draw = table.sample(2 * n, rng)
            keep = (draw[table.select].to_numpy() > table.median[table.select]) | (rng.random(2 * n) < KEEP_BELOW)
            parts.append(draw[keep])
            have += int(keep.sum())
        return pd.concat(parts, ignore_index=True).iloc[:n].reset_index(drop=True)
    df = table.sample(n, rng)
    if kind.startswith("shift_"):
        sigmas = float(kind.removeprefix("shift_").removesuffix("sd"))
        df[table.shift] = df[table.shift] + sigmas * table.std[table.shift]
    elif kind == "category":
        values = df[table.categorical].to_numpy().copy()
        p = float(np.mean(values == table.top_category))
        target = min(p + CATEGORY_POINTS, 0.99)
        flip = (values != table.top_category) & (rng.random(n) < (target - p) / max(1 - p, 1e-9))
        values[flip] = table.top_category
        df[table.categorical] = values
    elif kind == "correlation":
        column = table.pair[1]
        rows = rng.choice(n, int(n * PERMUTED_SHARE), replace=False)
        values = df[column].to_numpy().copy()
        values[rows] = values[rng.permutation(rows)]
        df[column] = values
    return df


def reps_at(size: int, reps: int) -> tuple[int, int]:
    """(stationary, per drift kind) windows per table: fewer at large sizes, where each costs more."""
    stationary = max(2, round(reps * min(1.0, math.sqrt(1000 / size))))
    return stationary, max(1, round(stationary / 20))


# ---- peers ------------------------------------------------------------------------------------------------

def ensure_peer(peer: str) -> tuple[Path | None, str]:
    """The peer venv's python, installing it on first use; (None, reason) when that fails."""
    home = PEERS_HOME / peer
    python = home / "bin" / "python"
    marker = home / ".bench-install.json"
    module = peer
    if python.exists() and marker.exists():
        check = subprocess.run([str(python), "-c", f"import {module}; print({module}.__version__)"],
                               capture_output=True, text=True, timeout=300)
        if check.returncode == 0:
            info = json.loads(marker.read_text())
            return python, (f"{peer} {check.stdout.strip()} (cached venv, installed in {info['seconds']:.0f} s, "
                            f"{info['size']})")
    shutil.rmtree(home, ignore_errors=True)
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, capture_output=True, timeout=300)
        done = subprocess.run([str(home / "bin" / "pip"), "install", "-q", *PEERS[peer]],
                              capture_output=True, text=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"{peer}: venv or pip failed: {exc}"
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "WARNING" not in line]
        return None, f"{peer}: pip install failed: {' '.join(errors[-3:])[:400]}"
    seconds = time.perf_counter() - start
    size = subprocess.run(["du", "-sh", str(home)], capture_output=True, text=True).stdout.split("\t")[0]
    check = subprocess.run([str(python), "-c", f"import {module}; print({module}.__version__)"],
                           capture_output=True, text=True, timeout=300)
    if check.returncode != 0:
        return None, f"{peer}: installed but does not import: {check.stderr.strip().splitlines()[-1:]}"
    marker.write_text(json.dumps({"seconds": seconds, "size": size}))
    return python, f"{peer} {check.stdout.strip()} (installed now in {seconds:.0f} s, {size})"


def run_runner(python: Path, runner: str, manifest: dict, folder: Path, shards: int,
               timeout: float) -> tuple[list[dict], str | None]:
    """The runner's JSON lines over the manifest's windows (window = index in manifest["windows"]), run as
    `shards` processes at once on interleaved windows, and why it stopped early (None if it finished)."""
    windows = manifest["windows"]
    parts = [list(range(i, len(windows), shards)) for i in range(min(shards, len(windows)))]
    procs = []
    for k, part in enumerate(parts):
        path = folder / f"manifest-{runner}-{k}.json"
        path.write_text(json.dumps({**manifest, "windows": [windows[i] for i in part]}))
        procs.append(subprocess.Popen([str(python), str(RUNNERS / runner), str(path)], cwd=ROOT, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    deadline = time.monotonic() + timeout
    lines: list[dict] = []
    problem = None
    for part, proc in zip(parts, procs):
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode != 0:
                problem = f"exit {proc.returncode}" + (f": {err.strip().splitlines()[-1][:300]}" if err.strip() else "")
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            problem = f"timed out after {timeout:.0f} s"
        for text in out.splitlines():
            if not text.startswith("{"):
                continue
            line = json.loads(text)
            if "window" in line:
                line["window"] = part[line["window"]]
            if "fatal" in line:
                problem = line["fatal"]
            lines.append(line)
    return lines, problem


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class PeerCache:
    """Peers' decisions per window, kept between runs (their code does not change, the engine's does): a
    rerun for the engine's latest figures reruns only the engine. Keyed by the runner's source, the peer's
    version, the table, size, reference rows, seed and DATA_VERSION, and the window's kind and repetition."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        self.data: dict[str, dict] = {}
        if enabled and path.exists():
            try:
                self.data = json.loads(path.read_text())
            except ValueError:
                self.data = {}

    def get(self, key: str) -> dict | None:
        return self.data.get(key) if self.enabled else None

    def put(self, key: str, line: dict) -> None:
        if self.enabled and line.get("drifted") is not None:
            self.data[key] = line

    def save(self) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)


# ---- results ----------------------------------------------------------------------------------------------

def interval(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def summarise(records: list[dict], methods: list[str], sizes: list[int]) -> dict:
    """Per size, kind and method: windows decided, drift decisions, rate and interval, errors, seconds."""
    cells: dict[tuple[int, str, str], dict] = defaultdict(lambda: {"n": 0, "drifted": 0, "errors": 0, "seconds": []})
    for r in records:
        cell = cells[(r["size"], r["kind"], r["method"])]
        if r["drifted"] is None:
            cell["errors"] += 1
        else:
            cell["n"] += 1
            cell["drifted"] += int(r["drifted"])
            cell["seconds"].append(r["seconds"])
    out: dict = {}
    for (size, kind, method), cell in cells.items():
        n, k = cell["n"], cell["drifted"]
        low, high = interval(k, n) if n else (math.nan, math.nan)
        out.setdefault(str(size), {}).setdefault(kind, {})[method] = {
            "windows": n, "drifted": k, "rate": k / n if n else None, "ci95": [low, high],
            "errors": cell["errors"],
            "seconds_per_window": float(np.mean(cell["seconds"])) if cell["seconds"] else None}
    return out


def verdicts(summary: dict, methods: list[str]) -> dict:
    """The engine against its goals. The best peer of a size and kind is the one that detects most among
    the peers whose false alarms at that size stay within PEER_FA_CAP: a method that alarms on most
    unchanged windows also "detects" every drift, and no one could act on its alerts."""
    peers = [m for m in methods if m != "engine"]
    result: dict = {"false_alarms": {}, "detection": {}, "peer_fa_cap": PEER_FA_CAP}
    for size, kinds in summary.items():
        engine = kinds.get("stationary", {}).get("engine")
        if engine and engine["windows"]:
            result["false_alarms"][size] = {"rate": engine["rate"], "ci95": engine["ci95"],
                                            "windows": engine["windows"], "met": engine["rate"] <= FA_GOAL,
                                            "shown": engine["ci95"][1] <= FA_GOAL}
        stationary = kinds.get("stationary", {})
        credible = [p for p in peers if stationary.get(p, {}).get("windows") and stationary[p]["rate"] <= PEER_FA_CAP]
        for kind, cells in kinds.items():
            if kind == "stationary" or "engine" not in cells or not cells["engine"]["windows"]:
                continue
            scored = [(cells[p]["rate"], p) for p in credible if p in cells and cells[p]["windows"]]
            best = max(scored, default=(None, None))
            any_best = max(((cells[p]["rate"], p) for p in peers if p in cells and cells[p]["windows"]),
                           default=(None, None))
            rate = cells["engine"]["rate"]
            result["detection"].setdefault(size, {})[kind] = {
                "engine": rate, "best_peer": best[1], "best_peer_rate": best[0],
                "met": best[0] is None or rate >= best[0],
                "excluded_peers": [p for p in peers if p not in credible],
                "best_any_peer": any_best[1], "best_any_rate": any_best[0],
                "best_any_false_alarms": stationary.get(any_best[1], {}).get("rate") if any_best[1] else None}
    return result


def print_tables(summary: dict, verdict: dict, methods: list[str], counts: dict, used: dict,
                 peer_stationary: int) -> None:
    for size in summary:
        stationary, drifted = counts[size]
        print(f"\n== windows of {int(size):,} rows: per table {stationary} stationary (peers: the first "
              f"{min(stationary, peer_stationary)}) + {drifted} per drift kind; tables pooled: {', '.join(used[size])}")
        header = f"  {'kind':15s}" + "".join(f"{m:>22s}" for m in methods) + "   best peer"
        print(header)
        for kind in KINDS:
            cells = summary[size].get(kind)
            if not cells:
                continue
            row = f"  {kind:15s}"
            for m in methods:
                c = cells.get(m)
                if not c or not c["windows"]:
                    row += f"{'-':>22s}"
                    continue
                low, high = c["ci95"]
                row += f"{100 * c['rate']:6.1f}% [{100 * low:4.1f},{100 * high:5.1f}]" + " " * 2
            if kind != "stationary":
                d = verdict["detection"].get(size, {}).get(kind)
                if d and d["best_peer"]:
                    row += f"  {d['best_peer']} {100 * d['best_peer_rate']:.0f}%"
                    row += "" if d["met"] else "  << engine below"
            print(row)
        windows = f"  {'windows (n)':15s}" + "".join(
            f"{sum(summary[size].get(k, {}).get(m, {}).get('windows', 0) for k in KINDS):>22d}" for m in methods)
        print(windows)
        errors = {m: sum(summary[size].get(k, {}).get(m, {}).get("errors", 0) for k in KINDS) for m in methods}
        if any(errors.values()):
            print(f"  {'failed windows':15s}" + "".join(f"{errors[m]:>22d}" for m in methods))
        secs = []
        for m in methods:
            values = [(c["seconds_per_window"], c["windows"]) for k in KINDS
                      if (c := summary[size].get(k, {}).get(m)) and c["seconds_per_window"] is not None]
            total = sum(w for _, w in values)
            secs.append(sum(s * w for s, w in values) / total if total else math.nan)
        print(f"  {'s / window':15s}" + "".join(f"{s:>22.3f}" for s in secs))
    print("\n== goals")
    for size, fa in verdict["false_alarms"].items():
        state = "met" if fa["met"] else "NOT met"
        proof = ("upper 95% bound within 1%" if fa["shown"] else
                 f"but {fa['windows']} windows cannot show <= 1% (upper bound {100 * fa['ci95'][1]:.1f}%)")
        print(f"  false alarms <= 1% at {int(size):>9,} rows: {100 * fa['rate']:.1f}% -> {state}"
              + (f" ({proof})" if fa["met"] else ""))
    misses = [(size, kind, d) for size, kinds in verdict["detection"].items() for kind, d in kinds.items()
              if not d["met"]]
    if misses:
        for size, kind, d in misses:
            print(f"  detection below the best peer at {int(size):>9,} rows, {kind}: engine {100 * d['engine']:.0f}% "
                  f"< {d['best_peer']} {100 * d['best_peer_rate']:.0f}%")
    else:
        print("  detection >= best peer at every size and kind: met")
    above = [(size, kind, d) for size, kinds in verdict["detection"].items() for kind, d in kinds.items()
             if d["best_any_rate"] is not None and d["engine"] < d["best_any_rate"]]
    for size, kind, d in above:
        fa = d["best_any_false_alarms"]
        print(f"  (counting every peer, whatever its false alarms: at {int(size):>9,} rows, {kind}: engine "
              f"{100 * d['engine']:.0f}% < {d['best_any_peer']} {100 * d['best_any_rate']:.0f}%, whose false "
              f"alarms there are {'?' if fa is None else f'{100 * fa:.0f}%'})")
    print(f"  (best peer: the most detections among peers whose false alarms at that size are <= "
          f"{100 * PEER_FA_CAP:.0f}%; rates are point estimates: compare the intervals above)")


# ---- main -------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,10000,100000,1000000")
    parser.add_argument("--reps", type=int, default=100,
                        help="stationary windows per table at sizes <= 1k (fewer above; per drift kind: 1/20)")
    parser.add_argument("--peer-stationary", type=int, default=10,
                        help="stationary windows per table and size the peers see (the first ones; all drift windows)")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--large-tables", default="breast_cancer",
                        help="the tables used at sizes >= 100k (each such window costs minutes to the peers)")
    parser.add_argument("--peers", default="evidently,nannyml", help="comma list; empty for the engine alone")
    parser.add_argument("--reference-rows", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per runner and batch of windows")
    parser.add_argument("--no-cache", action="store_true", help="rerun the peers on every window")
    parser.add_argument("--quick", action="store_true", help="sizes 200,1000, 5 reps: checks that it works")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--per-table", action="store_true", help="also a table of rates for each table alone")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.reps, args.peer_stationary = "200,1000", 5, 5
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    tables = [t for t in args.tables.split(",") if t.strip()]
    large = [t for t in args.large_tables.split(",") if t.strip()]
    unknown = [t for t in tables + large if t not in TABLES]
    if unknown:
        print(f"unknown tables {unknown}: choose from {', '.join(TABLES)}")
        return 0
    started = time.perf_counter()
    load = os.getloadavg()
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))

    runners: list[tuple[str, Path, str, list[str]]] = [("engine", Path(sys.executable), "engine_runner.py", ["engine"])]
    peers_info: dict[str, str] = {}
    for peer in [p for p in args.peers.split(",") if p.strip()]:
        if peer not in PEERS:
            peers_info[peer] = f"unknown peer (known: {', '.join(PEERS)})"
            say(f"peer {peer}: {peers_info[peer]}")
            continue
        python, info = ensure_peer(peer)
        peers_info[peer] = info
        say(f"peer {info}")
        if python:
            runners.append((peer, python, f"{peer}_runner.py", PEER_METHODS[peer]))
    methods = [m for _, _, _, ms in runners for m in ms]
    cache = PeerCache(PEERS_HOME / "decisions-cache.json", not args.no_cache)
    sources = {runner: (RUNNERS / runner).read_text() + (RUNNERS / "common.py").read_text()
               for _, _, runner, _ in runners}

    records: list[dict] = []
    problems: list[str] = []
    setups: list[dict] = []
    counts = {str(size): reps_at(size, args.reps) for size in sizes}
    used = {str(size): [t for t in tables if size < 100_000 or t in large] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="bench-drift-quality-") as tmp:
        for t_index, name in enumerate(TABLES):
            if not any(name in used[str(size)] for size in sizes):
                continue
            table = load_table(name)
            say(f"table {table.describe()}")
            folder = Path(tmp) / name
            folder.mkdir()
            reference = folder / "reference.parquet"
            table.sample(args.reference_rows, np.random.default_rng([args.seed, t_index, 0])).to_parquet(reference)
            for s_index, size in enumerate(sizes):
                if name not in used[str(size)]:
                    continue
                t0 = time.perf_counter()
                stationary, per_kind = counts[str(size)]
                plan = [(kind, rep) for kind in KINDS
                        for rep in range(stationary if kind == "stationary" else per_kind)]
                paths = []
                for kind, rep in plan:
                    rng = np.random.default_rng([args.seed, t_index, s_index + 1, KINDS.index(kind), rep])
                    path = folder / f"w-{kind}-{rep:04d}.parquet"
                    make_window(table, kind, size, rng).to_parquet(path, row_group_size=256 * 1024)
                    paths.append(str(path))
                manifest = {"reference": str(reference), "numeric": table.numeric,
                            "categorical": [table.categorical],
                            "reference_chunk_rows": (size if args.reference_rows >= 10 * size
                                                     else args.reference_rows // 10)}
                timing = [f"windows {time.perf_counter() - t0:.1f} s"]
                for peer, python, runner, peer_methods in runners:
                    base = _digest(sources[runner], peers_info.get(peer, ""), name, size, args.reference_rows,
                                   args.seed, DATA_VERSION)
                    wanted = [w for w, (kind, rep) in enumerate(plan)
                              if peer == "engine" or kind != "stationary" or rep < args.peer_stationary]
                    decided: dict[tuple[int, str], dict] = {}
                    if peer != "engine":
                        for w in wanted:
                            for m in peer_methods:
                                hit = cache.get(_digest(base, *plan[w], m))
                                if hit is not None:
                                    decided[(w, m)] = hit
                    todo = [w for w in wanted if any((w, m) not in decided for m in peer_methods)]
                    t1 = time.perf_counter()
                    if todo:
                        lines, problem = run_runner(python, runner, {**manifest, "windows": [paths[w] for w in todo]},
                                                    folder, 1 if peer == "engine" else SHARDS.get(peer, 1),
                                                    args.timeout)
                        if problem:
                            problems.append(f"{name} {size:,} rows, {peer}: {problem}")
                            say(f"  ! {problems[-1]}")
                        setups += [{"table": name, "size": size, **line} for line in lines if "setup" in line]
                        for line in lines:
                            if "window" in line:
                                w = todo[line["window"]]
                                decided[(w, line["method"])] = line
                                if peer != "engine":
                                    cache.put(_digest(base, *plan[w], line["method"]), line)
                        cache.save()
                    timing.append(f"{peer} {time.perf_counter() - t1:.1f} s"
                                  + (f" ({len(wanted) - len(todo)} cached)" if len(todo) < len(wanted) else ""))
                    for w in wanted:
                        kind, rep = plan[w]
                        for m in peer_methods:
                            line = decided.get((w, m), {"drifted": None, "seconds": None, "error": "not run"})
                            records.append({"table": name, "size": size, "kind": kind, "rep": rep, "method": m,
                                            "drifted": line["drifted"], "seconds": line["seconds"],
                                            "error": line.get("error")})
                say(f"  {name} {size:>9,} rows x {len(plan)} windows: " + ", ".join(timing))
                for done_path in paths:
                    Path(done_path).unlink()
    summary = summarise(records, methods, sizes)
    summary = {str(s): summary[str(s)] for s in sizes if str(s) in summary}
    verdict = verdicts(summary, methods)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({"sizes": sizes, "tables": used, "methods": methods, "peers": peers_info,
                          "windows_per_table": counts, "peer_stationary": args.peer_stationary,
                          "summary": summary, "goals": verdict, "problems": problems, "setups": setups,
                          "records": records, "seconds": elapsed}))
        return 0
    print_tables(summary, verdict, methods, counts, used, args.peer_stationary)
    if args.per_table:
        for name in TABLES:
            mine = [r for r in records if r["table"] == name]
            if not mine:
                continue
            part = summarise(mine, methods, sizes)
            part = {str(s): part[str(s)] for s in sizes if str(s) in part}
            print(f"\n\n#### {name} alone")
            print_tables(part, verdicts(part, methods), methods, counts, {k: [name] for k in part},
                         args.peer_stationary)
    setup_by = defaultdict(list)
    for setup in setups:
        setup_by[setup["setup"]].append(setup["seconds"])
    print("\n  fit on the reference per batch (s, mean): "
          + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in setup_by.items()))
    for info in peers_info.values():
        print(f"  peer {info}")
    if "evidently" in methods:
        print("  evidently's times are its decision alone: its plots are not drawn (bench/peers/evidently_runner.py)")
    print(f"  load average of the machine at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f} "
          f"(on {os.cpu_count()} cores: times are inflated by whatever else runs)")
    if problems:
        print(f"  problems ({len(problems)}): " + "; ".join(problems[:10]))
    print(f"  total {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
