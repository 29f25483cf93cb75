"""A function app whose one HTTP function never finishes on its own (as one retrying calls to a storage
account that has gone away): what the Functions host must not wait for when it is told to stop."""
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
_never = threading.Event()


@app.route(route="stuck")
def stuck(req: func.HttpRequest) -> func.HttpResponse:
    _never.wait(600)
    return func.HttpResponse("too late")
