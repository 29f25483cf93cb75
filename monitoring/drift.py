"""Data drift of a current window against a model's reference profile, with Azure ML's signals.

`compare(profile, window, thresholds) -> DriftReport`, per feature (and per model output: prediction drift):

numeric      PSI and Jensen-Shannon distance (base 2) on the reference quantile bins; normalized
             Wasserstein distance; two-sample KS statistic and p-value; a binned KS statistic.
categorical  Jensen-Shannon distance, Pearson's chi-squared (contingency form, as
             scipy.stats.chi2_contingency: Yates' correction when dof == 1), PSI, over the reference
             categories plus `__other__` (current values outside them land there). Numeric features with at
             most 5 distinct values in the reference (a 0/1 flag) are profiled, and so compared, as categories.
quality      null rate, type-error rate (numeric columns: non-null values that are not numbers; any value
             of a categorical column is a category, so 0 there), out-of-range rate (numeric: outside the
             reference [min, max], infinities included, compared with 2 / (n + 1), the chance that a value of
             the reference's own distribution falls outside the range of its n finite values: small for a
             feature, not for a regressor's outputs profiled on a holdout of a few hundred; categorical: values
             outside the profile's named categories, compared with the reference's own `__other__` share).
             Breached when a rate exceeds the reference's by more than its threshold.

The decision (what `DriftReport.decision` states in one sentence):

* A feature (or model output) drifts when BOTH
  - its test is significant after correcting for the number of tests: the p-values of every feature's and
    every output's test in the comparison (KS for numeric, chi-squared for categorical) are adjusted by
    Benjamini-Hochberg, and the feature's adjusted p must be below `Thresholds.fdr` (0.01), and
  - a decisive distance exceeds its threshold (`decisive_numeric`: normalized Wasserstein > 0.1 or
    PSI > 0.2; `decisive_categorical`: Jensen-Shannon > 0.1 or PSI > 0.2): an effect size, so that a huge
    window does not alarm on a shift of no practical size.
* The dataset drifts when more than `Thresholds.drift_share` of the tested features and outputs drift (0.0:
  any one, after the correction), or when the multivariate checks (`monitoring.multivariate`, when the
  profile has their reference) say so.

Why this has a known false-alarm rate: with no drift, every p-value is (at least) uniform, and BH at level
q rejects anything at all only when some p_(i) <= i q / m, which under the global null has probability at
most q (Simes' test; exactly q for independent tests, less for positively dependent ones such as
correlated features). So a stationary window raises drift with probability at most `fdr` = 1%, whatever the
number of features and the window's size, before the distance requirement lowers it further. Uncorrected,
30 features tested at 0.01 give up to 1 - 0.99^30 = 26% (measured on random halves of scikit-learn's breast
cancer table: 12 of 100 splits before this rule, none after). The distances alone would not do: they are
biased upward on small windows (PSI over k bins by about (k - 1)(1/n + 1/N) with no change at all: 0.1 for
200 current rows and 20 bins; normalized Wasserstein by about 0.8 sqrt(1/n + 1/m)), so they are never
decisive without the test unless `require_significance` is turned off.

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
  p-value is that of the test at the sample sizes, not at the window's: it is less powerful than a
  full-window test, which on millions of rows rejects for shifts of no practical size. It is the
  Kolmogorov distribution's limit, P(K > sqrt(en) D) with en = n m / (n + m) (`scipy.special.kolmogorov`),
  where scipy.stats.ks_2samp(method="asymp") uses the one-sample exact distribution at round(en)
  (scipy.stats.kstwo): the limit is conservative, its p-value larger, at p = 0.01, by 24% at en = 40, 10% at
  en = 182 (200 rows against the reference's 2,000 values) and 3% at en >= 1,000 (more in the far tail:
  x1.8 at p = 1e-5 and en = 40), so it costs a little power and no false alarms; it needs only
  scipy.special (scipy.stats takes 0.8 s to import). The chi-squared p-value is `scipy.special.chdtrc`,
  the function scipy.stats.chi2.sf calls.
* Normalized Wasserstein = W1 / std of the reference (the profile's std, ddof=1): a shift of one reference
  standard deviation scores 1.0, so Azure ML's default threshold 0.1 means a tenth of a std. A constant
  reference column falls back to its range, then to the raw distance.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import special

from monitoring.json_values import json_safe
from monitoring.window import CategoricalCounts, CurrentWindow, NumericCounts
from training.reference_profile import OTHER

PSI_EPSILON = 1e-4   # floor on bin proportions so that empty bins give a finite PSI


@dataclass(frozen=True)
class Thresholds:
    # effect sizes: a feature drifts only if one of its decisive distances is beyond its threshold ...
    normalized_wasserstein: float = 0.1     # W1 / reference std: a tenth of a std (Azure ML's default)
    jensen_shannon: float = 0.1
    psi: float = 0.2
    # ... and its test (KS / chi-squared) is significant once corrected for the number of features: the
    # Benjamini-Hochberg adjusted p-value, over every feature's and output's test of the comparison, is below
    # fdr. Under no drift at all this raises drift on at most this share of windows, whatever their size.
    fdr: float = 0.01
    # dataset level: drifted when more than this share of the tested features and outputs drifted (0.0: any
    # one, after the correction), or when the multivariate checks say so
    drift_share: float = 0.0
    null_rate_increase: float = 0.05
    type_error_rate_increase: float = 0.05
    out_of_range_rate_increase: float = 0.05
    decisive_numeric: tuple[str, ...] = ("normalized_wasserstein", "psi")
    decisive_categorical: tuple[str, ...] = ("jensen_shannon", "psi")
    require_significance: bool = True       # a decisive metric counts only with a significant (adjusted) test
    # multivariate checks (monitoring.multivariate): the PCA reconstruction error outside the reference band
    # of this many sigmas; a domain classifier's AUC above domain_auc with its p-value below domain_pvalue
    pca_error_sigmas: float = 3.0
    domain_auc: float = 0.55
    domain_pvalue: float = 0.01
    # label drift on the feedback (monitoring.label_drift) and feature attribution drift
    # (monitoring.attribution_drift: drift when the NDCG of the importance ranking falls below this)
    label_js: float = 0.1
    label_pvalue: float = 0.01
    attribution_ndcg: float = 0.9


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
    return statistic, float(special.chdtrc(dof, statistic)), dof


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic (exact) and two-sided p-value from the Kolmogorov limit distribution,
    P(K > sqrt(en) D), en = n m / (n + m): slightly conservative next to scipy's method="asymp" (the
    module docstring)."""
    a, b = np.sort(a), np.sort(b)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return float("nan"), float("nan")
    grid = np.concatenate((a, b))
    d = float(np.max(np.abs(np.searchsorted(a, grid, side="right") / n - np.searchsorted(b, grid, side="right") / m)))
    en = n * m / (n + m)
    return d, float(np.clip(special.kolmogorov(math.sqrt(en) * d), 0.0, 1.0))


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (as statsmodels' multipletests(method="fdr_bh")): the smallest
    false-discovery rate at which each test would be rejected, min over j >= i of p_(j) m / j, capped at 1.
    NaN p-values (no test) stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return adjusted
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return adjusted


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
    thresholds: dict[str, float]               # per metric; the test's ("ks_pvalue" | "chi2_pvalue") is fdr
    flags: dict[str, bool]                     # per metric beyond its threshold; the test's: adjusted p < fdr
    drifted: bool                              # significant after correction and a decisive distance beyond
    quality: dict[str, float] = field(default_factory=dict)
    quality_flags: dict[str, bool] = field(default_factory=dict)
    quality_breached: bool = False
    # for plots: the reference's and the window's counts on the same bins (numeric: the profile's
    # histogram bins, labelled by their lower edge; categorical: the profile's categories)
    bins: list[str] = field(default_factory=list)
    reference_counts: list[float] = field(default_factory=list)
    current_counts: list[float] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)   # numeric: the bins' edges (len(bins) + 1); categorical: []
    # {"reference": {"mean", "std", "missing", "distinct"}, "current": {...}}; missing is the null rate; None
    # where unknown (a category's mean; the window's distinct numbers, which it does not count)
    summary: dict = field(default_factory=dict)
    pvalue_adjusted: float = float("nan")      # the Benjamini-Hochberg adjusted p-value of its test


@dataclass
class DriftReport:
    rows: int
    features: dict[str, FeatureDrift]
    outputs: dict[str, FeatureDrift]
    thresholds: Thresholds
    multivariate: dict | None = None           # monitoring.multivariate's result, when the profile has its reference

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
    def decision(self) -> dict:
        """The dataset-level decision and the one sentence stating the rule that made it (module docstring)."""
        t = self.thresholds
        tested = len(self.features) + len(self.outputs)
        drifted = self.drifted_features + self.drifted_outputs
        share = len(drifted) / tested if tested else 0.0
        by_features = share > t.drift_share
        multivariate = bool((self.multivariate or {}).get("drifted"))
        what = "features and outputs" if self.outputs else "features"
        test = (f"BH-adjusted p < {t.fdr:g} and a distance over its threshold" if t.require_significance
                else "a distance over its threshold")
        allowed = "" if t.drift_share == 0 else f", {share:.0%} against more than {t.drift_share:.0%} allowed"
        rule = f"{len(drifted)} of {tested} {what} drifted ({test}{allowed})"
        if self.multivariate is not None:
            reason = self.multivariate.get("reason")
            rule += f"; multivariate: {'drift' if multivariate else 'no drift'}" + (f" ({reason})" if reason else "")
        return {"drifted": by_features or multivariate,
                "rule": f"{'drift' if by_features or multivariate else 'no drift'}: {rule}",
                "share_drifted": share, "features_tested": tested, "drifted_features": self.drifted_features,
                "drifted_outputs": self.drifted_outputs, "multivariate_drifted": multivariate}

    @property
    def drifted(self) -> bool:
        return bool(self.decision["drifted"])

    def to_dict(self) -> dict:
        return {"rows": self.rows, "drifted": self.drifted, "decision": self.decision,
                "drifted_features": self.drifted_features,
                "drifted_outputs": self.drifted_outputs, "quality_issues": self.quality_issues,
                "thresholds": asdict(self.thresholds), "multivariate": self.multivariate,
                "features": {n: asdict(f) for n, f in self.features.items()},
                "outputs": {n: asdict(f) for n, f in self.outputs.items()}}

    def to_json(self, **kwargs) -> str:
        return json.dumps(json_safe(self.to_dict()), **kwargs)


def compare(reference_profile: dict, current: CurrentWindow, thresholds: Thresholds = Thresholds()) -> DriftReport:
    """Every signal of every profiled feature (and model output) present in the window, and the decision."""
    def side(specs: dict, accs: dict) -> dict[str, FeatureDrift]:
        out = {}
        for name, spec in specs.items():
            acc = accs.get(name)
            if acc is None or acc.rows == 0:
                continue
            out[name] = (_numeric(name, spec, acc, thresholds) if isinstance(acc, NumericCounts)
                         else _categorical(name, spec, acc, thresholds))
        return out
    features = side(reference_profile["features"], current.features)
    outputs = side(reference_profile.get("outputs") or {}, current.outputs)
    _decide([*features.values(), *outputs.values()], thresholds)
    return DriftReport(current.rows, features, outputs, thresholds,
                       _multivariate(reference_profile, current, thresholds))


def _decide(tested: list[FeatureDrift], t: Thresholds) -> None:
    """Each feature's drifted flag: its test significant after Benjamini-Hochberg over all the tests of the
    comparison (features and outputs together), and a decisive distance beyond its threshold."""
    tests = [_test(f) for f in tested]
    adjusted = benjamini_hochberg([f.metrics[test] for f, test in zip(tested, tests)])
    for f, test, p in zip(tested, tests, adjusted):
        f.pvalue_adjusted = float(p)
        f.flags[test] = bool(p < t.fdr)
        decisive = t.decisive_numeric if f.kind == "numeric" else t.decisive_categorical
        f.drifted = any(f.flags.get(m, False) for m in decisive) and (not t.require_significance or f.flags[test])


def _test(f: FeatureDrift) -> str:
    return "ks_pvalue" if f.kind == "numeric" else "chi2_pvalue"


def _multivariate(profile: dict, current: CurrentWindow, t: Thresholds) -> dict | None:
    """monitoring.multivariate's checks on the window's row sample, when the profile has their reference."""
    spec = profile.get("multivariate")
    if not spec:
        return None
    rows = current.row_sample()
    if rows is None or len(rows) == 0:
        return None
    from monitoring.multivariate import multivariate_drift  # lazy: only profiles with its reference need it
    return multivariate_drift(spec, rows, t)


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
              "ks_pvalue": t.fdr}
    flags = {k: bool(metrics[k] > v) for k, v in limits.items() if not k.endswith("pvalue")}
    feature = _feature(name, "numeric", acc, metrics, limits, flags, spec, t)
    edges = spec["histogram"]["edges"]
    feature.bins = [_edge_label(e) for e in edges[:len(ref_counts)]]
    # a constant column has one edge and one bin: its edges are [v, v]
    feature.edges = [float(e) for e in edges] if len(edges) > 1 else [float(e) for e in edges * 2]
    feature.reference_counts, feature.current_counts = ref_counts.tolist(), acc.counts.astype(float).tolist()
    finite = acc.rows - acc.nulls - getattr(acc, "type_errors", 0) - getattr(acc, "infinite", 0)
    total, squares = getattr(acc, "total", None), getattr(acc, "total_squares", None)
    mean = total / finite if total is not None and finite > 0 else None
    std = (math.sqrt(max(squares - finite * mean * mean, 0.0) / (finite - 1))
           if mean is not None and squares is not None and finite > 1 else None)
    feature.summary = {"reference": _reference_summary(spec, spec.get("distinct")),
                       "current": {"mean": mean, "std": std, "missing": acc.nulls / acc.rows, "distinct": None}}
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
    limits = {"jensen_shannon": t.jensen_shannon, "psi": t.psi, "chi2_pvalue": t.fdr}
    flags = {k: bool(metrics[k] > v) for k, v in limits.items() if not k.endswith("pvalue")}
    feature = _feature(name, "categorical", acc, metrics, limits, flags, spec, t)
    feature.bins = keys if len(keys) == len(ref) else [*keys, OTHER]
    feature.reference_counts, feature.current_counts = ref.tolist(), cur.tolist()
    # the window counts the profile's categories only: those seen, __other__ (unseen values) as one
    seen = int(np.count_nonzero(cur))
    mean = std = None
    if spec.get("numeric_categories"):   # a low-cardinality number: its mean and std from the counts per value
        values = np.array([_number(k) for k in feature.bins])
        known = ~np.isnan(values) & (cur > 0)
        n = cur[known].sum()
        if n > 0:
            mean = float(np.dot(cur[known], values[known]) / n)
            std = float(math.sqrt(np.dot(cur[known], (values[known] - mean) ** 2) / (n - 1))) if n > 1 else 0.0
    feature.summary = {"reference": _reference_summary(spec, spec.get("cardinality")),
                       "current": {"mean": mean, "std": std, "missing": acc.nulls / acc.rows, "distinct": seen}}
    return feature


def _reference_summary(spec: dict, distinct) -> dict:
    return {"mean": spec.get("mean"), "std": spec.get("std"), "missing": spec.get("null_rate"), "distinct": distinct}


def _number(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return float("nan")


def _edge_label(edge: float) -> str:
    return f"{edge:,.0f}" if abs(edge) >= 1000 else f"{edge:.4g}"


def _feature(name, kind, acc, metrics, limits, flags, spec, t: Thresholds) -> FeatureDrift:
    """The feature's result with its data quality; `drifted` is decided over all features by `_decide`."""
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
    return FeatureDrift(name, kind, rows, metrics, limits, flags, False,
                        quality, quality_flags, any(quality_flags.values()))
