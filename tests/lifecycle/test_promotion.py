"""Promotion from preprod to production through the registry, with in-memory fakes: preprod shares what
survived its canary and tells production once; production rolls the registry model out through its own
rollout, after approval when it is required; history, not the events, decides."""
from __future__ import annotations

import uuid

import pytest

from lifecycle.core import incoming_events as events
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import Promotion, PromotionStatus
from lifecycle.dispatch import Rejected
from lifecycle.handlers.promotion import model_promoted, model_shared, review
from lifecycle.handlers.rollout import model_registered
from lifecycle.steps.rollouts import tick
from tests.fakes import fake_environments, fake_platform
from tests.lifecycle.test_rollout import EP, now

MODEL = "tabular-classifier"


def event(event_type: str, data: dict):
    return events.parse({"id": str(uuid.uuid4()), "eventType": event_type, "subject": "x",
                         "eventTime": "2026-11-30T10:00:00Z", "dataVersion": "1.0", "data": data})


def released(p, version: str, *, outcome_ready: str = "Succeeded"):
    """`version` trained (with lineage tags), registered and rolled out in p as its first model."""
    p.registry.register(MODEL, f"job-{version}", {"mlops.data": f"http://data/drop-{version}/",
                                                  "mlops.data_batches": f"b{version}a,b{version}b",
                                                  "metric.f1": "0.9100"})
    model_registered(event("Microsoft.MachineLearningServices.ModelRegistered",
                           {"ModelName": MODEL, "ModelVersion": version}), p)
    p.endpoints.ready(EP, "blue", outcome_ready)
    for _ in range(3):
        tick(p, now())
    return p.state.get(Rollout, EP)


def promoted_event(p):
    (published,) = [d for t, _, d in p.events.published if t == "MLOps.ModelPromoted"]
    return event("MLOps.ModelPromoted", published)


def shared_event(preprod):
    (published,) = [d for t, _, d in preprod.promotion_events.published if t == "MLOps.ModelShared"]
    return event("MLOps.ModelShared", published)


def test_preprod_shares_what_survived_its_canary_with_its_lineage_and_tells_production_once():
    preprod, prod = fake_environments()
    assert released(preprod, "1").phase == "promoted"
    promotion = model_promoted(promoted_event(preprod), preprod)
    assert (promotion.status, promotion.published) == (PromotionStatus.SHARED, True)
    assert promotion.asset_id == f"azureml://registries/mlops-registry/models/{MODEL}/versions/1"
    shared = prod.registry.get(MODEL, "1")
    assert shared.registry == "mlops-registry"
    assert {shared.tags[k] for k in ("mlops.preprod_version", "mlops.job", "mlops.data_batches", "metric.f1")} \
        == {"1", "job-1", "b1a,b1b", "0.9100"}
    assert shared.tags["mlops.preprod_rollout"] == f"{EP}/{MODEL}-1"
    # a replayed ModelPromoted shares nothing and tells production nothing again
    model_promoted(promoted_event(preprod), preprod)
    assert preprod.shared_registry.shared == [f"{MODEL}:1"]
    assert [t for t, _, _ in preprod.promotion_events.published] == ["MLOps.ModelShared"]


def test_a_model_rolled_back_in_preprod_never_reaches_the_registry():
    preprod, prod = fake_environments()
    released(preprod, "1", outcome_ready="Failed")          # its deployment failed: rolled back
    with pytest.raises(Rejected, match="rolled back"):
        model_promoted(event("MLOps.ModelPromoted", {"model": f"{MODEL}:1"}), preprod)
    assert prod.registry.get(MODEL, "1") is None and preprod.promotion_events.published == []


def test_production_rolls_the_registry_model_out_through_its_own_rollout_once():
    preprod, prod = fake_environments()
    released(preprod, "1")
    model_promoted(promoted_event(preprod), preprod)
    promotion = model_shared(shared_event(preprod), prod)
    assert promotion.status == PromotionStatus.ROLLING_OUT
    assert prod.endpoints.assets == [f"azureml://registries/mlops-registry/models/{MODEL}/versions/1"]
    prod.endpoints.ready(EP, "blue")
    for _ in range(2):
        tick(prod, now())
    assert prod.state.get(Rollout, EP).phase == "promoted"
    assert prod.endpoints.get(EP).traffic == {"blue": 100}
    # replayed: the rollout's history says it is done
    model_shared(shared_event(preprod), prod)
    assert len(prod.endpoints.assets) == 1
    assert prod.state.get(Promotion, f"{MODEL}-1").source["job"] == "job-1"


def test_with_approval_production_waits_and_a_rejection_leaves_it_unchanged():
    preprod, prod = fake_environments(approval="required")
    released(preprod, "1")
    model_promoted(promoted_event(preprod), preprod)
    waiting = model_shared(shared_event(preprod), prod)
    assert waiting.status == PromotionStatus.AWAITING_APPROVAL
    assert prod.endpoints.assets == [] and "MLOps.PromotionAwaitingApproval" in prod.events.types()
    rejected = review(prod, f"{MODEL}:1", approve=False, by="ana")
    assert (rejected.status, rejected.decided_by) == (PromotionStatus.REJECTED, "ana")
    assert prod.endpoints.assets == [] and prod.state.get(Rollout, EP) is None
    with pytest.raises(ValueError, match="not awaiting approval"):
        review(prod, f"{MODEL}:1", approve=True, by="ana")


def test_approved_production_starts_its_rollout():
    preprod, prod = fake_environments(approval="required")
    released(preprod, "1")
    model_promoted(promoted_event(preprod), preprod)
    model_shared(shared_event(preprod), prod)
    approved = review(prod, f"{MODEL}:1", approve=True, by="ana")
    assert approved.status == PromotionStatus.ROLLING_OUT
    assert prod.state.get(Rollout, EP).model == f"{MODEL}:1"


def test_an_app_that_is_not_that_stage_ignores_the_event_and_a_foreign_registry_is_refused():
    p = fake_platform()
    assert model_promoted(event("MLOps.ModelPromoted", {"model": f"{MODEL}:1"}), p) is None
    assert model_shared(event("MLOps.ModelShared", {"model": MODEL, "version": "1", "registry": "r"}), p) is None
    _, prod = fake_environments()
    with pytest.raises(Rejected, match="AZUREML_REGISTRY"):
        model_shared(event("MLOps.ModelShared", {"model": MODEL, "version": "1", "registry": "other"}), prod)


def test_production_monitors_its_live_registry_model_by_the_registrys_asset_id():
    from lifecycle.core.platform_values import ModelReference
    from lifecycle.handlers.monitoring import monitor
    preprod, prod = fake_environments()
    released(preprod, "1")
    model_promoted(promoted_event(preprod), preprod)
    model_shared(shared_event(preprod), prod)
    prod.endpoints.ready(EP, "blue")
    for _ in range(2):
        tick(prod, now())
    prod.registry.references[f"{MODEL}:1"] = ModelReference(profile={}, metrics={})
    prod.collected.rows[("blue", "model_inputs")] = [{"age": 30, "request_id": "r1"}]
    assert monitor(prod, now()) is not None
    (request,) = prod.jobs.monitoring
    assert request.model_asset_id == f"azureml://registries/mlops-registry/models/{MODEL}/versions/1"
