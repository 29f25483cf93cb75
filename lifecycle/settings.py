"""The function app's settings, read from app settings (environment variables), as in Azure.

Locally the stack puts the same names into the Functions host's environment, so one reader serves both."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    storage_connection: str                 # AzureWebJobsStorage: the account holding data, state and queues
    platform: str = "local"                 # "local" (the embedded stack) or "azure"
    data_container: str = "data"
    state_container: str = "mlops-state"
    eventgrid_endpoint: str = ""            # the custom topic for MLOps.* events
    eventgrid_key: str = ""
    # the model this app keeps alive
    model_name: str = "tabular-classifier"
    target_column: str = ""                 # the label column of the training data
    endpoint_name: str = "mlops-endpoint"
    # retrain policy
    drop_quiet_seconds: float = 60          # a drop without a _SUCCESS marker is complete after this quiet time
    retrain_cooldown_minutes: float = 10    # at least this long between two training runs
    # registration gate
    gate_metric: str = "f1"
    gate_floor: float = 0.6                 # the challenger must reach this
    gate_margin: float = 0.02               # and not be worse than the champion by more than this
    # the local Azure ML stand-in
    aml_local_url: str = ""
    aml_local_key: str = ""
    # Azure ML workspace
    azure_subscription_id: str = ""
    azure_resource_group: str = ""
    azureml_workspace: str = ""
    data_datastore: str = "mlopsdata"       # the Azure ML datastore over the data container

    _ENV = {
        "storage_connection": "AzureWebJobsStorage", "platform": "MLOPS_PLATFORM",
        "eventgrid_endpoint": "EVENTGRID_TOPIC_ENDPOINT", "eventgrid_key": "EVENTGRID_TOPIC_KEY",
        "azure_subscription_id": "AZURE_SUBSCRIPTION_ID", "azure_resource_group": "AZURE_RESOURCE_GROUP",
        "azureml_workspace": "AZUREML_WORKSPACE", "aml_local_url": "AML_LOCAL_URL", "aml_local_key": "AML_LOCAL_KEY",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        values: dict[str, object] = {}
        for f in fields(cls):
            name = cls._ENV.get(f.name, f.name.upper())
            if name not in env or env[name] == "":
                continue
            raw = env[name]
            try:
                values[f.name] = float(raw) if f.type == "float" else raw
            except ValueError:
                raise SettingsError(f"app setting {name} is {raw!r}: it must be a number") from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not self.storage_connection:
            raise SettingsError("app setting AzureWebJobsStorage is not set: it must hold the storage account's "
                                "connection string (locally `mlops up` sets it)")
        if self.platform not in ("local", "azure"):
            raise SettingsError(f"app setting MLOPS_PLATFORM is {self.platform!r}: use 'local' or 'azure'")
        if self.platform == "azure" and not (self.azure_subscription_id and self.azure_resource_group
                                             and self.azureml_workspace):
            raise SettingsError("MLOPS_PLATFORM is 'azure' but AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and "
                                "AZUREML_WORKSPACE are not all set")
