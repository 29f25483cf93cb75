"""A small app for the Functions host tests: what app settings the function code sees."""
import json
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="settings/{name}")
def setting(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(os.environ.get(req.route_params["name"])), mimetype="application/json")


@app.timer_trigger(arg_name="timer", schedule="%TEST_SCHEDULE%")
def on_schedule(timer: func.TimerRequest) -> None:
    pass
