"""The dashboard's server over real HTTP on loopback, with a fake platform (a running stack) or a stopped stack's
snapshot as its source: the key, the status (collect()'s, nothing else), the timeline's filters, the live stream,
the actions (the functions the CLI calls), and a stopped stack read-only."""
from __future__ import annotations

import json
import os
import stat
import threading

import pytest
import requests

from emulator.home import StackHome
from emulator.timeline import Delivery, Timeline
from lifecycle.core.rollout_machine import Rollout
from mlops.dashboard.server import COOKIE, NOT_RUNNING
from mlops.dashboard.source import View, stack_source
from mlops.status import collect
from tests.conftest import wait_until
from tests.dashboard.conftest import Source, canary_platform, demo_home, demo_status


def get(dashboard, path: str, key: str | None = "", **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {dashboard.key if key == '' else key}"} if key is not None else {}
    return requests.get(f"{dashboard.url}{path}", headers=headers, timeout=10, **kwargs)


def post(dashboard, path: str, **kwargs) -> requests.Response:
    return requests.post(f"{dashboard.url}{path}", headers={"Authorization": f"Bearer {dashboard.key}"}, timeout=10,
                         **kwargs)


@pytest.fixture
def running(serve):
    p = canary_platform()
    return serve(Source(View(platform=p, started_at="2026-12-01T01:00:00Z"))), p


def test_it_listens_on_loopback_only_and_writes_its_key_owner_only(serve, tmp_path):
    dashboard = serve(Source(), key="given-key")
    assert dashboard.url.startswith("http://127.0.0.1:") and dashboard.key == "given-key"
    written = json.loads(dashboard.info_file.read_text())
    assert written["url"] == dashboard.url and written["port"] == dashboard.port and written["key"] == "given-key"
    assert stat.S_IMODE(os.stat(dashboard.info_file).st_mode) == 0o600
    dashboard.stop()
    assert not dashboard.info_file.exists()


def test_a_random_key_each_start(serve):
    first, second = serve(Source()), serve(Source())
    assert first.key != second.key and len(first.key) >= 24


@pytest.mark.parametrize("path", ["/api/status", "/api/events", "/api/info", "/api/stream"])
def test_a_wrong_or_missing_key_gets_401_with_a_json_error(running, path):
    dashboard, _ = running
    for key in (None, "wrong", dashboard.key[:-1]):
        answer = get(dashboard, path, key=key)
        assert answer.status_code == 401, (path, key)
        assert "key" in answer.json()["error"]
    assert requests.post(f"{dashboard.url}/api/rollouts/mlops-endpoint/pause", timeout=10).status_code == 401
    assert get(dashboard, f"/api/status?key={dashboard.key}x", key=None).status_code == 401


def test_the_page_refuses_a_wrong_key_in_plain_words(running):
    dashboard, _ = running
    for url in (f"{dashboard.url}/", f"{dashboard.url}/?key=nope", f"{dashboard.url}/static/app.js"):
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 401 and answer.headers["Content-Type"].startswith("text/plain")
        assert "wrong key" in answer.text


def test_the_key_in_the_url_sets_a_strict_http_only_cookie_and_leaves_the_address_bar(running):
    dashboard, _ = running
    first = requests.get(f"{dashboard.url}/?key={dashboard.key}", timeout=10, allow_redirects=False)
    assert first.status_code == 302 and first.headers["Location"] == "/"
    cookie = first.headers["Set-Cookie"]
    assert f"{COOKIE}={dashboard.key}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with requests.Session() as session:
        page = session.get(f"{dashboard.url}/?key={dashboard.key}", timeout=10)
        assert page.status_code == 200 and page.url == f"{dashboard.url}/" and 'data-testid="timeline"' in page.text
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert session.get(f"{dashboard.url}/api/status", timeout=10).status_code == 200
        assert session.get(f"{dashboard.url}/static/app.js", timeout=10).headers["Content-Type"].startswith(
            "text/javascript")


def test_the_page_loads_nothing_from_elsewhere():
    from mlops.dashboard.server import STATIC
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text, name


def test_status_is_exactly_what_collect_returns(running):
    dashboard, p = running
    answer = get(dashboard, "/api/status")
    assert answer.status_code == 200
    assert answer.json() == json.loads(json.dumps(collect(p), default=str))
    assert get(dashboard, "/api/info").json()["running"] is True


def test_a_stopped_stack_serves_its_snapshot_and_says_so(serve, tmp_path):
    home = demo_home(tmp_path / "demo")
    dashboard = serve(stack_source(home), home=home)        # the stack's own source: no stack runs at this home
    assert get(dashboard, "/api/status").json() == demo_status()
    info = get(dashboard, "/api/info").json()
    assert info["running"] is False and info["snapshot"] is True and info["written_at"]


def test_no_stack_and_no_snapshot_is_a_503_that_says_where_it_looked(serve, tmp_path):
    home = StackHome(tmp_path / "empty")
    dashboard = serve(stack_source(home), home=home)
    answer = get(dashboard, "/api/status")
    assert answer.status_code == 503 and str(home.root) in answer.json()["error"]


def test_events_are_filtered_by_type_function_outcome_and_time_with_ticks_hidden(serve, tmp_path):
    home = StackHome(tmp_path / "home")
    timeline = Timeline(home.timeline)
    records = [
        Delivery("e1", "Microsoft.Storage.BlobCreated", "/data/a.csv", "on_data_arrived", 1, "delivered",
                 time="2026-12-01T01:00:00.000Z"),
        Delivery("t1", "timer", "reconcile", "reconcile", 1, "delivered", source="timer",
                 time="2026-12-01T01:00:01.000Z"),
        Delivery("e2", "MLOps.RolloutPromoted", "endpoints/e", "on_rollout_event", 1, "failed", detail="500",
                 time="2026-12-01T01:05:00.000Z"),
        Delivery("e2", "MLOps.RolloutPromoted", "endpoints/e", "on_rollout_event", 2, "delivered",
                 time="2026-12-01T01:05:10.000Z"),
        Delivery("t2", "timer", "rollout_tick", "rollout_tick", 1, "delivered", source="timer",
                 time="2026-12-01T01:06:00.000Z"),
    ]
    for record in records:
        timeline.record(record)
    dashboard = serve(Source(), home=home)

    def ids(query: str) -> list[tuple[str, int]]:
        answer = get(dashboard, f"/api/events{query}")
        assert answer.status_code == 200, answer.text
        return [(e["event_id"], e["attempt"]) for e in answer.json()["events"]]

    everything = get(dashboard, "/api/events").json()
    assert everything["total"] == 5 and everything["matched"] == 3 and everything["ticks_hidden"] == 2
    assert everything["facets"]["function"] == sorted({r.function for r in records})
    assert everything["events"][0] == json.loads(json.dumps(records[0].__dict__))
    assert ids("") == [("e1", 1), ("e2", 1), ("e2", 2)]
    assert ids("?ticks=1") == [("e1", 1), ("t1", 1), ("e2", 1), ("e2", 2), ("t2", 1)]
    assert ids("?type=Rollout") == [("e2", 1), ("e2", 2)]
    assert ids("?function=on_data_arrived") == [("e1", 1)]
    assert ids("?outcome=failed") == [("e2", 1)]
    assert ids("?since=2026-12-01T01:05:05Z&ticks=1") == [("e2", 2), ("t2", 1)]
    assert ids("?limit=1") == [("e2", 2)]
    assert ids("?since=1d&function=rollout_tick") == []      # the records are days old (the clock is now)
    assert get(dashboard, "/api/events?since=yesterday").status_code == 400


def test_the_stream_tells_when_the_timeline_grows_and_when_the_status_changes(running):
    dashboard, p = running
    seen: list[str] = []
    answer = get(dashboard, "/api/stream", stream=True)
    assert answer.headers["Content-Type"].startswith("text/event-stream")

    def read() -> None:
        try:
            for line in answer.iter_lines(chunk_size=1, decode_unicode=True):
                if line and line.startswith("event: "):
                    seen.append(line[7:])
        except (requests.RequestException, AttributeError, ValueError):
            pass        # closed by the test
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until(lambda: "hello" in seen, what="the stream's first event")
    Timeline(dashboard.home.timeline).record(Delivery("x", "MLOps.Test", "s", "f", 1, "delivered"))
    wait_until(lambda: "timeline" in seen, what="a timeline event")
    assert post(dashboard, f"/api/rollouts/{p.policies.model.endpoint}/pause").status_code == 200
    wait_until(lambda: "status" in seen, what="a status event after the rollout changed")
    dashboard.stop()                    # ends the stream (closing it here would wait on the reader's read)
    reader.join(5)
    assert not reader.is_alive()


def test_rollout_overrides_call_the_cli_s_function_and_change_the_rollout(running):
    dashboard, p = running
    endpoint = p.policies.model.endpoint
    answer = post(dashboard, f"/api/rollouts/{endpoint}/pause", json={"by": "ana"})
    assert answer.status_code == 200 and answer.json()["result"]["paused"] is True
    assert p.state.get(Rollout, endpoint).paused
    assert post(dashboard, f"/api/rollouts/{endpoint}/resume").json()["result"]["paused"] is False
    assert post(dashboard, f"/api/rollouts/{endpoint}/rollback").json()["result"]["phase"] == "rolled_back"
    assert p.state.get(Rollout, endpoint).phase == "rolled_back"
    again = post(dashboard, f"/api/rollouts/{endpoint}/promote")
    assert again.status_code == 409 and "no rollout in progress" in again.json()["error"]
    assert post(dashboard, f"/api/rollouts/{endpoint}/explode").status_code == 404


def test_reviews_call_the_cli_s_functions_with_who_decided(running, monkeypatch):
    from lifecycle.handlers import promotion, registration
    dashboard, p = running
    calls = []
    monkeypatch.setattr(registration, "review", lambda q, job, approve, by: calls.append(("job", job, approve, by))
                        or {"outcome": "registered"})
    monkeypatch.setattr(promotion, "review", lambda q, ref, approve, by: calls.append(("promotion", ref, approve, by))
                        or {"status": "rolling out"})
    assert post(dashboard, "/api/jobs/train-3/approve", json={"by": "ana"}).status_code == 200
    assert post(dashboard, "/api/jobs/train-3/reject").status_code == 200
    assert post(dashboard, "/api/promotions/tabular-classifier:2/approve", json={"by": "bo"}).status_code == 200
    import getpass
    assert calls == [("job", "train-3", True, "ana"), ("job", "train-3", False, getpass.getuser()),
                     ("promotion", "tabular-classifier:2", True, "bo")]
    assert post(dashboard, "/api/jobs/train-3/maybe").status_code == 404


def test_a_review_with_nothing_to_review_is_a_409_with_the_reason(running):
    dashboard, _ = running
    answer = post(dashboard, "/api/jobs/train-tabular-classifier-data-2/approve")
    assert answer.status_code == 409 and answer.json()["error"]
    assert post(dashboard, "/api/promotions/tabular-classifier:9/approve").status_code == 409


def test_a_stopped_stack_is_read_only(serve, tmp_path, monkeypatch):
    from lifecycle.handlers import rollout
    monkeypatch.setattr(rollout, "override", lambda *a: pytest.fail("no action on a snapshot"))
    home = demo_home(tmp_path / "demo")
    dashboard = serve(stack_source(home), home=home)
    for path in ("/api/rollouts/mlops-endpoint/promote", "/api/promotions/m:1/approve", "/api/jobs/j/approve"):
        answer = post(dashboard, path)
        assert answer.status_code == 409 and answer.json()["error"] == NOT_RUNNING


def test_a_post_from_another_origin_is_refused(running):
    dashboard, p = running
    answer = requests.post(f"{dashboard.url}/api/rollouts/{p.policies.model.endpoint}/pause", timeout=10,
                           headers={"Authorization": f"Bearer {dashboard.key}", "Origin": "http://evil.example"})
    assert answer.status_code == 403 and not p.state.get(Rollout, p.policies.model.endpoint).paused
