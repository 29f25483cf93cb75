"""Where the dashboard's data comes from: the running stack's platform, or, when the stack has stopped, the last
status snapshot it left (`<home>/status.json`, written as the demo and `mlops up` stop). The server takes a
`Source` (a callable returning a `View`), so tests can hand it a fake platform or a snapshot."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from emulator.home import StackHome
from emulator.stack import StackInfo
from lifecycle.ports import Platform

SNAPSHOT_FILE = "status.json"


@dataclass(frozen=True)
class View:
    """What there is to show now: a running stack's platform (status read live, actions allowed), or the
    snapshot a stopped one left (read-only), or neither."""
    platform: Platform | None = None
    snapshot: dict | None = None           # collect()'s output, as the stack wrote it when it stopped
    written_at: str | None = None          # when it was written
    started_at: str | None = None          # the running stack's start

    @property
    def running(self) -> bool:
        return self.platform is not None


Source = Callable[[], View]


def read_snapshot(home: StackHome) -> View:
    """The snapshot at `<home>/status.json` ({"written_at": iso, "status": collect()'s output}), or an empty View."""
    path = home.path(SNAPSHOT_FILE)
    try:
        written = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return View()
    if not isinstance(written, dict) or not isinstance(written.get("status"), dict):
        return View()
    return View(snapshot=written["status"], written_at=written.get("written_at"))


def stack_source(home: StackHome) -> Source:
    """The stack at `home`: its platform while it runs (built once per start of the stack), else its snapshot."""
    lock = threading.Lock()
    cached: dict[tuple[int, str], Platform] = {}

    def view() -> View:
        info = StackInfo.read(home)
        if info is None:
            return read_snapshot(home)
        key = (info.pid, info.started_at)
        with lock:
            if key not in cached:
                from mlops.local import local_platform
                cached.clear()
                cached[key] = local_platform(home)
            return View(platform=cached[key], started_at=info.started_at)
    return view
