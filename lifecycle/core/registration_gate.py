"""The registration gate: a challenger is registered only if it reaches a floor and is not worse than
the champion, evaluated on the same held-out rows by the training job, by more than a margin.

Each metric has a direction (`better_direction`): f1, accuracy, r2, roc_auc... are better higher; errors
and losses (mae, rmse, mse, mape, log_loss) better lower. For a lower-is-better metric the policy's floor
is a ceiling the challenger must stay at or under, and the margin is how much higher than the champion's
its value may be.

Some challengers the numbers cannot settle, and they are held for a person (`mlops approve` / `reject`):
- the champion could not be scored on the challenger's data, or the challenger's inputs or labels differ
  from the champion's: there is nothing fair to compare against, and clients would have to change;
- a near-perfect holdout score that one feature alone nearly reaches: most often the label leaked into
  the features (a copy or recoding of it, or something known only after the outcome). The check needs a
  score between 0 and 1 that is better higher: the gate's metric when it is one, else r2 for a
  regression model and f1 for a classifier (the baseline: the mean predictor, r2 0; the majority class)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from lifecycle.core.policies import GatePolicy


class GateOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    HOLD = "hold"            # for a person to decide


PASS, FAIL, HOLD = GateOutcome.PASS, GateOutcome.FAIL, GateOutcome.HOLD
LEAK_SHARE = 0.9      # of the way from the baseline (majority class, mean predictor) to the model's score
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mse", "mape", "log_loss", "brier_score", "expected_calibration_error",
                             "median_absolute_error", "max_error"})
LEAK_METRIC = {"regression": "r2", "classification": "f1"}   # for a gate metric the leak check cannot use


def better_direction(metric: str) -> Literal["higher", "lower"]:
    """Whether a larger value of metric is better ("higher": f1, accuracy, r2, roc_auc, ...) or a smaller one
    ("lower": mae, rmse, mse, mape, log_loss, and any name ending in _error or _loss)."""
    name = metric.strip().lower()
    if name in LOWER_IS_BETTER or name.endswith(("_error", "_loss")):
        return "lower"
    return "higher"


@dataclass(frozen=True)
class Verdict:
    outcome: GateOutcome
    reasons: tuple[str, ...]
    metric: str
    challenger: float | None
    champion: float | None

    @property
    def passed(self) -> bool:
        return self.outcome == PASS


def judge(evaluation: dict, policy: GatePolicy, champion_expected: bool = False) -> Verdict:
    """`evaluation` is the job's metrics.json: {"task": ..., "metrics": {...}, "champion": {...} | None,
    "champion_error": ..., "compatibility": {...} | None, "single_feature": {...}}. `champion_expected`: the
    job was given a champion to compare with."""
    name = policy.metric
    metrics = evaluation.get("metrics") or {}
    challenger = metrics.get(name)
    champion_metrics = evaluation.get("champion") or {}
    champion = champion_metrics.get(name)
    if challenger is None:
        reported = [m for m, v in metrics.items() if v is not None]
        return Verdict(FAIL, (f"the job reported no '{name}' metric"
                              + (f" (it reports {', '.join(reported)}; the gate's metric must be one of them)"
                                 if reported else ""),), name, None, champion)
    lower = better_direction(name) == "lower"
    reasons = []
    if lower and challenger > policy.floor:
        reasons.append(f"{name} {challenger:.4f} is above the ceiling {policy.floor:.4f}")
    elif not lower and challenger < policy.floor:
        reasons.append(f"{name} {challenger:.4f} is below the floor {policy.floor:.4f}")
    if champion is not None and (challenger > champion + policy.margin if lower
                                 else challenger < champion - policy.margin):
        reasons.append(f"{name} {challenger:.4f} is worse than the champion's {champion:.4f} "
                       f"by more than the margin {policy.margin:.4f}"
                       + (" (lower is better)" if lower else ""))
    if reasons:
        return Verdict(FAIL, tuple(reasons), name, challenger, champion)
    held = [*_incomparable(evaluation, champion_expected or bool(evaluation.get("champion_model"))),
            *_leak(evaluation, name, challenger, policy)]
    if held:
        return Verdict(HOLD, (*held, "approve with `mlops approve <job>` or reject with `mlops reject <job>`"),
                       name, challenger, champion)
    against = (f"champion {champion:.4f} (margin {policy.margin:.4f})" if champion is not None
               else "no champion (first model)")
    bound = f"≤ ceiling {policy.floor:.4f}" if lower else f"≥ floor {policy.floor:.4f}"
    return Verdict(PASS, (f"{name} {challenger:.4f} {bound}; {against}",), name, challenger, champion)


def _incomparable(evaluation: dict, champion_expected: bool) -> list[str]:
    reasons = []
    compatibility = evaluation.get("compatibility") or {}
    if compatibility and not compatibility.get("compatible", True):
        reasons.append("its inputs or labels differ from the champion's, so clients and monitoring would have to "
                       "change: " + "; ".join(compatibility.get("reasons") or ["see compatibility in metrics.json"]))
    if champion_expected and not evaluation.get("champion"):
        reasons.append("the champion could not be scored on this data, so nothing shows the challenger is "
                       f"better ({evaluation.get('champion_error') or 'no reason given'})")
    return reasons


def _leak(evaluation: dict, metric: str, challenger: float, policy: GatePolicy) -> list[str]:
    if better_direction(metric) == "lower":         # an error has no "near-perfect" level: use a bounded score
        metric = LEAK_METRIC["regression" if evaluation.get("task") == "regression" else "classification"]
        score = (evaluation.get("metrics") or {}).get(metric)
        if score is None:
            return []
        challenger = score
    if challenger < policy.leak_score:
        return []
    single = evaluation.get("single_feature") or {}
    best = (single.get("best") or {}).get(metric) or {}
    alone = best.get("value")
    if alone is None or alone < policy.leak_feature_score:
        return []
    # Guessing already scores something (f1 0.95 when 90% of rows are positive; r2 0 for the mean): a leak
    # is one feature alone covering nearly all the way from that baseline to the model's score.
    baseline = (single.get("baseline") or {}).get(metric) or 0.0
    if challenger > baseline and (alone - baseline) / (challenger - baseline) < LEAK_SHARE:
        return []
    return [f"{metric} {challenger:.4f} on the holdout, and feature {best.get('feature')!r} alone reaches "
            f"{alone:.4f}: a likely leak (a copy of the label, or a value known only after the outcome)"]
