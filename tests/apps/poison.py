"""A small app for the malformed-request corpus (tests/emulator/poison_http_cases.py): an Event Grid function
that records, one that always raises, and HTTP functions behind the function key."""
import json
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
received: list = []           # every binding object `record` got, in order
_lock = threading.Lock()


@app.event_grid_trigger(arg_name="event")
def record(event: func.EventGridEvent) -> None:
    with _lock:
        received.append(event)


@app.event_grid_trigger(arg_name="event")
def failing(event: func.EventGridEvent) -> None:
    raise RuntimeError(f"the store is down for {event.id}")


@app.route(route="orders/{id:int}", methods=["GET", "POST"])
def orders(req: func.HttpRequest) -> func.HttpResponse:
    """Echoes the order; a POST body must be JSON (get_json raises ValueError otherwise: a real failure)."""
    body = req.get_json() if req.method == "POST" else None
    return func.HttpResponse(json.dumps({"id": int(req.route_params["id"]), "body": body}),
                             mimetype="application/json")


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"{len(req.get_body())} bytes")


def reset() -> None:
    with _lock:
        received.clear()
