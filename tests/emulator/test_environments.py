"""preprod and prod side by side (emulator/environments.py, `mlops up --environments preprod,prod`): one
Azurite with each environment's storage apart, each app told its stage, preprod told prod's topic, and a
model preprod shares into the registry deployed by prod's stand-in, serving again after a restart."""
from __future__ import annotations

import json
import stat
import uuid

import pytest
import requests
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from emulator.aml.shared_registry import asset_id
from emulator.environments import PROD_CONTAINERS, REGISTRY, Environments, EnvironmentsInfo, parse_environments
from emulator.home import StackHome
from emulator.stack import StackError, StackInfo
from emulator.timeline import Timeline
from mlops.local import app_settings
from tests.conftest import start_environments, wait_until
from tests.deployment.sample_model import build_model, features

pytestmark = pytest.mark.stack       # two local stacks on one Azurite, and an inference server

MODEL = "shared-churn"               # not the apps' MODEL_NAME: neither app acts on it
ENDPOINT = "shared-endpoint"         # nor on this endpoint
# a drop never ready for training within the test (and no monitor passes): the apps stay idle
SETTINGS = {"DROP_QUIET_SECONDS": "86400"}


def call(info: StackInfo, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, info.aml_url + path, json=body, timeout=30,
                            headers={"Authorization": f"Bearer {info.aml_key}"})


def score(info: StackInfo) -> requests.Response:
    key = call(info, "GET", f"/endpoints/{ENDPOINT}/keys").json()["primaryKey"]
    rows = features(3, seed=4).to_dict(orient="records")
    return requests.post(f"{info.scoring_uri.rsplit('/endpoints/', 1)[0]}/endpoints/{ENDPOINT}/score",
                         json={"data": rows}, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def delivered(home: StackHome, blob: str) -> list[str]:
    return [r.function for r in Timeline(home.timeline).read() if r.subject.endswith(blob) and r.outcome == "delivered"]


def test_environments_are_preprod_and_prod_only():
    assert parse_environments("prod, preprod") == ("preprod", "prod")
    for wrong in ("prod", "dev,prod", "preprod,prod,test"):
        with pytest.raises(StackError, match="runs preprod,prod together"):
            parse_environments(wrong)
    with pytest.raises(StackError, match="approval 'maybe'"):
        Environments(StackHome.default(), approval="maybe")


def test_prod_deploys_a_model_preprod_shared_and_serves_it_again_after_a_restart(tmp_path_factory):
    environments, platforms, data = start_environments(tmp_path_factory, "environments", SETTINGS,
                                                       approval="required")
    home, info = environments.home, environments.info
    try:
        preprod, prod = environments.infos["preprod"], environments.infos["prod"]
        homes = environments.homes
        # one Azurite; each environment's own home, keys, Event Grid, Functions host and stand-in
        assert preprod.storage_connection_string == prod.storage_connection_string == info.storage_connection_string
        assert len({preprod.eventgrid_key, prod.eventgrid_key}) == 2 and preprod.aml_url != prod.aml_url
        assert StackInfo.read(homes["prod"]) == prod and StackInfo.read(homes["preprod"]) == preprod
        assert EnvironmentsInfo.read(home) == info
        assert stat.S_IMODE(home.path("environments.json").stat().st_mode) == 0o600
        assert info.environments["prod"]["containers"] == {**PROD_CONTAINERS}
        assert info.registry["name"] == REGISTRY and info.approval == "required"

        # the app settings each app reads
        pre_settings, prod_settings = app_settings(homes["preprod"]), app_settings(homes["prod"])
        assert {k: pre_settings[k] for k in ("MLOPS_STAGE", "AZUREML_REGISTRY", "PROMOTION_TOPIC_ENDPOINT",
                                             "PROMOTION_TOPIC_KEY")} == {
            "MLOPS_STAGE": "preprod", "AZUREML_REGISTRY": REGISTRY,
            "PROMOTION_TOPIC_ENDPOINT": prod.eventgrid_endpoint, "PROMOTION_TOPIC_KEY": prod.eventgrid_key}
        assert {k: prod_settings[k] for k in ("MLOPS_STAGE", "AZUREML_REGISTRY", "PROMOTION_APPROVAL")} == {
            "MLOPS_STAGE": "prod", "AZUREML_REGISTRY": REGISTRY, "PROMOTION_APPROVAL": "required"}
        assert all(prod_settings[k] == v for k, v in PROD_CONTAINERS.items())
        assert "DATA_CONTAINER" not in pre_settings and "PROMOTION_APPROVAL" not in pre_settings

        # each environment's storage apart: containers, queues, and data reaching only its own app
        storage = BlobServiceClient.from_connection_string(info.storage_connection_string)
        containers = {c.name for c in storage.list_containers()}
        assert {"azureml-registry", "prod-azureml-registry", "eventgrid-spool", "prod-eventgrid-spool", "deadletter",
                "prod-deadletter", "azureml", "prod-azureml", f"azureml-registry-{REGISTRY}"} <= containers
        queues = {q.name for q in QueueServiceClient.from_connection_string(
            info.storage_connection_string).list_queues()}
        assert {"eg-data-arrived", "eg-prod-data-arrived"} <= queues
        assert (data["preprod"].container_name, data["prod"].container_name) == ("data", "prod-data")
        blob = f"probe/{uuid.uuid4().hex[:8]}.csv"
        data["prod"].upload_blob(blob, b"a,b\n1,2\n")
        wait_until(lambda: delivered(homes["prod"], blob) == ["on_data_arrived"], timeout=60, interval=0.2,
                   what="prod's app to get the blob dropped into prod-data")
        data["preprod"].upload_blob(blob, b"a,b\n1,2\n")
        wait_until(lambda: delivered(homes["preprod"], blob) == ["on_data_arrived"], timeout=60, interval=0.2,
                   what="preprod's app to get the blob dropped into data")
        assert delivered(homes["prod"], blob) == ["on_data_arrived"]           # once: not preprod's drop too

        # preprod registers a model and shares it into the registry; prod deploys it from there
        assert call(preprod, "POST", f"/models/{MODEL}/versions",
                    {"path": str(build_model(tmp_path_factory.mktemp("model") / "model"))}).status_code == 201
        shared = call(preprod, "PUT", f"/registries/{REGISTRY}/models/{MODEL}/versions/1",
                      {"source": f"{MODEL}:1", "tags": {"stage": "preprod"}})
        assert shared.status_code == 201, shared.text
        assert shared.json()["asset_id"] == asset_id(REGISTRY, MODEL, "1")
        assert call(prod, "GET", f"/models/{MODEL}/versions").json() == []      # not in prod's workspace
        assert call(prod, "GET", f"/registries/{REGISTRY}/models/{MODEL}/versions/1").json() == shared.json()
        assert call(prod, "PUT", f"/endpoints/{ENDPOINT}").status_code == 201
        created = call(prod, "PUT", f"/endpoints/{ENDPOINT}/deployments/blue",
                       {"model": asset_id(REGISTRY, MODEL, "1")})
        assert created.status_code == 202, created.text
        wait_until(lambda: call(prod, "GET", f"/endpoints/{ENDPOINT}").json()["deployments"][0]["state"]
                   == "Succeeded", timeout=180, interval=0.5, what="prod's deployment of the registry model to serve")
        assert call(prod, "PUT", f"/endpoints/{ENDPOINT}/traffic", {"traffic": {"blue": 100}}).status_code == 200
        endpoint = call(prod, "GET", f"/endpoints/{ENDPOINT}").json()
        assert endpoint["deployments"][0]["model"] == f"{MODEL}:1"                # as the lifecycle compares it
        assert endpoint["deployments"][0]["model_asset_id"] == asset_id(REGISTRY, MODEL, "1")
        assert [d.model for d in platforms["prod"].endpoints.get(ENDPOINT).deployments] == [f"{MODEL}:1"]
        answer = score(prod)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3, answer.text
    finally:
        environments.stop()
    assert not home.path("environments.json").exists() and StackInfo.read(homes["prod"]) is None

    again = Environments(home, environments.options, approval="required")
    again.start()
    try:
        prod = again.infos["prod"]
        # start() returned once prod's restored deployments served: no waiting
        endpoint = call(prod, "GET", f"/endpoints/{ENDPOINT}").json()
        assert [(d["model"], d["state"]) for d in endpoint["deployments"]] == [(f"{MODEL}:1", "Succeeded")]
        assert endpoint["traffic"] == {"blue": 100}
        assert score(prod).status_code == 200
        saved = json.loads(homes["prod"].path("aml", "endpoints", f"{ENDPOINT}.json").read_text())
        assert saved["deployments"] == {"blue": asset_id(REGISTRY, MODEL, "1")}
    finally:
        again.stop()
