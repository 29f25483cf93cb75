"""How well each feature alone predicts the target on the holdout: the evidence the registration gate uses
to hold a model whose near-perfect score comes from one feature, most often a leak of the label.

Method ("bin_majority"): each feature is cut into bins on the training rows, and each bin predicts the
majority training label of its rows (the overall majority if it had none); the predictions are scored on
the holdout with classification_metrics' averaging (binary: the positive class classes[-1]; multiclass:
macro), and roc_auc ranks the holdout rows by their bin's training class frequencies. Bins: for numbers,
between training quantiles; for text and booleans, the most frequent training values seen in at least
MIN_CATEGORY_ROWS rows, the other values (and those first met on the holdout) sharing an "other" bin;
missing values have a bin of their own. There are `bin_count` value bins: MAX_BINS, fewer on small
data (ROWS_PER_BIN training rows per bin on average, MIN_BINS at least). It is all counting, no model is
fitted: a few bincounts per block of columns. 10,000 rows x 5,000 columns take about 1.5 s of one core
for numbers and 2 s for text (tests/training/test_leakage.py::test_wide_data_takes_seconds measures it).

What it catches: a copy of the label, whatever its type; a one-to-one or many-to-one recoding of it
("yes"/"no" for 1/0, a status that implies the outcome); a post-outcome field (an amount or date filled
in only after the event, or whose missingness follows the label); a number the label thresholds, to
within one quantile bin (half a bin's rows misread at worst: 1% with 50 bins); an ordering leak (a row
number of data that was sorted by label).
What it does not catch: a leak that needs two features together; a leak confined to a few rows (it
moves a score by as little); a text feature whose leaking values are each rarer than MIN_CATEGORY_ROWS
(an id with the outcome in it: the model cannot generalise from unique values either); a number whose
relation to the label changes within a bin (finer than the quantiles).

No false alarm from constants and identifiers: a constant column has one bin, and an identifier's holdout
values were never seen in training, so both predict the majority label for every row, which is the
baseline exactly. Only features whose predictions beat the baseline's accuracy on the holdout count as
predictive, in "best" and "top". (Where the positive class is the majority, the baseline's own f1 is
high: compare with "baseline", not with 0.)

Regression ("bin_mean", `single_feature_power_regression`): the same bins, each predicting the mean training
target of its rows (the overall training mean if it had none), scored on the holdout by r2, mae and rmse.
The baseline is the mean predictor (the training mean for every row: r2 about 0), and only features whose
holdout squared error is below the baseline's count as predictive. "best" is the highest r2 and the lowest
mae and rmse; "top" is ordered by r2.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

METHOD = "bin_majority"
SCORES = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METHOD = "bin_mean"
REGRESSION_SCORES = ("r2", "mae", "rmse")
LOWER_IS_BETTER = ("mae", "rmse")
MAX_BINS, MIN_BINS, ROWS_PER_BIN = 50, 10, 20
MIN_CATEGORY_ROWS = 5               # training rows a text value needs for a bin of its own
BLOCK = 256                         # columns per vectorised step (memory: ~rows x BLOCK x 8 bytes)
QUANTILE_ROWS = 2000                # training rows sorted for a number's bin edges
TOP = 5


def single_feature_power(x_train: pd.DataFrame, y_train, x_hold: pd.DataFrame, y_hold, classes: Sequence,
                         numeric: Sequence[str], categorical: Sequence[str]) -> dict:
    """metrics.json's "single_feature" (see the module docstring):

        {"method": "bin_majority", "bins": <value bins per feature>, "rows": <holdout rows>,
         "features": <features scored>,
         "baseline": {metric: value},        # the majority training label predicted for every holdout row
         "best": {metric: {"feature": name, "value": v} | None},    # accuracy, f1, precision, recall, roc_auc
         "top": [{"feature": name, "accuracy": ..., "f1": ..., ...}, ...]}    # at most TOP, by f1

    best and top hold only the features that beat the baseline's accuracy: None and [] when none does.
    y_train and y_hold hold values of classes."""
    classes = list(classes)
    k = len(classes)
    y_train = pd.Categorical(np.asarray(y_train), categories=classes).codes.astype(np.intp)
    y_hold = pd.Categorical(np.asarray(y_hold), categories=classes).codes.astype(np.intp)
    if (y_train < 0).any() or (y_hold < 0).any():
        raise ValueError("a label that is not one of classes")
    bins = bin_count(len(y_train))
    prior = np.bincount(y_train, minlength=k).astype(np.float64)
    majority = int(prior.argmax())
    prior /= prior.sum()

    names: list[str] = []
    table = np.empty((0, len(SCORES)))
    correct = np.empty(0, dtype=np.int64)
    for columns, binning in ((list(numeric), _numeric_bins), (list(categorical), _category_bins)):
        for block in (columns[i:i + BLOCK] for i in range(0, len(columns), BLOCK)):
            train_bins, hold_bins = binning(x_train[block], x_hold[block], bins)
            block_scores, block_correct = _score(train_bins, hold_bins, y_train, y_hold, bins + 2, k, prior, majority)
            names += block
            table = np.vstack([table, block_scores])
            correct = np.concatenate([correct, block_correct])

    one_bin = np.zeros((len(y_train), 1), dtype=np.intp), np.zeros((len(y_hold), 1), dtype=np.intp)
    baseline, baseline_correct = _score(*one_bin, y_train, y_hold, 1, k, prior, majority)
    predictive = np.flatnonzero(correct > baseline_correct[0])
    best = {}
    for j, metric in enumerate(SCORES):
        usable = predictive[np.isfinite(table[predictive, j])]
        i = usable[np.argmax(table[usable, j])] if len(usable) else None     # the first of equals
        best[metric] = {"feature": names[i], "value": _number(table[i, j])} if i is not None else None
    f1 = SCORES.index("f1")
    order = sorted(predictive, key=lambda i: (-table[i, f1], -table[i, 0], i))[:TOP]
    return {"method": METHOD, "bins": bins, "rows": len(y_hold), "features": len(names),
            "baseline": {m: _number(v) for m, v in zip(SCORES, baseline[0])},
            "best": best,
            "top": [{"feature": names[i], **{m: _number(v) for m, v in zip(SCORES, table[i])}} for i in order]}


def single_feature(task: str, x_train: pd.DataFrame, y_train, x_hold: pd.DataFrame, y_hold,
                   classes: Sequence | None, numeric: Sequence[str], categorical: Sequence[str]) -> dict:
    """single_feature_power, or single_feature_power_regression for task "regression"."""
    if task == "regression":
        return single_feature_power_regression(x_train, y_train, x_hold, y_hold, numeric, categorical)
    return single_feature_power(x_train, y_train, x_hold, y_hold, list(classes or []), numeric, categorical)


def single_feature_power_regression(x_train: pd.DataFrame, y_train, x_hold: pd.DataFrame, y_hold,
                                    numeric: Sequence[str], categorical: Sequence[str]) -> dict:
    """metrics.json's "single_feature" for a regression model (the module docstring): the layout of
    single_feature_power with method "bin_mean" and the scores r2, mae and rmse."""
    y_train = np.asarray(y_train, dtype=np.float64)
    y_hold = np.asarray(y_hold, dtype=np.float64)
    bins = bin_count(len(y_train))
    mean = float(y_train.mean())
    names: list[str] = []
    table = np.empty((0, len(REGRESSION_SCORES)))
    for columns, binning in ((list(numeric), _numeric_bins), (list(categorical), _category_bins)):
        for block in (columns[i:i + BLOCK] for i in range(0, len(columns), BLOCK)):
            train_bins, hold_bins = binning(x_train[block], x_hold[block], bins)
            names += block
            table = np.vstack([table, _score_mean(train_bins, hold_bins, y_train, y_hold, bins + 2, mean)])
    one_bin = np.zeros((len(y_train), 1), dtype=np.intp), np.zeros((len(y_hold), 1), dtype=np.intp)
    baseline = _score_mean(*one_bin, y_train, y_hold, 1, mean)[0]
    rmse = REGRESSION_SCORES.index("rmse")
    # below the mean predictor's error by more than rounding: a bin holding every row predicts the mean too
    predictive = np.flatnonzero(table[:, rmse] < baseline[rmse] * (1 - 1e-9))
    best = {}
    for j, metric in enumerate(REGRESSION_SCORES):
        usable = predictive[np.isfinite(table[predictive, j])]
        sign = 1 if metric in LOWER_IS_BETTER else -1
        i = usable[np.argmin(sign * table[usable, j])] if len(usable) else None
        best[metric] = {"feature": names[i], "value": _number(table[i, j])} if i is not None else None
    order = sorted(predictive, key=lambda i: (table[i, rmse], i))[:TOP]    # lowest error: highest r2
    return {"method": REGRESSION_METHOD, "bins": bins, "rows": len(y_hold), "features": len(names),
            "baseline": {m: _number(v) for m, v in zip(REGRESSION_SCORES, baseline)},
            "best": best,
            "top": [{"feature": names[i], **{m: _number(v) for m, v in zip(REGRESSION_SCORES, table[i])}}
                    for i in order]}


def _score_mean(train_bins: np.ndarray, hold_bins: np.ndarray, y_train: np.ndarray, y_hold: np.ndarray, slots: int,
                mean: float) -> np.ndarray:
    """REGRESSION_SCORES of each column's bin-mean rule on the holdout (columns x scores)."""
    c = train_bins.shape[1]
    columns = np.arange(c)[None, :]
    index = (columns * slots + train_bins).ravel()
    sums = np.bincount(index, weights=np.repeat(y_train, c), minlength=c * slots).reshape(c, slots)
    counts = _counts(index, c * slots).reshape(c, slots)
    rule = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
    error = rule[columns, hold_bins] - y_hold[:, None]                          # (holdout rows, c)
    sse = np.einsum("rc,rc->c", error, error)
    spread = float(np.sum((y_hold - y_hold.mean()) ** 2)) if len(y_hold) else 0.0
    n = max(len(y_hold), 1)
    r2 = 1 - sse / spread if spread > 0 else np.full(c, np.nan)
    return np.column_stack([r2, np.abs(error).sum(axis=0) / n, np.sqrt(sse / n)])


def bin_count(training_rows: int) -> int:
    """Value bins per feature: MAX_BINS, or about ROWS_PER_BIN training rows a bin, MIN_BINS at least."""
    return int(np.clip(training_rows // ROWS_PER_BIN, MIN_BINS, MAX_BINS))


def _numeric_bins(train: pd.DataFrame, hold: pd.DataFrame, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bins 0..bins-1 between bins-1 training quantiles (a value's bin is the number of edges <= it, so
    tied edges only leave bins empty); bins + 1 (missing) for NaN; infinities fall in the outer bins. The
    quantiles come from at most QUANTILE_ROWS evenly spaced training rows (the split is shuffled): a bin
    then holds 1/bins of the rows give or take a percent, for a fraction of a full sort's time."""
    a = np.asfortranarray(train.to_numpy(dtype=np.float64, na_value=np.nan))    # columns contiguous: 2x faster
    b = np.asfortranarray(hold.to_numpy(dtype=np.float64, na_value=np.nan))
    sample = np.sort(a[::max(1, len(a) // QUANTILE_ROWS)], axis=0)            # NaN last
    present = (~np.isnan(sample)).sum(axis=0)
    q = np.arange(1, bins) / bins
    rank = np.clip(np.ceil(q[:, None] * present[None, :]).astype(np.intp) - 1, 0, max(len(sample) - 1, 0))
    edges = np.take_along_axis(sample, rank, axis=0)     # (bins - 1, columns); NaN for a column without values
    result = []
    for values in (a, b):
        index = np.zeros(values.shape, dtype=np.int8, order="F")
        for edge in edges:                                # NaN compares False, either side
            index += values >= edge
        result.append(np.where(np.isnan(values), bins + 1, index).astype(np.intp))
    return result[0], result[1]


def _category_bins(train: pd.DataFrame, hold: pd.DataFrame, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bins 0..bins-1 for the most frequent training values (at least MIN_CATEGORY_ROWS rows each),
    bins (other) for the rest and for values not seen in training, bins + 1 (missing) for nulls."""
    both = pd.concat([train, hold], ignore_index=True)            # one factorize per column for both sides
    n = len(train)
    result = np.empty(both.shape, dtype=np.intp)
    for j, column in enumerate(both.columns):
        codes, uniques = pd.factorize(both[column], use_na_sentinel=True)
        seen = codes[:n]
        counts = np.bincount(seen[seen >= 0], minlength=len(uniques))
        frequent = np.flatnonzero(counts >= MIN_CATEGORY_ROWS)
        kept = frequent[np.argsort(-counts[frequent], kind="stable")][:bins]
        slot = np.full(len(uniques) + 1, bins, dtype=np.intp)       # the last entry: code -1, a null
        slot[kept] = np.arange(len(kept))
        slot[-1] = bins + 1
        result[:, j] = slot[codes]
    return result[:n], result[n:]


def _score(train_bins: np.ndarray, hold_bins: np.ndarray, y_train: np.ndarray, y_hold: np.ndarray, slots: int,
           k: int, prior: np.ndarray, majority: int) -> tuple[np.ndarray, np.ndarray]:
    """SCORES of each column's bin-majority rule on the holdout (columns x SCORES), and its correct rows.
    Bins are 0..slots-1; labels are codes 0..k-1."""
    c = train_bins.shape[1]
    columns = np.arange(c)[None, :]
    per_bin = _counts((columns * slots + train_bins) * k + y_train[:, None], c * slots * k).reshape(c, slots, k)
    rows = per_bin.sum(axis=2)
    rule = np.where(rows > 0, per_bin.argmax(axis=2), majority)                 # (c, slots)
    predicted = rule[columns, hold_bins]                                        # (holdout rows, c)
    confusion = _counts((columns * k + y_hold[:, None]) * k + predicted, c * k * k).reshape(c, k, k)
    hit = np.einsum("cii->ci", confusion)                                       # true positives per class
    said = confusion.sum(axis=1)                                                # predicted per class
    truth = confusion.sum(axis=2)                                               # actual per class
    precision, recall, f1 = _ratio(hit, said), _ratio(hit, truth), _ratio(2 * hit, said + truth)
    if k == 2:
        precision, recall, f1 = precision[:, 1], recall[:, 1], f1[:, 1]
    else:
        precision, recall, f1 = precision.mean(axis=1), recall.mean(axis=1), f1.mean(axis=1)
    correct = hit.sum(axis=1)
    accuracy = correct / max(len(y_hold), 1)

    frequency = np.where(rows[:, :, None] > 0, per_bin / np.maximum(rows, 1)[:, :, None], prior)   # (c, slots, k)
    held = _counts((columns * slots + hold_bins) * k + y_hold[:, None], c * slots * k).reshape(c, slots, k)
    if k == 2:
        auc = _auc(frequency[:, :, 1], held[:, :, 1], held[:, :, 0])
    else:                                   # one-vs-rest, macro: as roc_auc_score(multi_class="ovr")
        auc = np.mean([_auc(frequency[:, :, j], held[:, :, j], held.sum(axis=2) - held[:, :, j])
                       for j in range(k)], axis=0)
    return np.column_stack([accuracy, f1, precision, recall, auc]), correct


def _auc(score: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """ROC AUC per column when every row of a bin has its bin's score: P(score+ > score-) + P(tie) / 2,
    from the bins' holdout counts (columns x slots). NaN when a side is empty."""
    above = (score[:, :, None] > score[:, None, :]) + 0.5 * (score[:, :, None] == score[:, None, :])
    pairs = np.einsum("ci,cj,cij->c", positives.astype(np.float64), negatives.astype(np.float64), above)
    total = positives.sum(axis=1).astype(np.float64) * negatives.sum(axis=1)
    return np.divide(pairs, total, out=np.full(len(total), np.nan), where=total > 0)


def _counts(index: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(index.ravel(), minlength=size)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return np.divide(numerator, denominator, out=np.zeros(numerator.shape), where=denominator > 0)


def _number(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
