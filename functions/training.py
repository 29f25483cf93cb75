"""Timers that drive training: the retrain schedule and the reconcile tick; and a forced retrain over HTTP."""
import json
from datetime import datetime, timezone

import azure.functions as func

from lifecycle.bootstrap import platform
from lifecycle.handlers.reconcile import reconcile
from lifecycle.handlers.training import retrain_on_schedule

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%")
def retrain_timer(timer: func.TimerRequest) -> None:
    retrain_on_schedule(platform(), datetime.now(timezone.utc))


@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%")
def reconcile_timer(timer: func.TimerRequest) -> None:
    reconcile(platform(), datetime.now(timezone.utc))


@bp.route(route="retrain", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def retrain_now(req: func.HttpRequest) -> func.HttpResponse:
    run = retrain_on_schedule(platform(), datetime.now(timezone.utc), forced=True)
    body = {"job": run.job_name, "data": run.data_url} if run else {"job": None, "reason": "no data to train on"}
    return func.HttpResponse(json.dumps(body), status_code=202 if run else 409, mimetype="application/json")
