"""Performance without labels for a regression model: direct loss estimation (DLE).

This is NannyML's method (its `DLE` estimator, nannyml.performance_estimation.direct_loss_estimation),
written out with scikit-learn: nannyml would bring LightGBM, statsmodels and its own pandas pin into the
monitoring job's environment (NannyML 0.13 needs pandas < 3; this project runs pandas 3) for two model fits.

How: on reference rows whose true values are known (the model's holdout, monitoring.holdout), a second
model (NannyML calls it the nanny model; here scikit-learn's HistGradientBoostingRegressor where NannyML
uses LightGBM) learns the monitored model's absolute error |y - ŷ| from the features and the prediction,
and a third its squared error. Fitted with squared loss, each predicts a row's *expected* loss. Over a
window without labels the estimated MAE is the mean of the first's predictions, and the estimated RMSE
the square root of the mean of the second's.

What it sees: the effect of input drift, the window moving into regions where the model errs more (or
less) than on average, as the holdout showed. What it cannot see: concept drift; where the relation
between inputs and target changed, the holdout's errors no longer describe today's (as CBPE for a
classifier). On a window like the holdout it gives the holdout's error up to the nanny's fit; a mean over
many rows, its sampling noise is small, its bias is the nanny's in the regions the window covers.

Without holdout rows (a model saved without them, or fewer than MIN_REFERENCE_ROWS) there is no
estimate, and the result says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring.holdout import PREDICTION
from monitoring.json_values import json_safe
from training.reference_profile import column_kind

DLE_METRICS = ("mae", "rmse")
MIN_REFERENCE_ROWS = 100
MAX_CATEGORIES = 254        # HistGradientBoosting's limit for a categorical feature; more are used as codes


@dataclass
class LossEstimate:
    rows: int
    metrics: dict[str, float | None]
    reference: dict = field(default_factory=dict)     # the holdout rows it learnt from: count, realized errors
    reason: str | None = None                          # why no estimate, when there is none
    method: str = "DLE"

    def to_dict(self) -> dict:
        out = {"method": self.method, "rows": self.rows, "metrics": dict(self.metrics), "reference": self.reference}
        if self.reason is not None:
            out["reason"] = self.reason
        return json_safe(out)


def estimate_loss(reference: pd.DataFrame | None, window: pd.DataFrame, *, target: str | None,
                  features: list[str], seed: int = 0) -> LossEstimate:
    """DLE's MAE and RMSE over the window's rows (features and `prediction`), learnt from the reference's
    (features, `prediction` and the target column). See the module docstring."""
    rows = len(window)

    def refused(reason: str) -> LossEstimate:
        return LossEstimate(rows, {}, {}, reason)
    if reference is None:
        return refused("the model was saved without its holdout rows (reference/holdout.parquet: features, "
                       "prediction and true value), which direct loss estimation learns the model's errors from: "
                       "retrain it with a training job that saves them")
    missing = [c for c in (target, PREDICTION) if not c or c not in reference.columns]
    if missing:
        return refused(f"the model's holdout rows have no {' or '.join(repr(c) for c in missing)} column: direct loss "
                       "estimation needs the true value and the model's prediction of each row")
    if PREDICTION not in window.columns:
        return refused("the window's outputs have no prediction column")
    assert target is not None                          # checked with the columns above
    truth = _floats(reference[target])
    labelled = reference.loc[np.isfinite(truth) & np.isfinite(_floats(reference[PREDICTION]))]
    if len(labelled) < MIN_REFERENCE_ROWS:
        return refused(f"only {len(labelled)} holdout rows have a true value and a prediction; direct loss "
                       f"estimation needs at least {MIN_REFERENCE_ROWS} to learn the model's errors from")
    current = window.loc[np.isfinite(_floats(window[PREDICTION]))]
    columns = [f for f in features if f in labelled.columns and f in window.columns and f != target]
    error = _floats(labelled[target]) - _floats(labelled[PREDICTION])
    realized = {"rows": len(labelled), "features": len(columns), "mae": float(np.mean(np.abs(error))),
                "rmse": float(np.sqrt(np.mean(error ** 2)))}
    if len(current) == 0:
        return LossEstimate(0, {m: None for m in DLE_METRICS}, realized)
    nanny = DirectLossEstimator(columns, seed=seed).fit(labelled, _floats(labelled[target]))
    return LossEstimate(len(current), nanny.estimate(current), realized)


class DirectLossEstimator:
    """The nanny models: expected absolute and squared error of a row, from its features and prediction."""

    def __init__(self, features: list[str], *, seed: int = 0) -> None:
        self.features = list(features)
        self.seed = seed

    def fit(self, reference: pd.DataFrame, truth: np.ndarray) -> DirectLossEstimator:
        from sklearn.preprocessing import OrdinalEncoder  # lazy: the monitor imports this module's callers

        kinds = {f: column_kind(reference[f]) for f in self.features}
        self.features = [f for f in self.features if kinds[f] is not None]      # dates and such: not usable
        self._categorical = [f for f in self.features if kinds[f] == "categorical"]
        self._encoder = None
        if self._categorical:
            self._encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                           encoded_missing_value=np.nan)
            self._encoder.fit(reference[self._categorical].astype(str).where(reference[self._categorical].notna()))
        x = self._matrix(reference)
        error = np.asarray(truth, dtype=np.float64) - _floats(reference[PREDICTION])
        with _one_thread():
            self._absolute = self._model().fit(x, np.abs(error))
            self._squared = self._model().fit(x, error ** 2)
        return self

    def expected_losses(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's expected absolute and squared error (losses cannot be negative: clipped at 0)."""
        x = self._matrix(frame)
        with _one_thread():
            return np.clip(self._absolute.predict(x), 0, None), np.clip(self._squared.predict(x), 0, None)

    def estimate(self, frame: pd.DataFrame) -> dict[str, float | None]:
        absolute, squared = self.expected_losses(frame)
        return {"mae": float(absolute.mean()), "rmse": math.sqrt(float(squared.mean()))}

    def _model(self):
        from sklearn.ensemble import HistGradientBoostingRegressor
        mask = [c in self._categorical and len(self._categories(c)) <= MAX_CATEGORIES for c in self._columns()]
        return HistGradientBoostingRegressor(categorical_features=mask if any(mask) else None,
                                             random_state=self.seed)

    def _columns(self) -> list[str]:
        return [*self.features, PREDICTION]

    def _categories(self, column: str) -> list:
        assert self._encoder is not None
        return list(self._encoder.categories_[self._categorical.index(column)])

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        numeric = [c for c in self._columns() if c not in self._categorical]
        parts = {c: _floats(frame[c]) for c in numeric}
        if self._encoder is not None:
            text = frame[self._categorical].astype(str).where(frame[self._categorical].notna())
            codes = self._encoder.transform(text)
            parts.update({c: codes[:, i] for i, c in enumerate(self._categorical)})
        return np.column_stack([parts[c] for c in self._columns()])


def _one_thread():
    """The nanny models are small: OpenMP's threads cost more to start and synchronise than they save (measured
    1.5 s against 0.06 s for a fit on 130 rows on two busy cores), and the job's cores are shared."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # a scikit-learn dependency
    return threadpool_limits(1)


def _floats(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
