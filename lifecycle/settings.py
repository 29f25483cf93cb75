"""The function app's settings, read from app settings (environment variables), as in Azure.

Locally the stack puts the same names into the Functions host's environment, so one reader serves both."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        storage = env.get("AzureWebJobsStorage", "")
        if not storage:
            raise SettingsError("app setting AzureWebJobsStorage is not set: it must hold the storage account's "
                                "connection string (locally `mlops up` sets it)")
        platform = env.get("MLOPS_PLATFORM", "local").lower()
        if platform not in ("local", "azure"):
            raise SettingsError(f"app setting MLOPS_PLATFORM is {platform!r}: use 'local' or 'azure'")
        return cls(
            storage_connection=storage,
            platform=platform,
            data_container=env.get("DATA_CONTAINER", cls.data_container),
            state_container=env.get("STATE_CONTAINER", cls.state_container),
            eventgrid_endpoint=env.get("EVENTGRID_TOPIC_ENDPOINT", ""),
            eventgrid_key=env.get("EVENTGRID_TOPIC_KEY", ""),
        )
