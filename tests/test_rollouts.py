"""Rollouts on the local stack under generated traffic: a model that errors on a share of requests, a
much slower one and one whose predictions collapse are each rolled back by the canary judge, with the
evidence recorded; the live model keeps serving throughout and no request is dropped."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from lifecycle.core.rollout_machine import Rollout, RolloutEvent
from mlops.demo_data import COLUMNS, loan_csv, loan_rows
from mlops.traffic import Traffic
from tests.conftest import start_local_stack, wait_until
from tests.models.faulty import save_faulty

pytestmark = pytest.mark.stack      # the whole local stack

SETTINGS = {"RECONCILE_SCHEDULE": "*/1 * * * * *", "ROLLOUT_STEPS": "50,100", "ROLLOUT_BAKE_SECONDS": "5",
            "ROLLOUT_MIN_REQUESTS": "25", "ROLLOUT_RETENTION_SECONDS": "0"}
MODEL = "tabular-classifier"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A stack whose endpoint serves model 1 from blue."""
    stack, info, p, data = start_local_stack(tmp_path_factory, "rollouts", SETTINGS)
    home = stack.home
    data.upload_blob("loans/day-1/part-0000.csv", loan_csv(2000, seed=1))
    data.upload_blob("loans/day-1/_SUCCESS", b"")
    wait_until(lambda: (r := p.state.get(Rollout, p.policies.model.endpoint)) and r.phase == "promoted",
               timeout=180, what="model 1 to go live")
    yield stack, info, p, home
    stack.stop()


def _register(info, home: Path, tmp_path: Path, mode: str) -> str:
    good = home.path("aml", "models", MODEL, "1", "model")
    faulty = save_faulty(good, tmp_path / mode, mode)
    response = requests.post(f"{info.aml_url}/models/{MODEL}/versions", timeout=60,
                             headers={"Authorization": f"Bearer {info.aml_key}"},
                             json={"path": str(faulty), "tags": {"test.fault": mode}})
    assert response.status_code == 201, response.text
    return f"{MODEL}:{response.json()['version']}"


@pytest.mark.parametrize("mode, check", [("errors", "errors"), ("slow", "latency"), ("collapse", "predictions")])
def test_a_bad_model_is_rolled_back_by_the_judge_while_the_live_one_keeps_serving(live, tmp_path, mode, check):
    stack, info, p, home = live
    ref = _register(info, home, tmp_path, mode)
    key = p.endpoints.scoring_key(p.policies.model.endpoint)
    rows = [r[:-1] for r in loan_rows(400, seed=21)]
    with Traffic(info.scoring_uri, key, COLUMNS[:-1], rows, rate=15) as traffic:
        try:
            wait_until(lambda: (r := p.state.get(Rollout, p.policies.model.endpoint)) and r.model == ref
                       and r.phase == "rolled_back", timeout=150, what=f"the {mode} model to be rolled back")
        except BaseException:
            r = p.state.get(Rollout, p.policies.model.endpoint)
            print("rollout:", r and (r.model, r.phase, [h["note"] for h in r.history],
                                     r.judgement and r.judgement["summary"]))
            raise
    r = p.state.get(Rollout, p.policies.model.endpoint)
    if "smoke" in r.judgement:
        # A slow model can already fail the smoke test's latency limit before any traffic reaches it.
        assert mode == "slow" and ("took" in r.reason or "answered 408" in r.reason), r.reason
    else:
        failed = [c for c in r.judgement["checks"] if c["outcome"] == "fail"]
        assert check in {c["name"] for c in failed}, r.judgement["summary"]
    assert r.reason and "rolled back" in r.history[-1]["note"]
    # the state is stored first, then acted on: wait for the acts
    record = wait_until(lambda: p.state.get(RolloutEvent, r.rollout_id), timeout=30, what="the rollout's record")
    assert record.outcome == "rolled_back"
    wait_until(lambda: p.registry.get(*ref.split(":")).tags.get("mlops.alias") == "rolled-back", timeout=30,
               what="the rolled-back tag")
    endpoint = p.endpoints.get(p.policies.model.endpoint)
    assert endpoint.traffic == {r.baseline: 100} and endpoint.deployment(r.colour) is None
    summary = traffic.summary()
    assert summary["dropped"] == 0, summary                              # every request was answered
    if mode != "errors":
        assert set(summary["status"]) == {200}, summary
    events = [json.loads(line) for line in stack.home.timeline.read_text().splitlines()]
    assert any(e["event_type"] == "MLOps.RolloutStarted" and ref in e["subject"] for e in events)
