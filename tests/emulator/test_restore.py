"""The Azure ML stand-in's endpoints after a restart, on real inference servers: every deployment is started
again, all at once, and start() returns once each serves or has failed with its reason; files holding
secrets are owner-only; nothing is left running after close(), even one that came while restoring."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import time
import uuid
from concurrent.futures import Future

import psutil
import pytest
import requests

from emulator.aml.service import LocalAzureML
from emulator.home import StackHome, write_private
from emulator.loop import BackgroundLoop
from lifecycle.adapters.local_ml import LocalAML, LocalEndpoints
from tests.conftest import wait_until
from tests.deployment.sample_model import build_model, features

KEY = "aml-key-for-tests"
ENDPOINT = "restored-endpoint"
WORKSPACE_ID = "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w"


class QuietGrid:
    """What the stand-in needs from the local Event Grid: the workspace topic's id, and somewhere to publish."""
    topic_ids = {"workspace": WORKSPACE_ID}

    async def publish(self, topic, events) -> None:
        pass


class StandIn:
    """A LocalAzureML on its own loop, started on `root` (restoring what is there)."""

    def __init__(self, root, azurite, container: str) -> None:
        self.loop = BackgroundLoop("test-aml-restore")
        self.aml = LocalAzureML(root, azurite.connection_string, QuietGrid(), "workspace", KEY,
                                collector_container=container)
        started = time.monotonic()
        self.loop.run(self.aml.start(), timeout=300)
        self.start_seconds = time.monotonic() - started
        self.client = LocalAML(self.aml.url, KEY)
        self.endpoints = LocalEndpoints(self.client)

    def close(self) -> None:
        try:
            self.loop.run(self.aml.close())
        finally:
            self.loop.close()


def serving_processes(root) -> list[psutil.Process]:
    """The serving processes (gunicorn arbiters and their workers) of the stand-in on `root`: their model is
    mounted under it, and AZUREML_MODEL_DIR says where."""
    found = []
    for proc in psutil.process_iter():
        try:
            if str(root) in proc.environ().get("AZUREML_MODEL_DIR", ""):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _gone(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


def _score(standin: StandIn, headers: dict | None = None) -> requests.Response:
    state, key = standin.endpoints.get(ENDPOINT), standin.endpoints.scoring_key(ENDPOINT)
    rows = features(5, seed=2).to_dict(orient="records")
    return requests.post(state.scoring_uri, json={"data": rows}, timeout=30,
                         headers={"Authorization": f"Bearer {key}", **(headers or {})})


@pytest.fixture
def model_name() -> str:
    return f"restore-{uuid.uuid4().hex[:8]}"         # the registry's container is shared by the session


def test_deployments_serve_again_after_a_restart_and_a_lost_model_fails_alone(azurite, tmp_path, model_name):
    root, container = tmp_path / "aml", f"collected-{uuid.uuid4().hex[:8]}"
    first = StandIn(root, azurite, container)
    try:
        model = str(build_model(tmp_path / "model"))
        for _ in range(2):
            first.client.call("POST", f"/models/{model_name}/versions", body={"path": model})
        first.client.call("PUT", f"/endpoints/{ENDPOINT}")
        wanted = {"blue": f"{model_name}:1", "green": f"{model_name}:1", "red": f"{model_name}:2"}
        for deployment, model in wanted.items():
            first.client.call("PUT", f"/endpoints/{ENDPOINT}/deployments/{deployment}", body={"model": model})
        wait_until(lambda: {d.state for d in first.endpoints.get(ENDPOINT).deployments} == {"Succeeded"},
                   timeout=180, interval=0.2, what="three deployments to serve")
        first.endpoints.set_traffic(ENDPOINT, {"blue": 100}, {"green": 20})
        assert _score(first).status_code == 200
        serving = serving_processes(root)
        assert len(serving) == 9                                     # 3 arbiters with 2 workers each
    finally:
        first.close()
    assert wait_until(lambda: _gone(serving), timeout=30, what="the first run's servers to stop")

    # the file: owner-only (it holds the endpoint key), in the format older homes have
    path = root / "endpoints" / f"{ENDPOINT}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["deployments"] == wanted and saved["traffic"] == {"blue": 100}
    assert saved["mirror_traffic"] == {"green": 20}
    # model 2's folder is lost; the file is rewritten readable by all, as an older stand-in left it;
    # an unreadable endpoint file sits beside it
    shutil.rmtree(root / "models" / model_name / "2")
    path.unlink()
    path.write_text(json.dumps(saved))
    path.chmod(0o644)
    (root / "endpoints" / "broken.json").write_text("{not json")

    second = StandIn(root, azurite, container)
    try:
        # start() returned with every deployment settled: no waiting here
        states = {d.name: d for d in second.endpoints.get(ENDPOINT).deployments}
        assert {name: (d.model, d.state) for name, d in states.items()} == {
            "blue": (wanted["blue"], "Succeeded"), "green": (wanted["green"], "Succeeded"),
            "red": (wanted["red"], "Failed")}
        assert f"model {model_name}:2 is not registered" in states["red"].error
        assert "update deployment 'red', or delete the deployment" in states["red"].error
        endpoint = second.endpoints.get(ENDPOINT)
        assert endpoint.traffic == {"blue": 100} and endpoint.mirror_traffic == {"green": 20}
        answer = _score(second)
        assert answer.status_code == 200 and answer.headers["azureml-model-deployment"] == "blue"
        assert _score(second, {"azureml-model-deployment": "green"}).status_code == 200
        assert _score(second, {"azureml-model-deployment": "red"}).status_code == 404

        # restored together: the second server started before the first could have loaded its model
        serving = serving_processes(root)
        created = sorted(p.create_time() for p in serving if p.ppid() == os.getpid())    # the arbiters
        assert len(serving) == 6 and len(created) == 2 and created[1] - created[0] < 1.5, created
        print(f"\nrestart to serving (2 deployments restored, 1 failed): {second.start_seconds:.2f} s")

        assert stat.S_IMODE(path.stat().st_mode) == 0o600          # narrowed on restore
        assert not (root / "endpoints" / "broken.json").exists()
        assert (root / "endpoints" / "broken.json.unreadable").read_text() == "{not json"   # kept, not restored
        assert [e.name for e in second.endpoints.list()] == [ENDPOINT]
        second.endpoints.set_traffic(ENDPOINT, {"blue": 100})          # a rewrite stays owner-only
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        second.close()
    assert wait_until(lambda: _gone(serving), timeout=30, what="the second run's servers to stop")
    assert not list((root / "endpoints" / "mounts").glob("*"))


def test_closing_while_deployments_are_restored_leaves_nothing_running(azurite, tmp_path, model_name):
    root, container = tmp_path / "aml", f"collected-{uuid.uuid4().hex[:8]}"
    first = StandIn(root, azurite, container)
    try:
        first.client.call("POST", f"/models/{model_name}/versions", body={"path": str(build_model(tmp_path / "m"))})
        first.client.call("PUT", f"/endpoints/{ENDPOINT}")
        for deployment in ("blue", "green"):
            first.client.call("PUT", f"/endpoints/{ENDPOINT}/deployments/{deployment}",
                              body={"model": f"{model_name}:1"})
    finally:
        first.close()          # closed while both deployments are still Creating: they restore on the next start

    loop = BackgroundLoop("test-aml-restore-cut")
    aml = LocalAzureML(root, azurite.connection_string, QuietGrid(), "workspace", KEY, collector_container=container)
    try:
        starting: Future = asyncio.run_coroutine_threadsafe(aml.start(), loop.loop)
        processes = wait_until(lambda: (found := serving_processes(root)) and
                               len([p for p in found if p.ppid() == os.getpid()]) == 2 and found,
                               timeout=30, interval=0.1, what="the restored servers to be started")
        assert not starting.done()                             # still restoring: the models take seconds to load
        loop.run(aml.close(), timeout=60)
        starting.result(30)
        assert {d.state for d in aml.endpoints.endpoints[ENDPOINT].deployments.values()} == {"Creating"}
    finally:
        loop.close()
    assert wait_until(lambda: _gone(processes), timeout=30, what="the restored servers to stop")
    assert not serving_processes(root)
    # nothing was saved as failed: the file still lists both, to be restored next time
    saved = json.loads((root / "endpoints" / f"{ENDPOINT}.json").read_text())
    assert saved["deployments"] == {"blue": f"{model_name}:1", "green": f"{model_name}:1"}


def test_files_with_secrets_are_written_owner_only(tmp_path):
    home = StackHome(tmp_path / "new" / "home")
    home.create()
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    target = home.keys
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, '{"k": "v"}')          # replaces a readable file with a private one
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == '{"k": "v"}'
    assert [p.name for p in home.root.iterdir()] == ["keys.json"]   # no temporary file left
    existing = StackHome(tmp_path / "new")
    existing.root.chmod(0o755)
    existing.create()                             # a folder the user made is left as it is
    assert stat.S_IMODE(existing.root.stat().st_mode) == 0o755
