"""Rollout triggers: a model registered, a rollout event (take the next step now), a person's override."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lifecycle import clock
from lifecycle.core import model_catalog
from lifecycle.core.incoming_events import ModelRegistered
from lifecycle.core.rollout_machine import Rollout
from lifecycle.dispatch import Rejected
from lifecycle.model_scope import each_model, scoped
from lifecycle.steps import rollouts
from lifecycle.steps.rollouts import OVERRIDES, RolloutPorts

__all__ = ["OVERRIDES", "model_registered", "override", "rollout_event"]
log = logging.getLogger("lifecycle.rollout")
REGISTRY_LAG = timedelta(minutes=10)     # a version the registry still lacks this long after its event never comes


def model_registered(event: ModelRegistered, p: RolloutPorts, now: datetime | None = None) -> Rollout | None:
    now = now or clock.now()
    policies = model_catalog.by_name(p.catalog, event.model_name)
    if policies is None:
        log.info("ignored %s:%s: this app deploys %s", event.model_name, event.model_version,
                 ", ".join(m.model.name for m in p.catalog))
        return None
    p = scoped(p, policies)
    model = p.registry.get(event.model_name, event.model_version)
    if model is None:
        age = now - event.event_time if event.event_time else timedelta(0)
        if age > REGISTRY_LAG:
            raise Rejected(f"model {event.model_name}:{event.model_version} is not in the registry, "
                           f"{age.total_seconds() / 60:.0f} min after the event said it was registered")
        raise LookupError(f"model {event.model_name}:{event.model_version} is not in the registry yet")  # retried
    return rollouts.offer(p, model, now)


def rollout_event(event: object, p: RolloutPorts) -> list[Rollout]:
    """MLOps.RolloutStarted / RolloutProgressed: take the next step now instead of at the next tick."""
    now = clock.now()
    return [r for moved in each_model(p, lambda q: rollouts.tick(q, now), "a rollout step") for r in moved]


def override(p: RolloutPorts, endpoint: str, action: str, now: datetime | None = None) -> Rollout:
    """A person's decision: promote, rollback, pause or resume the endpoint's rollout now."""
    policies = model_catalog.by_endpoint(p.catalog, endpoint)
    return rollouts.override(scoped(p, policies) if policies else p, endpoint, action, now or clock.now())
