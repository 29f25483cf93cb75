"""Which kind of model is monitored: a classifier or a regression model. Every signal that looks at
predictions or labels depends on it (CBPE or direct loss estimation, accuracy or mean absolute error, ...).

`model_task(task, metrics, profile, predictions)` takes, in this order: the task the caller passes (the
model's, as the lifecycle knows it), metrics.json's "task", the reference profile's "task", then what the
saved metrics imply (a list of classes is a classifier), and only then the predictions themselves (numbers
with fractions and many distinct values come from a regression model). metrics.json has said "binary" or
"multiclass" for classifiers: both are classification."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = {"classification": CLASSIFICATION, "binary": CLASSIFICATION, "multiclass": CLASSIFICATION,
         "regression": REGRESSION}
MANY_VALUES = 20          # a classifier with more distinct fractional labels than this is not plausible


def model_task(task: str | None = None, metrics: Mapping | None = None, profile: Mapping | None = None,
               predictions: Iterable | None = None) -> str:
    """"classification" or "regression" (see the module docstring). Raises ValueError for a task passed in
    that is neither."""
    stated = stated_task(task, metrics, profile)
    if stated:
        return stated
    if predictions is not None and looks_continuous(predictions):
        return REGRESSION
    return CLASSIFICATION


def stated_task(task: str | None = None, metrics: Mapping | None = None, profile: Mapping | None = None) -> str | None:
    """The task as the caller, metrics.json or the profile state it (a list of classes states a classifier);
    None when none does."""
    if task:
        found = TASKS.get(str(task).strip().lower())
        if found is None:
            raise ValueError(f"task {task!r} is not one of classification, regression (binary and multiclass "
                             "count as classification): pass the model's metrics.json task")
        return found
    for source in (metrics or {}, profile or {}):
        found = TASKS.get(str(source.get("task") or "").strip().lower())
        if found:
            return found
    return CLASSIFICATION if (metrics or {}).get("classes") else None


def looks_continuous(values: Iterable) -> bool:
    """Numbers (not booleans), some with a fractional part, and many distinct ones: a regressor's outputs."""
    series = pd.Series(list(values) if not isinstance(values, (pd.Series, np.ndarray)) else values)
    series = series.dropna()
    if series.empty or pd.api.types.is_bool_dtype(series.dtype):
        return False
    if not pd.api.types.is_numeric_dtype(series.dtype) and any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) for v in series):
        return False
    numbers = series.to_numpy(dtype=np.float64)
    numbers = numbers[np.isfinite(numbers)]
    if len(numbers) == 0 or not (numbers != np.floor(numbers)).any():
        return False
    distinct = len(np.unique(numbers))
    return distinct > min(MANY_VALUES, max(2, math.ceil(len(numbers) / 2)))
