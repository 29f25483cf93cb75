"""Monitoring and alerts: the monitor timer, alerts from Event Grid, Azure Monitor alerts over HTTP, and
a monitoring pass on demand."""
import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from lifecycle import dispatch
from lifecycle.bootstrap import platform
from lifecycle.core import alert_sources as alerts
from lifecycle.handlers.alerts import alert_event, common_schema_alert
from lifecycle.handlers.monitoring import monitor_models
from lifecycle.model_scope import UnknownModel

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%MONITOR_SCHEDULE%")
def monitor_timer(timer: func.TimerRequest) -> None:
    monitor_models(platform(), datetime.now(UTC))


@bp.route(route="monitor", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def monitor_now(req: func.HttpRequest) -> func.HttpResponse:
    """A monitoring pass now (?model=NAME, or every model): 202 with the submitted jobs (each run is stored when
    its job ends), 200 with passes already settled for this moment (or that found no collected data, with the
    warning), 409 if nothing is live to monitor."""
    try:
        runs = monitor_models(platform(), datetime.now(UTC), req.params.get("model", ""))
    except UnknownModel as error:
        return _answer({"error": str(error)}, 404)
    if not runs:
        return _answer({"run": None, "reason": "nothing to monitor yet: see the function's log"}, 409)
    passes = [{"run": run.run_id, "job": run.job or None, "status": run.status, "model": run.model,
               "deployment": run.deployment, "alerts": list(run.alerts), "warning": run.warning or None}
              for run in runs]
    return _answer({**passes[0], "passes": passes}, 202 if any(r.status == "Submitted" for r in runs) else 200)


def _answer(body: dict[str, Any], status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@bp.event_grid_trigger(arg_name="event")
def on_alert_event(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, alert_event, platform)


@bp.route(route="alerts", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def azure_monitor_alert(req: func.HttpRequest) -> func.HttpResponse:
    """An Azure Monitor action group's webhook, in the common alert schema."""
    p = platform()
    try:
        body = req.get_json()
    except (ValueError, RecursionError):     # not JSON, or nested too deep to parse: a 400 below
        body = None
    try:
        record = common_schema_alert(body, p, datetime.now(UTC))
    except alerts.AlertError as error:
        dispatch.reject(p, {"id": _header_id(req), "eventType": "AzureMonitorAlert", "data": body},
                        "azure_monitor_alert",
                        str(error))
        return func.HttpResponse(json.dumps({"error": str(error)}), status_code=400, mimetype="application/json")
    return func.HttpResponse(json.dumps({"alert": record.alert_id, "condition": record.condition,
                                         "outcome": record.outcome, "detail": record.detail,
                                         "job": record.job or None}),
                             status_code=202, mimetype="application/json")


def _header_id(req: func.HttpRequest) -> str:
    from uuid import uuid4
    return req.headers.get("x-ms-request-id") or req.headers.get("x-request-id") or str(uuid4())
