"""Promotion triggers: a model promoted in preprod (share it), a model shared into the registry (production
rolls it out), and a person's approval or rejection in production."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lifecycle import clock
from lifecycle.core import model_catalog
from lifecycle.core.incoming_events import LifecycleEvent
from lifecycle.core.state_records import Promotion
from lifecycle.dispatch import Rejected
from lifecycle.model_scope import scoped
from lifecycle.steps import promotions
from lifecycle.steps.promotions import PromotionPorts


def model_promoted(event: object, p: PromotionPorts, now: datetime | None = None) -> Promotion | None:
    """MLOps.ModelPromoted: in preprod, the model goes into the registry and production is told."""
    data = _data(event, "MLOps.ModelPromoted")
    return promotions.share_promoted(_model_of(p, str(data.get("model") or "")), data, now or clock.now())


def model_shared(event: object, p: PromotionPorts, now: datetime | None = None) -> Promotion | None:
    """MLOps.ModelShared: in production, the registry model is rolled out (or awaits approval)."""
    data = _data(event, promotions.MODEL_SHARED)
    return promotions.receive_shared(_model_of(p, str(data.get("model") or "")), data, now or clock.now())


def review(p: PromotionPorts, ref: str, approve: bool, by: str, now: datetime | None = None) -> Promotion:
    """`mlops promote approve|reject name:version`, or the promotions HTTP route."""
    return promotions.review(_model_of(p, ref), ref, approve, by, now or clock.now())


def _model_of(p: PromotionPorts, ref: str) -> PromotionPorts:
    """Scoped to the named model ("name" or "name:version"); one this app does not keep is the steps' to ignore."""
    policies = model_catalog.by_name(p.catalog, ref.partition(":")[0])
    return scoped(p, policies) if policies else p


def _data(event: object, expected: str) -> Mapping[str, Any]:
    if not isinstance(event, LifecycleEvent) or event.event_type != expected:
        raise Rejected(f"expected {expected}, got {getattr(event, 'event_type', type(event).__name__)}")
    if not isinstance(event.data, Mapping):
        raise Rejected(f"{expected} {event.id!r} carries no data object")
    return event.data
