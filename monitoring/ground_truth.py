"""Ground truth joined to what the model answered: labels arrive later, keyed by request_id, often as text.

`outputs_with_labels(outputs, labels, classes)` joins the collected model outputs (request_id, prediction,
probability_<class>...) with the ground truth (request_id -> label); labels are coerced to the model's
classes by meaning ("1", 1.0 and 1 are the class 1; "yes" is "yes"). A regression model's true values are
numbers: `outputs_with_targets(outputs, labels)`."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from monitoring.feedback_format import REQUEST_ID
from monitoring.json_values import plain
from training.labels import class_codes  # one matching by meaning for the training job and monitoring

LABEL = "label"
PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability_"


def output_classes(outputs: pd.DataFrame) -> list:
    """The model's classes as its outputs show them: the probability_<class> columns, typed like the
    prediction column's values (metrics.json "classes" is the better source when at hand)."""
    names = [str(c)[len(PROBABILITY_PREFIX):] for c in outputs.columns if str(c).startswith(PROBABILITY_PREFIX)]
    predicted = [plain(v) for v in pd.unique(outputs[PREDICTION].dropna())] if PREDICTION in outputs else []
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


def outputs_with_labels(outputs: pd.DataFrame, labels: Mapping[str, object],
                        classes: Sequence | None = None) -> pd.DataFrame:
    """The output rows that have a label, with the label in a `label` column as a value of classes (and the
    `prediction` column coerced the same way when all of it matches). request_ids are compared as text;
    a request_id logged twice keeps its last row. Labels that are null or no class of the model are
    dropped: attrs["unknown_labels"] counts them and attrs["unknown_label_examples"] shows up to five.
    classes: the model's (metrics.json "classes"); None reads them from the outputs (`output_classes`)."""
    classes = list(classes) if classes is not None else output_classes(outputs)
    rows, raw = _labelled(outputs, labels)
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


def outputs_with_targets(outputs: pd.DataFrame, labels: Mapping[str, object]) -> pd.DataFrame:
    """A regression model's output rows that have a true value: `label` and `prediction` as floats (labels
    come as text from CSV files: "151.0" is 151.0). Rows whose label or prediction is no finite number are
    dropped; attrs["unknown_labels"] counts the labels (and attrs["unknown_label_examples"] shows up to five),
    attrs["unknown_predictions"] the predictions. Joined as outputs_with_labels."""
    rows, raw = _labelled(outputs, labels)
    truth = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    predicted = (pd.to_numeric(rows[PREDICTION], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                 if PREDICTION in rows.columns else np.full(len(rows), np.nan))
    good_truth, good_prediction = np.isfinite(truth), np.isfinite(predicted)
    unknown = [v for v in raw[~good_truth] if not _is_null(v)]
    keep = good_truth & good_prediction
    out = rows.loc[keep].reset_index(drop=True)
    out[LABEL], out[PREDICTION] = truth[keep], predicted[keep]
    out.attrs["unknown_labels"] = len(unknown)
    out.attrs["unknown_label_examples"] = [str(v) for v in unknown[:5]]
    out.attrs["unknown_predictions"] = int((good_truth & ~good_prediction).sum())
    return out


def _labelled(outputs: pd.DataFrame, labels: Mapping[str, object]) -> tuple[pd.DataFrame, np.ndarray]:
    """The output rows whose request_id has a label (the last row of a request logged twice), and the raw labels."""
    if REQUEST_ID not in outputs.columns:
        raise ValueError("the model outputs have no request_id column, so labels cannot be joined to them: "
                         "collect request_id with each output row")
    by_id = labels if all(type(k) is str for k in labels) else {str(k): v for k, v in labels.items()}
    # plain dict lookups: pandas' isin on arrow strings builds a Python list per call (6 s for 1M rows)
    ids = np.array([str(i) for i in outputs[REQUEST_ID].to_numpy(dtype=object)], dtype=object)
    found = np.fromiter((i in by_id for i in ids), dtype=bool, count=len(ids))
    rows, ids = outputs.loc[found], ids[found]
    last = ~pd.Series(ids).duplicated(keep="last").to_numpy()
    rows, ids = rows.loc[last].reset_index(drop=True), ids[last]
    return rows, np.array([by_id[i] for i in ids], dtype=object)


def probabilities(outputs: pd.DataFrame, classes: Sequence) -> np.ndarray | None:
    """The probability_<class> columns as an (n, len(classes)) array in classes order; None if one is missing."""
    columns = [f"{PROBABILITY_PREFIX}{plain(c)}" for c in classes]
    if any(c not in outputs.columns for c in columns):
        return None
    return np.column_stack([pd.to_numeric(outputs[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                            for c in columns])


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
