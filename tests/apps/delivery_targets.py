"""A function app for the local Event Grid's delivery tests: functions that record, fail, or fail for a while."""
import collections
import threading

import azure.functions as func

app = func.FunctionApp()

received: list[func.EventGridEvent] = []
attempts: collections.Counter = collections.Counter()
_lock = threading.Lock()


@app.event_grid_trigger(arg_name="event")
def record(event: func.EventGridEvent) -> None:
    with _lock:
        received.append(event)


@app.event_grid_trigger(arg_name="event")
def record_big(event: func.EventGridEvent) -> None:
    with _lock:
        received.append(event)


@app.event_grid_trigger(arg_name="event")
def flaky(event: func.EventGridEvent) -> None:
    """Fails the first two deliveries of each event, then succeeds."""
    with _lock:
        attempts[event.id] += 1
        count = attempts[event.id]
    if count < 3:
        raise RuntimeError(f"transient failure {count} for {event.id}")
    with _lock:
        received.append(event)


@app.event_grid_trigger(arg_name="event")
def broken(event: func.EventGridEvent) -> None:
    with _lock:
        attempts[event.id] += 1
    raise ValueError("this function always fails")


def reset() -> None:
    with _lock:
        received.clear()
        attempts.clear()
