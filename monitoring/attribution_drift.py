"""Feature attribution drift: did the features that carry the label change? Azure ML's signal (and
SageMaker Clarify's) compares the ranking of feature importance on labelled production data with the
reference's by normalized discounted cumulative gain (NDCG), and alarms below 0.9.

The monitoring job has no model object (only its predictions, the labels, and the holdout rows saved with
it: monitoring.holdout), so the importance here is model-agnostic and needs no refit: the mutual
information of each feature with the label (scikit-learn's mutual_info_classif, or mutual_info_regression
for a regression target; k-nearest-neighbour estimates for numeric features, counts for categorical ones),
on the holdout rows (features, true target) and on the window's labelled rows (features, label). It is the
data's attribution, not the model's SHAP values: it sees a concept that moved from one feature to
another, not a model that weighs features differently on the same data (the model does not change
between the two sides, so that cannot happen here). Features are judged one at a time: interactions and
redundancy are not apportioned as SHAP would.

`attribution_drift(holdout, holdout_target, current, current_labels, features, thresholds)`:
NDCG = sklearn.metrics.ndcg_score with the reference importances as relevance and the production
importances as the ranking (SageMaker's definition): 1 when production ranks the features as the
reference does, lower as important features fall down the ranking. Drifted when NDCG < attribution_ndcg
(monitoring.drift.Thresholds, 0.9 as Azure ML's default). Each side is sampled to at most MAX_ROWS rows.
The estimates use 10 neighbours (scikit-learn's default 3 is noisier: on halves of the diabetes table,
100 labelled rows, NDCG fell below 0.9 in 12 of 30 splits with 3, in 2 of 30 with 10, none at 221 rows;
breast cancer and wine: none of 30 at 100 rows). Importance rankings on a few hundred labels are noisy
where few features carry the label: judge a table like diabetes on windows of 200+ labels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.multivariate_profile import category_keys, normal_key

MAX_ROWS = 5_000
DEFAULT_NDCG = 0.9
TOP = 5


def attribution_drift(holdout: pd.DataFrame, holdout_target: pd.Series, current: pd.DataFrame,
                      current_labels: pd.Series, features: dict, thresholds=None, *, regression: bool = False,
                      seed: int = 0) -> dict:
    """{"drifted", "ndcg", "threshold", "rows": {"reference", "current"}, "method", "reference_importance",
    "current_importance", "reason"}; features: the profile's per-feature specs (their kind)."""
    from sklearn.metrics import ndcg_score
    limit = float(getattr(thresholds, "attribution_ndcg", DEFAULT_NDCG))
    names = [n for n in features if n in holdout.columns and n in current.columns]
    base = {"threshold": limit, "method": "mutual information of each feature with the label"}
    ref_x, ref_y = _rows(holdout[names], holdout_target, regression, seed)
    cur_x, cur_y = _rows(current[names], current_labels, regression, seed)
    rows = {"reference": len(ref_y), "current": len(cur_y)}
    if len(names) < 2 or min(rows.values()) < 10:
        return {"drifted": False, "ndcg": None, "rows": rows, **base,
                "reason": "fewer than 2 shared features or 10 labelled rows on a side: not judged"}
    reference = _importance(ref_x, ref_y, names, features, regression, seed)
    production = _importance(cur_x, cur_y, names, features, regression, seed)
    if not reference.sum() > 0:
        return {"drifted": False, "ndcg": None, "rows": rows, **base,
                "reason": "no feature carries information on the label in the holdout: nothing to rank"}
    ndcg = float(ndcg_score(reference[None, :], production[None, :]))
    drifted = ndcg < limit
    top_ref = [names[i] for i in np.argsort(-reference, kind="stable")[:TOP]]
    top_cur = [names[i] for i in np.argsort(-production, kind="stable")[:TOP]]
    reason = (f"{'attribution drifted' if drifted else 'no attribution drift'}: NDCG {ndcg:.3f} "
              f"({'<' if drifted else '>='} {limit:g}) of the production importance ranking ({', '.join(top_cur)}) "
              f"against the holdout's ({', '.join(top_ref)})")
    return {"drifted": bool(drifted), "ndcg": ndcg, "rows": rows, **base,
            "reference_importance": dict(zip(names, reference.tolist())),
            "current_importance": dict(zip(names, production.tolist())),
            "top_reference": top_ref, "top_current": top_cur, "reason": reason}


def _rows(x: pd.DataFrame, y: pd.Series, regression: bool, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows with a label (numeric for a regression target, a class key otherwise), at most MAX_ROWS."""
    x, y = x.reset_index(drop=True), pd.Series(np.asarray(y, dtype=object))
    if regression:
        values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        keep = np.isfinite(values)
    else:
        values = np.array([None if pd.isna(v) else normal_key(str(v)) for v in y], dtype=object)
        keep = values != None  # noqa: E711  (elementwise on an object array)
    x, values = x.loc[keep].reset_index(drop=True), values[keep]
    if len(values) > MAX_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(len(values), MAX_ROWS, replace=False))
        x, values = x.iloc[pick].reset_index(drop=True), values[pick]
    return x, values


def _importance(x: pd.DataFrame, y: np.ndarray, names: list[str], features: dict, regression: bool,
                seed: int) -> np.ndarray:
    """Mutual information of each feature with y. Categorical features count by their keys (missing is a
    key of its own; the codes' values do not matter to a discrete estimate); numeric missing values at the
    feature's reference mean."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
    columns, discrete = [], []
    for name in names:
        if features[name].get("type") == "numeric":
            values = pd.to_numeric(x[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            fill = features[name].get("mean")
            columns.append(np.where(np.isfinite(values), values, fill if fill is not None else 0.0))
            discrete.append(False)
        else:
            codes, _ = pd.factorize(pd.Series(category_keys(x[name]), dtype=object), use_na_sentinel=False)
            columns.append(codes.astype(np.float64))
            discrete.append(True)
    matrix = np.column_stack(columns)
    if regression:
        return mutual_info_regression(matrix, y.astype(np.float64), discrete_features=np.array(discrete),
                                      n_neighbors=10, random_state=seed)
    target = pd.factorize(pd.Series(y, dtype=object))[0]
    return mutual_info_classif(matrix, target, discrete_features=np.array(discrete), n_neighbors=10,
                               random_state=seed)
