"""Results as plain JSON values: numpy scalars unwrapped, dict keys as text, NaN and infinities as null
(JSON has no NaN; an undefined metric is null)."""
from __future__ import annotations

import math

import numpy as np


def json_safe(obj):
    obj = plain(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def plain(value):
    """A numpy scalar as the Python value it holds."""
    return value.item() if isinstance(value, np.generic) else value


def finite_number(value) -> float | None:
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
