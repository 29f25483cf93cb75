"""Direct loss estimation (NannyML's DLE, monitoring/dle.py): a regression model's MAE and RMSE without labels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

from monitoring.dle import MIN_REFERENCE_ROWS, estimate_loss


@pytest.mark.parametrize("seed", range(5))
def test_on_an_unshifted_window_the_estimate_is_the_realized_error(seed):
    """Diabetes, split at random: train, holdout (the reference) and an unlabelled window. The window's own
    MAE is that of ~120 patients, so it is itself ~7% from the model's expected error (as the holdout's is)."""
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    order = np.random.default_rng(seed).permutation(len(x))
    train, hold, window = order[:200], order[200:320], order[320:]
    model = LinearRegression().fit(x.iloc[train], y.iloc[train])
    reference = x.iloc[hold].assign(prediction=model.predict(x.iloc[hold]), progression=y.iloc[hold].to_numpy())
    rows = x.iloc[window].assign(prediction=model.predict(x.iloc[window]))
    estimate = estimate_loss(reference, rows, target="progression", features=list(x.columns))
    error = y.iloc[window].to_numpy() - rows["prediction"].to_numpy()
    assert estimate.reason is None and estimate.rows == len(window) and estimate.reference["rows"] == len(hold)
    assert estimate.metrics["mae"] == pytest.approx(np.mean(np.abs(error)), rel=0.2)
    assert estimate.metrics["rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=0.2)
    assert estimate.to_dict()["method"] == "DLE"


def heteroscedastic(n: int, rng, low: float = 0.0, high: float = 1.0) -> pd.DataFrame:
    """A target whose noise grows with x1, and a categorical input: a model errs more where x1 is large."""
    x1, x2 = rng.uniform(low, high, n), rng.normal(0, 1, n)
    region = rng.choice(["north", "south"], n)
    y = 10 * x1 + 2 * x2 + np.where(region == "north", 1.0, -1.0) + rng.normal(0, 0.2 + 3 * x1 ** 2, n)
    return pd.DataFrame({"x1": x1, "x2": x2, "region": region, "y": y})


def test_under_input_drift_the_estimate_follows_the_error_where_the_holdout_mae_does_not():
    rng = np.random.default_rng(7)
    train, hold = heteroscedastic(3000, rng), heteroscedastic(2000, rng)
    shifted = heteroscedastic(3000, rng, low=0.6)                    # only the region of large errors
    encode = lambda f: pd.get_dummies(f[["x1", "x2", "region"]], columns=["region"], dtype=float)  # noqa: E731
    model = LinearRegression().fit(encode(train), train["y"])
    reference = hold.assign(prediction=model.predict(encode(hold)))
    rows = shifted.drop(columns="y").assign(prediction=model.predict(encode(shifted)))
    estimate = estimate_loss(reference, rows, target="y", features=["x1", "x2", "region"])
    realized = float(np.mean(np.abs(shifted["y"] - rows["prediction"])))
    holdout_mae = estimate.reference["mae"]
    assert realized > 1.5 * holdout_mae                                # the window's error is much larger...
    assert estimate.metrics["mae"] == pytest.approx(realized, rel=0.1)  # ...and the estimate sees it
    rmse = float(np.sqrt(np.mean((shifted["y"] - rows["prediction"]) ** 2)))
    assert estimate.metrics["rmse"] == pytest.approx(rmse, rel=0.1)


def test_unseen_categories_and_missing_values_are_estimated_not_refused():
    rng = np.random.default_rng(8)
    hold = heteroscedastic(500, rng).assign(prediction=lambda f: 10 * f["x1"])
    rows = heteroscedastic(50, rng).drop(columns="y").assign(prediction=lambda f: 10 * f["x1"])
    rows.loc[:9, "region"] = "east"                                    # never seen
    rows.loc[10:19, "x2"] = np.nan
    estimate = estimate_loss(hold, rows, target="y", features=["x1", "x2", "region"])
    assert estimate.rows == 50 and all(np.isfinite(v) and v > 0 for v in estimate.metrics.values())


def test_without_what_it_learns_from_it_says_why():
    rows = pd.DataFrame({"x": [1.0, 2.0], "prediction": [1.0, 2.0]})
    assert "without its holdout rows" in estimate_loss(None, rows, target="y", features=["x"]).reason
    no_target = pd.DataFrame({"x": [1.0] * 200, "prediction": [1.0] * 200})
    assert "no 'y' column" in estimate_loss(no_target, rows, target="y", features=["x"]).reason
    few = pd.DataFrame({"x": np.arange(40.0), "prediction": np.arange(40.0), "y": np.arange(40.0)})
    reason = estimate_loss(few, rows, target="y", features=["x"]).reason
    assert "only 40 holdout rows" in reason and str(MIN_REFERENCE_ROWS) in reason
    unpredicted = estimate_loss(few, pd.DataFrame({"x": [1.0]}), target="y", features=["x"])
    assert unpredicted.metrics == {} and "no prediction column" in unpredicted.reason
