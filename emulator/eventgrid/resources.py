"""Azure resource ids of the local topics, so events carry `topic` values shaped like Azure's."""
from __future__ import annotations

from emulator.azurite import ACCOUNT
from emulator.eventgrid.routing import RoutingTable, Topic

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "mlops-local"
WORKSPACE = "mlops-local"
_PREFIX = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers"

_SYSTEM_SOURCES = {
    "microsoft.storage.storageaccounts": f"{_PREFIX}/Microsoft.Storage/storageAccounts/{ACCOUNT}",
    "microsoft.machinelearningservices.workspaces":
        f"{_PREFIX}/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}",
}


def topic_resource_id(name: str, topic: Topic) -> str:
    if topic.kind == "system":
        try:
            return _SYSTEM_SOURCES[(topic.topic_type or "").lower()]
        except KeyError:
            raise ValueError(f"topic '{name}': the local Event Grid has no source for system topic type "
                             f"{topic.topic_type!r}") from None
    return f"{_PREFIX}/Microsoft.EventGrid/topics/{name}"


def topic_ids(table: RoutingTable) -> dict[str, str]:
    return {name: topic_resource_id(name, topic) for name, topic in table.topics.items()}


def storage_topic(table: RoutingTable) -> str | None:
    """The routing table's name for the storage account's system topic."""
    for name, topic in table.topics.items():
        if (topic.topic_type or "").lower() == "microsoft.storage.storageaccounts":
            return name
    return None
