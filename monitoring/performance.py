"""Model performance on labelled production rows, and concept drift.

`outputs_with_labels(outputs, labels, classes)` joins the collected model outputs (request_id, prediction,
probability_<class>...) with the ground truth (request_id -> label) that arrives later; labels are
coerced to the model's classes by meaning ("1", 1.0 and 1 are the class 1; "yes" is "yes").

`performance(y_true, y_pred, proba, classes, baseline_metrics)` is accuracy, F1, precision, recall and ROC
AUC with the holdout's semantics (training.evaluation.classification_metrics: binary metrics of the
positive class classes[-1], multiclass macro averages), next to the training holdout's.

`concept_drift(...)` says whether the relation between inputs and label changed, two ways:

* performance below the training holdout. Each metric's `drop` is holdout minus current; it is
  `significant` when the drop exceeds `tolerance` (absolute, default 0.05) AND a one-sided test of "no
  drop" gives p < `alpha` (default 0.01):
  - accuracy: two-proportion z-test of the current error rate against the holdout's (pooled, with the
    holdout's size from metrics.json rows.holdout; without it the holdout's rate is taken as exact);
  - F1, precision, recall: z = drop / se, with se the bootstrap standard error of the current metric
    (rows resampled with replacement, done exactly and in O(B) as a multinomial draw of the k x k
    confusion matrix, B = 1000) inflated by sqrt(1 + n_current / n_holdout) for the holdout's own
    sampling error: under the null hypothesis both sets come from one distribution, so the holdout
    metric's variance is the current's scaled by n_current / n_holdout;
  - ROC AUC (binary): z-test with the Hanley-McNeil standard error on each side (the holdout's class
    counts from metrics.json class_balance); multiclass AUC is reported without a p-value.
  Fewer than `min_rows` labelled rows (default 30): drops are reported without a p-value, never
  significant. About 10 ms for 10k rows (the relation check: 2 ms per feature).
* P(label | feature) changed, which catches a concept that flipped while the inputs look the same (data
  drift sees nothing). The reference profile stores, per feature, the rows of each class in each of its
  bins (`target_by_feature`, training.reference_profile); the current labelled rows are binned the same
  way (`feature_bins`). Per bin with at least `min_bin_rows` rows on both sides, the 2 x C table
  (reference, current) x class gives Pearson's homogeneity chi-squared; the statistics and degrees of
  freedom are summed over bins (a stratified test: the bins are independent strata) into one p-value.
  The effect size `shift` is the current-mass-weighted mean over those bins of the total-variation
  distance between the reference's and the current P(label | bin), in [0, 1]: 1 is a flipped binary
  concept. A feature `drifted` when p < `alpha` and shift > `relation_shift` (default 0.1). Caveats: the
  test looks at one feature at a time (a change only in an interaction can escape it); within-bin input
  shift can move P(label | bin) too (bins are ~5% of the reference mass, so rarely by much); on small bins
  the total variation is biased upward by about sqrt(C / (2 pi n_bin)) under no change, which is why the
  p-value gates it. Profiles without `target_by_feature` (written before it existed): no relation check.

Performance without labels (CBPE) is in monitoring/cbpe.py; a regression model's performance and concept
drift in monitoring/regression.py.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from monitoring.ground_truth import LABEL, class_codes
from monitoring.json_values import finite_number, json_safe, plain
from training.evaluation import METRICS, classification_metrics, roc_auc
from training.reference_profile import feature_bins

# ---- performance with labels ------------------------------------------------------------------------------

@dataclass
class Performance:
    rows: int
    metrics: dict[str, float | None]
    baseline: dict[str, float | None]
    classes: list

    def to_dict(self) -> dict:
        return json_safe({"rows": self.rows, "metrics": dict(self.metrics), "baseline": dict(self.baseline),
                      "classes": list(self.classes)})


def performance(y_true, y_pred, proba: np.ndarray | None, classes: list,
                baseline_metrics: dict | None = None) -> Performance:
    """The holdout's metrics on labelled production rows. proba: (n, len(classes)) in classes order (or,
    binary, the positive class's column), for ROC AUC. baseline_metrics: metrics.json "metrics" (the
    whole metrics.json is accepted too). Raises ValueError for labels or predictions that are no class."""
    classes = [plain(c) for c in classes]
    truth, predicted = _codes(y_true, y_pred, classes)
    scores = probability_matrix(proba, len(truth), len(classes)) if proba is not None else None
    return Performance(len(truth), _metrics(truth, predicted, scores, len(classes)), _baseline(baseline_metrics),
                       classes)


def _metrics(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None, k: int) -> dict[str, float | None]:
    if len(truth) == 0:
        return {m: None for m in METRICS}
    codes = list(range(k))            # classification_metrics on class indices: the same numbers, any label type
    return classification_metrics(truth, predicted, scores, codes if scores is not None else None, codes)


def _baseline(baseline_metrics: Mapping | None) -> dict[str, float | None]:
    if not baseline_metrics:
        return {}
    if isinstance(baseline_metrics.get("metrics"), Mapping):
        baseline_metrics = baseline_metrics["metrics"]
    return {m: finite_number(baseline_metrics.get(m)) for m in METRICS}


def confusion_metrics(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, precision, recall, F1 of confusion matrices (..., k, k) [true, predicted], with
    classification_metrics' semantics (binary: of class k-1; else macro over all k; 0 when undefined)."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    predicted, actual = cm.sum(axis=-2), cm.sum(axis=-1)
    per_class = {"precision": _ratio(tp, predicted), "recall": _ratio(tp, actual),
                 "f1": _ratio(2 * tp, predicted + actual)}
    reduce = (lambda a: a[..., -1]) if cm.shape[-1] == 2 else (lambda a: a.mean(axis=-1))
    return {"accuracy": _ratio(tp.sum(axis=-1), cm.sum(axis=(-2, -1))), **{m: reduce(v) for m, v in per_class.items()}}


# ---- concept drift --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConceptThresholds:
    alpha: float = 0.01                  # significance level of every test
    tolerance: float = 0.05              # a metric must fall more than this (absolute) below the holdout's
    relation_shift: float = 0.1          # mean total-variation distance of P(label | bin) to call a relation changed
    min_rows: int = 30                   # fewer labelled rows: drops are reported, not tested
    min_bin_rows: int = 10               # bins with fewer rows (current or reference) are left out of the relation test
    bootstrap: int = 1000                # resamples for the standard error of F1, precision, recall
    metrics: tuple[str, ...] = METRICS   # the metrics whose significant drop is concept drift
    seed: int = 0


@dataclass
class MetricDrop:
    current: float
    baseline: float
    drop: float                          # how much worse (baseline - current; an error: current - baseline)
    pvalue: float | None                 # one-sided, of "no drop"
    significant: bool


@dataclass
class RelationShift:
    shift: float                         # mass-weighted mean total-variation distance of P(label | bin)
    pvalue: float                        # stratified chi-squared over the bins
    drifted: bool


@dataclass
class ConceptDrift:
    detected: bool
    reasons: list[str]
    performance_drop: dict[str, MetricDrop] = field(default_factory=dict)
    relation: dict[str, RelationShift] = field(default_factory=dict)
    residuals: dict = field(default_factory=dict)        # regression only (monitoring.regression)...
    relation_method: str = ""                            # ...and how its relation was checked

    def to_dict(self) -> dict:
        out = {"detected": self.detected, "reasons": list(self.reasons),
               "performance_drop": {m: asdict(d) for m, d in self.performance_drop.items()},
               "relation": {f: asdict(r) for f, r in self.relation.items()}}
        if self.residuals:
            out["residuals"] = dict(self.residuals)
        if self.relation_method:
            out["relation_method"] = self.relation_method
        return json_safe(out)


def concept_drift(y_true, y_pred, classes: list, *, training_metrics: Mapping | None = None,
                  proba: np.ndarray | None = None, features: pd.DataFrame | None = None,
                  profile: Mapping | None = None, thresholds: ConceptThresholds = ConceptThresholds()) -> ConceptDrift:
    """Concept drift on labelled production rows (see the module docstring).

    training_metrics: the model's metrics.json (its "metrics", "rows"."holdout", "class_balance"); None
    skips the performance check. features: the rows' model inputs, row for row with y_true; profile: the
    model's reference profile; either None (or a profile without target_by_feature) skips the relation
    check. Raises ValueError for labels or predictions that are no class."""
    classes = [plain(c) for c in classes]
    truth, predicted = _codes(y_true, y_pred, classes)
    scores = probability_matrix(proba, len(truth), len(classes)) if proba is not None else None
    drops = _performance_drop(truth, predicted, scores, classes, training_metrics, thresholds)
    relation = {}
    if features is not None and profile is not None:
        if len(features) != len(truth):
            raise ValueError(f"features has {len(features)} rows but there are {len(truth)} labels: pass the "
                             f"labelled rows' inputs, row for row")
        relation = _relation(truth, classes, features, profile, thresholds)
    reasons = [f"{m} {d.current:.3f} is {d.drop:.3f} below the training holdout's {d.baseline:.3f} "
               f"(p = {d.pvalue:.2g}, n = {len(truth)})" for m, d in drops.items()
               if d.significant and m in thresholds.metrics]
    target = (profile or {}).get("target") or LABEL
    reasons += [f"P({target} | {f}) changed: mean total-variation shift {r.shift:.2f} over the reference bins "
                f"(p = {r.pvalue:.2g})" for f, r in relation.items() if r.drifted]
    return ConceptDrift(bool(reasons), reasons, drops, relation)


def _performance_drop(truth, predicted, scores, classes, training, t: ConceptThresholds) -> dict[str, MetricDrop]:
    baseline = _baseline(training)
    n, k = len(truth), len(classes)
    if n == 0 or not baseline:
        return {}
    confusion = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    # = classification_metrics'
    current: dict[str, float | None] = {m: float(v) for m, v in confusion_metrics(confusion).items()}
    codes = list(range(k))
    current["roc_auc"] = roc_auc(truth, scores, codes, codes) if scores is not None else None
    n_ref = finite_number(((training or {}).get("rows") or {}).get("holdout")) or None
    tested = n >= t.min_rows
    se = _bootstrap_se(confusion, t) if tested else {}
    inflate = math.sqrt(1 + n / n_ref) if n_ref else 1.0
    drops = {}
    for m in METRICS:
        b, c = baseline.get(m), current.get(m)
        if b is None or c is None:
            continue
        p = None
        if tested and m == "accuracy":
            p = _two_proportion(1 - c, n, 1 - b, n_ref)
        elif tested and m == "roc_auc":
            p = _auc_pvalue(c, b, truth, n_ref, _positive_share(training, classes)) if k == 2 else None
        elif tested:
            p = _z_pvalue(b - c, se[m] * inflate)
        drops[m] = MetricDrop(c, b, b - c, p, p is not None and p < t.alpha and b - c > t.tolerance)
    return drops


def _bootstrap_se(confusion: np.ndarray, t: ConceptThresholds) -> dict[str, float]:
    """Bootstrap standard errors: resampling n rows with replacement is a multinomial draw of the cells."""
    n, k = int(confusion.sum()), len(confusion)
    draws = np.random.default_rng(t.seed).multinomial(n, confusion.ravel() / n, size=t.bootstrap).reshape(-1, k, k)
    return {m: float(np.std(v, ddof=1)) for m, v in confusion_metrics(draws).items()}


def _two_proportion(rate: float, n: int, reference_rate: float, n_ref: float | None) -> float:
    """One-sided p of "the current error rate is not above the reference's"."""
    if n_ref:
        pooled = (rate * n + reference_rate * n_ref) / (n + n_ref)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_ref))
    else:
        se = math.sqrt(reference_rate * (1 - reference_rate) / n)
    return _z_pvalue(rate - reference_rate, se)


def _auc_pvalue(current: float, baseline: float, truth: np.ndarray, n_ref: float | None, share: float | None) -> float:
    positives = int(truth.sum())
    se = _hanley_mcneil(current, positives, len(truth) - positives)
    if n_ref:
        share = share if share is not None else positives / len(truth)
        se = math.hypot(se, _hanley_mcneil(baseline, share * n_ref, (1 - share) * n_ref))
    return _z_pvalue(baseline - current, se)


def _hanley_mcneil(auc: float, positives: float, negatives: float) -> float:
    """Standard error of an AUC (Hanley & McNeil, 1982)."""
    if positives < 1 or negatives < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
           + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return math.sqrt(max(var, 0.0))


def _positive_share(training: Mapping | None, classes: list) -> float | None:
    balance = (training or {}).get("class_balance") or {}
    total = sum(v for v in balance.values() if isinstance(v, (int, float)))
    positive = balance.get(str(classes[-1]))
    return positive / total if total and isinstance(positive, (int, float)) else None


def _z_pvalue(difference: float, se: float) -> float:
    if not math.isfinite(se):
        return 1.0
    if se <= 0:
        return 0.0 if difference > 0 else 1.0
    return float(stats.norm.sf(difference / se))


def _relation(truth: np.ndarray, classes: list, features: pd.DataFrame, profile: Mapping,
              t: ConceptThresholds) -> dict[str, RelationShift]:
    k = len(classes)
    out = {}
    for name, entry in (profile.get("target_by_feature") or {}).items():
        spec = (profile.get("features") or {}).get(name)
        if spec is None or name not in features.columns:
            continue
        reference = _reference_counts(entry, classes)
        bins = feature_bins(features[name].reset_index(drop=True), spec)
        keep = (bins >= 0) & (bins < len(reference))
        current = np.bincount(bins[keep] * k + truth[keep], minlength=len(reference) * k).reshape(len(reference), k)
        result = relation_shift(reference, current, t.min_bin_rows)
        if result is not None:
            shift, pvalue = result
            out[name] = RelationShift(shift, pvalue, bool(pvalue < t.alpha and shift > t.relation_shift))
    return out


def _reference_counts(entry: Mapping, classes: list) -> np.ndarray:
    """The profile's class counts per bin, columns in the model's class order (its classes are str())."""
    counts = np.asarray(entry["counts"], dtype=np.float64).reshape(len(entry["counts"]), len(entry["classes"]))
    out = np.zeros((len(counts), len(classes)))
    for j, code in enumerate(class_codes(list(entry["classes"]), classes)):
        if code >= 0:
            out[:, code] += counts[:, j]
    return out


def relation_shift(reference: np.ndarray, current: np.ndarray, min_bin_rows: int = 10) -> tuple[float, float] | None:
    """(shift, p-value) of P(class | bin) between two bins x classes count tables: the stratified Pearson
    chi-squared of homogeneity (each usable bin's 2 x C table; statistics and dof summed) and the
    current-mass-weighted mean total-variation distance. None when no bin has min_bin_rows on both sides."""
    reference, current = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    usable = (reference.sum(axis=1) >= min_bin_rows) & (current.sum(axis=1) >= min_bin_rows)
    if not usable.any():
        return None
    r, q = reference[usable], current[usable]
    table = np.stack([r, q], axis=1)                                   # bins x 2 x classes
    columns, sides = table.sum(axis=1), table.sum(axis=2)
    expected = sides[:, :, None] * columns[:, None, :] / sides.sum(axis=1)[:, None, None]
    statistic = float(np.divide((table - expected) ** 2, expected, out=np.zeros_like(table), where=expected > 0).sum())
    dof = int(np.clip((columns > 0).sum(axis=1) - 1, 0, None).sum())
    pvalue = float(stats.chi2.sf(statistic, dof)) if dof > 0 else 1.0
    distance = 0.5 * np.abs(r / sides[:, :1] - q / sides[:, 1:]).sum(axis=1)
    return float(np.average(distance, weights=sides[:, 1])), pvalue


# ---- helpers ----------------------------------------------------------------------------------------------

def _codes(y_true, y_pred, classes: list) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = class_codes(y_true, classes), class_codes(y_pred, classes)
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} labels but {len(predicted)} predictions: pass them row for row")
    for name, codes, values in (("labels", truth, y_true), ("predictions", predicted, y_pred)):
        bad = np.flatnonzero(codes < 0)
        if len(bad):
            examples = ", ".join(repr(plain(np.asarray(values, dtype=object)[i])) for i in bad[:3])
            raise ValueError(f"{len(bad)} {name} are not classes of the model {classes} (e.g. {examples}): "
                             f"join labels with outputs_with_labels, which drops them")
    return truth, predicted


def probability_matrix(proba, rows: int, k: int) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1 and k == 2:
        proba = np.column_stack([1 - proba, proba])
    if proba.shape != (rows, k):
        raise ValueError(f"probabilities of shape {proba.shape} for {rows} rows and {k} classes: pass one column "
                         f"per class, in the classes' order")
    return proba


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros(np.broadcast(numerator, denominator).shape),
                     where=denominator > 0)
