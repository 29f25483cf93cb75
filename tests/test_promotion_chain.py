"""Promotion end to end on the local two-environment stack (`mlops up --environments preprod,prod`), prod
asking for a person's approval: a model that survived its canary in preprod goes into the registry, and prod
waits; a rejection leaves prod unchanged; the next model, approved over prod's HTTP route, reaches 100% in
prod through prod's own rollout, with lineage from prod's deployment through the registry version to
preprod's version, job and data batches; a replayed promotion promotes once; a model rolled back in preprod
never reaches the registry."""
from __future__ import annotations

import uuid

import pytest
import requests

from emulator.timeline import Timeline
from lifecycle.core.rollout_machine import Rollout, RolloutEvent
from lifecycle.core.state_records import DataBatch, Decision, Promotion, PromotionStatus, Rejection
from lifecycle.handlers.promotion import review
from lifecycle.handlers.rollout import override
from mlops.demo_data import loan_csv
from mlops.status import collect
from tests.conftest import start_environments, wait_until
from tests.test_chain import drop, job_of, serving

pytestmark = [pytest.mark.stack, pytest.mark.chains]      # two local stacks on one Azurite (make chains)

SETTINGS = {"RECONCILE_SCHEDULE": "*/1 * * * * *", "RETRAIN_COOLDOWN_MINUTES": "0", "ROLLOUT_BAKE_SECONDS": "3",
            "ROLLOUT_MIN_REQUESTS": "20", "ROLLOUT_RETENTION_SECONDS": "0"}
REGISTRY = "mlops-registry"


@pytest.fixture(scope="module")
def environments(tmp_path_factory):
    environments, platforms, data = start_environments(tmp_path_factory, "promotion", SETTINGS, approval="required")
    yield environments, platforms, data
    environments.stop()


def deliveries(home, function: str) -> list:
    return [r for r in Timeline(home.timeline).read() if r.function == function and r.outcome == "delivered"]


def post(info, event_type: str, data: dict) -> None:
    answer = requests.post(info.eventgrid_endpoint, headers={"aeg-sas-key": info.eventgrid_key}, timeout=10, json=[{
        "id": str(uuid.uuid4()), "eventType": event_type, "subject": "test", "eventTime": "2026-11-30T10:00:00Z",
        "dataVersion": "1.0", "data": data}])
    assert answer.status_code == 200, answer.text


def registered(p, data, folder: str, seed: int) -> Decision:
    drop(data, folder, [loan_csv(1500, seed=seed), loan_csv(1500, seed=seed + 100)])
    job = job_of(p, folder)
    decision = wait_until(lambda: p.state.get(Decision, job), timeout=150, what=f"preprod's gate on {job}")
    assert decision.outcome == "registered", decision.reasons
    return decision


def awaiting(prod, ref: str) -> Promotion:
    return wait_until(lambda: (r := prod.state.get(Promotion, ref.replace(":", "-")))
                      and r.status == PromotionStatus.AWAITING_APPROVAL and r, timeout=60,
                      what=f"prod to be told of {ref} and wait for a person")


def test_promotion_through_the_registry_with_approval(environments):
    envs, platforms, data = environments
    preprod, prod = platforms["preprod"], platforms["prod"]
    pre_info, prod_info = envs.infos["preprod"], envs.infos["prod"]
    name, endpoint = preprod.policies.model.name, preprod.policies.model.endpoint

    # 1. the first model, promoted in preprod, is shared; prod waits, and a rejection leaves it unchanged
    first = registered(preprod, data["preprod"], "loans/day-1/", seed=1)
    ref1 = f"{name}:{first.version}"
    serving(preprod, ref1)                              # preprod's own rollout (the first model: smoke test)
    waiting = awaiting(prod, ref1)
    assert waiting.asset_id == f"azureml://registries/{REGISTRY}/models/{name}/versions/{first.version}"
    assert prod.registry.get(name, first.version).tags["mlops.preprod_version"] == first.version
    assert prod.endpoints.get(endpoint) is None
    assert review(prod, ref1, approve=False, by="ana").status == PromotionStatus.REJECTED
    assert prod.endpoints.get(endpoint) is None and prod.state.get(Rollout, endpoint) is None

    # 2. the next one earns its traffic in preprod's canary, is approved over prod's route, and takes prod
    second = registered(preprod, data["preprod"], "loans/day-2/", seed=2)
    ref2 = f"{name}:{second.version}"
    serving(preprod, ref2, pre_info)                    # judged under traffic in preprod
    awaiting(prod, ref2)
    approved = requests.post(f"{prod_info.functions_url}/api/promotions/{name}/{second.version}/approve",
                             params={"by": "ana", "code": prod_info.functions_key}, timeout=30)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == PromotionStatus.ROLLING_OUT
    serving(prod, ref2)                                 # prod's own rollout, deployed from the registry

    # lineage: prod's deployment → registry version → preprod version → job → data batches
    (chain,) = collect(prod)["lineage"]
    batches = {b.batch_id for b in preprod.state.list(DataBatch) if b.blob_path.startswith("loans/day-2/part-")}
    assert (chain["registry"], chain["model"], chain["preprod_version"], chain["job"]) == (
        REGISTRY, ref2, second.version, job_of(preprod, "loans/day-2/"))
    assert set(chain["data_batches"]) == batches and len(batches) == 2

    # 3. a replayed ModelShared promotes once: prod's history says it is done
    post(prod_info, "MLOps.ModelShared", {"registry": REGISTRY, "model": name, "version": second.version})
    wait_until(lambda: len(deliveries(envs.homes["prod"], "on_model_shared")) == 3, timeout=30,
               what="the replayed MLOps.ModelShared to be handled")
    assert [r.model for r in prod.state.list(RolloutEvent)] == [ref2]

    # 4. a model rolled back in preprod never reaches the registry, even if told it was promoted
    third = registered(preprod, data["preprod"], "loans/day-3/", seed=3)
    ref3 = f"{name}:{third.version}"
    wait_until(lambda: (r := preprod.state.get(Rollout, endpoint)) and r.model == ref3, timeout=30,
               what=f"preprod's rollout of {ref3} to start")
    override(preprod, endpoint, "rollback")
    wait_until(lambda: (r := preprod.state.get(RolloutEvent, f"{endpoint}/{ref3.replace(':', '-')}"))
               and r.outcome == "rolled_back", timeout=30, what=f"{ref3}'s rollback to settle in preprod")
    post(pre_info, "MLOps.ModelPromoted", {"model": ref3})
    wait_until(lambda: any(ref3 in r.reason and "rolled back" in r.reason for r in preprod.state.list(Rejection)),
               timeout=30, what="preprod to refuse promoting a model its history says was rolled back")
    assert prod.registry.get(name, third.version) is None
    assert {r.model for r in prod.state.list(Promotion)} == {ref1, ref2}
    assert [d.model for d in prod.endpoints.get(endpoint).deployments] == [ref2]
