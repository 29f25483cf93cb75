"""The Events port: the app's MLOps.* events, published with azure-eventgrid's EventGridPublisherClient to
the custom topic (in Azure; locally the same client reaches the local topic endpoint).

In Azure the topic has local (key) auth off: the client takes a token for https://eventgrid.azure.net/.default
from the app's identity, which needs the "EventGrid Data Sender" role on the topic. The key is for the local
topic only."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.eventgrid import EventGridPublisherClient


class GridEvents:
    def __init__(self, endpoint: str, key: str = "", credential: Any = None) -> None:
        """`key` (the topic's access key) or `credential` (an azure-identity TokenCredential) authenticates."""
        if not endpoint:
            raise ValueError("EVENTGRID_TOPIC_ENDPOINT must be set to publish MLOps.* events")
        if not key and credential is None:
            raise ValueError("publishing MLOps.* events needs EVENTGRID_TOPIC_KEY or a token credential")
        self._endpoint, self._key, self._credential = endpoint, key, credential
        self._client: EventGridPublisherClient | None = None

    def publish(self, event_type: str, subject: str, data: dict) -> None:
        from azure.eventgrid import EventGridEvent
        if self._client is None:
            from azure.core.credentials import AzureKeyCredential
            from azure.eventgrid import EventGridPublisherClient
            self._client = EventGridPublisherClient(
                self._endpoint, AzureKeyCredential(self._key) if self._key else self._credential)
        self._client.send([EventGridEvent(id=str(uuid.uuid4()), subject=subject, event_type=event_type, data=data,
                                          data_version="1.0")])
