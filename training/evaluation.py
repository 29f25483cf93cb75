"""Holdout metrics for a classifier, and the champion (the live model) scored on the same holdout rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


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
        result["roc_auc"] = _roc_auc(y_true, np.asarray(proba), list(proba_classes), classes)
    return result


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, proba_classes: list, classes: list) -> float | None:
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


def find_mlflow_model(path: str | Path) -> Path:
    """The MLflow model folder at path: the folder itself, its model/ subfolder (a job's whole output),
    or the folder holding an MLmodel file path points at."""
    path = Path(path)
    for candidate in (path, path / "model", path.parent):
        if (candidate / "MLmodel").is_file():
            return candidate
    raise FileNotFoundError(f"no MLflow model (an MLmodel file) at {path}")


def evaluate_champion(path: str | Path, x: pd.DataFrame, y: pd.Series, classes: list) -> dict[str, float | None]:
    """Score the champion MLflow model at path on the holdout rows x, y. Raises (with a readable message)
    if it cannot: the caller records the reason and carries on."""
    from mlflow.models import Model

    folder = find_mlflow_model(path)
    meta = Model.load(str(folder / "MLmodel"))
    columns = _expected_columns(meta)
    if columns is not None:
        missing = [c for c in columns if c not in x.columns]
        if missing:
            raise ValueError(f"the champion expects columns the data no longer has: {', '.join(missing[:10])}")
        x = x[columns]
    if "sklearn" in meta.flavors:          # the estimator itself, for predict_proba (ROC AUC)
        import mlflow.sklearn

        estimator = mlflow.sklearn.load_model(str(folder))
        predicted = estimator.predict(x)
        proba, proba_classes = None, None
        if hasattr(estimator, "predict_proba"):
            proba, proba_classes = estimator.predict_proba(x), list(estimator.classes_)
    else:
        import mlflow.pyfunc

        predicted, proba, proba_classes = mlflow.pyfunc.load_model(str(folder)).predict(x), None, None
    predicted = np.asarray(predicted).ravel()
    unknown = set(pd.unique(predicted)) - set(classes)
    if unknown:
        raise ValueError(f"the champion predicts labels the data does not have: {sorted(map(str, unknown))[:10]}")
    return classification_metrics(y, predicted, proba, proba_classes, classes)


def _expected_columns(meta) -> list[str] | None:
    schema = meta.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return [str(name) for name in schema.input_names()]
