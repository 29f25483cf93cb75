"""Scoring a policy's run against the known drifts (recovery, alarms), and the recommendation, on hand-made
runs."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from mlops.simulation.outcome import Alarms, DailyScore, DriftPoint, Marker, PolicyOutcome, PolicyRun, Recovery
from mlops.simulation.scoring import recommend, rolling_means, score


def run(metrics: Sequence[float | None], markers: tuple[Marker, ...] = (), name: str = "p", trainings: int = 1,
        training_seconds: float = 10.0) -> PolicyRun:
    daily = tuple(DailyScore(day, f"2026-01-{day + 1:02d}", m, 0 if m is None else 100)
                  for day, m in enumerate(metrics))
    return PolicyRun(name=name, description="", settings={}, daily=daily, markers=markers, trainings=trainings,
                     failed_trainings=0, registered=trainings, rejected=0, promoted=1, rolled_back=0,
                     alerts=sum(m.kind == "alert" for m in markers), monitoring_jobs=0,
                     training_seconds=training_seconds, monitoring_seconds=0.0, wall_seconds=0.0)


SUDDEN = DriftPoint(10, 11, "sudden")


def test_a_dip_and_its_recovery_give_the_days_from_the_drift():
    metrics = [0.9] * 10 + [0.6, 0.6] + [0.9] * 8
    outcome = score(run(metrics), (SUDDEN,))
    # 3-day means from day 10: 0.8, 0.7, 0.7, 0.8, 0.9: back within 0.02 of 0.9 on day 14
    (recovery,) = outcome.recoveries
    assert (recovery.drift_day, recovery.recovered_day, recovery.days) == (10, 14, 4)
    assert recovery.before == pytest.approx(0.9) and recovery.lowest == pytest.approx(0.7)
    assert outcome.mean_metric == pytest.approx((18 * 0.9 + 1.2) / 20)
    assert outcome.final_metric == pytest.approx(0.9)
    assert outcome.alarms == Alarms(detected=0, missed=1, false=0, window_days=14)


def test_a_metric_that_never_comes_back_has_no_recovery():
    outcome = score(run([0.9] * 10 + [0.6] * 10), (SUDDEN,))
    (recovery,) = outcome.recoveries
    assert (recovery.recovered_day, recovery.days) == (None, None)
    assert recovery.lowest == pytest.approx(0.6) and recovery.before == pytest.approx(0.9)
    assert outcome.final_metric == pytest.approx(0.6)


def test_a_run_that_never_dips_recovers_in_zero_days():
    outcome = score(run([0.9, 0.91] * 10), (SUDDEN,))
    assert (outcome.recoveries[0].recovered_day, outcome.recoveries[0].days) == (10, 0)


def test_a_gradual_drift_is_not_recovered_before_it_ends():
    metrics = [0.9] * 10 + [0.8, 0.8] + [0.9] * 8        # back on day 14, but the drift runs until day 16
    outcome = score(run(metrics), (DriftPoint(10, 16, "gradual"),))
    assert (outcome.recoveries[0].recovered_day, outcome.recoveries[0].days) == (16, 6)


def test_a_recovery_must_come_before_the_next_drift():
    metrics = [0.9] * 10 + [0.6] * 5 + [0.9] * 10
    outcome = score(run(metrics), (SUDDEN, DriftPoint(14, 15, "sudden")))
    first, second = outcome.recoveries
    assert (first.recovered_day, first.days) == (None, None)         # day 14 is the next drift's
    assert first.lowest == pytest.approx(0.6)
    assert second.before == pytest.approx((0.9 * 3 + 0.6 * 4) / 7)   # the 7 days with a metric before day 14


def test_days_without_labels_are_skipped():
    metrics: list[float | None] = [0.9] * 10 + [0.6, None, 0.6, None, None] + [0.9] * 5
    r = run(metrics)
    assert [day for day, _ in rolling_means(r)] == [d for d, m in enumerate(metrics) if m is not None]
    outcome = score(r, (SUDDEN,))
    # 3-day means on the labelled days 10, 12, 15, 16, 17: 0.8, 0.7, 0.7, 0.8, 0.9
    assert outcome.recoveries[0].recovered_day == 17
    assert outcome.mean_metric == pytest.approx((15 * 0.9 + 1.2) / 17)


def test_no_labels_no_metric_and_no_level_before_a_drift():
    outcome = score(run([None] * 20), (SUDDEN,))
    assert outcome.mean_metric is None and outcome.final_metric is None
    assert outcome.recoveries == (Recovery(10, None, None, None, None),)
    at_start = score(run([0.9] * 20), (DriftPoint(0, 1, "sudden"),))
    assert at_start.recoveries[0].before is None and at_start.recoveries[0].days is None


def alerts(*days: float) -> tuple[Marker, ...]:
    return tuple(Marker(day, "alert", "input drift") for day in days)


def test_alarms_per_day_and_per_run_of_consecutive_days():
    drifts = (SUDDEN, DriftPoint(60, 70, "gradual"))
    markers = (alerts(10.2, 10.5, 10.9)            # one day: one alarm, detecting the first drift
               + alerts(*range(11, 31))            # still firing every day past the window (until day 25): no false
               + alerts(40.1, 40.6)                # one false alarm (one day)
               + alerts(41.0)                      # the next day, about no drift: false again
               + (Marker(50.0, "trained"),))       # not an alert
    outcome = score(run([0.9] * 100, markers), drifts)
    assert outcome.alarms == Alarms(detected=1, missed=1, false=2, window_days=14)


def test_alarms_before_a_drift_are_false_and_a_gradual_drift_is_detected_until_its_end_plus_the_window():
    drifts = (DriftPoint(20, 30, "gradual"),)
    assert score(run([0.9] * 60, alerts(18, 19, 20)), drifts).alarms == Alarms(1, 0, 2)
    assert score(run([0.9] * 60, alerts(43.5)), drifts).alarms == Alarms(1, 0, 0)       # 43 < 30 + 14
    assert score(run([0.9] * 60, alerts(44.0)), drifts).alarms == Alarms(0, 1, 1)
    assert score(run([0.9] * 60, alerts(43.5)), drifts, alarm_window_days=7).alarms == Alarms(0, 1, 1, 7)


def test_unknown_drifts_judge_no_alarm_and_no_recovery():
    outcome = score(run([0.9] * 20, alerts(3, 4)), None)
    assert outcome.alarms is None and outcome.recoveries == ()
    assert score(run([0.9] * 20, alerts(3, 4)), ()).alarms == Alarms(0, 0, 2)     # known: there are none


# ---- recommend ---------------------------------------------------------------------------------------------

def outcome(name: str, mean: float | None, trainings: int, seconds: float = 0.0,
            recoveries: tuple[Recovery, ...] = (), alarms: Alarms | None = None) -> PolicyOutcome:
    return PolicyOutcome(run=run([], name=name, trainings=trainings, training_seconds=seconds), mean_metric=mean,
                         final_metric=mean, recoveries=recoveries, alarms=alarms)


def test_recommend_picks_the_cheapest_within_the_tolerance_and_says_why():
    recovered = (Recovery(100, 104, 4, 0.87, 0.7), Recovery(200, 202, 2, 0.87, 0.8))
    outcomes = [outcome("never", 0.80, 1), outcome("daily", 0.874, 365), outcome("weekly", 0.870, 52),
                outcome("on-drift", 0.871, 6, recoveries=recovered, alarms=Alarms(2, 0, 0))]
    chosen = recommend(outcomes, metric="accuracy")
    assert chosen is not None and chosen.policy == "on-drift"
    assert chosen.reason == ("on-drift keeps accuracy at 0.871, within 0.01 of the best (daily, 0.874), with 6 "
                             "trainings instead of 365; it recovered from each drift within 4 days.")
    assert recommend(outcomes, tolerance=0.001, metric="accuracy").policy == "daily"  # type: ignore[union-attr]


def test_recommend_breaks_ties_by_compute_then_name_and_reports_missed_drifts_and_false_alarms():
    lost = (Recovery(100, None, None, 0.87, 0.6),)
    outcomes = [outcome("b", 0.87, 4, 30.0, lost, Alarms(0, 1, 3)), outcome("a", 0.87, 4, 30.0, lost,
                                                                               Alarms(0, 1, 3)),
                outcome("c", 0.87, 4, 50.0)]
    chosen = recommend(outcomes)
    assert chosen is not None and chosen.policy == "a"
    assert chosen.reason == ("a scores best on the metric, 0.870, with 4 trainings, the fewest of the 3 policies "
                             "within 0.01 of it; it did not recover from 1 of 1 drift; its alerts missed 1 drift "
                             "and raised 3 false alarms.")


def test_recommend_a_best_that_is_also_the_cheapest():
    chosen = recommend([outcome("on-drift", 0.9, 5, recoveries=(Recovery(10, 10, 0, 0.9, 0.9),)),
                        outcome("daily", 0.85, 300)], metric="r2")
    assert chosen is not None and chosen.policy == "on-drift"
    assert chosen.reason == ("on-drift scores best on r2, 0.900, 0.050 above the next (daily, 0.850), with 5 "
                             "trainings; its metric held through each drift.")


def test_no_metric_no_recommendation():
    assert recommend([outcome("never", None, 1)]) is None
    assert recommend([]) is None
    assert recommend([outcome("never", None, 1), replace(outcome("daily", 0.5, 9))]).policy == "daily"  # type: ignore[union-attr]
