"""The Endpoints port on Azure ML managed online endpoints and deployments, through azure-ai-ml.

Functions submit and return: every create, update and delete starts azure-ai-ml's long-running operation
(`begin_*`) and returns without waiting on it; the rollout reads the provisioning state on its next tick.
(azure-core's LROPoller still polls in a daemon thread until the operation ends or the worker process
exits; nothing joins it.) Replays change nothing: an existing endpoint, a deployment of the same model,
an unchanged traffic split and a deployment already deleting are left alone. The specs are
deployment/endpoint.yml and deployment/deployment.yml, loaded with azure-ai-ml's own loaders."""
from __future__ import annotations

import builtins
import logging
from pathlib import Path
from typing import Any

from lifecycle.adapters.azure_environments import PinnedEnvironment
from lifecycle.adapters.azure_workspace import PROJECT_ROOT, AzureMLAdapterError, WorkspaceClient, model_ref, text
from lifecycle.core.platform_values import DeploymentState, EndpointState, Invocation, ModelVersion

log = logging.getLogger(__name__)

ENDPOINT_SPEC = PROJECT_ROOT / "deployment" / "endpoint.yml"
DEPLOYMENT_SPEC = PROJECT_ROOT / "deployment" / "deployment.yml"
MAX_MIRROR = 50                                     # Azure ML mirrors at most 50% of live traffic
RETRYABLE = frozenset({"Failed", "Canceled"})       # a deployment in these states is created again
INFERENCE_SETTING = "INFERENCE_ENVIRONMENT"


class TrafficError(AzureMLAdapterError, ValueError):
    """A traffic split Azure ML would refuse."""


class AzureMLEndpoints(WorkspaceClient):
    def __init__(self, subscription_id: str, resource_group: str, workspace_name: str, *,
                 endpoint_spec: str | Path = ENDPOINT_SPEC, deployment_spec: str | Path = DEPLOYMENT_SPEC,
                 environment: str = "mlops-inference:1", credential: Any = None, **client_kwargs: Any) -> None:
        """`environment` ("name:version", INFERENCE_ENVIRONMENT) replaces the deployment spec's own: the
        infrastructure creates it, and a rollout never registers an environment version."""
        super().__init__(subscription_id, resource_group, workspace_name, credential=credential, **client_kwargs)
        self.endpoint_spec = Path(endpoint_spec)
        self.deployment_spec = Path(deployment_spec)
        self.environment = PinnedEnvironment(environment, INFERENCE_SETTING, "deployment/environment/conda.yml")

    # -- the port --------------------------------------------------------------------------------------

    def get(self, endpoint: str) -> EndpointState | None:
        found = self._endpoint(endpoint)
        if found is None:
            return None
        deployments = self._deployments(endpoint)
        return EndpointState(
            name=found.name, scoring_uri=found.scoring_uri or "",
            traffic={k: int(v) for k, v in (found.traffic or {}).items()},
            mirror_traffic={k: int(v) for k, v in (found.mirror_traffic or {}).items()},
            deployments=tuple(_deployment_state(d, self._failure(endpoint, d)) for d in deployments))

    def ensure_endpoint(self, endpoint: str) -> EndpointState:
        current = self.get(endpoint)
        if current is not None:
            return current
        from azure.ai.ml import load_online_endpoint
        overrides: list[dict[str, Any]] = [{"name": endpoint}]
        if "auth_mode" not in _yaml(self.endpoint_spec):
            overrides.append({"auth_mode": "key"})
        spec = load_online_endpoint(_existing(self.endpoint_spec), params_override=overrides)
        self.ml_client.online_endpoints.begin_create_or_update(spec)       # not waited on: see module doc
        log.info("started creating online endpoint %s", endpoint)
        return self.get(endpoint) or EndpointState(name=endpoint, scoring_uri="")

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> None:
        current = self._deployment(endpoint, deployment)
        if (current is not None and model_ref(current.model) == model.ref
                and text(current.provisioning_state) not in RETRYABLE):
            return      # already there or on its way: a replayed event changes nothing
        from azure.ai.ml import load_online_deployment
        spec = load_online_deployment(_existing(self.deployment_spec), params_override=[
            {"name": deployment}, {"endpoint_name": endpoint}, {"model": model.asset_id},
            {"environment": self.environment.asset_id}])
        self.environment.require(self.ml_client, self.workspace_name)
        self.ml_client.online_deployments.begin_create_or_update(spec)
        log.info("started deployment %s/%s of model %s", endpoint, deployment, model.ref)

    def set_traffic(self, endpoint: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None) -> None:
        """Set the live split and the mirrored (shadow) share. `mirror_traffic=None` means no mirroring."""
        traffic = {k: _percent(k, v) for k, v in traffic.items()}
        mirror = {k: _percent(k, v) for k, v in (mirror_traffic or {}).items()}
        validate_traffic(endpoint, traffic, mirror)
        found = self._endpoint(endpoint)
        if found is None:
            raise AzureMLAdapterError(f"endpoint {endpoint} does not exist in workspace {self.workspace_name}")
        known = {d.name for d in self._deployments(endpoint)}
        unknown = sorted(n for n, v in {**traffic, **mirror}.items() if v > 0 and n not in known)
        if unknown:
            raise TrafficError(f"endpoint {endpoint} has no deployment {', '.join(unknown)}: create it before giving "
                               f"it traffic (deployments: {', '.join(sorted(known)) or 'none'})")
        if _shares(found.traffic) == _shares(traffic) and _shares(found.mirror_traffic) == _shares(mirror):
            return      # already so: a replay sends no update
        found.traffic = traffic
        found.mirror_traffic = mirror
        self.ml_client.online_endpoints.begin_create_or_update(found)
        log.info("endpoint %s: traffic %s, mirror %s", endpoint, traffic, mirror)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError
        found = self._endpoint(endpoint)
        if found is None:
            return
        live = int((found.traffic or {}).get(deployment, 0))
        mirrored = int((found.mirror_traffic or {}).get(deployment, 0))
        if live or mirrored:
            raise TrafficError(f"deployment {deployment} still takes {live}% live and {mirrored}% mirrored traffic "
                               f"on endpoint {endpoint}: move its traffic to another deployment before deleting it")
        current = self._deployment(endpoint, deployment)
        if current is None or text(current.provisioning_state) == "Deleting":
            return      # gone or going: a replay deletes nothing twice
        try:
            self.ml_client.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint)
        except ResourceNotFoundError:
            return
        log.info("started deleting deployment %s/%s", endpoint, deployment)

    def scoring_key(self, endpoint: str) -> str:
        """The key a client sends to score, as `az ml online-endpoint get-credentials` gives it: the primary
        key of a key-auth endpoint (the project's), or the access token of a token-auth one."""
        from azure.core.exceptions import ResourceNotFoundError
        try:
            credentials = self.ml_client.online_endpoints.get_keys(endpoint)
        except ResourceNotFoundError:
            raise AzureMLAdapterError(
                f"endpoint {endpoint} does not exist in workspace {self.workspace_name}") from None
        key = getattr(credentials, "primary_key", None) or getattr(credentials, "access_token", None)
        if not key:
            raise AzureMLAdapterError(f"endpoint {endpoint} gave no key or token to score with")
        return key

    # -- for the CLI (as the local adapter offers) -----------------------------------------------------

    def list(self) -> list[EndpointState]:
        states = (self.get(e.name) for e in self.ml_client.online_endpoints.list())
        return [s for s in states if s is not None]

    def invoke(self, endpoint: str, deployment: str, body: dict) -> Invocation:
        """Score through the endpoint pinned to one deployment, as `az ml online-endpoint invoke` does."""
        import json
        import tempfile
        import time

        from azure.core.exceptions import HttpResponseError
        with tempfile.NamedTemporaryFile("w", suffix=".json") as request_file:
            json.dump(body, request_file)
            request_file.flush()
            started = time.perf_counter()
            try:
                answer = self.ml_client.online_endpoints.invoke(endpoint_name=endpoint, deployment_name=deployment,
                                                                request_file=request_file.name)
                status = 200
            except HttpResponseError as error:
                answer, status = str(error.message or error), error.status_code or 500
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return Invocation(status, (time.perf_counter() - started) * 1000, text)

    # -- reading ---------------------------------------------------------------------------------------

    def _endpoint(self, endpoint: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return self.ml_client.online_endpoints.get(endpoint)
        except ResourceNotFoundError:
            return None

    def _deployment(self, endpoint: str, deployment: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return self.ml_client.online_deployments.get(name=deployment, endpoint_name=endpoint)
        except ResourceNotFoundError:
            return None

    def _deployments(self, endpoint: str) -> builtins.list[Any]:     # `list` is a method here
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return sorted(self.ml_client.online_deployments.list(endpoint), key=lambda d: d.name)
        except ResourceNotFoundError:
            return []

    def _failure(self, endpoint: str, deployment: Any) -> str | None:
        """For a failed deployment, the tail of its container log (ARM keeps no error on the resource)."""
        if text(deployment.provisioning_state) != "Failed":
            return None
        from azure.core.exceptions import HttpResponseError
        reason = f"deployment {deployment.name} failed to provision"
        try:
            logs = self.ml_client.online_deployments.get_logs(deployment.name, endpoint, lines=20)
        except HttpResponseError as error:
            log.warning("could not read the logs of deployment %s/%s: %s", endpoint, deployment.name, error)
            logs = ""
        if logs and logs.strip():
            return f"{reason}; last log lines:\n{logs.strip()}"
        return f"{reason}: see az ml online-deployment get-logs -e {endpoint} -n {deployment.name}"


def validate_traffic(endpoint: str, traffic: dict[str, int], mirror: dict[str, int]) -> None:
    """Azure ML's rules: live traffic adds up to 100 (or 0 everywhere); at most one deployment is mirrored,
    with at most 50%, and only one that takes no live traffic."""
    total = sum(traffic.values())
    if total not in (0, 100):
        raise TrafficError(f"traffic for endpoint {endpoint} adds up to {total}%, not 100%: {traffic}")
    mirrored = {k: v for k, v in mirror.items() if v > 0}
    if len(mirrored) > 1:
        raise TrafficError(f"endpoint {endpoint} can mirror traffic to one deployment only, not {sorted(mirrored)}")
    for name, share in mirrored.items():
        if share > MAX_MIRROR:
            raise TrafficError(f"mirror traffic to {name} on endpoint {endpoint} is {share}%: "
                               f"Azure ML mirrors at most {MAX_MIRROR}%")
        if traffic.get(name, 0) > 0:
            raise TrafficError(f"deployment {name} takes {traffic[name]}% live traffic on endpoint {endpoint}, "
                               "so it cannot also receive mirrored traffic")


def _percent(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not 0 <= value <= 100:
        raise TrafficError(f"traffic for deployment {name} is {value!r}: use a whole percentage from 0 to 100")
    return int(value)


def _shares(split: dict | None) -> dict[str, int]:
    return {k: int(v) for k, v in (split or {}).items() if int(v)}


def _deployment_state(deployment: Any, error: str | None) -> DeploymentState:
    return DeploymentState(name=deployment.name, model=model_ref(deployment.model),
                           state=text(deployment.provisioning_state) or "Unknown", error=error)


def _existing(spec: Path) -> Path:
    if not spec.is_file():
        raise AzureMLAdapterError(f"the deployment spec {spec} does not exist")
    return spec


def _yaml(spec: Path) -> dict:
    import yaml  # a dependency of azure-ai-ml
    return yaml.safe_load(_existing(spec).read_text()) or {}
