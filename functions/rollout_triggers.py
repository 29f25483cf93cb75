"""Rollout events advance rollouts at once (the reconcile timer advances them too), and a person can
steer a rollout over HTTP."""
import json

import azure.functions as func

from lifecycle import dispatch
from lifecycle.bootstrap import platform
from lifecycle.handlers.rollout import OVERRIDES, override, rollout_event

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_rollout_event(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, rollout_event, platform)


@bp.route(route="rollouts/{endpoint}/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def rollout_override(req: func.HttpRequest) -> func.HttpResponse:
    action = req.route_params["action"]
    if action not in OVERRIDES:
        return func.HttpResponse(json.dumps({"error": f"unknown rollout action {action!r}: {', '.join(OVERRIDES)}"}),
                                 status_code=404, mimetype="application/json")
    try:
        r = override(platform(), req.route_params["endpoint"], action)
    except ValueError as error:
        return func.HttpResponse(json.dumps({"error": str(error)}), status_code=409, mimetype="application/json")
    return func.HttpResponse(json.dumps({"endpoint": r.endpoint, "model": r.model, "phase": r.phase}),
                             mimetype="application/json")
