"""From pre-production to production through the Azure ML registry, as a chain of events.

In preprod, a model that survived its canary (MLOps.ModelPromoted) is copied into the registry with its
lineage (data, job, preprod version, rollout evidence) and production is told (MLOps.ModelShared on
production's custom topic: Azure ML raises no event for a registry). In production, the registry model
goes through production's own blue/green rollout and canary judge, after a person's approval if the
policy asks for one. History decides, not the events: a version rolled back in preprod is never shared,
and a replayed event shares, tells and rolls out nothing twice."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from lifecycle.core import notifications as told
from lifecycle.core.rollout_machine import Phase, RolloutEvent, rollout_id
from lifecycle.core.state_records import Promotion, PromotionStatus
from lifecycle.core.times import iso
from lifecycle.dispatch import Rejected
from lifecycle.ports import UsesPromotionEvents, UsesSharedRegistry
from lifecycle.steps import rollouts
from lifecycle.steps.announcements import announce
from lifecycle.steps.rollouts import RolloutPorts

log = logging.getLogger("lifecycle.promotion")
MODEL_SHARED = "MLOps.ModelShared"
AWAITING_APPROVAL = "MLOps.PromotionAwaitingApproval"
# the preprod version's lineage tags that travel with it into the registry
LINEAGE_TAGS = ("mlops.job", "mlops.trigger", "mlops.data", "mlops.drop", "mlops.data_batches", "mlops.champion")


class PromotionPorts(RolloutPorts, UsesSharedRegistry, UsesPromotionEvents, Protocol):
    """What promotion uses of the platform: production rolls out through rollouts' own steps."""


# -- preprod ------------------------------------------------------------------------------------------
def share_promoted(p: PromotionPorts, data: Mapping[str, Any], now: datetime) -> Promotion | None:
    """MLOps.ModelPromoted in preprod: the model into the registry, then production told, each once."""
    policy, model = p.policies.promotion, p.policies.model
    ref = str(data.get("model") or "")
    name, _, version = ref.partition(":")
    if not policy.shares:
        log.info("ignored the promotion of %s: this app is not pre-production (MLOPS_STAGE %r)", ref,
                 policy.stage)
        return None
    if name != model.name or not version:
        log.info("ignored the promotion of %s: this app keeps %s alive", ref or "a model", model.name)
        return None
    finished = p.state.get(RolloutEvent, rollout_id(model.endpoint, ref))
    if finished is None or finished.outcome != Phase.PROMOTED:
        # the event says promoted, the history does not: never share what did not survive its canary here
        outcome = finished.outcome.replace("_", " ") if finished else "never rolled out"
        raise Rejected(f"{ref} was {outcome} on {model.endpoint}, not promoted: it does not go to production")
    key = Promotion(model=ref, status=PromotionStatus.SHARED, registry=policy.registry).key
    done = p.state.get(Promotion, key)
    if done is not None and done.published:
        log.info("%s was already shared into %s and production told", ref, policy.registry)
        return done
    if p.shared_registry is None or p.promotion_events is None:
        raise RuntimeError("pre-production needs AZUREML_REGISTRY and PROMOTION_TOPIC_ENDPOINT to promote")
    source = _lineage(p, name, version, finished)
    shared = p.shared_registry.share(name, version, {**_tags(source), "mlops.stage": "preprod"},
                                     description=f"promoted in pre-production: {finished.reason}")
    record = Promotion(model=ref, status=PromotionStatus.SHARED, registry=policy.registry,
                       asset_id=shared.asset_id, source=source, received_at=iso(now))
    p.state.create(record)
    p.promotion_events.publish(MODEL_SHARED, f"registries/{policy.registry}/models/{name}/versions/{version}",
                               {"registry": policy.registry, "model": name, "version": version,
                                "assetId": shared.asset_id, "source": source})
    log.info("shared %s into registry %s (%s) and told production", ref, policy.registry, shared.asset_id)
    return p.state.update(Promotion, key, lambda r: replace(r, published=True) if r else None) or record


def _lineage(p: PromotionPorts, name: str, version: str, finished: RolloutEvent) -> dict[str, str]:
    found = p.registry.get(name, version)
    tags = dict(found.tags) if found else {}
    source = {tag.removeprefix("mlops."): tags[tag] for tag in LINEAGE_TAGS if tags.get(tag)}
    source.update(version=version, rollout=finished.rollout_id, promoted_at=finished.finished_at,
                  evidence=finished.reason)
    metrics = {k: v for k, v in tags.items() if k.startswith("metric.")}
    return {**source, **metrics}


def _tags(source: Mapping[str, str]) -> dict[str, str]:
    """The lineage as registry tags: `mlops.preprod_version`, `mlops.job`, `mlops.data`, ... and metrics."""
    named = {"version": "mlops.preprod_version", "rollout": "mlops.preprod_rollout",
             "promoted_at": "mlops.preprod_promoted_at", "evidence": "mlops.preprod_evidence"}
    return {(k if k.startswith("metric.") else named.get(k, f"mlops.{k}")): str(v)[:256] for k, v in source.items()}


# -- production ---------------------------------------------------------------------------------------
def receive_shared(p: PromotionPorts, data: Mapping[str, Any], now: datetime) -> Promotion | None:
    """MLOps.ModelShared in production: the registry model offered to production's own rollout, or held
    for a person's approval. A replay offers again, which the rollout's history makes a no-op."""
    policy, model = p.policies.promotion, p.policies.model
    name, version = str(data.get("model") or ""), str(data.get("version") or "")
    registry = str(data.get("registry") or "")
    if not policy.receives:
        log.info("ignored %s:%s shared into %s: this app is not production (MLOPS_STAGE %r)", name, version,
                 registry, policy.stage)
        return None
    if registry != policy.registry:
        raise Rejected(f"{name}:{version} was shared into registry {registry!r}; production deploys from "
                       f"{policy.registry!r} (AZUREML_REGISTRY)")
    if name != model.name or not version:
        log.info("ignored %s:%s: this app keeps %s alive", name, version, model.name)
        return None
    found = p.registry.get(name, version)
    if found is None:
        raise LookupError(f"{name}:{version} is not in registry {registry} yet")       # retried by delivery
    status = PromotionStatus.AWAITING_APPROVAL if policy.approval_required else PromotionStatus.ROLLING_OUT
    record = Promotion(model=found.ref, status=status, registry=registry, asset_id=found.asset_id,
                       source=_source_of(found.tags), received_at=iso(now))
    created = p.state.create(record)
    if not created:
        record = p.state.get(Promotion, record.key) or record
    if record.status == PromotionStatus.AWAITING_APPROVAL:
        if created:                      # told once: a replay finds the record, shown by `mlops status`
            log.warning("%s from registry %s awaits approval: `mlops promote approve %s` (or reject)", found.ref,
                        registry, found.ref)
            p.events.publish(AWAITING_APPROVAL, f"promotions/{found.ref}",
                             {"model": found.ref, "registry": registry, "assetId": found.asset_id})
        return record
    if record.status == PromotionStatus.ROLLING_OUT:
        rollouts.offer(p, found, now)
    return record


def review(p: PromotionPorts, ref: str, approve: bool, by: str, now: datetime) -> Promotion:
    """A person's decision on a promotion awaiting approval: production's rollout starts, or nothing changes."""
    key = Promotion(model=ref, status="", registry="").key
    record = p.state.get(Promotion, key)
    if record is None:
        raise ValueError(f"no promotion of {ref} reached this app: see `mlops status` for those awaiting approval")
    if record.status != PromotionStatus.AWAITING_APPROVAL:
        raise ValueError(f"the promotion of {ref} is {record.status}, not awaiting approval")
    decided = replace(record, status=PromotionStatus.ROLLING_OUT if approve else PromotionStatus.REJECTED,
                      decided_by=by, decided_at=iso(now),
                      reason=f"{'approved' if approve else 'rejected'} by {by}")
    if approve:
        name, _, version = ref.partition(":")
        found = p.registry.get(name, version)
        if found is None:
            raise ValueError(f"{ref} is no longer in registry {record.registry}: nothing to roll out")
        rollouts.offer(p, found, now)
    stored = p.state.update(Promotion, key, lambda current: decided if current == record else None)
    if stored is None:
        raise ValueError(f"the promotion of {ref} was decided meanwhile: see `mlops status`")
    log.warning("promotion of %s %s", ref, decided.reason)
    announce(p, told.PROMOTION_APPROVED if approve else told.PROMOTION_REJECTED, f"promotions/{ref}",
             {"model": ref, "registry": record.registry, "assetId": record.asset_id, "by": by,
              "reason": decided.reason}, ref)
    return stored


def _source_of(tags: Mapping[str, str]) -> dict[str, str]:
    """The preprod lineage back from the registry model's tags (the registry keeps it, events can be lost)."""
    named = {"mlops.preprod_version": "version", "mlops.preprod_rollout": "rollout",
             "mlops.preprod_promoted_at": "promoted_at", "mlops.preprod_evidence": "evidence"}
    return {named.get(k, k.removeprefix("mlops.")): v for k, v in tags.items()
            if k in named or k in LINEAGE_TAGS or k.startswith("metric.")}
