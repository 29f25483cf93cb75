"""A policy's run scored against the history's known drifts, and the policy to recommend. Pure functions: no
clock, no I/O.

The metric is "higher is better" (accuracy, r2). Days are measured days (0 = the first measured day); a day
without labels has no metric and is skipped by every mean below.

- mean_metric: the mean of the daily metric over the days that have one; final_metric: the mean of the last 7
  such days.
- Recovery, per known drift (sorted by day), judged on the 3-day mean: the mean of the last 3 days with a
  metric up to and including a day (fewer at the very start of the history). `before` is the mean of the 7
  days with a metric before the drift's day; the threshold is `before - tolerance`. From the drift's day until
  the next drift starts (or the history ends):
  - `lowest` is the smallest 3-day mean;
  - the metric "fell" on the first day whose 3-day mean is below the threshold;
  - `recovered_day` is the first day after it fell, and at or after the drift's end (a gradual drift's `ends`;
    a sudden one's day), whose 3-day mean is back at or above the threshold; `days` = recovered_day - day.
  - If it never fell, recovered_day is the drift's day and days 0; if it fell and did not come back before the
    next drift (or the end), both are None. Without a level before the drift (no metric before it), nothing
    is judged (None, None).
- Alarms (only when the drifts are known): the markers of kind "alert", taken per simulated day (the monitor
  re-fires on every pass while a signal stays breached, so several alerts within a day are one alarm). An
  alarm on day t detects drift d when d.day <= t < d.ends + alarm_window_days. A run of alarms on consecutive
  days is one episode: once one of its days detects a drift, the days after it in the run are the same alarm
  still firing, not false ones. Every other alarm day is a false alarm; a drift no alarm detected is missed.
- recommend: among the policies whose mean metric is within `tolerance` of the best, the one with the fewest
  trainings (then the least training compute, then the name).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from mlops.simulation.outcome import (
    Alarms,
    DriftPoint,
    Marker,
    PolicyOutcome,
    PolicyRun,
    Recommendation,
    Recovery,
)

ROLLING_DAYS = 3        # the recovery is judged on this many days' mean
LEVEL_DAYS = 7          # the level before a drift, and the final metric, over this many days


def score(run: PolicyRun, drifts: tuple[DriftPoint, ...] | None, tolerance: float = 0.02,
          alarm_window_days: int = 14) -> PolicyOutcome:
    """`run` scored: its mean and final metric, and against `drifts` (None: not known) how it recovered from
    each and how its alerts matched them."""
    points = _points(run)
    values = [v for _, v in points]
    ordered = tuple(sorted(drifts or (), key=lambda d: d.day))
    rolling = [r for _, r in rolling_means(run)]
    recoveries = tuple(_recovery(d, ordered[i + 1].day if i + 1 < len(ordered) else None, points, rolling,
                                 tolerance) for i, d in enumerate(ordered))
    return PolicyOutcome(run=run, mean_metric=_mean(values), final_metric=_mean(values[-LEVEL_DAYS:]),
                         recoveries=recoveries,
                         alarms=None if drifts is None else alarms(run.markers, ordered, alarm_window_days))


def alarms(markers: Sequence[Marker], drifts: Sequence[DriftPoint], window_days: int = 14) -> Alarms:
    """The alert markers against the known drifts (the rules in the module's docstring)."""
    days = sorted({math.floor(m.day) for m in markers if m.kind == "alert"})
    detected: set[int] = set()
    false = 0
    episode_detected, previous = False, None
    for t in days:
        if previous is None or t > previous + 1:        # a new run of consecutive alarm days
            episode_detected = False
        previous = t
        hits = {i for i, d in enumerate(drifts) if d.day <= t < d.ends + window_days}
        if hits:
            detected |= hits
            episode_detected = True
        elif not episode_detected:
            false += 1
    return Alarms(detected=len(detected), missed=len(drifts) - len(detected), false=false, window_days=window_days)


def recommend(outcomes: list[PolicyOutcome], tolerance: float = 0.01, *,
              metric: str = "the metric") -> Recommendation | None:
    """The cheapest policy whose mean metric is within `tolerance` of the best, and why in one sentence; None
    when no policy has a metric. `metric` names it in the reason (accuracy, r2)."""
    scored = [o for o in outcomes if o.mean_metric is not None]
    if not scored:
        return None
    best = max(scored, key=lambda o: (_m(o), -o.run.trainings, -o.run.training_seconds))
    close = [o for o in scored if _m(best) - _m(o) <= tolerance + 1e-12]
    chosen = min(close, key=lambda o: (o.run.trainings, o.run.training_seconds, o.run.name))
    name, value, n = chosen.run.name, _m(chosen), chosen.run.trainings
    if _m(chosen) >= _m(best):
        reason = f"{name} scores best on {metric}, {value:.3f}"
        others = [o for o in close if o is not chosen]
        if others:
            reason += (f", with {_count(n, 'training')}, the fewest of the {len(close)} policies within "
                       f"{tolerance:g} of it")
        else:
            runner = max((o for o in scored if o is not chosen), key=_m, default=None)
            reason += (f", {_m(chosen) - _m(runner):.3f} above the next ({runner.run.name}, {_m(runner):.3f})"
                       if runner is not None else "") + f", with {_count(n, 'training')}"
    else:
        reason = (f"{name} keeps {metric} at {value:.3f}, within {tolerance:g} of the best ({best.run.name}, "
                  f"{_m(best):.3f}), with {_count(n, 'training')} instead of {best.run.trainings}")
    reason += "".join(f"; {part}" for part in _record(chosen))
    return Recommendation(policy=name, reason=reason + ".")


# ---- pieces ------------------------------------------------------------------------------------------------

def _points(run: PolicyRun) -> list[tuple[int, float]]:
    """(day, metric) of the days that have a finite metric, in day order."""
    return sorted((s.day, s.metric) for s in run.daily if s.metric is not None and math.isfinite(s.metric))


def rolling_means(run: PolicyRun) -> list[tuple[int, float]]:
    """(day, 3-day mean) of each day with a metric: the mean of it and the (up to) 2 days with a metric
    before it. What a recovery is judged on, and what the HTML report draws."""
    points = _points(run)
    means = []
    for i, (day, _) in enumerate(points):
        window = points[max(0, i - ROLLING_DAYS + 1):i + 1]
        means.append((day, sum(v for _, v in window) / len(window)))
    return means


def _recovery(drift: DriftPoint, next_day: int | None, points: list[tuple[int, float]], rolling: list[float],
              tolerance: float) -> Recovery:
    before = _mean([v for day, v in points if day < drift.day][-LEVEL_DAYS:])
    after = [(day, r) for (day, _), r in zip(points, rolling) if day >= drift.day and (next_day is None or
                                                                                         day < next_day)]
    lowest = min((r for _, r in after), default=None)
    if before is None:
        return Recovery(drift.day, None, None, None, lowest)
    threshold = before - tolerance
    fell = next((day for day, r in after if r < threshold), None)
    if fell is None:
        return Recovery(drift.day, drift.day, 0, before, lowest)
    earliest = drift.ends if drift.ends > drift.day + 1 else drift.day
    back = next((day for day, r in after if day > fell and day >= earliest and r >= threshold), None)
    return Recovery(drift.day, back, None if back is None else back - drift.day, before, lowest)


def _record(o: PolicyOutcome) -> list[str]:
    """What the chosen policy did about the drifts, in words."""
    parts = []
    judged = [r for r in o.recoveries if r.before is not None]
    if judged:
        lost = [r for r in judged if r.days is None]
        if lost:
            parts.append(f"it did not recover from {len(lost)} of {_count(len(judged), 'drift')}")
        elif max(r.days or 0 for r in judged) == 0:
            parts.append("its metric held through each drift")
        else:
            parts.append(f"it recovered from each drift within {_count(max(r.days or 0 for r in judged), 'day')}")
    if o.alarms is not None and (o.alarms.missed or o.alarms.false):
        said = ([f"missed {_count(o.alarms.missed, 'drift')}"] if o.alarms.missed else []) + \
               ([f"raised {_count(o.alarms.false, 'false alarm')}"] if o.alarms.false else [])
        parts.append("its alerts " + " and ".join(said))
    return parts


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _m(o: PolicyOutcome) -> float:
    return o.mean_metric if o.mean_metric is not None else -math.inf


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
