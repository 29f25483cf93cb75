"""Data landing in blob storage (Event Grid BlobCreated on the data container)."""
import azure.functions as func

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_data_arrived(event: func.EventGridEvent) -> None:
    from lifecycle import events, handlers
    from lifecycle.bootstrap import platform
    handlers.data.data_arrived(events.from_binding(event), platform())
