"""Fairness of a binary classifier across the groups of one sensitive column, with fairlearn's metrics.

`fairness(y_true, y_pred, sensitive, positive_label=..., column=...) -> FairnessReport`

per group        count, selection rate, accuracy, false positive / false negative / true positive rate
                 (fairlearn.metrics.MetricFrame). A rate with no denominator (FPR of a group with no actual
                 negatives, TPR and FNR of one with no actual positives) is reported as None, not fairlearn's 0.
differences      demographic parity difference and ratio, equalized odds difference (fairlearn.metrics,
                 between groups, worst case), over the groups with at least `min_group_size` rows only:
                 a group of five rows has a selection rate of 0 or 0.2 or ... by chance alone, and must not
                 raise an alert. Smaller groups are still reported, and listed in `excluded_groups`.

Labels may be of any type (strings from a CSV, ints, bools): both sides are mapped to 1 where they equal
`positive_label` and 0 elsewhere before fairlearn sees them. Nulls in the sensitive column are a group of
their own, "(missing)"; group names are strings.

fairlearn is given the confusion-matrix cells (group, y_true, y_pred) with their counts as sample_weight, not
the rows: every metric here is a function of those counts, so the numbers are the same as on the rows, and a
call takes ~0.2 s for 1,000 rows and ~0.6 s for 1,000,000 (on the rows fairlearn 0.15 needs ~7 s per 100,000).

fairlearn (with scikit-learn and pandas) is imported inside `fairness()`, not here: this module is imported
by the monitor's timer function, and `import fairlearn.metrics` costs about 1.8-2.5 s in a fresh interpreter
(about 1.2 s of it scikit-learn, 0.7 s pandas; 10 ms once those are loaded).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from monitoring.json_values import json_safe

MISSING = "(missing)"


@dataclass(frozen=True)
class FairnessThresholds:
    """When the report is breached.

    The two differences default to 0.1, the bound fairlearn's documentation and examples commonly use for
    demographic parity and equalized odds differences; it is a convention, not a law - set it per model.
    The four-fifths rule (a selection rate below 80% of the highest group's, from the US EEOC Uniform
    Guidelines) is the usual alternative view: the demographic parity ratio is reported and flagged below
    `demographic_parity_ratio` in the reasons, for information only; it does not set `breached`.
    """
    demographic_parity_difference: float = 0.1
    equalized_odds_difference: float = 0.1
    min_group_size: int = 30                  # groups with fewer rows are reported, not compared
    demographic_parity_ratio: float = 0.8     # informational: the four-fifths rule


@dataclass(frozen=True)
class GroupRates:
    count: int
    selection_rate: float
    accuracy: float
    false_positive_rate: float                 # NaN when the group has no actual negatives
    false_negative_rate: float                 # NaN when the group has no actual positives
    true_positive_rate: float                  # NaN when the group has no actual positives


@dataclass
class FairnessReport:
    sensitive_column: str
    groups: dict[str, GroupRates]
    excluded_groups: list[str]
    demographic_parity_difference: float | None
    demographic_parity_ratio: float | None
    equalized_odds_difference: float | None
    thresholds: FairnessThresholds
    breached: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json_safe({"sensitive_column": self.sensitive_column,
                        "groups": {g: asdict(r) for g, r in self.groups.items()},
                        "excluded_groups": list(self.excluded_groups),
                        "demographic_parity_difference": self.demographic_parity_difference,
                        "demographic_parity_ratio": self.demographic_parity_ratio,
                        "equalized_odds_difference": self.equalized_odds_difference,
                        "thresholds": asdict(self.thresholds),
                        "breached": self.breached, "reasons": list(self.reasons)})

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def fairness(y_true, y_pred, sensitive, *, positive_label, thresholds: FairnessThresholds = FairnessThresholds(),
             column: str) -> FairnessReport:
    """Per-group rates and the fairness differences of binary predictions over the column `column`."""
    from fairlearn import metrics as fm  # lazy: see the module docstring
    from sklearn.metrics import accuracy_score

    t = thresholds
    cells = _cells(y_true, y_pred, sensitive, positive_label, column)
    if cells.empty:
        return FairnessReport(column, {}, [], None, None, None, t, False,
                              [f"No rows for {column!r}: nothing to compare, no alert is raised."])
    metrics = {"selection_rate": fm.selection_rate, "accuracy": accuracy_score,
               "false_positive_rate": fm.false_positive_rate, "false_negative_rate": fm.false_negative_rate,
               "true_positive_rate": fm.true_positive_rate}
    weight = cells["rows"].to_numpy(dtype=np.float64)
    frame = fm.MetricFrame(metrics=metrics, y_true=cells["y_true"].to_numpy(), y_pred=cells["y_pred"].to_numpy(),
                           sensitive_features=cells["group"].rename(column),
                           sample_params={m: {"sample_weight": weight} for m in metrics})
    counts = cells.groupby("group")["rows"].sum()
    positives = cells[cells["y_true"] == 1].groupby("group")["rows"].sum()
    rates = {}
    for name, row in frame.by_group.iterrows():
        n, pos = int(counts[name]), int(positives.get(name, 0))
        rates[name] = GroupRates(n, float(row["selection_rate"]), float(row["accuracy"]),
                                 float(row["false_positive_rate"]) if n > pos else math.nan,
                                 float(row["false_negative_rate"]) if pos else math.nan,
                                 float(row["true_positive_rate"]) if pos else math.nan)

    eligible = [g for g, r in rates.items() if r.count >= t.min_group_size]
    excluded = [g for g in rates if g not in eligible]
    reasons = []
    if excluded:
        listed = ", ".join(f"{g!r} ({rates[g].count} rows)" for g in excluded)
        reasons.append(f"Excluded from the differences on {column!r}, fewer than {t.min_group_size} rows: {listed}.")
    if len(eligible) < 2:
        found = f" ({', '.join(map(repr, eligible))})" if eligible else ""
        reasons.append(f"Only {len(eligible)} group(s) of {column!r} have at least {t.min_group_size} rows{found}; "
                       "a fairness difference needs two, so nothing was compared and no alert is raised. "
                       "Widen the monitoring window or lower min_group_size.")
        return FairnessReport(column, rates, excluded, None, None, None, t, False, reasons)

    kept = cells[cells["group"].isin(eligible)]
    args = (kept["y_true"].to_numpy(), kept["y_pred"].to_numpy())
    kw = {"sensitive_features": kept["group"].to_numpy(), "sample_weight": kept["rows"].to_numpy(dtype=np.float64)}
    dpd = float(fm.demographic_parity_difference(*args, **kw))
    dpr = float(fm.demographic_parity_ratio(*args, **kw))
    eod = float(fm.equalized_odds_difference(*args, **kw))
    breached = bool(dpd > t.demographic_parity_difference or eod > t.equalized_odds_difference)
    reasons += _explain(column, {g: rates[g] for g in eligible}, dpd, dpr, eod, t)
    return FairnessReport(column, rates, excluded, dpd, dpr, eod, t, breached, reasons)


# ---- inputs ----------------------------------------------------------------------------------------------

def _cells(y_true, y_pred, sensitive, positive_label, column: str):
    """The rows counted by (group, y_true, y_pred), labels as 0/1 and group names as strings.

    Every metric here is a function of each group's confusion matrix, so fairlearn gets these at most 4 cells
    per group with their counts as sample_weight: the same numbers as on the rows, but fairlearn's per-row
    Python work (np.stack over each column, ~7 s for 100,000 rows) no longer grows with the window.
    """
    import pandas as pd

    y_true, y_pred, sensitive = _values(y_true), _values(y_pred), _values(sensitive)
    if not len(y_true) == len(y_pred) == len(sensitive):
        raise ValueError(f"fairness on {column!r}: y_true, y_pred and the sensitive column have "
                         f"{len(y_true)}, {len(y_pred)} and {len(sensitive)} rows; pass them aligned row by row.")
    for side, values in (("y_true", y_true), ("y_pred", y_pred)):
        nulls = int(pd.isna(values).sum())
        if nulls:
            raise ValueError(f"fairness on {column!r}: {side} has {nulls} null label(s); keep only the rows that "
                             "have both a prediction and a ground-truth label.")
    labels = list(pd.unique(np.concatenate([y_true, y_pred])))
    if len(labels) > 2 or (len(labels) == 2 and positive_label not in labels):
        shown = ", ".join(map(repr, labels[:6])) + (", ..." if len(labels) > 6 else "")
        raise ValueError(f"fairness on {column!r}: y_true and y_pred hold the labels {shown} with "
                         f"positive_label={positive_label!r}; fairness() needs binary labels of one type on both "
                         "sides with positive_label among them (threshold scores into labels first).")
    codes, uniques = pd.factorize(sensitive)                     # nulls get code -1: the last name, MISSING
    names = np.array([*map(_group_name, uniques), MISSING], dtype=object)
    rows = pd.DataFrame({"group": names[codes], "y_true": (y_true == positive_label).astype(np.int64),
                         "y_pred": (y_pred == positive_label).astype(np.int64)})
    return rows.groupby(["group", "y_true", "y_pred"]).size().reset_index(name="rows")


def _values(values) -> np.ndarray:
    import pandas as pd
    if isinstance(values, (pd.Series, pd.Index, pd.Categorical)):
        values = values.to_numpy(dtype=object)
    return np.asarray(values, dtype=object).reshape(-1)


def _group_name(value) -> str:
    """1.0 -> "1": a nullable int column arrives as floats."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# ---- the reasons -----------------------------------------------------------------------------------------

def _explain(column: str, rates: dict[str, GroupRates], dpd: float, dpr: float, eod: float,
             t: FairnessThresholds) -> list[str]:
    reasons = []
    high = max(rates, key=lambda g: rates[g].selection_rate)
    low = min(rates, key=lambda g: rates[g].selection_rate)
    verdict = "above" if dpd > t.demographic_parity_difference else "within"
    reasons.append(f"Demographic parity difference on {column!r} is {dpd:.3f}, {verdict} the "
                   f"{t.demographic_parity_difference:g} threshold: the selection rate is highest for {high!r} "
                   f"({rates[high].selection_rate:.3f} of {rates[high].count} rows) and lowest for {low!r} "
                   f"({rates[low].selection_rate:.3f} of {rates[low].count} rows).")

    verdict = "above" if eod > t.equalized_odds_difference else "within"
    found = [_span(rates, attr, label) for attr, label in (("true_positive_rate", "true positive rate"),
                                                           ("false_positive_rate", "false positive rate"))]
    spans = sorted((s for s in found if s), reverse=True)
    detail = f": the {spans[0][1]}" if spans else ""
    reasons.append(f"Equalized odds difference on {column!r} is {eod:.3f}, {verdict} the "
                   f"{t.equalized_odds_difference:g} threshold{detail}.")

    if math.isnan(dpr):
        reasons.append(f"Demographic parity ratio on {column!r} is undefined: no group of at least "
                       f"{t.min_group_size} rows has a positive prediction.")
    elif dpr < t.demographic_parity_ratio:
        reasons.append(f"Demographic parity ratio on {column!r} is {dpr:.3f}, below {t.demographic_parity_ratio:g} "
                       f"(the four-fifths rule): {low!r} is selected at {dpr:.0%} of the rate of {high!r}. "
                       "Informational; it does not set breached.")

    undefined = [g for g, r in rates.items() if math.isnan(r.false_positive_rate) or math.isnan(r.true_positive_rate)]
    if undefined:
        reasons.append(f"Group(s) {', '.join(map(repr, undefined))} of {column!r} have no actual positives or no "
                       "actual negatives: fairlearn counts the undefined rate as 0 in the equalized odds "
                       "difference, which may overstate it.")
    return reasons


def _span(rates: dict[str, GroupRates], attr: str, label: str) -> tuple[float, str] | None:
    defined = {g: getattr(r, attr) for g, r in rates.items() if not math.isnan(getattr(r, attr))}
    if len(defined) < 2:
        return None
    high, low = max(defined, key=defined.__getitem__), min(defined, key=defined.__getitem__)
    gap = defined[high] - defined[low]
    return gap, (f"{label} ranges from {defined[low]:.3f} ({low!r}) to {defined[high]:.3f} ({high!r}), "
                 f"a gap of {gap:.3f}")


