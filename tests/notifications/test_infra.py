"""The Azure side of notifications: the notify function's subscription comes from the routing table like the
others, NOTIFY_WEBHOOKS is a secure parameter, and the e-mail/SMS route is an action group fired by a log alert
over the decisions the function logs (Event Grid's MonitorAlert destination does not take a custom topic)."""
from __future__ import annotations

import pytest

from lifecycle.handlers.notify import DECISION_LOG
from tests.infra.bicep import ROOT, Template, parse_all

INFRA = ROOT / "infra"


@pytest.fixture(scope="module")
def templates() -> dict[str, Template]:
    return {path: Template(parsed, (INFRA / path).parent) for path, parsed in parse_all(INFRA).items()}


def test_the_people_route_is_an_action_group_fired_by_a_log_alert_on_the_decisions(templates):
    subs = templates["subscriptions.bicep"]
    (group,) = [r for r in subs.resources_of("Microsoft.Insights/actionGroups").values()
                if "emailReceivers" in str(r["config"])]
    (rule,) = subs.resources_of("Microsoft.Insights/scheduledQueryRules").values()
    assert "condition" in str(group["config"]) and "condition" in str(rule["config"])     # only when asked for
    text = (INFRA / "subscriptions.bicep").read_text()
    assert f'startswith "{DECISION_LOG}: "' in text and "smsReceivers" in text and "autoMitigate: false" in text
    assert "MonitorAlert" not in text.split("// People told")[0]        # no MonitorAlert destination on the topic
    for name in ("notifyActionGroupId", "notifyEmails", "notifySms", "appInsightsName"):
        assert subs.params[name]["default"] == ""
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text()
    assert all(f'{p}="${{{e}:-}}"' in hook for p, e in (("notifyActionGroupId", "MLOPS_NOTIFY_ACTION_GROUP_ID"),
                                                         ("notifyEmails", "MLOPS_NOTIFY_EMAILS"),
                                                         ("notifySms", "MLOPS_NOTIFY_SMS"),
                                                         ("appInsightsName", "APPLICATIONINSIGHTS_NAME")))


def test_the_webhooks_are_a_secure_parameter_passed_to_the_app(templates):
    for path in ("main.bicep", "modules/function-app.bicep"):
        param = templates[path].params["notifyWebhooks"]
        assert {d["type"] for d in param["decorators"]} >= {"secure"} and param["default"] == "", path
    assert "NOTIFY_WEBHOOKS" in templates["modules/function-app.bicep"].evaluate("appSettings")
    assert "  NOTIFY_WEBHOOKS: notifyWebhooks\n" in (INFRA / "modules/function-app.bicep").read_text()
    assert "    notifyWebhooks: notifyWebhooks\n" in (INFRA / "main.bicep").read_text()
