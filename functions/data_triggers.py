"""Data landing in blob storage (Event Grid BlobCreated on the data container)."""
import azure.functions as func

from lifecycle import dispatch
from lifecycle.bootstrap import platform
from lifecycle.handlers.data import data_arrived

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_data_arrived(event: func.EventGridEvent) -> None:
    dispatch.event_grid(event, data_arrived, platform)
