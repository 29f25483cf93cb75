"""The local Functions host over real HTTP on 127.0.0.1: Event Grid webhook, timers, HTTP triggers,
the timeline, and the `python -m emulator.functions_host` process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest
import requests

from emulator.functions_host import FunctionsHost, HostError, HostKeys, load_app
from emulator.loop import BackgroundLoop
from emulator.timeline import Timeline
from tests.apps import eventgrid as eventgrid_app
from tests.apps import http as http_app
from tests.apps import timers as timers_app
from tests.conftest import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYS = HostKeys(function_key="fn-key", master_key="master-key", eventgrid_extension_key="eg-key")
WEBHOOK = "/runtime/webhooks/eventgrid"


@pytest.fixture(scope="module")
def loop() -> Iterator[BackgroundLoop]:
    with BackgroundLoop("functions-host-tests") as background:
        yield background


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    # The host puts app settings into os.environ, as Azure does; keep tests from seeing each other's.
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@contextmanager
def running(loop: BackgroundLoop, app, **options) -> Iterator[FunctionsHost]:
    host = FunctionsHost(app, keys=KEYS, **options)
    loop.run(host.start())
    try:
        yield host
    finally:
        loop.run(host.stop())


@pytest.fixture(scope="module")
def eventgrid_host(loop, tmp_path_factory) -> Iterator[FunctionsHost]:
    timeline = Timeline(tmp_path_factory.mktemp("eventgrid") / "timeline.jsonl")
    with running(loop, eventgrid_app.app, timeline=timeline) as host:
        yield host


@pytest.fixture(scope="module")
def http_host(loop, tmp_path_factory) -> Iterator[FunctionsHost]:
    timeline = Timeline(tmp_path_factory.mktemp("http") / "timeline.jsonl")
    with running(loop, http_app.app, timeline=timeline) as host:
        yield host


def records(host: FunctionsHost, **match) -> list:
    return [d for d in host.timeline.read() if all(getattr(d, k) == v for k, v in match.items())]


def eventgrid_event(**overrides) -> dict:
    event = {"id": str(uuid.uuid4()), "topic": "/subscriptions/x/resourceGroups/rg/providers/"
             "Microsoft.Storage/storageAccounts/data", "subject": "/blobServices/default/containers/data/blobs/a.csv",
             "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2025-03-01T12:30:45.1234567Z",
             "data": {"url": "http://127.0.0.1/data/a.csv", "contentLength": 12}, "dataVersion": "1",
             "metadataVersion": "1"}
    return {**event, **overrides}


def post_events(host: FunctionsHost, function: str, body, *, key: str | None = "eg-key",
                kind: str = "Notification", headers: dict | None = None) -> requests.Response:
    params = {"functionName": function, **({"code": key} if key else {})}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(host.url + WEBHOOK, params=params, data=data, timeout=10,
                         headers={"aeg-event-type": kind, "Content-Type": "application/json", **(headers or {})})


# --- loading --------------------------------------------------------------------------------------------

def test_the_projects_app_loads_and_lists_its_functions():
    settings = {"RETRAIN_SCHEDULE": "0 0 2 * * *", "RECONCILE_SCHEDULE": "0 */1 * * * *",
                "MONITOR_SCHEDULE": "0 */10 * * * *"}
    host = FunctionsHost(load_app("function_app:app"), keys=KEYS, settings=settings)
    functions = {f["name"]: f for f in host.functions()}
    assert functions["on_data_arrived"]["trigger"] == "eventGridTrigger"
    assert functions["retrain_timer"]["schedule"] == "0 0 2 * * *"
    assert functions["retrain_now"]["trigger"] == "httpTrigger"
    assert functions["monitor_timer"]["schedule"] == "0 */10 * * * *"
    assert functions["on_alert_event"]["trigger"] == "eventGridTrigger"
    assert functions["azure_monitor_alert"]["trigger"] == "httpTrigger"


def test_load_app_names_what_is_wrong():
    with pytest.raises(HostError, match="cannot import"):
        load_app("no_such_module_here:app")
    with pytest.raises(HostError, match="no FunctionApp named 'nope'"):
        load_app("tests.apps.http:nope")


# --- Event Grid webhook -------------------------------------------------------------------------------

def test_subscription_validation_is_answered_without_invoking(eventgrid_host):
    before = len(eventgrid_app.received)
    validation = eventgrid_event(eventType="Microsoft.EventGrid.SubscriptionValidationEvent",
                                 data={"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    answer = post_events(eventgrid_host, "on_event", [validation], kind="SubscriptionValidation")
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert len(eventgrid_app.received) == before


def test_cloudevents_validation_handshake(eventgrid_host):
    answer = requests.options(eventgrid_host.url + WEBHOOK, params={"functionName": "on_event", "code": "eg-key"},
                              headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_eventgrid_schema_notification_invokes_with_a_real_binding(eventgrid_host):
    event = eventgrid_event()
    answer = post_events(eventgrid_host, "on_event", [event])
    assert answer.status_code == 200, answer.text
    got = eventgrid_app.received[-1]
    assert isinstance(got, func.EventGridEvent)
    assert (got.id, got.subject, got.event_type, got.topic) == (event["id"], event["subject"], event["eventType"],
                                                                event["topic"])
    assert got.get_json() == event["data"]
    assert got.event_time == datetime(2025, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
    assert got.data_version == "1"


def test_each_event_of_a_batch_is_one_invocation(eventgrid_host):
    batch = [eventgrid_event(), eventgrid_event()]
    before = len(eventgrid_app.received)
    assert post_events(eventgrid_host, "on_event", batch).status_code == 200
    assert [e.id for e in eventgrid_app.received[before:]] == [batch[0]["id"], batch[1]["id"]]


def test_cloudevents_notification_arrives_as_the_workers_cloudevent(eventgrid_host):
    # azure-functions >= 1.25 decodes CloudEvents deliveries into func.CloudEvent, whatever the annotation.
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/mlops/local", "type": "MLOps.DriftDetected",
             "subject": "models/churn:3", "time": "2025-03-01T08:00:00Z", "data": {"score": 0.4},
             "datacontenttype": "application/json"}
    for body in (event, [dict(event, id=event["id"] + "-2")]):       # one object, or a batch
        answer = post_events(eventgrid_host, "on_event", body,
                             headers={"Content-Type": "application/cloudevents+json; charset=utf-8"})
        assert answer.status_code == 200, answer.text
    single, batched = eventgrid_app.received[-2:]
    assert isinstance(single, func.CloudEvent)
    assert (single.id, single.subject, single.type, single.source) == (event["id"], "models/churn:3",
                                                                      "MLOps.DriftDetected", "/mlops/local")
    assert single.get_json() == {"score": 0.4}
    assert single.time == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert batched.id == event["id"] + "-2"


def test_async_functions_are_awaited(eventgrid_host):
    event = eventgrid_event()
    assert post_events(eventgrid_host, "on_event_async", [event]).status_code == 200
    assert eventgrid_app.received_async[-1].id == event["id"]


@pytest.mark.parametrize("key", ["wrong", None, "fn-key"])
def test_webhook_needs_the_extension_key(eventgrid_host, key):
    before = len(eventgrid_app.received)
    assert post_events(eventgrid_host, "on_event", [eventgrid_event()], key=key).status_code == 401
    assert len(eventgrid_app.received) == before


def test_webhook_accepts_the_master_key_in_the_header(eventgrid_host):
    answer = post_events(eventgrid_host, "on_event", [eventgrid_event()], key=None,
                         headers={"x-functions-key": "master-key"})
    assert answer.status_code == 200


def test_unknown_or_non_eventgrid_function_is_404(eventgrid_host):
    missing = post_events(eventgrid_host, "nope", [eventgrid_event()])
    assert missing.status_code == 404 and "nope" in missing.text
    http = post_events(eventgrid_host, "ping", [eventgrid_event()])
    assert http.status_code == 404 and "not an eventGridTrigger" in http.text


@pytest.mark.parametrize("body, reason", [
    (b"[{not json", "not valid JSON"),
    ([{"id": "1", "subject": "s", "eventTime": "2025-03-01T00:00:00Z"}], "eventType"),
    ({"specversion": "1.0", "id": "1", "type": "T"}, "source"),
    ("42", "JSON array"),
])
def test_malformed_deliveries_are_400_with_the_reason(eventgrid_host, body, reason):
    answer = post_events(eventgrid_host, "on_event", body)
    assert answer.status_code == 400
    assert reason in answer.text


def test_an_event_the_worker_cannot_bind_is_400_and_recorded_as_rejected(eventgrid_host):
    before = len(eventgrid_app.received)
    event = eventgrid_event(eventTime="2025-03-01 noon")
    answer = post_events(eventgrid_host, "on_event", [event])
    assert answer.status_code == 400, answer.text
    assert f"cannot take event '{event['id']}': eventTime '2025-03-01 noon' is not a date-time" in answer.text
    assert len(eventgrid_app.received) == before
    [rejected] = records(eventgrid_host, event_id=event["id"])
    assert (rejected.outcome, rejected.status, rejected.source) == ("rejected", 400, "webhook")
    assert "eventTime '2025-03-01 noon'" in rejected.detail


def test_unsubscribe_is_acknowledged_without_invoking(eventgrid_host):
    before = len(eventgrid_app.received)
    assert post_events(eventgrid_host, "on_event", [eventgrid_event()], kind="Unsubscribe").status_code == 202
    assert len(eventgrid_app.received) == before


def test_a_raising_function_is_500_naming_the_error_without_a_traceback(eventgrid_host):
    event = eventgrid_event(subject="/blobServices/default/containers/data/blobs/b.csv")
    answer = post_events(eventgrid_host, "failing", [event])
    assert answer.status_code == 500
    assert "ValueError: storage is down for /blobServices/default/containers/data/blobs/b.csv" in answer.text
    assert event["id"] in answer.text and "Traceback" not in answer.text


def test_webhook_deliveries_go_to_the_timeline_unless_event_grid_records_them(eventgrid_host):
    direct, failing, via_grid = eventgrid_event(), eventgrid_event(), eventgrid_event()
    post_events(eventgrid_host, "on_event", [direct])
    post_events(eventgrid_host, "failing", [failing])
    post_events(eventgrid_host, "on_event", [via_grid], headers={"aeg-subscription-name": "DATA-ARRIVED"})
    [ok] = records(eventgrid_host, event_id=direct["id"])
    assert (ok.source, ok.function, ok.outcome, ok.status, ok.event_type, ok.subject) == (
        "webhook", "on_event", "delivered", 200, direct["eventType"], direct["subject"])
    [bad] = records(eventgrid_host, event_id=failing["id"])
    assert (bad.outcome, bad.status) == ("failed", 500) and "ValueError" in bad.detail
    assert records(eventgrid_host, event_id=via_grid["id"]) == []


def test_home_and_status(eventgrid_host):
    home = requests.get(eventgrid_host.url + "/", timeout=10)
    assert home.status_code == 200 and "running" in home.text
    assert requests.get(eventgrid_host.url + "/admin/host/status", timeout=10).status_code == 401
    status = requests.get(eventgrid_host.url + "/admin/host/status", headers={"x-functions-key": "master-key"},
                          timeout=10).json()
    assert status["state"] == "Running"
    assert {"name": "failing", "trigger": "eventGridTrigger"} in status["functions"]


# --- timers -----------------------------------------------------------------------------------------------

def test_timers_fire_on_their_schedule_and_keep_going_after_failures(loop, tmp_path):
    timeline = Timeline(tmp_path / "timeline.jsonl")
    timers_app.ticks.clear()
    timers_app.startup_ticks.clear()
    with running(loop, timers_app.app, settings={"TEST_SCHEDULE": "*/1 * * * * *"}, timeline=timeline) as host:
        assert {"name": "every_tick", "trigger": "timerTrigger", "schedule": "*/1 * * * * *",
                "run_on_startup": False} in host.functions()
        wait_until(lambda: len(timers_app.ticks) >= 2, timeout=3.5, what="two timer ticks")
        wait_until(lambda: sum(d.function == "failing_tick" for d in timeline.read()) >= 2, timeout=2,
                   what="two failed ticks")
    tick = timers_app.ticks[0]
    assert isinstance(tick, func.TimerRequest) and tick.past_due is False
    assert set(tick.schedule_status) == {"Last", "Next", "LastUpdated"}
    assert len(timers_app.startup_ticks) == 1          # run_on_startup; its schedule is once a year
    ok = [d for d in timeline.read() if d.function == "every_tick"]
    failed = [d for d in timeline.read() if d.function == "failing_tick"]
    assert {(d.source, d.event_type, d.subject, d.outcome) for d in ok} == {
        ("timer", "Timer", "*/1 * * * * *", "delivered")}
    assert {(d.outcome, d.detail) for d in failed} == {("failed", "RuntimeError: the tick failed")}
    assert len({d.event_id for d in ok}) == len(ok)
    count = len(timers_app.ticks)
    time.sleep(1.2)
    assert len(timers_app.ticks) == count             # stopped means stopped


def test_an_invalid_schedule_stops_start_up_with_a_clear_message(loop):
    host = FunctionsHost(timers_app.app, keys=KEYS, settings={"TEST_SCHEDULE": "*/5 * * * *"})
    with pytest.raises(HostError) as raised:
        loop.run(host.start())
    assert str(raised.value) == (
        "function 'every_tick': timer schedule '*/5 * * * *' (from %TEST_SCHEDULE%) is not a valid NCRONTAB "
        "expression (6 fields, seconds first, e.g. '0 */5 * * * *')")


def test_a_missing_setting_stops_start_up_naming_function_and_setting(loop):
    os.environ.pop("TEST_SCHEDULE", None)
    host = FunctionsHost(timers_app.app, keys=KEYS)
    with pytest.raises(HostError, match="function 'every_tick'.*'TEST_SCHEDULE'.*not set"):
        loop.run(host.start())


# --- HTTP triggers ----------------------------------------------------------------------------------------

def test_anonymous_route_needs_no_key(http_host):
    answer = requests.get(http_host.url + "/api/hello", timeout=10)
    assert (answer.status_code, answer.text) == (200, "hello")
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_function_route_needs_the_function_key(http_host):
    url = http_host.url + "/api/items/7"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"code": "wrong"}, timeout=10).status_code == 401
    assert requests.get(url, headers={"x-functions-key": "fn-key"}, timeout=10).status_code == 201
    assert requests.get(url, params={"code": "fn-key"}, timeout=10).status_code == 201
    assert requests.get(url, params={"code": "master-key"}, timeout=10).status_code == 201


def test_admin_route_needs_the_master_key(http_host):
    url = http_host.url + "/api/admin/reset"
    assert requests.post(url, params={"code": "fn-key"}, timeout=10).status_code == 401
    assert requests.post(url, params={"code": "master-key"}, timeout=10).status_code == 204


def test_route_params_query_and_body_reach_the_function_and_the_response_comes_back(http_host):
    answer = requests.post(http_host.url + "/api/ITEMS/42", params={"q": "blue", "code": "fn-key"},
                           data=b"payload", headers={"X-Custom": "yes"}, timeout=10)
    assert answer.status_code == 201
    assert answer.headers["X-Item"] == "42" and answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"id": "42", "q": "blue", "body": "payload"}
    got = http_app.received[-1]
    assert isinstance(got, func.HttpRequest)
    assert (got.method, got.headers["x-custom"], got.route_params["id"]) == ("POST", "yes", "42")
    assert got.url.startswith(http_host.url + "/api/ITEMS/42?")


def test_methods_and_unknown_routes(http_host):
    # The host's router answers 404 when only the method is wrong (Azure/azure-functions-host#10098).
    wrong_method = requests.delete(http_host.url + "/api/items/1", params={"code": "fn-key"}, timeout=10)
    assert wrong_method.status_code == 404 and "its route takes GET, POST" in wrong_method.text
    assert requests.get(http_host.url + "/api/nowhere", timeout=10).status_code == 404


def test_async_function_with_context_returning_str(http_host):
    answer = requests.get(http_host.url + "/api/whoami", timeout=10)
    assert (answer.status_code, answer.text) == (200, "whoami")


def test_failures_are_500_without_details(http_host):
    boom = requests.get(http_host.url + "/api/boom", timeout=10)
    assert boom.status_code == 500 and "secret" not in boom.text
    # The worker cannot encode None for an HTTP $return binding: the invocation fails (500), as in Azure.
    assert requests.get(http_host.url + "/api/nothing", timeout=10).status_code == 500


def test_http_invocations_go_to_the_timeline(http_host):
    requests.get(http_host.url + "/api/hello", timeout=10)
    requests.get(http_host.url + "/api/boom", timeout=10)
    hello = records(http_host, function="hello")[-1]
    assert (hello.source, hello.event_type, hello.subject, hello.status, hello.outcome) == (
        "http", "HTTP GET", "/api/hello", 200, "delivered")
    boom = records(http_host, function="boom")[-1]
    assert (boom.status, boom.outcome, boom.detail) == (500, "failed", "RuntimeError: a secret detail")
    assert records(http_host, function="items", status=401) == []     # rejected requests are no invocations


# --- the process --------------------------------------------------------------------------------------------

@pytest.mark.stack      # a host process
def test_the_module_runs_as_a_process_and_stops_cleanly_on_sigterm(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {"TEST_SCHEDULE": "0 0 0 1 1 *"}}))
    keys_file, ready_file, timeline = tmp_path / "keys.json", tmp_path / "ready.json", tmp_path / "timeline.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.functions_host", "--app", "tests.apps.eventgrid:app", "--port", "0",
         "--settings-file", str(settings), "--keys-file", str(keys_file), "--ready-file", str(ready_file),
         "--timeline", str(timeline)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: ready_file.exists() or process.poll() is not None, timeout=15, what="the ready file")
        assert process.poll() is None, process.stdout.read().decode()
        ready = json.loads(ready_file.read_text())
        keys = json.loads(keys_file.read_text())
        assert ready["pid"] == process.pid and ready["url"].startswith("http://127.0.0.1:")
        assert {"name": "on_event", "trigger": "eventGridTrigger"} in ready["functions"]
        event = eventgrid_event()
        answer = requests.post(ready["url"] + WEBHOOK, params={"functionName": "on_event"},
                               headers={"aeg-event-type": "Notification",
                                        "x-functions-key": keys["eventgrid_extension_key"]},
                               data=json.dumps([event]), timeout=10)
        assert answer.status_code == 200, answer.text
        assert [d.event_id for d in Timeline(timeline).read()] == [event["id"]]
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    assert process.returncode == 0, output
    assert "Executed 'Functions.on_event' (Succeeded" in output


# --- local.settings.json against the environment (Core Tools' rule) ---------------------------------------------

CORE_TOOLS_WARNING = ("Skipping 'TARGET_COLUMN' from local settings as it's already defined "
                      "in current environment variables.")


def test_an_environment_variable_wins_over_local_settings_with_core_tools_warning():
    from emulator.functions_host.loader import over_environment
    said = []
    effective = over_environment({"TARGET_COLUMN": "default", "MODEL_NAME": "churn", "GATE_FLOOR": "0.6"},
                                 {"TARGET_COLUMN": "x", "GATE_FLOOR": "", "PATH": "/bin"}, warn=said.append)
    # an empty variable is not "defined" for Core Tools (string.IsNullOrEmpty): the file's value stays
    assert effective == {"TARGET_COLUMN": "x", "MODEL_NAME": "churn", "GATE_FLOOR": "0.6"}
    assert said == [CORE_TOOLS_WARNING]


@pytest.mark.stack      # a host process
def test_the_host_process_lets_the_environment_win_over_its_settings_file(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {
        "TARGET_COLUMN": "default", "MODEL_NAME": "churn", "TEST_SCHEDULE": "0 0 0 1 1 *"}}))
    ready_file = tmp_path / "ready.json"
    environment = {**os.environ, "TARGET_COLUMN": "x", "TEST_SCHEDULE": "0 30 9 * * 1-5"}
    environment.pop("MODEL_NAME", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.functions_host", "--app", "tests.apps.settings:app", "--port", "0",
         "--settings-file", str(settings), "--ready-file", str(ready_file)],
        cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: ready_file.exists() or process.poll() is not None, timeout=15, what="the ready file")
        assert process.poll() is None, process.stdout.read().decode()
        ready = json.loads(ready_file.read_text())
        seen = {name: requests.get(f"{ready['url']}/api/settings/{name}", timeout=10).json()
                for name in ("TARGET_COLUMN", "MODEL_NAME")}
        assert seen == {"TARGET_COLUMN": "x", "MODEL_NAME": "churn"}
        # %TEST_SCHEDULE% resolves to the value in effect too
        assert {"name": "on_schedule", "trigger": "timerTrigger", "schedule": "0 30 9 * * 1-5"} in [
            {k: f.get(k) for k in ("name", "trigger", "schedule")} for f in ready["functions"]]
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    assert CORE_TOOLS_WARNING in output.splitlines()
    assert "Skipping 'TEST_SCHEDULE' from local settings" in output and "'MODEL_NAME'" not in output
