"""Pinned Azure ML environments: jobs and deployments name an environment version the infrastructure
created ("name:version" in an app setting), and never register one of their own. Registering from the
conda file on every job or rollout would add a version (and an image build) each time."""
from __future__ import annotations

import re
from typing import Any

from lifecycle.adapters.azure_workspace import AzureMLAdapterError

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,254}):(?P<version>[A-Za-z0-9_.-]{1,64})$")


class PinnedEnvironment:
    """One environment version named by an app setting, checked once per adapter before it is used."""

    def __init__(self, ref: str, setting: str, conda_file: str) -> None:
        match = _REF.match((ref or "").removeprefix("azureml:"))
        if not match:
            raise AzureMLAdapterError(f"app setting {setting} is {ref!r}: name an Azure ML environment version as "
                                      "'name:version', e.g. 'mlops-training:1'")
        self.name, self.version = match["name"], match["version"]
        self.setting = setting
        self.conda_file = conda_file
        self._found = False

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def asset_id(self) -> str:
        """How a job or deployment spec names it (azure-ai-ml turns it into the ARM id)."""
        return f"azureml:{self.ref}"

    def require(self, ml_client: Any, workspace: str) -> None:
        """Raise a clear error if the workspace lacks the version (azure-ai-ml would send the job or deployment
        anyway, and the service's answer names neither the setting nor the fix)."""
        if self._found:
            return
        from azure.core.exceptions import ResourceNotFoundError
        try:
            ml_client.environments.get(self.name, version=self.version)
        except ResourceNotFoundError:
            raise AzureMLAdapterError(
                f"environment {self.ref} (app setting {self.setting}) does not exist in workspace {workspace}: "
                f"the infrastructure creates it (azd provision), or create it by hand from {self.conda_file} "
                f"(az ml environment create --name {self.name} --version {self.version} --conda-file "
                f"{self.conda_file} --image mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04), or point "
                f"{self.setting} at a version that exists") from None
        self._found = True
