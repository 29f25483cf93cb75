"""The dashboard's web server: aiohttp on 127.0.0.1, on its own thread and event loop, behind a key.

- `GET /` the page (static/), `GET /static/{app.js,app.css}` its script and style, nothing else.
- `GET /api/status`: exactly `mlops.status.collect(platform)` (what `mlops status --json` prints), or the stopped
  stack's last snapshot; `GET /api/info`: where that came from (running, or the snapshot and when it was written).
- `GET /api/events?type=&function=&outcome=&since=&ticks=0|1&limit=`: the delivery timeline, filtered.
- `GET /api/stream`: server-sent events, `timeline` when the timeline file grows and `status` when the status
  changes, so the page refreshes without a reload.
- `POST /api/rollouts/{endpoint}/{pause|resume|promote|rollback}`, `POST /api/promotions/{model}/{approve|reject}`,
  `POST /api/jobs/{job}/{approve|reject}`: the functions `mlops rollout`, `mlops promote` and `mlops approve|reject`
  call. A ValueError (nothing to act on) answers 409 with its message; so does any action on a stopped stack.

The key: `Authorization: Bearer <key>`, or `?key=<key>` (the page's first load, which sets an HttpOnly,
SameSite=Strict cookie and redirects to the page without it), or that cookie. A wrong or missing one gets 401."""
from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator.home import StackHome, write_private
from emulator.loop import BackgroundLoop
from emulator.loopback import serve_on_loopback
from emulator.timeline import Timeline
from lifecycle.clock import now as clock_now
from lifecycle.core.times import iso
from mlops.dashboard.events import DEFAULT_LIMIT, listing
from mlops.dashboard.source import Source, View, stack_source
from mlops.events_view import Filters

log = logging.getLogger("mlops.dashboard")

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
COOKIE = "mlops_dashboard_key"
INFO_FILE = "dashboard.json"
ROLLOUT_ACTIONS = ("pause", "resume", "promote", "rollback")
REVIEW_ACTIONS = ("approve", "reject")
NOT_RUNNING = "the stack is not running: the dashboard shows its last snapshot, read-only"
HEADERS = {
    # the page's own script and style only; nothing from elsewhere, no inline script
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_dumps = partial(json.dumps, default=str)
_STATE: web.AppKey[_State] = web.AppKey("state")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


class _State:
    def __init__(self, home: StackHome, key: str, source: Source, poll_interval: float, status_interval: float):
        self.home, self.key, self.source = home, key, source
        self.poll_interval, self.status_interval = poll_interval, status_interval
        self.subscribers: set[asyncio.Queue] = set()
        self.status_due = asyncio.Event()        # an action changed something: read the status again now
        # the status the watcher read last (when, the view, the status): what the page asks for next, at once
        self.latest: tuple[float, View, dict | None] | None = None
        self.closing = False

    def broadcast(self, name: str, data: dict) -> None:
        for queue in list(self.subscribers):
            queue.put_nowait((name, data))


def _given_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("key") or request.cookies.get(COOKIE) or ""


@web.middleware
async def _guard(request: web.Request, handler: Callable) -> web.StreamResponse:
    state = request.app[_STATE]
    if not secrets.compare_digest(_given_key(request).encode(), state.key.encode()):
        if request.path.startswith("/api/"):
            response: web.StreamResponse = _error("wrong or missing key: send Authorization: Bearer <key> "
                                                  "(the key is in the dashboard's dashboard.json)", 401)
        else:
            response = web.Response(status=401, text="wrong key: open the URL `mlops dashboard` printed, with its "
                                                      "?key=\n", content_type="text/plain")
    elif request.method == "POST" and request.headers.get("Origin") not in (None, f"http://{request.host}"):
        response = _error("cross-origin request refused", 403)
    elif request.method == "GET" and request.path == "/" and "key" in request.query:
        # the first load: the key goes into a cookie, and out of the address bar and the history
        response = web.Response(status=302, headers={"Location": "/"})
        response.set_cookie(COOKIE, state.key, httponly=True, samesite="Strict", path="/")
    else:
        response = await handler(request)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _blocking(fn: Callable, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _status_of(view: View) -> dict | None:
    from mlops.status import collect
    if view.platform is not None:
        return collect(view.platform)
    return view.snapshot


def _info(state: _State, view: View) -> dict:
    return {"running": view.running, "snapshot": not view.running and view.snapshot is not None,
            "written_at": view.written_at, "started_at": view.started_at, "home": str(state.home.root)}


async def _page(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html", charset="utf-8")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        return web.Response(status=404, text="not found")
    return web.Response(body=(STATIC / name).read_bytes(), content_type=ASSETS[name], charset="utf-8")


async def _no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _api_info(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    return _json(_info(state, await _blocking(state.source)))


async def _api_status(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    fresh = state.latest
    try:
        if fresh is not None and asyncio.get_running_loop().time() - fresh[0] < state.status_interval:
            view, status = fresh[1], fresh[2]        # the watcher's read that told the page to ask: not read twice
        else:
            view = await _blocking(state.source)
            status = await _blocking(_status_of, view)
    except Exception as error:       # the stack went away mid-read, Azurite is slow: say so, the page retries
        log.warning("dashboard status: %s", error)
        return _error(f"could not read the status: {error}", 503)
    if status is None:
        return _error(f"no stack is running at {state.home.root} and it left no status snapshot", 503)
    return _json(status)


async def _api_events(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    query = request.query
    try:
        filters = Filters.parse(query.get("type"), query.get("function"), query.get("outcome"),
                                query.get("since", "").strip() or None, query.get("ticks", "0") in ("1", "true", "yes"),
                                clock_now())
        limit = int(query.get("limit") or DEFAULT_LIMIT)
    except ValueError as error:                 # BadFilter is one
        return _error(f"bad filter: {error}", 400)
    records = await _blocking(lambda: list(Timeline(state.home.timeline).read()))
    return _json(listing(records, filters, limit))


async def _api_stream(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue()
    state.subscribers.add(queue)
    state.status_due.set()
    try:
        await response.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 15)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            name, data = item
            await response.write(f"event: {name}\ndata: {_dumps(data)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        state.subscribers.discard(queue)
    return response


async def _act(request: web.Request, action: Callable[[Any, str], Any]) -> web.Response:
    state = request.app[_STATE]
    view = await _blocking(state.source)
    if view.platform is None:
        return _error(NOT_RUNNING, 409)
    by = ""
    if request.can_read_body:
        try:
            body = await request.json()
            by = str(body.get("by") or "") if isinstance(body, dict) else ""
        except ValueError:
            pass
    try:
        done = await _blocking(action, view.platform, by or getpass.getuser())
    except (ValueError, RuntimeError) as error:     # nothing to act on, or it moved meanwhile (as the CLI says)
        return _error(str(error), 409)
    state.latest = None                          # what the action changed is read anew
    state.status_due.set()
    return _json({"ok": True, "result": asdict(done) if is_dataclass(done) and not isinstance(done, type) else done})


async def _api_rollout(request: web.Request) -> web.Response:
    endpoint, action = request.match_info["endpoint"], request.match_info["action"]
    if action not in ROLLOUT_ACTIONS:
        return _error(f"unknown action {action!r}: {', '.join(ROLLOUT_ACTIONS)}", 404)

    def act(p, by):
        from lifecycle.handlers import rollout
        return rollout.override(p, endpoint, action)
    return await _act(request, act)


def _review_route(subject: str, handler: str):
    """A person's approve | reject of what `subject` names in the route (a promotion's model, a held job's job),
    through lifecycle.handlers.<handler>.review, as the CLI's `mlops promote` and `mlops approve|reject`."""
    async def review_api(request: web.Request) -> web.Response:
        named, action = request.match_info[subject], request.match_info["action"]
        if action not in REVIEW_ACTIONS:
            return _error(f"unknown action {action!r}: approve or reject", 404)

        def act(p, by):
            from lifecycle.handlers import promotion, registration
            approve = action == "approve"
            if handler == "promotion":
                return promotion.review(p, named, approve=approve, by=by)
            return registration.review(p, named, approve=approve, by=by)
        return await _act(request, act)
    return review_api


def _digest(view: View, status: dict | None) -> str:
    shown = {"info": [view.running, view.written_at, view.started_at], "status": status}
    return hashlib.sha256(_dumps(shown, sort_keys=True).encode()).hexdigest()


async def _watch_timeline(state: _State) -> None:
    """Tell the subscribers when the timeline file grows: its size, every poll_interval (never held up by a status
    read, which can take seconds)."""
    size = -1
    while not state.closing:
        try:
            grown = state.home.timeline.stat().st_size
        except OSError:
            grown = 0
        if grown != size:
            if size >= 0:
                state.broadcast("timeline", {"size": grown})
            size = grown
        await asyncio.sleep(state.poll_interval)


async def _watch_status(state: _State) -> None:
    """Tell the subscribers when the status changes: read every status_interval while anyone listens, and at once
    after an action."""
    digest = ""
    loop = asyncio.get_running_loop()
    next_status = 0.0
    while not state.closing:
        due = state.status_due.is_set()
        state.status_due.clear()
        if state.subscribers and (due or loop.time() >= next_status):
            next_status = loop.time() + state.status_interval
            try:
                view = await _blocking(state.source)
                status = await _blocking(_status_of, view)
                changed = _digest(view, status)
            except Exception as error:
                log.debug("dashboard watch: %s", error)
            else:
                state.latest = (loop.time(), view, status)
                if changed != digest:
                    if digest:
                        state.broadcast("status", {"running": view.running})
                    digest = changed
        try:
            await asyncio.wait_for(state.status_due.wait(), state.poll_interval)
        except TimeoutError:
            pass


def build_app(home: StackHome, key: str, source: Source, poll_interval: float = 0.5,
              status_interval: float = 2.0) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[_STATE] = state = _State(home, key, source, poll_interval, status_interval)
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _asset)
    app.router.add_get("/favicon.ico", _no_content)
    app.router.add_get("/api/info", _api_info)
    app.router.add_get("/api/status", _api_status)
    app.router.add_get("/api/events", _api_events)
    app.router.add_get("/api/stream", _api_stream)
    app.router.add_post("/api/rollouts/{endpoint}/{action}", _api_rollout)
    app.router.add_post("/api/promotions/{model}/{action}", _review_route("model", "promotion"))
    app.router.add_post("/api/jobs/{job}/{action}", _review_route("job", "registration"))

    async def start_watching(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        watchers = {loop.create_task(_watch_timeline(state)), loop.create_task(_watch_status(state))}
        app.on_cleanup.append(lambda _: _end(state, watchers))

    async def end_streams(app: web.Application) -> None:
        for queue in list(state.subscribers):
            queue.put_nowait(None)
    app.on_startup.append(start_watching)
    app.on_shutdown.append(end_streams)
    return app


async def _end(state: _State, watchers: set[asyncio.Task]) -> None:
    """Let the watchers finish their round (a status read in flight included), cancel them if that takes too long."""
    state.closing = True
    state.status_due.set()
    _, pending = await asyncio.wait(watchers, timeout=5)
    for watcher in pending:
        watcher.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1)


class Dashboard:
    """The dashboard for the stack at `home`, on 127.0.0.1:`port` (0: a free one), behind `key` (None: a random
    one). `source`: where the data comes from (default: the stack's platform while it runs, else its snapshot).
    start() returns once it listens and writes `<home>/dashboard.json` (url, port, key; owner only); stop() ends
    it and removes that file."""

    def __init__(self, home: StackHome, port: int = 0, key: str | None = None, *, source: Source | None = None,
                 poll_interval: float = 0.5, status_interval: float = 2.0) -> None:
        self.home = home
        self.port = port
        self.key = key or secrets.token_urlsafe(24)
        self.url = ""
        self._source = source or stack_source(home)
        self._intervals = (poll_interval, status_interval)
        self._loop: BackgroundLoop | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    @property
    def info_file(self) -> Path:
        return self.home.path(INFO_FILE)

    def start(self) -> Dashboard:
        with self._lock:
            if self._loop is not None:
                return self
            loop = BackgroundLoop("mlops-dashboard")
            app = build_app(self.home, self.key, self._source, *self._intervals)
            try:
                self._runner, self.url = loop.run(serve_on_loopback(app, self.port))
            except BaseException:
                loop.close()
                raise
            self._loop = loop
            self.port = int(self.url.rsplit(":", 1)[1])
            self.home.create()
            write_private(self.info_file, json.dumps({"url": self.url, "port": self.port, "key": self.key,
                                                      "pid": os.getpid(), "started_at": iso(clock_now())}, indent=2))
            return self

    def stop(self) -> None:
        with self._lock:
            loop, runner, self._loop, self._runner = self._loop, self._runner, None, None
            if loop is None:
                return
            try:
                if runner is not None:
                    loop.run(runner.cleanup(), timeout=15)
            finally:
                loop.close()
                try:
                    if json.loads(self.info_file.read_text()).get("key") == self.key:
                        self.info_file.unlink()
                except (OSError, ValueError):
                    pass

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
