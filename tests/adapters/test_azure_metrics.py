"""The Azure Monitor metrics adapter against recorded, service-shaped responses.

azure-monitor-query's LogsQueryClient and azure-monitor-querymetrics' MetricsClient run for real: they build
the requests and parse the answers; their HTTP pipeline sends through a transport that records the requests and
answers like the Log Analytics query API (`POST https://api.loganalytics.io/v1/workspaces/{id}/query`) and the
regional metrics batch API (`POST https://{region}.metrics.monitor.azure.com/subscriptions/{id}/metrics:getBatch`)."""
from __future__ import annotations

import logging
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport

from lifecycle.adapters.azure_metrics import (
    AzureMonitorMetrics,
    InvalidName,
    MetricsAuthError,
    MetricsError,
    MetricsNotConfigured,
    traffic_query,
)
from lifecycle.core.platform_values import NoTrafficLogs, RequestSample, TrafficWindow
from tests.adapters.recorded import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    WORKSPACE_ID,
    FakeCredential,
    RecordedService,
    Reply,
    canned,
)

ROOT = Path(__file__).resolve().parents[2]
LA_WORKSPACE = "5b8f2c1d-3e4a-4b6c-9d7e-8f0a1b2c3d4e"
QUERY_PATH = f"/v1/workspaces/{LA_WORKSPACE}/query"
METRICS_PATH = f"/subscriptions/{SUBSCRIPTION}/metrics:getBatch"
ENDPOINT = "churn-endpoint"
ENDPOINT_ID = f"{WORKSPACE_ID}/onlineEndpoints/{ENDPOINT}"
SINCE = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
UNTIL = datetime(2025, 5, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def http() -> RecordedService:
    return RecordedService()


def _metrics(http: RecordedService, credential=None, **kwargs) -> AzureMonitorMetrics:
    options = dict(log_analytics_workspace_id=LA_WORKSPACE, metrics_region="westeurope")
    return AzureMonitorMetrics(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=credential or FakeCredential(),
                               transport=RequestsTransport(session=http.session), **{**options, **kwargs})


def _logs_answer(http: RecordedService, response: str | Reply):
    return http.route("POST", re.escape(QUERY_PATH), canned(response) if isinstance(response, str) else response)


def _logs_answers(http: RecordedService, window: str, endpoint: str):
    """The window query answered with `window`, the query for the endpoint's logged requests with `endpoint`."""
    def answer(call, match):
        return canned(endpoint if "summarize Rows = count()" in call.body["query"] else window)
    return http.route("POST", re.escape(QUERY_PATH), answer)


def _one_query(http: RecordedService):
    calls = http.requests_to("POST", re.escape(QUERY_PATH))
    assert len(calls) == 1, [str(c) for c in http.calls]
    return calls[0]


# -- cold start ---------------------------------------------------------------------------------------------

def test_importing_the_adapter_does_not_import_azure_monitor():
    code = ("import sys; import lifecycle.adapters.azure_metrics; "
            "print(sorted(m for m in sys.modules if m.startswith('azure')))")
    modules = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    assert "azure.monitor" not in modules and "azure.identity" not in modules, modules


def test_the_clients_are_created_on_first_use_and_once(http):
    _logs_answer(http, "monitor_traffic_log")
    metrics = _metrics(http)
    assert metrics._logs is None and metrics._metrics is None
    metrics.window(ENDPOINT, "green", SINCE, UNTIL)
    client = metrics.logs_client
    metrics.window(ENDPOINT, "blue", SINCE, UNTIL)
    assert metrics.logs_client is client and metrics._metrics is None
    assert len(http.requests_to("POST", re.escape(QUERY_PATH))) == 2


# -- the traffic logs ---------------------------------------------------------------------------------------

def test_window_queries_the_traffic_log_of_one_deployment(http):
    _logs_answer(http, "monitor_traffic_log")
    _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)

    call = _one_query(http)
    assert call.url.startswith(f"https://api.loganalytics.io{QUERY_PATH}")
    assert call.headers["Authorization"] == "Bearer fake-token"
    assert call.body["timespan"] == "2025-05-01T10:00:00.000Z/2025-05-01T10:30:00.000Z"
    query = call.body["query"]
    assert "AmlOnlineEndpointTrafficLog" in query
    assert 'EndpointName =~ "churn-endpoint" and DeploymentName =~ "green"' in query
    assert ("TimeGenerated >= datetime(2025-05-01T10:00:00.000000Z) and "
            "TimeGenerated < datetime(2025-05-01T10:30:00.000000Z)") in query
    assert "Status = toint(ResponseCode)" in query and "LatencyMs = todouble(TotalDurationMs)" in query
    assert "summarize Requests = count(), ServerErrors = countif(Status >= 500 or ModelStatus >= 500)" in query
    assert "top 20000 by TimeGenerated desc" in query
    assert not http.unrouted


def test_window_reads_counts_and_samples(http):
    _logs_answer(http, "monitor_traffic_log")
    window = _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)

    assert isinstance(window, TrafficWindow)
    assert (window.deployment, window.requests, window.server_errors) == ("green", 1250, 3)
    assert [s.status for s in window.samples] == [200, 429, 503, 500, 200]      # oldest first; 424 + model 500 -> 500
    assert [s.latency_ms for s in window.samples] == [41.5, 2.0, 5012.0, 57.0, 38.0]
    assert [s.request_id for s in window.samples] == [
        "3e2d1c0b-7a69-4f58-8e47-1d2c3b4a5f05", "a41b7f0e-93c2-4d7a-b1e5-0c6d8e9f4a04",
        "churn-7f3a-0041",                                 # no x-request-id logged: the client's request id
        "0d9e2b7c-55aa-4c3b-8f1e-2a7d9c4b3e02", "8c1f6a52-2b3e-4f61-9d0a-6e0f3c2a1b01"]
    first = window.samples[0]
    assert first == RequestSample(time=datetime(2025, 5, 1, 10, 15, tzinfo=UTC).timestamp(), status=200,
                                  latency_ms=41.5, request_id="3e2d1c0b-7a69-4f58-8e47-1d2c3b4a5f05")
    last = datetime(2025, 5, 1, 10, 29, 41, 531290, tzinfo=UTC)
    assert window.samples[-1].time == pytest.approx(last.timestamp())


def test_an_empty_window_has_no_requests_if_the_endpoint_logs_its_traffic(http):
    _logs_answers(http, "monitor_traffic_log_empty", "monitor_endpoint_rows")
    assert _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL) == TrafficWindow("green", (), 0, 0)
    check = http.requests_to("POST", re.escape(QUERY_PATH))[-1].body
    assert check["timespan"] == "2025-04-30T10:30:00.000Z/2025-05-01T10:30:00.000Z"         # the day before
    assert 'EndpointName =~ "churn-endpoint"' in check["query"] and "DeploymentName" not in check["query"]


def test_an_endpoint_without_any_traffic_log_says_to_check_its_diagnostic_setting(http):
    _logs_answers(http, "monitor_traffic_log_empty", "monitor_endpoint_rows_none")
    with pytest.raises(NoTrafficLogs) as raised:
        _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)
    assert str(raised.value).startswith(
        f"no traffic logs for churn-endpoint in Log Analytics workspace {LA_WORKSPACE}: is the endpoint's "
        "diagnostic setting there (AmlOnlineEndpointTrafficLog)?")
    assert isinstance(raised.value, MetricsNotConfigured)


def test_a_window_with_requests_needs_no_second_query(http):
    _logs_answers(http, "monitor_traffic_log", "monitor_endpoint_rows_none")
    assert _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL).requests == 1250
    _one_query(http)


def test_the_sample_cap_is_configurable(http):
    _logs_answer(http, "monitor_traffic_log")
    window = _metrics(http, sample_limit=500).window(ENDPOINT, "green", SINCE, UNTIL)
    assert "top 500 by TimeGenerated desc" in _one_query(http).body["query"]
    assert window.requests >= len(window.samples)


def test_until_defaults_to_now_and_naive_times_are_utc(http):
    _logs_answer(http, "monitor_traffic_log")
    before = datetime.now(UTC)
    _metrics(http).window(ENDPOINT, "green", datetime(2025, 5, 1, 10, 0))
    start, end = _one_query(http).body["timespan"].split("/")
    assert start == "2025-05-01T10:00:00.000Z"
    assert datetime.fromisoformat(end.replace("Z", "+00:00")) >= before.replace(microsecond=0)


def test_an_empty_time_range_is_refused_before_any_request(http):
    with pytest.raises(ValueError, match="empty metrics window"):
        _metrics(http).window(ENDPOINT, "green", UNTIL, SINCE)
    assert not http.calls


def test_a_partial_result_is_used_and_its_error_logged(http, caplog):
    _logs_answer(http, "monitor_traffic_log_partial")
    with caplog.at_level(logging.WARNING, logger="lifecycle.adapters.azure_metrics"):
        window = _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)

    # no total row came back: the counts are what the samples show
    assert (window.requests, window.server_errors) == (2, 1)
    assert [s.status for s in window.samples] == [500, 200]
    message = caplog.text
    assert "churn-endpoint/green" in message and "PartialError" in message
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in message


# -- names and settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint, deployment", [
    (ENDPOINT, 'green" or 1 == 1 or "'),
    (ENDPOINT, "green'"),
    (ENDPOINT, "green\n| take 1"),
    (ENDPOINT, "gr"),                              # too short
    (ENDPOINT, "-green"),
    (ENDPOINT, "g" * 33),                          # too long
    (ENDPOINT, ""),
    ('churn"endpoint', "green"),
    ("churn endpoint", "green"),
])
def test_names_that_are_not_azure_ml_names_are_refused_before_any_request(http, endpoint, deployment):
    _logs_answer(http, "monitor_traffic_log")
    metrics = _metrics(http)
    with pytest.raises(InvalidName, match="not a valid Azure ML"):
        metrics.window(endpoint, deployment, SINCE, UNTIL)
    with pytest.raises(InvalidName):
        metrics.aggregates(endpoint, deployment, SINCE, UNTIL)
    with pytest.raises(ValueError):                # InvalidName is a ValueError too
        traffic_query(endpoint, deployment, SINCE, UNTIL)
    assert not http.calls


@pytest.mark.parametrize("workspace, reason", [
    ("", "set LOG_ANALYTICS_WORKSPACE_ID"),
    ("/subscriptions/x/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law-mlops",
     "not a Log Analytics workspace ID"),
    ("law-mlops", "not a Log Analytics workspace ID"),
])
def test_a_missing_or_malformed_workspace_is_a_clear_error(http, workspace, reason):
    with pytest.raises(MetricsNotConfigured, match=reason):
        _metrics(http, log_analytics_workspace_id=workspace).window(ENDPOINT, "green", SINCE, UNTIL)
    assert not http.calls


def test_a_workspace_without_the_traffic_table_says_to_add_the_diagnostic_setting(http):
    _logs_answer(http, Reply(400, canned("monitor_error_missing_table")))
    with pytest.raises(NoTrafficLogs, match="diagnostic setting") as raised:
        _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)
    assert str(raised.value).startswith(f"no traffic logs for churn-endpoint in Log Analytics workspace {LA_WORKSPACE}")
    assert "Failed to resolve table or column expression named 'AmlOnlineEndpointTrafficLog'" in str(raised.value)
    assert isinstance(raised.value, MetricsNotConfigured)


def test_an_unknown_workspace_is_a_clear_error(http):
    _logs_answer(http, Reply(404, canned("monitor_error_workspace_not_found")))
    with pytest.raises(MetricsNotConfigured, match="workspace was not found.*LOG_ANALYTICS_WORKSPACE_ID"):
        _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_is_an_auth_error(http, status):
    _logs_answer(http, Reply(status, canned("monitor_error_forbidden")))
    with pytest.raises(MetricsAuthError, match="Log Analytics Reader") as raised:
        _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)
    assert "InsufficientAccessError" in str(raised.value) and LA_WORKSPACE in str(raised.value)


def test_a_credential_that_cannot_get_a_token_is_an_auth_error(http):
    class NoToken(FakeCredential):
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

        def get_token_info(self, *scopes, options=None):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    with pytest.raises(MetricsAuthError, match="failed to retrieve a token"):
        _metrics(http, credential=NoToken()).window(ENDPOINT, "green", SINCE, UNTIL)
    assert not http.calls


def test_other_query_failures_say_what_failed(http):
    _logs_answer(http, Reply(400, {"error": {"code": "BadArgumentError",
                                             "message": "The request had some invalid properties"}}))
    with pytest.raises(MetricsError, match="churn-endpoint/green.*HTTP 400: BadArgumentError"):
        _metrics(http).window(ENDPOINT, "green", SINCE, UNTIL)


# -- platform metrics -----------------------------------------------------------------------------------------

def _metrics_answer(http: RecordedService):
    def answer(call, match):
        names = call.query["metricnames"][0]
        response = "monitor_metrics_requests" if names == "RequestsPerMinute" else "monitor_metrics_latency"
        return canned(response, endpoint_id=ENDPOINT_ID)
    return http.route("POST", re.escape(METRICS_PATH), answer)


def test_aggregates_query_the_endpoint_metrics_by_deployment(http):
    _metrics_answer(http)
    _metrics(http).aggregates(ENDPOINT, "green", SINCE, UNTIL)

    calls = http.requests_to("POST", re.escape(METRICS_PATH))
    assert len(calls) == 2 and not http.unrouted
    counts, latency = calls
    for call in calls:
        assert call.url.startswith(f"https://westeurope.metrics.monitor.azure.com{METRICS_PATH}")
        assert call.body == {"resourceids": [ENDPOINT_ID]}
        assert call.query["metricnamespace"] == ["Microsoft.MachineLearningServices/workspaces/onlineEndpoints"]
        assert call.query["starttime"] == ["2025-05-01T10:00:00.000Z"]
        assert call.query["endtime"] == ["2025-05-01T10:30:00.000Z"]
        assert call.query["interval"] == ["PT1M"] and call.query["aggregation"] == ["Average"]
        assert call.headers["Authorization"] == "Bearer fake-token"
    assert counts.query["metricnames"] == ["RequestsPerMinute"]
    assert counts.query["filter"] == ["deployment eq 'green' and statusCodeClass eq '*' and modelStatusCode eq '*'"]
    assert latency.query["metricnames"] == [
        "RequestLatency,RequestLatency_P50,RequestLatency_P90,RequestLatency_P95,RequestLatency_P99"]
    assert latency.query["filter"] == ["deployment eq 'green'"]


def test_aggregates_count_requests_errors_and_latency(http):
    _metrics_answer(http)
    found = _metrics(http).aggregates(ENDPOINT, "green", SINCE, UNTIL)

    assert (found.deployment, found.requests, found.server_errors, found.minutes) == ("green", 305, 4, 3)
    assert found.status_classes == {"2xx": 300, "4xx": 4, "5xx": 1}
    # per-minute values weighted by that minute's requests (103, 121, 81)
    assert found.latency_ms["p95"] == pytest.approx((103 * 40 + 121 * 60 + 81 * 50) / 305)
    assert found.latency_ms["p99"] == pytest.approx((103 * 52 + 121 * 90) / 224)      # no value for 10:02
    assert found.worst_minute_ms == {"mean": 42, "p50": 40, "p90": 55, "p95": 60, "p99": 90}
    assert found.traffic_window() == TrafficWindow("green", (), 305, 4)


def test_aggregates_need_the_endpoint_region(http):
    with pytest.raises(MetricsNotConfigured, match="AZURE_LOCATION"):
        _metrics(http, metrics_region="").aggregates(ENDPOINT, "green", SINCE, UNTIL)
    assert not http.calls


def test_aggregates_refused_is_an_auth_error(http):
    http.route("POST", re.escape(METRICS_PATH), Reply(403, {"error": {
        "code": "AuthorizationFailed", "message": "The client does not have authorization to perform action "
                                                  "'Microsoft.Insights/metrics/read'"}}))
    with pytest.raises(MetricsAuthError, match="Monitoring Reader") as raised:
        _metrics(http).aggregates(ENDPOINT, "green", SINCE, UNTIL)
    assert "AuthorizationFailed" in str(raised.value) and "churn-endpoint/green" in str(raised.value)


def test_traffic_logs_are_not_needed_for_aggregates(http):
    _metrics_answer(http)
    found = _metrics(http, log_analytics_workspace_id="").aggregates(ENDPOINT, "green", SINCE, UNTIL)
    assert found.requests == 305


def test_query_text_is_stable():
    query = traffic_query(ENDPOINT, "blue", SINCE, SINCE + timedelta(minutes=5), 10)
    assert query.startswith("let Traffic = materialize(AmlOnlineEndpointTrafficLog")
    assert 'DeploymentName =~ "blue"' in query and "top 10 by TimeGenerated desc" in query
