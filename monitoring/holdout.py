"""A model's holdout rows, where training saved them beside its reference profile: `reference/holdout.parquet`
(or `reference/holdout.csv`) with the feature columns, the model's answer in a `prediction` column and the
true value in the target's column (metrics.json "target").

Direct loss estimation (monitoring.dle) learns a regression model's errors from them, and a regression
model's concept drift compares today's residuals with theirs. They must be holdout rows, not training rows:
a model's errors on its own training rows are smaller than anywhere else. A model saved without them skips
the estimate (with the reason in the result) and tests its residuals for a bias instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HOLDOUT_FILES = ("reference/holdout.parquet", "reference/holdout.csv")
PREDICTION = "prediction"
RESIDUAL = "residual"


def read_holdout(model_dir: str | Path) -> pd.DataFrame | None:
    """The holdout rows under model_dir (the shallowest, as the profile is found), or None."""
    for name in HOLDOUT_FILES:
        found = sorted(Path(model_dir).rglob(name), key=lambda path: len(path.parts))
        if found:
            return pd.read_parquet(found[0]) if found[0].suffix == ".parquet" else pd.read_csv(found[0])
    return None


def holdout_errors(holdout: pd.DataFrame | None, target: str | None) -> pd.DataFrame | None:
    """The holdout's rows where the true value and the prediction are numbers, with their `residual` (true
    value minus prediction); None without such rows."""
    if holdout is None or not target or target not in holdout.columns or PREDICTION not in holdout.columns:
        return None
    truth = pd.to_numeric(holdout[target], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    predicted = pd.to_numeric(holdout[PREDICTION], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    residuals = truth - predicted
    known = np.isfinite(residuals)
    if not known.any():
        return None
    return holdout.loc[known].assign(**{RESIDUAL: residuals[known]}).reset_index(drop=True)
