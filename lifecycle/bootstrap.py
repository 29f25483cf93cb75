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
    # Storage and state use the same SDK code in Azure and locally; only the connection differs.
    state = BlobState(settings.storage_connection, settings.state_container)
    if settings.platform == "azure":
        from lifecycle.adapters.azure_ml import AzureMLEndpoints, AzureMLJobs, AzureMLRegistry
        workspace = dict(subscription_id=settings.azure_subscription_id, resource_group=settings.azure_resource_group,
                         workspace_name=settings.azureml_workspace)
        jobs = AzureMLJobs(**workspace, datastore=settings.data_datastore, data_container=settings.data_container)
        return Platform(settings, state, jobs=jobs,
                        registry=AzureMLRegistry(**workspace), endpoints=AzureMLEndpoints(**workspace))
    from lifecycle.adapters.local_ml import LocalAML, LocalEndpoints, LocalJobs, LocalRegistry
    aml = LocalAML(settings.aml_local_url, settings.aml_local_key)
    return Platform(settings, state, jobs=LocalJobs(aml), registry=LocalRegistry(aml), endpoints=LocalEndpoints(aml))
