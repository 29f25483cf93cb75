"""Promotion to production: a model promoted in preprod goes into the registry, production rolls out what
it is told of, and a person approves or rejects a promotion over HTTP (or `mlops promote`)."""
import json

import azure.functions as func

from lifecycle import dispatch
from lifecycle.bootstrap import platform
from lifecycle.handlers.promotion import model_promoted, model_shared, review

bp = func.Blueprint()
ACTIONS = ("approve", "reject")


@bp.event_grid_trigger(arg_name="event")
def on_model_promoted(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, model_promoted, platform)


@bp.event_grid_trigger(arg_name="event")
def on_model_shared(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, model_shared, platform)


@bp.route(route="promotions/{model}/{version}/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def promotion_review(req: func.HttpRequest) -> func.HttpResponse:
    """approve | reject a promotion awaiting approval; who decides comes from App Service authentication,
    or ?by=."""
    action = req.route_params["action"]
    if action not in ACTIONS:
        return _json({"error": f"unknown action {action!r}: approve or reject"}, 404)
    by = req.headers.get("x-ms-client-principal-name") or req.params.get("by")
    if not by:
        return _json({"error": "say who decides: sign in through App Service authentication, or add ?by=<name>"}, 400)
    ref = f"{req.route_params['model']}:{req.route_params['version']}"
    try:
        promotion = review(platform(), ref, approve=action == "approve", by=by)
    except ValueError as error:
        return _json({"error": str(error)}, 409)
    return _json({"model": promotion.model, "status": promotion.status, "decided_by": promotion.decided_by})


def _json(body: dict, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
