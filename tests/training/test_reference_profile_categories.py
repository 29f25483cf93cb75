"""Low-cardinality numeric columns are profiled as categories, and their values meet whatever their type."""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.reference_profile import build_profile, feature_bins, numeric_category_key


def test_numbers_with_few_values_are_categories_and_others_stay_numbers():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"flag": rng.integers(0, 2, 1000), "rating": rng.integers(1, 6, 1000).astype(float),
                       "six": rng.integers(0, 6, 1000), "x": rng.normal(size=1000)})
    df.loc[::10, "rating"] = np.nan
    features = build_profile(df)["features"]
    assert features["flag"]["type"] == "categorical" and features["flag"]["numeric_categories"] is True
    assert set(features["flag"]["frequencies"]) == {"0", "1"}          # str(value), as any category
    rating = features["rating"]
    assert set(rating["frequencies"]) == {"1.0", "2.0", "3.0", "4.0", "5.0"} and rating["null_count"] == 100
    assert rating["mean"] == np.nanmean(df["rating"]) and rating["cardinality"] == 5
    assert features["six"]["type"] == "numeric" and features["six"]["distinct"] == 6
    assert features["x"]["type"] == "numeric" and features["x"]["distinct"] == 1000


def test_ints_floats_and_text_of_one_number_are_one_category():
    assert [numeric_category_key(v) for v in (1, 1.0, "1.0", "1", np.int64(1), True)] == ["1"] * 6
    assert numeric_category_key(0.5) == "0.5" and numeric_category_key("yes") == "yes"
    spec = build_profile(pd.DataFrame({"flag": [0.0, 1.0, 1.0, np.nan]}))["features"]["flag"]
    assert set(spec["frequencies"]) == {"0.0", "1.0"}
    bins = feature_bins(pd.Series([1, 0, "1", None, 7]), spec)
    keys = list(spec["frequencies"])
    assert [keys[b] if b >= 0 else None for b in bins] == ["1.0", "0.0", "1.0", None, None]
