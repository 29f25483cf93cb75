"""A deployment's CPU, memory and instance count from Azure Monitor platform metrics, against recorded,
service-shaped answers of the regional metrics batch API (azure-monitor-querymetrics' MetricsClient runs for real).

The metrics live on the deployment resource, not the endpoint: resource type
Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments, metrics CpuUtilizationPercentage,
CpuMemoryUtilizationPercentage (dimension instanceId) and DeploymentCapacity (instanceId, State)."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from lifecycle.adapters.azure_metrics import AzureMonitorMetrics, InvalidName, MetricsAuthError, MetricsError
from lifecycle.core.platform_values import Utilisation
from tests.adapters.recorded import (
    METRICS_PATH,
    WORKSPACE_ID,
    RecordedService,
    Reply,
    canned,
    monitor_metrics,
)

ENDPOINT = "churn-endpoint"
DEPLOYMENT_ID = f"{WORKSPACE_ID}/onlineEndpoints/{ENDPOINT}/deployments/green"
SINCE = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
UNTIL = datetime(2025, 5, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def http() -> RecordedService:
    return RecordedService()


def _metrics(http: RecordedService) -> AzureMonitorMetrics:
    return monitor_metrics(http, "westeurope")


def _answer(http: RecordedService):
    def answer(call, match):
        names = call.query["metricnames"][0]
        return canned("monitor_metrics_capacity" if names == "DeploymentCapacity" else "monitor_metrics_utilisation",
                      deployment_id=DEPLOYMENT_ID)
    return http.route("POST", re.escape(METRICS_PATH), answer)


def test_utilisation_queries_the_deployment_resource(http):
    _answer(http)
    _metrics(http).utilisation(ENDPOINT, "green", SINCE, UNTIL)

    calls = http.requests_to("POST", re.escape(METRICS_PATH))
    assert len(calls) == 2 and not http.unrouted
    usage, capacity = calls
    for call in calls:
        assert call.url.startswith(f"https://westeurope.metrics.monitor.azure.com{METRICS_PATH}")
        assert call.body == {"resourceids": [DEPLOYMENT_ID]}
        assert call.query["metricnamespace"] == [
            "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"]
        assert call.query["starttime"] == ["2025-05-01T10:00:00.000Z"]
        assert call.query["endtime"] == ["2025-05-01T10:30:00.000Z"]
        assert call.query["interval"] == ["PT1M"]
    assert usage.query["metricnames"] == ["CpuUtilizationPercentage,CpuMemoryUtilizationPercentage"]
    assert usage.query["filter"] == ["instanceId eq '*'"] and usage.query["aggregation"] == ["Average"]
    assert capacity.query["metricnames"] == ["DeploymentCapacity"] and "filter" not in capacity.query
    assert capacity.query["aggregation"] == ["Average,Maximum"]


def test_utilisation_is_the_mean_over_instances_and_minutes(http):
    _answer(http)
    found = _metrics(http).utilisation(ENDPOINT, "green", SINCE, UNTIL)

    assert isinstance(found, Utilisation) and found.deployment == "green"
    assert found.cpu_percent == pytest.approx((60 + 80 + 90 + 70 + 80) / 5)       # the second instance from 10:01
    assert found.memory_percent == pytest.approx((40 + 42 + 44 + 30 + 32) / 5)
    assert found.instances == 2                                                    # DeploymentCapacity at 10:02
    assert found.detail == {"cpu_max_percent": 90, "memory_max_percent": 44, "instances_max": 2,
                            "instances_reporting": 2, "minutes": 3}


def test_a_window_without_data_has_no_figures(http):
    def answer(call, match):
        if call.query["metricnames"][0] != "DeploymentCapacity":
            return canned("monitor_metrics_utilisation_empty", deployment_id=DEPLOYMENT_ID)
        body = canned("monitor_metrics_capacity", deployment_id=DEPLOYMENT_ID)
        body["values"][0]["value"][0]["timeseries"] = []         # no instance reported in the window
        return body
    http.route("POST", re.escape(METRICS_PATH), answer)
    found = _metrics(http).utilisation(ENDPOINT, "green", SINCE, UNTIL)
    assert (found.cpu_percent, found.memory_percent, found.instances) == (None, None, None)


def test_utilisation_refused_is_an_auth_error(http):
    http.route("POST", re.escape(METRICS_PATH), Reply(403, {"error": {
        "code": "AuthorizationFailed", "message": "The client does not have authorization to perform action "
                                                  "'Microsoft.Insights/metrics/read'"}}))
    with pytest.raises(MetricsAuthError, match="Monitoring Reader") as raised:
        _metrics(http).utilisation(ENDPOINT, "green", SINCE, UNTIL)
    assert "churn-endpoint/green" in str(raised.value)


def test_other_failures_say_what_failed(http):
    http.route("POST", re.escape(METRICS_PATH), Reply(400, {"error": {
        "code": "BadRequest", "message": "Failed to find metric configuration for provider"}}))
    with pytest.raises(MetricsError, match="churn-endpoint/green.*HTTP 400: BadRequest"):
        _metrics(http).utilisation(ENDPOINT, "green", SINCE, UNTIL)


def test_bad_names_are_refused_before_any_request(http):
    with pytest.raises(InvalidName):
        _metrics(http).utilisation(ENDPOINT, "green' or '1", SINCE, UNTIL)
    assert not http.calls
