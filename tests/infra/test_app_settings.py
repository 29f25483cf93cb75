"""The Function App in the Bicep sets every app setting the app reads, and none that holds a key or a
connection string: the names come from lifecycle/settings.py (dataclass fields upper-cased, or its _ENV
map), the timers' %SETTING% schedules in function_app.app, and the identity-based connection settings."""
from dataclasses import fields
from datetime import datetime

from croniter import croniter

from lifecycle.settings import Settings
from tests.infra.bicep import body_of, path_of
from tests.infra.conftest import app_functions, edit, templates_of

FUNCTION_APP = "modules/function-app.bicep"

# Set on the local stack only. In Azure each has an identity-based replacement, or no meaning at all.
LOCAL_ONLY = {
    "AzureWebJobsStorage": "a connection string: in Azure the AzureWebJobsStorage__* identity settings replace it",
    "EVENTGRID_TOPIC_KEY": "a topic key: the custom topic has local auth disabled; the app publishes with its identity",
    "PROMOTION_TOPIC_KEY": ("a topic key for prod's custom topic: local auth is disabled on it; preprod publishes "
                            "with its identity (EventGrid Data Sender, granted in prod's deployment)"),
    "AML_LOCAL_URL": "the local Azure ML stand-in's address",
    "AML_LOCAL_KEY": "the local Azure ML stand-in's key",
    "DATA_COLLECTOR_STORAGE": ("a connection string to the collected data "
                               "(gone: the workspace's default datastore is read)"),
    "DATA_COLLECTOR_CONTAINER": ("the `azureml` container on Azurite; "
                                 "in Azure the container comes from the default datastore"),
}
# Read by the app but deliberately left unset in Azure.
OPTIONAL = {
    "DATA_COLLECTOR_BLOB_URI": "an override; without it the app discovers the workspace's default datastore",
    "AzureWebJobsStorage__accountName": "accepted by the app, but the Bicep sets the service URIs instead",
}
# The identity-based connection (Flex Consumption's own templates) and the client id DefaultAzureCredential uses.
IDENTITY = {"AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri",
            "AzureWebJobsStorage__tableServiceUri", "AzureWebJobsStorage__credential",
            "AzureWebJobsStorage__clientId", "AZURE_CLIENT_ID"}
# The environment's settings: each set from the main.bicep parameter of the same meaning, passed through as it is.
ENVIRONMENT = {"MLOPS_STAGE": "stage", "AZUREML_REGISTRY": "registryName",
               "PROMOTION_TOPIC_ENDPOINT": "promotionTopicEndpoint", "PROMOTION_APPROVAL": "promotionApproval"}
# Azure-sensible timers: no schedule fires more often than this.
MIN_MINUTES = {"RECONCILE_SCHEDULE": 5, "MONITOR_SCHEDULE": 60, "RETRAIN_SCHEDULE": 24 * 60}


def settings_the_app_reads() -> set[str]:
    names = {Settings._ENV.get(f.name, f.name.upper()) for f in fields(Settings)}
    for fn in app_functions().values():
        schedule = getattr(fn.get_trigger(), "schedule", None)
        if schedule and schedule.startswith("%") and schedule.endswith("%"):
            names.add(schedule.strip("%"))
    return names


def app_settings(templates) -> dict[str, object]:
    template = templates[FUNCTION_APP]
    settings = template.evaluate("appSettings")
    assert isinstance(settings, dict), "function-app.bicep has no appSettings object"
    configs = [r for r in template.resources.values() if r["type"] == "Microsoft.Web/sites/config"]
    assert any(r["config"].get("name") == "appsettings" and r["config"].get("properties") == "appSettings"
               for r in configs), "the site's appsettings config does not use appSettings"
    return settings


def missing_and_forbidden(templates) -> tuple[set[str], set[str]]:
    set_in_azure = set(app_settings(templates))
    required = (settings_the_app_reads() - set(LOCAL_ONLY) - set(OPTIONAL)) | IDENTITY
    return required - set_in_azure, set(LOCAL_ONLY) & set_in_azure


def test_every_setting_the_app_reads_is_set_and_no_local_only_one(templates):
    missing, forbidden = missing_and_forbidden(templates)
    assert missing == set()
    assert forbidden == set()


def test_the_lists_name_settings_the_app_has():
    # A stale entry would hide a setting: each local-only or optional name is one the app knows.
    known = settings_the_app_reads() | {"AzureWebJobsStorage__accountName"}
    assert {"AzureWebJobsStorage", "EVENTGRID_TOPIC_KEY", "AML_LOCAL_URL", "AML_LOCAL_KEY"} <= known


def test_identity_based_storage_and_no_secrets(templates):
    settings = app_settings(templates)
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["MLOPS_PLATFORM"] == "azure"
    for name, value in settings.items():
        text = str(value).lower()
        assert "accountkey=" not in text and "sharedaccesssignature" not in text and "listkeys" not in text, name


def test_the_environment_settings_are_set_from_the_parameters(templates):
    settings = app_settings(templates)
    main = templates["main.bicep"]
    passed = body_of(main.modules["functionApp"]["config"])["params"]
    for setting, param in ENVIRONMENT.items():
        assert settings[setting] == param, setting
        assert path_of(passed.get(param, "")) == param, f"main.bicep does not pass its {param} to the function app"
    allowed = {name: next(d["argument"] for d in main.params[name]["decorators"] if d["type"] == "allowed")
               for name in ("stage", "promotionApproval")}
    assert allowed == {"stage": ["dev", "preprod", "prod"], "promotionApproval": ["none", "required"]}
    defaults = {name: main.params[name].get("default") for name in
                ("stage", "registryName", "registryResourceGroup", "dataScientistsGroupId", "promotionTopicEndpoint",
                 "promotionApproval", "promoterPrincipalId")}
    assert defaults == {"stage": "dev", "registryName": "", "registryResourceGroup": "", "dataScientistsGroupId": "",
                        "promotionTopicEndpoint": "", "promotionApproval": "none", "promoterPrincipalId": ""}


def test_timers_fire_at_azure_sensible_intervals(templates):
    settings = app_settings(templates)
    template = templates[FUNCTION_APP]
    start = datetime(2026, 1, 1)
    for name, minutes in MIN_MINUTES.items():
        schedule = template.evaluate(settings[name])
        assert croniter.is_valid(schedule, second_at_beginning=True), (name, schedule)
        times = croniter(schedule, start, second_at_beginning=True)
        fires = [times.get_next(datetime) for _ in range(50)]
        shortest = min(b - a for a, b in zip(fires, fires[1:]))
        assert shortest.total_seconds() >= minutes * 60, f"{name}={schedule} fires every {shortest}"


def test_a_missing_setting_a_local_only_one_and_a_busy_timer_are_caught(infra_copy):
    bicep = infra_copy / FUNCTION_APP
    edit(bicep, "  MODEL_NAME: modelName\n", "")
    edit(bicep, "  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table\n", "")
    edit(bicep, "  EVENTGRID_TOPIC_ENDPOINT: lifecycleTopicEndpoint\n",
         "  EVENTGRID_TOPIC_ENDPOINT: lifecycleTopicEndpoint\n  EVENTGRID_TOPIC_KEY: 'abc'\n")
    edit(bicep, "param reconcileSchedule string = '0 */5 * * * *'", "param reconcileSchedule string = '*/5 * * * * *'")
    templates = templates_of(infra_copy)
    missing, forbidden = missing_and_forbidden(templates)
    assert missing == {"MODEL_NAME", "AzureWebJobsStorage__tableServiceUri"}
    assert forbidden == {"EVENTGRID_TOPIC_KEY"}
    try:
        test_timers_fire_at_azure_sensible_intervals(templates)
    except AssertionError as error:
        assert "RECONCILE_SCHEDULE" in str(error)
    else:
        raise AssertionError("a reconcile timer firing every 5 s passed")
