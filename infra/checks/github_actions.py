"""The project's own rules for its GitHub Actions workflows, as checkov custom checks (github_actions framework):

    checkov --framework github_actions -d .github/workflows --external-checks-dir infra/checks

- CKV_MLOPS_1: azure/login signs in with OIDC only: client-id and tenant-id given, no `creds`, no client
  secret, no `secrets.` anywhere in the step's inputs or environment (the client, tenant and subscription ids
  are `vars.`: ids, not secrets);
- CKV_MLOPS_2: a job that runs azure/login may ask for an OIDC token (`id-token: write`, in its own
  `permissions:` or, when it has none, the workflow's; a job's own block replaces the workflow's entirely);
- CKV_MLOPS_3: every job declares its own `permissions:` (least privilege job by job), never `write-all`;
- CKV_MLOPS_4: every action and reusable workflow is pinned to a major version (`@v4`, `@v4.1`) or a full
  commit (`@<40 hex>`), not a branch;
- CKV_MLOPS_5: a job bound to an `environment:` (a deployment) runs in a concurrency group (its own or the
  workflow's) that does not cancel a deployment in progress.

A check reports only where it applies (UNKNOWN elsewhere, which checkov leaves out): CKV_MLOPS_1 on the
azure/login steps, CKV_MLOPS_2 on the workflows that sign in, CKV_MLOPS_4 on the steps and jobs that use
something, CKV_MLOPS_5 on the workflows with a deployment. So a passed result means the rule looked at it.

checkov reads only the files under a `.github/workflows/` folder that pass its own workflow schema: a file it
cannot read is not reported at all, so the tests check that each workflow was seen, and run
check-jsonschema too."""
from __future__ import annotations

import re
from typing import Any

from checkov.common.models.enums import CheckResult
from checkov.github_actions.checks.base_github_action_check import BaseGithubActionsCheck
from checkov.yaml_doc.enums import BlockType

AZURE_LOGIN = re.compile(r"^azure/login@", re.IGNORECASE)
SECRET_INPUTS = ("creds", "client-secret", "client_secret")
SECRET_REFERENCE = re.compile(r"\bsecrets\s*[.\[]")          # ${{ secrets.X }}, ${{ secrets['X'] }}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def _jobs(workflow: Any) -> dict[str, dict]:
    jobs = workflow.get("jobs") if isinstance(workflow, dict) else None
    return {name: job for name, job in (jobs or {}).items() if isinstance(job, dict)}


def _signs_in(job: dict) -> bool:
    return any(isinstance(step, dict) and AZURE_LOGIN.match(str(step.get("uses", "")))
               for step in job.get("steps") or [])


def _strings(value: Any) -> list[str]:
    """Every key and scalar below a value, as text."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [str(value)]


def _pinned(uses: str) -> bool:
    return uses.startswith("./") or bool(PINNED.match(uses))


class AzureLoginWithoutSecrets(BaseGithubActionsCheck):
    def __init__(self) -> None:
        # "jobs" is listed only for checkov to name a step by its job (jobs(deploy).steps[2]); jobs are UNKNOWN
        super().__init__(name="azure/login signs in with OIDC (federated credentials): no creds, no client secret, "
                              "no secrets in its inputs",
                         id="CKV_MLOPS_1", block_type=BlockType.ARRAY, supported_entities=("jobs", "jobs.*.steps[]"))

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if self.entity_type == "jobs" or not isinstance(conf, dict) or not AZURE_LOGIN.match(str(conf.get("uses", ""))):
            return CheckResult.UNKNOWN, conf
        inputs = conf.get("with") or {}
        if not isinstance(inputs, dict) or any(key in inputs for key in SECRET_INPUTS):
            return CheckResult.FAILED, conf
        if not inputs.get("client-id") or not inputs.get("tenant-id"):
            return CheckResult.FAILED, conf          # without them azure/login falls back to creds
        if any(SECRET_REFERENCE.search(text) for text in _strings([inputs, conf.get("env") or {}])):
            return CheckResult.FAILED, conf
        return CheckResult.PASSED, conf


class AzureLoginMayRequestToken(BaseGithubActionsCheck):
    def __init__(self) -> None:
        # the whole workflow: a job's permissions fall back to the workflow's when it declares none
        super().__init__(name="a job that runs azure/login has id-token: write (its own permissions, or the "
                              "workflow's when it declares none)",
                         id="CKV_MLOPS_2", block_type=BlockType.DOCUMENT, supported_entities=("jobs",))

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        workflow_permissions = conf.get("permissions") if isinstance(conf, dict) else None
        signing_in = [job for job in _jobs(conf).values() if _signs_in(job)]
        if not signing_in:
            return CheckResult.UNKNOWN, conf
        for job in signing_in:
            permissions = job.get("permissions", workflow_permissions)     # the job's own replace the workflow's
            granted = permissions == "write-all" or (isinstance(permissions, dict)
                                                     and permissions.get("id-token") == "write")
            if not granted:
                return CheckResult.FAILED, job
        return CheckResult.PASSED, conf


class JobDeclaresPermissions(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(name="every job declares its own least-privilege permissions (never write-all)",
                         id="CKV_MLOPS_3", block_type=BlockType.ARRAY, supported_entities=("jobs",))

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict):
            return CheckResult.UNKNOWN, conf
        permissions = conf.get("permissions", "missing")
        if permissions == "missing" or permissions == "write-all":
            return CheckResult.FAILED, conf
        if isinstance(permissions, str) and permissions != "read-all":
            return CheckResult.FAILED, conf
        return CheckResult.PASSED, conf


class ActionPinned(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(name="every action and reusable workflow is pinned to a major version or a full commit, "
                              "not a branch",
                         id="CKV_MLOPS_4", block_type=BlockType.ARRAY, supported_entities=("jobs", "jobs.*.steps[]"))

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        # a step's action, or a job's reusable workflow (jobs.<id>.uses)
        if not isinstance(conf, dict) or "uses" not in conf:
            return CheckResult.UNKNOWN, conf
        return (CheckResult.PASSED if _pinned(str(conf["uses"])) else CheckResult.FAILED), conf


class DeploymentsOneAtATime(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(name="a job bound to an environment runs in a concurrency group that does not cancel a "
                              "deployment in progress",
                         id="CKV_MLOPS_5", block_type=BlockType.DOCUMENT, supported_entities=("jobs",))

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        workflow_concurrency = conf.get("concurrency") if isinstance(conf, dict) else None
        deployments = [job for job in _jobs(conf).values() if "environment" in job]
        if not deployments:
            return CheckResult.UNKNOWN, conf
        for job in deployments:
            concurrency = job.get("concurrency", workflow_concurrency)
            if not concurrency:
                return CheckResult.FAILED, job
            if isinstance(concurrency, dict) and concurrency.get("cancel-in-progress") not in (None, False):
                return CheckResult.FAILED, job
        return CheckResult.PASSED, conf


checks = [AzureLoginWithoutSecrets(), AzureLoginMayRequestToken(), JobDeclaresPermissions(), ActionPinned(),
          DeploymentsOneAtATime()]
