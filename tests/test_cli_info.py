"""`mlops info --json` on a running local stack: the endpoint's scoring key comes through the platform the
composition root builds from the stack's app settings (Endpoints.scoring_key on the local adapter), and is
null until the chain has created the endpoint."""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from emulator.home import StackHome
from mlops.cli import app

runner = CliRunner()
AML_KEY = "aml-key-for-tests"


class StandIn(BaseHTTPRequestHandler):
    """The stand-in's /endpoints/<name>/keys route, for the one endpoint it has."""

    def do_GET(self) -> None:          # http.server's name for the GET handler
        authorised = self.headers.get("Authorization") == f"Bearer {AML_KEY}"
        if authorised and self.path == "/endpoints/loans-endpoint/keys":
            status, body = 200, {"primaryKey": "scoring-secret"}
        else:
            status, body = (404, {"error": f"no such route {self.path}"}) if authorised else (401, {"error": "key"})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def running_stack(monkeypatch, tmp_path, aml_url: str, endpoint: str) -> StackHome:
    """A home whose stack.json names this (alive) process, and whose app settings point at the stand-in."""
    home = StackHome(tmp_path / "home")
    home.path("functions").mkdir(parents=True)
    home.path("functions", "settings.json").write_text(json.dumps({"Values": {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true", "MLOPS_PLATFORM": "local",
        "EVENTGRID_TOPIC_ENDPOINT": "http://127.0.0.1:1/api/events", "EVENTGRID_TOPIC_KEY": "grid-key",
        "AML_LOCAL_URL": aml_url, "AML_LOCAL_KEY": AML_KEY, "ENDPOINT_NAME": endpoint}}))
    home.info.write_text(json.dumps({
        "pid": os.getpid(), "home": str(home.root), "storage_connection_string": "UseDevelopmentStorage=true",
        "blob_endpoint": "http://127.0.0.1:10000/devstoreaccount1", "queue_endpoint": "",
        "eventgrid_endpoint": "http://127.0.0.1:1/api/events", "eventgrid_key": "grid-key", "eventgrid_topics": {},
        "functions_url": "http://127.0.0.1:2", "functions_key": "", "functions_master_key": "", "functions": [],
        "aml_url": aml_url, "aml_key": AML_KEY, "endpoint_name": endpoint,
        "scoring_uri": f"{aml_url}/score", "started_at": "2026-03-01T00:00:00Z"}))
    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    return home


def test_info_gives_the_endpoints_scoring_key(monkeypatch, tmp_path, stand_in):
    running_stack(monkeypatch, tmp_path, stand_in, "loans-endpoint")
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["scoring_key"] == "scoring-secret" and shown["endpoint_name"] == "loans-endpoint"


def test_info_before_the_endpoint_exists_has_no_scoring_key(monkeypatch, tmp_path, stand_in):
    running_stack(monkeypatch, tmp_path, stand_in, "not-created-yet")
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scoring_key"] is None
