"""Label drift: the labels that arrived for the window's requests against the training labels' distribution
(the reference profile's "target_profile", training.reference_profile).

`label_drift(target_profile, labels, thresholds)`:

classification  the class frequencies: Jensen-Shannon distance (base 2) and Pearson's chi-squared test of
                the 2 x k table (reference, current) x class (scipy.stats.chi2_contingency; a class outside
                the profile's is a column of its own, with 0 reference rows).
regression      the values: Jensen-Shannon distance over the target's reference quantile bins, and the two-
                sample KS test against the profile's sample of target values (<= 2,000), plus the
                Wasserstein distance in reference standard deviations for the reader.

Drifted when the distance exceeds `label_js` AND the test's p-value is below `label_pvalue`
(monitoring.drift.Thresholds): the test keeps a few hundred labels from alarming on the distance's upward
bias on small samples, the distance keeps millions from alarming on a trivial shift. A label shift with
the model's accuracy intact is still worth knowing (priors moved: calibrated probabilities are now off).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from training.multivariate_profile import normal_key
from training.reference_profile import OTHER, assign_bins

DEFAULTS = {"label_js": 0.1, "label_pvalue": 0.01}


def label_drift(target_profile: dict | None, labels: Sequence | pd.Series | np.ndarray, thresholds=None) -> dict:
    """{"drifted", "kind", "rows", "jensen_shannon", "pvalue", "test", "thresholds", "reference",
    "current", "reason"} (reference/current: class frequencies, or for a numeric target mean and std)."""
    js_limit, p_limit = (float(getattr(thresholds, name, default)) for name, default in DEFAULTS.items())
    limits = {"label_js": js_limit, "label_pvalue": p_limit}
    values = pd.Series(np.asarray(labels, dtype=object)).dropna()
    if not target_profile or values.empty:
        return {"drifted": False, "rows": int(len(values)), "thresholds": limits,
                "reason": "no training label distribution in the profile" if not target_profile else "no labels"}
    if target_profile.get("type") == "numeric":
        found = _numeric(target_profile, values)
    else:
        found = _categorical(target_profile, values)
    drifted = bool(found["jensen_shannon"] > js_limit and found["pvalue"] < p_limit)
    verdict = "drifted" if drifted else "no label drift"
    reason = (f"{verdict}: labels' Jensen-Shannon distance {found['jensen_shannon']:.3f} "
              f"({'>' if found['jensen_shannon'] > js_limit else '<='} {js_limit:g}), {found['test']} "
              f"p = {found['pvalue']:.2g} ({'<' if found['pvalue'] < p_limit else '>='} {p_limit:g}) "
              f"over {len(values):,} labels")
    return {"drifted": drifted, "rows": int(len(values)), **found, "thresholds": limits, "reason": reason}


def _categorical(spec: dict, values: pd.Series) -> dict:
    reference = {normal_key(k): float(v) for k, v in spec["frequencies"].items() if k != OTHER}
    current = pd.Series([normal_key(str(v)) for v in values]).value_counts()
    keys = list(reference) + [k for k in current.index if k not in reference]
    ref = np.array([reference.get(k, 0.0) for k in keys])
    cur = np.array([float(current.get(k, 0)) for k in keys])
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    pvalue = float(stats.chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    return {"kind": "categorical", "jensen_shannon": float(jensenshannon(ref, cur, base=2)), "pvalue": pvalue,
            "test": "chi-squared", "reference": _shares(keys, ref), "current": _shares(keys, cur)}


def _numeric(spec: dict, values: pd.Series) -> dict:
    current = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    current = current[np.isfinite(current)]
    sample = np.asarray(spec.get("sample") or [], dtype=np.float64)
    edges, counts = spec["histogram"]["edges"], np.asarray(spec["histogram"]["counts"], dtype=np.float64)
    if not len(current) or not len(sample) or not len(edges):
        return {"kind": "numeric", "jensen_shannon": 0.0, "pvalue": 1.0, "test": "KS",
                "reference": {"mean": spec.get("mean"), "std": spec.get("std")}, "current": None}
    binned = np.bincount(assign_bins(current, edges), minlength=len(counts)).astype(np.float64)
    scale = spec.get("std") or 1.0
    return {"kind": "numeric", "jensen_shannon": float(jensenshannon(counts, binned, base=2)),
            "pvalue": float(stats.ks_2samp(sample, current).pvalue), "test": "KS",
            "normalized_wasserstein": float(stats.wasserstein_distance(sample, current) / scale),
            "reference": {"mean": spec.get("mean"), "std": spec.get("std")},
            "current": {"mean": float(current.mean()), "std": float(current.std(ddof=1)) if len(current) > 1 else 0.0}}


def _shares(keys: list[str], counts: np.ndarray) -> dict[str, float]:
    total = counts.sum()
    return {k: float(c / total) if total else 0.0 for k, c in zip(keys, counts)}
