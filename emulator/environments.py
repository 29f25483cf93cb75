"""Preprod and prod side by side on one machine, as `mlops up --environments preprod,prod` runs them: one
Azurite (each environment's storage kept apart by its container names, as two storage accounts would be),
one Azure ML registry stand-in both workspaces use, and per environment its own local Event Grid, Functions
host running the unchanged function app, and Azure ML stand-in.

    <home>/shared/azurite      the one Azurite's data
    <home>/shared/registry     the registry's model files (its records are in Azurite)
    <home>/prod, <home>/preprod   each environment's stack home: stack.json, keys, timeline, aml/, logs/
    <home>/environments.json   both environments in one file (no keys: those are in each stack.json)

Prod starts first, so that preprod can be told where to publish: preprod's app, on MLOps.ModelPromoted,
shares the model into the registry and tells prod's custom topic (PROMOTION_TOPIC_ENDPOINT/KEY); prod's app
rolls the registry's model out on its own endpoint (PROMOTION_APPROVAL: none, or required for a person's
approval first)."""
from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from emulator.aml.shared_registry import SharedRegistry
from emulator.azurite import Azurite
from emulator.home import StackHome, write_private
from emulator.stack import AlreadyRunning, Stack, StackError, StackInfo, StackOptions, _alive
from lifecycle.clock import utcnow

log = logging.getLogger("emulator.environments")

ENVIRONMENTS = ("preprod", "prod")            # the order in which a model goes
REGISTRY = "mlops-registry"
APPROVALS = ("none", "required")
# prod's containers in the shared Azurite; preprod keeps the app's defaults (data, feedback, mlops-state, azureml)
PROD_CONTAINERS = {"STATE_CONTAINER": "prod-mlops-state", "DATA_CONTAINER": "prod-data",
                   "FEEDBACK_CONTAINER": "prod-feedback", "DATA_COLLECTOR_CONTAINER": "prod-azureml"}


def parse_environments(text: str) -> tuple[str, ...]:
    """`preprod,prod` (either order) → ENVIRONMENTS; anything else is refused with what is possible."""
    given = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if sorted(given) != sorted(ENVIRONMENTS):
        raise StackError(f"--environments {text!r}: the local stack runs {','.join(ENVIRONMENTS)} together "
                         "(or, without --environments, one stack)")
    return ENVIRONMENTS


@dataclass(frozen=True)
class EnvironmentsInfo:
    """Both environments of a running `mlops up --environments`; each one's keys are in its own stack.json."""
    pid: int
    home: str
    storage_connection_string: str
    blob_endpoint: str
    registry: dict                    # name, container, root
    approval: str
    environments: dict[str, dict]     # name → home, containers, eventgrid_endpoint, functions_url, aml_url, scoring_uri
    started_at: str

    @classmethod
    def read(cls, home: StackHome) -> EnvironmentsInfo | None:
        path = home.path("environments.json")
        if not path.exists():
            return None
        info = cls(**json.loads(path.read_text()))
        return info if _alive(info.pid) else None


class Environments:
    """preprod and prod on one Azurite with a shared registry. start() returns once both serve; stop() stops
    both (preprod first: it publishes to prod) and then Azurite."""

    def __init__(self, home: StackHome, options: StackOptions | None = None, approval: str = "none",
                 registry: str = REGISTRY) -> None:
        if approval not in APPROVALS:
            raise StackError(f"approval {approval!r}: use {' or '.join(APPROVALS)}")
        self.home = home
        self.options = options or StackOptions()
        self.approval = approval
        self.registry_name = registry
        self.homes = {name: StackHome(home.root / name) for name in ENVIRONMENTS}
        self.stacks: dict[str, Stack] = {}
        self.infos: dict[str, StackInfo] = {}
        self.info: EnvironmentsInfo | None = None
        self.registry: SharedRegistry | None = None
        self._azurite: Azurite | None = None
        self._lock_file = None

    @property
    def info_path(self) -> Path:
        return self.home.path("environments.json")

    def settings(self, name: str, prod: StackInfo | None = None) -> dict[str, str]:
        """The app settings an environment adds to the user's (these win over them)."""
        if name == "prod":
            return {**PROD_CONTAINERS, "MLOPS_STAGE": "prod", "AZUREML_REGISTRY": self.registry_name,
                    "PROMOTION_APPROVAL": self.approval}
        if prod is None:
            raise StackError("preprod starts after prod: it publishes to prod's custom topic")
        return {"MLOPS_STAGE": "preprod", "AZUREML_REGISTRY": self.registry_name,
                "PROMOTION_TOPIC_ENDPOINT": prod.eventgrid_endpoint, "PROMOTION_TOPIC_KEY": prod.eventgrid_key}

    def start(self, progress=lambda message: None) -> EnvironmentsInfo:
        self.home.create()
        self._take_lock()
        try:
            return self._start(progress)
        except BaseException:
            self.stop()
            raise

    def _start(self, progress) -> EnvironmentsInfo:
        progress("starting Azurite (shared by preprod and prod)")
        self._azurite = Azurite(self.home.path("shared", "azurite"))
        storage = self._azurite.start()
        self.registry = SharedRegistry(self.home.path("shared", "registry"), storage.connection_string,
                                       self.registry_name)
        for name in ("prod", "preprod"):               # prod first: preprod is told prod's topic
            settings = self.settings(name, self.infos.get("prod"))
            options = replace(self.options, extra_settings={**self.options.extra_settings, **settings},
                              storage_prefix="prod" if name == "prod" else "",
                              resource_group=f"mlops-local-{name}")
            stack = self.stacks[name] = Stack(self.homes[name], options, azurite=storage,
                                              shared_registry=self.registry)
            self.infos[name] = stack.start(progress=lambda message, name=name: progress(f"{name}: {message}"))
        self.info = EnvironmentsInfo(
            pid=os.getpid(), home=str(self.home.root), storage_connection_string=storage.connection_string,
            blob_endpoint=storage.blob, approval=self.approval,
            registry={"name": self.registry.name, "container": self.registry.container,
                      "root": str(self.registry.root)},
            environments={name: self._summary(name) for name in ENVIRONMENTS}, started_at=utcnow())
        write_private(self.info_path, json.dumps(asdict(self.info), indent=2))
        return self.info

    def _summary(self, name: str) -> dict:
        info = self.infos[name]
        # the settings the app was given: the user's file with this environment's settings over it
        settings = json.loads(self.homes[name].path("functions", "settings.json").read_text())["Values"]
        containers = {setting: settings.get(setting, default) for setting, default in
                      (("DATA_CONTAINER", "data"), ("FEEDBACK_CONTAINER", "feedback"),
                       ("STATE_CONTAINER", "mlops-state"), ("DATA_COLLECTOR_CONTAINER", "azureml"))}
        return {"home": info.home, "stage": settings["MLOPS_STAGE"], "containers": containers,
                "eventgrid_endpoint": info.eventgrid_endpoint, "functions_url": info.functions_url,
                "aml_url": info.aml_url, "endpoint_name": info.endpoint_name, "scoring_uri": info.scoring_uri}

    def failure(self) -> str | None:
        """Why the environments can no longer work, if a part has died."""
        if self._azurite and self._azurite.process and self._azurite.process.poll() is not None:
            return f"Azurite exited with code {self._azurite.process.returncode}"
        for name, stack in self.stacks.items():
            failure = stack.failure()
            if failure:
                return f"{name}: {failure}"
        return None

    def stop(self) -> None:
        self.info_path.unlink(missing_ok=True)
        try:
            for name in ENVIRONMENTS:                  # preprod first: it publishes to prod
                stack = self.stacks.pop(name, None)
                if stack is not None:
                    try:
                        stack.stop()
                    except Exception:
                        log.exception("stopping %s failed", name)
        finally:
            if self._azurite is not None:
                self._azurite.stop()
                self._azurite = None
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def _take_lock(self) -> None:
        # the home's stack lock: a single stack and the environments never run from one home at once
        self._lock_file = open(self.home.lock, "a+")  # noqa: SIM115  (held open: the lock lives as long as they do)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            running = EnvironmentsInfo.read(self.home) or StackInfo.read(self.home)
            pid = f" (pid {running.pid})" if running else ""
            raise AlreadyRunning(f"a local stack is already running from {self.home.root}{pid}: "
                                 "use it (`mlops info`), or stop it with Ctrl-C in its terminal") from None

    def __enter__(self) -> EnvironmentsInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
