"""Each feature alone on the holdout (training/leakage.py): the leak evidence metrics.json carries for the
gate. Real tables from scikit-learn, with leaks planted in them."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split

from training.evaluation import classification_metrics
from training.leakage import SCORES, _category_bins, _numeric_bins, bin_count, single_feature_power


def split(frame: pd.DataFrame, target: str, seed: int = 42):
    x, y = frame.drop(columns=target), frame[target]
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def power(frame: pd.DataFrame, target: str, categorical: tuple[str, ...] = ()) -> dict:
    x_train, x_hold, y_train, y_hold = split(frame, target)
    numeric = [c for c in x_train.columns if c not in categorical]
    return single_feature_power(x_train, y_train, x_hold, y_hold, sorted(frame[target].unique()), numeric,
                                list(categorical))


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame          # 569 rows, 30 numeric features, target 0/1


def test_a_copy_of_the_label_is_found(cancer):
    result = power(cancer.assign(leak=cancer["target"].astype(float)), "target")
    assert result["best"]["f1"] == {"feature": "leak", "value": 1.0}
    assert all(result["best"][m] == {"feature": "leak", "value": 1.0} for m in SCORES)
    assert result["top"][0] == {"feature": "leak", **{m: 1.0 for m in SCORES}}
    assert len(result["top"]) == 5 and result["features"] == 31 and result["rows"] == 114


def test_a_recoding_of_the_label_as_text_is_found(cancer):
    recoded = cancer.assign(outcome=cancer["target"].map({0: "no", 1: "yes"}))
    result = power(recoded, "target", categorical=("outcome",))
    assert result["best"]["f1"] == {"feature": "outcome", "value": 1.0}
    assert result["best"]["accuracy"]["value"] == 1.0


def test_a_post_outcome_field_known_only_for_one_class_is_found(cancer):
    rng = np.random.default_rng(0)
    refund = np.where(cancer["target"] == 1, np.nan, rng.gamma(2.0, 100.0, len(cancer)))   # its missingness leaks
    result = power(cancer.assign(refund=refund), "target")
    assert result["best"]["f1"] == {"feature": "refund", "value": 1.0}


def test_the_real_table_has_no_leak(cancer):
    """Breast cancer's features are strong (the worst radius alone is ~0.93 accurate), not a copy of it."""
    result = power(cancer, "target")
    assert result["method"] == "bin_majority" and result["bins"] == bin_count(455) == 22
    best = result["best"]["f1"]
    assert best["feature"].startswith("worst") and 0.85 < best["value"] < 0.97
    assert result["best"]["accuracy"]["value"] < 0.95
    assert result["baseline"]["accuracy"] == pytest.approx(72 / 114)       # the majority class, 1
    assert result["baseline"]["roc_auc"] == 0.5


def test_constants_and_identifiers_do_not_look_predictive(cancer):
    """A constant column and an identifier predict the majority class for every holdout row: exactly the
    baseline, so neither is ranked, however high the baseline's own f1 (the positive class is the majority)."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"constant": 7.0, "row_id": rng.permutation(len(cancer)).astype(float),
                          "uuid": [f"id-{i:05d}" for i in rng.permutation(len(cancer))],
                          "target": cancer["target"]})
    result = power(frame, "target", categorical=("uuid",))
    assert result["baseline"]["f1"] > 0.77
    ranked = {t["feature"] for t in result["top"]} | {b["feature"] for b in result["best"].values() if b}
    assert "constant" not in ranked and "uuid" not in ranked
    if "row_id" in ranked:                                  # shuffled ids are noise: never near-perfect
        assert max(t["f1"] for t in result["top"]) < 0.85
    only_constant = power(frame[["constant", "target"]], "target")
    assert only_constant["top"] == [] and set(only_constant["best"].values()) == {None}


def test_the_scores_are_classification_metrics_of_the_bin_majority_rule():
    """Multiclass (wine, 3 classes): every figure equals scikit-learn's on the rule's own predictions."""
    wine = load_wine(as_frame=True).frame
    wine["colour"] = np.where(wine["target"] == 0, "red", np.where(np.arange(len(wine)) % 3 == 0, "white", "rose"))
    wine.loc[wine.index % 7 == 0, "alcohol"] = np.nan
    x_train, x_hold, y_train, y_hold = split(wine, "target")
    classes = [0, 1, 2]
    result = single_feature_power(x_train, y_train, x_hold, y_hold, classes, ["alcohol", "proline"], ["colour"])
    bins = bin_count(len(x_train))
    for column, binning in (("alcohol", _numeric_bins), ("proline", _numeric_bins), ("colour", _category_bins)):
        train_bins, hold_bins = binning(x_train[[column]], x_hold[[column]], bins)
        votes = pd.crosstab(train_bins[:, 0], y_train.to_numpy()).reindex(columns=classes, fill_value=0)
        rule = dict(zip(votes.index, votes.to_numpy().argmax(axis=1)))
        majority = int(y_train.value_counts().idxmax())
        predicted = np.array([rule.get(b, majority) for b in hold_bins[:, 0]])
        frequency = (votes.T / votes.sum(axis=1)).T
        proba = np.array([frequency.loc[b].to_numpy() if b in rule else np.bincount(y_train, minlength=3) / len(y_train)
                          for b in hold_bins[:, 0]])
        expected = classification_metrics(y_hold, predicted, proba, classes, classes)
        found = next((t for t in result["top"] if t["feature"] == column), None)
        assert found is not None, column
        assert {m: found[m] for m in SCORES} == pytest.approx(expected), column


def test_binary_roc_auc_ranks_rows_by_their_bins_training_frequency(cancer):
    from sklearn.metrics import roc_auc_score

    x_train, x_hold, y_train, y_hold = split(cancer[["mean radius", "target"]], "target")
    bins = bin_count(len(x_train))
    train_bins, hold_bins = _numeric_bins(x_train, x_hold, bins)
    rate = pd.Series(y_train.to_numpy()).groupby(train_bins[:, 0]).mean()
    result = single_feature_power(x_train, y_train, x_hold, y_hold, [0, 1], ["mean radius"], [])
    assert result["top"][0]["roc_auc"] == pytest.approx(
        roc_auc_score(y_hold, rate.reindex(hold_bins[:, 0]).fillna(y_train.mean())))


@pytest.mark.slow      # a timing at scale
def test_wide_data_takes_seconds():
    """10,000 rows x 5,000 numeric columns, one of them a leak, and 1,000 text columns: measured in CPU
    seconds of this process (the machine is shared), with a generous bound."""
    rng = np.random.default_rng(0)
    n, p = 10_000, 5_000
    y = pd.Series(rng.integers(0, 2, n))
    x = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i}" for i in range(p)])
    x = x.mask(rng.random((n, p)) < 0.05)
    x["f123"] = y + rng.normal(scale=0.01, size=n)                  # a number the label thresholds
    x_train, x_hold, y_train, y_hold = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
    started = time.process_time()
    result = single_feature_power(x_train, y_train, x_hold, y_hold, [0, 1], list(x.columns), [])
    numeric_seconds = time.process_time() - started
    assert result["best"]["f1"]["feature"] == "f123" and result["best"]["f1"]["value"] > 0.99
    assert result["features"] == p and result["bins"] == 50

    text = pd.DataFrame(rng.choice(np.array([f"v{j}" for j in range(30)]), size=(n, 1_000)),
                        columns=[f"t{i}" for i in range(1_000)]).astype("str")
    t_train, t_hold = text.loc[x_train.index], text.loc[x_hold.index]
    started = time.process_time()
    single_feature_power(t_train, y_train, t_hold, y_hold, [0, 1], [], list(text.columns))
    text_seconds = time.process_time() - started
    print(f"\nsingle-feature check, 10,000 rows: 5,000 numeric columns {numeric_seconds:.2f} s CPU, "
          f"1,000 text columns {text_seconds:.2f} s CPU")
    assert numeric_seconds < 10 and text_seconds < 5
