"""The registration gate: a challenger is registered only if it reaches a floor and is not worse than
the champion, evaluated on the same held-out rows by the training job, by more than a margin.

Some challengers the numbers cannot settle, and they are held for a person (`mlops approve` / `reject`):
- the champion could not be scored on the challenger's data, or the challenger's inputs or labels differ
  from the champion's: there is nothing fair to compare against, and clients would have to change;
- a near-perfect holdout score that one feature alone nearly reaches: most often the label leaked into
  the features (a copy or recoding of it, or something known only after the outcome)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lifecycle.core.policies import GatePolicy


class GateOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    HOLD = "hold"            # for a person to decide


PASS, FAIL, HOLD = GateOutcome.PASS, GateOutcome.FAIL, GateOutcome.HOLD
LEAK_SHARE = 0.9      # of the way from guessing the majority class to the model's score, by one feature alone


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
    """`evaluation` is the job's metrics.json: {"metrics": {...}, "champion": {...} | None, "champion_error": ...,
    "compatibility": {...} | None, "single_feature": {...}}. `champion_expected`: the job was given a
    champion to compare with."""
    name = policy.metric
    challenger = (evaluation.get("metrics") or {}).get(name)
    champion_metrics = evaluation.get("champion") or {}
    champion = champion_metrics.get(name)
    if challenger is None:
        return Verdict(FAIL, (f"the job reported no '{name}' metric",), name, None, champion)
    reasons = []
    if challenger < policy.floor:
        reasons.append(f"{name} {challenger:.4f} is below the floor {policy.floor:.4f}")
    if champion is not None and challenger < champion - policy.margin:
        reasons.append(f"{name} {challenger:.4f} is worse than the champion's {champion:.4f} "
                       f"by more than the margin {policy.margin:.4f}")
    if reasons:
        return Verdict(FAIL, tuple(reasons), name, challenger, champion)
    held = [*_incomparable(evaluation, champion_expected or bool(evaluation.get("champion_model"))),
            *_leak(evaluation, name, challenger, policy)]
    if held:
        return Verdict(HOLD, (*held, "approve with `mlops approve <job>` or reject with `mlops reject <job>`"),
                       name, challenger, champion)
    against = (f"champion {champion:.4f} (margin {policy.margin:.4f})" if champion is not None
               else "no champion (first model)")
    return Verdict(PASS, (f"{name} {challenger:.4f} ≥ floor {policy.floor:.4f}; {against}",),
                   name, challenger, champion)


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
    if challenger < policy.leak_score:
        return []
    single = evaluation.get("single_feature") or {}
    best = (single.get("best") or {}).get(metric) or {}
    alone = best.get("value")
    if alone is None or alone < policy.leak_feature_score:
        return []
    # Guessing the majority class already scores something (f1 0.95 when 90% of rows are positive): a leak
    # is one feature alone covering nearly all the way from that baseline to the model's score.
    baseline = (single.get("baseline") or {}).get(metric) or 0.0
    if challenger > baseline and (alone - baseline) / (challenger - baseline) < LEAK_SHARE:
        return []
    return [f"{metric} {challenger:.4f} on the holdout, and feature {best.get('feature')!r} alone reaches "
            f"{alone:.4f}: a likely leak (a copy of the label, or a value known only after the outcome)"]
