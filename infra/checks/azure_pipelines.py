"""The project's own rules for azure-pipelines.yml, as checkov custom checks (azure_pipelines framework):

    checkov --framework azure_pipelines -f azure-pipelines.yml --external-checks-dir infra/checks

- CKV_MLOPS_6: a job signs in to Azure only through its tasks' service connection (workload identity
  federation, no secret): no `az login` / `Connect-AzAccount` in a script, no `addSpnToEnvironment` (it hands
  the connection's credential or token to the script), no `$(...)` macro of a secret-looking variable;
- CKV_MLOPS_7: a job that uses an Azure service connection is a deployment job bound to an `environment:`,
  whose approvals and checks (required reviewers, exclusive lock) gate it.

Each reports only on the jobs that touch Azure (UNKNOWN elsewhere, which checkov leaves out). A job's steps are
read wherever they are: `steps:` of a job, or of a deployment strategy's hooks (runOnce.deploy, on.failure...).
checkov reads only a file named azure-pipelines.yml (or .yaml)."""
from __future__ import annotations

import re
from typing import Any

from checkov.azure_pipelines.checks.base_azure_pipelines_check import BaseAzurePipelinesCheck
from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.yaml_doc.enums import BlockType

# the inputs that name an Azure Resource Manager service connection (task inputs are case-insensitive)
CONNECTION_INPUTS = frozenset({"azuresubscription", "azureresourcemanagerconnection", "connectedservicenamearm"})
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell")
SCRIPT_INPUTS = frozenset({"inlinescript", "script"})
SIGN_IN = re.compile(r"\baz\s+login\b|\bConnect-AzAccount\b|\bazd\s+auth\s+login\b.*--client-secret", re.IGNORECASE)
SECRET_MACRO = re.compile(r"\$\([\w.]*(secret|password|credential|clientkey|serviceprincipalkey)[\w.]*\)",
                          re.IGNORECASE)
ENTITIES = ("jobs[]", "stages[].jobs[]")


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a job: its `steps:`, and the steps of its deployment strategy's hooks."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "steps" and isinstance(item, list):
                    found.extend(step for step in item if isinstance(step, dict))
                else:
                    walk(item)

    walk({"steps": job.get("steps"), "strategy": job.get("strategy")})
    return found


def _inputs(step: dict[str, Any]) -> dict[str, Any]:
    inputs = step.get("inputs")
    return {str(k).lower(): v for k, v in inputs.items()} if isinstance(inputs, dict) else {}


def uses_connection(step: dict[str, Any]) -> bool:
    return "task" in step and bool(CONNECTION_INPUTS & set(_inputs(step)))


def scripts_of(step: dict[str, Any]) -> list[str]:
    texts = [str(step[key]) for key in SCRIPT_KEYS if key in step]
    texts += [str(v) for k, v in _inputs(step).items() if k in SCRIPT_INPUTS]
    return texts


class AzureSignInThroughServiceConnection(BaseAzurePipelinesCheck):
    def __init__(self) -> None:
        super().__init__(name="Azure sign-in only through the tasks' service connection (workload identity "
                              "federation): no az login, no addSpnToEnvironment, no secret variables",
                         id="CKV_MLOPS_6", categories=(CheckCategories.IAM,), supported_entities=ENTITIES,
                         block_type=BlockType.ARRAY)

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict):
            return CheckResult.UNKNOWN, conf
        steps = steps_of(conf)
        scripts = [text for step in steps for text in scripts_of(step)]
        if not any(uses_connection(step) for step in steps) and not any(SIGN_IN.search(t) for t in scripts):
            return CheckResult.UNKNOWN, conf
        for step in steps:
            if str(_inputs(step).get("addspntoenvironment", "")).lower() == "true":
                return CheckResult.FAILED, conf
        if any(SIGN_IN.search(text) or SECRET_MACRO.search(text) for text in scripts):
            return CheckResult.FAILED, conf
        if any(SECRET_MACRO.search(str(v)) for step in steps if uses_connection(step) for v in _inputs(step).values()):
            return CheckResult.FAILED, conf
        return CheckResult.PASSED, conf


class AzureJobsBoundToEnvironments(BaseAzurePipelinesCheck):
    def __init__(self) -> None:
        super().__init__(name="a job that uses an Azure service connection is a deployment job bound to an "
                              "environment (its approvals and checks)",
                         id="CKV_MLOPS_7", categories=(CheckCategories.IAM,), supported_entities=ENTITIES,
                         block_type=BlockType.ARRAY)

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict) or not any(uses_connection(step) for step in steps_of(conf)):
            return CheckResult.UNKNOWN, conf
        environment = conf.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        if "deployment" in conf and environment:
            return CheckResult.PASSED, conf
        return CheckResult.FAILED, conf


checks = [AzureSignInThroughServiceConnection(), AzureJobsBoundToEnvironments()]
