"""The one composition root: picks the adapters from settings. Functions call platform()."""
from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from lifecycle.core.policies import (
    ComputePolicy,
    GatePolicy,
    ManagedModel,
    MonitorPolicy,
    Policies,
    PolicyError,
    PromotionPolicy,
    RetrainPolicy,
    RolloutPolicy,
    TrainingWindow,
    parse_rates,
    retrain_triggers,
)
from lifecycle.ports import Notifier, Platform, State
from lifecycle.settings import Settings, SettingsError

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient


@cache
def platform() -> Platform:
    return build_platform(Settings.from_env())


@cache
def notifier() -> Notifier:
    """What the notify function uses: the state records and the webhooks NOTIFY_WEBHOOKS lists; none of the
    platform's other adapters, so it starts fast and needs nothing of Azure ML."""
    return build_notifier(Settings.from_env())


def build_notifier(settings: Settings) -> Notifier:
    from lifecycle.adapters.webhooks import HttpWebhooks
    return Notifier(state=build_state(settings), webhooks=HttpWebhooks(), targets=settings.webhooks())


def build_platform(settings: Settings) -> Platform:
    # Imported here, not at module level, so that importing the function app stays cheap.
    from lifecycle.adapters.blob_data import BlobData
    from lifecycle.adapters.collected_data import BlobCollected
    from lifecycle.adapters.feedback import BlobFeedback
    from lifecycle.adapters.storage import app_blob_service, credential
    # Storage and state use the same SDK code in Azure and locally; only the connection differs
    # (a connection string locally, the managed identity's token in Azure).
    storage = app_blob_service(settings)
    state = build_state(settings, storage)
    from lifecycle.adapters.eventgrid_events import GridEvents
    events = GridEvents(settings.eventgrid_endpoint, settings.eventgrid_key,
                        credential=None if settings.eventgrid_key else credential(settings))
    feedback = BlobFeedback(storage, settings.feedback_container)
    data = BlobData(storage, settings.data_container)
    models = build_catalog(settings)
    policies = models[0]
    # preprod tells production of each model it shares, on production's own topic
    promotion_events = GridEvents(settings.promotion_topic_endpoint, settings.promotion_topic_key,
                                  credential=None if settings.promotion_topic_key else credential(settings)) \
        if policies.promotion.shares else None
    if settings.platform == "azure":
        from lifecycle.adapters.azure_ml import AzureMLEndpoints, AzureMLJobs, AzureMLRegistry
        workspace: dict[str, Any] = dict(subscription_id=settings.azure_subscription_id,
                                         resource_group=settings.azure_resource_group,
                         workspace_name=settings.azureml_workspace, credential=credential(settings))
        from lifecycle.adapters.azure_metrics import AzureMonitorMetrics
        from lifecycle.adapters.azure_monitoring_job import MonitoringJobSpec
        monitoring = MonitoringJobSpec(settings.monitoring_environment, settings.job_compute,
                                       collector_blob_uri=settings.data_collector_blob_uri)
        jobs = AzureMLJobs(**workspace, datastore=settings.data_datastore, data_container=settings.data_container,
                           environment=settings.training_environment, compute=settings.job_compute,
                           monitoring=monitoring)
        metrics = AzureMonitorMetrics(**workspace, log_analytics_workspace_id=settings.log_analytics_workspace_id,
                                      metrics_region=settings.azure_location)
        # The data collector writes to the workspace's default datastore (found on first read, not at cold start)
        # unless DATA_COLLECTOR_BLOB_URI names its container.
        from lifecycle.adapters.azure_workspace import WorkspaceClient
        from lifecycle.adapters.collected_data import workspace_collected
        collected = workspace_collected(WorkspaceClient(**workspace), credential(settings),
                                        settings.data_collector_blob_uri)
        from lifecycle.adapters.azure_registry import AzureMLSharedRegistry
        # production deploys from the registry; preprod registers in its workspace and shares into the registry
        registry = AzureMLRegistry(**workspace, registry_name=settings.registry_name if policies.promotion.receives
                                   else "")
        shared = AzureMLSharedRegistry(**workspace, shared_registry=settings.registry_name) \
            if policies.promotion.shares else None
        return Platform(policies, state, jobs=jobs, registry=registry,
                        endpoints=AzureMLEndpoints(**workspace, environment=settings.inference_environment),
                        metrics=metrics, collected=collected, events=events,
                        feedback=feedback, data=data, shared_registry=shared, promotion_events=promotion_events,
                        models=models)
    from lifecycle.adapters.local_ml import (
        LocalAML,
        LocalEndpoints,
        LocalJobs,
        LocalMetrics,
        LocalRegistry,
        LocalSharedRegistry,
    )
    aml = LocalAML(settings.aml_local_url, settings.aml_local_key)
    collected = BlobCollected(storage.get_container_client(settings.data_collector_container))
    return Platform(policies, state, jobs=LocalJobs(aml),
                    registry=LocalRegistry(aml, settings.registry_name if policies.promotion.receives else ""),
                    endpoints=LocalEndpoints(aml),
                    metrics=LocalMetrics(aml), collected=collected, events=events,
                    feedback=feedback, data=data,
                    shared_registry=LocalSharedRegistry(aml, settings.registry_name) if policies.promotion.shares
                    else None, promotion_events=promotion_events, models=models)


def build_state(settings: Settings, storage: BlobServiceClient | None = None) -> State:
    """The State port the platform keeps its records in (blobs of the state container), for readers that need
    only the records, such as the CLI reading a stopped local stack. `storage` is the app's blob service when
    the caller has one already."""
    from lifecycle.adapters.blob_state import BlobState
    from lifecycle.adapters.storage import app_blob_service
    return BlobState(storage if storage is not None else app_blob_service(settings), settings.state_container)


# Each policy field and the app setting it comes from: a value a policy refuses is reported by its setting.
_POLICY_SETTINGS = {
    RetrainPolicy: {"drop_quiet_seconds": "drop_quiet_seconds", "cooldown_minutes": "retrain_cooldown_minutes",
                    "triggers": "retrain_on"},
    GatePolicy: {"metric": "gate_metric", "floor": "gate_floor", "margin": "gate_margin",
                 "leak_score": "gate_leak_score", "leak_feature_score": "gate_leak_feature_score"},
    RolloutPolicy: {"steps": "rollout_steps", "bake_seconds": "rollout_bake_seconds",
                    "min_requests": "rollout_min_requests", "mirror_percent": "rollout_mirror_percent",
                    "mirror_seconds": "rollout_mirror_seconds", "max_step_seconds": "rollout_max_step_seconds",
                    "retention_seconds": "rollout_retention_seconds", "on_new_model": "rollout_on_new_model",
                    "smoke_rows": "smoke_rows", "smoke_max_latency_ms": "smoke_max_latency_ms"},
    PromotionPolicy: {"stage": "stage", "registry": "registry_name"},
    MonitorPolicy: {"window_minutes": "monitor_window_minutes", "min_rows": "monitor_min_rows",
                    "min_labels": "monitor_min_labels", "sensitive_column": "sensitive_column",
                    "alert_cooldown_minutes": "alert_cooldown_minutes"},
    ComputePolicy: {"cluster": "job_compute", "vm_size": "compute_vm_size", "min_nodes": "compute_min_nodes",
                    "max_nodes": "compute_max_nodes", "idle_seconds": "compute_idle_seconds",
                    "rates": "compute_rates", "currency": "compute_currency",
                    "slowdown_factor": "training_slowdown_factor"},
}


def build_catalog(settings: Settings) -> tuple[Policies, ...]:
    """Every model this app keeps alive: the models file's (MLOPS_CONFIG), else the one of the app settings.
    A wrong file is a SettingsError naming the file and the key."""
    from lifecycle.models_file import APP_ROOT, ModelsFileError, load_models_file
    base = build_policies(settings)
    if not settings.config_file:
        return (base,)
    try:
        return load_models_file(settings.config_file, base, APP_ROOT)
    except ModelsFileError as error:
        raise SettingsError(str(error)) from None


def build_policies(settings: Settings) -> Policies:
    """The policies the handlers decide with, from the app settings; SettingsError names a refused setting."""
    try:
        window = TrainingWindow.parse(settings.training_window)
    except PolicyError as error:
        raise SettingsError(f"app setting TRAINING_WINDOW {error}") from None
    model = ManagedModel(name=settings.model_name, target_column=settings.target_column,
                         endpoint=settings.endpoint_name, data_container=settings.data_container,
                         feedback_container=settings.feedback_container, training_window=window)
    values = {kind: {name: getattr(settings, setting) for name, setting in names.items()}
              for kind, names in _POLICY_SETTINGS.items()}
    values[RolloutPolicy]["steps"] = settings.canary_steps()
    values[MonitorPolicy]["drift_thresholds"] = settings.drift_threshold_overrides()
    if settings.promotion_approval not in ("none", "required"):
        raise SettingsError(f"app setting PROMOTION_APPROVAL is {settings.promotion_approval!r}: use 'none' or "
                            "'required'")
    values[PromotionPolicy]["approval_required"] = settings.promotion_approval == "required"
    built = {}
    for kind, kwargs in values.items():
        try:
            if kind is RetrainPolicy:
                kwargs["triggers"] = retrain_triggers(settings.retrain_on)
            if kind is ComputePolicy:
                kwargs["rates"] = parse_rates(settings.compute_rates)
            built[kind] = kind(**kwargs)
        except PolicyError as error:
            setting = _POLICY_SETTINGS[kind].get(error.field, error.field)
            raise SettingsError(f"app setting {Settings.env_name(setting)} is {getattr(settings, setting, '')!r}: "
                                f"it {error}") from None
    return Policies(model=model, retrain=built[RetrainPolicy], gate=built[GatePolicy],
                    rollout=built[RolloutPolicy], monitor=built[MonitorPolicy], promotion=built[PromotionPolicy],
                    compute=built[ComputePolicy])
