"""Data drift of a current window against a model's reference profile, with Azure ML's signals.

`compare(profile, window, thresholds) -> DriftReport`, per feature (and per model output: prediction drift):

numeric      PSI and Jensen-Shannon distance (base 2) on the reference quantile bins; normalized
             Wasserstein distance; two-sample KS statistic and p-value; a binned KS statistic.
categorical  Jensen-Shannon distance, Pearson's chi-squared (contingency form, as
             scipy.stats.chi2_contingency: Yates' correction when dof == 1), PSI, over the reference
             categories plus `__other__` (current values outside them land there).
quality      null rate, type-error rate (numeric columns: non-null values that are not numbers; any value
             of a categorical column is a category, so 0 there), out-of-range rate (numeric: outside the
             reference [min, max], infinities included, compared with 2 / (n + 1), the chance that a value of
             the reference's own distribution falls outside the range of its n finite values: small for a
             feature, not for a regressor's outputs profiled on a holdout of a few hundred; categorical: values
             outside the profile's named categories, compared with the reference's own `__other__` share).
             Breached when a rate exceeds the reference's by more than its threshold.

What is exact and what is approximated:

* Every count is exact over the whole window (chunking is additive), so PSI, JS, chi-squared and the
  binned KS are exactly those of the binned distributions. Relative to the continuous distributions the
  binning only loses information: binned JS and PSI never exceed the values on any finer binning (data-
  processing inequality), and the binned KS is below the full-data KS by at most the largest bin mass of
  either side (~1/k = 0.05 with the default 20 reference bins).
* KS and Wasserstein need the raw values: they are computed exactly (as scipy.stats.ks_2samp and
  wasserstein_distance) between the reference profile's sample (<= 2,000 values) and a uniform sample of
  the window (<= 10,000). By the DKW inequality each sample's ECDF is within sqrt(ln(2/a)/(2m)) of its
  population's with probability 1-a (a = 0.05: 0.030 for m = 2,000, 0.014 for 10,000), which bounds the KS
  statistic's error by their sum and the Wasserstein distance's by that sum times the value range. The KS
  p-value is the asymptotic two-sided one (Kolmogorov distribution at n*m/(n+m), as ks_2samp's "asymp")
  of the test at the sample sizes, not at the window's: it is less powerful than a full-window test, which
  on millions of rows rejects for shifts of no practical size.
* Normalized Wasserstein = W1 / std of the reference (the profile's std, ddof=1): a shift of one reference
  standard deviation scores 1.0, so Azure ML's default threshold 0.1 means a tenth of a std. A constant
  reference column falls back to its range, then to the raw distance.

A feature's `drifted` is decided by the metrics in `Thresholds.decisive_*` (default: normalized
Wasserstein and PSI for numeric, Jensen-Shannon and PSI for categorical); every metric still carries its
own flag. The hypothesis tests (KS, chi-squared) flag negligible shifts on large windows, so they are
not decisive on their own; with `require_significance` (the default) a decisive metric beyond its
threshold counts only if the feature's test (KS for numeric, chi-squared for categorical) is significant
too. The distances are biased upward on small windows (PSI over k bins by about (k - 1)(1/n + 1/N) with
no change at all: 0.1 for 200 current rows and 20 bins), so without the test a window of a few hundred
rows raises drift by chance. Data quality is a separate `quality_breached` flag.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import special, stats

from monitoring.json_values import json_safe
from monitoring.window import CategoricalCounts, CurrentWindow, NumericCounts
from training.reference_profile import OTHER

PSI_EPSILON = 1e-4   # floor on bin proportions so that empty bins give a finite PSI


@dataclass(frozen=True)
class Thresholds:
    normalized_wasserstein: float = 0.1
    jensen_shannon: float = 0.1
    psi: float = 0.2
    ks_pvalue: float = 0.01          # drifted when p < this
    chi2_pvalue: float = 0.01
    null_rate_increase: float = 0.05
    type_error_rate_increase: float = 0.05
    out_of_range_rate_increase: float = 0.05
    decisive_numeric: tuple[str, ...] = ("normalized_wasserstein", "psi")
    decisive_categorical: tuple[str, ...] = ("jensen_shannon", "psi")
    require_significance: bool = True       # a decisive metric counts only with a significant KS / chi-squared


# ---- metrics on counts and samples ------------------------------------------------------------------------

def proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def psi(reference_counts, current_counts, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index, sum (q - p) ln(q / p), proportions floored at epsilon."""
    p = np.maximum(proportions(reference_counts), epsilon)
    q = np.maximum(proportions(current_counts), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference_counts, current_counts) -> float:
    """Jensen-Shannon distance in base 2 (in [0, 1]), as scipy.spatial.distance.jensenshannon(p, q, base=2)."""
    p, q = proportions(reference_counts), proportions(current_counts)
    m = (p + q) / 2
    divergence = (special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum()) / 2 / np.log(2)
    return float(np.sqrt(max(divergence, 0.0)))


def chi2_contingency(reference_counts, current_counts) -> tuple[float, float, int]:
    """Pearson's chi-squared of the 2 x k table (categories empty on both sides dropped), with
    scipy.stats.chi2_contingency's semantics: Yates' continuity correction when dof == 1."""
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    dof = table.shape[1] - 1
    if dof == 1:
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.sf(statistic, dof)), dof


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic (exact) and asymptotic two-sided p-value (scipy's method="asymp")."""
    a, b = np.sort(a), np.sort(b)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return float("nan"), float("nan")
    grid = np.concatenate((a, b))
    d = float(np.max(np.abs(np.searchsorted(a, grid, side="right") / n - np.searchsorted(b, grid, side="right") / m)))
    en = n * m / (n + m)
    return d, float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """First Wasserstein distance between two samples, as scipy.stats.wasserstein_distance."""
    a, b = np.sort(a), np.sort(b)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    grid = np.sort(np.concatenate((a, b)))
    deltas = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))


def binned_ks(reference_counts, current_counts) -> float:
    """KS statistic from the two binned CDFs at the bin edges: a lower bound of the full-data KS, within
    the largest bin mass of either side."""
    p, q = proportions(reference_counts), proportions(current_counts)
    return float(np.max(np.abs(np.cumsum(p) - np.cumsum(q)))) if len(p) else 0.0


# ---- the report ------------------------------------------------------------------------------------------

@dataclass
class FeatureDrift:
    name: str
    kind: str                                  # "numeric" | "categorical"
    rows: int
    metrics: dict[str, float]
    thresholds: dict[str, float]
    flags: dict[str, bool]                     # per metric: beyond its threshold
    drifted: bool                              # by the decisive metrics
    quality: dict[str, float] = field(default_factory=dict)
    quality_flags: dict[str, bool] = field(default_factory=dict)
    quality_breached: bool = False
    # for plots: the reference's and the window's counts on the same bins (numeric: the profile's
    # histogram bins, labelled by their lower edge; categorical: the profile's categories)
    bins: list[str] = field(default_factory=list)
    reference_counts: list[float] = field(default_factory=list)
    current_counts: list[float] = field(default_factory=list)


@dataclass
class DriftReport:
    rows: int
    features: dict[str, FeatureDrift]
    outputs: dict[str, FeatureDrift]
    thresholds: Thresholds

    @property
    def drifted_features(self) -> list[str]:
        return [n for n, f in self.features.items() if f.drifted]

    @property
    def drifted_outputs(self) -> list[str]:
        return [n for n, f in self.outputs.items() if f.drifted]

    @property
    def quality_issues(self) -> list[str]:
        return [n for n, f in {**self.features, **self.outputs}.items() if f.quality_breached]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features or self.drifted_outputs)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "drifted": self.drifted, "drifted_features": self.drifted_features,
                "drifted_outputs": self.drifted_outputs, "quality_issues": self.quality_issues,
                "thresholds": asdict(self.thresholds),
                "features": {n: asdict(f) for n, f in self.features.items()},
                "outputs": {n: asdict(f) for n, f in self.outputs.items()}}

    def to_json(self, **kwargs) -> str:
        return json.dumps(json_safe(self.to_dict()), **kwargs)


def compare(reference_profile: dict, current: CurrentWindow, thresholds: Thresholds = Thresholds()) -> DriftReport:
    """Every signal of every profiled feature (and model output) present in the window."""
    def side(specs: dict, accs: dict) -> dict[str, FeatureDrift]:
        out = {}
        for name, spec in specs.items():
            acc = accs.get(name)
            if acc is None or acc.rows == 0:
                continue
            out[name] = (_numeric(name, spec, acc, thresholds) if isinstance(acc, NumericCounts)
                         else _categorical(name, spec, acc, thresholds))
        return out
    return DriftReport(current.rows, side(reference_profile["features"], current.features),
                       side(reference_profile.get("outputs") or {}, current.outputs), thresholds)


def _numeric(name: str, spec: dict, acc: NumericCounts, t: Thresholds) -> FeatureDrift:
    ref_counts = np.asarray(spec["histogram"]["counts"], dtype=np.float64)
    ref_sample = np.asarray(spec["sample"], dtype=np.float64)
    cur_sample = acc.sample
    has_data = len(ref_counts) > 0 and acc.counts.sum() > 0
    w = wasserstein(ref_sample, cur_sample)
    scale = spec.get("std") or ((spec["max"] - spec["min"]) if spec.get("min") is not None else 0.0) or 1.0
    ks, p = ks_2samp(ref_sample, cur_sample)
    metrics = {"normalized_wasserstein": w / scale, "wasserstein": w,
               "psi": psi(ref_counts, acc.counts) if has_data else float("nan"),
               "jensen_shannon": jensen_shannon(ref_counts, acc.counts) if has_data else float("nan"),
               "ks_statistic": ks, "ks_pvalue": p,
               "ks_binned": binned_ks(ref_counts, acc.counts) if has_data else float("nan")}
    limits = {"normalized_wasserstein": t.normalized_wasserstein, "psi": t.psi, "jensen_shannon": t.jensen_shannon,
              "ks_pvalue": t.ks_pvalue}
    flags = {k: bool(metrics[k] < v) if k.endswith("pvalue") else bool(metrics[k] > v) for k, v in limits.items()}
    feature = _feature(name, "numeric", acc, metrics, limits, flags, t.decisive_numeric, spec, t)
    edges = spec["histogram"]["edges"]
    feature.bins = [_edge_label(e) for e in edges[:len(ref_counts)]]
    feature.reference_counts, feature.current_counts = ref_counts.tolist(), acc.counts.astype(float).tolist()
    return feature


def _categorical(name: str, spec: dict, acc: CategoricalCounts, t: Thresholds) -> FeatureDrift:
    keys = list(spec["frequencies"])
    ref = np.array([spec["frequencies"][k] for k in keys], dtype=np.float64)
    cur = acc.counts.astype(np.float64)
    if OTHER in keys:
        cur[keys.index(OTHER)] += acc.unseen
    elif acc.unseen:
        ref, cur = np.append(ref, 0.0), np.append(cur, acc.unseen)
    has_data = ref.sum() > 0 and cur.sum() > 0
    chi2, p, dof = chi2_contingency(ref, cur) if has_data else (float("nan"), float("nan"), 0)
    metrics = {"jensen_shannon": jensen_shannon(ref, cur) if has_data else float("nan"),
               "psi": psi(ref, cur) if has_data else float("nan"),
               "chi2_statistic": chi2, "chi2_pvalue": p, "chi2_dof": float(dof)}
    limits = {"jensen_shannon": t.jensen_shannon, "psi": t.psi, "chi2_pvalue": t.chi2_pvalue}
    flags = {k: bool(metrics[k] < v) if k.endswith("pvalue") else bool(metrics[k] > v) for k, v in limits.items()}
    feature = _feature(name, "categorical", acc, metrics, limits, flags, t.decisive_categorical, spec, t)
    feature.bins = keys if len(keys) == len(ref) else [*keys, OTHER]
    feature.reference_counts, feature.current_counts = ref.tolist(), cur.tolist()
    return feature


def _edge_label(edge: float) -> str:
    return f"{edge:,.0f}" if abs(edge) >= 1000 else f"{edge:.4g}"


def _feature(name, kind, acc, metrics, limits, flags, decisive, spec, t: Thresholds) -> FeatureDrift:
    rows = acc.rows
    out_of_range = acc.out_of_range if isinstance(acc, NumericCounts) else acc.unseen
    ref_rows = (spec.get("count") or 0) + (spec.get("null_count") or 0)
    ref_other = (spec.get("frequencies") or {}).get(OTHER, 0)       # folded-in categories also count as unseen
    finite = (spec.get("count") or 0) - (spec.get("infinite_count") or 0)
    expected = (2 / (finite + 1) if isinstance(acc, NumericCounts) and finite > 0
                else ref_other / ref_rows if ref_rows else 0.0)
    quality = {"null_rate": acc.nulls / rows, "reference_null_rate": float(spec.get("null_rate") or 0.0),
               "type_error_rate": getattr(acc, "type_errors", 0) / rows, "out_of_range_rate": out_of_range / rows,
               "reference_out_of_range_rate": expected}
    quality_flags = {
        "null_rate": quality["null_rate"] - quality["reference_null_rate"] > t.null_rate_increase,
        "type_error_rate": quality["type_error_rate"] > t.type_error_rate_increase,
        "out_of_range_rate": (quality["out_of_range_rate"] - quality["reference_out_of_range_rate"]
                              > t.out_of_range_rate_increase)}
    drifted = any(flags.get(m, False) for m in decisive)
    if t.require_significance:
        drifted = drifted and flags.get("ks_pvalue" if kind == "numeric" else "chi2_pvalue", False)
    return FeatureDrift(name, kind, rows, metrics, limits, flags, drifted,
                        quality, quality_flags, any(quality_flags.values()))
