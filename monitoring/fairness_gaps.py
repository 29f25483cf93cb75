"""Fairness of a regression model and of a multiclass classifier: how much worse the model does for one
group than for another, over the groups of one sensitive column (fairlearn's MetricFrame). A binary
classifier's demographic parity and equalized odds are in monitoring/fairness.py.

`regression_fairness(y_true, y_pred, sensitive, column=...)`
  per group     count, MAE, RMSE, mean residual (true - predicted: negative where the model predicts too
                high for the group), mean prediction and mean true value.
  gap           the MAE's difference between groups (MetricFrame.difference(): the largest group's minus the
                smallest's) and ratio, over the groups of at least `min_group_size` rows, and that difference
                relative to the MAE of all of them. Breached when the relative gap is above `relative_mae_gap`
                (0.2) AND Welch's test of the worst group's absolute errors against the best's gives p < alpha
                (0.01): the MAE of a few dozen rows moves by a tenth or more by chance alone.

`multiclass_fairness(y_true, y_pred, sensitive, classes=..., column=...)`
  per group     count, accuracy, macro F1 over the model's classes (the holdout's average), and the share of
                the group's rows predicted as each class.
  gap           the accuracy's and macro F1's differences between groups (MetricFrame.difference() over the
                groups of at least `min_group_size` rows): breached when either is above its threshold (0.1,
                the bound binary demographic parity uses by default). The demographic parity difference,
                the largest over the classes of the one-vs-rest selection rate's difference between groups,
                is reported for information: with several classes, groups whose class mix differs differ
                in it with a fair model.

Both return a `GapReport`; its to_dict() has the binary report's keys (sensitive_column, groups,
excluded_groups, thresholds, breached, reasons), `task`, and the gaps under `differences`. Groups are named
as in monitoring/fairness.py (nulls are "(missing)"). fairlearn is imported inside the functions (see
monitoring/fairness.py on its import time).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from monitoring.fairness import MISSING, _group_name
from monitoring.json_values import json_safe, plain


@dataclass(frozen=True)
class GapThresholds:
    relative_mae_gap: float = 0.2        # regression: MAE difference between groups / overall MAE
    alpha: float = 0.01                  # regression: significance of the worst group's larger errors
    accuracy_difference: float = 0.1     # multiclass
    macro_f1_difference: float = 0.1     # multiclass
    min_group_size: int = 30             # groups with fewer rows are reported, not compared


@dataclass
class GapReport:
    task: str                            # "regression" | "multiclass"
    sensitive_column: str
    groups: dict[str, dict[str, float | None]]
    excluded_groups: list[str]
    differences: dict[str, float | None]
    thresholds: GapThresholds
    breached: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json_safe({"task": self.task, "sensitive_column": self.sensitive_column, "groups": self.groups,
                          "excluded_groups": list(self.excluded_groups), "differences": dict(self.differences),
                          "thresholds": asdict(self.thresholds), "breached": self.breached,
                          "reasons": list(self.reasons)})


def regression_fairness(y_true, y_pred, sensitive, *, column: str,
                        thresholds: GapThresholds = GapThresholds()) -> GapReport:
    """Per-group errors of a regression model and the MAE gap between groups (see the module docstring)."""
    from fairlearn.metrics import MetricFrame, count  # lazy: see monitoring/fairness.py
    from scipy import stats
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    t = thresholds
    truth = pd.to_numeric(pd.Series(_values(y_true)), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    predicted = pd.to_numeric(pd.Series(_values(y_pred)), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    groups = _groups(sensitive, len(truth), len(predicted), column)
    if not (np.isfinite(truth).all() and np.isfinite(predicted).all()):
        raise ValueError(f"fairness on {column!r}: true values and predictions must all be numbers; keep only the "
                         "rows that have both (outputs_with_targets)")
    if len(truth) == 0:
        return GapReport("regression", column, {}, [], {}, t, False,
                         [f"No rows for {column!r}: nothing to compare, no alert is raised."])
    metrics = {"count": count, "mae": mean_absolute_error, "rmse": root_mean_squared_error,
               "mean_residual": lambda y, p: float(np.mean(y - p)), "mean_prediction": lambda y, p: float(np.mean(p)),
               "mean_true": lambda y, p: float(np.mean(y))}
    frame = MetricFrame(metrics=metrics, y_true=truth, y_pred=predicted, sensitive_features=groups.rename(column))
    per_group = {str(g): {m: int(v) if m == "count" else _number(v) for m, v in row.items()}
                 for g, row in frame.by_group.iterrows()}
    eligible, excluded, reasons = _eligible(per_group, column, t)
    if len(eligible) < 2:
        return GapReport("regression", column, per_group, excluded, {}, t, False, reasons)

    kept = groups.isin(eligible).to_numpy()
    gaps = MetricFrame(metrics=mean_absolute_error, y_true=truth[kept], y_pred=predicted[kept],
                       sensitive_features=groups[kept].rename(column))
    difference, ratio = float(gaps.difference()), float(gaps.ratio())
    overall = float(gaps.overall)
    relative = difference / overall if overall > 0 else (math.inf if difference > 0 else 0.0)
    worst = max(eligible, key=lambda g: per_group[g]["mae"] or 0.0)
    best = min(eligible, key=lambda g: per_group[g]["mae"] or 0.0)
    errors = np.abs(truth - predicted)
    test = stats.ttest_ind(errors[(groups == worst).to_numpy()], errors[(groups == best).to_numpy()],
                           equal_var=False, alternative="greater")
    pvalue = float(test.pvalue) if math.isfinite(test.pvalue) else 1.0
    breached = bool(relative > t.relative_mae_gap and pvalue < t.alpha)
    verdict = "above" if relative > t.relative_mae_gap else "within"
    reasons.append(f"MAE on {column!r} ranges from {per_group[best]['mae']:.4g} ({best!r}) to "
                   f"{per_group[worst]['mae']:.4g} ({worst!r}): a gap of {difference:.4g}, {relative:.0%} of the "
                   f"overall {overall:.4g}, {verdict} the {t.relative_mae_gap:.0%} threshold (Welch's test of "
                   f"{worst!r}'s larger errors p = {pvalue:.2g}"
                   + (f", not below {t.alpha:g}: could be chance)." if relative > t.relative_mae_gap and not breached
                      else ")."))
    residuals = {g: per_group[g]["mean_residual"] for g in eligible}
    high, low = max(residuals, key=lambda g: residuals[g] or 0.0), min(residuals, key=lambda g: residuals[g] or 0.0)
    reasons.append(f"Mean residual (true - predicted) on {column!r}: {residuals[low]:.4g} for {low!r} to "
                   f"{residuals[high]:.4g} for {high!r}; negative is predicted too high.")
    differences: dict[str, float | None] = {"mae_difference": difference, "mae_ratio": ratio,
                                            "relative_mae_gap": relative, "mae_gap_pvalue": pvalue}
    return GapReport("regression", column, per_group, excluded, differences, t, breached, reasons)


def multiclass_fairness(y_true, y_pred, sensitive, *, classes: list, column: str,
                        thresholds: GapThresholds = GapThresholds()) -> GapReport:
    """Per-group accuracy and macro F1 of a multiclass classifier and their gaps (see the module docstring).
    y_true and y_pred: values of classes (outputs_with_labels gives them so)."""
    from functools import partial

    from fairlearn.metrics import MetricFrame  # lazy: see monitoring/fairness.py
    from sklearn.metrics import accuracy_score, f1_score

    t = thresholds
    classes = [plain(c) for c in classes]
    truth, predicted = _values(y_true), _values(y_pred)
    groups = _groups(sensitive, len(truth), len(predicted), column)
    if len(truth) == 0:
        return GapReport("multiclass", column, {}, [], {}, t, False,
                         [f"No rows for {column!r}: nothing to compare, no alert is raised."])
    index = {str(c): i for i, c in enumerate(classes)}
    codes = [np.array([index.get(str(plain(v)), -1) for v in side]) for side in (truth, predicted)]
    if any((c < 0).any() for c in codes):
        raise ValueError(f"fairness on {column!r}: labels or predictions that are not classes of the model "
                         f"{classes}; join labels with outputs_with_labels, which drops them")
    # as monitoring/fairness.py: fairlearn gets the (group, true, predicted) cells with their counts as weights
    cells = (pd.DataFrame({"group": groups.to_numpy(), "y_true": codes[0], "y_pred": codes[1]})
             .groupby(["group", "y_true", "y_pred"]).size().reset_index(name="rows"))
    labels = list(range(len(classes)))
    metrics = {"accuracy": accuracy_score,
               "macro_f1": partial(f1_score, labels=labels, average="macro", zero_division=0)}

    def frame(rows: pd.DataFrame):
        weight = rows["rows"].to_numpy(dtype=np.float64)
        return MetricFrame(metrics=metrics, y_true=rows["y_true"].to_numpy(), y_pred=rows["y_pred"].to_numpy(),
                           sensitive_features=rows["group"].rename(column),
                           sample_params={m: {"sample_weight": weight} for m in metrics})
    by_group = frame(cells).by_group
    counts = cells.groupby("group")["rows"].sum()
    predicted_as = cells.groupby(["group", "y_pred"])["rows"].sum().unstack(fill_value=0).reindex(
        columns=labels, fill_value=0)
    per_group: dict[str, dict[str, float | None]] = {}
    for g, row in by_group.iterrows():
        shares = predicted_as.loc[g] / counts[g]
        per_group[str(g)] = {"count": int(counts[g]), "accuracy": _number(row["accuracy"]),
                             "macro_f1": _number(row["macro_f1"]),
                             **{f"predicted_{classes[k]}": float(shares[k]) for k in labels}}
    eligible, excluded, reasons = _eligible(per_group, column, t)
    if len(eligible) < 2:
        return GapReport("multiclass", column, per_group, excluded, {}, t, False, reasons)

    gaps = frame(cells[cells["group"].isin(eligible)]).difference()
    accuracy, macro_f1 = float(gaps["accuracy"]), float(gaps["macro_f1"])
    shares = predicted_as.loc[eligible].div(counts[eligible], axis=0)
    spread = shares.max() - shares.min()
    widest = labels[int(np.argmax(spread.to_numpy()))]
    parity = float(spread.max())
    breached = bool(accuracy > t.accuracy_difference or macro_f1 > t.macro_f1_difference)
    for name, value, limit in (("accuracy", accuracy, t.accuracy_difference),
                               ("macro F1", macro_f1, t.macro_f1_difference)):
        key = "accuracy" if name == "accuracy" else "macro_f1"
        high = max(eligible, key=lambda g: per_group[g][key] or 0.0)
        low = min(eligible, key=lambda g: per_group[g][key] or 0.0)
        reasons.append(f"{name.capitalize()} difference on {column!r} is {value:.3f}, "
                       f"{'above' if value > limit else 'within'} the {limit:g} threshold: {per_group[high][key]:.3f} "
                       f"for {high!r} and {per_group[low][key]:.3f} for {low!r}.")
    reasons.append(f"Demographic parity difference on {column!r} (largest over the classes, one against the rest) "
                   f"is {parity:.3f}, for class {classes[widest]!r}; informational, it does not set breached.")
    differences: dict[str, float | None] = {"accuracy_difference": accuracy, "macro_f1_difference": macro_f1,
                                            "demographic_parity_difference": parity}
    return GapReport("multiclass", column, per_group, excluded, differences, t, breached, reasons)


# ---- pieces ----------------------------------------------------------------------------------------------

def _eligible(per_group: dict[str, dict], column: str, t: GapThresholds) -> tuple[list[str], list[str], list[str]]:
    eligible = [g for g, r in per_group.items() if (r.get("count") or 0) >= t.min_group_size]
    excluded = [g for g in per_group if g not in eligible]
    reasons = []
    if excluded:
        listed = ", ".join(f"{g!r} ({per_group[g]['count']} rows)" for g in excluded)
        reasons.append(f"Excluded from the gaps on {column!r}, fewer than {t.min_group_size} rows: {listed}.")
    if len(eligible) < 2:
        found = f" ({', '.join(map(repr, eligible))})" if eligible else ""
        reasons.append(f"Only {len(eligible)} group(s) of {column!r} have at least {t.min_group_size} rows{found}; "
                       "a gap needs two, so nothing was compared and no alert is raised. Widen the monitoring "
                       "window or lower min_group_size.")
    return eligible, excluded, reasons


def _groups(sensitive, truth: int, predicted: int, column: str) -> pd.Series:
    """Each row's group name; truth and predicted: how many true values and predictions there are."""
    values = _values(sensitive)
    if not truth == predicted == len(values):
        raise ValueError(f"fairness on {column!r}: y_true, y_pred and the sensitive column have "
                         f"{truth}, {predicted} and {len(values)} rows; pass them aligned row by row.")
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))     # nulls get -1: the last name, MISSING
    names = np.array([*map(_group_name, uniques), MISSING], dtype=object)
    return pd.Series(names[codes], dtype=object)


def _values(values) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index, pd.Categorical)):
        values = values.to_numpy(dtype=object)
    return np.asarray(values, dtype=object).reshape(-1)


def _number(value) -> float | None:
    value = plain(value)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
