"""Promotion end to end on the local two-environment stack (`mlops up --environments preprod,prod`): a model
that survived its canary in preprod goes into the registry and reaches 100% in prod through prod's own
rollout, after a person approves it; lineage leads back from prod's deployment through the registry version
to preprod's version, job and data batches; a replayed promotion promotes once, and a version preprod never
promoted never reaches the registry."""
from __future__ import annotations

import uuid

import pytest
import requests

from emulator.timeline import Timeline
from lifecycle.core.rollout_machine import RolloutEvent
from lifecycle.core.state_records import DataBatch, Decision, Promotion, PromotionStatus, Rejection
from mlops.demo_data import loan_csv
from mlops.status import collect
from tests.conftest import start_environments, wait_until
from tests.test_chain import drop, job_of, serving

pytestmark = pytest.mark.stack      # two local stacks on one Azurite

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


def post(info, topic_url: str, event_type: str, data: dict) -> None:
    answer = requests.post(topic_url, headers={"aeg-sas-key": info.eventgrid_key}, timeout=10, json=[{
        "id": str(uuid.uuid4()), "eventType": event_type, "subject": "test", "eventTime": "2026-11-30T10:00:00Z",
        "dataVersion": "1.0", "data": data}])
    assert answer.status_code == 200, answer.text


def test_a_model_promoted_in_preprod_reaches_prod_through_the_registry_after_approval(environments):
    envs, platforms, data = environments
    preprod, prod = platforms["preprod"], platforms["prod"]
    prod_info = envs.infos["prod"]
    name = preprod.policies.model.name

    drop(data["preprod"], "loans/day-1/", [loan_csv(1200, seed=1), loan_csv(1200, seed=2)])
    job = job_of(preprod, "loans/day-1/")
    decision = wait_until(lambda: preprod.state.get(Decision, job), timeout=150, what="preprod's gate")
    assert decision.outcome == "registered", decision.reasons
    ref = f"{name}:{decision.version}"
    serving(preprod, ref)                                 # preprod's own rollout (the first model: smoke test)

    # preprod shares it; prod is told and waits for a person
    waiting = wait_until(lambda: (r := prod.state.get(Promotion, ref.replace(":", "-")))
                         and r.status == PromotionStatus.AWAITING_APPROVAL and r, timeout=60,
                         what="prod to be told of the shared model")
    assert waiting.asset_id == f"azureml://registries/{REGISTRY}/models/{name}/versions/{decision.version}"
    shared = prod.registry.get(name, decision.version)
    assert shared.registry == REGISTRY and shared.tags["mlops.job"] == job
    assert shared.tags["mlops.preprod_version"] == decision.version
    assert prod.endpoints.get(prod.policies.model.endpoint) is None      # prod unchanged while it waits

    # approved over prod's HTTP route, as the promotion workflow does
    approved = requests.post(f"{prod_info.functions_url}/api/promotions/{name}/{decision.version}/approve",
                             params={"by": "ana", "code": prod_info.functions_key}, timeout=30)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == PromotionStatus.ROLLING_OUT
    serving(prod, ref)                                    # prod's own rollout: deployed from the registry

    # lineage: prod's deployment → registry version → preprod version → job → data batches
    (chain,) = collect(prod)["lineage"]
    batches = {b.batch_id for b in preprod.state.list(DataBatch) if b.blob_path.startswith("loans/day-1/part-")}
    assert (chain["registry"], chain["model"], chain["preprod_version"], chain["job"]) == (
        REGISTRY, ref, decision.version, job)
    assert set(chain["data_batches"]) == batches and len(batches) == 2

    # a replayed ModelShared promotes once: prod's history says it is done
    post(prod_info, prod_info.eventgrid_endpoint, "MLOps.ModelShared",
         {"registry": REGISTRY, "model": name, "version": decision.version})
    wait_until(lambda: len(deliveries(envs.homes["prod"], "on_model_shared")) == 2, timeout=30,
               what="the replayed MLOps.ModelShared to be handled")
    # a version preprod never promoted is refused there and never reaches the registry
    preprod_info = envs.infos["preprod"]
    post(preprod_info, preprod_info.eventgrid_endpoint, "MLOps.ModelPromoted", {"model": f"{name}:99"})
    wait_until(lambda: any("99" in r.reason for r in preprod.state.list(Rejection)), timeout=30,
               what="preprod to refuse a promotion its history does not show")
    assert prod.registry.get(name, "99") is None
    assert [r.model for r in prod.state.list(RolloutEvent)] == [ref]
    endpoint = prod.endpoints.get(prod.policies.model.endpoint)
    assert [d.model for d in endpoint.deployments] == [ref]
