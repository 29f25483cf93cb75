"""Malformed requests against the local topic endpoint, the Event Grid webhook and the HTTP routes, over real
HTTP on 127.0.0.1: each answers the status class Azure answers, says what is wrong, and changes nothing.
Only a function that really raised answers 500. The corpus itself is tests/emulator/poison_http_cases.py."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from emulator.eventgrid.schema import WireEvent
from emulator.eventgrid.topic import TopicEndpoint
from emulator.functions_host import FunctionsHost, HostKeys
from emulator.loop import BackgroundLoop
from emulator.loopback import serve_on_loopback
from emulator.timeline import Timeline
from tests.apps import poison as poison_app
from tests.emulator import poison_http_cases as corpus
from tests.emulator.poison_http_cases import CASES, PoisonCase, eg

KEYS = HostKeys(function_key=corpus.FUNCTION_KEY, master_key=corpus.MASTER_KEY,
                eventgrid_extension_key=corpus.EXTENSION_KEY)


@dataclass
class RecordingGrid:
    """What TopicEndpoint needs of the broker: the topics and a publish that records."""
    topic_ids: dict[str, str] = field(default_factory=lambda: {corpus.TOPIC: corpus.TOPIC_ID})
    published: list[tuple[str, list[WireEvent]]] = field(default_factory=list)

    async def publish(self, topic: str, events: list[WireEvent]) -> None:
        self.published.append((topic, events))


@dataclass
class Surfaces:
    grid: RecordingGrid
    topic_url: str
    host: FunctionsHost

    def base(self, case: PoisonCase) -> str:
        return self.topic_url if case.target == "topic" else self.host.url


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory) -> Iterator[Surfaces]:
    with BackgroundLoop("poison-http") as loop:
        grid = RecordingGrid()
        runner, topic_url = loop.run(serve_on_loopback(TopicEndpoint(grid, corpus.TOPIC_KEY, corpus.TOPIC).make_app()))
        timeline = Timeline(tmp_path_factory.mktemp("poison") / "timeline.jsonl")
        host = FunctionsHost(poison_app.app, keys=KEYS, timeline=timeline)
        loop.run(host.start())
        try:
            yield Surfaces(grid, topic_url, host)
        finally:
            loop.run(host.stop())
            loop.run(runner.cleanup())


def send(surfaces: Surfaces, case: PoisonCase, **overrides) -> requests.Response:
    return requests.request(case.method, surfaces.base(case) + case.path, data=case.body,
                            headers=case.header_dict, timeout=30, **overrides)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_malformed_request_gets_azures_status_and_says_what_is_wrong(surfaces, case):
    published, invoked = len(surfaces.grid.published), len(poison_app.received)
    answer = send(surfaces, case)
    assert answer.status_code == case.status, f"{case.name}: {answer.status_code} {answer.text[:300]}"
    assert case.fragment in message(answer), f"{case.name}: {answer.text[:300]}"
    if case.target == "topic":          # all or nothing: a rejected publish changes nothing
        assert len(surfaces.grid.published) == published + (answer.status_code == 200)
    if case.target == "webhook" and case.status >= 400:
        assert len(poison_app.received) == invoked


def test_the_corpus_covers_every_surface_with_unique_names():
    assert len(CASES) >= 25
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.target for case in CASES} == {"topic", "webhook", "http"}
    topic_types = {case.header_dict.get("Content-Type", "").split(";")[0] for case in CASES if case.target == "topic"}
    assert {"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"} <= topic_types
    webhook_bodies = [json.loads(case.body) for case in CASES if case.target == "webhook" and _is_json(case.body)]
    assert any(isinstance(b, dict) and "specversion" in b for b in webhook_bodies)          # both schemas
    assert any(isinstance(b, list) and b and isinstance(b[0], dict) and "eventType" in b[0] for b in webhook_bodies)
    # Nothing answers 500 but a function that really raised.
    assert {case.name for case in CASES if case.status == 500} == {"webhook-function-raises",
                                                                   "http-body-not-json-function-raises"}
    assert all(case.azure for case in CASES)


def message(answer: requests.Response) -> str:
    """The topic's {"error": {"message"}} (Azure's error shape), or the plain text the host answers."""
    try:
        return answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return answer.text


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


# --- an event the worker cannot bind ------------------------------------------------------------------------

def post(surfaces: Surfaces, function: str, body, **headers) -> requests.Response:
    return requests.post(surfaces.host.url + corpus.WEBHOOK_PATH, data=json.dumps(body), timeout=10,
                         params={"functionName": function, "code": corpus.EXTENSION_KEY},
                         headers={"aeg-event-type": "Notification", "Content-Type": "application/json", **headers})


def records(surfaces: Surfaces, event_id: str) -> list:
    return [d for d in surfaces.host.timeline.read() if d.event_id == event_id]


def test_an_unbindable_event_is_400_and_recorded_as_rejected_with_the_reason(surfaces):
    before = len(poison_app.received)
    event = eg(id="bad-time-1", eventTime="7 June")
    answer = post(surfaces, "record", [event], **{"aeg-delivery-count": "2"})
    assert answer.status_code == 400
    assert answer.text.startswith("function 'record' cannot take event 'bad-time-1': eventTime '7 June' is not")
    assert len(poison_app.received) == before
    [rejected] = records(surfaces, "bad-time-1")
    assert (rejected.outcome, rejected.status, rejected.source, rejected.function, rejected.attempt) == (
        "rejected", 400, "webhook", "record", 3)
    assert (rejected.event_type, rejected.subject) == (event["eventType"], event["subject"])
    assert rejected.detail.startswith("not invoked: eventTime '7 June' is not a date-time the Functions Python")


def test_a_batch_invokes_what_it_can_bind_and_answers_400_for_the_rest(surfaces):
    poison_app.reset()
    good, bad = eg(id="batch-good"), eg(id="batch-bad", eventTime="2025-03-01T12:30:45+02:00")
    answer = post(surfaces, "record", [good, bad])
    assert answer.status_code == 400 and "'batch-bad'" in answer.text and "+02:00" in answer.text
    assert [e.id for e in poison_app.received] == ["batch-good"]
    assert [r.outcome for r in records(surfaces, "batch-good")] == ["delivered"]
    assert [r.outcome for r in records(surfaces, "batch-bad")] == ["rejected"]


def test_a_function_that_raised_outranks_an_unbindable_event(surfaces):
    # A retry may help the raising function, and Event Grid retries only a 5xx.
    answer = post(surfaces, "failing", [eg(id="raise-1"), eg(id="raise-2", eventTime="never")])
    assert answer.status_code == 500
    assert "failed for event 'raise-1'" in answer.text and "RuntimeError: the store is down" in answer.text
    assert [r.outcome for r in records(surfaces, "raise-2")] == ["rejected"]


def test_the_local_grid_records_its_own_deliveries_of_unbindable_events(surfaces):
    answer = post(surfaces, "record", [eg(id="via-grid", eventTime="never")], **{"aeg-subscription-name": "SUB"})
    assert answer.status_code == 400          # the grid dead-letters at once and records why
    assert records(surfaces, "via-grid") == []
