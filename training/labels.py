"""Class labels matched by meaning: "1", 1.0 and 1 are the class 1; "yes" is "yes"; "true" and 1 are True.

The training job's copy of monitoring.ground_truth' matching (the job's code snapshot is this folder alone, so
it cannot import monitoring): the champion's labels, read back from JSON or from a pickled estimator,
are compared with the labels of the data as read from CSV or Parquet."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def class_codes(values, classes: Sequence) -> np.ndarray:
    """Each value's index in classes, -1 for nulls and values that are no class. Exact str() first
    ("yes", "1"), then numbers by value ("1", "1.0", 1.0 and True are the class 1; 1 is the class "1"),
    then booleans case-insensitively ("true", 1 and "1" are True). str() is taken of distinct values only."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    find = _class_finder(classes)
    lookup = np.fromiter((find(u) for u in uniques), dtype=np.intp, count=len(uniques))
    return np.where(codes >= 0, lookup[np.maximum(codes, 0)] if len(uniques) else codes, -1).astype(np.intp)


def plain(value):
    """A numpy scalar as the Python value it holds."""
    return value.item() if isinstance(value, np.generic) else value


def _class_finder(classes: Sequence):
    by_text: dict[str, int] = {}
    by_number: dict[float, int] = {}
    by_bool: dict[float, int] = {}       # True and False, so also found as 1 and 0
    for i, c in enumerate(map(plain, classes)):
        by_text.setdefault(str(c).strip(), i)
        if isinstance(c, bool):
            by_bool[c] = i
            by_text.setdefault(str(c).lower(), i)
            by_text.setdefault(str(int(c)), i)
        elif isinstance(c, (int, float)):
            by_number.setdefault(float(c), i)

    def find(value) -> int:
        value = plain(value)
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
