"""The Functions host process stops when told to, even with a function that does not finish: after the grace
period it exits instead of waiting for the function's thread (the local stack's children all get SIGTERM
at once when the stack is killed, and a function may then be retrying calls to an Azurite that is gone)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until

pytestmark = pytest.mark.stack      # a Functions host process

ROOT = Path(__file__).resolve().parents[2]


def test_a_function_that_never_finishes_does_not_keep_the_host_alive(tmp_path):
    ready_file = tmp_path / "ready.json"
    log = tmp_path / "host.log"
    with log.open("wb") as out:
        host = subprocess.Popen([sys.executable, "-m", "emulator.functions_host", "--app",
                                 "tests.emulator.stuck_app:app", "--port", "0", "--keys-file",
                                 str(tmp_path / "keys.json"), "--ready-file", str(ready_file)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: ready_file.exists() or host.poll() is not None, timeout=60, what="the host to start")
        url = json.loads(ready_file.read_text())["url"]
        caller = threading.Thread(target=lambda: _call(url + "/api/stuck"), daemon=True)
        caller.start()
        wait_until(lambda: "Executing 'Functions.stuck'" in log.read_text(errors="replace"), timeout=15,
                   what="the function to start")
        stopped = time.monotonic()
        host.send_signal(signal.SIGTERM)
        assert host.wait(30) == 0
        took = time.monotonic() - stopped
    finally:
        if host.poll() is None:
            host.kill()
    text = log.read_text(errors="replace")
    assert "stopping with 1 invocation(s) still running" in text
    assert "exiting with 1 function thread(s) still running" in text
    assert took < 25, took             # the host's grace periods (server.py), not the function's 600 s
    assert not ready_file.exists()


def _call(url: str) -> None:
    try:
        requests.get(url, timeout=60)
    except requests.RequestException:
        pass                                      # the host went away mid-request: expected
