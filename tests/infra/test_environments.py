"""Three environments and the registry they share: infra/environments/{dev,preprod,prod}.parameters.json are
the parameters of main.bicep for each (registry.parameters.json those of registry.bicep). Each file parses, names
only parameters its template declares and gives every required one; each environment has its stage and names of
its own, all three name the one registry and sit in one of its regions, only preprod promotes and only prod
asks for approval. azd's main.parameters.json keeps mapping the azd environment onto main.bicep."""
import json
import re

import pytest

from tests.infra.conftest import INFRA

ENVIRONMENTS = INFRA / "environments"
STAGES = ("dev", "preprod", "prod")
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"


def values(path) -> dict:
    document = json.loads(path.read_text())
    assert document.get("$schema") == SCHEMA and document.get("contentVersion") == "1.0.0.0", path.name
    assert set(document) == {"$schema", "contentVersion", "parameters"}, path.name
    return {name: entry["value"] for name, entry in document["parameters"].items()}


ENV = {stage: values(ENVIRONMENTS / f"{stage}.parameters.json") for stage in STAGES}
REGISTRY = values(ENVIRONMENTS / "registry.parameters.json")


def undeclared_and_missing(template, given: dict) -> tuple[set[str], set[str]]:
    required = {name for name, p in template.params.items() if "default" not in p}
    return set(given) - set(template.params), required - set(given)


def disallowed(template, given: dict) -> dict[str, object]:
    found = {}
    for name, value in given.items():
        allowed = [d["argument"] for d in template.params.get(name, {}).get("decorators", []) if d["type"] == "allowed"]
        if allowed and value not in allowed[0]:
            found[name] = value
    return found


def test_the_environment_folder_holds_the_three_environments_and_the_registry():
    assert {p.name for p in ENVIRONMENTS.glob("*.parameters.json")} == {f"{s}.parameters.json" for s in STAGES} | {
        "registry.parameters.json"}


@pytest.mark.parametrize("stage", STAGES)
def test_each_environment_gives_main_bicep_what_it_needs(templates, stage):
    main = templates["main.bicep"]
    assert undeclared_and_missing(main, ENV[stage]) == (set(), set())
    assert disallowed(main, ENV[stage]) == {}
    assert ENV[stage]["stage"] == stage
    assert ENV[stage]["environmentName"] == f"mlops-{stage}"


def test_the_environments_have_names_of_their_own():
    # every resource name is made from environmentName (the resource group rg-<env>, the rest from a hash of it);
    # the endpoint name is the one given as it is, and must be unique in its region
    for name in ("environmentName", "endpointName"):
        assert len({ENV[stage][name] for stage in STAGES}) == len(STAGES), name


def test_the_environments_share_one_registry_in_their_region_and_one_model():
    for stage in STAGES:
        assert ENV[stage]["registryName"] == REGISTRY["registryName"], stage
        assert ENV[stage]["registryResourceGroup"] == REGISTRY["resourceGroupName"], stage
        assert ENV[stage]["location"] in REGISTRY["regions"], f"{stage}'s region is not one of the registry's"
    for name in ("modelName", "targetColumn", "dataScientistsGroupId"):
        assert len({ENV[stage].get(name) for stage in STAGES}) == 1, f"{name} differs between the environments"


def test_only_preprod_promotes_and_only_prod_asks_for_approval():
    assert {s: ENV[s].get("promotionApproval", "none") for s in STAGES} == {
        "dev": "none", "preprod": "none", "prod": "required"}
    assert {s for s in STAGES if ENV[s].get("promotionTopicEndpoint")} == {"preprod"}
    assert ENV["preprod"]["promotionTopicEndpoint"].startswith("https://")   # published with a token
    assert {s for s in STAGES if "promoterPrincipalId" in ENV[s]} == {"prod"}   # set once preprod exists


def test_placeholders_are_only_where_a_value_comes_from_the_tenant_or_a_deployment():
    placeholders = {(stage, name) for stage in STAGES for name, value in ENV[stage].items()
                    if isinstance(value, str) and re.search(r"<[^>]+>", value)}
    assert placeholders == {(s, "dataScientistsGroupId") for s in STAGES} | {("preprod", "promotionTopicEndpoint")}


def test_the_registry_parameters_fit_registry_bicep(templates):
    registry = templates["registry.bicep"]
    assert undeclared_and_missing(registry, REGISTRY) == (set(), set())
    assert registry.json["globals"]["scope"]["value"] == "subscription"   # it makes its own resource group
    assert isinstance(REGISTRY["regions"], list) and REGISTRY["regions"]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{2,32}", REGISTRY["registryName"])


def test_the_registry_is_replicated_to_each_of_its_regions(templates):
    registry = templates["registry.bicep"]
    module = registry.modules["registry"]["config"]
    assert module["scope"] == "rg" and module["params"]["regions"] == "regions"
    made = templates["modules/ml-registry.bicep"].resources_of("Microsoft.MachineLearningServices/registries")
    assert len(made) == 1
    body = next(iter(made.values()))["config"]
    assert body["kind"] == "registry" and body["identity"]["type"] == "SystemAssigned"
    loop = body["properties"]["regionDetails"]
    detail, item = loop["loop_type"]["detail"], loop["config"]
    assert detail["array_name"] == "regions" and item["location"] == detail["item_name"]
    storage = item["storageAccountDetails"][0]["systemCreatedStorageAccount"]
    assert storage["allowBlobPublicAccess"] is False
    # one container registry geo-replicated to every region: a Premium feature
    assert item["acrDetails"][0]["systemCreatedAcrAccount"]["acrAccountSku"] == "Premium"


def test_azd_still_maps_its_environment_onto_main_bicep(templates):
    main = templates["main.bicep"]
    azd = values(INFRA / "main.parameters.json")
    assert undeclared_and_missing(main, azd) == (set(), set())
    assert azd["environmentName"] == "${AZURE_ENV_NAME}" and azd["location"] == "${AZURE_LOCATION}"
    # a plain `azd up` is a lone dev environment: the new parameters default to it
    for name, default in {"stage": "dev", "promotionApproval": "none", "registryName": "",
                          "promotionTopicEndpoint": "", "promoterPrincipalId": ""}.items():
        assert re.fullmatch(r"\$\{[A-Z_]+=" + re.escape(default) + r"\}", azd[name]), (name, azd[name])
