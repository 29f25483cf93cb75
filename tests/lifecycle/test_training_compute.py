"""The training compute core: a job's cost from its node-minutes and the rate table, the month's pace, a slow
training run against its model's usual, and the cluster advice each rule gives on jobs shaped to trigger it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.core import training_compute as tc
from lifecycle.core.platform_values import ClusterUsage, JobStatus, JobUsage
from lifecycle.core.policies import ComputePolicy, PolicyError, parse_rates

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
GIB = 1024 ** 3
DEFAULT = ComputePolicy()


def job(name: str, start: datetime, seconds: float, *, queue: float = 5.0, usage: JobUsage | None = None,
        kind: str = "training", policy: ComputePolicy = DEFAULT) -> tc.JobCompute:
    status = JobStatus(name, "Completed", created=(start - timedelta(seconds=queue)).isoformat(),
                       started=start.isoformat(), ended=(start + timedelta(seconds=seconds)).isoformat())
    return tc.job_compute(status, usage, kind=kind, model="m", trigger="data", policy=policy)


def advice(jobs, policy=DEFAULT, cluster=None) -> dict[str, tc.Advice]:
    return {a.setting: a for a in tc.advise(jobs, policy, cluster)}


def test_a_job_costs_its_node_hours_at_the_size_s_rate_and_the_team_s_rate_wins():
    one = job("a", NOW, 1800)
    assert one.cost == pytest.approx(0.5 * 0.293)                         # DS3_v2's list price
    two_nodes = job("b", NOW, 1800, usage=JobUsage(50.0, 10.0, nodes=2))
    assert two_nodes.cost == pytest.approx(2 * 0.5 * 0.293)
    own = ComputePolicy(rates=parse_rates("Standard_DS3_v2=0.25, Standard_X=1"), currency="EUR")
    assert job("c", NOW, 3600, policy=own).cost == pytest.approx(0.25)
    unknown = ComputePolicy(vm_size="Standard_Unlisted")
    assert job("d", NOW, 3600, policy=unknown).cost is None and unknown.size is None
    unfinished = tc.job_compute(JobStatus("e", "Running", started=NOW.isoformat()), None, kind="training",
                                model="m", trigger="data", policy=ComputePolicy())
    assert unfinished.duration_seconds is None and unfinished.cost is None


def test_the_month_is_paced_from_the_span_the_jobs_came_over_and_a_first_hour_counts_as_a_day():
    policy = ComputePolicy()
    ten_days = [job(f"j{i}", NOW - timedelta(days=10 - i), 600) for i in range(10)]      # 10 min a day
    t = tc.totals(ten_days, NOW, policy)
    assert t.jobs == 10 and t.job_minutes == pytest.approx(100.2, abs=0.5)
    assert t.days == pytest.approx(10, abs=0.01)
    assert t.month_job_minutes == pytest.approx(300, rel=0.01)
    assert t.month_cost == pytest.approx(300 / 60 * 0.293, rel=0.01)
    first_hour = tc.totals([job("x", NOW - timedelta(minutes=30), 600)], NOW, policy)
    assert first_hour.days == 1.0 and first_hour.month_job_minutes == pytest.approx(300, rel=0.01)
    old = tc.totals([job("old", NOW - timedelta(days=60), 600)], NOW, policy)
    assert old.job_minutes == pytest.approx(10, rel=0.01) and old.month_job_minutes == 0     # only the last 30 days
    assert tc.totals(ten_days, NOW, ComputePolicy(vm_size="Standard_Unlisted")).month_cost is None


def test_a_training_run_is_slow_only_against_enough_history_and_by_enough():
    assert tc.slowdown(600, [100, 110], 2.0) is None                        # too little history
    slow = tc.slowdown(600, [100, 110, 120, 90], 2.0)
    assert slow is not None and slow.usual_seconds == 105 and slow.factor == pytest.approx(600 / 105)
    assert tc.slowdown(190, [100, 110, 120], 2.0) is None                   # under twice the usual
    assert tc.slowdown(50, [20, 20, 20], 2.0) is None                       # twice, but 30 s more is noise
    assert tc.slowdown(300, [100, 100, 100], 3.0) is not None


def test_quiet_jobs_keep_the_settings_and_say_why():
    jobs = [job(f"j{i}", NOW - timedelta(hours=6 * i), 120, usage=JobUsage(50.0, 30.0, cpu_seconds=240,
                                                                         peak_memory_bytes=4 * GIB))
            for i in range(4)]
    got = advice(jobs)
    assert all(a.keep for a in got.values()), got
    assert "at most 1 job(s) ran at once" in got["max_nodes"].reason
    assert got["min_nodes"].suggested == "0" and "idle cluster costs nothing" in got["min_nodes"].reason
    assert "2.0 of 4 cores" in got["vm_size"].reason and "4.0 of 14 GiB" in got["vm_size"].reason
    assert tc.advise([], ComputePolicy()) == []


def test_jobs_waiting_in_the_queue_at_full_cluster_ask_for_one_more_node():
    jobs = [job(f"j{i}", NOW + timedelta(seconds=i), 600, queue=300) for i in range(4)]     # 4 at once
    got = advice(jobs, ComputePolicy(max_nodes=2))["max_nodes"]
    assert (got.current, got.suggested) == ("2", "3") and "4 job(s) ran at once" in got.reason


def test_a_busy_cluster_keeps_one_node_up():
    jobs = [job(f"j{i}", NOW + timedelta(minutes=11 * i), 600) for i in range(5)]           # back to back
    got = advice(jobs)["min_nodes"]
    assert (got.current, got.suggested) == ("0", "1") and "busy 93% of the time" in got.reason


def test_jobs_coming_just_after_scale_down_ask_for_a_longer_idle_time():
    jobs = [job(f"j{i}", NOW + timedelta(minutes=8 * i), 120) for i in range(5)]            # 6 min gaps
    got = advice(jobs, ComputePolicy(idle_seconds=120))["idle_seconds"]
    assert (got.current, got.suggested) == ("120", "432") and "4 of 4 jobs came 6 min after" in got.reason


def test_nodes_idling_more_than_working_ask_for_a_sooner_scale_down():
    nodes = ClusterUsage("cpu-cluster", minutes=1440, active_node_minutes=30, idle_node_minutes=300)
    got = advice([job("a", NOW, 600)], ComputePolicy(idle_seconds=1800), nodes)["idle_seconds"]
    assert (got.current, got.suggested) == ("1800", "120")
    assert "idled 300 node-minutes (1.46 USD) against 30 busy" in got.reason


@pytest.mark.parametrize(("usage", "suggested", "says"), [
    (JobUsage(95.0, 20.0), "Standard_F8s_v2", "CPU is the limit"),                     # cheapest with 8+ cores
    (JobUsage(40.0, 90.0), "Standard_E4s_v3", "memory is the limit"),                  # 28+ GiB, 4+ cores
    (JobUsage(5.0, 5.0), "Standard_DS2_v2", "a smaller size does the same for less"),
    (JobUsage(50.0, 50.0), "Standard_DS3_v2", "training used at most 2.0 of 4 cores"),
])
def test_the_vm_size_follows_what_limits_training(usage, suggested, says):
    got = advice([job("a", NOW, 600, usage=usage)])["vm_size"]
    assert got.suggested == suggested and says in got.reason, got


def test_a_size_outside_the_rate_table_is_kept_and_said_so():
    got = advice([job("a", NOW, 600, usage=JobUsage(95.0, 20.0))], ComputePolicy(vm_size="Standard_Custom"))
    assert got["vm_size"].keep and "not in the rate table" in got["vm_size"].reason


def test_the_policy_refuses_what_a_cluster_cannot_be():
    with pytest.raises(PolicyError, match="at least min_nodes"):
        ComputePolicy(min_nodes=3, max_nodes=2)
    with pytest.raises(PolicyError, match="negative"):
        ComputePolicy(rates={"Standard_DS3_v2": -1.0})
    assert parse_rates("") == {} and parse_rates("a=1 b=2,c=0") == {"a": 1.0, "b": 2.0, "c": 0.0}
