"""`mlops dashboard`: start the dashboard for a stack's home, print its URL with the key, serve until Ctrl-C."""
from __future__ import annotations

import threading

from rich.console import Console

from emulator.home import StackHome
from mlops.dashboard.server import Dashboard


def run_dashboard(home: StackHome, port: int = 0, key: str | None = None, console: Console | None = None,
                  stop: threading.Event | None = None) -> int:
    """Serve the dashboard of the stack at `home` on 127.0.0.1:`port` (0: a free port) behind `key` (None: a random
    one) until Ctrl-C (or `stop` is set); 0 then, 1 if it could not start (the port taken)."""
    console = console or Console()
    dashboard = Dashboard(home, port, key)
    try:
        dashboard.start()
    except OSError as error:
        console.print(f"[red]the dashboard could not listen on 127.0.0.1:{port}: {error.strerror or error}[/]")
        return 1
    console.print(f"dashboard: [bold]{dashboard.url}/?key={dashboard.key}[/]", soft_wrap=True)
    console.print(f"[dim]the key is in {dashboard.info_file} (owner only); Ctrl-C stops it[/]", soft_wrap=True)
    waiting = stop or threading.Event()
    try:
        while not waiting.wait(0.5):
            pass
    except KeyboardInterrupt:
        console.print("dashboard stopped")
    finally:
        dashboard.stop()
    return 0
