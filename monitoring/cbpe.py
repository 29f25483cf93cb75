"""Performance estimated without labels.

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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from monitoring.ground_truth import class_codes
from monitoring.json_values import finite_number, json_safe, plain
from monitoring.performance import confusion_metrics, probability_matrix

CBPE_METRICS = ("accuracy", "f1", "precision", "recall")


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
        return json_safe(out)


def estimate_performance(proba: np.ndarray, classes: list, calibration: Mapping | None,
                         max_calibration_error: float = 0.05, *, predictions=None) -> EstimatedPerformance:
    """CBPE (see the module docstring). proba: (n, len(classes)) in classes order, or binary the positive
    class's probabilities; predictions: the labels the model returned (default: the most probable
    class, as predict does); calibration: metrics.json "calibration". Rows with a non-finite
    probability or a prediction that is no class are left out."""
    classes = [plain(c) for c in classes]
    k = len(classes)
    proba = np.asarray(proba, dtype=np.float64)
    rows = len(proba)
    error = finite_number((calibration or {}).get("expected_calibration_error"))

    def refused(reason: str) -> EstimatedPerformance:
        return EstimatedPerformance(False, error, rows, {}, reason)
    if k < 2:
        return refused("the model has fewer than two classes: there is no performance to estimate")
    if error is None:
        return refused("the model's metrics.json has no expected calibration error (it was trained before "
                       "calibration was measured, or without probabilities on its holdout): retrain it to "
                       "estimate performance without labels")
    if error > max_calibration_error:
        noise = finite_number((calibration or {}).get("sampling_noise"))
        hint = (f"; {noise:.3f} of that is expected from its holdout's size alone, so a larger holdout may pass"
                if noise is not None and noise > max_calibration_error / 2 else "")
        return refused(f"the model's probabilities are not calibrated enough to estimate performance from them: "
                       f"its holdout's expected calibration error {error:.3f} is above {max_calibration_error:g}{hint}")
    scores = probability_matrix(proba, rows, k)
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
    values: dict[str, float | None] = {m: float(v) for m, v in confusion_metrics(expected).items()}
    macro_error = finite_number((calibration or {}).get("classwise_expected_calibration_error"))
    if k > 2 and (macro_error is None or macro_error > max_calibration_error):
        values.update(f1=None, precision=None, recall=None)           # macro metrics need every class calibrated
    return EstimatedPerformance(True, error, n, {m: values[m] for m in CBPE_METRICS})
