"""Alerts in: from Event Grid (our monitor, Azure ML's monitors) and from Azure Monitor's action groups."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from lifecycle import clock
from lifecycle.core import alert_sources
from lifecycle.core.state_records import AlertRecord
from lifecycle.dispatch import Rejected
from lifecycle.steps.alert_response import AlertPorts, handle_alert


def alert_event(event: object, p: AlertPorts, now: datetime | None = None) -> AlertRecord:
    """Event Grid: MLOps.DriftDetected / PerformanceDegraded, DatasetDriftDetected."""
    try:
        alert = alert_sources.from_event(event)
    except alert_sources.AlertError as error:
        raise Rejected(str(error)) from None
    return handle_alert(alert, p, now or clock.now())


def common_schema_alert(body: Any, p: AlertPorts, now: datetime) -> AlertRecord:
    """An Azure Monitor alert in the common alert schema; AlertError for a body that is not one."""
    return handle_alert(alert_sources.from_common_schema(body), p, now)
