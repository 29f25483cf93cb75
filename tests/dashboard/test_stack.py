"""The dashboard on a real local stack: its own source finds the running stack, serves what collect() reads from
it, lets an action through to the lifecycle (which answers that there is nothing to act on), and turns to the
stack's snapshot, read-only, once the stack has stopped."""
from __future__ import annotations

import json

import pytest
import requests

from mlops.dashboard.server import NOT_RUNNING
from mlops.status import collect
from tests.conftest import start_local_stack

pytestmark = pytest.mark.stack      # the whole local stack


def test_the_dashboard_follows_the_stack_it_belongs_to(tmp_path_factory, serve):
    stack, info, p, _ = start_local_stack(tmp_path_factory, "dashboard", {})
    try:
        dashboard = serve(home=stack.home)                      # the default source: the stack at its home
        auth = {"Authorization": f"Bearer {dashboard.key}"}
        assert requests.get(f"{dashboard.url}/api/info", headers=auth, timeout=30).json()["running"] is True
        shown = requests.get(f"{dashboard.url}/api/status", headers=auth, timeout=30)
        assert shown.status_code == 200 and shown.json() == json.loads(json.dumps(collect(p), default=str))
        endpoint = p.policies.model.endpoint
        answer = requests.post(f"{dashboard.url}/api/rollouts/{endpoint}/promote", headers=auth, timeout=30)
        assert answer.status_code == 409 and "no rollout in progress" in answer.json()["error"]
    finally:
        stack.stop()
    stack.home.path("status.json").write_text(json.dumps({"written_at": "2026-12-01T02:00:00Z",
                                                          "status": {"model_name": "m", "app_models": []}}))
    stopped = requests.get(f"{dashboard.url}/api/info", headers=auth, timeout=30).json()
    assert stopped["running"] is False and stopped["written_at"] == "2026-12-01T02:00:00Z"
    answer = requests.post(f"{dashboard.url}/api/rollouts/{endpoint}/promote", headers=auth, timeout=30)
    assert answer.status_code == 409 and answer.json()["error"] == NOT_RUNNING
