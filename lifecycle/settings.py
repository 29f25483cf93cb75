"""The function app's settings, read from app settings (environment variables), as in Azure.

Locally the stack puts the same names into the Functions host's environment, so one reader serves both.
This module reads and types them; the composition root (bootstrap.py) turns the policy values among them
into lifecycle.core.policies, which check their ranges."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from lifecycle.core.notifications import Webhook, parse_webhooks


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # The storage account holding data, state and queues: a connection string (the local stack), or, in Azure,
    # the Functions identity-based names (shared keys off) with a token from the managed identity.
    storage_connection: str = ""            # AzureWebJobsStorage
    storage_blob_uri: str = ""              # AzureWebJobsStorage__blobServiceUri
    storage_account_name: str = ""          # AzureWebJobsStorage__accountName (https://<name>.blob.core.windows.net)
    storage_client_id: str = ""             # AzureWebJobsStorage__clientId: the user-assigned identity's client id
    azure_client_id: str = ""               # AZURE_CLIENT_ID: the same, for DefaultAzureCredential
    platform: str = "local"                 # "local" (the embedded stack) or "azure"
    data_container: str = "data"
    state_container: str = "mlops-state"
    eventgrid_endpoint: str = ""            # the custom topic for MLOps.* events
    eventgrid_key: str = ""                 # local stack only: without it, publish with a token (managed identity)
    # the models this app keeps alive: a models file (MLOPS_CONFIG, relative to the app's root), or the one
    # model the settings below describe
    config_file: str = ""
    model_name: str = "tabular-classifier"
    target_column: str = ""                 # the label column of the training data
    endpoint_name: str = "mlops-endpoint"
    training_window: str = "all"            # what a run reads of the data: all, <N> days or <N> drops
    # retrain policy
    drop_quiet_seconds: float = 60          # a drop without a _SUCCESS marker is complete after this quiet time
    retrain_cooldown_minutes: float = 10    # at least this long between two training runs
    retrain_on: str = "data,schedule,drift,performance"   # what starts training on its own: any of data,
                                            # schedule, drift, performance (commas), or never
    # registration gate
    gate_metric: str = "f1"
    gate_floor: float = 0.6                 # the challenger must reach this
    gate_margin: float = 0.02               # and not be worse than the champion by more than this
    gate_leak_score: float = 0.99           # a holdout score this high is checked for a leak...
    gate_leak_feature_score: float = 0.95   # ...and held for a person if one feature alone reaches this
    # blue/green rollout
    rollout_steps: str = "10,50,100"        # canary traffic percentages for the new colour
    rollout_bake_seconds: float = 300       # at least this long at each step...
    rollout_min_requests: int = 100         # ...and at least this many requests on each colour before judging
    rollout_mirror_percent: int = 0         # > 0: mirror this share to the new colour first (at most 50)
    rollout_mirror_seconds: float = 300
    rollout_max_step_seconds: float = 3600  # a step still inconclusive after this rolls back
    rollout_retention_seconds: float = 600  # the old colour is kept this long after promotion
    rollout_on_new_model: str = "wait"      # a model registered during a rollout: wait | supersede
    smoke_rows: int = 20                    # reference rows sent to the new colour before it takes traffic
    smoke_max_latency_ms: float = 2000
    data_collector_container: str = "azureml"   # where modelDataCollector/... lands on the local stack
    feedback_container: str = "feedback"
    # monitoring (the monitor timer runs on MONITOR_SCHEDULE)
    monitor_window_minutes: float = 60      # look back this far at the live deployment's traffic
    monitor_min_rows: int = 500             # fewer collected rows than this: too few to judge drift
    monitor_min_labels: int = 100           # fewer labelled rows than this: no performance, concept drift or fairness
    drift_thresholds: str = ""              # overrides of Azure ML's defaults, e.g. "psi=0.25"
    sensitive_column: str = ""              # a feature to check fairness on (e.g. "gender"); "" = no fairness check
    alert_cooldown_minutes: float = 60      # after an alert started training, later alerts start nothing for this long
    # the local Azure ML stand-in
    aml_local_url: str = ""
    aml_local_key: str = ""
    # Azure ML workspace
    azure_subscription_id: str = ""
    azure_resource_group: str = ""
    azureml_workspace: str = ""
    data_datastore: str = "mlopsdata"       # the Azure ML datastore over the data container
    # Azure ML environments ("name:version") and the compute cluster that the infrastructure creates;
    # pinned, so a rollout or a job never registers an environment version of its own
    training_environment: str = "mlops-training:1"
    inference_environment: str = "mlops-inference:1"
    monitoring_environment: str = "mlops-monitoring:1"
    job_compute: str = "cpu-cluster"
    # what the cluster's node-hours cost (cost estimates and advice): its VM size and scale settings as the
    # infrastructure sets them, and rates over the built-in list prices, "Standard_DS3_v2=0.293,..." per node-hour
    compute_vm_size: str = "Standard_DS3_v2"
    compute_min_nodes: int = 0
    compute_max_nodes: int = 2
    compute_idle_seconds: int = 120
    compute_rates: str = ""
    compute_currency: str = "USD"
    training_slowdown_factor: float = 2.0   # a training run this many times its model's usual length is an alert
    data_collector_blob_uri: str = ""       # the collector's container URL ("" = the workspace's default datastore)
    log_analytics_workspace_id: str = ""    # where the endpoint's traffic logs go (canary judge in Azure)
    azure_location: str = ""                # region, for Azure Monitor's metrics endpoint
    # environments: dev → preprod → prod, with one Azure ML registry between them
    stage: str = ""                         # MLOPS_STAGE: "" or dev | preprod | prod
    registry_name: str = ""                 # AZUREML_REGISTRY: preprod shares into it, prod deploys from it
    promotion_topic_endpoint: str = ""      # preprod: production's custom topic, told of each shared model
    promotion_topic_key: str = ""           # local stack only: without it, publish there with a token
    promotion_approval: str = "none"        # prod: none | required (a person approves before the rollout starts)
    # notifications: the webhooks each decision is posted to, `format=url` (slack | teams | json) separated by
    # commas or spaces; "" = none. The URLs are secrets: read by the notify function only (webhooks())
    notify_webhooks: str = ""

    _ENV = {
        "storage_connection": "AzureWebJobsStorage", "platform": "MLOPS_PLATFORM",
        "storage_blob_uri": "AzureWebJobsStorage__blobServiceUri",
        "storage_account_name": "AzureWebJobsStorage__accountName",
        "storage_client_id": "AzureWebJobsStorage__clientId",
        "eventgrid_endpoint": "EVENTGRID_TOPIC_ENDPOINT", "eventgrid_key": "EVENTGRID_TOPIC_KEY",
        "azure_subscription_id": "AZURE_SUBSCRIPTION_ID", "azure_resource_group": "AZURE_RESOURCE_GROUP",
        "azureml_workspace": "AZUREML_WORKSPACE", "aml_local_url": "AML_LOCAL_URL", "aml_local_key": "AML_LOCAL_KEY",
        "stage": "MLOPS_STAGE", "registry_name": "AZUREML_REGISTRY", "config_file": "MLOPS_CONFIG",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        values: dict[str, Any] = {}     # an int, a float or a str, by the field's type
        for f in fields(cls):
            name = cls.env_name(f.name)
            if name not in env or env[name] == "":
                continue
            raw = env[name]
            try:
                values[f.name] = int(raw) if f.type == "int" else float(raw) if f.type == "float" else raw
            except ValueError:
                kind = "a whole number" if f.type == "int" else "a number"
                raise SettingsError(f"app setting {name} is {raw!r}: it must be {kind}") from None
        settings = cls(**values)
        settings.check()
        return settings

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The app setting a field is read from."""
        return cls._ENV.get(field_name, field_name.upper())

    @property
    def blob_service_uri(self) -> str:
        """The app's blob endpoint for identity-based access ('' when only a connection string is set)."""
        if self.storage_blob_uri:
            return self.storage_blob_uri.rstrip("/")
        return f"https://{self.storage_account_name}.blob.core.windows.net" if self.storage_account_name else ""

    @property
    def managed_identity_client_id(self) -> str:
        """The user-assigned identity to take tokens as ('' = the system-assigned one, or the developer's login)."""
        return self.storage_client_id or self.azure_client_id

    def webhooks(self) -> tuple[Webhook, ...]:
        """NOTIFY_WEBHOOKS as webhooks. Checked here, not in check(): a mistake in it stops the notify function
        only, never the chain."""
        try:
            return parse_webhooks(self.notify_webhooks)
        except ValueError as error:
            raise SettingsError(f"app setting NOTIFY_WEBHOOKS: {error} (expected `format=url`, format slack, "
                                "teams or json, separated by commas or spaces)") from None

    def canary_steps(self) -> tuple[int, ...]:
        """ROLLOUT_STEPS as percentages (the rollout policy checks their order)."""
        try:
            return tuple(int(x) for x in self.rollout_steps.split(",") if x.strip())
        except ValueError:
            raise SettingsError(f"app setting ROLLOUT_STEPS is {self.rollout_steps!r}: whole percentages separated "
                                "by commas, e.g. '10,50,100'") from None

    def drift_threshold_overrides(self) -> dict[str, float]:
        """DRIFT_THRESHOLDS as {metric: threshold}; the metric names are monitoring.drift.Thresholds' fields."""
        overrides = {}
        for item in filter(None, (part.strip() for part in self.drift_thresholds.split(","))):
            name, _, value = item.partition("=")
            try:
                overrides[name.strip()] = float(value)
            except ValueError:
                raise SettingsError(f"app setting DRIFT_THRESHOLDS has {item!r}: use metric=number pairs separated "
                                    "by commas, e.g. 'normalized_wasserstein=0.15,psi=0.25'") from None
        return overrides

    def check(self) -> None:
        if not (self.storage_connection or self.blob_service_uri):
            raise SettingsError("the storage account is not set: either AzureWebJobsStorage with its connection "
                                "string (locally `mlops up` sets it), or, identity-based, "
                                "AzureWebJobsStorage__blobServiceUri (or AzureWebJobsStorage__accountName) with "
                                "AzureWebJobsStorage__clientId / AZURE_CLIENT_ID for a user-assigned identity")
        if not self.eventgrid_key and self.eventgrid_endpoint.lower().startswith("http://"):
            raise SettingsError(f"app setting EVENTGRID_TOPIC_ENDPOINT is {self.eventgrid_endpoint!r}: without "
                                "EVENTGRID_TOPIC_KEY events are published with a token, which needs https://")
        if self.platform not in ("local", "azure"):
            raise SettingsError(f"app setting MLOPS_PLATFORM is {self.platform!r}: use 'local' or 'azure'")
        if self.stage == "preprod" and not self.promotion_topic_endpoint:
            raise SettingsError("MLOPS_STAGE is 'preprod' but PROMOTION_TOPIC_ENDPOINT is not set: production's "
                                "custom topic, told of each model shared into the registry")
        if not self.promotion_topic_key and self.promotion_topic_endpoint.lower().startswith("http://"):
            raise SettingsError(f"app setting PROMOTION_TOPIC_ENDPOINT is {self.promotion_topic_endpoint!r}: "
                                "without PROMOTION_TOPIC_KEY events are published with a token, which needs https://")
        if self.platform == "azure" and not (self.azure_subscription_id and self.azure_resource_group
                                             and self.azureml_workspace):
            raise SettingsError("MLOPS_PLATFORM is 'azure' but AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and "
                                "AZUREML_WORKSPACE are not all set")
