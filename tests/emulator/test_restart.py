"""The whole local stack after a restart on the same home: the model the chain put into production serves
again before the Functions host starts, with the same traffic, whether the stack was stopped cleanly or
`mlops up` was killed with SIGKILL; a killed run leaves no process behind; files holding secrets are
owner-only."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from azure.storage.blob import BlobServiceClient

from emulator.home import StackHome
from emulator.stack import Stack, StackInfo, StackOptions
from lifecycle.core.rollout_machine import Rollout
from mlops.demo_data import COLUMNS, loan_csv, loan_rows
from mlops.local import local_platform
from tests.conftest import wait_until
from tests.emulator.test_restore import serving_processes
from tests.test_chain import SETTINGS, drop

pytestmark = pytest.mark.stack      # the whole local stack, killed and started again

ROOT = Path(__file__).resolve().parents[2]
# as tests/conftest.py start_local_stack: no monitor passes competing for the 2 cores
APP_SETTINGS = {"MONITOR_SCHEDULE": "0 0 0 1 1 *", **SETTINGS}
PRIVATE = ("stack.json", "keys.json", "functions/settings.json", "functions/keys.json")


def _live(p):
    """The endpoint once one deployment takes all traffic, serves, and its rollout has settled."""
    endpoint = p.endpoints.get(p.policies.model.endpoint)
    rollout = p.state.get(Rollout, p.policies.model.endpoint)
    if not endpoint or not rollout or rollout.phase != "promoted" or rollout.settling:
        return None
    live = [d for d in endpoint.deployments if endpoint.traffic.get(d.name) == 100 and d.state == "Succeeded"]
    return endpoint if live else None


def _score(info: StackInfo, p) -> requests.Response:
    key = p.endpoints.scoring_key(p.policies.model.endpoint)
    rows = [r[:-1] for r in loan_rows(3, seed=5)]
    return requests.post(info.scoring_uri, json={"input_data": {"columns": COLUMNS[:-1], "data": rows}},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _snapshot(endpoint) -> tuple:
    return endpoint.traffic, endpoint.mirror_traffic, {d.name: d.model for d in endpoint.deployments}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A home whose endpoint serves the chain's first model, its stack stopped. The stack makes the home."""
    home = StackHome(tmp_path_factory.mktemp("restart") / "home")
    options = StackOptions(retry_scale=0.01, extra_settings=APP_SETTINGS)
    stack = Stack(home, options)
    info = stack.start()
    try:
        assert _mode(home.root) == 0o700
        for name in PRIVATE:
            assert _mode(home.path(name)) == 0o600, name
        p = local_platform(home)
        data = BlobServiceClient.from_connection_string(info.storage_connection_string).get_container_client("data")
        data.create_container()
        drop(data, "loans/day-1/", [loan_csv(1200, seed=1), loan_csv(1200, seed=2)])
        endpoint = wait_until(lambda: _live(p), timeout=240, interval=0.5, what="the first model to serve")
        assert _score(info, p).status_code == 200
        endpoint_files = list(home.path("aml", "endpoints").glob("*.json"))
        assert [f.name for f in endpoint_files] == [f"{endpoint.name}.json"]
        assert all(_mode(f) == 0o600 for f in endpoint_files)        # it holds the endpoint key
    finally:
        stack.stop()
    return home, options, _snapshot(endpoint)


def test_a_restarted_stack_serves_its_deployments_before_it_returns(served):
    home, options, before = served
    stack = Stack(home, options)
    started = time.monotonic()
    info = stack.start()
    took = time.monotonic() - started
    try:
        p = local_platform(home)
        answer = _score(info, p)            # at once: start() returned once the deployments served again
        endpoint = p.endpoints.get(p.policies.model.endpoint)
        assert answer.status_code == 200, answer.text
        assert _snapshot(endpoint) == before
        assert {d.state for d in endpoint.deployments} == {"Succeeded"}
        assert answer.headers["azureml-model-deployment"] in endpoint.traffic
        print(f"\nrestart to serving (Stack.start, {len(endpoint.deployments)} deployment(s)): {took:.1f} s")

        # a deployment's own port, found as anyone on the machine could, answers only the router
        serving = serving_processes(home.root)
        ports = {c.laddr.port for proc in serving for c in _listening(proc)}
        assert len(ports) == len(endpoint.deployments)
        for port in ports:
            direct = requests.post(f"http://127.0.0.1:{port}/score", timeout=30,
                                   json={"input_data": {"columns": COLUMNS[:-1], "data": []}})
            assert direct.status_code == 401 and "predictions" not in direct.text
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 401
        for name in PRIVATE:
            assert _mode(home.path(name)) == 0o600, name
    finally:
        stack.stop()
    assert not any(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE for proc in serving)
    assert not _mentioning(home.root)


def _listening(proc: psutil.Process) -> list:
    connections = proc.net_connections("tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
    return [c for c in connections if c.status == psutil.CONN_LISTEN]


# -- `mlops up` in a process of its own, killed -------------------------------------------------------

def _mlops_up(home: StackHome, settings_file: Path, log: Path) -> subprocess.Popen:
    script = Path(sys.executable).with_name("mlops")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlops.cli"]
    command += ["up", "--settings", str(settings_file), "--retry-scale", "0.01"]
    env = {**os.environ, "MLOPS_HOME": str(home.root)}
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _running(home: StackHome, up: subprocess.Popen, log: Path) -> StackInfo:
    def probe():
        if up.poll() is not None:
            pytest.fail(f"mlops up exited with code {up.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        info = StackInfo.read(home)
        return info if info and info.pid == up.pid else None
    return wait_until(probe, timeout=240, interval=0.2, what="mlops up to start")


def _mentioning(root: Path) -> list[str]:
    """Processes (other than this one) whose command line or environment mentions `root`."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            if str(root) in " ".join(proc.info["cmdline"] or ()) or \
                    any(str(root) in value for value in proc.environ().values()):
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or ())[:200]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_mlops_up_killed_with_sigkill_serves_again_and_leaves_no_process(served, tmp_path):
    home, _, before = served
    settings = json.loads((ROOT / "local.settings.example.json").read_text())
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": {**settings["Values"], **APP_SETTINGS}}))
    log = tmp_path / "up.log"

    up = _mlops_up(home, settings_file, log)
    try:
        info = _running(home, up, log)
        p = local_platform(home)
        assert _score(info, p).status_code == 200
        assert _snapshot(p.endpoints.get(p.policies.model.endpoint)) == before
        children = psutil.Process(up.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "gunicorn" in names and "azurite" in names and "emulator.functions_host" in names
        up.send_signal(signal.SIGKILL)
        up.wait(10)
    finally:
        if up.poll() is None:
            up.kill()
    # the parent-death signal stops every child: Azurite, the Functions host, each gunicorn (and its workers)
    wait_until(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children),
               timeout=30, interval=0.2, what="the killed stack's processes to exit")
    wait_until(lambda: not _mentioning(home.root), timeout=10, what="no process of the killed stack to remain")

    started = time.monotonic()
    up = _mlops_up(home, settings_file, log)
    try:
        info = _running(home, up, log)
        p = local_platform(home)
        answer = _score(info, p)
        took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        endpoint = p.endpoints.get(p.policies.model.endpoint)
        assert _snapshot(endpoint) == before and {d.state for d in endpoint.deployments} == {"Succeeded"}
        print(f"\nrestart to serving after SIGKILL (mlops up to the first 200): {took:.1f} s")
        for name in PRIVATE:
            assert _mode(home.path(name)) == 0o600, name
        up.send_signal(signal.SIGINT)
        assert up.wait(90) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
    assert not _mentioning(home.root)
