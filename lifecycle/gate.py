"""The registration gate: a challenger is registered only if it reaches a floor and is not worse than
the champion, evaluated on the same held-out rows by the training job, by more than a margin."""
from __future__ import annotations

from dataclasses import dataclass

from lifecycle.settings import Settings


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]
    metric: str
    challenger: float | None
    champion: float | None


def judge(evaluation: dict, settings: Settings) -> Verdict:
    """`evaluation` is the job's metrics.json: {"metrics": {...}, "champion": {...} | None, "champion_error": ...}."""
    name = settings.gate_metric
    challenger = (evaluation.get("metrics") or {}).get(name)
    champion_metrics = evaluation.get("champion") or {}
    champion = champion_metrics.get(name)
    reasons = []
    if challenger is None:
        return Verdict(False, (f"the job reported no '{name}' metric",), name, None, champion)
    if challenger < settings.gate_floor:
        reasons.append(f"{name} {challenger:.4f} is below the floor {settings.gate_floor:.4f}")
    if champion is not None and challenger < champion - settings.gate_margin:
        reasons.append(f"{name} {challenger:.4f} is worse than the champion's {champion:.4f} "
                       f"by more than the margin {settings.gate_margin:.4f}")
    if reasons:
        return Verdict(False, tuple(reasons), name, challenger, champion)
    against = (f"champion {champion:.4f} (margin {settings.gate_margin:.4f})" if champion is not None
               else f"no champion ({evaluation.get('champion_error') or 'first model'})")
    return Verdict(True, (f"{name} {challenger:.4f} ≥ floor {settings.gate_floor:.4f}; {against}",),
                   name, challenger, champion)
