"""Every role in lifecycle/adapters/azure_roles.py is assigned in infra/modules/roles.bicep (or, on the shared
Azure ML registry, infra/modules/registry-roles.bicep) to the identity that needs it, on the resource it needs
it on, in the environments it is declared for and no other; and main.bicep hands both modules the right
identities and the environment's stage."""
import pytest

from lifecycle.adapters import azure_roles as need
from tests.infra.bicep import body_of, path_of
from tests.infra.conftest import edit, templates_of

ROLES = "modules/roles.bicep"
REGISTRY_ROLES = "modules/registry-roles.bicep"
ROLE_TEMPLATES = (ROLES, REGISTRY_ROLES)
# the role modules' principal parameters -> who they are
IDENTITY_PARAMS = {"functionPrincipalId": need.FUNCTION, "computePrincipalId": need.COMPUTE,
                   "storageTopicPrincipalId": need.STORAGE_TOPIC, "workspaceTopicPrincipalId": need.WORKSPACE_TOPIC,
                   "lifecycleTopicPrincipalId": need.LIFECYCLE_TOPIC, "endpointPrincipalId": need.ENDPOINT,
                   "dataScientistsGroupId": need.DATA_SCIENTISTS, "promoterPrincipalId": need.PROMOTER,
                   "modelEndpointPrincipalIds": need.ENDPOINT}     # each other model's endpoint, as the first
LIST_PARAMS = {"modelEndpointPrincipalIds"}      # bound to a list of one principal, named as the parameter
# the principal type ARM is told for each (a mismatch fails the assignment)
PRINCIPAL_TYPES = {need.DATA_SCIENTISTS: "Group"}
# the role modules' scope resources -> (what they are, their resource type)
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
    "sharedRegistry": (need.SHARED_REGISTRY, "Microsoft.MachineLearningServices/registries"),
}
# main.bicep: the value each parameter of the role modules must be given
WIRING = {
    "roles": {"stage": "stage",
              "functionPrincipalId": "identity.outputs.principalId",
              "computePrincipalId": "ml.outputs.computePrincipalId",
              "storageTopicPrincipalId": "topics.outputs.storageTopicPrincipalId",
              "workspaceTopicPrincipalId": "topics.outputs.workspaceTopicPrincipalId",
              "lifecycleTopicPrincipalId": "topics.outputs.lifecycleTopicPrincipalId",
              "dataScientistsGroupId": "dataScientistsGroupId",
              "promoterPrincipalId": "promoterPrincipalId"},
    "registryRoles": {"stage": "stage",
                      "registryName": "registryName",
                      "functionPrincipalId": "identity.outputs.principalId",
                      "endpointPrincipalId": "endpoint.outputs.principalId"},
}


def grants(templates, stage: str) -> set[tuple[str, str, str, str]]:
    """(identity, role id, scope, principal type) for every role assignment to a known identity that the role
    modules make in this stage. Each principal parameter is bound to its own name (so an entry skipped when
    its principal is empty still counts) and `stage` to the stage."""
    found = set()
    for path in ROLE_TEMPLATES:
        template = templates[path]
        bound = {"stage": stage, **{name: [name] if name in LIST_PARAMS else name for name in IDENTITY_PARAMS
                                    if name in template.params}}
        for symbol, resource in template.resources_of("Microsoft.Authorization/roleAssignments").items():
            config = resource["config"]
            if "loop_type" in config:
                detail, body = config["loop_type"]["detail"], config["config"]
                items = template.evaluate(detail["array_name"], **bound)
                assert isinstance(items, list), f"{path} {symbol}: cannot tell what {detail['array_name']} holds"
                made = [(item["role"], item["principalId"]) for item in items]
            else:
                body = body_of(config)
                if "condition" in config and template.evaluate(config["condition"], **bound) is False:
                    continue
                made = [(template.evaluate(body["properties"]["roleDefinitionId"]["function"]["parameters"]
                                           ["resource_name_1"], **bound), body["properties"]["principalId"])]
            scope_kind, scope_type = SCOPES.get(body["scope"], (None, None))
            assert scope_kind is None or template.resources[body["scope"]]["type"] == scope_type, symbol
            principal_type = body["properties"]["principalType"]
            for role, principal in made:
                identity = IDENTITY_PARAMS.get(principal)
                if identity and scope_kind:
                    found.add((identity, role, scope_kind, principal_type))
    return found


def assigned(templates, stage: str) -> set[tuple[str, str, str]]:
    return {(identity, role, scope) for identity, role, scope, _ in grants(templates, stage)}


def declared(stage: str) -> set[tuple[str, str, str]]:
    return {(r.identity, r.role_id, r.scope) for r in need.ROLES if stage in r.stages}


def unassigned(templates, stage: str) -> list[str]:
    have = assigned(templates, stage)
    return [f"{r.role} for {r.identity} on {r.scope}" for r in need.ROLES
            if stage in r.stages and (r.identity, r.role_id, r.scope) not in have]


def miswired(templates) -> dict[str, str]:
    modules = templates["main.bicep"].modules
    found = {}
    for module, wiring in WIRING.items():
        params = body_of(modules[module]["config"])["params"]
        found.update({f"{module}.{name}": path_of(params.get(name, "")) for name, want in wiring.items()
                      if path_of(params.get(name, "")) != want})
    return found


@pytest.mark.parametrize("stage", need.STAGES)
def test_every_role_an_adapter_needs_is_assigned(templates, stage):
    assert unassigned(templates, stage) == []
    assert miswired(templates) == {}


@pytest.mark.parametrize("stage", need.STAGES)
def test_nothing_more_is_granted_to_the_app_identities(templates, stage):
    assert assigned(templates, stage) - declared(stage) == set()


@pytest.mark.parametrize("stage", need.STAGES)
def test_groups_are_assigned_as_groups(templates, stage):
    for identity, _, _, principal_type in grants(templates, stage):
        assert principal_type == PRINCIPAL_TYPES.get(identity, "ServicePrincipal"), identity


def test_data_scientists_build_in_dev_and_only_read_in_preprod_and_prod(templates):
    def on_workspace(stage):
        return {role for identity, role, scope in assigned(templates, stage)
                if identity == need.DATA_SCIENTISTS and scope == need.WORKSPACE}
    assert on_workspace("dev") == {need.AZUREML_DATA_SCIENTIST}
    assert on_workspace("preprod") == on_workspace("prod") == {need.READER}


def test_registry_roles_only_in_preprod_and_prod(templates):
    def on_registry(stage):
        return {(identity, role) for identity, role, scope in assigned(templates, stage)
                if scope == need.SHARED_REGISTRY}
    assert on_registry("dev") == set()
    assert on_registry("preprod") == {(need.FUNCTION, need.AZUREML_REGISTRY_USER)}
    assert on_registry("prod") == {(need.FUNCTION, need.AZUREML_REGISTRY_USER),
                                   (need.ENDPOINT, need.AZUREML_REGISTRY_USER)}


def test_only_prod_lets_preprod_publish_to_its_topic(templates):
    promoter = (need.PROMOTER, need.EVENTGRID_DATA_SENDER, need.LIFECYCLE_TOPIC_RESOURCE)
    assert [stage for stage in need.STAGES if promoter in assigned(templates, stage)] == ["prod"]


def test_empty_principals_are_skipped_and_the_registry_module_needs_a_registry(templates):
    roles = templates[ROLES]
    for stage in need.STAGES:
        assert roles.evaluate("dataScientistGrants", stage=stage, dataScientistsGroupId="") == []
        assert roles.evaluate("promoterGrants", stage=stage, promoterPrincipalId="") == []
    module = templates["main.bicep"].modules["registryRoles"]["config"]
    assert templates["main.bicep"].evaluate(module["condition"], registryName="") is False
    assert templates["main.bicep"].evaluate(module["condition"], registryName="mlops-registry") is True
    scope = module["config"]["scope"]["function"]
    assert scope["type"] == "resource_group" and scope["parameters"]["resource_group_name"] == "registryResourceGroup"


def test_roles_are_declared_with_their_reason():
    ids: dict[str, str] = {}
    for role in need.ROLES:
        assert len(role.role_id) == 36 and role.role_id.count("-") == 4, role
        assert ids.setdefault(role.role, role.role_id) == role.role_id, f"{role.role} has two ids"
        assert role.identity in IDENTITY_PARAMS.values() and role.scope in {s for s, _ in SCOPES.values()}, role
        assert role.why and role.used_by, role
        assert role.stages and set(role.stages) <= set(need.STAGES), role
    assert len(set(ids.values())) == len(ids), "two role names share an id"


def test_a_removed_role_and_a_miswired_identity_are_caught(infra_copy):
    edit(infra_copy / ROLES, "  {\n    role: eventGridDataSender\n    principalId: functionPrincipalId\n  }\n", "")
    edit(infra_copy / "main.bicep", "computePrincipalId: ml.outputs.computePrincipalId",
         "computePrincipalId: identity.outputs.principalId")
    edit(infra_copy / "main.bicep", "endpointPrincipalId: endpoint.outputs.principalId",
         "endpointPrincipalId: identity.outputs.principalId")
    templates = templates_of(infra_copy)
    for stage in need.STAGES:
        assert "EventGrid Data Sender for function on lifecycle-topic-resource" in unassigned(templates, stage)
    assert miswired(templates) == {"roles.computePrincipalId": "identity.outputs.principalId",
                                   "registryRoles.endpointPrincipalId": "identity.outputs.principalId"}


def test_a_role_given_to_the_wrong_identity_is_caught(infra_copy):
    edit(infra_copy / ROLES, "    role: acrPull\n    principalId: computePrincipalId\n",
         "    role: acrPull\n    principalId: functionPrincipalId\n")
    assert unassigned(templates_of(infra_copy), "dev") == ["AcrPull for compute on ml-workspace-registry"]


def test_a_grant_in_the_wrong_stages_is_caught(infra_copy):
    # the data scientists keep AzureML Data Scientist in prod; preprod loses its registry role
    edit(infra_copy / ROLES, "    principalId: dataScientistsGroupId\n    stages: [\n      'dev'\n    ]",
         "    principalId: dataScientistsGroupId\n    stages: [\n      'dev'\n      'prod'\n    ]")
    edit(infra_copy / REGISTRY_ROLES, "    stages: [\n      'preprod'\n      'prod'\n    ]",
         "    stages: [\n      'prod'\n    ]")
    templates = templates_of(infra_copy)
    assert assigned(templates, "prod") - declared("prod") == {
        (need.DATA_SCIENTISTS, need.AZUREML_DATA_SCIENTIST, need.WORKSPACE)}
    assert unassigned(templates, "preprod") == ["AzureML Registry User for function on shared-ml-registry"]


def test_every_models_endpoint_pulls_from_the_registry_in_prod_only(templates):
    template = templates[REGISTRY_ROLES]

    def endpoint_grants(stage: str) -> list[str]:
        grants_ = template.evaluate("sharedRegistryGrants", stage=stage, modelEndpointPrincipalIds=["a", "b"],
                                    functionPrincipalId="f", endpointPrincipalId="e")
        return [g["principalId"] for g in grants_ if g["principalId"] != "f"]
    assert endpoint_grants("prod") == ["e", "a", "b"] and endpoint_grants("preprod") == []
    params = body_of(templates["main.bicep"].modules["registryRoles"]["config"])["params"]
    assert "modelEndpoint" in str(params["modelEndpointPrincipalIds"])      # wired to the models' endpoints
