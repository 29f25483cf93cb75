"""How the app reaches its storage account and authenticates to Azure: the one place that turns settings
into a credential and a BlobServiceClient, so every adapter connects the same way.

Locally the stack gives a connection string (Azurite's well-known key). In Azure the Function App has no
key at all: the Functions identity-based names (AzureWebJobsStorage__blobServiceUri / __accountName /
__clientId) and a token from its user-assigned managed identity, the same identity the host itself uses.
azure-identity is imported only when a token is needed, so the local path never pays for it."""
from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from azure.storage.blob import BlobServiceClient

from lifecycle.settings import Settings, SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def credential(settings: Settings) -> TokenCredential:
    """DefaultAzureCredential for the app's identity: the user-assigned managed identity when its client id is
    set (AzureWebJobsStorage__clientId or AZURE_CLIENT_ID), else whatever the environment offers (a system-
    assigned identity, or `az login` on a laptop). One per process and identity: it caches its tokens."""
    return _credential(settings.managed_identity_client_id)


@cache
def _credential(client_id: str) -> TokenCredential:
    from azure.identity import DefaultAzureCredential
    # Without a client id, leave DefaultAzureCredential its own defaults (it reads AZURE_CLIENT_ID itself).
    return DefaultAzureCredential(**({"managed_identity_client_id": client_id} if client_id else {}))


def app_blob_service(settings: Settings) -> BlobServiceClient:
    """The app's storage account: its connection string when one is set (the local stack), else its blob
    service URI with credential(settings)."""
    if settings.storage_connection:
        return BlobServiceClient.from_connection_string(settings.storage_connection)
    if not settings.blob_service_uri:
        raise SettingsError("no storage account: set AzureWebJobsStorage (a connection string) or "
                            "AzureWebJobsStorage__blobServiceUri / AzureWebJobsStorage__accountName")
    return BlobServiceClient(settings.blob_service_uri, credential=credential(settings))
