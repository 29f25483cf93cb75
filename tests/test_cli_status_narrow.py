"""`mlops status` in an 80-column terminal, on a status as the demo leaves it: every line fits, job names and data
paths are whole (relative to their container, without the storage host) and never cut with '…', and the
rollout's and the alerts' details are on lines of their own."""
from __future__ import annotations

import json

from rich.console import Console
from typer.testing import CliRunner

from mlops import cli
from mlops.status_view import render, short_url

runner = CliRunner()
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"
JOB_1 = "train-tabular-classifier-data-46d2931f4090b651"
JOB_2 = "train-tabular-classifier-alert-9c1d02be7aa4f311"
JOB_FAILED = "train-tabular-classifier-data-0b5e8c6f1d2a7e93"
CHECK = ("Accuracy: green 71.2% correct of 412 vs blue 84.9% of 398, a drop of 13.7% (limit 5.0%; two-proportion "
         "z-test (one-sided, canary less accurate) p=1.2e-06).")
LONG = f"fail: green is worse than blue. {CHECK}"


def realistic() -> dict:
    model = {
        "model_name": "tabular-classifier", "task": "classification", "training": "training/job.yml",
        "data_root": "data/loans/", "training_window": "30 days",
        "models": [
            {"name": "tabular-classifier", "version": "1", "path": "/x", "created": "2026-11-30T10:00:00Z",
             "metrics": {"accuracy": 0.863, "f1": 0.817, "precision": 0.839, "recall": 0.796, "roc_auc": 0.939},
             "tags": {"mlops.job": JOB_1, "mlops.trigger": "data", "mlops.data": f"{AZURITE}/data/loans/2026-11-01/"}},
            {"name": "tabular-classifier", "version": "2", "path": "/x", "created": "2026-11-30T10:20:00Z",
             "metrics": {"accuracy": 0.801, "f1": 0.744},
             "tags": {"mlops.job": JOB_2, "mlops.trigger": "alert",
                      "mlops.data": f"{AZURITE}/feedback/labelled/2026-11-30T10-15-00/"}}],
        "jobs": [
            {"name": JOB_1, "status": "Completed", "error": None, "trigger": "data",
             "data": f"{AZURITE}/data/loans/2026-11-01/", "files": 2, "new_batches": 2, "champion": None,
             "submitted_at": "2026-11-30T10:00:00Z",
             "decision": {"outcome": "registered", "version": "1", "metrics": {}, "champion_metrics": None,
                          "reasons": ["no champion yet: the first model is registered if it passes the floors"],
                          "reviewed_by": None, "reviewed_at": None}},
            {"name": JOB_FAILED, "status": "Failed", "trigger": "data", "data": f"{AZURITE}/data/loans/broken/",
             "error": "the target column 'default' is missing from data/loans/broken/part-0000.csv (columns: age, "
                      "income)", "files": 1, "new_batches": 1, "champion": None, "submitted_at": "t", "decision": None},
            {"name": JOB_2, "status": "Completed", "error": None, "trigger": "alert", "data": None, "files": 0,
             "new_batches": 0, "champion": "tabular-classifier:1", "submitted_at": "t",
             "decision": {"outcome": "held", "version": None, "metrics": {}, "champion_metrics": None,
                          "reasons": ["feature 'repaid' alone reaches roc_auc 0.99: a likely leak of the label"],
                          "reviewed_by": None, "reviewed_at": None}}],
        "endpoints": [{"name": "mlops-endpoint", "scoring_uri": "http://127.0.0.1:38403/endpoints/mlops-endpoint/score",
                       "traffic": {"blue": 90, "green": 10}, "mirror_traffic": {},
                       "deployments": [{"name": "blue", "model": "tabular-classifier:1", "state": "Succeeded",
                                        "error": None, "traffic": 90},
                                       {"name": "green", "model": "tabular-classifier:2", "state": "Succeeded",
                                        "error": None, "traffic": 10}]}],
        "rollout": {"endpoint": "mlops-endpoint", "model": "tabular-classifier:2", "colour": "green",
                    "baseline": "blue", "baseline_model": "tabular-classifier:1", "phase": "rolled_back",
                    "paused": False, "live_model": "tabular-classifier:1", "active": False,
                    "history": [{"time": "2026-11-30T10:21:00Z", "note": "green takes 10% of the traffic"},
                                {"time": "2026-11-30T10:23:00Z", "note": f"rolled back: {LONG}"}],
                    "judgement": {"checks": [{"name": "accuracy", "outcome": "fail", "detail": CHECK},
                                             {"name": "latency", "outcome": "pass",
                                              "detail": "Latency: p95 green 18.2 ms vs blue 17.9 ms (limit +50%)."}]}},
        "rollouts": [],
        "monitoring": [{"model": "tabular-classifier:1", "deployment": "blue", "window_start": "t",
                        "window_end": "2026-11-30T10:15:00Z", "rows": 1200, "labelled": 300,
                        "drifted_features": ["income", "region", "loan_amount"], "accuracy": 0.71,
                        "performance": {"accuracy": 0.71, "f1": 0.52}, "recommendation": "scale out to 2 instances",
                        "alerts": ["data_drift fired", "concept_drift fired", "performance fired"],
                        "status": "Completed", "job": "monitor-mlops-endpoint-20261130t101500-3e324c2f56aa",
                        "warning": None, "error": None, "note": None}],
        "alerts": [{"alert_id": "a1", "source": "monitor", "signal": "concept_drift", "condition": "Fired",
                    "summary": "the relation of income to default changed; age to default too", "outcome": "retraining",
                    "detail": f"retraining on {AZURITE}/feedback/labelled/2026-11-30T10-15-00/ (3,000 labelled rows "
                              "of production traffic) with job " + JOB_2,
                    "job": JOB_2, "received_at": "2026-11-30T10:15:02Z", "resolved_at": None}],
        "drops": [], "stage": "preprod", "registry": "mlops-registry",
        "promotions": [{"model": "tabular-classifier:1", "status": "awaiting approval", "registry": "mlops-registry",
                        "asset_id": None, "preprod_version": "1", "job": JOB_1, "data": None, "data_batches": [],
                        "received_at": "t", "decided_by": None, "reason": None}],
        "lineage": [{"deployment": "blue", "traffic": 90, "model": "tabular-classifier:1",
                     "registry": "mlops-registry", "asset_id": None, "preprod_version": "1", "job": JOB_1,
                     "data": f"{AZURITE}/data/loans/2026-11-01/", "data_batches": ["part-0000.csv", "part-0001.csv"]}],
        "rejections": [],
    }
    return {"app_models": [model], "stage": "preprod", "registry": "mlops-registry",
            "rejections": [{"event_id": "0f3c1a2b-aaaa-bbbb", "event_type": "Microsoft.Storage.BlobCreated",
                            "subject": "s", "function": "on_data_arrived",
                            "reason": "the drop loans/2026-11-03/ has no _SUCCESS marker after 60 s",
                            "rejected_at": "t"}],
            "notification_dead_letters": [{"event_id": "e1", "event_type": "MLOps.ModelRejected",
                                           "summary": f"The model of job {JOB_FAILED} was rejected by the gate.",
                                           "webhook": "json https://ops.example.org/mlops-events",
                                           "attempts": 4, "last_status": 503, "last_error": "HTTP 503",
                                           "dead_lettered_at": "2026-11-30T10:20:00Z"}]}


def text_at(width: int) -> str:
    console = Console(record=True, width=width, force_terminal=False)
    render(console, realistic())
    return console.export_text()


def test_status_fits_80_columns_with_every_name_whole():
    text = text_at(80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    for name in (JOB_1, JOB_2, JOB_FAILED):
        assert name in text, name                                 # whole, on one line
    assert "data/loans/2026-11-01/" in text and "feedback/labelled/2026-11-30T10-15-00/" in text
    assert "127.0.0.1:10000" not in text and "devstoreaccount1" not in text    # relative to their container
    assert "http://127.0.0.1:38403/endpoints/mlops-endpoint/score" in text     # the scoring URI is one to call
    assert "mlops approve|reject" in text and f"mlops approve|reject {JOB_2}" in text_at(120)
    assert "mlops promote approve|reject tabular-classifier:1" in text


def test_details_are_on_lines_of_their_own():
    lines = text_at(80).splitlines()
    # the rollout's check: its outcome, then its detail wrapped under itself (indented), not under the table
    check = next(i for i, line in enumerate(lines) if line.lstrip().startswith("fail Accuracy: green 71.2%"))
    assert lines[check].startswith("  ") and lines[check + 1].startswith("  ")
    alert = next(i for i, line in enumerate(lines) if "concept_drift fired" in line and "retraining" in line)
    assert "the relation of income to default changed" in lines[alert + 1]
    assert lines[alert + 1].startswith("    ") and lines[alert + 2].startswith("    ")


def test_a_decision_nobody_was_notified_of_is_shown_with_its_webhook_and_why():
    text = " ".join(text_at(80).split())
    assert "not notified" in text and "ops.example.org/mlops-events" in text and "HTTP 503" in text
    assert "4 attempt(s)" in text
    assert "MLOps.ModelRejected" in text


def test_wide_terminals_show_the_same():
    wide = text_at(200)
    assert "…" not in wide and JOB_1 in wide and "data/loans/2026-11-01/" in wide


def test_short_urls():
    assert short_url(f"{AZURITE}/data/drops/2026/x.csv") == "data/drops/2026/x.csv"
    assert short_url("https://stprod.blob.core.windows.net/data/loans/") == "data/loans/"
    assert short_url("azureml://subscriptions/s/workspaces/w/datastores/d/paths/loans/2026/") == "loans/2026/"
    assert short_url("data/loans/") == "data/loans/" and short_url(None) == "-"


def test_the_command_at_80_columns_from_a_stopped_stacks_snapshot(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_PLATFORM", raising=False)
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "settings.json").write_text(json.dumps({"Values": {}}))
    (tmp_path / "status.json").write_text(json.dumps({"written_at": "2026-11-30T10:30:00Z", "status": realistic()}))
    result = runner.invoke(cli.app, ["status", "--home", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "a snapshot of a stopped stack, written at 2026-11-30T10:30:00Z" in result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80 and "…" not in result.stdout
    assert JOB_1 in result.stdout
