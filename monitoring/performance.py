"""Model performance on labelled production rows, concept drift, and performance estimated without labels.

`labelled_rows(outputs, labels, classes)` joins the collected model outputs (request_id, prediction,
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

`estimate_performance(proba, classes, calibration)` is confidence-based performance estimation (CBPE, as
NannyML): for a calibrated model P(y = c | x) is the predicted probability, so the expected confusion
matrix is E[C[i, j]] = sum over rows predicted j of proba[row, i], and the metrics follow from it as
ratios of expected counts (consistent as rows grow). Binary: expected accuracy, precision, recall, F1
of classes[-1]. Multiclass: expected accuracy (mean probability of the predicted class) always, and
macro precision/recall/F1 only when the class-wise calibration error is also within bounds. It applies
only when the training holdout's expected calibration error (metrics.json "calibration", from
training.evaluation.calibration: binary, reliability of the positive class's probability; multiclass,
top-label) is at most `max_calibration_error`, and only while the concept holds: CBPE estimates the
effect of input drift, not of concept drift.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from training.evaluation import METRICS, classification_metrics, roc_auc
from training.reference_profile import feature_bins

LABEL = "label"
PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability_"
CBPE_METRICS = ("accuracy", "f1", "precision", "recall")


# ---- classes and labels -----------------------------------------------------------------------------------

def class_codes(values, classes: Sequence) -> np.ndarray:
    """Each value's index in classes, -1 for nulls and values that are no class. Matched by meaning, for
    labels that arrive as text or as other number types: exact str() ("yes", "1"), then numbers by value
    ("1", "1.0", 1.0 and True are the class 1; 1 is the class "1"), then booleans case-insensitively
    ("true", 1 and "1" are True). str() is taken of the distinct values only."""
    codes, uniques = pd.factorize(values if isinstance(values, pd.Series) else pd.Series(values), use_na_sentinel=True)
    find = _class_finder(classes)
    lookup = np.fromiter((find(u) for u in uniques), dtype=np.intp, count=len(uniques))
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)] if len(uniques) else codes, -1).astype(np.intp)


def _class_finder(classes: Sequence):
    by_text, by_number, by_bool = {}, {}, {}
    for i, c in enumerate(map(_plain, classes)):
        by_text.setdefault(str(c).strip(), i)
        if isinstance(c, bool):
            by_bool[c] = i
            by_text.setdefault(str(c).lower(), i)
            by_text.setdefault(str(int(c)), i)
        elif isinstance(c, (int, float)):
            by_number.setdefault(float(c), i)

    def find(value) -> int:
        value = _plain(value)
        if isinstance(value, (bool, int, float)) and by_bool and not by_number:
            return by_bool.get(value, -1) if value in (0, 1) else -1
        if isinstance(value, (int, float)):
            if by_number:
                return by_number.get(float(value), -1)
            if isinstance(value, float) and value.is_integer() and str(int(value)) in by_text:
                return by_text[str(int(value))]
        text = str(value).strip()
        if text in by_text:
            return by_text[text]
        if by_bool and text.lower() in by_text:
            return by_text[text.lower()]
        if by_number:
            try:
                return by_number.get(float(text), -1)
            except ValueError:
                pass
        return -1
    return find


def output_classes(outputs: pd.DataFrame) -> list:
    """The model's classes as its outputs show them: the probability_<class> columns, typed like the
    prediction column's values (metrics.json "classes" is the better source when at hand)."""
    names = [str(c)[len(PROBABILITY_PREFIX):] for c in outputs.columns if str(c).startswith(PROBABILITY_PREFIX)]
    predicted = [_plain(v) for v in pd.unique(outputs[PREDICTION].dropna())] if PREDICTION in outputs else []
    if not names:
        return sorted(predicted, key=lambda v: (str(type(v)), v))
    typed = {str(v): v for v in predicted}
    numeric = bool(predicted) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in predicted)

    def typed_name(name: str):
        if name in typed:
            return typed[name]
        if numeric:
            try:
                number = float(name)
                return int(number) if number.is_integer() else number
            except ValueError:
                pass
        return name
    return [typed_name(n) for n in names]


def labelled_rows(outputs: pd.DataFrame, labels: Mapping[str, object], classes: Sequence | None = None) -> pd.DataFrame:
    """The output rows that have a label, with the label in a `label` column as a value of classes (and the
    `prediction` column coerced the same way when all of it matches). request_ids are compared as text;
    a request_id logged twice keeps its last row. Labels that are null or no class of the model are
    dropped: attrs["unknown_labels"] counts them and attrs["unknown_label_examples"] shows up to five.
    classes: the model's (metrics.json "classes"); None reads them from the outputs (`output_classes`)."""
    if "request_id" not in outputs.columns:
        raise ValueError("the model outputs have no request_id column, so labels cannot be joined to them: "
                         "collect request_id with each output row")
    classes = list(classes) if classes is not None else output_classes(outputs)
    by_id = {str(k): v for k, v in labels.items()}
    ids = outputs["request_id"].astype(str)
    found = ids.isin(list(by_id)).to_numpy()
    rows, ids = outputs.loc[found], ids[found]
    last = ~ids.duplicated(keep="last").to_numpy()
    rows, ids = rows.loc[last].reset_index(drop=True), ids[last]
    raw = np.array([by_id[i] for i in ids], dtype=object)
    codes = class_codes(raw, classes)
    known = codes >= 0
    unknown = [v for v in raw[~known] if not _is_null(v)]
    rows = rows.loc[known].reset_index(drop=True)
    rows[LABEL] = pd.Series(classes).take(codes[known]).to_numpy()
    if PREDICTION in rows.columns and len(rows):
        predicted = class_codes(rows[PREDICTION], classes)
        if (predicted >= 0).all():
            rows[PREDICTION] = pd.Series(classes).take(predicted).to_numpy()
    rows.attrs["unknown_labels"] = len(unknown)
    rows.attrs["unknown_label_examples"] = [str(v) for v in unknown[:5]]
    return rows


def probabilities(outputs: pd.DataFrame, classes: Sequence) -> np.ndarray | None:
    """The probability_<class> columns as an (n, len(classes)) array in classes order; None if one is missing."""
    columns = [f"{PROBABILITY_PREFIX}{_plain(c)}" for c in classes]
    if any(c not in outputs.columns for c in columns):
        return None
    return np.column_stack([pd.to_numeric(outputs[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                            for c in columns])


# ---- performance with labels ------------------------------------------------------------------------------

@dataclass
class Performance:
    rows: int
    metrics: dict[str, float | None]
    baseline: dict[str, float | None]
    classes: list

    def to_dict(self) -> dict:
        return _json({"rows": self.rows, "metrics": dict(self.metrics), "baseline": dict(self.baseline),
                      "classes": list(self.classes)})


def performance(y_true, y_pred, proba: np.ndarray | None, classes: list,
                baseline_metrics: dict | None = None) -> Performance:
    """The holdout's metrics on labelled production rows. proba: (n, len(classes)) in classes order (or,
    binary, the positive class's column), for ROC AUC. baseline_metrics: metrics.json "metrics" (the
    whole metrics.json is accepted too). Raises ValueError for labels or predictions that are no class."""
    classes = [_plain(c) for c in classes]
    truth, predicted = _codes(y_true, y_pred, classes)
    scores = _scores(proba, len(truth), len(classes)) if proba is not None else None
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
    return {m: _number(baseline_metrics.get(m)) for m in METRICS}


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
    drop: float                          # baseline - current: positive is worse
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

    def to_dict(self) -> dict:
        return _json({"detected": self.detected, "reasons": list(self.reasons),
                      "performance_drop": {m: asdict(d) for m, d in self.performance_drop.items()},
                      "relation": {f: asdict(r) for f, r in self.relation.items()}})


def concept_drift(y_true, y_pred, classes: list, *, training_metrics: Mapping | None = None,
                  proba: np.ndarray | None = None, features: pd.DataFrame | None = None,
                  profile: Mapping | None = None, thresholds: ConceptThresholds = ConceptThresholds()) -> ConceptDrift:
    """Concept drift on labelled production rows (see the module docstring).

    training_metrics: the model's metrics.json (its "metrics", "rows"."holdout", "class_balance"); None
    skips the performance check. features: the rows' model inputs, row for row with y_true; profile: the
    model's reference profile; either None (or a profile without target_by_feature) skips the relation
    check. Raises ValueError for labels or predictions that are no class."""
    classes = [_plain(c) for c in classes]
    truth, predicted = _codes(y_true, y_pred, classes)
    scores = _scores(proba, len(truth), len(classes)) if proba is not None else None
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
    current = {m: float(v) for m, v in confusion_metrics(confusion).items()}      # = classification_metrics'
    codes = list(range(k))
    current["roc_auc"] = roc_auc(truth, scores, codes, codes) if scores is not None else None
    n_ref = _number(((training or {}).get("rows") or {}).get("holdout")) or None
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


# ---- performance without labels: CBPE ---------------------------------------------------------------------

@dataclass
class EstimatedPerformance:
    calibrated: bool
    calibration_error: float | None
    rows: int
    metrics: dict[str, float | None]
    reason: str | None = None            # why no estimate, when there is none
    method: str = "CBPE"

    def to_dict(self) -> dict:
        out = {"method": self.method, "calibrated": self.calibrated, "calibration_error": self.calibration_error,
               "rows": self.rows, "metrics": dict(self.metrics)}
        if self.reason is not None:
            out["reason"] = self.reason
        return _json(out)


def estimate_performance(proba: np.ndarray, classes: list, calibration: Mapping | None,
                         max_calibration_error: float = 0.05, *, predictions=None) -> EstimatedPerformance:
    """CBPE (see the module docstring). proba: (n, len(classes)) in classes order, or binary the positive
    class's probabilities; predictions: the labels the model returned (default: the most probable
    class, as predict does); calibration: metrics.json "calibration". Rows with a non-finite
    probability or a prediction that is no class are left out."""
    classes = [_plain(c) for c in classes]
    k = len(classes)
    proba = np.asarray(proba, dtype=np.float64)
    rows = len(proba)
    error = _number((calibration or {}).get("expected_calibration_error"))

    def refused(reason: str) -> EstimatedPerformance:
        return EstimatedPerformance(False, error, rows, {}, reason)
    if k < 2:
        return refused("the model has fewer than two classes: there is no performance to estimate")
    if error is None:
        return refused("the model's metrics.json has no expected calibration error (it was trained before "
                       "calibration was measured, or without probabilities on its holdout): retrain it to "
                       "estimate performance without labels")
    if error > max_calibration_error:
        noise = _number((calibration or {}).get("sampling_noise"))
        hint = (f"; {noise:.3f} of that is expected from its holdout's size alone, so a larger holdout may pass"
                if noise is not None and noise > max_calibration_error / 2 else "")
        return refused(f"the model's probabilities are not calibrated enough to estimate performance from them: "
                       f"its holdout's expected calibration error {error:.3f} is above {max_calibration_error:g}{hint}")
    scores = _scores(proba, rows, k)
    if predictions is not None:
        predicted = class_codes(predictions, classes)
    else:                                                              # as predict: the first of tied classes
        predicted = np.argmax(np.nan_to_num(scores, nan=-1.0), axis=1)
    if len(predicted) != rows:
        raise ValueError(f"{len(predicted)} predictions for {rows} rows of probabilities")
    keep = np.isfinite(scores).all(axis=1) & (predicted >= 0)
    scores, predicted = np.clip(scores[keep], 0.0, 1.0), predicted[keep]
    total = scores.sum(axis=1, keepdims=True)
    scores = np.divide(scores, total, out=np.full_like(scores, 1.0 / k), where=total > 0)
    n = len(scores)
    if n == 0:
        return EstimatedPerformance(True, error, 0, {m: None for m in CBPE_METRICS})
    expected = scores.T @ np.eye(k)[predicted]                         # E[confusion], [true, predicted]
    values = {m: float(v) for m, v in confusion_metrics(expected).items()}
    macro_error = _number((calibration or {}).get("classwise_expected_calibration_error"))
    if k > 2 and (macro_error is None or macro_error > max_calibration_error):
        values.update(f1=None, precision=None, recall=None)           # macro metrics need every class calibrated
    return EstimatedPerformance(True, error, n, {m: values[m] for m in CBPE_METRICS})


# ---- helpers ----------------------------------------------------------------------------------------------

def _codes(y_true, y_pred, classes: list) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = class_codes(y_true, classes), class_codes(y_pred, classes)
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} labels but {len(predicted)} predictions: pass them row for row")
    for name, codes, values in (("labels", truth, y_true), ("predictions", predicted, y_pred)):
        bad = np.flatnonzero(codes < 0)
        if len(bad):
            examples = ", ".join(repr(_plain(np.asarray(values, dtype=object)[i])) for i in bad[:3])
            raise ValueError(f"{len(bad)} {name} are not classes of the model {classes} (e.g. {examples}): "
                             f"join labels with labelled_rows, which drops them")
    return truth, predicted


def _scores(proba, rows: int, k: int) -> np.ndarray:
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


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value) -> float | None:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _json(obj):
    """Plain JSON values: numpy scalars unwrapped, non-finite floats as null."""
    obj = _plain(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json(v) for v in obj]
    return obj
