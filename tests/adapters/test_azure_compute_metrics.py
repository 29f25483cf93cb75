"""Training compute from Azure Monitor's workspace metrics, against recorded, service-shaped answers of the
regional metrics batch API (azure-monitor-querymetrics' MetricsClient runs for real).

Metric names and dimensions as Azure Monitor's reference "Supported metrics -
Microsoft.MachineLearningServices/workspaces" gives them: CpuUtilizationPercentage and
CpuMemoryUtilizationPercentage (RunId, InstanceId, ComputeName), Active/Idle/Unusable Nodes (Scenario, ClusterName)."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from lifecycle.adapters.azure_metrics import AzureMonitorMetrics, MetricsAuthError, MetricsError
from lifecycle.core.platform_values import ClusterUsage, JobStatus, JobUsage
from tests.adapters.recorded import (
    METRICS_PATH,
    WORKSPACE_ID,
    RecordedService,
    Reply,
    canned,
    monitor_metrics,
)

JOB = "train-churn-data-7f3a"
FINISHED = JobStatus(name=JOB, status="Completed", created="2025-05-01T09:12:33+00:00",
                     started="2025-05-01T09:14:02+00:00", ended="2025-05-01T09:17:40+00:00", compute="cpu-cluster")
SINCE = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
UNTIL = datetime(2025, 5, 1, 10, 10, tzinfo=UTC)


@pytest.fixture
def http() -> RecordedService:
    return RecordedService()


def _metrics(http: RecordedService) -> AzureMonitorMetrics:
    return monitor_metrics(http, "eastus")


def _answer(http: RecordedService) -> None:
    def answer(call, match):
        names = call.query["metricnames"][0]
        if "Active Nodes" in names:
            return canned("monitor_metrics_cluster_nodes", cluster="cpu-cluster")
        if "ComputeName" in call.query.get("filter", [""])[0]:
            return canned("monitor_metrics_cluster_usage", cluster="cpu-cluster")
        return canned("monitor_metrics_job_usage", job=JOB)
    http.route("POST", re.escape(METRICS_PATH), answer)


def test_job_usage_queries_the_workspace_metrics_of_the_run(http):
    _answer(http)
    _metrics(http).job_usage(FINISHED)

    [call] = http.requests_to("POST", re.escape(METRICS_PATH))
    assert call.url.startswith(f"https://eastus.metrics.monitor.azure.com{METRICS_PATH}")
    assert call.body == {"resourceids": [WORKSPACE_ID]}
    assert call.query["metricnamespace"] == ["Microsoft.MachineLearningServices/workspaces"]
    assert call.query["metricnames"] == ["CpuUtilizationPercentage,CpuMemoryUtilizationPercentage"]
    assert call.query["filter"] == [f"RunId eq '{JOB}' and InstanceId eq '*'"]
    assert call.query["aggregation"] == ["Average,Maximum"] and call.query["interval"] == ["PT1M"]
    assert call.query["starttime"] == ["2025-05-01T09:14:02.000Z"]          # the run's window, not the queue's
    assert call.query["endtime"] == ["2025-05-01T09:17:40.000Z"]


def test_job_usage_over_a_run_on_two_nodes(http):
    _answer(http)
    usage = _metrics(http).job_usage(FINISHED)
    assert isinstance(usage, JobUsage)
    assert usage.cpu_percent == pytest.approx((50 + 90 + 70 + 30 + 10 + 80 + 60) / 7)   # mean of nodes × minutes
    assert usage.memory_percent == 72                                                  # the peak (Maximum)
    assert usage.nodes == 2                                                            # two InstanceIds


def test_a_running_job_is_read_up_to_now(http):
    _answer(http)
    running = JobStatus(name=JOB, status="Running", started="2025-05-01T09:14:02+00:00")
    _metrics(http).job_usage(running)
    [call] = http.requests_to("POST", re.escape(METRICS_PATH))
    end = datetime.fromisoformat(call.query["endtime"][0].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - end).total_seconds()) < 60


def test_a_job_not_started_or_without_data_has_no_usage(http):
    assert _metrics(http).job_usage(JobStatus(name=JOB, status="Queued")) is None
    assert not http.calls                                                     # nothing asked
    empty = canned("monitor_metrics_job_usage", job=JOB)
    for metric in empty["values"][0]["value"]:
        metric["timeseries"] = []
    http.route("POST", re.escape(METRICS_PATH), empty)
    assert _metrics(http).job_usage(FINISHED) is None


def test_cluster_usage_counts_active_and_idle_node_minutes(http):
    _answer(http)
    usage = _metrics(http).cluster_usage("cpu-cluster", SINCE, UNTIL)

    assert isinstance(usage, ClusterUsage) and usage.cluster == "cpu-cluster" and usage.minutes == 10
    assert usage.active_node_minutes == 8 and usage.idle_node_minutes == 8 and usage.unusable_node_minutes == 1
    assert usage.peak_nodes == 3                                         # 10:04: two active and one idle
    assert usage.cpu_percent == pytest.approx(60) and usage.memory_percent == pytest.approx(40)
    nodes, utilisation = http.requests_to("POST", re.escape(METRICS_PATH))
    assert nodes.query["metricnames"] == ["Active Nodes,Idle Nodes,Unusable Nodes"]
    assert nodes.query["filter"] == ["ClusterName eq 'cpu-cluster'"] and nodes.query["aggregation"] == ["Average"]
    assert utilisation.query["filter"] == ["ComputeName eq 'cpu-cluster'"]
    assert nodes.body == utilisation.body == {"resourceids": [WORKSPACE_ID]}


def test_a_long_window_uses_a_five_minute_grain_and_the_same_node_minutes(http):
    def answer(call, match):
        name = "monitor_metrics_cluster_nodes" if "Active" in call.query["metricnames"][0] else \
            "monitor_metrics_cluster_usage"
        body = canned(name, cluster="cpu-cluster")
        body["values"][0]["interval"] = "PT5M"
        return body
    http.route("POST", re.escape(METRICS_PATH), answer)
    usage = _metrics(http).cluster_usage("cpu-cluster", SINCE, datetime(2025, 5, 3, 10, 0, tzinfo=UTC))
    assert {c.query["interval"][0] for c in http.calls} == {"PT5M"}
    assert usage.active_node_minutes == 8 * 5 and usage.idle_node_minutes == 8 * 5     # an average × 5 minutes


def test_a_refused_metrics_read_says_which_role_is_missing(http):
    http.route("POST", re.escape(METRICS_PATH), Reply(403, {"error": {
        "code": "AuthorizationFailed", "message": "The client 'func-mlops' does not have authorization to perform "
                                                  "action 'Microsoft.Insights/metrics/read' over scope "
                                                  f"'{WORKSPACE_ID}'"}}))
    with pytest.raises(MetricsAuthError, match="Monitoring Reader role on the workspace") as raised:
        _metrics(http).job_usage(FINISHED)
    assert f"job {JOB}" in str(raised.value) and "AuthorizationFailed" in str(raised.value)
    with pytest.raises(MetricsAuthError, match="cluster cpu-cluster.*Monitoring Reader"):
        _metrics(http).cluster_usage("cpu-cluster", SINCE, UNTIL)


def test_other_failures_say_what_failed(http):
    http.route("POST", re.escape(METRICS_PATH), Reply(400, {"error": {
        "code": "BadRequest", "message": "Failed to find metric configuration for provider"}}))
    with pytest.raises(MetricsError, match="cluster cpu-cluster.*HTTP 400: BadRequest"):
        _metrics(http).cluster_usage("cpu-cluster", SINCE, UNTIL)


def test_names_that_could_change_the_filter_are_refused_before_any_request(http):
    with pytest.raises(ValueError, match="not a valid Azure ML compute name"):
        _metrics(http).cluster_usage("cpu' or ClusterName eq '*", SINCE, UNTIL)
    with pytest.raises(ValueError, match="not a valid Azure ML job name"):
        _metrics(http).job_usage(JobStatus(name="x' or RunId eq '*", status="Completed",
                                           started="2025-05-01T09:14:02+00:00"))
    assert not http.calls
