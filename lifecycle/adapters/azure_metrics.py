"""The Metrics port on Azure Monitor: what one deployment of a managed online endpoint served over a window.

Per request (`window`): the endpoint's traffic logs in Log Analytics, table `AmlOnlineEndpointTrafficLog`
(a diagnostic setting on the endpoint sends them to the workspace named by LOG_ANALYTICS_WORKSPACE_ID),
read with azure-monitor-query's `LogsQueryClient`. One query answers both the exact counts over the window
(requests, server errors) and the most recent `sample_limit` requests (time, status, latency, request id).

Aggregates only (`aggregates`): the endpoint's platform metrics (1-minute grain, dimension `deployment`),
`RequestsPerMinute` split by `statusCodeClass` and `modelStatusCode`, and `RequestLatency`/`_P50/_P90/_P95/_P99`,
read with the `MetricsClient` of azure-monitor-querymetrics (azure-monitor-query 2.x has no metrics client).
They need no diagnostic setting, but give no per-request samples.

Compute (`utilisation`): the platform metrics of the deployment resource itself
(.../onlineEndpoints/{endpoint}/deployments/{deployment}, namespace ...onlineEndpoints/deployments; dimension
`instanceId`, no `deployment` dimension): `CpuUtilizationPercentage` and `CpuMemoryUtilizationPercentage`, each a
percentage of one instance, and `DeploymentCapacity`, the number of instances.

Training compute (`job_usage`, `cluster_usage`): the workspace's own platform metrics, by job (RunId) and by
cluster (ClusterName, ComputeName); names and reading in azure_cluster_metrics.py.

What counts as a server error: a 5xx answer, or a failure of the model itself, which the endpoint answers as
424 with the model's status in `ModelStatusCode` (500 when score.py raises). A sample of such a request
carries the model's status, so the samples' 5xx agree with `server_errors`.

Traffic logs reach Log Analytics a few minutes after the requests (ingestion delay): a window that ends now
is missing its last minutes. Neither SDK is imported before the first query (cold start)."""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.adapters.azure_cluster_metrics import (
    CPU_METRIC,
    MEMORY_METRIC,
    NODE_METRICS,
    WORKSPACE_NAMESPACE,
    cluster_filters,
    cluster_grain,
    cluster_usage_of,
    job_filter,
    job_usage_of,
)
from lifecycle.adapters.azure_monitor_answers import (
    CAPACITY_METRIC,
    LATENCY_METRICS,
    UTILISATION_METRICS,
    PlatformAggregates,
    aggregates_of,
    as_utc,
    cell,
    describe_partial_error,
    service_error,
    traffic_window_of,
    utilisation_of,
)
from lifecycle.adapters.azure_workspace import default_credential
from lifecycle.adapters.lazy_client import lazy_client
from lifecycle.core.platform_values import ClusterUsage, JobStatus, JobUsage, NoTrafficLogs, TrafficWindow, Utilisation

log = logging.getLogger(__name__)

TRAFFIC_TABLE = "AmlOnlineEndpointTrafficLog"
SAMPLE_LIMIT = 20_000
# An empty window is only a deployment without traffic if the endpoint has logged requests lately.
ENDPOINT_LOOKBACK = timedelta(days=1)
METRICS_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
WORKSPACE_SETTING = "LOG_ANALYTICS_WORKSPACE_ID"
REGION_SETTING = "AZURE_LOCATION"

# Azure ML's rule for endpoint and deployment names: 3-32 letters, digits and hyphens, starting with a letter
# and not ending with a hyphen. Only such names are put into a query.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class MetricsError(RuntimeError):
    """Azure Monitor could not answer for a deployment's traffic."""


class MetricsNotConfigured(MetricsError):
    """The adapter lacks a setting it needs for this query."""


class MetricsAuthError(MetricsError):
    """The credential was refused, or has no read access to the logs or metrics."""


class TrafficLogsMissing(MetricsNotConfigured, NoTrafficLogs):
    """The workspace holds no traffic log of the endpoint at all: its diagnostic setting is missing."""


class InvalidName(MetricsError, ValueError):
    """An endpoint or deployment name that is not a valid Azure ML name (refused before any request)."""


class AzureMonitorMetrics:
    """Request metrics of Azure ML managed online deployments from Azure Monitor.

    `log_analytics_workspace_id` is the Log Analytics workspace ID (a GUID, "Workspace ID" on the workspace's
    overview page) that receives the endpoint's AmlOnlineEndpointTrafficLog. `metrics_region` is the
    endpoint's region (e.g. "westeurope"), for the regional metrics endpoint; `metrics_endpoint` overrides the
    URL (sovereign clouds). `credential=None` means DefaultAzureCredential. `client_kwargs` go to both
    clients unchanged; tests pass `transport=` there."""

    def __init__(self, subscription_id: str, resource_group: str, workspace_name: str, *,
                 log_analytics_workspace_id: str = "", metrics_region: str = "", metrics_endpoint: str = "",
                 sample_limit: int = SAMPLE_LIMIT, credential: Any = None, **client_kwargs: Any) -> None:
        if not (subscription_id and resource_group and workspace_name):
            raise MetricsNotConfigured("the Azure ML workspace is not configured: set AZURE_SUBSCRIPTION_ID, "
                                       "AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE")
        if sample_limit < 1:
            raise ValueError(f"sample_limit must be at least 1, not {sample_limit}")
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace_name = workspace_name
        self.log_analytics_workspace_id = (log_analytics_workspace_id or "").strip()
        region = (metrics_region or "").strip().lower()
        regional = f"https://{region}.metrics.monitor.azure.com" if region else ""
        self.metrics_endpoint = (metrics_endpoint or regional).rstrip("/")
        self.sample_limit = sample_limit
        self._credential = credential
        self._client_kwargs = client_kwargs
        self._logs: Any = None
        self._metrics: Any = None

    # -- the port --------------------------------------------------------------------------------------

    def window(self, endpoint: str, deployment: str, since: datetime, until: datetime | None = None) -> TrafficWindow:
        """Counts and per-request samples of `deployment` on `endpoint` in [since, until) from the traffic logs."""
        endpoint, deployment = _valid_name("endpoint", endpoint), _valid_name("deployment", deployment)
        start, end = _span(since, until)
        workspace_id = self._workspace_id()
        query = traffic_query(endpoint, deployment, start, end, self.sample_limit)
        from azure.core.exceptions import HttpResponseError
        from azure.monitor.query import LogsQueryStatus
        try:
            result = self.logs_client.query_workspace(workspace_id, query, timespan=(start, end))
        except HttpResponseError as err:
            raise self._logs_error(err, endpoint, deployment) from err
        if result.status == LogsQueryStatus.PARTIAL:
            tables = result.partial_data or []
            log.warning("Log Analytics answered part of the traffic query for %s/%s (%s to %s): %s; "
                        "using the rows it returned", endpoint, deployment, start.isoformat(), end.isoformat(),
                        describe_partial_error(result.partial_error))
        else:
            tables = result.tables
        window = traffic_window_of(deployment, [row for table in tables for row in table.rows])
        if window.requests == 0 and not self._endpoint_logged(workspace_id, endpoint, end - ENDPOINT_LOOKBACK, end):
            why = (f"not one request of {endpoint} logged in the {ENDPOINT_LOOKBACK.days * 24} h "
                   f"before {end.isoformat()}")
            raise TrafficLogsMissing(self._no_traffic_logs(endpoint, why))
        return window

    def _endpoint_logged(self, workspace_id: str, endpoint: str, start: datetime, end: datetime) -> bool:
        """Whether the traffic log holds any request of the endpoint in [start, end)."""
        from azure.core.exceptions import HttpResponseError
        try:
            result = self.logs_client.query_workspace(workspace_id, endpoint_rows_query(endpoint, start, end),
                                                      timespan=(start, end))
        except HttpResponseError as err:
            raise self._logs_error(err, endpoint, "*") from err
        tables = getattr(result, "tables", None) or getattr(result, "partial_data", None) or []
        return any(int(cell(row, "Rows") or 0) > 0 for table in tables for row in table.rows)

    def _no_traffic_logs(self, endpoint: str, why: str) -> str:
        return (f"no traffic logs for {endpoint} in Log Analytics workspace {self.log_analytics_workspace_id}: is "
                f"the endpoint's diagnostic setting there ({TRAFFIC_TABLE})? ({why})")

    # -- platform metrics ------------------------------------------------------------------------------

    def aggregates(self, endpoint: str, deployment: str, since: datetime,
                   until: datetime | None = None) -> PlatformAggregates:
        """Requests, server errors and latency percentiles of `deployment` from the endpoint's platform metrics."""
        endpoint, deployment = _valid_name("endpoint", endpoint), _valid_name("deployment", deployment)
        start, end = _span(since, until)
        resource = self.endpoint_resource_id(endpoint)
        common = dict(resource_ids=[resource], metric_namespace=METRICS_NAMESPACE, timespan=(start, end),
                      granularity=timedelta(minutes=1), aggregations=["Average"], max_results=1000)
        from azure.core.exceptions import HttpResponseError
        client = self.metrics_client
        try:
            counts = client.query_resources(
                metric_names=["RequestsPerMinute"], **common,
                filter=f"deployment eq '{deployment}' and statusCodeClass eq '*' and modelStatusCode eq '*'")
            latency = client.query_resources(metric_names=list(LATENCY_METRICS.values()), **common,
                                             filter=f"deployment eq '{deployment}'")
        except HttpResponseError as err:
            raise self._metrics_error(err, endpoint, deployment) from err
        return aggregates_of(deployment, counts, latency)

    def utilisation(self, endpoint: str, deployment: str, since: datetime,
                    until: datetime | None = None) -> Utilisation:
        """Mean CPU and memory of the deployment's instances over the window (each a percentage of one instance,
        averaged over instances and minutes), and its instance count in the last minute reported."""
        endpoint, deployment = _valid_name("endpoint", endpoint), _valid_name("deployment", deployment)
        start, end = _span(since, until)
        common = dict(resource_ids=[f"{self.endpoint_resource_id(endpoint)}/deployments/{deployment}"],
                      metric_namespace=DEPLOYMENT_NAMESPACE, timespan=(start, end), granularity=timedelta(minutes=1),
                      max_results=1000)
        from azure.core.exceptions import HttpResponseError
        client = self.metrics_client
        try:
            usage = client.query_resources(metric_names=list(UTILISATION_METRICS.values()), aggregations=["Average"],
                                           filter="instanceId eq '*'", **common)
            capacity = client.query_resources(metric_names=[CAPACITY_METRIC], aggregations=["Average", "Maximum"],
                                              **common)
        except HttpResponseError as err:
            raise self._metrics_error(err, endpoint, deployment) from err
        return utilisation_of(deployment, usage, capacity)

    # -- training compute: the workspace's metrics ---------------------------------------------------------

    def job_usage(self, job: JobStatus) -> JobUsage | None:
        """CPU (mean) and memory (peak) of the job's nodes over its run, [started, ended or now], and how many
        nodes reported; None if the job has not started or its run reported nothing."""
        if not job.started:
            return None
        start = as_utc(datetime.fromisoformat(job.started))
        end = as_utc(datetime.fromisoformat(job.ended)) if job.ended else datetime.now(UTC)
        end = max(end, start + timedelta(minutes=1))          # a run shorter than the grain still has its minute
        from azure.core.exceptions import HttpResponseError
        try:
            results = self.metrics_client.query_resources(
                resource_ids=[self.workspace_resource_id], metric_namespace=WORKSPACE_NAMESPACE,
                metric_names=[CPU_METRIC, MEMORY_METRIC], timespan=(start, end), granularity=timedelta(minutes=1),
                aggregations=["Average", "Maximum"], filter=job_filter(job.name), max_results=1000)
        except HttpResponseError as err:
            raise self._workspace_metrics_error(err, f"job {job.name}") from err
        return job_usage_of(results)

    def cluster_usage(self, cluster: str, since: datetime, until: datetime | None = None) -> ClusterUsage | None:
        """The cluster's active, idle and unusable node-minutes over [since, until), its most nodes up at once,
        and the mean CPU and memory of its nodes while up."""
        nodes_filter, usage_filter = cluster_filters(cluster)
        start, end = _span(since, until)
        grain = cluster_grain(start, end)
        common = dict(resource_ids=[self.workspace_resource_id], metric_namespace=WORKSPACE_NAMESPACE,
                      timespan=(start, end), granularity=grain, aggregations=["Average"], max_results=1000)
        from azure.core.exceptions import HttpResponseError
        client = self.metrics_client
        try:
            nodes = client.query_resources(metric_names=list(NODE_METRICS), filter=nodes_filter, **common)
            usage = client.query_resources(metric_names=[CPU_METRIC, MEMORY_METRIC], filter=usage_filter, **common)
        except HttpResponseError as err:
            raise self._workspace_metrics_error(err, f"cluster {cluster}") from err
        return cluster_usage_of(cluster, start, end, grain, nodes, usage)

    @property
    def workspace_resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.MachineLearningServices/workspaces/{self.workspace_name}")

    def endpoint_resource_id(self, endpoint: str) -> str:
        return f"{self.workspace_resource_id}/onlineEndpoints/{endpoint}"

    # -- clients (created on first use) ----------------------------------------------------------------

    @lazy_client("_credential")
    def credential(self) -> Any:
        return default_credential()

    @lazy_client("_logs")
    def logs_client(self) -> Any:
        """azure.monitor.query.LogsQueryClient (imported and created on first use)."""
        from azure.monitor.query import LogsQueryClient
        return LogsQueryClient(self.credential, **self._client_kwargs)

    @lazy_client("_metrics")
    def metrics_client(self) -> Any:
        """azure.monitor.querymetrics.MetricsClient for the endpoint's region (imported and created on first use)."""
        if not self.metrics_endpoint:
            raise MetricsNotConfigured(
                f"platform metrics are read from the endpoint's regional metrics endpoint, but no region is "
                f"configured: set {REGION_SETTING} to the online endpoint's region (e.g. westeurope)")
        try:
            from azure.monitor.querymetrics import MetricsClient
        except ImportError as err:
            raise MetricsNotConfigured(
                "platform metrics need the azure-monitor-querymetrics package (azure-monitor-query 2.x "
                "has no metrics client): add it to requirements.txt") from err
        return MetricsClient(self.metrics_endpoint, self.credential, **self._client_kwargs)

    # -- errors ----------------------------------------------------------------------------------------

    def _workspace_id(self) -> str:
        workspace = self.log_analytics_workspace_id
        if not workspace:
            raise MetricsNotConfigured(
                f"no Log Analytics workspace is configured for the endpoints' traffic logs: set {WORKSPACE_SETTING} "
                f"to the workspace ID (a GUID) of the workspace that a diagnostic setting on the online endpoint "
                f"sends {TRAFFIC_TABLE} to, or judge on platform metrics (aggregates) instead")
        if not _GUID.match(workspace):
            raise MetricsNotConfigured(
                f"{WORKSPACE_SETTING}={workspace!r} is not a Log Analytics workspace ID: use the GUID shown as "
                f"'Workspace ID' on the workspace's overview page, not its name or resource ID")
        return workspace

    def _logs_error(self, err: Any, endpoint: str, deployment: str) -> MetricsError:
        what = (f"the traffic logs of {endpoint}/{deployment} in Log Analytics workspace "
                f"{self.log_analytics_workspace_id}")
        status = getattr(err, "status_code", None)
        if _auth_failure(err):
            return MetricsAuthError(
                f"Azure Monitor refused to read {what} ({service_error(err)}): give the Function App's identity the "
                f"Log Analytics Reader role on that workspace, or check the credential")
        if status == 404:
            return MetricsNotConfigured(f"could not read {what}: the workspace was not found ({service_error(err)}); "
                                        f"check {WORKSPACE_SETTING}")
        detail = service_error(err)
        if status == 400 and TRAFFIC_TABLE.lower() in detail.lower():
            return TrafficLogsMissing(self._no_traffic_logs(
                endpoint, f"the workspace has no {TRAFFIC_TABLE} table: {detail}; a diagnostic setting on the online "
                          f"endpoint sending the {TRAFFIC_TABLE} category creates it"))
        return MetricsError(f"the query for {what} failed (HTTP {status or '-'}: {detail})")

    def _metrics_error(self, err: Any, endpoint: str, deployment: str) -> MetricsError:
        return _platform_metrics_error(err, f"the platform metrics of {endpoint}/{deployment} at "
                                            f"{self.metrics_endpoint}", "endpoint")

    def _workspace_metrics_error(self, err: Any, what: str) -> MetricsError:
        return _platform_metrics_error(err, f"the workspace metrics of {what} (Azure ML workspace "
                                            f"{self.workspace_name}) at {self.metrics_endpoint}", "workspace")


def _platform_metrics_error(err: Any, what: str, resource: str) -> MetricsError:
    """A refused or failed metrics query of `resource` (the endpoint, the workspace), said with its remedy."""
    if _auth_failure(err):
        return MetricsAuthError(f"Azure Monitor refused to read {what} ({service_error(err)}): give the Function "
                                f"App's identity the Monitoring Reader role on the {resource}, or check the credential")
    return MetricsError(f"the query for {what} failed (HTTP {getattr(err, 'status_code', None) or '-'}: "
                        f"{service_error(err)}); the region must be the {resource}'s own ({REGION_SETTING})")


# -- the query -------------------------------------------------------------------------------------------

def traffic_query(endpoint: str, deployment: str, start: datetime, end: datetime, limit: int = SAMPLE_LIMIT) -> str:
    """The KQL for one deployment's traffic in [start, end): a `total` row with the exact counts, and up to
    `limit` `sample` rows, the most recent requests first. Names are checked and quoted."""
    endpoint, deployment = _valid_name("endpoint", endpoint), _valid_name("deployment", deployment)
    return f"""let Traffic = materialize({TRAFFIC_TABLE}
    | where TimeGenerated >= {_kql_datetime(start)} and TimeGenerated < {_kql_datetime(end)}
    | where EndpointName =~ {_kql_string(endpoint)} and DeploymentName =~ {_kql_string(deployment)}
    | project TimeGenerated, Status = toint(ResponseCode), ModelStatus = toint(ModelStatusCode),
              LatencyMs = todouble(TotalDurationMs), XRequestId, XMSClientRequestId);
union
    (Traffic
        | summarize Requests = count(), ServerErrors = countif(Status >= 500 or ModelStatus >= 500)
        | project Kind = "total", Requests, ServerErrors),
    (Traffic
        | top {int(limit)} by TimeGenerated desc
        | project Kind = "sample", TimeGenerated, Status, ModelStatus, LatencyMs, XRequestId, XMSClientRequestId)"""


def endpoint_rows_query(endpoint: str, start: datetime, end: datetime) -> str:
    """The KQL counting the endpoint's logged requests in [start, end) (any deployment)."""
    return f"""{TRAFFIC_TABLE}
| where TimeGenerated >= {_kql_datetime(start)} and TimeGenerated < {_kql_datetime(end)}
| where EndpointName =~ {_kql_string(_valid_name("endpoint", endpoint))}
| summarize Rows = count()"""


def _valid_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidName(f"{kind} name {name!r} is not a valid Azure ML {kind} name (3-32 letters, digits and "
                          f"hyphens, starting with a letter): refusing to query Azure Monitor for it")
    return name


def _kql_string(value: str) -> str:
    """A KQL string literal (double-quoted, backslash escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _kql_datetime(value: datetime) -> str:
    return f"datetime({value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"


def _span(since: datetime, until: datetime | None) -> tuple[datetime, datetime]:
    start, end = as_utc(since), as_utc(until) if until is not None else datetime.now(UTC)
    if start >= end:
        raise ValueError(f"empty metrics window: since {start.isoformat()} is not before until {end.isoformat()}")
    return start, end


def _auth_failure(err: Any) -> bool:
    from azure.core.exceptions import ClientAuthenticationError
    # LogsQueryClient re-raises the pipeline's ClientAuthenticationError as a plain HttpResponseError
    return (isinstance(err, ClientAuthenticationError) or isinstance(err.__context__, ClientAuthenticationError)
            or getattr(err, "status_code", None) in (401, 403))
