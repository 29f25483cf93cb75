"""The monitor timer (and its HTTP twin): a monitoring pass over the live deployment's recent traffic."""
from __future__ import annotations

from datetime import datetime

from lifecycle.core.state_records import MonitorRun
from lifecycle.steps.monitoring_runs import MonitoringPorts, start_pass


def monitor(p: MonitoringPorts, now: datetime) -> MonitorRun | None:
    """Submit the window's monitoring job (or say why not) and return; the job's end event stores its result."""
    return start_pass(p, now)
