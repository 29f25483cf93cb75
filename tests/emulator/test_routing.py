"""emulator.eventgrid.routing: Event Grid's filter semantics, the real routing table, and its validation."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from emulator.eventgrid.routing import (
    DEFAULT_TABLE,
    EventFilter,
    RoutingTableError,
    load_routing_table,
    parse_routing_table,
)
from emulator.eventgrid.schema import CLOUDEVENTS_SCHEMA, EVENTGRID_SCHEMA, WireEvent

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
MISSING = object()   # "leave the key out of the event"


def sample(name: str) -> WireEvent:
    body = json.loads((SAMPLES / f"{name}.json").read_text())[0]
    return WireEvent(CLOUDEVENTS_SCHEMA if "specversion" in body else EVENTGRID_SCHEMA, body)


def event(value=MISSING, *, subject="/a/b/c.txt", event_type="MLOps.Test", cloud=False, **data) -> WireEvent:
    if value is not MISSING:
        data["x"] = value
    if cloud:
        return WireEvent(CLOUDEVENTS_SCHEMA, {"id": "1", "source": "/src", "type": event_type, "specversion": "1.0",
                                              "subject": subject, "data": data})
    return WireEvent(EVENTGRID_SCHEMA, {"id": "1", "topic": "/t", "subject": subject, "eventType": event_type,
                                        "eventTime": "2024-06-01T00:00:00Z", "data": data, "dataVersion": "2",
                                        "metadataVersion": "1"})


def table_doc(**filter_spec) -> dict:
    return {"topics": {"lifecycle": {"kind": "custom"}},
            "subscriptions": [{"name": "sub-1", "topic": "lifecycle", "function": "fn", "filter": filter_spec}]}


def make_filter(**filter_spec) -> EventFilter:
    return parse_routing_table(table_doc(**filter_spec)).subscriptions[0].filter


def advanced(operator: str, key: str = "data.x", arrays: bool = False, **spec) -> EventFilter:
    return make_filter(advancedFilters=[{"operatorType": operator, "key": key, **spec}],
                       enableAdvancedFilteringOnArrays=arrays)


# ---- every operator: positive, negative, missing key ------------------------------------------

RANGES = [[3.14159, 999.95], [3000, 4000]]
CASES = [
    ("NumberIn", {"values": [5, 1]}, [(5, True), (1.0, True), (2, False), ("5", False), (True, False),
                                      (MISSING, False), (None, False)]),
    ("NumberNotIn", {"values": [41, 0]}, [(5, True), (41, False), (0, False), (MISSING, True), (None, True)]),
    ("NumberLessThan", {"value": 100}, [(99.5, True), (100, False), (MISSING, False)]),
    ("NumberGreaterThan", {"value": 20}, [(21, True), (20, False), ("21", False), (MISSING, False)]),
    ("NumberLessThanOrEquals", {"value": 100}, [(100, True), (101, False), (MISSING, False)]),
    ("NumberGreaterThanOrEquals", {"value": 30}, [(30, True), (29.99, False), (MISSING, False)]),
    ("NumberInRange", {"values": RANGES}, [(3.14159, True), (3500, True), (1000, False), (MISSING, False)]),
    ("NumberNotInRange", {"values": RANGES}, [(1000, True), (3500, False), (999.95, False), (MISSING, True)]),
    ("BoolEquals", {"value": True}, [(True, True), (False, False), ("true", False), (1, False), (MISSING, False)]),
    ("StringContains", {"values": ["microsoft", "azure"]},
     [("Azure Data Factory", True), ("aws", False), (MISSING, False)]),
    ("StringNotContains", {"values": ["contoso", "fabrikam"]},
     [("northwind", True), ("Contoso Ltd", False), (MISSING, False), (None, False)]),
    ("StringBeginsWith", {"values": ["event", "message"]}, [("Event Hubs", True), ("hubs", False), (MISSING, False)]),
    ("StringNotBeginsWith", {"values": ["event", "message"]},
     [("hubs", True), ("MESSAGE queue", False), (MISSING, False)]),
    ("StringEndsWith", {"values": ["jpg", "png"]}, [("a.PNG", True), ("a.gif", False), (MISSING, False)]),
    ("StringNotEndsWith", {"values": ["jpg", "png"]}, [("a.gif", True), ("a.jpg", False), (MISSING, False)]),
    ("StringIn", {"values": ["contoso", "fabrikam"]},
     [("CONTOSO", True), ("contoso ltd", False), (MISSING, False)]),
    ("StringNotIn", {"values": ["aws", "bridge"]}, [("azure", True), ("AWS", False), (MISSING, True), (None, True)]),
    ("IsNullOrUndefined", {}, [(None, True), (MISSING, True), (0, False), ("", False), ({}, False)]),
    ("IsNotNull", {}, [("x", True), (0, True), (False, True), (None, False), (MISSING, False)]),
]


@pytest.mark.parametrize("operator, spec, value, expected",
                         [(op, spec, v, want) for op, spec, cases in CASES for v, want in cases],
                         ids=lambda p: repr(p) if not isinstance(p, dict) else "")
def test_operator(operator, spec, value, expected) -> None:
    assert advanced(operator, **spec).matches(event(value)) is expected


def test_every_operator_is_covered() -> None:
    from emulator.eventgrid import routing
    assert {op for op, _, _ in CASES} == set(routing._OPERATORS)


def test_operator_names_ignore_case() -> None:
    assert advanced("stringin", values=["a"]).matches(event("A"))


def test_numbers_and_booleans_compare_as_text_for_string_operators() -> None:
    # Microsoft's CloudEvents example: StringBeginsWith ["5", "1"] on an extension whose value is 5.
    assert advanced("StringBeginsWith", values=["5", "1"]).matches(event(5))
    assert advanced("StringIn", values=["true"]).matches(event(True))


def test_object_values_match_no_value_operator() -> None:
    assert not advanced("StringContains", values=["a"]).matches(event({"a": "a"}))


# ---- arrays -----------------------------------------------------------------------------------

@pytest.mark.parametrize("operator, spec, value, arrays, expected", [
    ("StringIn", {"values": ["a"]}, ["a", "b"], False, False),       # off: an array never matches
    ("StringNotIn", {"values": ["z"]}, ["a", "b"], False, False),
    ("IsNotNull", {}, ["a"], False, True),
    ("StringIn", {"values": ["a"]}, ["x", "A"], True, True),          # on: any element
    ("StringContains", {"values": ["urgent"]}, ["not urgent", "billing"], True, True),
    ("StringNotIn", {"values": ["a"]}, ["x", "A"], True, False),      # Not*: no element may hit
    ("StringNotIn", {"values": ["z"]}, ["x", "y"], True, True),
    ("NumberIn", {"values": [2]}, [1, 2], True, True),
    ("NumberIn", {"values": [1]}, ["1", 1], True, True),              # other types are ignored
    ("NumberIn", {"values": [1]}, ["1"], True, False),
    ("NumberGreaterThan", {"value": 5}, [1, 7], True, True),
    ("NumberNotInRange", {"values": [[0, 10]]}, [11, 5], True, False),
    ("BoolEquals", {"value": False}, [True, False], True, True),
    ("StringIn", {"values": ["a"]}, [], True, False),
    ("StringNotIn", {"values": ["a"]}, [], True, True),
])
def test_arrays(operator, spec, value, arrays, expected) -> None:
    assert advanced(operator, arrays=arrays, **spec).matches(event(value)) is expected


# ---- AND / OR, keys ---------------------------------------------------------------------------

def test_filters_and_values() -> None:
    f = make_filter(advancedFilters=[
        {"operatorType": "StringIn", "key": "data.api", "values": ["PutBlob", "PutBlockList"]},   # OR
        {"operatorType": "NumberGreaterThan", "key": "data.size", "value": 0},                   # AND
    ])
    assert f.matches(event(api="PutBlockList", size=3))
    assert not f.matches(event(api="PutBlockList", size=0))
    assert not f.matches(event(api="CreateFile", size=3))


@pytest.mark.parametrize("key, values, cloud", [
    ("subject", ["/a/b/c.txt"], False), ("Subject", ["/A/B/C.TXT"], True),
    ("eventType", ["MLOps.Test"], False), ("type", ["mlops.test"], False),
    ("type", ["MLOps.Test"], True), ("EventType", ["MLOps.Test"], True),
    ("id", ["1"], False), ("id", ["1"], True),
    ("topic", ["/t"], False), ("source", ["/t"], False), ("source", ["/src"], True), ("topic", ["/src"], True),
    ("dataVersion", ["2"], False), ("specversion", ["1.0"], True),
    ("data.nested.deeper", ["yes"], False), ("Data.Nested.Deeper", ["yes"], True),
])
def test_keys(key: str, values: list, cloud: bool) -> None:
    e = event(cloud=cloud, nested={"deeper": "yes"})
    assert advanced("StringIn", key=key, values=values).matches(e)
    assert not advanced("StringIn", key=key, values=["other"]).matches(e)


def test_cloudevents_extension_attribute_key() -> None:
    e = WireEvent(CLOUDEVENTS_SCHEMA, {"id": "1", "source": "/s", "type": "T", "specversion": "1.0",
                                       "comexampleothervalue": 5})
    assert advanced("NumberIn", key="comexampleothervalue", values=[5]).matches(e)


def test_microsofts_model_monitor_filter_recipe() -> None:
    # learn.microsoft.com: key data.RunTags.azureml_modelmonitor_threshold_breached, String contains, this
    # phrase. The event's data says "runTags": keys resolve without regard to case.
    f = make_filter(includedEventTypes=["Microsoft.MachineLearningServices.RunStatusChanged"], advancedFilters=[
        {"operatorType": "StringContains", "key": "data.RunTags.azureml_modelmonitor_threshold_breached",
         "values": ["has failed due to one or more features violating metric thresholds"]}])
    assert f.matches(sample("aml_run_status_changed_monitor_breach"))
    assert not f.matches(sample("aml_run_status_changed_failed"))
    assert not f.matches(sample("aml_run_completed"))


# ---- event types and subjects -----------------------------------------------------------------

def test_included_event_types() -> None:
    assert make_filter().matches(event())                                        # absent: every type
    assert make_filter(includedEventTypes=None).matches(event())
    assert make_filter(includedEventTypes=["All"]).matches(event())
    f = make_filter(includedEventTypes=["mlops.test", "MLOps.Other"])
    assert f.matches(event()) and f.matches(event(event_type="MLOPS.OTHER"))
    assert not f.matches(event(event_type="MLOps.Third"))


def test_subject_filters_ignore_case_by_default() -> None:
    f = make_filter(subjectBeginsWith="/A/b/", subjectEndsWith=".TXT")
    assert f.matches(event(subject="/a/B/c.txt"))
    assert not f.matches(event(subject="/a/x/c.txt"))
    assert not f.matches(event(subject="/a/b/c.csv"))


def test_subject_filters_case_sensitive() -> None:
    f = make_filter(subjectBeginsWith="/a/B/", isSubjectCaseSensitive=True)
    assert f.matches(event(subject="/a/B/c.txt"))
    assert not f.matches(event(subject="/a/b/c.txt"))


def test_subject_filter_on_an_event_without_subject() -> None:
    e = WireEvent(CLOUDEVENTS_SCHEMA, {"id": "1", "source": "/s", "type": "T", "specversion": "1.0"})
    assert not make_filter(subjectBeginsWith="/a").matches(e)
    assert make_filter(subjectBeginsWith="").matches(e)


# ---- the real routing table -------------------------------------------------------------------

@pytest.fixture(scope="module")
def table():
    return load_routing_table()


def blob(name: str, **changes) -> WireEvent:
    e = sample(name)
    body = copy.deepcopy(e.body)
    body.update(changes)
    return WireEvent(e.schema, body)


def test_real_table_loads(table) -> None:
    assert DEFAULT_TABLE.name == "event-subscriptions.json"
    assert set(table.topics) >= {"storage", "mlworkspace", "lifecycle"}
    assert table.topics["storage"].topic_type == "Microsoft.Storage.StorageAccounts"
    sub = table.subscription("data-arrived")
    assert (sub.topic, sub.function, sub.dead_letter_container) == ("storage", "on_data_arrived", "deadletter")
    assert (sub.max_delivery_attempts, sub.event_ttl_minutes) == (30, 1440)


@pytest.mark.parametrize("name", ["blob_created_putblob", "blob_created_putblocklist", "blob_created_copyblob",
                                  "blob_created_adls_flushwithclose", "cloudevents_blob_created_putblob"])
def test_data_arrived_matches_data_written_to_the_data_container(table, name: str) -> None:
    assert [s.name for s in table.matching("storage", sample(name))] == ["data-arrived"]


@pytest.mark.parametrize("e", [
    pytest.param(sample("blob_created_adls_createfile"), id="CreateFile"),
    pytest.param(sample("cloudevents_blob_created_adls_createfile"), id="CreateFile (CloudEvents)"),
    pytest.param(blob("blob_created_putblob", subject="/blobServices/default/containers/other/blobs/x.csv"),
                 id="container other"),
    pytest.param(blob("blob_created_putblob", subject="/blobServices/default/containers/database/blobs/x.csv"),
                 id="container sharing the prefix"),
    pytest.param(blob("blob_created_putblob", eventType="Microsoft.Storage.BlobDeleted"), id="BlobDeleted"),
])
def test_data_arrived_ignores_the_rest(table, e: WireEvent) -> None:
    assert table.matching("storage", e) == []


def test_zero_length_put_is_routed_and_left_to_the_handler(table) -> None:
    # The filter cannot see sizes; BlobCreated.committed is what turns an empty blob away.
    assert len(table.matching("storage", sample("blob_created_zero_length"))) == 1


def test_matching_is_per_topic(table) -> None:
    assert all(s.topic == "mlworkspace" for s in table.matching("mlworkspace", sample("blob_created_putblob")))
    with pytest.raises(RoutingTableError, match="topic 'nope' is not in the routing table"):
        table.matching("nope", sample("blob_created_putblob"))
    with pytest.raises(RoutingTableError):
        table.subscription("nope")


# ---- validation -------------------------------------------------------------------------------

def _with(change) -> dict:
    doc = table_doc(includedEventTypes=["MLOps.Test"],
                    advancedFilters=[{"operatorType": "StringIn", "key": "data.api", "values": ["PutBlob"]}])
    change(doc)
    return doc


def _sub(doc: dict) -> dict:
    return doc["subscriptions"][0]


def _adv(doc: dict) -> dict:
    return _sub(doc)["filter"]["advancedFilters"][0]


@pytest.mark.parametrize("change, fragments", [
    (lambda d: _sub(d).update(topic="ghost"), ["subscription 'sub-1'", "topic 'ghost' is not one of"]),
    (lambda d: _adv(d).update(operatorType="StringLike"), ["sub-1", "unknown operatorType 'StringLike'"]),
    (lambda d: _adv(d).pop("values"), ["sub-1", "StringIn", "needs a non-empty list of 'values'"]),
    (lambda d: _adv(d).update(values=[]), ["needs a non-empty list of 'values'"]),
    (lambda d: _adv(d).update(values=[5]), ["5 is not a string"]),
    (lambda d: _adv(d).update(values=["x" * 513]), ["at most 512 characters"]),
    (lambda d: _adv(d).pop("key"), ["'key' is missing"]),
    (lambda d: _adv(d).update(key="data..api"), ["not a dotted name"]),
    (lambda d: _adv(d).update(operator="StringIn"), ["unknown field(s) operator"]),
    (lambda d: _adv(d).update(operatorType="NumberGreaterThan", values=None, value="5"), ["'5' is not a number"]),
    (lambda d: _adv(d).update(operatorType="NumberGreaterThan", values=[1, 2]), ["needs exactly one 'value'"]),
    (lambda d: _adv(d).update(operatorType="BoolEquals", values=None, value="true"), ["is not true or false"]),
    (lambda d: _adv(d).update(operatorType="NumberInRange", values=[[5, 1]]), ["not a range [low, high]"]),
    (lambda d: _adv(d).update(operatorType="IsNotNull"), ["takes no value"]),
    (lambda d: _sub(d)["filter"].update(advancedFilters=[_adv(d)] * 26), ["26 advanced filters", "allows 25"]),
    (lambda d: _adv(d).update(values=[str(i) for i in range(26)]), ["26 filter values", "allows 25"]),
    (lambda d: _sub(d)["filter"].update(subjectBeginWith="/x"), ["unknown filter key(s) subjectBeginWith"]),
    (lambda d: _sub(d)["filter"].update(includedEventTypes=[]), ["'includedEventTypes' must be a non-empty list"]),
    (lambda d: _sub(d)["filter"].update(isSubjectCaseSensitive="yes"), ["must be true or false"]),
    (lambda d: _sub(d).update(retryPolicy={"maxDeliveryAttempts": 31}), ["'maxDeliveryAttempts' must be", "1 to 30"]),
    (lambda d: _sub(d).update(retryPolicy={"eventTimeToLiveInMinutes": 0}), ["'eventTimeToLiveInMinutes'"]),
    (lambda d: _sub(d).update(deadLetter={"container": "Dead_Letter"}),
     ["'Dead_Letter' is not a valid blob container"]),
    (lambda d: _sub(d).pop("function"), ["sub-1", "'function' must name"]),
    (lambda d: _sub(d).update(name="x"), ["subscription 0", "'name' must be 3-64"]),
    (lambda d: d["subscriptions"].append(copy.deepcopy(_sub(d))), ["subscription 'sub-1': the name is used twice"]),
    (lambda d: d["topics"].update(storage={"kind": "system"}), ["topic 'storage'", "needs its 'topicType'"]),
    (lambda d: d["topics"].update(queue={"kind": "partner"}), ["topic 'queue'", "'kind' must be"]),
    (lambda d: d.pop("subscriptions"), ["expected an object with 'topics'"]),
])
def test_validation_errors(change, fragments: list[str]) -> None:
    with pytest.raises(RoutingTableError) as caught:
        parse_routing_table(_with(change))
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_valid_variants_load() -> None:
    parse_routing_table(_with(lambda d: _adv(d).update(operatorType="NumberLessThan", values=None, value=5)))
    parse_routing_table(_with(lambda d: _adv(d).update(operatorType="NumberLessThan", values=[5])))
    parse_routing_table(_with(lambda d: _sub(d).update(retryPolicy={"maxDeliveryAttempts": 1})))


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(RoutingTableError, match="cannot read the routing table"):
        load_routing_table(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(RoutingTableError, match="bad.json is not valid JSON"):
        load_routing_table(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(_with(lambda d: _sub(d).update(topic="ghost"))))
    with pytest.raises(RoutingTableError, match=r"wrong\.json: subscription 'sub-1'"):
        load_routing_table(wrong)
