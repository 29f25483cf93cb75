"""The Azure ML registry stand-in (emulator/aml/shared_registry.py) and its routes on the workspace stand-in:
sharing is idempotent, a share cut short between the files and the record is finished by the next one, two
stand-ins on their own loops share one registry, and what it does not have is refused with its reason."""
from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from emulator.aml.service import LocalAzureML
from emulator.aml.shared_registry import SharedRegistry, SharedRegistryError, asset_id, parse_asset_id
from emulator.loop import BackgroundLoop

KEY = "aml-key-for-tests"
WORKSPACE_ID = "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w"


class QuietGrid:
    topic_ids = {"workspace": WORKSPACE_ID}

    async def publish(self, topic, events) -> None:
        pass


def model_folder(path, marker: str = "a"):
    """What the registry copies: an MLmodel file, a reference profile and sample, metrics beside them."""
    (path / "reference").mkdir(parents=True)
    (path / "MLmodel").write_text(f"flavors: {{}}\n# {marker}\n")
    (path / "model.pkl").write_bytes(b"weights " + marker.encode())
    (path / "reference" / "profile.json").write_text(json.dumps({"features": ["x"], "rows": 3}))
    (path / "reference" / "sample.csv").write_text("x,y\n1,a\n2,b\n3,\n")
    (path / "metrics.json").write_text(json.dumps({"f1": 0.8}))
    return path


@pytest.fixture
def registry(azurite, tmp_path) -> SharedRegistry:
    # its own name (so its own container) per test: the session's Azurite is shared
    return SharedRegistry(tmp_path / "registry", azurite.connection_string, f"reg-{uuid.uuid4().hex[:8]}")


def test_sharing_is_idempotent_and_resolves_by_asset_id(registry, tmp_path):
    source = model_folder(tmp_path / "source")

    async def run():
        await registry.start()
        try:
            first = await registry.share(source, "churn", "3", {"stage": "preprod"}, "from preprod")
            again = await registry.share(model_folder(tmp_path / "other", "b"), "churn", "3", {"stage": "x"})
            tagged = await registry.update_tags("churn", "3", {"approved": "yes"})
            return first, again, tagged, await registry.versions("churn"), await registry.names()
        finally:
            await registry.close()

    (model, created), (existing, created_again), tagged, versions, names = asyncio.run(run())
    assert created and not created_again
    assert existing == model                                        # as it was: the second folder is not used
    assert model["asset_id"] == f"azureml://registries/{registry.name}/models/churn/versions/3"
    assert (model["registry"], model["name"], model["version"]) == (registry.name, "churn", "3")
    assert model["tags"] == {"stage": "preprod"} and model["description"] == "from preprod"
    assert tagged["tags"] == {"stage": "preprod", "approved": "yes"}
    assert [v["version"] for v in versions] == ["3"] and names == ["churn"]

    folder = registry.resolve(model["asset_id"])
    assert folder == registry.model_dir("churn", "3") and (folder / "model.pkl").read_bytes() == b"weights a"
    assert registry.resolve("churn:3") == folder
    assert registry.resolve(asset_id("another-registry", "churn", "3")) is None
    assert registry.resolve(asset_id(registry.name, "churn", "4")) is None
    assert registry.resolve("../churn:3") is None
    assert parse_asset_id(model["asset_id"]) == (registry.name, "churn", "3")
    assert parse_asset_id("churn:3") is None


def test_a_share_cut_short_between_files_and_record_is_finished_by_the_next(registry, tmp_path, monkeypatch):
    source = model_folder(tmp_path / "source")
    real_write = SharedRegistry._write_record

    async def killed(self, name, version, model):
        raise KeyboardInterrupt("killed after the files, before the record")

    async def run():
        await registry.start()
        try:
            monkeypatch.setattr(SharedRegistry, "_write_record", killed)
            with pytest.raises(KeyboardInterrupt):
                await registry.share(source, "churn", "1", {"n": "1"})
            left = (registry.model_dir("churn", "1") / "MLmodel").exists(), await registry.get("churn", "1")
            # a copy a kill cut short mid-way lies beside the version's folder: it is never used
            (registry.model_dir("churn", "1").parent / ".model.cut.tmp").mkdir()
            monkeypatch.setattr(SharedRegistry, "_write_record", real_write)
            return left, await registry.share(source, "churn", "1", {"n": "1"})
        finally:
            await registry.close()

    (files_there, record), (model, created) = asyncio.run(run())
    assert files_there and record is None
    assert created and model["tags"] == {"n": "1"}
    assert registry.resolve(model["asset_id"]) == registry.model_dir("churn", "1")
    assert sorted(p.name for p in registry.model_dir("churn", "1").iterdir()) == sorted(
        p.name for p in source.iterdir())


def test_stand_ins_on_two_loops_share_one_registry(registry, tmp_path):
    """One version, shared by two environments at once: one creates it, the other gets it; tags merged by
    both are both kept."""
    sources = [model_folder(tmp_path / f"source-{i}", str(i)) for i in range(2)]
    loops = [BackgroundLoop(f"test-registry-{i}") for i in range(2)]

    async def share(i):
        await registry.start()
        return await registry.share(sources[i], "churn", "7", {"by": str(i)})

    async def tag(i):
        return await registry.update_tags("churn", "7", {f"seen-{i}": "yes"})

    try:
        with ThreadPoolExecutor(2) as pool:
            shared = list(pool.map(lambda i: loops[i].run(share(i)), range(2)))
            list(pool.map(lambda i: loops[i].run(tag(i)), range(2)))
        final = loops[0].run(registry.get("churn", "7"))
    finally:
        for loop in loops:
            loop.run(registry.close())
            loop.close()
    assert sorted(created for _, created in shared) == [False, True]
    assert shared[0][0]["created"] == shared[1][0]["created"]              # the same record
    winner = shared[0][0]["tags"]["by"]
    assert (registry.model_dir("churn", "7") / "model.pkl").read_bytes() in (b"weights 0", b"weights 1")
    assert final["tags"] == {"by": winner, "seen-0": "yes", "seen-1": "yes"}


def test_names_and_versions_are_checked(registry, tmp_path):
    async def run():
        await registry.start()
        try:
            with pytest.raises(SharedRegistryError, match="model name"):
                await registry.share(model_folder(tmp_path / "a"), "../up", "1", {})
            with pytest.raises(SharedRegistryError, match="no MLflow model"):
                await registry.share(tmp_path, "churn", "1", {})
            with pytest.raises(SharedRegistryError, match="is not in registry") as missing:
                await registry.update_tags("churn", "9", {"a": "b"})
            assert missing.value.status == 404
            assert await registry.get("churn", "9") is None and await registry.versions("churn") == []
        finally:
            await registry.close()

    asyncio.run(run())


class StandIn:
    def __init__(self, root, azurite, shared: SharedRegistry | None, registry_container: str) -> None:
        self.loop = BackgroundLoop("test-registry-standin")
        self.aml = LocalAzureML(root, azurite.connection_string, QuietGrid(), "workspace", KEY,
                                collector_container=f"collected-{uuid.uuid4().hex[:8]}",
                                registry_container=registry_container, shared_registry=shared)
        self.loop.run(self.aml.start())

    def call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, self.aml.url + path, json=body, timeout=30,
                                headers={"Authorization": f"Bearer {KEY}"})

    def close(self) -> None:
        try:
            self.loop.run(self.aml.close())
        finally:
            self.loop.close()


def test_the_stand_in_shares_its_models_into_the_registry(azurite, registry, tmp_path):
    preprod = StandIn(tmp_path / "preprod", azurite, registry, f"reg-preprod-{uuid.uuid4().hex[:8]}")
    prod = StandIn(tmp_path / "prod", azurite, registry, f"reg-prod-{uuid.uuid4().hex[:8]}")
    alone = StandIn(tmp_path / "alone", azurite, None, f"reg-alone-{uuid.uuid4().hex[:8]}")
    try:
        source = str(model_folder(tmp_path / "model"))
        assert preprod.call("POST", "/models/churn/versions", {"path": source}).status_code == 201
        # each workspace registry has its own container: prod does not see preprod's model
        assert [m["version"] for m in preprod.call("GET", "/models/churn/versions").json()] == ["1"]
        assert prod.call("GET", "/models/churn/versions").json() == []

        base = f"/registries/{registry.name}/models/churn/versions"
        first = preprod.call("PUT", f"{base}/1", {"source": "churn:1", "tags": {"stage": "preprod"},
                                                  "description": "promoted in preprod"})
        assert first.status_code == 201, first.text
        model = first.json()
        assert model["asset_id"] == asset_id(registry.name, "churn", "1") and model["registry"] == registry.name
        assert model["properties"]["mlops.shared_from"] == f"{WORKSPACE_ID}/models/churn/versions/1"
        again = preprod.call("PUT", f"{base}/1", {"source": "churn:1", "tags": {"other": "x"}})
        assert again.status_code == 200 and again.json() == model

        # prod reads the same registry: the model, its tags, its reference
        assert prod.call("GET", f"{base}/1").json() == model
        assert [m["version"] for m in prod.call("GET", base).json()] == ["1"]
        assert prod.call("GET", f"/registries/{registry.name}/models").json() == ["churn"]
        patched = prod.call("PATCH", f"{base}/1", {"tags": {"approved": "yes"}}).json()
        assert patched["tags"] == {"stage": "preprod", "approved": "yes"}
        assert prod.call("GET", f"{base}/1/reference").json() == {"profile": {"features": ["x"], "rows": 3},
                                                                  "metrics": {"f1": 0.8}}
        assert prod.call("GET", f"{base}/1/reference-sample?rows=2").json() == [{"x": 1, "y": "a"},
                                                                                {"x": 2, "y": "b"}]

        # what is not there is refused with its reason
        unknown_registry = prod.call("PUT", "/registries/elsewhere/models/churn/versions/1", {"source": "churn:1"})
        assert unknown_registry.status_code == 404
        assert unknown_registry.json()["error"] == ("registry 'elsewhere' does not exist: this workspace uses "
                                                    f"registry '{registry.name}'")
        unknown_source = prod.call("PUT", f"{base}/2", {"source": "churn:1"})       # prod never registered it
        assert unknown_source.status_code == 404
        assert unknown_source.json()["error"] == "model churn:1 is not registered in this workspace: nothing to share"
        assert preprod.call("PUT", f"{base}/2", {"tags": {}}).status_code == 400
        assert prod.call("GET", f"{base}/2").status_code == 404
        assert prod.call("GET", f"{base}/2/reference").status_code == 404
        assert prod.call("PATCH", f"{base}/2", {"tags": {"a": "b"}}).status_code == 404
        assert prod.call("GET", "/registries/elsewhere/models/churn/versions").status_code == 404
        no_registry = alone.call("GET", f"{base}/1")
        assert no_registry.status_code == 404 and "uses no Azure ML registry" in no_registry.json()["error"]

        # a deployment names a registry model by its asset id; one the registry does not have is refused
        assert prod.call("PUT", "/endpoints/shared-ep").status_code == 201
        missing = prod.call("PUT", "/endpoints/shared-ep/deployments/blue",
                            {"model": asset_id(registry.name, "churn", "5")})
        assert missing.status_code == 404 and "is not in registry" in missing.json()["error"]
        elsewhere = prod.call("PUT", "/endpoints/shared-ep/deployments/blue",
                              {"model": asset_id("elsewhere", "churn", "1")})
        assert elsewhere.status_code == 404 and "registry 'elsewhere' does not exist" in elsewhere.json()["error"]
        assert alone.call("PUT", "/endpoints/alone-ep").status_code == 201
        assert alone.call("PUT", "/endpoints/alone-ep/deployments/blue",
                          {"model": model["asset_id"]}).status_code == 404
    finally:
        for stand_in in (alone, prod, preprod):
            stand_in.close()
