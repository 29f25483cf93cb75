"""The Azure ML adapters (Jobs, Registry, Endpoints ports) on azure-ai-ml, in one import for the composition root.

Importing this module is cheap: azure.ai.ml (~3 s) is imported inside the first call that talks to Azure ML.
    azure_jobs.py       command jobs from training/job.yml; metrics.json from the job's output
    azure_team_jobs.py  a team's own training spec wrapped in a pipeline job (split → theirs → evaluate)
    azure_registry.py   model versions registered from a job's output, tagged with the job
    azure_endpoints.py  managed online endpoints, deployments, traffic and mirror traffic
    azure_workspace.py  the lazily created MLClient and the translations they share
"""
from __future__ import annotations

from lifecycle.adapters.azure_endpoints import AzureMLEndpoints, TrafficError, validate_traffic
from lifecycle.adapters.azure_jobs import AzureMLJobs
from lifecycle.adapters.azure_registry import AzureMLRegistry
from lifecycle.adapters.azure_workspace import AzureMLAdapterError, datastore_path

__all__ = ["AzureMLAdapterError", "AzureMLEndpoints", "AzureMLJobs", "AzureMLRegistry", "TrafficError",
           "datastore_path", "validate_traffic"]
