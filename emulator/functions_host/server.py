"""The local Functions host: one aiohttp server on 127.0.0.1 that serves the app's HTTP functions, the
Event Grid extension's webhook and the host's admin/status routes, and runs the app's timers.

It stands in for the Functions host + Core Tools, which cannot be installed here. The app object is
used as is: triggers come from app.get_functions(), bindings are azure-functions' own types."""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from emulator.timeline import Timeline

from .http_trigger import PREFIX, HttpTriggers
from .invoker import Invoker
from .keys import ADMIN, HostKeys, unauthorized
from .loader import TIMER, FunctionSpec, HostError, apply_settings, index_functions, load_app
from .timers import Timers
from .webhook import PATH as WEBHOOK_PATH
from .webhook import EventGridWebhook

__all__ = ["FunctionsHost", "HostError", "HostKeys", "load_app"]

log = logging.getLogger("emulator.functions_host")
STOP_GRACE_SECONDS = 5.0              # how long stop() waits for running invocations
MAX_REQUEST_BYTES = 100 * 1024 * 1024  # the Functions host's HTTP request limit


class FunctionsHost:
    def __init__(self, app: Any, *, keys: HostKeys, settings: Mapping[str, str] | None = None,
                 host: str = "127.0.0.1", port: int = 0, timeline: Timeline | None = None,
                 max_workers: int = 8) -> None:
        if not _is_loopback(host):
            raise HostError(f"the local Functions host binds loopback only, not {host!r}; use 127.0.0.1")
        self.app = app
        self.keys = keys
        self.url = ""
        self._settings = dict(settings or {})
        self._host, self._port = host, port
        self.timeline = timeline          # where timer and HTTP invocations are recorded
        self._max_workers = max_workers
        self._specs: list[FunctionSpec] | None = None
        self._invoker: Invoker | None = None
        self._timers: Timers | None = None
        self._runner: web.AppRunner | None = None

    def functions(self) -> list[dict[str, Any]]:
        """Each function and its trigger, e.g. {"name", "trigger": "timerTrigger", "schedule", ...}."""
        return [spec.describe() for spec in self._index()]

    def webhook_url(self, function_name: str) -> str:
        """Where an Event Grid subscription delivers to this function (with the extension's key)."""
        return (f"{self.url}{WEBHOOK_PATH}?functionName={quote(function_name)}"
                f"&code={quote(self.keys.eventgrid_extension_key)}")

    async def start(self) -> None:
        if self._runner is not None:
            raise HostError("the Functions host is already started")
        apply_settings(self._settings)
        specs = self._index()
        self._invoker = Invoker(self._max_workers)
        runner = web.AppRunner(self._web_app(specs, self._invoker), access_log=None, handle_signals=False,
                               shutdown_timeout=STOP_GRACE_SECONDS)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            self._invoker.close()
            raise HostError(f"cannot listen on {self._host}:{self._port}: {exc}; pick another port "
                            f"(0 chooses a free one)") from exc
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        self._timers = Timers([s for s in specs if s.trigger == TIMER], self._invoker, self.timeline)
        self._timers.start()
        log.info("Functions host listening on %s with %d function(s): %s", self.url, len(specs),
                 ", ".join(f"{s.name} ({s.trigger})" for s in specs) or "none")

    async def stop(self) -> None:
        if self._timers is not None:
            await self._timers.stop()
            self._timers = None
        if self._runner is not None:
            await self._runner.cleanup()     # stops listening; waits for requests in flight
            self._runner = None
        if self._invoker is not None:
            await self._invoker.drain(STOP_GRACE_SECONDS)
            self._invoker.close()
            self._invoker = None

    def _index(self) -> list[FunctionSpec]:
        if self._specs is None:
            self._specs = index_functions(self.app, self._settings)
        return self._specs

    def _web_app(self, specs: list[FunctionSpec], invoker: Invoker) -> web.Application:
        webhook = EventGridWebhook({s.name: s for s in specs}, self.keys, invoker, self.timeline)
        http = HttpTriggers(specs, self.keys, invoker, self.timeline)
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_get("/", _home)
        app.router.add_get("/admin/host/status", self._status)
        app.router.add_route("POST", WEBHOOK_PATH, webhook.handle)
        app.router.add_route("OPTIONS", WEBHOOK_PATH, webhook.handle)
        app.router.add_route("*", PREFIX + "/{tail:.*}", http.handle)
        return app

    async def _status(self, request: web.Request) -> web.Response:
        if not self.keys.allows(request, ADMIN):
            return unauthorized()
        return web.json_response({"state": "Running", "functions": self.functions()})


async def _home(request: web.Request) -> web.Response:
    return web.Response(text="Functions host is running")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
