"""Holdout metrics for a classifier or a regression model, a classifier's calibration, and any MLflow model
(the champion, the live model; a team's own challenger) scored on the same holdout rows."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

try:                                        # imported as training.evaluation (tests, monitoring, the local stack)
    from .labels import class_codes
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from labels import class_codes  # type: ignore[import-not-found, no-redef]

METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
CALIBRATION_BINS = 10


def metric_names(task: str) -> tuple[str, ...]:
    return REGRESSION_METRICS if task == "regression" else METRICS


@dataclass(frozen=True)
class Scored:
    """A model's answers on the holdout rows: predictions (classes, or numbers for regression), and a
    classifier's probabilities with the class of each column when it has predict_proba."""
    predicted: np.ndarray
    proba: np.ndarray | None = None
    proba_classes: list | None = None


def holdout_metrics(task: str, y_true, scored: Scored, classes: list | None) -> dict[str, float | None]:
    """classification_metrics or regression_metrics, by task."""
    if task == "regression":
        return regression_metrics(y_true, scored.predicted)
    return classification_metrics(y_true, scored.predicted, scored.proba, scored.proba_classes, list(classes or []))


def regression_metrics(y_true: pd.Series | np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """Mean absolute error, root mean squared error, R² (1 - SSE / the holdout's variance about its mean: 0
    is the mean predictor's score, negative worse) and the mean absolute percentage error as a fraction
    (0.1 is 10%), None where a target is 0 (the percentage is undefined there). r2 is None for a constant
    holdout."""
    y_true = np.asarray(y_true, dtype=np.float64)
    error = np.asarray(y_pred, dtype=np.float64) - y_true
    squares = float(np.sum((y_true - y_true.mean()) ** 2)) if len(y_true) else 0.0
    return {
        "mae": _finite(np.mean(np.abs(error))),
        "rmse": _finite(np.sqrt(np.mean(error ** 2))),
        "r2": _finite(1 - np.sum(error ** 2) / squares) if squares > 0 else None,
        "mape": _finite(np.mean(np.abs(error) / np.abs(y_true))) if len(y_true) and (y_true != 0).all() else None,
    }


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def classification_metrics(y_true: pd.Series | np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                           proba_classes: np.ndarray | list | None, classes: list) -> dict[str, float | None]:
    """accuracy, f1, precision, recall and ROC AUC. Binary: precision/recall/F1 of the positive class
    (classes[-1], the greater label) and the AUC of its probability; multiclass: macro averages and the
    one-vs-rest macro AUC. roc_auc is None when it cannot be computed (no probabilities, a class missing)."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    binary = len(classes) == 2
    options = {"pos_label": classes[-1], "average": "binary"} if binary else {"average": "macro", "labels": classes}
    result: dict[str, float | None] = {
        "accuracy": float(m.accuracy_score(y_true, y_pred)),
        "f1": float(m.f1_score(y_true, y_pred, zero_division=0, **options)),
        "precision": float(m.precision_score(y_true, y_pred, zero_division=0, **options)),
        "recall": float(m.recall_score(y_true, y_pred, zero_division=0, **options)),
        "roc_auc": None,
    }
    if proba is not None and proba_classes is not None:
        result["roc_auc"] = roc_auc(y_true, np.asarray(proba), list(proba_classes), classes)
    return result


def roc_auc(y_true: np.ndarray, proba: np.ndarray, proba_classes: list, classes: list) -> float | None:
    """classification_metrics' ROC AUC: binary, of classes[-1]'s probability; multiclass, one-vs-rest macro.
    None when it cannot be computed."""
    from sklearn.metrics import roc_auc_score

    try:
        if len(classes) == 2:
            if classes[-1] not in proba_classes:
                return None
            return float(roc_auc_score(y_true == classes[-1], proba[:, proba_classes.index(classes[-1])]))
        if sorted(proba_classes, key=str) != sorted(classes, key=str):
            return None
        order = [proba_classes.index(c) for c in classes]
        scores = proba[:, order]
        scores = scores / np.clip(scores.sum(axis=1, keepdims=True), 1e-12, None)
        return float(roc_auc_score(y_true, scores, multi_class="ovr", average="macro", labels=classes))
    except ValueError:                       # a class absent from y_true, NaN scores, ...
        return None


def calibration(y_true: pd.Series | np.ndarray, proba: np.ndarray, proba_classes: np.ndarray | list,
                classes: list, bins: int = CALIBRATION_BINS) -> dict | None:
    """Expected calibration error (ECE) of the probabilities, on `bins` equal-width bins of [0, 1]:
    sum over bins of (rows in bin / rows) * |observed frequency - mean probability|.

    Binary ("method": "positive_class"): the reliability of the positive class's (classes[-1])
    probability, binned by that probability: what confidence-based performance estimation (CBPE) takes
    as P(y = positive | x). Multiclass ("method": "top_label"): the predicted (argmax) class's
    probability against how often that prediction is right, which is what CBPE's expected accuracy
    rests on; plus "classwise_expected_calibration_error", the mean over classes of each class's
    one-vs-rest reliability ECE, which its expected macro precision/recall/F1 rest on.

    "sampling_noise" is the ECE a perfectly calibrated model would show on average on these bins and
    rows, sum (n_b / n) sqrt(2 c_b (1 - c_b) / (pi n_b)) (the mean absolute deviation of a binomial
    frequency, normal approximation): ECE is biased upward on small holdouts by about this much.
    "reliability" is the curve for plots. None when the probabilities do not cover the classes."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    proba_classes = list(proba_classes)
    if len(classes) < 2 or any(c not in proba_classes for c in classes):
        return None
    scores = proba[:, [proba_classes.index(c) for c in classes]]
    truth = pd.Categorical(y_true, categories=classes).codes
    keep = np.isfinite(scores).all(axis=1) & (truth >= 0)
    scores, truth = scores[keep], truth[keep]
    if len(classes) == 2:
        ece, noise, curve = _reliability(scores[:, 1], truth == 1, bins)
        return {"expected_calibration_error": ece, "bins": bins, "method": "positive_class", "rows": len(truth),
                "sampling_noise": noise, "reliability": curve}
    predicted = scores.argmax(axis=1)
    ece, noise, curve = _reliability(scores[np.arange(len(scores)), predicted], predicted == truth, bins)
    classwise = [_reliability(scores[:, k], truth == k, bins)[0] for k in range(len(classes))]
    return {"expected_calibration_error": ece, "bins": bins, "method": "top_label", "rows": len(truth),
            "sampling_noise": noise, "reliability": curve,
            # each is None only where there are no rows
            "classwise_expected_calibration_error":
                float(np.mean([e for e in classwise if e is not None])) if len(truth) else None}


def _reliability(probability: np.ndarray, hit: np.ndarray, bins: int) -> tuple[float | None, float | None, dict]:
    n = len(probability)
    index = np.clip((probability * bins).astype(np.intp), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    mean_p = np.divide(np.bincount(index, weights=probability, minlength=bins), counts,
                       out=np.full(bins, np.nan), where=counts > 0)
    observed = np.divide(np.bincount(index, weights=hit.astype(np.float64), minlength=bins), counts,
                         out=np.full(bins, np.nan), where=counts > 0)
    used = counts > 0
    if n == 0:
        return None, None, _curve(counts, mean_p, observed)
    weights = counts[used] / n
    ece = float(np.sum(weights * np.abs(observed[used] - mean_p[used])))
    c = np.clip(mean_p[used], 0.0, 1.0)
    noise = float(np.sum(weights * np.sqrt(2 * c * (1 - c) / (np.pi * counts[used]))))
    return ece, noise, _curve(counts, mean_p, observed)


def _curve(counts: np.ndarray, mean_probability: np.ndarray, observed: np.ndarray) -> dict:
    def nullable(values: np.ndarray) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in values]
    return {"counts": counts.tolist(), "mean_probability": nullable(mean_probability), "observed": nullable(observed)}


def find_mlflow_model(path: str | Path) -> Path:
    """The MLflow model folder at path: the folder itself, its model/ subfolder (a job's whole output),
    or the folder holding an MLmodel file path points at."""
    path = Path(path)
    for candidate in (path, path / "model", path.parent):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise FileNotFoundError(f"no MLflow model (an MLmodel file) at {path}")


def evaluate_champion(path: str | Path, x: pd.DataFrame, y: pd.Series, classes: list | None,
                      task: str = "classification") -> dict[str, float | None]:
    """Score the champion MLflow model at path on the holdout rows x, y (`score_model`) with the task's
    metrics. Raises (with a readable message) if it cannot: the caller records the reason and carries on."""
    return holdout_metrics(task, y, score_model(path, x, classes, task), classes)


def score_model(path: str | Path, x: pd.DataFrame, classes: list | None, task: str = "classification",
                who: str = "the champion") -> Scored:
    """Predictions of the MLflow model at path on the rows x (the columns of its signature are taken from
    x), with predict_proba where its scikit-learn flavour has it. A classifier's predictions are matched
    to classes by meaning (labels.class_codes); a regression model's must be numbers. Raises ValueError
    (its message names `who`) for columns it lacks, labels the data does not have, or non-numbers."""
    from mlflow.models import Model

    folder = find_mlflow_model(path)
    meta = Model.load(str(folder / "MLmodel"))
    columns = _expected_columns(meta)
    if columns is not None:
        missing = [c for c in columns if c not in x.columns]
        if missing:
            lacks = "no longer has" if who == "the champion" else "does not have"
            raise ValueError(f"{who} expects columns the data {lacks}: {', '.join(missing[:10])}")
        x = x[columns]
    proba, proba_classes = None, None
    if "sklearn" in meta.flavors:          # the estimator itself, for predict_proba (ROC AUC, calibration)
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(folder))
        predicted = estimator.predict(x)
        if task == "classification" and hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_"):
            proba, proba_classes = estimator.predict_proba(x), list(estimator.classes_)
    else:
        import mlflow.pyfunc

        predicted = mlflow.pyfunc.load_model(str(folder)).predict(x)
    predicted = np.asarray(predicted)
    if predicted.ndim > 1 and predicted.shape[1] != 1:
        raise ValueError(f"{who} answers {predicted.shape[1]} values per row; one prediction a row is needed")
    predicted = predicted.ravel()
    if len(predicted) != len(x):
        raise ValueError(f"{who} answered {len(predicted)} predictions for {len(x)} rows")
    if task == "regression":
        numbers = pd.to_numeric(pd.Series(predicted), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers)
        if bad.any():
            raise ValueError(f"{who} predicts {int(bad.sum())} values that are not finite numbers "
                             f"(e.g. {predicted[bad][0]!r}); a regression model must predict numbers")
        return Scored(numbers)
    codes = class_codes(predicted, classes or [])     # by meaning: a champion's 1 is the data's "1"
    if (codes < 0).any():
        unknown = pd.unique(predicted[codes < 0])
        raise ValueError(f"{who} predicts labels the data does not have: {sorted(map(str, unknown))[:10]}")
    predicted = pd.Series(list(classes or [])).take(codes).to_numpy()
    if proba_classes is not None:
        found = class_codes(proba_classes, classes or [])
        proba_classes = [classes[k] if k >= 0 and classes else c for k, c in zip(found, proba_classes)]
    return Scored(predicted, proba, proba_classes)


def _expected_columns(meta) -> list[str] | None:
    schema = meta.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return [str(name) for name in schema.input_names()]
