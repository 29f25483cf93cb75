"""The reference profile of a model's training data: what monitoring compares live traffic against.

`build_profile(df, target)` summarises every column in one pass of vectorised numpy/pandas (a sort per
numeric column, a value count per categorical one): about 0.3 s for 1M rows x 10 columns on two cores,
and 0.4 s more with a target (the class counts per bin of every feature, `target_by_feature`).
The result is plain JSON, saved with the model as `reference/profile.json`.

Layout (``profile_version`` 1)::

    {"profile_version": 1, "rows": N, "target": "y" | null, "task": "classification" | "regression",
     "config": {"bins": 20, "sample_size": 5000, "top_k": 50, "seed": 0},
     "dtypes": {column: pandas dtype as str, ...},            # every column of df, target included
     "features": {column: <numeric> | <categorical>, ...},    # every column but the target
     "target_profile": <categorical> | <numeric> | null,      # class frequencies; regression: <numeric>
     "target_by_feature": {column: <relation>, ...},          # classification, with a target: see below
     "target_bins_by_feature": {column: <binned relation>},   # regression, with a target: see below
     "outputs": {name: <categorical> | <numeric>, ...},       # optional: model outputs (prediction drift)
     "multivariate": {...}}     # optional: training.multivariate_profile's reference for the multivariate checks

    <numeric>     = {"type": "numeric", "count", "null_count", "null_rate", "infinite_count",
                     "min", "max", "mean", "std", "distinct",  # distinct finite values
                     "percentiles": {"p01", "p05", "p25", "p50", "p75", "p95", "p99"},
                     "quantiles": [e0, ..., ek],               # bin edges, deduplicated, ascending
                     "histogram": {"edges": [...], "counts": [c0, ..., c(k-1)]},
                     "sample": [...]}                          # sorted, <= sample_size values
    <categorical> = {"type": "categorical", "count", "null_count", "null_rate", "cardinality",
                     "frequencies": {str(value): count, ..., "__other__": count},
                     "numeric_categories": true, "mean", "std"}  # only for a low-cardinality number: below
    <relation>    = {"classes": [str(class), ...],             # sorted, at most MAX_RELATION_CLASSES
                     "counts": [[count per class] per bin]}    # the feature's bins, in profile order

A regression target is continuous: ``target_profile`` is then a <numeric> profile (its quantile bins
are the target's bins), the model outputs are <numeric> too, and instead of ``target_by_feature`` there is

    <binned relation> = {"counts": [[rows per target bin] per feature bin]}

the rows of each target bin (``assign_bins`` on ``target_profile``'s histogram edges) in each feature bin:
the same stratified comparison of P(target bin | feature bin) works on it, with a current label's class
being its target bin. Rows whose target is null or infinite are not counted.

``target_by_feature`` is what concept drift compares P(label | feature bin) against: for each profiled
feature, the rows of each target class in each of its bins (numeric: the histogram bins; categorical: the
keys of ``frequencies`` in their order, ``__other__`` included), as `feature_bins` assigns them. Rows whose
feature or target is null (or whose numeric value is infinite) are not counted. It has at most
``bins x MAX_RELATION_CLASSES`` (or ``(top_k + 1) x MAX_RELATION_CLASSES``) numbers per feature, and is
left out when the target has more classes than that (a target of that many classes is not a label the
relation check can judge), and for features without a finite value. Profiles written before it existed
lack the key; monitoring then skips the relation check.

Conventions the drift engine must follow to compare a current window with this profile:

* Numeric bins: ``edges`` are the reference's ``bins + 1`` quantiles (linear interpolation, as
  ``numpy.quantile``), deduplicated, so there are ``k = len(edges) - 1`` bins (``k < bins`` for columns
  with ties). Bin *i* holds ``edges[i] <= x < edges[i+1]``; the outer bins are open-ended, so values
  below the reference minimum fall in bin 0 and values at or above the last edge in bin k-1: exactly
  `assign_bins`. A constant column has one edge and one bin. Counts cover finite non-null values only,
  so ``sum(counts) == count - infinite_count``.
* Categorical keys are ``str(value)`` of the non-null values (``True`` -> ``"True"``, ``3`` -> ``"3"``);
  the ``top_k`` most frequent are kept and the rest summed under ``"__other__"`` (present only when
  something was folded in). A current value not among the keys belongs to ``"__other__"``.
* Low-cardinality numbers: a numeric feature with at most ``LOW_CARDINALITY`` (5) distinct non-null
  values (a 0/1 flag, a 1..5 rating) is profiled as <categorical>, since quantile bins would put it in one
  or two bins and hide a 50/50 -> 80/20 change from every binned metric. Its keys are ``str(value)`` as
  for any category (``"1"`` from an int column, ``"1.0"`` from a float one), its spec carries
  ``"numeric_categories": true``, and its mean and std are kept for the summary statistics. A window
  matches such a column's values to the keys through `category_index`: both sides go through
  `numeric_category_key`, so that an int, a float and the text of one number (``1``, ``1.0``, ``"1.0"``;
  training on ints and production on floats after a null, or CSV text) are the same category.
* ``null_rate`` is ``null_count / rows``. ``dtypes`` gives the type each column had at training time,
  for a type-error rate (values of a numeric column that do not parse as numbers).

Error bounds of what monitoring computes from this profile:

* PSI, Jensen-Shannon and chi-squared over these bins are exact for the binned distributions; the
  current window's counts are exact too, however it is chunked (counting is additive). Relative to the
  continuous distributions they are a coarsening, and by the data-processing inequality the binned
  Jensen-Shannon divergence (and KL, of which PSI is the symmetrised sum) never exceeds the true one:
  binned values are lower bounds, tight when the densities are close to flat inside each bin. Quantile
  bins make each reference bin hold ~1/k of the mass, which is where a fixed bin count loses least.
* A two-sample KS statistic evaluated from the two binned CDFs at the edges differs from the exact one
  by at most the largest single-bin mass of either distribution (the CDFs are exact at the edges and
  move by at most one bin's mass in between): ~1/k on the reference side.
* ``sample`` is a uniform sample without replacement of the finite values; by the
  Dvoretzky-Kiefer-Wolfowitz inequality its ECDF is within ``sqrt(ln(2/a) / (2 m))`` of the full
  reference ECDF with probability ``1 - a`` (m = 5000, a = 0.05: 0.019), which bounds the extra error
  of KS and (times the reference range) of the Wasserstein distance computed against it. Its size m is
  SAMPLE_VALUES // the number of numeric columns, between 2,000 and 5,000: every window of a model is
  tested against this one sample, so its own deviation from the reference weighs on all of them (at
  2,000 values, 1.6 % of unchanged 1,000-row windows of real tables raised drift, 0.75 % at 5,000),
  while a 1,000-column profile keeps to 2M values.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

try:                                        # imported as training.reference_profile (monitoring, tests)
    from .reference_files import read_reference  # noqa: F401  (its home before; importers keep working)
except ImportError:                         # run as a script from the code snapshot (Azure ML): no training package
    from reference_files import read_reference  # type: ignore[import-not-found, no-redef]  # noqa: F401

PROFILE_VERSION = 1
OTHER = "__other__"
MAX_RELATION_CLASSES = 50
MIN_SAMPLE, MAX_SAMPLE, SAMPLE_VALUES = 2_000, 5_000, 250_000     # the numeric samples' size (module docstring)
LOW_CARDINALITY = 5          # numeric features with at most this many distinct values are profiled as categories
PERCENTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95, "p99": 0.99}


def column_kind(series: pd.Series) -> str | None:
    """"numeric", "categorical", or None for columns a tabular model cannot use as they are
    (dates, durations, nested values). Booleans count as categorical. Shared by training and profiling
    so both see the same features."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_object_dtype(dtype):     # mixed Python scalars count by their str(); nested values don't
        head = series.dropna().iloc[:1000]
        return "categorical" if all(isinstance(v, (str, bytes, int, float, bool, np.generic)) for v in head) else None
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    return None


def build_profile(df: pd.DataFrame, target: str | None = None, *, bins: int = 20, sample_size: int | None = None,
                  top_k: int = 50, seed: int = 0, outputs: Mapping[str, pd.Series] | None = None,
                  task: str = "classification") -> dict:
    """Profile every column of df (see the module docstring for the layout and its guarantees).

    target, if given, is profiled as class frequencies (all classes kept up to top_k), or for
    task="regression" as a number with quantile bins; outputs (e.g. {"prediction": labels or numbers
    predicted on the holdout}) are profiled under "outputs" for prediction drift, floats as numbers.
    Columns of an unusable kind (dates, ...) are listed in dtypes but not profiled."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be classification or regression, not {task!r}")
    rng = np.random.default_rng(seed)
    rows = len(df)
    names = [name for name in df.columns if name != target]
    kinds = {name: column_kind(df[name]) for name in names}
    if sample_size is None:
        numeric = sum(kind == "numeric" for kind in kinds.values())
        sample_size = min(MAX_SAMPLE, max(MIN_SAMPLE, SAMPLE_VALUES // max(numeric, 1)))

    def column_profile(position: int, name) -> dict | None:
        kind = kinds[name]
        if kind == "numeric":        # a generator per column: the same sample however the threads run
            return numeric_profile(df[name], bins=bins, sample_size=sample_size,
                                   rng=np.random.default_rng([seed, position]), categories_up_to=LOW_CARDINALITY)
        return categorical_profile(df[name], top_k=top_k) if kind == "categorical" else None

    # numpy's sorts release the GIL: columns profiled on every core (a 1M-row column's sort is most of it)
    with ThreadPoolExecutor(max(1, min(len(names), os.cpu_count() or 1, 8))) as pool:
        profiled = list(pool.map(column_profile, range(len(names)), names))
    features: dict[str, dict] = {str(n): spec for n, spec in zip(names, profiled) if spec is not None}
    profile = {
        "profile_version": PROFILE_VERSION,
        "rows": rows,
        "target": target,
        "config": {"bins": bins, "sample_size": sample_size, "top_k": top_k, "seed": seed},
        "dtypes": {str(name): str(dtype) for name, dtype in df.dtypes.items()},
        "features": features,
        "target_profile": None,
        "task": task,
    }
    multivariate = _multivariate_profile(df[[c for c in df.columns if c != target and str(c) in features]],
                                         features, seed)
    if multivariate is not None:
        profile["multivariate"] = multivariate
    if target and task == "regression":
        target_spec = numeric_profile(df[target], bins=bins, sample_size=sample_size, rng=rng)
        profile["target_profile"] = target_spec
        binned = target_bins_by_feature(df[target], target_spec, df, features)
        if binned is not None:
            profile["target_bins_by_feature"] = binned
    elif target:
        profile["target_profile"] = categorical_profile(df[target], top_k=max(top_k, 1000))
        relation = target_by_feature(df[target], df, features)
        if relation is not None:
            profile["target_by_feature"] = relation
    if outputs:
        profile["outputs"] = {name: (numeric_profile(s, bins=bins, sample_size=sample_size, rng=rng)
                                     if pd.api.types.is_float_dtype(s.dtype) else categorical_profile(s, top_k=top_k))
                              for name, s in outputs.items()}
    return profile


def _multivariate_profile(df: pd.DataFrame, features: dict, seed: int) -> dict | None:
    """The multivariate drift checks' reference (training.multivariate_profile), on the feature columns."""
    try:                                     # imported as training.reference_profile
        from .multivariate_profile import multivariate_profile
    except ImportError:                      # run as a script from the code snapshot: no training package
        from multivariate_profile import multivariate_profile  # type: ignore[import-not-found, no-redef]
    return multivariate_profile(df.rename(columns=str), features, seed=seed)


def numeric_profile(series: pd.Series, *, bins: int = 20, sample_size: int = 2000,
                    rng: np.random.Generator | None = None, categories_up_to: int = 0) -> dict:
    """<numeric> profile of the series; with categories_up_to, a series of at most that many distinct
    non-null values gets the <categorical> one of `numeric_categories_profile` instead."""
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    rows = len(values)
    null_count = int(np.isnan(values).sum())
    finite = np.sort(values[np.isfinite(values)])
    infinite = rows - null_count - len(finite)
    # distinct values from the sorted array: one pass, no hashing (it matters on 1,000 columns)
    distinct = int(np.count_nonzero(np.diff(finite)) + 1) if len(finite) else 0
    if 0 < distinct + int(infinite > 0) <= categories_up_to:
        return numeric_categories_profile(series, finite)
    summary = {"type": "numeric", "count": rows - null_count, "null_count": null_count,
               "null_rate": _rate(null_count, rows), "infinite_count": int(infinite)}
    if len(finite) == 0:
        return {**summary, "min": None, "max": None, "mean": None, "std": None, "distinct": 0,
                "percentiles": {k: None for k in PERCENTILES}, "quantiles": [],
                "histogram": {"edges": [], "counts": []}, "sample": []}
    edges = np.unique(sorted_quantiles(finite, np.linspace(0.0, 1.0, bins + 1)))
    counts = histogram_counts(finite, edges, assume_sorted=True)
    percentiles = sorted_quantiles(finite, np.fromiter(PERCENTILES.values(), float))
    rng = rng if rng is not None else np.random.default_rng(0)
    sample = (finite if len(finite) <= sample_size
              else np.sort(finite[rng.choice(len(finite), sample_size, replace=False)]))
    return {**summary,
            "min": float(finite[0]), "max": float(finite[-1]),
            "mean": float(finite.mean()), "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
            "distinct": distinct,
            "percentiles": {k: float(v) for k, v in zip(PERCENTILES, percentiles)},
            "quantiles": edges.tolist(),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
            "sample": sample.tolist()}


def numeric_category_key(value) -> str:
    """A canonical key for a value of a low-cardinality numeric column (module docstring), so that ints,
    floats and text of one number meet: a whole number as an integer (1, 1.0, "1.0", "1" -> "1"), other
    numbers as the shortest repr of their float ("0.5"); text that is not a number keeps its str()."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and abs(number) < 2 ** 53:
        return str(int(number))
    return repr(number)


def category_index(spec: Mapping) -> tuple[dict[str, int], Callable[[object], str]]:
    """How to find a value's category in a <categorical> spec: {key: index in frequencies} and the function
    that keys a value. str() for categories; for a low-cardinality number (``numeric_categories``) both the
    profile's keys and the values go through `numeric_category_key`, whatever their type on either side."""
    keys = list(spec["frequencies"])
    if not spec.get("numeric_categories"):
        return {k: i for i, k in enumerate(keys)}, str
    return {(k if k == OTHER else numeric_category_key(k)): i for i, k in enumerate(keys)}, numeric_category_key


def numeric_categories_profile(series: pd.Series, finite_sorted: np.ndarray) -> dict:
    """<categorical> profile of a low-cardinality numeric column, keyed by str(value) as every categorical
    (``1`` for an int column, ``1.0`` for a float one: what a window of the same types counts), flagged
    ``numeric_categories`` for `category_index`, with the mean and std of its finite values."""
    spec = categorical_profile(series, top_k=LOW_CARDINALITY + 1)
    n = len(finite_sorted)
    return {**spec, "numeric_categories": True, "mean": float(finite_sorted.mean()) if n else None,
            "std": float(finite_sorted.std(ddof=1)) if n > 1 else (0.0 if n else None)}


def categorical_profile(series: pd.Series, *, top_k: int = 50) -> dict:
    rows = len(series)
    null_count = int(series.isna().sum())
    counts = series.value_counts(dropna=True, sort=False)
    if not counts.index.is_unique or pd.api.types.is_object_dtype(counts.index.dtype):
        counts = counts.groupby(counts.index.map(str), sort=False).sum()   # mixed values: 1 and "1" meet
    counts = counts.sort_values(ascending=False, kind="stable")
    frequencies = {str(k): int(v) for k, v in counts.iloc[:top_k].items()}
    rest = int(counts.iloc[top_k:].sum())
    if rest:
        frequencies[OTHER] = frequencies.get(OTHER, 0) + rest
    return {"type": "categorical", "count": rows - null_count, "null_count": null_count,
            "null_rate": _rate(null_count, rows), "cardinality": int(len(counts)), "frequencies": frequencies}


def target_by_feature(target: pd.Series, df: pd.DataFrame, features: Mapping[str, dict]) -> dict | None:
    """Rows of each target class per bin of each profiled feature (the module docstring's <relation>);
    None when the target has no value or more than MAX_RELATION_CLASSES classes. One factorize of the
    target and, per feature, one `feature_bins` and one bincount."""
    codes, classes = _class_codes(target)
    if not 0 < len(classes) <= MAX_RELATION_CLASSES:
        return None
    return {name: {"classes": classes, "counts": counts}
            for name, counts in _counts_by_feature(codes, len(classes), df, features).items()}


def target_bins_by_feature(target: pd.Series, target_spec: dict, df: pd.DataFrame,
                           features: Mapping[str, dict]) -> dict | None:
    """A continuous target's <binned relation> (the module docstring): rows of each bin of target_spec (the
    target's <numeric> profile) per bin of each profiled feature; None when the target has no finite value."""
    c = bin_count(target_spec)
    if c == 0:
        return None
    codes = feature_bins(target, target_spec)
    return {name: {"counts": counts} for name, counts in _counts_by_feature(codes, c, df, features).items()}


def _counts_by_feature(codes: np.ndarray, c: int, df: pd.DataFrame, features: Mapping[str, dict]) -> dict:
    """Per feature with bins: rows of each target code 0..c-1 (-1: not counted) in each of its bins."""
    labelled = codes >= 0
    relation = {}
    for name, spec in features.items():
        k = bin_count(spec)
        if k == 0:
            continue
        bins = feature_bins(df[name], spec)
        keep = labelled & (bins >= 0)
        relation[name] = np.bincount(bins[keep] * c + codes[keep], minlength=k * c).reshape(k, c).tolist()
    return relation


def _class_codes(target: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's class index (-1 for null) among the str() of the target's values, sorted: values with
    the same str() (1 and "1") are one class, as in categorical_profile."""
    codes, uniques = pd.factorize(target, use_na_sentinel=True)
    names = [str(u) for u in uniques]
    classes, remap = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(names) else codes, -1).astype(np.intp)
    return codes, [str(c) for c in classes]


def bin_count(spec: dict) -> int:
    """How many bins a feature's profile has: its histogram's, or its categorical keys."""
    if spec["type"] == "numeric":
        return len(spec["histogram"]["counts"])
    return len(spec["frequencies"])


def feature_bins(series: pd.Series, spec: dict) -> np.ndarray:
    """Each value's bin under the feature's profile, -1 where it has none. Numeric: `assign_bins` on the
    histogram edges, for finite values (text is parsed; null, unparseable and infinite values get -1).
    Categorical: the index of str(value) among the keys of ``frequencies``, values outside them going to
    ``__other__`` if the profile has one (else -1), nulls -1. Vectorised: one pass over the values, and
    str() only of the distinct ones."""
    if spec["type"] == "numeric":
        edges = spec["histogram"]["edges"]
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bins = np.full(len(values), -1, dtype=np.intp)
        if len(edges):
            finite = np.isfinite(values)
            bins[finite] = assign_bins(values[finite], edges)
        return bins
    keys, key = category_index(spec)
    other = keys.get(OTHER, -1)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    lookup = np.fromiter((keys.get(key(u), other) for u in uniques), dtype=np.intp, count=len(uniques))
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)] if len(uniques) else codes, -1).astype(np.intp)


def assign_bins(values: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """Bin index of each finite value under the profile's convention: bin i is
    [edges[i], edges[i+1]), the outer bins open-ended. One edge (a constant column) means one bin."""
    edges = np.asarray(edges, dtype="float64")
    if len(edges) <= 2:
        return np.zeros(len(values), dtype=np.intp)
    return np.searchsorted(edges[1:-1], values, side="right")


def histogram_counts(values: np.ndarray, edges: np.ndarray, *, assume_sorted: bool = False) -> np.ndarray:
    """Counts per bin of finite values (see assign_bins); O(k log n) when values are sorted."""
    k = max(len(edges) - 1, 1)
    if not assume_sorted:
        return np.bincount(assign_bins(values, edges), minlength=k)
    if len(edges) <= 2:
        return np.array([len(values)], dtype=np.int64)
    cuts = np.searchsorted(values, edges[1:-1], side="left")
    return np.diff(np.concatenate(([0], cuts, [len(values)]))).astype(np.int64)


def sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """numpy.quantile(method="linear") of an already sorted array, without numpy re-partitioning it."""
    position = np.asarray(q, dtype="float64") * (len(sorted_values) - 1)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    low, high = sorted_values[lower], sorted_values[upper]
    return low + (high - low) * fraction


def _rate(part: int, whole: int) -> float:
    return float(part / whole) if whole else 0.0
