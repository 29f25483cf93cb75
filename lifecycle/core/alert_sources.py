"""Drift and performance alerts from every source, as one value the alert handler acts on.

Sources:
* our own monitor: `MLOps.DriftDetected` / `MLOps.PerformanceDegraded` (data: alertId, condition, ...);
* Azure ML's model monitor: a `RunStatusChanged` whose run carries the threshold-breach tag;
* Azure ML's legacy dataset monitor: `DatasetDriftDetected`;
* Azure Monitor alert rules through an action group, in the common alert schema over HTTP.

An alert's identity is its id plus its condition (Fired | Resolved): a redelivered alert has the same
identity, and a `Resolved` is a different one that starts nothing."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifecycle.core.incoming_events import DatasetDriftDetected, LifecycleEvent, RunStatusChanged
from lifecycle.core.policies import DRIFT, PERFORMANCE

DRIFT_DETECTED = "MLOps.DriftDetected"
PERFORMANCE_DEGRADED = "MLOps.PerformanceDegraded"
FIRED, RESOLVED = "Fired", "Resolved"
COMMON_ALERT_SCHEMA = "azureMonitorCommonAlertSchema"
# Each signal as the retrain trigger (RETRAIN_ON) it answers to; monitoring/monitor.py's table lists our own.
# Data quality and fairness are neither: retraining does not mend them (a person decides).
DRIFT_SIGNALS = frozenset({"data_drift", "prediction_drift", "multivariate_drift", "label_drift", "attribution_drift"})
PERFORMANCE_SIGNALS = frozenset({"concept_drift", "estimated_performance", "performance"})
NOT_MENDED_BY_RETRAINING = frozenset({"data_quality", "fairness", "training_slowed"})


class AlertError(ValueError):
    """A body that is not an alert this app understands: answered 400 and recorded, never retried."""


@dataclass(frozen=True)
class Alert:
    alert_id: str
    condition: str                  # Fired | Resolved
    source: str                     # monitor | azureml-model-monitor | azureml-dataset-monitor | azure-monitor
    signal: str                     # data_drift | performance | ...
    summary: str
    fired_at: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return f"{self.alert_id}|{self.condition}"

    @property
    def fired(self) -> bool:
        return self.condition == FIRED


def retrain_trigger(alert: Alert) -> str:
    """The RETRAIN_ON value an alert answers to: 'drift' (our drift signals, Azure ML's dataset drift, a model
    monitor's drift signals) or 'performance' (concept drift, estimated performance, Azure Monitor's metric
    and log alerts, a model monitor's performance signal); '' for data quality and fairness."""
    if alert.signal in NOT_MENDED_BY_RETRAINING:
        return ""
    if alert.signal in DRIFT_SIGNALS:
        return DRIFT
    if alert.signal in PERFORMANCE_SIGNALS or alert.source == "azure-monitor" or "performance" in alert.signal:
        return PERFORMANCE
    return DRIFT            # a model monitor's signal of another name, Azure ML's dataset drift


def from_event(event: object) -> Alert:
    """An alert from a parsed Event Grid event; AlertError for anything else."""
    if isinstance(event, LifecycleEvent) and event.event_type in (DRIFT_DETECTED, PERFORMANCE_DEGRADED):
        data = _caseless(event.data) if isinstance(event.data, Mapping) else {}
        signal = "data_drift" if event.event_type == DRIFT_DETECTED else "performance"
        condition = _condition(data.get("condition"), FIRED)
        if condition is None:
            raise AlertError(f"{event.event_type} {event.id!r}: condition {data.get('condition')!r} is neither "
                             f"{FIRED!r} nor {RESOLVED!r}")
        return Alert(alert_id=str(data.get("alertid") or f"{event.event_type}/{event.subject}"),
                     condition=condition, source="monitor",
                     signal=str(data.get("signal") or signal), summary=str(data.get("summary") or event.event_type),
                     fired_at=_iso(event.event_time),
                     evidence=dict(event.data) if isinstance(event.data, Mapping) else {})
    if isinstance(event, RunStatusChanged):
        if not event.monitor_breach:
            raise AlertError(f"run {event.run_id} ({event.run_status}) is not a model monitor breach")
        monitor = str(_caseless(event.run_tags).get("azureml.modelmonitor") or event.experiment_name)
        return Alert(alert_id=f"azureml-monitor/{event.run_id}", condition=FIRED, source="azureml-model-monitor",
                     signal=_signal_of(event.run_id), summary=(event.breach_message or "").strip().splitlines()[0],
                     fired_at=_iso(event.event_time), evidence={"monitor": monitor, "run_id": event.run_id,
                                                                 "message": event.breach_message})
    if isinstance(event, DatasetDriftDetected):
        return Alert(alert_id=f"dataset-drift/{event.data_drift_id}/{event.run_id}", condition=FIRED,
                     source="azureml-dataset-monitor", signal="data_drift",
                     summary=f"dataset drift {event.data_drift_name or event.data_drift_id}: "
                             f"drift coefficient {event.drift_coefficient:.3f}",
                     fired_at=_iso(event.event_time),
                     evidence={"drift_coefficient": event.drift_coefficient, "run_id": event.run_id,
                               "target_dataset_id": event.target_dataset_id,
                               "start_time": _iso(event.start_time), "end_time": _iso(event.end_time)})
    raise AlertError(f"{getattr(event, 'event_type', type(event).__name__)} is not an alert this app handles")


def from_common_schema(body: Any) -> Alert:
    """An Azure Monitor alert in the common alert schema (action group webhook)."""
    if not isinstance(body, Mapping):
        raise AlertError("the body must be a JSON object in Azure Monitor's common alert schema")
    doc = _caseless(body)
    if str(doc.get("schemaid") or "") != COMMON_ALERT_SCHEMA:
        raise AlertError(f"schemaId is {doc.get('schemaid')!r}: only {COMMON_ALERT_SCHEMA!r} is accepted "
                         "(turn on the common alert schema in the action group)")
    data = _caseless(doc.get("data") or {})
    essentials = _caseless(data.get("essentials") or {})
    alert_id = essentials.get("alertid")
    if not isinstance(alert_id, str) or not alert_id:
        raise AlertError("data.essentials.alertId is missing")
    condition = _condition(essentials.get("monitorcondition"), None)
    if condition is None:
        raise AlertError(f"data.essentials.monitorCondition is {essentials.get('monitorcondition')!r}: "
                         "expected 'Fired' or 'Resolved'")
    rule = str(essentials.get("alertrule") or "")
    return Alert(alert_id=alert_id, condition=condition, source="azure-monitor",
                 signal=str(essentials.get("signaltype") or "metric").lower(),
                 summary=f"{rule} ({essentials.get('severity') or 'no severity'}): {condition.lower()}",
                 fired_at=str(essentials.get("fireddatetime") or ""),
                 evidence={"alertRule": rule, "severity": essentials.get("severity"),
                           "alertTargetIDs": essentials.get("alerttargetids"),
                           "alertContext": data.get("alertcontext"),
                           "customProperties": data.get("customproperties")})


def _condition(value: Any, default: str | None) -> str | None:
    text = str(value or "").strip().lower()
    return {"fired": FIRED, "resolved": RESOLVED}.get(text, default if not text else None)


def _signal_of(run_id: str) -> str:
    # model monitor runs are named <monitor>-<time>-signal_<signal name>
    _, found, signal = run_id.rpartition("-signal_")
    return signal if found else "data_drift"


def _caseless(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")

