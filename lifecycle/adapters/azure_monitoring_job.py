"""monitoring/job.yml as the command job of one monitoring pass (a MonitoringRequest), for AzureMLJobs.

The spec is loaded with azure-ai-ml's `load_job` and the request's values applied as `params_override`, as
the training job is. Blob URLs become what Azure ML mounts: the collected data's folders on the workspace's
default datastore (workspaceblobstore, where the data collector writes) or, with DATA_COLLECTOR_BLOB_URI, the
https URL of that container; the labels on the feedback datastore. Optional inputs a request does not have
lose their $[[...]] group (a command job cannot declare an optional input). The environment
(MONITORING_ENVIRONMENT) and the compute (JOB_COMPUTE) are the ones the infrastructure created."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lifecycle.adapters.azure_environments import PinnedEnvironment
from lifecycle.adapters.azure_workspace import PROJECT_ROOT, AzureMLAdapterError, datastore_path
from lifecycle.core.platform_values import MonitoringRequest

MONITORING_SPEC = PROJECT_ROOT / "monitoring" / "job.yml"
_GROUP = re.compile(r"\$\[\[(.*?)\]\]")
_INPUT = re.compile(r"\$\{\{inputs\.(\w+)\}\}")


class MonitoringJobSpec:
    def __init__(self, environment: str = "mlops-monitoring:1", compute: str = "cpu-cluster", *,
                 collector_datastore: str = "workspaceblobstore", collector_blob_uri: str = "",
                 feedback_datastore: str = "mlopsfeedback", spec: str | Path = MONITORING_SPEC) -> None:
        self.environment = PinnedEnvironment(environment, "MONITORING_ENVIRONMENT", "monitoring/environment/conda.yml")
        self.compute = compute
        self.collector_datastore = collector_datastore
        self.collector_blob_uri = collector_blob_uri.rstrip("/")
        self.feedback_datastore = feedback_datastore
        self.spec = Path(spec)

    def job(self, request: MonitoringRequest) -> Any:
        import yaml  # a dependency of azure-ai-ml
        from azure.ai.ml import load_job
        if not self.spec.is_file():
            raise AzureMLAdapterError(f"the monitoring job spec {self.spec} does not exist")
        spec = yaml.safe_load(self.spec.read_text()) or {}
        declared = spec.get("inputs") or {}
        values = request.inputs()
        overrides: list[dict[str, Any]] = [
            {"name": request.job_name}, {"display_name": request.job_name}, {"experiment_name": request.experiment},
            {"tags": {**(spec.get("tags") or {}), **request.tags}},
            {"environment": self.environment.asset_id}, {"compute": f"azureml:{self.compute}"},
        ]
        for name, value in values.items():
            found = declared.get(name)
            given = found if isinstance(found, dict) else {}
            if name == "model":
                overrides.append({"inputs.model": {**given, "type": "mlflow_model", "path": request.model_asset_id}})
            elif name in ("model_inputs", "model_outputs"):
                folder = {**given, "type": "uri_folder", "path": self._collected(str(value))}
                overrides.append({f"inputs.{name}": folder})
            elif name == "labels":
                path, _ = datastore_path(str(value), self.feedback_datastore)
                overrides.append({"inputs.labels": {"type": "uri_folder", "mode": "ro_mount", "path": path}})
            else:
                overrides.append({f"inputs.{name}": value})

        def group(match: re.Match) -> str:
            return match[1] if all(n in values for n in _INPUT.findall(match[1])) else ""

        overrides.append({"command": " ".join(_GROUP.sub(group, str(spec.get("command", ""))).split())})
        return load_job(self.spec, params_override=overrides)

    def _collected(self, url: str) -> str:
        """A collected-data folder URL as the job mounts it."""
        if self.collector_blob_uri and url.startswith(self.collector_blob_uri + "/"):
            return url          # DATA_COLLECTOR_BLOB_URI: Azure ML mounts an https blob folder as is
        path, _ = datastore_path(url, self.collector_datastore)
        return path
