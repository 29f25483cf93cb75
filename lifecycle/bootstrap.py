"""The one composition root: picks the adapters from settings. Functions call platform()."""
from __future__ import annotations

from functools import cache

from lifecycle.ports import Platform
from lifecycle.settings import Settings


@cache
def platform() -> Platform:
    return build_platform(Settings.from_env())


def build_platform(settings: Settings) -> Platform:
    # Storage and state use the same SDK code in Azure and locally; only the connection differs.
    # Imported here, not at module level, so that importing the function app stays cheap.
    from lifecycle.adapters.blob_state import BlobState
    return Platform(settings=settings, state=BlobState(settings.storage_connection, settings.state_container))
