"""The one composition root: picks the adapters from settings. Functions call platform()."""
from __future__ import annotations

from functools import cache

from lifecycle.ports import Platform
from lifecycle.settings import Settings


@cache
def platform() -> Platform:
    return build_platform(Settings.from_env())


def build_platform(settings: Settings) -> Platform:
    # Imported here, not at module level, so that importing the function app stays cheap.
    from lifecycle.adapters.blob_state import BlobState
    from lifecycle.adapters.blob_data import BlobData
    from lifecycle.adapters.collected_data import BlobCollected
    from lifecycle.adapters.feedback import BlobFeedback
    # Storage and state use the same SDK code in Azure and locally; only the connection differs.
    state = BlobState(settings.storage_connection, settings.state_container)
    from lifecycle.adapters.eventgrid_events import GridEvents
    events = GridEvents(settings.eventgrid_endpoint, settings.eventgrid_key)
    feedback = BlobFeedback(settings.storage_connection, settings.feedback_container, settings.target_column)
    data = BlobData(settings.storage_connection, settings.data_container)
    if settings.platform == "azure":
        from lifecycle.adapters.azure_ml import AzureMLEndpoints, AzureMLJobs, AzureMLRegistry
        workspace = dict(subscription_id=settings.azure_subscription_id, resource_group=settings.azure_resource_group,
                         workspace_name=settings.azureml_workspace)
        from lifecycle.adapters.azure_metrics import AzureMonitorMetrics
        jobs = AzureMLJobs(**workspace, datastore=settings.data_datastore, data_container=settings.data_container)
        metrics = AzureMonitorMetrics(**workspace, log_analytics_workspace_id=settings.log_analytics_workspace_id,
                                      metrics_region=settings.azure_location)
        # The data collector writes to the workspace's blob store: DATA_COLLECTOR_STORAGE is its connection.
        collected = BlobCollected(settings.data_collector_storage or settings.storage_connection,
                                  settings.data_collector_container)
        return Platform(settings, state, jobs=jobs, registry=AzureMLRegistry(**workspace),
                        endpoints=AzureMLEndpoints(**workspace), metrics=metrics, collected=collected, events=events,
                        feedback=feedback, data=data)
    from lifecycle.adapters.local_ml import LocalAML, LocalEndpoints, LocalJobs, LocalMetrics, LocalRegistry
    aml = LocalAML(settings.aml_local_url, settings.aml_local_key)
    collected = BlobCollected(settings.storage_connection, settings.data_collector_container)
    return Platform(settings, state, jobs=LocalJobs(aml), registry=LocalRegistry(aml), endpoints=LocalEndpoints(aml),
                    metrics=LocalMetrics(aml), collected=collected, events=events,
                    feedback=feedback, data=data)
