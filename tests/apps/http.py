"""A small app for the Functions host tests: HTTP functions at each auth level."""
import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
received: list = []           # every func.HttpRequest the items function got


@app.route(route="hello", auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("hello")


@app.route(route="items/{id}", methods=["GET", "POST"])
def items(req: func.HttpRequest) -> func.HttpResponse:
    received.append(req)
    body = {"id": req.route_params["id"], "q": req.params.get("q"), "body": req.get_body().decode()}
    return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json",
                             headers={"X-Item": req.route_params["id"]})


@app.route(route="admin/reset", auth_level=func.AuthLevel.ADMIN)
def reset(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.route(route="whoami", auth_level=func.AuthLevel.ANONYMOUS)
async def whoami(req: func.HttpRequest, context: func.Context) -> str:
    return context.function_name


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("a secret detail")


@app.route(route="nothing", auth_level=func.AuthLevel.ANONYMOUS)
def nothing(req: func.HttpRequest) -> func.HttpResponse:
    return None
