"""A small app for the Functions host tests: Event Grid functions that record what they receive."""
import azure.functions as func

app = func.FunctionApp()
received: list = []           # every binding object on_event got, in order
received_async: list = []


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    received.append(event)


@app.event_grid_trigger(arg_name="event")
async def on_event_async(event: func.EventGridEvent) -> None:
    received_async.append(event)


@app.event_grid_trigger(arg_name="event")
def failing(event: func.EventGridEvent) -> None:
    raise ValueError(f"storage is down for {event.subject}")


@app.route(route="ping", auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
