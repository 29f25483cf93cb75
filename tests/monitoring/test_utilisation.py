"""The scaling recommendation from a deployment's utilisation and traffic."""
from __future__ import annotations

import json

import pytest

from lifecycle.core.platform_values import RequestSample, TrafficWindow, Utilisation
from lifecycle.core.scaling import ScalePolicy, recommend

KEYS = {"deployment", "request_rate", "latency_ms", "error_rate", "cpu_percent", "memory_percent", "instances",
        "recommendation", "reasons"}


def traffic(latencies=(40.0,) * 30, errors: int = 0, requests: int | None = None) -> TrafficWindow:
    samples = tuple(RequestSample(time=1000.0 + i, status=500 if i < errors else 200, latency_ms=ms)
                    for i, ms in enumerate(latencies))
    return TrafficWindow("blue", samples, len(samples) if requests is None else requests, errors)


def usage(cpu=50.0, memory=40.0, instances=2) -> Utilisation:
    return Utilisation("blue", cpu, memory, instances)


def test_the_answer_has_exactly_the_documented_fields_and_is_json():
    found = recommend(usage(), traffic(latencies=[10.0, 20.0, 30.0, 40.0, 50.0] * 6, errors=3), 60)
    assert set(found) == KEYS and set(found["latency_ms"]) == {"p50", "p95"}
    assert found["deployment"] == "blue" and found["instances"] == 2
    assert found["request_rate"] == 0.5 and found["error_rate"] == 0.1
    assert found["latency_ms"] == {"p50": 30.0, "p95": 50.0}
    assert json.loads(json.dumps(found, allow_nan=False)) == found


@pytest.mark.parametrize("cpu, memory, reason", [
    (85.0, 40.0, "CPU 85.0% is above 70%"),
    (50.0, 91.0, "memory 91.0% is above 80%"),
])
def test_high_cpu_or_memory_scales_up(cpu, memory, reason):
    found = recommend(usage(cpu, memory), traffic(), 60)
    assert found["recommendation"] == "scale_up" and found["reasons"] == [reason]


def test_slow_requests_scale_up_only_with_enough_of_them():
    slow = recommend(usage(), traffic(latencies=[1500.0] * 25), 60)
    assert slow["recommendation"] == "scale_up"
    assert "p95 latency 1500 ms is above 1000 ms over 25 requests" in slow["reasons"]

    few = recommend(usage(), traffic(latencies=[1500.0] * 5), 60)
    assert few["recommendation"] == "keep"
    assert any("only 5 requests" in r and "latency not judged" in r for r in few["reasons"])


def test_an_idle_deployment_with_spare_instances_scales_down():
    found = recommend(usage(cpu=5.0, memory=30.0, instances=3), traffic(), 60)
    assert found["recommendation"] == "scale_down"
    assert found["reasons"] == ["CPU 5.0% is below 20% and memory 30.0% below 50% on 3 instances"]


def test_an_idle_deployment_on_one_instance_keeps_it():
    found = recommend(usage(cpu=5.0, memory=30.0, instances=1), traffic(), 60)
    assert found["recommendation"] == "keep" and "already at 1 instance" in found["reasons"][0]


def test_moderate_load_keeps():
    found = recommend(usage(cpu=45.0, memory=60.0), traffic(), 60)
    assert found["recommendation"] == "keep" and "within" in found["reasons"][0]


def test_idle_cpu_with_busy_memory_keeps():
    assert recommend(usage(cpu=5.0, memory=65.0, instances=4), traffic(), 60)["recommendation"] == "keep"


def test_missing_figures_give_no_recommendation_and_say_so():
    found = recommend(Utilisation("blue", None, None), TrafficWindow("blue", (), 0, 0), 300)
    assert found["recommendation"] == "keep"
    assert found["cpu_percent"] is None and found["memory_percent"] is None and found["instances"] is None
    assert found["error_rate"] is None and found["latency_ms"] == {"p50": None, "p95": None}
    assert found["request_rate"] == 0.0
    text = " | ".join(found["reasons"])
    assert "no recommendation from missing data" in text
    assert "no CPU figure" in text and "no memory figure" in text and "no per-request latencies" in text
    json.dumps(found, allow_nan=False)


def test_a_missing_figure_never_scales_down_but_a_present_one_can_scale_up():
    assert recommend(usage(cpu=None, memory=10.0, instances=3), traffic(), 60)["recommendation"] == "keep"
    assert recommend(usage(cpu=None, memory=95.0), traffic(), 60)["recommendation"] == "scale_up"
    unknown = recommend(usage(cpu=5.0, memory=10.0, instances=None), traffic(), 60)
    assert unknown["recommendation"] == "keep" and "instance count is unknown" in unknown["reasons"][0]


def test_non_finite_figures_count_as_missing():
    found = recommend(usage(cpu=float("nan"), memory=float("inf")), traffic(), 60)
    assert found["cpu_percent"] is None and found["memory_percent"] is None
    json.dumps(found, allow_nan=False)


def test_aggregate_traffic_without_samples_has_rates_but_no_latency():
    found = recommend(usage(), TrafficWindow("blue", (), 600, 6), 300)
    assert found["request_rate"] == 2.0 and found["error_rate"] == 0.01
    assert found["latency_ms"] == {"p50": None, "p95": None}


def test_the_policy_is_configurable_and_checked():
    strict = ScalePolicy(cpu_high_percent=40.0, latency_p95_limit_ms=30.0, min_requests=5)
    found = recommend(usage(cpu=45.0), traffic(latencies=[35.0] * 10), 60, strict)
    assert found["recommendation"] == "scale_up" and len(found["reasons"]) == 2
    with pytest.raises(ValueError, match="CPU marks"):
        ScalePolicy(cpu_low_percent=80.0)
    with pytest.raises(ValueError, match="memory marks"):
        ScalePolicy(memory_high_percent=120.0)
    with pytest.raises(ValueError, match="window_seconds"):
        recommend(usage(), traffic(), 0)
