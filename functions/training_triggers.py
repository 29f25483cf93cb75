"""Timers that drive training: the retrain schedule and the reconcile tick; a forced retrain over HTTP,
and a person's decision on a model the gate held."""
import json
from datetime import UTC, datetime

import azure.functions as func

from lifecycle.bootstrap import platform
from lifecycle.handlers.reconcile import reconcile
from lifecycle.handlers.registration import review
from lifecycle.handlers.training import retrain_models
from lifecycle.model_scope import UnknownModel

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%")
def retrain_timer(timer: func.TimerRequest) -> None:
    retrain_models(platform(), datetime.now(UTC))


@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%")
def reconcile_timer(timer: func.TimerRequest) -> None:
    reconcile(platform(), datetime.now(UTC))


@bp.route(route="retrain", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def retrain_now(req: func.HttpRequest) -> func.HttpResponse:
    """Train now (?model=NAME, or every model); 202 with the jobs, 409 if there is no data to train on."""
    try:
        runs = retrain_models(platform(), datetime.now(UTC), forced=True, model=req.params.get("model", ""))
    except UnknownModel as error:
        return _json({"error": str(error)}, 404)
    if not runs:
        return _json({"job": None, "reason": "no data to train on"}, 409)
    jobs = [{"model": run.model_name, "job": run.job_name, "data": run.data_url, "files": len(run.data_files)}
            for run in runs]
    return _json({**jobs[0], "jobs": jobs}, 202)


@bp.route(route="decisions/{job}/{action}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def review_decision(req: func.HttpRequest) -> func.HttpResponse:
    """approve | reject a held model; who decides comes from App Service authentication, or ?by=."""
    action = req.route_params["action"]
    if action not in ("approve", "reject"):
        return _json({"error": f"unknown action {action!r}: approve or reject"}, 404)
    by = req.headers.get("x-ms-client-principal-name") or req.params.get("by")
    if not by:
        return _json({"error": "say who decides: sign in through App Service authentication, or add ?by=<name>"}, 400)
    try:
        decision = review(platform(), req.route_params["job"], approve=action == "approve", by=by)
    except ValueError as error:
        return _json({"error": str(error)}, 409)
    return _json({"job": decision.job_name, "outcome": decision.outcome, "version": decision.version or None,
                  "reviewed_by": decision.reviewed_by})


def _json(body: dict, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
