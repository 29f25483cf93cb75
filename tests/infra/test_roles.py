"""Every role in lifecycle/adapters/azure_roles.py is assigned in infra/modules/roles.bicep to the identity
that needs it, on the resource it needs it on, and main.bicep hands roles.bicep the right identities."""
from lifecycle.adapters import azure_roles as need
from tests.infra.conftest import edit, templates_of

ROLES = "modules/roles.bicep"
# roles.bicep's principal parameters -> who they are
IDENTITY_PARAMS = {"functionPrincipalId": need.FUNCTION, "computePrincipalId": need.COMPUTE,
                   "storageTopicPrincipalId": need.STORAGE_TOPIC, "workspaceTopicPrincipalId": need.WORKSPACE_TOPIC,
                   "lifecycleTopicPrincipalId": need.LIFECYCLE_TOPIC}
# roles.bicep's scope resources -> (what they are, their resource type)
SCOPES = {
    "appStorage": (need.APP_STORAGE, "Microsoft.Storage/storageAccounts"),
    "deadLetters": (need.DEADLETTER_CONTAINER, "Microsoft.Storage/storageAccounts/blobServices/containers"),
    "data": (need.DATA_CONTAINER, "Microsoft.Storage/storageAccounts/blobServices/containers"),
    "feedback": (need.FEEDBACK_CONTAINER, "Microsoft.Storage/storageAccounts/blobServices/containers"),
    "workspace": (need.WORKSPACE, "Microsoft.MachineLearningServices/workspaces"),
    "workspaceStorage": (need.WORKSPACE_STORAGE, "Microsoft.Storage/storageAccounts"),
    "registry": (need.WORKSPACE_REGISTRY, "Microsoft.ContainerRegistry/registries"),
    "lifecycleTopic": (need.LIFECYCLE_TOPIC_RESOURCE, "Microsoft.EventGrid/topics"),
    "logAnalytics": (need.LOG_ANALYTICS, "Microsoft.OperationalInsights/workspaces"),
    "appInsights": (need.APP_INSIGHTS, "Microsoft.Insights/components"),
}
# main.bicep: the value each principal parameter of the roles module must be given
WIRING = {"functionPrincipalId": "identity.outputs.principalId",
          "computePrincipalId": "ml.outputs.computePrincipalId",
          "storageTopicPrincipalId": "topics.outputs.storageTopicPrincipalId",
          "workspaceTopicPrincipalId": "topics.outputs.workspaceTopicPrincipalId",
          "lifecycleTopicPrincipalId": "topics.outputs.lifecycleTopicPrincipalId"}


def _path(expr) -> str:
    """'a.b.c' from pycep's nested property accessors."""
    if isinstance(expr, str):
        return expr
    operands = expr["operator"]["operands"]
    return f"{_path(operands['operand_1'])}.{_path(operands['operand_2'])}"


def assigned(templates) -> set[tuple[str, str, str]]:
    """(identity, role id, scope) for every role assignment to an app identity in roles.bicep."""
    template = templates[ROLES]
    found = set()
    for symbol, resource in template.resources_of("Microsoft.Authorization/roleAssignments").items():
        config = resource["config"]
        if "loop_type" in config:
            detail, body = config["loop_type"]["detail"], config["config"]
            grants = [{key: template.evaluate(value) if key == "role" else value for key, value in grant.items()}
                      for grant in template.variables[detail["array_name"]]]
        else:
            body = config if "properties" in config else config["config"]   # `= if (...) {...}` nests the body
            grants = [{"role": template.evaluate(body["properties"]["roleDefinitionId"]["function"]["parameters"]
                                                 ["resource_name_1"]),
                       "principalId": body["properties"]["principalId"]}]
        scope_kind, scope_type = SCOPES.get(body["scope"], (None, None))
        assert scope_kind is None or template.resources[body["scope"]]["type"] == scope_type, symbol
        for grant in grants:
            identity = IDENTITY_PARAMS.get(grant["principalId"])
            if identity and scope_kind:
                found.add((identity, grant["role"], scope_kind))
    return found


def unassigned(templates) -> list[str]:
    have = assigned(templates)
    return [f"{r.role} for {r.identity} on {r.scope}" for r in need.ROLES
            if (r.identity, r.role_id, r.scope) not in have]


def miswired(templates) -> dict[str, str]:
    params = templates["main.bicep"].modules["roles"]["config"]["params"]
    return {name: _path(params.get(name, "")) for name, want in WIRING.items() if _path(params.get(name, "")) != want}


def test_every_role_an_adapter_needs_is_assigned(templates):
    assert unassigned(templates) == []
    assert miswired(templates) == {}


def test_nothing_more_is_granted_to_the_app_identities(templates):
    declared = {(r.identity, r.role_id, r.scope) for r in need.ROLES}
    assert assigned(templates) - declared == set()


def test_roles_are_declared_with_their_reason():
    for role in need.ROLES:
        assert len(role.role_id) == 36 and role.role_id.count("-") == 4, role
        assert role.identity in IDENTITY_PARAMS.values() and role.scope in {s for s, _ in SCOPES.values()}, role
        assert role.why and role.used_by, role


def test_a_removed_role_and_a_miswired_identity_are_caught(infra_copy):
    edit(infra_copy / ROLES, "  {\n    role: eventGridDataSender\n    principalId: functionPrincipalId\n  }\n", "")
    edit(infra_copy / "main.bicep", "computePrincipalId: ml.outputs.computePrincipalId",
         "computePrincipalId: identity.outputs.principalId")
    templates = templates_of(infra_copy)
    assert unassigned(templates) == ["EventGrid Data Sender for function on lifecycle-topic-resource"]
    assert miswired(templates) == {"computePrincipalId": "identity.outputs.principalId"}


def test_a_role_given_to_the_wrong_identity_is_caught(infra_copy):
    edit(infra_copy / ROLES, "    role: acrPull\n    principalId: computePrincipalId\n",
         "    role: acrPull\n    principalId: functionPrincipalId\n")
    assert unassigned(templates_of(infra_copy)) == ["AcrPull for compute on ml-workspace-registry"]
