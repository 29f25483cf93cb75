"""The routing table (infra/event-subscriptions.json) and Event Grid's filter semantics.

The same file feeds the infrastructure code, so it is validated here against what Azure would
refuse at deployment (unknown operators, missing values, Azure's limits) rather than being
half-applied locally. Filters are compiled once on load: matching runs for every event."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.eventgrid.schema import MISSING, FieldPath, WireEvent, field_path

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "infra" / "event-subscriptions.json"

# Azure's limits for one subscription's filter, and for names.
MAX_ADVANCED_FILTERS = 25
MAX_FILTER_VALUES = 25          # across all advanced filters of a subscription
MAX_STRING_VALUE = 512
MAX_DELIVERY_ATTEMPTS = 30
MAX_TTL_MINUTES = 1440
_SUBSCRIPTION_NAME = re.compile(r"^[A-Za-z0-9-]{3,64}$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9-]{3,50}$")
_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_FILTER_KEYS = {"includedEventTypes", "subjectBeginsWith", "subjectEndsWith", "isSubjectCaseSensitive",
                "advancedFilters", "enableAdvancedFilteringOnArrays"}


class RoutingTableError(ValueError):
    """The table is not one Azure would deploy; the message names the subscription and the problem."""


@dataclass(frozen=True)
class Topic:
    name: str
    kind: str                 # "system" | "custom"
    topic_type: str | None    # e.g. Microsoft.Storage.StorageAccounts for a system topic


# ---- advanced filter operators ----------------------------------------------------------------
# Semantics from "Understand event filtering for Event Grid subscriptions": values of one filter
# are OR-ed; a Not* operator fails if any (key value, filter value) pair hits; key values of another
# type than the operator's are ignored; string comparisons ignore case; when the key is missing
# (or null) only NumberNotIn and StringNotIn match. NumberNotInRange is not in that list in the
# docs: it is treated like NumberNotIn, its sibling.

@dataclass(frozen=True)
class _Operator:
    kind: str            # number | range | bool | string | null
    arity: str           # one | many | none
    negated: bool = False
    when_missing: bool = False
    hit: Callable[[Any], Callable[[Any], bool]] | None = None   # compiled values -> test of one key value


def _str_hit(fn: Callable[[str, Any], bool]) -> Callable[[Any], Callable[[Any], bool]]:
    return lambda values: (lambda v: fn(v, values))


_OPERATORS: dict[str, _Operator] = {
    "NumberIn": _Operator("number", "many", hit=lambda vs: vs.__contains__),
    "NumberNotIn": _Operator("number", "many", negated=True, when_missing=True, hit=lambda vs: vs.__contains__),
    "NumberLessThan": _Operator("number", "one", hit=lambda f: lambda v: v < f),
    "NumberGreaterThan": _Operator("number", "one", hit=lambda f: lambda v: v > f),
    "NumberLessThanOrEquals": _Operator("number", "one", hit=lambda f: lambda v: v <= f),
    "NumberGreaterThanOrEquals": _Operator("number", "one", hit=lambda f: lambda v: v >= f),
    "NumberInRange": _Operator("range", "many", hit=lambda rs: lambda v: any(lo <= v <= hi for lo, hi in rs)),
    "NumberNotInRange": _Operator("range", "many", negated=True, when_missing=True,
                                  hit=lambda rs: lambda v: any(lo <= v <= hi for lo, hi in rs)),
    "BoolEquals": _Operator("bool", "one", hit=lambda f: lambda v: v is f),
    "StringIn": _Operator("string", "many", hit=lambda vs: frozenset(vs).__contains__),
    "StringNotIn": _Operator("string", "many", negated=True, when_missing=True,
                             hit=lambda vs: frozenset(vs).__contains__),
    "StringContains": _Operator("string", "many", hit=_str_hit(lambda v, vs: any(s in v for s in vs))),
    "StringNotContains": _Operator("string", "many", negated=True,
                                   hit=_str_hit(lambda v, vs: any(s in v for s in vs))),
    "StringBeginsWith": _Operator("string", "many", hit=_str_hit(str.startswith)),
    "StringNotBeginsWith": _Operator("string", "many", negated=True, hit=_str_hit(str.startswith)),
    "StringEndsWith": _Operator("string", "many", hit=_str_hit(str.endswith)),
    "StringNotEndsWith": _Operator("string", "many", negated=True, hit=_str_hit(str.endswith)),
    "IsNullOrUndefined": _Operator("null", "none", when_missing=True),
    "IsNotNull": _Operator("null", "none"),
}
_OPERATOR_NAMES = {name.lower(): name for name in _OPERATORS}


def _numbers(values: Iterable[Any]) -> Iterable[Any]:
    return (v for v in values if type(v) in (int, float))     # not bool, which is an int in Python


def _strings(values: Iterable[Any]) -> Iterable[str]:
    # Numbers and booleans are compared as their JSON text: Microsoft's own example filters a
    # numeric CloudEvents extension with StringBeginsWith ["5", "1"].
    for v in values:
        if type(v) is str:
            yield v.lower()
        elif type(v) is bool:
            yield "true" if v else "false"
        elif type(v) in (int, float):
            yield str(v).lower()


def _bools(values: Iterable[Any]) -> Iterable[bool]:
    return (v for v in values if type(v) is bool)


_COERCE = {"number": _numbers, "range": _numbers, "string": _strings, "bool": _bools}


@dataclass(frozen=True)
class AdvancedFilter:
    operator_type: str
    key: str
    values: tuple = ()
    _path: FieldPath = field(default=("", ()), repr=False, compare=False)
    _test: Callable[[Any], bool] | None = field(default=None, repr=False, compare=False)
    _op: _Operator | None = field(default=None, repr=False, compare=False)

    def matches(self, event: WireEvent, on_arrays: bool = False) -> bool:
        op = self._op
        value = event.resolve(self._path)
        if value is MISSING or value is None:
            return op.when_missing
        if op.kind == "null":
            return not op.when_missing            # present and not null: IsNotNull matches
        if isinstance(value, list):
            if not on_arrays:
                return False                      # Azure: an array key fails to match unless enabled
            items = value
        else:
            items = (value,)
        hit = any(map(self._test, _COERCE[op.kind](items)))
        return not hit if op.negated else hit


@dataclass(frozen=True)
class EventFilter:
    included_event_types: frozenset[str] | None = None    # lowercased; None = every type
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    is_subject_case_sensitive: bool = False
    advanced_filters: tuple[AdvancedFilter, ...] = ()
    enable_advanced_filtering_on_arrays: bool = False

    def __post_init__(self) -> None:
        fold = (lambda s: s) if self.is_subject_case_sensitive else str.lower
        object.__setattr__(self, "_begins", fold(self.subject_begins_with))
        object.__setattr__(self, "_ends", fold(self.subject_ends_with))

    def matches(self, event: WireEvent) -> bool:
        types = self.included_event_types
        if types is not None and event.event_type.lower() not in types:
            return False
        if self._begins or self._ends:
            subject = event.subject or ""
            if not self.is_subject_case_sensitive:
                subject = subject.lower()
            if not (subject.startswith(self._begins) and subject.endswith(self._ends)):
                return False
        arrays = self.enable_advanced_filtering_on_arrays
        return all(f.matches(event, arrays) for f in self.advanced_filters)


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    function: str
    filter: EventFilter = EventFilter()
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS
    event_ttl_minutes: int = MAX_TTL_MINUTES
    dead_letter_container: str | None = None


@dataclass(frozen=True)
class RoutingTable:
    topics: dict[str, Topic]
    subscriptions: tuple[Subscription, ...]

    def __post_init__(self) -> None:
        by_topic: dict[str, list[Subscription]] = {name: [] for name in self.topics}
        for sub in self.subscriptions:
            by_topic[sub.topic].append(sub)
        object.__setattr__(self, "_by_topic", {name: tuple(subs) for name, subs in by_topic.items()})

    def matching(self, topic: str, event: WireEvent) -> list[Subscription]:
        try:
            candidates = self._by_topic[topic]
        except KeyError:
            raise RoutingTableError(f"topic '{topic}' is not in the routing table "
                                    f"(it has {', '.join(sorted(self.topics))})") from None
        return [sub for sub in candidates if sub.filter.matches(event)]

    def subscription(self, name: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise RoutingTableError(f"subscription '{name}' is not in the routing table")


# ---- loading ----------------------------------------------------------------------------------

def load_routing_table(path: Path = DEFAULT_TABLE) -> RoutingTable:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise RoutingTableError(f"cannot read the routing table {path}: {error}") from None
    except ValueError as error:
        raise RoutingTableError(f"the routing table {path} is not valid JSON: {error}") from None
    try:
        return parse_routing_table(doc)
    except RoutingTableError as error:
        raise RoutingTableError(f"{path}: {error}") from None


def parse_routing_table(doc: Any) -> RoutingTable:
    if not isinstance(doc, dict) or not isinstance(doc.get("topics"), dict) \
            or not isinstance(doc.get("subscriptions"), list):
        raise RoutingTableError("expected an object with 'topics' (an object) and 'subscriptions' (an array)")
    topics = {name: _topic(name, spec) for name, spec in doc["topics"].items()}
    subscriptions: list[Subscription] = []
    for i, spec in enumerate(doc["subscriptions"]):
        sub = _subscription(i, spec, topics)
        if any(s.name == sub.name for s in subscriptions):
            raise RoutingTableError(f"subscription '{sub.name}': the name is used twice")
        subscriptions.append(sub)
    return RoutingTable(topics, tuple(subscriptions))


def _topic(name: str, spec: Any) -> Topic:
    if not _TOPIC_NAME.match(name):
        raise RoutingTableError(f"topic '{name}': a name is 3-50 letters, digits and hyphens")
    if not isinstance(spec, dict) or spec.get("kind") not in ("system", "custom"):
        raise RoutingTableError(f"topic '{name}': 'kind' must be \"system\" or \"custom\"")
    topic_type = spec.get("topicType")
    if spec["kind"] == "system" and not (isinstance(topic_type, str) and topic_type):
        raise RoutingTableError(f"topic '{name}': a system topic needs its 'topicType' "
                                f"(e.g. Microsoft.Storage.StorageAccounts)")
    return Topic(name, spec["kind"], topic_type if isinstance(topic_type, str) else None)


def _subscription(i: int, spec: Any, topics: dict[str, Topic]) -> Subscription:
    if not isinstance(spec, dict):
        raise RoutingTableError(f"subscription {i}: expected an object")
    name = spec.get("name")
    if not isinstance(name, str) or not _SUBSCRIPTION_NAME.match(name):
        raise RoutingTableError(f"subscription {i}: 'name' must be 3-64 letters, digits and hyphens, got {name!r}")
    where = f"subscription '{name}'"
    if spec.get("topic") not in topics:
        raise RoutingTableError(f"{where}: topic {spec.get('topic')!r} is not one of the table's topics "
                                f"({', '.join(sorted(topics))})")
    function = spec.get("function")
    if not isinstance(function, str) or not function:
        raise RoutingTableError(f"{where}: 'function' must name the function that handles the events")
    retry = _object(where, spec, "retryPolicy")
    attempts = _bounded(where, retry, "maxDeliveryAttempts", MAX_DELIVERY_ATTEMPTS)
    ttl = _bounded(where, retry, "eventTimeToLiveInMinutes", MAX_TTL_MINUTES)
    container = _object(where, spec, "deadLetter").get("container")
    if container is not None and (not isinstance(container, str) or not _CONTAINER_NAME.match(container)):
        raise RoutingTableError(f"{where}: dead-letter container {container!r} is not a valid blob container name")
    return Subscription(name, spec["topic"], function, _filter(where, _object(where, spec, "filter")),
                        attempts, ttl, container)


def _object(where: str, spec: dict, key: str) -> dict:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise RoutingTableError(f"{where}: '{key}' must be an object")
    return value


def _bounded(where: str, spec: dict, key: str, maximum: int) -> int:
    value = spec.get(key, maximum)
    if type(value) is not int or not 1 <= value <= maximum:
        raise RoutingTableError(f"{where}: '{key}' must be a whole number from 1 to {maximum}, got {value!r}")
    return value


def _filter(where: str, spec: dict) -> EventFilter:
    unknown = set(spec) - _FILTER_KEYS
    if unknown:   # a misspelt key would otherwise silently widen the filter
        raise RoutingTableError(f"{where}: unknown filter key(s) {', '.join(sorted(unknown))}; "
                                f"Event Grid knows {', '.join(sorted(_FILTER_KEYS))}")
    types = spec.get("includedEventTypes")
    if types is not None:
        if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
            raise RoutingTableError(f"{where}: 'includedEventTypes' must be a non-empty list of event types, "
                                    f"or null for all types")
        # "All" is Event Grid's older spelling of "every type".
        types = None if any(t.lower() == "all" for t in types) else frozenset(t.lower() for t in types)
    for key in ("subjectBeginsWith", "subjectEndsWith"):
        if not isinstance(spec.get(key, ""), str):
            raise RoutingTableError(f"{where}: '{key}' must be a string")
    for key in ("isSubjectCaseSensitive", "enableAdvancedFilteringOnArrays"):
        if not isinstance(spec.get(key, False), bool):
            raise RoutingTableError(f"{where}: '{key}' must be true or false")
    advanced = spec.get("advancedFilters") or []
    if not isinstance(advanced, list):
        raise RoutingTableError(f"{where}: 'advancedFilters' must be an array")
    if len(advanced) > MAX_ADVANCED_FILTERS:
        raise RoutingTableError(f"{where}: {len(advanced)} advanced filters; Event Grid allows {MAX_ADVANCED_FILTERS}")
    filters = tuple(_advanced(f"{where}, advanced filter {i}", f) for i, f in enumerate(advanced))
    count = sum(len(f.values) for f in filters)
    if count > MAX_FILTER_VALUES:
        raise RoutingTableError(f"{where}: {count} filter values in all; Event Grid allows {MAX_FILTER_VALUES}")
    return EventFilter(types, spec.get("subjectBeginsWith", ""), spec.get("subjectEndsWith", ""),
                       spec.get("isSubjectCaseSensitive", False), filters,
                       spec.get("enableAdvancedFilteringOnArrays", False))


def _advanced(where: str, spec: Any) -> AdvancedFilter:
    if not isinstance(spec, dict):
        raise RoutingTableError(f"{where}: expected an object with operatorType, key and values")
    unknown = set(spec) - {"operatorType", "key", "value", "values"}
    if unknown:
        raise RoutingTableError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                                f"(an advanced filter has operatorType, key and value or values)")
    name = _OPERATOR_NAMES.get(str(spec.get("operatorType", "")).lower())
    if name is None:
        raise RoutingTableError(f"{where}: unknown operatorType {spec.get('operatorType')!r}; "
                                f"Event Grid knows {', '.join(_OPERATORS)}")
    where = f"{where} ({name})"
    key = spec.get("key")
    try:
        path = field_path(key) if isinstance(key, str) else None
    except ValueError as error:
        raise RoutingTableError(f"{where}: {error}") from None
    if path is None:
        raise RoutingTableError(f"{where}: 'key' is missing (e.g. \"data.api\" or \"subject\")")
    op = _OPERATORS[name]
    values = _values(where, op, spec)
    test = op.hit(_compile(op, values)) if op.hit else None
    return AdvancedFilter(name, key, values, path, test, op)


def _values(where: str, op: _Operator, spec: dict) -> tuple:
    if op.arity == "none":
        if "value" in spec or "values" in spec:
            raise RoutingTableError(f"{where}: takes no value")
        return ()
    if op.arity == "one":
        values = [spec["value"]] if "value" in spec else spec.get("values")
        if not isinstance(values, list) or len(values) != 1:
            raise RoutingTableError(f"{where}: needs exactly one 'value'")
    else:
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise RoutingTableError(f"{where}: needs a non-empty list of 'values'")
    for v in values:
        _check_value(where, op.kind, v)
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def _check_value(where: str, kind: str, v: Any) -> None:
    if kind == "number" and type(v) not in (int, float):
        raise RoutingTableError(f"{where}: {v!r} is not a number")
    if kind == "bool" and type(v) is not bool:
        raise RoutingTableError(f"{where}: {v!r} is not true or false")
    if kind == "string" and (type(v) is not str or len(v) > MAX_STRING_VALUE):
        raise RoutingTableError(f"{where}: {v!r} is not a string of at most {MAX_STRING_VALUE} characters")
    if kind == "range" and not (isinstance(v, list) and len(v) == 2 and all(type(x) in (int, float) for x in v)
                                and v[0] <= v[1]):
        raise RoutingTableError(f"{where}: {v!r} is not a range [low, high] of two numbers")


def _compile(op: _Operator, values: tuple) -> Any:
    if op.arity == "one":
        return values[0]
    if op.kind == "string":
        return tuple(v.lower() for v in values)
    if op.kind == "number":
        return frozenset(values)
    return values
