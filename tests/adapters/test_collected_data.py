"""Where the collected data is read from, and what is said when it is not there.

Reading runs against Azurite; finding the container in Azure runs azure-ai-ml's datastores.get_default()
against a recorded answer of the datastores API (tests/adapters/recorded.py)."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import ContainerClient

from lifecycle.adapters.azure_workspace import WorkspaceClient
from lifecycle.adapters.collected_data import BlobCollected, default_datastore_url, workspace_collected
from tests.adapters.recorded import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeCredential, RecordedService, canned

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml")

WORKSPACE_GUID = "5b2f7c1e-3d4a-4e8b-9c0d-1a2b3c4d5e6f"      # responses/workspace.json's workspaceId
NOW = datetime.now(UTC)


def container_client(azurite, name: str) -> ContainerClient:
    return ContainerClient.from_connection_string(azurite.connection_string, name)


def collected_line(request_id: str, prediction: str, when: datetime) -> str:
    return json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "test", "type": "azureml.outputs",
                       "time": when.isoformat().replace("+00:00", "Z"),
                       "data": [{"request_id": request_id, "prediction": prediction}]})


@pytest.fixture
def container(azurite) -> ContainerClient:
    return container_client(azurite, f"azureml-blobstore-{uuid.uuid4()}")


def test_a_missing_container_is_said_with_the_place_looked_at(container, caplog):
    collected = BlobCollected(container)
    url, found = collected.location("churn", "blue")
    assert not found and url == f"{container.url}/modelDataCollector/churn/blue/"
    with caplog.at_level(logging.WARNING, logger="lifecycle.collected"):
        assert collected.predictions("churn", "blue", NOW - timedelta(minutes=5)) == []
    warning, = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert container.url in warning and "does not exist" in warning and "DATA_COLLECTOR_BLOB_URI" in warning


def test_a_container_without_the_deployments_folder_is_not_found_and_reads_no_rows_without_a_warning(container, caplog):
    container.create_container()
    hour = f"{NOW:%Y/%m/%d/%H}"
    container.upload_blob(f"modelDataCollector/churn/green/model_outputs/{hour}/a.jsonl",
                          collected_line("r1", "stay", NOW))
    collected = BlobCollected(container)
    assert collected.location("churn", "blue") == (f"{container.url}/modelDataCollector/churn/blue/", False)
    assert collected.location("churn", "green")[1] is True
    with caplog.at_level(logging.WARNING, logger="lifecycle.collected"):
        assert collected.predictions("churn", "blue", NOW - timedelta(minutes=5)) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]     # no traffic is not an error


def test_present_data_is_found_and_read(container):
    container.create_container()
    when = datetime.now(UTC)
    lines = "\n".join([collected_line("r1", "churn", when), collected_line("r2", "stay", when)])
    container.upload_blob(f"modelDataCollector/churn/blue/model_outputs/{when:%Y/%m/%d/%H}/a.jsonl", lines)
    collected = BlobCollected(container)
    assert collected.location("churn", "blue") == (f"{container.url}/modelDataCollector/churn/blue/", True)
    assert collected.predictions("churn", "blue", when - timedelta(seconds=5)) == ["churn", "stay"]


def test_a_container_made_on_first_use_is_made_once(container):
    made = []
    collected = BlobCollected(lambda: made.append(1) or container)
    assert made == []                                           # nothing at construction (cold start)
    collected.location("churn", "blue")
    collected.predictions("churn", "blue", NOW - timedelta(minutes=5))
    assert made == [1]


# ---- in Azure: the workspace's default datastore -----------------------------------------------------------

def datastores_service(endpoint: str = "core.windows.net") -> RecordedService:
    """The datastores API: the list answers every datastore, or only the default one with isDefault=true."""
    default = canned("datastore_blob", name="workspaceblobstore", account="mlwstore7d1",
                     container=f"azureml-blobstore-{WORKSPACE_GUID}")
    default["properties"]["endpoint"] = endpoint
    other = canned("datastore_blob", name="mlopsdata", account="stmlopsdata", container="data")
    other["properties"]["isDefault"] = False
    service = RecordedService()

    def listing(call, match):
        wanted = [d for d in (other, default)
                  if call.query.get("isDefault") != ["true"] or d["properties"]["isDefault"]]
        return {"value": wanted}
    service.workspace_route("GET", "/datastores", listing)
    return service


def workspace(service: RecordedService) -> WorkspaceClient:
    return WorkspaceClient(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(),
                           transport=RequestsTransport(session=service.session))


def test_the_default_datastore_is_where_the_collector_writes():
    service = datastores_service()
    url = default_datastore_url(workspace(service).ml_client)
    assert url == f"https://mlwstore7d1.blob.core.windows.net/azureml-blobstore-{WORKSPACE_GUID}"
    call, = service.requests_to("GET", "/datastores$")
    assert call.query.get("isDefault") == ["true"] and not service.unrouted


def test_a_sovereign_clouds_storage_suffix_is_kept():
    url = default_datastore_url(workspace(datastores_service("core.chinacloudapi.cn")).ml_client)
    assert url == f"https://mlwstore7d1.blob.core.chinacloudapi.cn/azureml-blobstore-{WORKSPACE_GUID}"


def test_the_workspace_is_asked_on_first_read_with_the_apps_credential_and_only_once():
    service = datastores_service()
    token = FakeCredential()
    collected = workspace_collected(workspace(service), token)
    assert service.calls == []                                  # building the platform asks Azure ML nothing
    first, again = collected.container, collected.container
    assert first is again and first.url == f"https://mlwstore7d1.blob.core.windows.net/azureml-blobstore-{WORKSPACE_GUID}"
    assert first.credential is token
    assert len(service.requests_to("GET", "/datastores$")) == 1


def test_data_collector_blob_uri_overrides_the_default_datastore():
    service = datastores_service()
    override = "https://stcollected.blob.core.windows.net/collected"
    collected = workspace_collected(workspace(service), FakeCredential(), override)
    assert collected.container.url == override and service.calls == []
