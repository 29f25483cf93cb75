"""Azure ML workspace events: training runs ending (and model monitor breaches), models registered."""
import azure.functions as func

from lifecycle import dispatch
from lifecycle.bootstrap import platform
from lifecycle.handlers.azureml_runs import run_completed, run_status_changed
from lifecycle.handlers.rollout import model_registered

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_run_completed(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, run_completed, platform)


@bp.event_grid_trigger(arg_name="event")
def on_run_status_changed(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, run_status_changed, platform)


@bp.event_grid_trigger(arg_name="event")
def on_model_registered(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, model_registered, platform)
