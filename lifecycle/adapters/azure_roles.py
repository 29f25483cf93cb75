"""The Azure roles the adapters need, declared next to them as data: who holds each role, on what, and why.

infra/modules/roles.bicep (and, on the shared Azure ML registry, infra/modules/registry-roles.bicep) assigns
exactly these, environment by environment (tests/infra checks that every one is assigned to the identity that
needs it, in the stages it is declared for, and nothing more); the README's "Deploy to Azure" tables are this
list. Built-in role ids are the same in every Azure tenant. Nothing here is imported by the function app at run
time."""
from __future__ import annotations

from dataclasses import dataclass

# The environments (MLOPS_STAGE), each with its own workspace; a role held in some of them only says which.
DEV, PREPROD, PROD = "dev", "preprod", "prod"
STAGES = (DEV, PREPROD, PROD)

# Who holds a role.
FUNCTION = "function"                   # the Function App's user-assigned identity (AZURE_CLIENT_ID)
COMPUTE = "compute"                     # the cpu-cluster's system-assigned identity (training and monitoring jobs)
STORAGE_TOPIC = "storage-topic"         # the storage account's Event Grid system topic
WORKSPACE_TOPIC = "workspace-topic"     # the Azure ML workspace's Event Grid system topic
LIFECYCLE_TOPIC = "lifecycle-topic"     # the custom topic for MLOps.* events
ENDPOINT = "endpoint"                   # the online endpoint's system-assigned identity (runs its deployments)
DATA_SCIENTISTS = "data-scientists"     # the data scientists' Entra group (dataScientistsGroupId)
PROMOTER = "promoter"                   # preprod's Function App identity, as prod grants it (promoterPrincipalId)

# What a role is scoped to.
APP_STORAGE = "app-storage"                 # the app's account: host storage, data, feedback, state, dead letters
DATA_CONTAINER = "data-container"           # its data container (training data)
FEEDBACK_CONTAINER = "feedback-container"   # its feedback container (ground truth)
DEADLETTER_CONTAINER = "deadletter-container"
WORKSPACE = "ml-workspace"                  # the Azure ML workspace (and its endpoints and deployments)
WORKSPACE_STORAGE = "ml-workspace-storage"  # the workspace's default blob store (collected data, job outputs)
WORKSPACE_REGISTRY = "ml-workspace-registry"
LIFECYCLE_TOPIC_RESOURCE = "lifecycle-topic-resource"
LOG_ANALYTICS = "log-analytics"
APP_INSIGHTS = "app-insights"
SHARED_REGISTRY = "shared-ml-registry"      # the Azure ML registry dev, preprod and prod share (infra/registry.bicep)


@dataclass(frozen=True)
class RoleNeed:
    identity: str       # who holds it (one of the identity kinds above)
    role: str           # built-in role name
    role_id: str        # its role definition GUID
    scope: str          # the resource it is granted on (one of the scopes above)
    used_by: str        # the code that needs it
    why: str
    stages: tuple[str, ...] = STAGES    # the environments it is granted in


STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
EVENTGRID_DATA_SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"
MONITORING_READER = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
AZUREML_REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"

ROLES: tuple[RoleNeed, ...] = (
    # The Function App's identity
    RoleNeed(FUNCTION, "Storage Blob Data Owner", STORAGE_BLOB_DATA_OWNER, APP_STORAGE,
             "Functions host; blob_state, blob_data, feedback",
             "host storage with an identity (Flex Consumption's deployment package, leases, keys) and the "
             "lifecycle's state, data and feedback blobs (conditional writes, containers made on first use)"),
    RoleNeed(FUNCTION, "Storage Queue Data Contributor", STORAGE_QUEUE_DATA_CONTRIBUTOR, APP_STORAGE,
             "Functions host", "AzureWebJobsStorage__queueServiceUri: the host's queues"),
    RoleNeed(FUNCTION, "Storage Table Data Contributor", STORAGE_TABLE_DATA_CONTRIBUTOR, APP_STORAGE,
             "Functions host", "AzureWebJobsStorage__tableServiceUri: the host's tables"),
    RoleNeed(FUNCTION, "AzureML Data Scientist", AZUREML_DATA_SCIENTIST, WORKSPACE,
             "azure_jobs, azure_registry, azure_endpoints",
             "submit and read jobs, register and tag models, create deployments, set traffic, read endpoint keys; "
             "it cannot create compute or change the workspace"),
    RoleNeed(FUNCTION, "Storage Blob Data Reader", STORAGE_BLOB_DATA_READER, WORKSPACE_STORAGE,
             "collected_data, azure_jobs.metrics, azure_registry.reference",
             "the data collector's modelDataCollector/ files, a job's metrics.json and a model's files live in "
             "the workspace's default blob store"),
    RoleNeed(FUNCTION, "EventGrid Data Sender", EVENTGRID_DATA_SENDER, LIFECYCLE_TOPIC_RESOURCE,
             "eventgrid_events", "publish MLOps.* events to the custom topic (local auth is disabled on it)"),
    RoleNeed(FUNCTION, "Log Analytics Reader", LOG_ANALYTICS_READER, LOG_ANALYTICS,
             "azure_metrics.window", "the canary judge reads AmlOnlineEndpointTrafficLog"),
    RoleNeed(FUNCTION, "Monitoring Reader", MONITORING_READER, WORKSPACE,
             "azure_metrics.aggregates, azure_metrics.utilisation",
             "platform metrics of the endpoints and deployments, which are child resources of the workspace"),
    RoleNeed(FUNCTION, "Monitoring Metrics Publisher", MONITORING_METRICS_PUBLISHER, APP_INSIGHTS,
             "Functions host", "telemetry to Application Insights with Entra ID (its local auth is disabled)"),
    # The compute cluster's identity: what training and monitoring jobs read and write
    RoleNeed(COMPUTE, "Storage Blob Data Reader", STORAGE_BLOB_DATA_READER, DATA_CONTAINER,
             "training/job.yml", "read a drop through the identity-based mlopsdata datastore"),
    RoleNeed(COMPUTE, "Storage Blob Data Reader", STORAGE_BLOB_DATA_READER, FEEDBACK_CONTAINER,
             "monitoring/job.yml", "read ground truth through the identity-based mlopsfeedback datastore"),
    RoleNeed(COMPUTE, "Storage Blob Data Contributor", STORAGE_BLOB_DATA_CONTRIBUTOR, WORKSPACE_STORAGE,
             "training/job.yml, monitoring/job.yml",
             "write job outputs (model, metrics, report) and read collected data in the workspace's blob store"),
    RoleNeed(COMPUTE, "AcrPull", ACR_PULL, WORKSPACE_REGISTRY,
             "training/job.yml, monitoring/job.yml", "pull the pinned environments' images (admin user is off)"),
    # The Event Grid topics' identities: dead letters are written with Entra ID
    RoleNeed(STORAGE_TOPIC, "Storage Blob Data Contributor", STORAGE_BLOB_DATA_CONTRIBUTOR, DEADLETTER_CONTAINER,
             "infra/event-subscriptions.json", "dead-letter undeliverable BlobCreated events"),
    RoleNeed(WORKSPACE_TOPIC, "Storage Blob Data Contributor", STORAGE_BLOB_DATA_CONTRIBUTOR, DEADLETTER_CONTAINER,
             "infra/event-subscriptions.json", "dead-letter undeliverable Azure ML events"),
    RoleNeed(LIFECYCLE_TOPIC, "Storage Blob Data Contributor", STORAGE_BLOB_DATA_CONTRIBUTOR, DEADLETTER_CONTAINER,
             "infra/event-subscriptions.json", "dead-letter undeliverable MLOps.* events"),
    # Between the environments: one Azure ML registry, preprod -> prod. Each identity acts only in its own
    # workspace; on the registry only where models cross it.
    RoleNeed(FUNCTION, "AzureML Registry User", AZUREML_REGISTRY_USER, SHARED_REGISTRY,
             "azure_registry.AzureMLSharedRegistry",
             "preprod shares the model that passed it into the registry (models.share) and tags it there",
             stages=(PREPROD,)),
    RoleNeed(FUNCTION, "AzureML Registry User", AZUREML_REGISTRY_USER, SHARED_REGISTRY,
             "azure_registry.AzureMLRegistry (registry_name), azure_endpoints",
             "prod reads the shared models and creates deployments that reference them in the registry",
             stages=(PROD,)),
    RoleNeed(ENDPOINT, "AzureML Registry User", AZUREML_REGISTRY_USER, SHARED_REGISTRY,
             "deployment/deployment.yml",
             "prod's deployments run registry models: the endpoint's identity pulls their files and images",
             stages=(PROD,)),
    RoleNeed(PROMOTER, "EventGrid Data Sender", EVENTGRID_DATA_SENDER, LIFECYCLE_TOPIC_RESOURCE,
             "eventgrid_events (preprod's promotion events)",
             "preprod tells prod of each model it shared (PROMOTION_TOPIC_ENDPOINT is prod's custom topic, local "
             "auth off); granted in prod's deployment, to preprod's identity", stages=(PROD,)),
    # People: the data scientists' group builds in dev and only looks in preprod and prod, where the jobs,
    # models and endpoints are the lifecycle's.
    RoleNeed(DATA_SCIENTISTS, "AzureML Data Scientist", AZUREML_DATA_SCIENTIST, WORKSPACE,
             "people (Azure ML studio, SDK, CLI)",
             "experiments, jobs, models and test endpoints of their own in dev", stages=(DEV,)),
    RoleNeed(DATA_SCIENTISTS, "Reader", READER, WORKSPACE, "people (Azure ML studio, SDK, CLI)",
             "see runs, models, endpoints and metrics in preprod and prod, change nothing", stages=(PREPROD, PROD)),
)
