"""Azure resource ids of the local topics, so events carry `topic` values shaped like Azure's. Each
environment of `mlops up --environments` is its own resource group (mlops-local-<environment>)."""
from __future__ import annotations

from emulator.azurite import ACCOUNT
from emulator.eventgrid.routing import RoutingTable, Topic

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "mlops-local"
WORKSPACE = "mlops-local"
_SYSTEM_SOURCES = {
    "microsoft.storage.storageaccounts": f"Microsoft.Storage/storageAccounts/{ACCOUNT}",
    "microsoft.machinelearningservices.workspaces": f"Microsoft.MachineLearningServices/workspaces/{WORKSPACE}",
}


def topic_resource_id(name: str, topic: Topic, resource_group: str = RESOURCE_GROUP) -> str:
    prefix = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{resource_group}/providers"
    if topic.kind == "system":
        try:
            return f"{prefix}/{_SYSTEM_SOURCES[(topic.topic_type or '').lower()]}"
        except KeyError:
            raise ValueError(f"topic '{name}': the local Event Grid has no source for system topic type "
                             f"{topic.topic_type!r}") from None
    return f"{prefix}/Microsoft.EventGrid/topics/{name}"


def topic_ids(table: RoutingTable, resource_group: str = RESOURCE_GROUP) -> dict[str, str]:
    return {name: topic_resource_id(name, topic, resource_group) for name, topic in table.topics.items()}


def storage_topic(table: RoutingTable) -> str | None:
    """The routing table's name for the storage account's system topic."""
    for name, topic in table.topics.items():
        if (topic.topic_type or "").lower() == "microsoft.storage.storageaccounts":
            return name
    return None
