"""`mlops status [MODEL]` on an app of several models: each model's own jobs, drops and task; a model the app
does not keep is refused by name."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from mlops import cli
from tests.fakes import fake_platform
from tests.lifecycle.test_models_file import T0, TWO, drop

runner = CliRunner()


def test_status_shows_each_model_apart_and_one_by_name(monkeypatch):
    p = fake_platform(models_file=TWO)
    drop(p, "prices/2026-11-30/", T0)
    monkeypatch.setattr(cli, "_platform", lambda *_, **__: p)
    shown = json.loads(runner.invoke(cli.app, ["status", "--json"]).stdout)
    loans, prices = shown["app_models"]
    assert (loans["model_name"], loans["task"], loans["jobs"], loans["drops"]) == ("loans", "classification", [], [])
    assert prices["task"] == "regression" and prices["data_root"] == "data/prices/"
    assert [j["files"] for j in prices["jobs"]] == [1] and prices["drops"][0]["prefix"] == "prices/2026-11-30/"
    one = json.loads(runner.invoke(cli.app, ["status", "prices", "--json"]).stdout)
    assert one["model_name"] == "prices" and one["training_window"] == "30 days"
    text = runner.invoke(cli.app, ["status"], env={"COLUMNS": "160"}).stdout
    assert "loans (classification)" in text and "prices (regression)" in text
    refused = runner.invoke(cli.app, ["status", "houses"])
    assert refused.exit_code == 2 and "model 'houses' is not one this app keeps (loans, prices)" in refused.stderr
