"""The function app the latency benchmark hosts: each function notes when it was invoked."""
import os
import time

import azure.functions as func

app = func.FunctionApp()


def _note(event_id: str) -> None:
    with open(os.environ["BENCH_LOG"], "a") as log:
        log.write(f"{event_id} {time.time():.6f}\n")


@app.event_grid_trigger(arg_name="event")
def ping(event: func.EventGridEvent) -> None:
    _note(event.id)


@app.event_grid_trigger(arg_name="event")
def blob_landed(event: func.EventGridEvent) -> None:
    _note(event.subject.rsplit("/", 1)[-1])
