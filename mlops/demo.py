"""`make demo`: the lifecycle end to end on a fresh local stack, each step printed as it happens."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from emulator.home import StackHome
from emulator.stack import Stack, StackError, StackOptions
from emulator.timeline import Timeline
from mlops.demo_data import loan_csv

T = TypeVar("T")


class StepFailed(Exception):
    pass


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def run_demo(console: Console, timeout: float) -> int:
    home = StackHome.default()
    home = StackHome(home.root / "demo")
    shutil.rmtree(home.root, ignore_errors=True)   # a fresh stack each run, beside any `mlops up`
    stack = Stack(home, StackOptions.from_env())
    try:
        with console.status("starting the local stack") as status:
            info = stack.start(progress=status.update)
        console.print(f"[green]✓[/] local stack up: storage {info.blob_endpoint}, Event Grid {info.eventgrid_endpoint}, "
                      f"Functions {info.functions_url} ({len(info.functions)} functions)")
        _steps(console, info, Timeline(home.timeline), timeout)
    except (StepFailed, StackError) as error:
        console.print(f"[red]✗ {error}[/]")
        console.print(f"[dim]logs: {home.logs}, timeline: {home.timeline}[/]")
        return 1
    finally:
        with console.status("stopping the local stack"):
            stack.stop()
    console.print("[green]Demo finished.[/]")
    return 0


def _steps(console: Console, info, timeline: Timeline, timeout: float) -> None:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    from lifecycle.adapters.blob_state import BlobState
    from lifecycle.settings import Settings

    settings = Settings(storage_connection=info.storage_connection_string)
    state = BlobState(info.storage_connection_string, settings.state_container)
    blobs = BlobServiceClient.from_connection_string(info.storage_connection_string)
    data = blobs.get_container_client(settings.data_container)
    data.create_container()

    path = "loans/2026-11-01/part-0000.csv"
    data.upload_blob(path, loan_csv(2000, seed=1), content_settings=ContentSettings(content_type="text/csv"))
    console.print(f"[green]✓[/] dropped {settings.data_container}/{path} (2,000 rows)")
    delivered = wait_for("BlobCreated to reach on_data_arrived", lambda: next(
        (r for r in timeline.read() if r.function == "on_data_arrived" and r.outcome == "delivered"), None), timeout)
    console.print(f"[green]✓[/] Event Grid delivered {delivered.event_type} for {delivered.subject.split('/blobs/')[-1]} "
                  f"to {delivered.function} (attempt {delivered.attempt}, {delivered.duration_ms} ms)")
    batch = wait_for("the data batch to be recorded", lambda: next(iter(state.data_batches()), None), timeout)
    console.print(f"[green]✓[/] data batch {batch.batch_id} recorded: {batch.blob_path}, {batch.content_length:,} bytes, "
                  f"eTag {batch.etag}")
