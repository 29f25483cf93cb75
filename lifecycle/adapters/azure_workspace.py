"""What the Azure ML adapters share: one lazily created MLClient per adapter, and the small translations
between Azure ML's entities and the lifecycle's values (lifecycle/core/platform_values.py).

Nothing here imports azure.ai.ml at module level: importing it takes ~3 s, and the function app imports
this module on cold start. The SDK is imported inside the first call that needs a client."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lifecycle.adapters.lazy_client import lazy_client

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class AzureMLAdapterError(RuntimeError):
    """A request the adapter refuses before calling Azure ML, or an answer it cannot use."""


class WorkspaceClient:
    """Holds the workspace coordinates and creates one MLClient on first use.

    `credential=None` means DefaultAzureCredential (managed identity in the Function App, az login on a
    laptop). `client_kwargs` go to MLClient unchanged; tests pass `transport=` there."""

    def __init__(self, subscription_id: str, resource_group: str, workspace_name: str, *,
                 credential: Any = None, registry_name: str = "", **client_kwargs: Any) -> None:
        if not (subscription_id and resource_group and workspace_name):
            raise AzureMLAdapterError("the Azure ML workspace is not configured: set AZURE_SUBSCRIPTION_ID, "
                                      "AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE")
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace_name = workspace_name
        self.registry_name = registry_name      # set: the client works on that Azure ML registry instead
        self._credential = credential
        self._client_kwargs = {"show_progress": False, **client_kwargs}
        self._client: Any = None

    @lazy_client("_credential")
    def credential(self) -> Any:
        return default_credential()

    @lazy_client("_client")
    def ml_client(self) -> Any:
        """The azure.ai.ml.MLClient for the workspace (imported and created on first use)."""
        from azure.ai.ml import MLClient
        if self.registry_name:
            return MLClient(self.credential, self.subscription_id, self.resource_group,
                            registry_name=self.registry_name, **self._client_kwargs)
        return MLClient(self.credential, self.subscription_id, self.resource_group, self.workspace_name,
                        **self._client_kwargs)


def text(value: Any) -> str:
    """A plain string from an SDK value that may be a str-valued enum (a job's status is one)."""
    return str(getattr(value, "value", value) or "")


def created_at(entity: Any) -> str:
    """ISO time an Azure ML entity was created ('' when the service did not say)."""
    when = getattr(getattr(entity, "creation_context", None), "created_at", None)
    if isinstance(when, datetime):
        return when.isoformat()
    return str(when or "")


_MODEL_ID = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)
_MODEL_SHORT = re.compile(r"^azureml:(?P<name>[^:/]+):(?P<version>[^:/]+)$")


def model_ref(model_id: str | None) -> str:
    """'name:version' from a model's ARM id, registry id or azureml:name:version ('' if none)."""
    if not model_id:
        return ""
    match = _MODEL_ID.search(model_id) or _MODEL_SHORT.match(model_id)
    return f"{match['name']}:{match['version']}" if match else model_id


def split_ref(ref: str) -> tuple[str, str]:
    """('name', 'version') from 'name:version', with a clear error for anything else."""
    name, sep, version = ref.rpartition(":")
    if not sep or not name or not version:
        raise AzureMLAdapterError(f"model reference {ref!r} is not of the form 'name:version'")
    return name, version


def datastore_path(blob_url: str, datastore: str, container: str | None = None) -> tuple[str, str]:
    """Map a blob URL of the data container to the Azure ML datastore URI over that container.

    Accepts the account form `https://{account}.blob.core.windows.net/{container}/{path}` (any cloud's
    suffix, or `.dfs.` for ADLS Gen2) and Azurite's path form `http://127.0.0.1:{port}/{account}/{container}/{path}`.
    Returns (`azureml://datastores/{datastore}/paths/{path}`, input type): a URL ending in '/' is a folder
    (a drop of many files), anything else one file. If `container` is given, the URL must be in it."""
    parts = urlsplit(blob_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AzureMLAdapterError(f"training data {blob_url!r} is not a blob URL")
    segments = parts.path.lstrip("/").split("/")
    host = parts.hostname
    path_style = not re.match(r"^[a-z0-9]+\.(blob|dfs)\.", host)   # Azurite / IP endpoints name the account in the path
    if path_style:
        segments = segments[1:]
    if not segments or not segments[0]:
        raise AzureMLAdapterError(f"training data {blob_url!r} names no container")
    found, rest = segments[0], "/".join(segments[1:])
    if container and found != container:
        raise AzureMLAdapterError(f"training data {blob_url!r} is in container {found!r}, but datastore "
                                  f"{datastore!r} is the data container {container!r}")
    path = unquote(rest)
    kind = "uri_folder" if (not path or path.endswith("/")) else "uri_file"
    return f"azureml://datastores/{datastore}/paths/{path}", kind


_DATASTORE_URI = re.compile(r"^azureml://(?:subscriptions/[^/]+/resource[gG]roups/[^/]+/workspaces/[^/]+/)?"
                            r"datastores/(?P<datastore>[^/]+)/paths/(?P<path>.*)$")


def parse_datastore_uri(uri: str) -> tuple[str, str]:
    """(datastore, path) from a short or long azureml://…/datastores/{d}/paths/{p} URI."""
    match = _DATASTORE_URI.match(uri or "")
    if not match:
        raise AzureMLAdapterError(f"{uri!r} is not an azureml://datastores/…/paths/… URI")
    return match["datastore"], match["path"]


def default_credential() -> Any:
    """DefaultAzureCredential, imported on first use (cold start): managed identity in the Function App."""
    from azure.identity import DefaultAzureCredential
    return DefaultAzureCredential()
