"""What the lifecycle needs from a platform, as small interfaces. Adapters live in lifecycle/adapters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lifecycle.records import DataBatch, Rejection
from lifecycle.settings import Settings


class State(Protocol):
    """The lifecycle's durable records; every write is conditional, so replays change nothing."""

    def record_data_batch(self, batch: DataBatch) -> bool:
        """Store the batch unless it is already known; True if it was new."""

    def data_batches(self) -> list[DataBatch]: ...

    def record_rejection(self, rejection: Rejection) -> bool:
        """Keep an event that could not be acted on, with the reason; True if it was new."""

    def rejections(self) -> list[Rejection]: ...


@dataclass(frozen=True)
class Platform:
    settings: Settings
    state: State
