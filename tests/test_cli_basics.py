"""The command line's edges: --version, shell completion, --json on every command (valid JSON on stdout, the
messages on stderr), zero-valued options refused with exit 2 (or a meaning), an exit code in every command's
help. The commands' work is faked where it needs a stack (tests/test_local_stack.py runs them on one)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from emulator.stack import StackError, StackInfo
from lifecycle.core.rollout_machine import Rollout
from lifecycle.core.state_records import Promotion
from lifecycle.handlers.azureml_runs import run_completed
from mlops import cli
from tests.fakes import fake_platform
from tests.lifecycle.test_handlers import LEAKY, _trained, run_event

runner = CliRunner()
COMMANDS = ("up", "info", "status", "rollout", "promote", "approve", "reject", "score", "drop", "events", "demo",
            "drift", "report", "runs")


def test_version_is_the_packages():
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"mlops {version('mlops-azure')}"


def test_the_completion_script_is_generated():
    # what --show-completion prints, asked for bash by name: detecting the shell looks at the parent
    # processes, which under make are sh (not supported)
    result = runner.invoke(cli.app, [], prog_name="mlops", env={"_MLOPS_COMPLETE": "source_bash"})
    assert result.exit_code == 0 and "_MLOPS_COMPLETE=complete_bash" in result.stdout, result.output


@pytest.mark.slow
def test_completion_completes_commands_and_options():
    script = Path(sys.executable).with_name("mlops")
    if not script.exists():
        pytest.skip("the mlops script is not installed (pip install -e .)")

    def complete(*words: str) -> list[str]:
        env = {"_MLOPS_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(["mlops", *words]),
               "COMP_CWORD": str(len(words)), "PATH": str(script.parent)}
        return subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60).stdout.split()
    assert complete("ev") == ["events"]
    assert {"--type", "--function", "--outcome", "--since", "--ticks", "--home", "--env"} <= set(
        complete("events", "--"))


def test_every_command_says_its_exit_codes():
    for command in COMMANDS:
        result = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Exit code: 0" in result.stdout, command


def test_every_command_but_drift_and_report_takes_json_and_a_home():
    for command in COMMANDS:
        shown = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "200"}).stdout
        assert "--json" in shown, command
        if command not in ("up", "demo", "drift"):
            assert "--home" in shown and "--env" in shown, command


# ---- --json, with the stack's parts faked --------------------------------------------------------------------

@pytest.fixture
def platform(monkeypatch):
    p = fake_platform()
    monkeypatch.setattr(cli, "_platform", lambda *_, **__: p)
    return p


def as_json(args: list[str]):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rollout_and_promote_json(platform, monkeypatch):
    import lifecycle.handlers.promotion as promotion
    import lifecycle.handlers.rollout as rollout
    paused = Rollout(endpoint="mlops-endpoint", rollout_id="r1", model="m:2", colour="green", phase="canary",
                     baseline="blue", baseline_model="m:1", paused=True)
    monkeypatch.setattr(rollout, "override", lambda p, endpoint, action: paused)
    shown = as_json(["rollout", "pause", "--json"])
    assert shown["phase"] == "canary" and shown["paused"] is True and "live_model" in shown
    assert runner.invoke(cli.app, ["rollout", "hold"]).exit_code == 2
    approved = Promotion(model="m:3", status="approved", registry="mlops-registry", decided_by="alice")
    monkeypatch.setattr(promotion, "review", lambda p, ref, approve, by: approved)
    assert as_json(["promote", "approve", "m:3", "--json"])["decided_by"] == "alice"
    assert runner.invoke(cli.app, ["promote", "maybe", "m:3"]).exit_code == 2


def test_approve_and_reject_json(platform):
    job = _trained(platform, LEAKY)
    assert run_completed(run_event("RunCompleted", job), platform).outcome == "held"
    decision = as_json(["reject", job, "--by", "bob", "--json"])
    assert decision["outcome"] == "rejected" and decision["reviewed_by"] == "bob"
    refused = runner.invoke(cli.app, ["approve", job, "--json"])
    assert refused.exit_code == 1 and refused.stdout == ""


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:         # http.server's name for the POST handler
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"predictions": [0]}'
        self.send_response(200)
        self.send_header("azureml-model-deployment", "blue")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}/endpoints/mlops-endpoint/score"
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "settings.json").write_text(json.dumps({"Values": {"DATA_CONTAINER": "data"}}))
    running = SimpleNamespace(endpoint_name="mlops-endpoint", scoring_uri=uri, home=str(tmp_path),
                              storage_connection_string="UseDevelopmentStorage=true")
    monkeypatch.setattr(cli, "_running_info", lambda *_, **__: running)
    monkeypatch.setattr(cli, "_scoring_key", lambda *_, **__: "key")
    yield uri
    server.shutdown()


def test_score_json_and_zero_values(endpoint, platform):
    shown = as_json(["score", "--requests", "3", "--rate", "500", "--json"])
    assert shown["requests"] == 3 and shown["status"] == {"200": 3} and shown["deployments"] == {"blue": 3}
    assert shown["p50_ms"] > 0 and shown["p99_ms"] >= shown["p50_ms"] and shown["errors"] == []
    text = runner.invoke(cli.app, ["score", "--requests", "1", "--rate", "500"], env={"COLUMNS": "80"})
    assert text.exit_code == 0 and "1 requests: status {200: 1}" in text.stdout
    for args in (["--requests", "0"], ["--rate", "0"], ["--rate", "-1"], ["--rows", "0"]):
        result = runner.invoke(cli.app, ["score", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value" in result.output


def test_drop_json(endpoint, platform, monkeypatch, tmp_path):
    import mlops.upload
    calls = []
    monkeypatch.setattr(mlops.upload, "upload_drop", lambda conn, container, files, prefix, marker, out:
                        calls.append((container, prefix, marker)) or f"{container}/{prefix}/")
    part = tmp_path / "part-0000.csv"
    part.write_text("a,b\n1,2\n")
    shown = as_json(["drop", str(part), "--prefix", "drops/x", "--json"])
    assert shown == {"container": "data", "folder": "data/drops/x/", "files": ["data/drops/x/part-0000.csv"],
                     "marker": True}
    assert calls == [("data", "drops/x", True)]


def test_report_json(monkeypatch, tmp_path):
    import mlops.report_commands
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "settings.json").write_text(json.dumps({"Values": {}}))
    monkeypatch.setattr(mlops.report_commands, "stack_report",
                        lambda home, out, model: (home.path("reports", "r.html"), ["no reference profile"]))
    shown = as_json(["report", "--home", str(tmp_path), "--json"])
    assert shown == {"path": str(tmp_path / "reports" / "r.html"), "notes": ["no reference profile"]}


def test_demo_json_summary_when_the_stacks_cannot_start(monkeypatch, tmp_path):
    import emulator.environments

    class Failing:
        def __init__(self, home, options=None, **kwargs):
            self.homes = {name: home.__class__(home.root / name) for name in ("preprod", "prod")}
            self.infos: dict = {}

        def start(self, progress):
            raise StackError("port 10000 is taken")

        def stop(self):
            pass
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setattr(emulator.environments, "Environments", Failing)
    result = runner.invoke(cli.app, ["demo", "--json"])
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["outcome"] == "failed" and shown["error"] == "port 10000 is taken"
    assert shown["home"] == str(tmp_path / "demo") and set(shown["environments"]) == {"preprod", "prod"}
    assert "port 10000 is taken" in result.stderr
    assert runner.invoke(cli.app, ["demo", "--timeout", "0"]).exit_code == 2


def test_up_json_prints_the_info_once_started_and_leaves_the_status_when_it_stops(monkeypatch, tmp_path):
    import emulator.stack
    import mlops.homes
    info = StackInfo(pid=1, home=str(tmp_path), storage_connection_string="conn", blob_endpoint="b",
                     queue_endpoint="q", eventgrid_endpoint="e", eventgrid_key="k", eventgrid_topics={},
                     functions_url="f", functions_key="fk", functions_master_key="mk", functions=[], aml_url="a",
                     aml_key="ak", endpoint_name="mlops-endpoint", scoring_uri="s", started_at="t")
    stopped = []

    class Stack:
        def __init__(self, home, options):
            self.home = home

        def start(self, progress):
            return info

        def failure(self):
            return "Azurite exited with code 1"

        def stop(self):
            stopped.append(True)
    snapshots = []
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setattr(emulator.stack, "Stack", Stack)
    monkeypatch.setattr(mlops.homes, "write_snapshot", lambda home: snapshots.append(home.root) or home.root)
    result = runner.invoke(cli.app, ["up", "--json"])
    assert result.exit_code == 1                                   # a part died
    shown = json.loads(result.stdout)
    assert shown["storage_connection_string"] == "conn" and shown["endpoint_name"] == "mlops-endpoint"
    assert snapshots == [tmp_path.resolve()] and stopped == [True]
    assert "Azurite exited" in result.stderr and "stopped" in result.stderr
    assert runner.invoke(cli.app, ["up", "--retry-scale", "0"]).exit_code == 2


def test_events_limit_zero_means_all(tmp_path):
    (tmp_path / "timeline.jsonl").write_text("")
    result = runner.invoke(cli.app, ["events", "--home", str(tmp_path), "--limit", "0", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
