"""The embedded local Azure: Azurite, the local Event Grid (topic endpoint, blob watcher, delivery)
and the local Functions host running the unchanged function app. `mlops up` runs one in the
foreground; tests start one per session. `mlops up --environments preprod,prod` runs two on one Azurite
(emulator/environments.py): a stack can be given an Azurite already running, and a prefix that keeps its
storage apart from the other's."""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from aiohttp import web

from emulator.aml.registry import CONTAINER as REGISTRY_CONTAINER
from emulator.aml.service import RESTORE_TIMEOUT, LocalAzureML
from emulator.aml.shared_registry import SharedRegistry
from emulator.azurite import PROJECT_ROOT, Azurite, AzuriteEndpoints
from emulator.eventgrid.blobwatch import SUBJECT_PREFIX, BlobWatcher
from emulator.eventgrid.broker import EventGrid, GridOptions
from emulator.eventgrid.resources import RESOURCE_GROUP, storage_topic, topic_ids
from emulator.eventgrid.routing import DEFAULT_TABLE, RoutingTable, load_routing_table
from emulator.eventgrid.topic import TopicEndpoint
from emulator.functions_host.loader import over_environment
from emulator.home import StackHome, make_private, write_private
from emulator.loop import BackgroundLoop
from emulator.loopback import serve_on_loopback
from emulator.processes import die_with_parent
from emulator.timeline import Timeline
from lifecycle.clock import utcnow

log = logging.getLogger("emulator.stack")


class StackError(RuntimeError):
    pass


class AlreadyRunning(StackError):
    pass


EXAMPLE_SETTINGS = PROJECT_ROOT / "local.settings.example.json"
# The app settings naming the containers that event subscriptions filter on, with the name the routing table uses.
WATCHED_CONTAINER_SETTINGS = {"DATA_CONTAINER": "data", "FEEDBACK_CONTAINER": "feedback"}


@dataclass(frozen=True)
class StackOptions:
    app: str = "function_app:app"
    routing_table: Path = DEFAULT_TABLE
    settings_file: Path | None = EXAMPLE_SETTINGS  # Functions' local.settings.json format: Values become app settings
    retry_scale: float = 1.0                   # compress Event Grid's retry schedule (e.g. 0.01)
    blob_poll_interval: float = 0.25
    extra_settings: dict[str, str] = field(default_factory=dict)
    # Several stacks on one Azurite: a prefix for the storage this stack's emulator keeps (Event Grid's
    # queues and spool, dead letters, the workspace registry's records), and a resource group for its ids.
    storage_prefix: str = ""
    resource_group: str = RESOURCE_GROUP

    @classmethod
    def from_env(cls, **overrides) -> StackOptions:
        scale = float(os.environ.get("MLOPS_EVENTGRID_RETRY_SCALE", "1"))
        settings = PROJECT_ROOT / "local.settings.json"
        defaults = {"retry_scale": scale, "settings_file": settings if settings.exists() else EXAMPLE_SETTINGS}
        return cls(**{**defaults, **{k: v for k, v in overrides.items() if v is not None}})


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to talk to a running stack; `mlops info --json` prints it."""
    pid: int
    home: str
    storage_connection_string: str
    blob_endpoint: str
    queue_endpoint: str
    eventgrid_endpoint: str
    eventgrid_key: str
    eventgrid_topics: dict[str, str]
    functions_url: str
    functions_key: str
    functions_master_key: str
    functions: list[dict]
    aml_url: str                      # the local Azure ML stand-in's API
    aml_key: str
    endpoint_name: str                # the app's online endpoint (ENDPOINT_NAME)
    scoring_uri: str
    started_at: str

    @classmethod
    def read(cls, home: StackHome) -> StackInfo | None:
        if not home.info.exists():
            return None
        info = cls(**json.loads(home.info.read_text()))
        if not _alive(info.pid):
            return None   # left behind by a stack that was killed
        return info


class Stack:
    def __init__(self, home: StackHome, options: StackOptions = StackOptions(), *,
                 azurite: AzuriteEndpoints | None = None, shared_registry: SharedRegistry | None = None) -> None:
        """`azurite`: an Azurite already running, used as is (and left running by stop()); by default the stack
        starts its own under its home. `shared_registry`: the Azure ML registry its stand-in shares models into
        and deploys them from."""
        self.home = home
        self.options = options
        self._given_azurite = azurite
        self._shared_registry = shared_registry
        self.info: StackInfo | None = None
        self._lock_file = None
        self._loop: BackgroundLoop | None = None
        self._azurite: Azurite | None = None
        self._host: subprocess.Popen | None = None
        self._runners: list[web.AppRunner] = []
        self._grid: EventGrid | None = None
        self._aml: LocalAzureML | None = None
        self._watcher: BlobWatcher | None = None
        self._watch_task = None

    # -- start ------------------------------------------------------------------------------
    def start(self, progress=lambda message: None) -> StackInfo:
        self.home.create()         # owner only: it holds keys and connection strings
        self._take_lock()
        try:
            return self._start(progress)
        except BaseException:
            self.stop()
            raise

    def _start(self, progress) -> StackInfo:
        # the user's settings yield to the environment (Core Tools' rule and warning); the stack's own
        # connections below never do
        app_settings = {**over_environment(self._file_settings(), warn=log.warning), **self.options.extra_settings}
        prefix = self.options.storage_prefix
        table = for_storage(load_routing_table(self.options.routing_table), app_settings, prefix)
        keys = self._keys()
        if self._given_azurite is not None:
            storage = self._given_azurite
        else:
            progress("starting Azurite")
            self._azurite = Azurite(self.home.azurite)
            storage = self._azurite.start()
        conn = storage.connection_string
        timeline = Timeline(self.home.timeline)

        progress("starting the local Event Grid")
        self._loop = BackgroundLoop("mlops-stack")
        ids = topic_ids(table, self.options.resource_group)
        self._grid = EventGrid(table, conn, topic_ids=ids, timeline=timeline,
                               options=GridOptions(retry_scale=self.options.retry_scale),
                               archive=self.home.path("eventgrid", "published.jsonl"), prefix=prefix)
        self._loop.run(self._grid.start())
        custom = [name for name, t in table.topics.items() if t.kind == "custom"]
        endpoint = TopicEndpoint(self._grid, keys["eventgrid_key"], custom[0] if custom else next(iter(ids)))
        runner, eventgrid_url = self._loop.run(serve_on_loopback(endpoint.make_app()))
        self._runners.append(runner)

        progress("starting the local Azure ML stand-in")
        self._aml = LocalAzureML(self.home.path("aml"), conn, self._grid, _workspace_topic(table), keys["aml_key"],
                                 collector_container=app_settings.get("DATA_COLLECTOR_CONTAINER") or "azureml",
                                 registry_container=f"{prefix}-{REGISTRY_CONTAINER}" if prefix else REGISTRY_CONTAINER,
                                 shared_registry=self._shared_registry)
        # Endpoints of an earlier run serve again before the Functions host can act on their traffic.
        self._loop.run(self._aml.start(RESTORE_TIMEOUT, progress), timeout=RESTORE_TIMEOUT + 60)
        failed = [f"{e}/{d.name}: {d.error}" for e, d in self._aml.restored if d.state == "Failed"]
        if failed:
            log.warning("restored deployment(s) failed to start:\n  %s", "\n  ".join(failed))

        progress(f"starting the Functions host ({self.options.app})")
        settings = {
            **app_settings,
            "AzureWebJobsStorage": conn,
            "MLOPS_PLATFORM": "local",
            "EVENTGRID_TOPIC_ENDPOINT": f"{eventgrid_url}/api/events",
            "EVENTGRID_TOPIC_KEY": keys["eventgrid_key"],
            "AML_LOCAL_URL": self._aml.url,
            "AML_LOCAL_KEY": keys["aml_key"],
            **self.options.extra_settings,
        }
        endpoint_name = settings.get("ENDPOINT_NAME", "mlops-endpoint")
        ready = self._start_functions_host(settings)
        host_keys = json.loads(self.home.path("functions", "keys.json").read_text())
        self._grid.attach_functions(ready["url"], host_keys["eventgrid_extension_key"])

        storage_name = storage_topic(table)
        if storage_name:
            self._watcher = BlobWatcher(self._grid, conn, storage_name, self.home.path("eventgrid", "blobwatch.json"),
                                        interval=self.options.blob_poll_interval)
            self._watch_task = self._loop.run(_spawn(self._watcher.run()))

        self.info = StackInfo(
            pid=os.getpid(), home=str(self.home.root), storage_connection_string=conn,
            blob_endpoint=storage.blob, queue_endpoint=storage.queue,
            eventgrid_endpoint=f"{eventgrid_url}/api/events", eventgrid_key=keys["eventgrid_key"],
            eventgrid_topics={name: f"{eventgrid_url}/topics/{name}/api/events" for name in ids},
            functions_url=ready["url"], functions_key=host_keys["function_key"],
            functions_master_key=host_keys["master_key"], functions=ready["functions"],
            aml_url=self._aml.url, aml_key=keys["aml_key"], endpoint_name=endpoint_name,
            scoring_uri=f"{self._aml.router_url}/endpoints/{endpoint_name}/score",
            started_at=utcnow(),
        )
        write_private(self.home.info, json.dumps(asdict(self.info), indent=2))    # holds every key
        return self.info

    def _start_functions_host(self, settings: dict[str, str]) -> dict:
        folder = self.home.path("functions")
        folder.mkdir(parents=True, exist_ok=True)
        ready_file = folder / "ready.json"
        ready_file.unlink(missing_ok=True)
        settings_file = folder / "settings.json"
        write_private(settings_file, json.dumps({"IsEncrypted": False, "Values": settings}, indent=2))
        self.home.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.home.logs / "functions.log"
        command = [sys.executable, "-m", "emulator.functions_host", "--app", self.options.app, "--port", "0",
                   "--settings-file", str(settings_file), "--keys-file", str(folder / "keys.json"),
                   "--ready-file", str(ready_file), "--timeline", str(self.home.timeline)]
        with log_path.open("ab") as log_file:
            # The settings file holds the values in effect already: the host must not weigh them against
            # the shell's environment a second time (a shell's real Azure connection would win over the stack's).
            environment = {name: value for name, value in os.environ.items() if name not in settings}
            self._host = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                          env=environment, start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 60
        while not ready_file.exists():
            if self._host.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
                raise StackError("the Functions host stopped during start-up:\n  " + "\n  ".join(tail))
            if time.monotonic() > deadline:
                raise StackError(f"the Functions host did not start within 60 s; see {log_path}")
            time.sleep(0.05)
        return json.loads(ready_file.read_text())

    def _file_settings(self) -> dict[str, str]:
        if not self.options.settings_file:
            return {}
        path = Path(self.options.settings_file)
        try:
            return dict(json.loads(path.read_text()).get("Values", {}))
        except (OSError, ValueError, AttributeError) as error:
            raise StackError(f"the settings file {path} cannot be read ({error}): give a file in "
                             "local.settings.json format ({\"IsEncrypted\": false, \"Values\": {...}}), "
                             "e.g. with `mlops up --settings FILE`") from None

    def _keys(self) -> dict[str, str]:
        # Kept across restarts, so clients configured once keep working.
        make_private(self.home.keys)           # an older version wrote it readable, then narrowed it
        keys = json.loads(self.home.keys.read_text()) if self.home.keys.exists() else {}
        missing = {name: secrets.token_urlsafe(32) for name in ("eventgrid_key", "aml_key") if name not in keys}
        if missing:
            keys.update(missing)
            write_private(self.home.keys, json.dumps(keys))
        return keys

    def _take_lock(self) -> None:
        self._lock_file = open(self.home.lock, "a+")  # noqa: SIM115  (held open: the lock lives as long as the stack)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            running = StackInfo.read(self.home)
            pid = f" (pid {running.pid})" if running else ""
            raise AlreadyRunning(f"a local stack is already running from {self.home.root}{pid}: "
                                 "use it (`mlops info`), or stop it with Ctrl-C in its terminal") from None

    # -- health and stop --------------------------------------------------------------------
    def failure(self) -> str | None:
        """Why the stack can no longer work, if a part of it has died."""
        if self._host is not None and self._host.poll() is not None:
            return (f"the Functions host exited with code {self._host.returncode}; "
                    f"see {self.home.logs / 'functions.log'}")
        if self._azurite and self._azurite.process and self._azurite.process.poll() is not None:
            return f"Azurite exited with code {self._azurite.process.returncode}"
        return None

    def stop(self) -> None:
        self.home.info.unlink(missing_ok=True)
        if self._host is not None and self._host.poll() is None:
            self._host.terminate()
            try:
                self._host.wait(15)
            except subprocess.TimeoutExpired:
                self._host.kill()
                self._host.wait()
        if self._loop is not None:
            try:
                self._loop.run(self._stop_async(), timeout=30)
            finally:
                self._loop.close()
                self._loop = None
        if self._azurite is not None:
            self._azurite.stop()
            self._azurite = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def _stop_async(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self._watcher is not None:
            await self._watcher.close()
        if self._aml is not None:
            await self._aml.close()
        for runner in self._runners:
            await runner.cleanup()
        if self._grid is not None:
            await self._grid.stop()

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def for_storage(table: RoutingTable, app_settings: dict[str, str], prefix: str = "") -> RoutingTable:
    """The routing table as this stack's storage names things: a subscription filtering on the data (or
    feedback) container filters on the container the app settings name; dead letters go to `<prefix>-<container>`.
    In Azure each environment has its own storage account; on one Azurite the names keep them apart."""
    renamed = {default: app_settings[setting] for setting, default in WATCHED_CONTAINER_SETTINGS.items()
               if app_settings.get(setting) and app_settings[setting] != default}
    subscriptions = []
    for sub in table.subscriptions:
        begins = sub.filter.subject_begins_with
        if begins.lower().startswith(SUBJECT_PREFIX.lower()):
            container, slash, rest = begins[len(SUBJECT_PREFIX):].partition("/")
            if container in renamed:
                sub = replace(sub, filter=replace(sub.filter,
                                                  subject_begins_with=f"{SUBJECT_PREFIX}{renamed[container]}{slash}{rest}"))
        if prefix and sub.dead_letter_container:
            sub = replace(sub, dead_letter_container=f"{prefix}-{sub.dead_letter_container}")
        subscriptions.append(sub)
    return RoutingTable(table.topics, tuple(subscriptions))


def _workspace_topic(table) -> str:
    for name, topic in table.topics.items():
        if (topic.topic_type or "").lower() == "microsoft.machinelearningservices.workspaces":
            return name
    raise StackError("the routing table has no Azure ML workspace topic (topicType "
                     "Microsoft.MachineLearningServices.Workspaces)")


async def _spawn(coro) -> asyncio.Task:
    return asyncio.get_running_loop().create_task(coro)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
