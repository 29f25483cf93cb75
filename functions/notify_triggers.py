"""Notifications: each decision on the app's MLOps.* topic posted to the webhooks NOTIFY_WEBHOOKS lists, in
its own function off the topic, so the deciding step never waits on a webhook."""
import azure.functions as func

from lifecycle.bootstrap import notifier
from lifecycle.core import incoming_events
from lifecycle.dispatch import Rejected, reject
from lifecycle.handlers.notify import notify

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_decision(event: func.EventGridEvent) -> None:
    n = notifier()
    try:
        notify(incoming_events.from_binding(event), n)
    except (incoming_events.EventParseError, Rejected) as error:
        reject(n, {"id": event.id, "eventType": event.event_type, "subject": event.subject,
                   "data": event.get_json()}, "on_decision", str(error))
