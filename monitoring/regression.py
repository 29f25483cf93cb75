"""Performance and concept drift of a regression model on labelled production rows.

`regression_performance(y_true, y_pred, baseline_metrics, reference_residuals)` is MAE, RMSE, R² and MAPE
(as the training holdout's: MAPE a fraction, None where a true value is 0; R² None for a window of one
value) next to the holdout's, with what the report plots: the residuals' histogram (beside the holdout's
where its rows were saved) and the mean true value per decile of the predictions (predicted against actual).
A residual is the true value minus the prediction: negative where the model predicts too high.

`regression_concept_drift(...)` says whether the relation between inputs and target changed, three ways
(its result is the classifier's `ConceptDrift`, with a `residuals` part):

* errors above the holdout's. Each metric's `drop` is how much worse it is (current - holdout for MAE,
  RMSE and MAPE; holdout - current for R²). It is `significant` when the rise exceeds `error_tolerance` of
  the holdout's value (relative, default 10%: errors are in the target's units; R²: `tolerance`, absolute)
  AND a one-sided z-test of "no rise" gives p < `alpha`. Standard errors: of a mean for MAE and MAPE, the
  delta method for RMSE (the mean squared error's, over 2 RMSE) and for R² (1 - MSE / Var(y), a function of
  two means), each inflated by sqrt(1 + n / n_holdout) for the holdout's own sampling error, as for a
  classifier. Only MAE and RMSE decide by default: R² also falls when the window's true values spread less
  (input drift under an unchanged model), which is no changed concept.
* the residuals moved. Against the holdout's residuals where the model's holdout rows were saved
  (monitoring.holdout): two-sample KS and the normalized Wasserstein distance (in holdout residual standard
  deviations); moved when p < `alpha` and the distance > `residual_shift` (0.2). Without them, the mean
  residual against 0 (a z-test), moved when p < `alpha` and |mean| > `residual_shift` x the holdout's
  RMSE: a model is fitted to be unbiased on its data, and a target that moved away from it shows as a bias.
* the relation between a feature and the target changed, one feature at a time. With the holdout's rows:
  the error by segment. Each feature's profile bins are merged into `segments` (5) runs of adjacent bins
  (a categorical feature: one segment per profiled category); in every segment with `min_bin_rows` rows on
  both sides, the current mean residual is compared with the holdout's (Welch's z), the squares summed into
  one chi-squared over the segments. The shift is the current-rows-weighted mean of |change of the mean
  residual| in holdout residual standard deviations; a feature's relation `drifted` when p < `alpha` / the
  number of features tested (Bonferroni, here and below: the features are tested one by one, and at
  `alpha` each a stable window of ten features would raise an alert one time in ten) and shift >
  `residual_shift`. A relation that flips in some segments and not in others moves the residuals there
  even when their overall distribution barely moves; and where only the inputs moved, a model that fits
  its data keeps its errors in each segment, so input drift does not raise it.
  Without holdout rows: the profile's `target_bins_by_feature` (rows of each quantile bin of the target
  per bin of each feature, training.reference_profile) against the current rows binned the same way, with
  the classifier's stratified chi-squared and total-variation shift (performance.relation_shift), the
  target's bins merged into `target_bins` (5) runs first, so that a feature bin of a few dozen rows is not
  spread over twenty cells. It needs no model, but P(target | one feature) also moves when other inputs
  correlated with that feature drift (a window of heavier patients has higher values in every sex): read
  it beside the data drift. Profiles without it and no holdout rows: no relation check.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from monitoring.drift import ks_2samp, wasserstein
from monitoring.holdout import RESIDUAL
from monitoring.json_values import finite_number, json_safe
from monitoring.performance import (
    ConceptDrift,
    ConceptThresholds,
    MetricDrop,
    RelationShift,
    _z_pvalue,
    relation_shift,
)
from training.reference_profile import assign_bins, bin_count, feature_bins

REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
LOWER_IS_BETTER = ("mae", "rmse", "mape")
RESIDUAL_BINS = 24            # the histogram spans ±3 standard deviations, its outer bins open-ended
PREDICTION_BINS = 10          # predicted against actual: deciles of the predictions


@dataclass(frozen=True)
class RegressionThresholds:
    error_tolerance: float = 0.1             # MAE, RMSE, MAPE: a rise above this share of the holdout's value
    metrics: tuple[str, ...] = ("mae", "rmse")   # the metrics whose significant rise is concept drift
    residual_shift: float = 0.2              # in holdout residual std: distribution, bias, error by segment
    segments: int = 5                        # error by segment: runs of a numeric feature's profile bins
    target_bins: int = 5                     # without holdout rows: groups of the target's quantile bins


# ---- metrics ---------------------------------------------------------------------------------------------

def regression_metrics(y_true, y_pred) -> dict[str, float | None]:
    """MAE, RMSE, R² (1 - SSE / the rows' variance about their mean; None when that is 0) and MAPE as a
    fraction (None where a true value is 0)."""
    truth, predicted = _floats(y_true), _floats(y_pred)
    if len(truth) == 0:
        return {m: None for m in REGRESSION_METRICS}
    error = predicted - truth
    spread = float(np.sum((truth - truth.mean()) ** 2))
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2))),
            "r2": float(1 - np.sum(error ** 2) / spread) if spread > 0 else None,
            "mape": float(np.mean(np.abs(error) / np.abs(truth))) if (truth != 0).all() else None}


@dataclass
class RegressionPerformance:
    rows: int
    metrics: dict[str, float | None]
    baseline: dict[str, float | None]
    residuals: dict = field(default_factory=dict)
    predicted_vs_actual: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        # the classifier's keys (classes empty), so that readers of "metrics" and "baseline" need no change
        return json_safe({"task": "regression", "rows": self.rows, "metrics": dict(self.metrics),
                          "baseline": dict(self.baseline), "classes": [], "residuals": self.residuals,
                          "predicted_vs_actual": self.predicted_vs_actual})


def regression_performance(y_true, y_pred, baseline_metrics: Mapping | None = None,
                           reference_residuals: np.ndarray | None = None) -> RegressionPerformance:
    """The holdout's metrics on labelled production rows, and the report's plots' numbers. baseline_metrics:
    metrics.json "metrics" (the whole metrics.json is accepted too); reference_residuals: the holdout's
    (true - predicted), for the residual histogram."""
    truth, predicted = _aligned(y_true, y_pred)
    baseline = _baseline(baseline_metrics)
    reference = _floats(reference_residuals) if reference_residuals is not None else None
    return RegressionPerformance(len(truth), regression_metrics(truth, predicted), baseline,
                                 _residual_histogram(truth - predicted, reference, baseline.get("rmse")),
                                 _predicted_vs_actual(truth, predicted))


def _baseline(metrics: Mapping | None) -> dict[str, float | None]:
    if not metrics:
        return {}
    if isinstance(metrics.get("metrics"), Mapping):
        metrics = metrics["metrics"]
    return {m: finite_number(metrics.get(m)) for m in REGRESSION_METRICS}


def _residual_histogram(residuals: np.ndarray, reference: np.ndarray | None, rmse: float | None) -> dict:
    if len(residuals) == 0:
        return {}
    scale = next((s for s in (_std(reference), rmse, _std(residuals)) if s), 1.0)
    edges = np.linspace(-3 * scale, 3 * scale, RESIDUAL_BINS + 1)

    def counts(values: np.ndarray) -> list[int]:
        return np.bincount(assign_bins(values, edges), minlength=RESIDUAL_BINS).tolist()
    return {"edges": edges.tolist(), "counts": counts(residuals),
            "reference_counts": counts(reference) if reference is not None and len(reference) else None,
            "mean": float(residuals.mean()), "std": _std(residuals),
            "reference_mean": float(reference.mean()) if reference is not None and len(reference) else None}


def _predicted_vs_actual(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Per decile of the predictions: their mean, and the mean, 10th and 90th percentile of the true values."""
    if len(truth) == 0:
        return {}
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, PREDICTION_BINS + 1)))
    bins = assign_bins(predicted, edges)
    out: dict[str, list] = {"predicted": [], "actual": [], "actual_p10": [], "actual_p90": [], "rows": []}
    for b in range(max(len(edges) - 1, 1)):
        chosen = bins == b
        if not chosen.any():
            continue
        actual = truth[chosen]
        out["predicted"].append(float(predicted[chosen].mean()))
        out["actual"].append(float(actual.mean()))
        out["actual_p10"].append(float(np.quantile(actual, 0.1)))
        out["actual_p90"].append(float(np.quantile(actual, 0.9)))
        out["rows"].append(int(chosen.sum()))
    return out


# ---- concept drift ---------------------------------------------------------------------------------------

def regression_concept_drift(y_true, y_pred, *, training_metrics: Mapping | None = None,
                             features: pd.DataFrame | None = None, profile: Mapping | None = None,
                             holdout: pd.DataFrame | None = None, thresholds: ConceptThresholds | None = None,
                             regression: RegressionThresholds = RegressionThresholds()) -> ConceptDrift:
    """Concept drift of a regression model on labelled rows (see the module docstring). training_metrics:
    the model's metrics.json (its "metrics" and "rows"."holdout"), None skips the error check; features:
    the rows' inputs, row for row; profile: the reference profile; holdout: the model's holdout rows with
    their `residual` (monitoring.holdout.holdout_errors), None falls back to the bias test and the profile's
    target bins; thresholds: the classifier's (alpha, R²'s tolerance, relation_shift, min_rows, min_bin_rows)."""
    thresholds = thresholds or ConceptThresholds()
    truth, predicted = _aligned(y_true, y_pred)
    residuals = truth - predicted
    reference = holdout[RESIDUAL].to_numpy(dtype=np.float64) if holdout is not None and len(holdout) else None
    drops = _error_rise(truth, predicted, training_metrics, thresholds, regression)
    moved = _residual_shift(residuals, reference, _baseline(training_metrics).get("rmse"), thresholds, regression)
    relation: dict[str, RelationShift] = {}
    method = ""
    if features is not None and profile is not None:
        if len(features) != len(truth):
            raise ValueError(f"features has {len(features)} rows but there are {len(truth)} labels: pass the "
                             f"labelled rows' inputs, row for row")
        if holdout is not None and len(holdout):
            method = "error by segment"
            relation = _error_by_segment(residuals, features, holdout, profile, thresholds, regression)
        else:
            method = "target by feature bin"
            relation = _relation(truth, features, profile, thresholds, regression)
    n = len(truth)
    reasons = [_rise_reason(m, d, n) for m, d in drops.items() if d.significant and m in regression.metrics]
    if moved.get("drifted"):
        reasons.append(moved["reason"])
    target = (profile or {}).get("target") or "the target"
    for f, r in relation.items():
        if not r.drifted:
            continue
        reasons.append(f"the model's errors moved along {f}: its mean residual per segment changed by {r.shift:.2f} "
                       f"of the holdout's residual standard deviation on average (p = {r.pvalue:.2g})"
                       if method == "error by segment" else
                       f"P({target} | {f}) changed: mean total-variation shift {r.shift:.2f} over the reference bins "
                       f"(p = {r.pvalue:.2g})")
    return ConceptDrift(bool(reasons), reasons, drops, relation, moved, method if relation else "")


def _rise_reason(metric: str, d: MetricDrop, n: int) -> str:
    if metric in LOWER_IS_BETTER:
        return (f"{metric} {d.current:.4g} is {d.drop / d.baseline:.0%} above the training holdout's {d.baseline:.4g} "
                f"(p = {d.pvalue:.2g}, n = {n})" if d.baseline else
                f"{metric} {d.current:.4g} is above the training holdout's {d.baseline:.4g} (p = {d.pvalue:.2g})")
    return (f"{metric} {d.current:.3f} is {d.drop:.3f} below the training holdout's {d.baseline:.3f} "
            f"(p = {d.pvalue:.2g}, n = {n})")


def _error_rise(truth: np.ndarray, predicted: np.ndarray, training: Mapping | None, t: ConceptThresholds,
                r: RegressionThresholds) -> dict[str, MetricDrop]:
    baseline = _baseline(training)
    n = len(truth)
    if n == 0 or not baseline:
        return {}
    current = regression_metrics(truth, predicted)
    n_ref = finite_number(((training or {}).get("rows") or {}).get("holdout")) or None
    inflate = math.sqrt(1 + n / n_ref) if n_ref else 1.0
    tested = n >= t.min_rows
    se = _standard_errors(truth, predicted) if tested else {}
    drops = {}
    for m in REGRESSION_METRICS:
        b, c = baseline.get(m), current.get(m)
        if b is None or c is None:
            continue
        worse = c - b if m in LOWER_IS_BETTER else b - c
        error = se.get(m)
        p = _z_pvalue(worse, error * inflate) if error is not None else None
        limit = r.error_tolerance * abs(b) if m in LOWER_IS_BETTER else t.tolerance
        drops[m] = MetricDrop(c, b, worse, p, p is not None and p < t.alpha and worse > limit)
    return drops


def _standard_errors(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    n = len(truth)
    error = predicted - truth
    absolute, squared = np.abs(error), error ** 2
    mse = float(squared.mean())
    out: dict[str, float | None] = {"mae": float(absolute.std(ddof=1)) / math.sqrt(n)}
    se_mse = float(squared.std(ddof=1)) / math.sqrt(n)
    out["rmse"] = se_mse / (2 * math.sqrt(mse)) if mse > 0 else 0.0
    spread = (truth - truth.mean()) ** 2
    variance = float(spread.mean())
    if variance > 0:          # R² = 1 - A/B with A, B the means of squared errors and squared spreads
        gradient = np.array([-1 / variance, mse / variance ** 2])
        covariance = np.cov(np.vstack([squared, spread]))
        out["r2"] = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0) / n)
    out["mape"] = float((absolute / np.abs(truth)).std(ddof=1)) / math.sqrt(n) if (truth != 0).all() else None
    return out


def _residual_shift(residuals: np.ndarray, reference_residuals: np.ndarray | None, rmse: float | None,
                    t: ConceptThresholds, r: RegressionThresholds) -> dict:
    n = len(residuals)
    if n < t.min_rows:
        return {}
    reference = reference_residuals if reference_residuals is not None else np.array([])
    mean = float(residuals.mean())
    if len(reference) >= t.min_rows:
        ks, p = ks_2samp(reference, residuals)
        scale = _std(reference) or 1.0
        shift = wasserstein(reference, residuals) / scale
        drifted = bool(p < t.alpha and shift > r.residual_shift)
        return {"method": "holdout residuals", "rows": n, "reference_rows": len(reference), "mean": mean,
                "reference_mean": float(reference.mean()), "normalized_wasserstein": shift, "ks_statistic": ks,
                "pvalue": p, "threshold": r.residual_shift, "drifted": drifted,
                "reason": (f"the residuals (true - predicted) moved by {shift:.2f} of the holdout's residual "
                           f"standard deviation (normalized Wasserstein; KS p = {p:.2g}): mean {mean:.4g} against "
                           f"the holdout's {float(reference.mean()):.4g}")}
    if not rmse:
        return {}
    se = _std(residuals) / math.sqrt(n)
    p = 2 * _z_pvalue(abs(mean), se)                 # two-sided: too high or too low
    drifted = bool(p < t.alpha and abs(mean) > r.residual_shift * rmse)
    side = "high" if mean < 0 else "low"
    return {"method": "bias", "rows": n, "mean": mean, "holdout_rmse": rmse, "pvalue": min(p, 1.0),
            "threshold": r.residual_shift, "drifted": drifted,
            "reason": (f"the model predicts too {side} by {abs(mean):.4g} on average, {abs(mean) / rmse:.2f} of "
                       f"the holdout's RMSE (p = {min(p, 1.0):.2g})")}


def _error_by_segment(residuals: np.ndarray, features: pd.DataFrame, holdout: pd.DataFrame, profile: Mapping,
                      t: ConceptThresholds, r: RegressionThresholds) -> dict[str, RelationShift]:
    reference = holdout[RESIDUAL].to_numpy(dtype=np.float64)
    scale = _std(reference) or 1.0
    out: dict[str, tuple[float, float]] = {}
    for name, spec in (profile.get("features") or {}).items():
        k = bin_count(spec)
        if k == 0 or name not in features.columns or name not in holdout.columns:
            continue
        groups = min(r.segments, k) if spec["type"] == "numeric" else k
        segment = np.append(np.arange(k) * groups // k, -1)          # a bin's segment; -1 (no bin) stays -1
        current = _segment_moments(residuals, segment[feature_bins(features[name].reset_index(drop=True), spec)],
                                   groups)
        before = _segment_moments(reference, segment[feature_bins(holdout[name].reset_index(drop=True), spec)],
                                  groups)
        usable = (current[0] >= t.min_bin_rows) & (before[0] >= t.min_bin_rows)
        if not usable.any():
            continue
        (n, mean, var), (n_ref, mean_ref, var_ref) = ((m[usable] for m in side) for side in (current, before))
        change = mean - mean_ref
        se = np.sqrt(var / n + var_ref / n_ref)
        z = np.divide(change, se, out=np.where(change == 0, 0.0, np.inf), where=se > 0)
        pvalue = float(stats.chi2.sf(float(np.sum(z ** 2)), int(usable.sum())))
        shift = float(np.average(np.abs(change), weights=n)) / scale
        out[name] = (shift, pvalue)
    return _judged(out, t.alpha, r.residual_shift)


def _segment_moments(values: np.ndarray, segments: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, mean and variance (ddof=1) of the values in each of k segments (-1: in none)."""
    keep = segments >= 0
    n = np.bincount(segments[keep], minlength=k).astype(np.float64)
    total = np.bincount(segments[keep], weights=values[keep], minlength=k)
    squares = np.bincount(segments[keep], weights=values[keep] ** 2, minlength=k)
    mean = np.divide(total, n, out=np.zeros(k), where=n > 0)
    var = np.divide(squares - n * mean ** 2, n - 1, out=np.zeros(k), where=n > 1)
    return n, mean, np.clip(var, 0.0, None)


def _relation(truth: np.ndarray, features: pd.DataFrame, profile: Mapping, t: ConceptThresholds,
              r: RegressionThresholds) -> dict[str, RelationShift]:
    target = profile.get("target_profile") or {}
    edges = (target.get("histogram") or {}).get("edges") or []
    relations = profile.get("target_bins_by_feature") or {}
    if target.get("type") != "numeric" or not edges or not relations:
        return {}
    k = max(len(edges) - 1, 1)
    groups = min(r.target_bins, k)
    merge = np.eye(groups)[np.arange(k) * groups // k]               # target bin -> its run of adjacent bins
    finite = np.isfinite(truth)
    codes = np.full(len(truth), -1, dtype=np.intp)
    codes[finite] = (np.arange(k) * groups // k)[assign_bins(truth[finite], edges)]
    out: dict[str, tuple[float, float]] = {}
    for name, entry in relations.items():
        spec = (profile.get("features") or {}).get(name)
        counts = np.asarray(entry.get("counts") or [], dtype=np.float64)
        if spec is None or name not in features.columns or counts.ndim != 2 or counts.shape[1] != k:
            continue
        reference = counts @ merge
        bins = feature_bins(features[name].reset_index(drop=True), spec)
        keep = (bins >= 0) & (bins < len(reference)) & (codes >= 0)
        current = np.bincount(bins[keep] * groups + codes[keep],
                              minlength=len(reference) * groups).reshape(len(reference), groups)
        found = relation_shift(reference, current, t.min_bin_rows)
        if found is not None:
            shift, pvalue = found
            out[name] = (shift, pvalue)
    return _judged(out, t.alpha, t.relation_shift)


def _judged(found: dict[str, tuple[float, float]], alpha: float, limit: float) -> dict[str, RelationShift]:
    """Each feature's (shift, p-value) judged at alpha over the number of features tested (Bonferroni): ten
    features tested at 0.01 each would raise a stable window's alert one time in ten."""
    level = alpha / max(len(found), 1)
    return {name: RelationShift(shift, p, bool(p < level and shift > limit)) for name, (shift, p) in found.items()}


# ---- helpers ---------------------------------------------------------------------------------------------

def _floats(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _aligned(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = _floats(y_true), _floats(y_pred)
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true values but {len(predicted)} predictions: pass them row for row")
    bad = int((~np.isfinite(truth) | ~np.isfinite(predicted)).sum())
    if bad:
        raise ValueError(f"{bad} true values or predictions are not finite numbers: join labels with "
                         "outputs_with_targets, which drops them")
    return truth, predicted


def _std(values: np.ndarray | None) -> float:
    return float(np.std(values, ddof=1)) if values is not None and len(values) > 1 else 0.0

