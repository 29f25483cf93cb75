"""The routing table (infra/event-subscriptions.json) is the one source of the Event Grid subscriptions:
every function it names exists in function_app.app, and infra/subscriptions.bicep creates every subscription
on its topic with the same event types, filters, retry policy and dead-letter container."""
import json

import pytest

from tests.infra.conftest import INFRA, app_functions, edit, templates_of

SUBSCRIPTIONS = "subscriptions.bicep"
TOPIC_TYPES = {"system": "Microsoft.EventGrid/systemTopics", "custom": "Microsoft.EventGrid/topics"}
ROUTING = json.loads((INFRA / "event-subscriptions.json").read_text())


def functions_missing(routing: dict) -> set[str]:
    return {s["function"] for s in routing["subscriptions"]} - set(app_functions())


def created(templates) -> dict[str, dict]:
    """{subscription name: what the Bicep creates, with the topic key it hangs on} for one template set."""
    template = templates[SUBSCRIPTIONS]
    topic_keys = {}   # the Bicep symbol of a topic -> its key in the routing table, from the loop's filter
    made = {}
    for symbol, resource in template.resources.items():
        if not resource["type"].endswith("/eventSubscriptions"):
            continue
        config = resource["config"]
        assert "loop_type" in config, f"{symbol} is not generated from the routing table"
        detail = config["loop_type"]["detail"]
        items = template.evaluate(detail["array_name"])
        assert isinstance(items, list), f"{symbol} does not loop over the routing table's subscriptions"
        parent = template.resources[config["config"]["parent"]]
        for item in items:
            body = template.evaluate(config["config"], **{detail["item_name"]: item})
            made[body["name"]] = {"topic": item["topic"], "parent_type": parent["type"], "body": body,
                                  "subscription_type": resource["type"]}
            topic_keys.setdefault(item["topic"], parent["type"])
    return made


def differences(templates, routing: dict = ROUTING) -> list[str]:
    made = created(templates)
    found = []
    for s in routing["subscriptions"]:
        got = made.get(s["name"])
        if got is None:
            found.append(f"{s['name']}: not created")
            continue
        topic = routing["topics"][s["topic"]]
        props = got["body"]["properties"]
        want_filter = {"includedEventTypes": s["filter"]["includedEventTypes"],
                       "subjectBeginsWith": s["filter"].get("subjectBeginsWith", ""),
                       "subjectEndsWith": s["filter"].get("subjectEndsWith", ""),
                       "advancedFilters": s["filter"].get("advancedFilters", [])}
        checks = {
            "topic": (got["parent_type"], TOPIC_TYPES[topic["kind"]]),
            "filter": ({k: props["filter"].get(k) for k in want_filter}, want_filter),
            "function": (props["destination"]["properties"]["resourceId"], "${site.id}/functions/" + s["function"]),
            "endpoint type": (props["destination"]["endpointType"], "AzureFunction"),
            "retry policy": (props.get("retryPolicy"), s["retryPolicy"]),
            "dead letter": (props["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"]
                            ["blobContainerName"], s["deadLetter"]["container"]),
            "dead letter identity": (props["deadLetterWithResourceIdentity"]["identity"]["type"], "SystemAssigned"),
        }
        found += [f"{s['name']}: {what} is {have!r}, the routing table says {want!r}"
                  for what, (have, want) in checks.items() if have != want]
    return found


def test_every_function_the_routing_table_names_exists():
    assert functions_missing(ROUTING) == set()


def test_a_function_missing_from_the_app_is_caught():
    routing = json.loads(json.dumps(ROUTING))
    routing["subscriptions"][0]["function"] = "on_nothing"
    assert functions_missing(routing) == {"on_nothing"}


def test_every_subscription_is_created_as_the_routing_table_says(templates):
    assert differences(templates) == []
    assert set(created(templates)) == {s["name"] for s in ROUTING["subscriptions"]}


def test_system_topics_match_the_routing_table_and_the_custom_topic_takes_no_keys(templates):
    topics = templates["modules/event-topics.bicep"]
    system = {topics.evaluate(r["config"]["properties"]["topicType"])
              for r in topics.resources_of("Microsoft.EventGrid/systemTopics").values()}
    assert system == {t["topicType"] for t in ROUTING["topics"].values() if t["kind"] == "system"}
    custom = list(topics.resources_of("Microsoft.EventGrid/topics").values())
    assert len(custom) == 1 and custom[0]["config"]["properties"]["disableLocalAuth"] is True
    for resource in [*topics.resources_of("Microsoft.EventGrid/systemTopics").values(), *custom]:
        assert resource["config"]["identity"]["type"] == "SystemAssigned"   # dead-lettering with Entra ID


@pytest.mark.parametrize("old, new, expected", [
    # a topic's subscriptions are not generated at all
    ("x => x.topic == 'mlworkspace'", "x => x.topic == 'nothing'", "run-completed: not created"),
    # a filter field dropped from the mapping
    ("      advancedFilters: s.filter.?advancedFilters ?? []\n    }\n    retryPolicy: {\n      maxDeliveryAttempts: "
     "s.retryPolicy.maxDeliveryAttempts\n      eventTimeToLiveInMinutes: "
     "s.retryPolicy.eventTimeToLiveInMinutes\n    }\n"
     "    deadLetterWithResourceIdentity: {\n      identity: {\n        type: 'SystemAssigned'\n      }\n      "
     "deadLetterDestination: {\n        endpointType: 'StorageBlob'\n        properties: {\n          resourceId: "
     "storage.id\n          blobContainerName: s.deadLetter.container\n        }\n      }\n    }\n  }\n}]\n\n"
     "resource workspaceSubscriptions",
     "    }\n    retryPolicy: {\n      maxDeliveryAttempts: s.retryPolicy.maxDeliveryAttempts\n      "
     "eventTimeToLiveInMinutes: s.retryPolicy.eventTimeToLiveInMinutes\n    }\n"
     "    deadLetterWithResourceIdentity: {\n      identity: {\n        type: 'SystemAssigned'\n      }\n      "
     "deadLetterDestination: {\n        endpointType: 'StorageBlob'\n        properties: {\n          resourceId: "
     "storage.id\n          blobContainerName: s.deadLetter.container\n        }\n      }\n    }\n  }\n}]\n\n"
     "resource workspaceSubscriptions",
     "data-arrived: filter is"),
])
def test_a_subscription_removed_or_mapped_wrongly_is_caught(infra_copy, old, new, expected):
    edit(infra_copy / SUBSCRIPTIONS, old, new)
    found = differences(templates_of(infra_copy))
    assert any(line.startswith(expected) for line in found), found


def test_a_subscription_added_to_the_routing_table_only_is_caught(infra_copy, templates):
    routing = json.loads(json.dumps(ROUTING))
    routing["subscriptions"].append({**routing["subscriptions"][0], "name": "data-arrived-twice"})
    assert differences(templates, routing) == ["data-arrived-twice: not created"]
