"""The reference side of multivariate drift: what monitoring.multivariate compares a window's rows against.

`multivariate_profile(df, features, seed=...)` is stored in the reference profile under "multivariate"
(training.reference_profile.build_profile calls it on the feature columns). It holds:

* the encoder: numeric features standardised by the profile's mean and std (missing and non-finite values
  at the mean, 0); categorical ones one-hot on their MAX_CATEGORIES most frequent profile keys, each
  indicator standardised by its reference rate p (mean p, scale sqrt(p (1 - p))). Columns constant in the
  reference are left out: they carry no correlation to break.
* a PCA of the encoded reference rows (numpy's eigh of their covariance), keeping the components that
  explain VARIANCE of the variance: 0.65, NannyML's default. Keeping less than all of it is the point:
  a change in how features move together puts variance in the discarded directions, where the
  reconstruction error sees it even when every marginal is unchanged. At most MAX_COMPONENT_NUMBERS
  numbers of components are stored (a 1,000-column table keeps its first 50 components), rounded to 7
  significant digits.
* the reconstruction-error band. The error of a row is the Euclidean distance between its encoded vector
  and its PCA reconstruction (NannyML's); a window's error is the mean over its rows. The reference errors
  are measured out of sample (rows the PCA was not fitted on: the rows after FIT_ROWS, or 5-fold cross-
  fitting for a small reference), since in-sample errors are biased low and would make every later window
  look drifted. NannyML's band is mean ± 3 std of the mean error of reference chunks, at the chunk size of
  the reference. The std of a mean shrinks as 1/sqrt(rows), so a band fixed at one chunk size alarms too
  often for bigger windows and too rarely for smaller ones. Here the band is scaled to the window:
  mean ± pca_error_sigmas × σ × sqrt(1/n + 1/n_ref), with σ the per-row std of the reference errors (or,
  if larger, the std of 10 reference chunk means × sqrt(chunk rows): rows that are not independent widen
  it), n the rows of the window's sample (≤ 5,000 whatever the window's size) and n_ref the reference rows
  measured (the reference mean's own error). Under independent rows that is a 3-sigma two-sided band on
  a mean of ≥ 200 values: ~0.3 % false alarms by the central limit theorem at every window size.
* a uniform sample of whole reference rows (at most SAMPLE_ROWS, fewer for wide tables so that cells stay
  ≤ SAMPLE_CELLS), raw values, for the domain classifier (monitoring.multivariate).

Layout (JSON-safe)::

    {"columns": [{"feature": name, "kind": "numeric"} | {"feature": name, "kind": "categorical", "key": k}],
     "center": [...], "scale": [...],                 # per encoded column
     "pca": {"mean": [...], "components": [[...], ...], "variance_explained": float},
     "error": {"mean", "std", "rows", "chunk_std", "chunk_rows", "band": [low, high]},   # band: at chunk_rows
     "sample": {feature: [raw values], ...}, "sample_rows": int, "seed": int}
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

OTHER = "__other__"                          # training.reference_profile's folded-categories key
VARIANCE = 0.65
MAX_CATEGORIES = 10
MAX_COMPONENT_NUMBERS = 50_000
FIT_ROWS = 10_000
FIT_CELLS = 2_000_000
EVAL_ROWS = 50_000
EVAL_CELLS = 5_000_000
SAMPLE_ROWS = 2_000
SAMPLE_CELLS = 400_000
MIN_ROWS = 50
MIN_COLUMNS = 2
CHUNKS = 10
SIGMAS = 3.0


def multivariate_profile(df: pd.DataFrame, features: dict, *, seed: int = 0) -> dict | None:
    """The module docstring's layout for df's profiled features (features: the profile's per-feature
    specs); None with fewer than MIN_COLUMNS usable columns or MIN_ROWS rows."""
    if len(df) < MIN_ROWS:
        return None
    columns, center, scale = _encoder(df, features)
    if len({c["feature"] for c in columns}) < MIN_COLUMNS or len(columns) < MIN_COLUMNS:
        return None
    spec = {"columns": columns, "center": center, "scale": scale}
    used = list(dict.fromkeys(c["feature"] for c in columns))
    width = len(columns)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    fit_rows = max(MIN_ROWS, min(FIT_ROWS, FIT_CELLS // width))
    if len(df) >= 2 * fit_rows:
        fit = encode(df.iloc[order[:fit_rows]], spec)
        rest = order[fit_rows:fit_rows + max(fit_rows, min(EVAL_ROWS, EVAL_CELLS // width))]
        mean, components, explained = _pca(fit)
        errors = reconstruction_errors(encode(df.iloc[rest], spec), mean, components)
    else:
        # a small reference: every row's error out of sample by 5-fold cross-fitting, the stored PCA on all
        x = encode(df.iloc[order], spec)
        mean, components, explained = _pca(x)
        errors = np.empty(len(x))
        for fold in np.array_split(np.arange(len(x)), 5):
            others = np.setdiff1d(np.arange(len(x)), fold)
            m, c, _ = _pca(x[others], components=len(components))
            errors[fold] = reconstruction_errors(x[fold], m, c)
    chunks = [c.mean() for c in np.array_split(errors, CHUNKS)]
    chunk_rows = len(errors) // CHUNKS
    mu, chunk_std = float(errors.mean()), float(np.std(chunks, ddof=1))
    sample_rows = min(len(df), SAMPLE_ROWS, max(MIN_ROWS, SAMPLE_CELLS // len(used)))
    sample = df.iloc[np.sort(order[:sample_rows])]
    return {**spec,
            "pca": {"mean": _rounded(mean), "components": [_rounded(c) for c in components],
                    "variance_explained": float(explained)},
            "error": {"mean": mu, "std": float(errors.std(ddof=1)), "rows": int(len(errors)),
                      "chunk_std": chunk_std, "chunk_rows": int(chunk_rows),
                      "band": [mu - SIGMAS * chunk_std, mu + SIGMAS * chunk_std]},
            "sample": {name: _raw(sample[name], features[name]["type"]) for name in used},
            "sample_rows": int(sample_rows), "seed": int(seed)}


def encode(frame: pd.DataFrame, spec: dict) -> np.ndarray:
    """Rows of frame as the encoder in spec makes them: (rows, encoded columns) float64, missing values
    (and columns absent from frame) at the reference mean, 0."""
    out = np.zeros((len(frame), len(spec["columns"])), dtype=np.float64)
    keys_of: dict[str, np.ndarray] = {}
    for j, column in enumerate(spec["columns"]):
        name = column["feature"]
        if name not in frame.columns:
            continue
        if column["kind"] == "numeric":
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            values = (values - spec["center"][j]) / spec["scale"][j]
        else:
            if name not in keys_of:
                keys_of[name] = category_keys(frame[name])
            values = ((keys_of[name] == column["key"]) - spec["center"][j]) / spec["scale"][j]
        out[:, j] = np.where(np.isfinite(values), values, 0.0)
    return out


def category_keys(series: pd.Series) -> np.ndarray:
    """Each value's category key, as `normal_key` makes it (None for missing): str() of one distinct value
    at a time."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    lookup = np.array([normal_key(str(u)) for u in uniques] + [None], dtype=object)
    return lookup[codes]     # code -1 (missing) takes the last entry, None


def normal_key(text: str) -> str:
    """One key for the same category however it arrives: a low-cardinality numeric column is profiled as
    categorical with keys like "1" but may come back as 1.0 (JSON, a float column): integral numbers lose
    their ".0"."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def reconstruction_errors(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row to its projection on the components' span (through mean)."""
    centred = x - mean
    residual = centred - (centred @ components.T) @ components
    return np.sqrt(np.einsum("ij,ij->i", residual, residual))


def error_band(error: dict, rows: int, sigmas: float = SIGMAS) -> tuple[float, float]:
    """The band of a mean error over `rows` rows (the module docstring): reference mean ± sigmas × σ ×
    sqrt(1/rows + 1/reference rows)."""
    sigma = max(error["std"], error["chunk_std"] * math.sqrt(max(error["chunk_rows"], 1)))
    half = sigmas * sigma * math.sqrt(1 / max(rows, 1) + 1 / max(error["rows"], 1))
    return error["mean"] - half, error["mean"] + half


def _encoder(df: pd.DataFrame, features: dict) -> tuple[list[dict], list[float], list[float]]:
    columns: list[dict] = []
    center: list[float] = []
    scale: list[float] = []
    for name, spec in features.items():
        if name not in df.columns:
            continue
        if spec.get("type") == "numeric":
            std = spec.get("std")
            if std and math.isfinite(std) and std > 0 and spec.get("mean") is not None:
                columns.append({"feature": name, "kind": "numeric"})
                center.append(float(spec["mean"]))
                scale.append(float(std))
            continue
        frequencies = spec.get("frequencies") or {}
        rows = (spec.get("count") or 0) + (spec.get("null_count") or 0)
        kept = [k for k in frequencies if k != OTHER][:MAX_CATEGORIES]
        for key in kept:
            p = frequencies[key] / rows if rows else 0.0
            if 0 < p < 1:
                columns.append({"feature": name, "kind": "categorical", "key": normal_key(key)})
                center.append(p)
                scale.append(math.sqrt(p * (1 - p)))
    return columns, center, scale


def _pca(x: np.ndarray, components: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """The PCA's mean and components (rounded as stored), and the variance they explain: the eigenvectors
    of the columns x columns covariance, as scikit-learn's PCA(svd_solver="covariance_eigh") finds them,
    written over numpy because importing scikit-learn costs a drift command about a second. For many rows
    and few columns far faster than an SVD of the rows, and deterministic."""
    mean = x.mean(axis=0)
    centred = x - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / max(len(x) - 1, 1))
    values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1].T        # largest first
    share = values / values.sum() if values.sum() > 0 else np.zeros_like(values)
    wanted = components or int(np.searchsorted(np.cumsum(share), VARIANCE) + 1)
    keep = max(1, min(wanted, len(values), MAX_COMPONENT_NUMBERS // x.shape[1]))
    found = np.asarray(_rounded(vectors[:keep]), dtype=np.float64)
    return np.asarray(_rounded(mean), dtype=np.float64), found, float(share[:keep].sum())


def _rounded(values: np.ndarray) -> list:
    """7 significant digits (float32's precision): the stored profile stays small."""
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64).ravel()] if np.ndim(values) == 1 \
        else [_rounded(row) for row in values]


def _raw(series: pd.Series, kind: str) -> list:
    if kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return [float(f"{v:.7g}") if math.isfinite(v) else None for v in values]
    return [None if pd.isna(v) else str(v) for v in series]
