"""`mlops approve` / `mlops reject` on a model the gate held, and `mlops status` showing it."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lifecycle.handlers.azureml_runs import run_completed
from mlops import cli
from tests.fakes import fake_platform
from tests.lifecycle.test_handlers import LEAKY, _trained, run_event

runner = CliRunner()


@pytest.fixture
def held(monkeypatch):
    p = fake_platform()
    job = _trained(p, LEAKY)
    assert run_completed(run_event("RunCompleted", job), p).outcome == "held"
    monkeypatch.setattr(cli, "_platform", lambda *_, **__: p)
    return p, job


def test_status_shows_the_held_model_and_the_command_to_decide(held):
    p, job = held
    result = runner.invoke(cli.app, ["status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "held for a person" in result.stdout and "mlops approve|reject" in result.stdout
    assert "feature 'repaid' alone reaches" in result.stdout


def test_approve_registers_the_held_model_once(held):
    p, job = held
    result = runner.invoke(cli.app, ["approve", job, "--by", "alice"])
    assert result.exit_code == 0, result.output
    assert "registered as version 1 (approved by alice)" in result.stdout
    again = runner.invoke(cli.app, ["approve", job, "--by", "alice"])
    assert again.exit_code == 1 and "not held for a person" in again.stderr
    assert [m.tags["mlops.approved_by"] for m in p.registry.versions("tabular-classifier")] == ["alice"]


def test_reject_keeps_it_out_of_the_registry(held):
    p, job = held
    result = runner.invoke(cli.app, ["reject", job, "--by", "bob"])
    assert result.exit_code == 0 and "rejected (rejected by bob)" in result.stdout
    assert p.registry.versions("tabular-classifier") == []
    unknown = runner.invoke(cli.app, ["approve", "no-such-job"])
    assert unknown.exit_code == 1 and "has no gate decision" in unknown.stderr
