"""The Events port: the app's MLOps.* events, published with azure-eventgrid's EventGridPublisherClient to
the custom topic (in Azure; locally the same client reaches the local topic endpoint)."""
from __future__ import annotations

import uuid


class GridEvents:
    def __init__(self, endpoint: str, key: str) -> None:
        if not endpoint or not key:
            raise ValueError("EVENTGRID_TOPIC_ENDPOINT and EVENTGRID_TOPIC_KEY must be set to publish MLOps.* events")
        self._endpoint, self._key = endpoint, key
        self._client = None

    def publish(self, event_type: str, subject: str, data: dict) -> None:
        from azure.eventgrid import EventGridEvent
        if self._client is None:
            from azure.core.credentials import AzureKeyCredential
            from azure.eventgrid import EventGridPublisherClient
            self._client = EventGridPublisherClient(self._endpoint, AzureKeyCredential(self._key))
        self._client.send([EventGridEvent(id=str(uuid.uuid4()), subject=subject, event_type=event_type, data=data,
                                          data_version="1.0")])
