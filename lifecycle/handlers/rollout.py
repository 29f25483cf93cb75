"""Rollout triggers: a model registered, a rollout event (take the next step now), a person's override."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lifecycle import clock
from lifecycle.core.incoming_events import ModelRegistered
from lifecycle.core.rollout_machine import Rollout
from lifecycle.dispatch import Rejected
from lifecycle.steps import rollouts
from lifecycle.steps.rollouts import OVERRIDES, RolloutPorts

__all__ = ["OVERRIDES", "model_registered", "override", "rollout_event"]
log = logging.getLogger("lifecycle.rollout")
REGISTRY_LAG = timedelta(minutes=10)     # a version the registry still lacks this long after its event never comes


def model_registered(event: ModelRegistered, p: RolloutPorts, now: datetime | None = None) -> Rollout | None:
    now = now or clock.now()
    if event.model_name != p.policies.model.name:
        log.info("ignored %s:%s: this app deploys %s", event.model_name, event.model_version, p.policies.model.name)
        return None
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
    return rollouts.tick(p, clock.now())


def override(p: RolloutPorts, endpoint: str, action: str, now: datetime | None = None) -> Rollout:
    """A person's decision: promote, rollback, pause or resume the endpoint's rollout now."""
    return rollouts.override(p, endpoint, action, now or clock.now())
