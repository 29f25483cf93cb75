"""One event of each decision kind, with data shaped as the steps publish it (lifecycle/steps/*)."""
from __future__ import annotations

import uuid

from lifecycle.core import incoming_events as events
from lifecycle.core import notifications as told

ROLLOUT = {"endpoint": "mlops-endpoint", "model": "tabular-classifier:3", "deployment": "green", "baseline": "blue",
           "baselineModel": "tabular-classifier:2", "phase": "", "step": 1, "reason": "", "judgement": {}}
SAMPLES: dict[str, tuple[str, dict]] = {
    told.TRAINING_STARTED: ("jobs/train-1", {"job": "train-1", "model": "tabular-classifier", "trigger": "data",
                                             "data": "http://127.0.0.1/data/", "newBatches": 2, "files": 5,
                                             "champion": "tabular-classifier:2"}),
    told.TRAINING_FAILED: ("jobs/train-1", {"job": "train-1", "model": "tabular-classifier", "status": "Failed",
                                            "error": "column label not found in loans/day1/part-0.csv",
                                            "retried": False}),
    told.MODEL_REGISTERED: ("jobs/train-1", {"job": "train-1", "model": "tabular-classifier", "version": "3",
                                             "reasons": ["f1 0.910 >= floor 0.6"], "metric": "f1",
                                             "metrics": {"f1": 0.91}, "champion": "tabular-classifier:2"}),
    told.MODEL_REJECTED: ("jobs/train-1", {"job": "train-1", "model": "tabular-classifier", "version": "",
                                           "reasons": ["f1 0.420 is below the floor 0.6"], "metric": "f1",
                                           "metrics": {"f1": 0.42}, "champion": ""}),
    told.MODEL_HELD: ("jobs/train-1", {"job": "train-1", "model": "tabular-classifier",
                                       "reasons": ["feature id alone scores 0.99: a leak?"]}),
    told.ROLLOUT_STARTED: ("endpoints/mlops-endpoint/rollouts/tabular-classifier:3", {**ROLLOUT, "phase": "deploying"}),
    told.MODEL_PROMOTED: ("endpoints/mlops-endpoint/rollouts/tabular-classifier:3",
                          {**ROLLOUT, "phase": "promoted", "reason": "no worse than blue at 100%"}),
    told.ROLLOUT_ROLLED_BACK: ("endpoints/mlops-endpoint/rollouts/tabular-classifier:3",
                               {**ROLLOUT, "phase": "rolled_back", "reason": "error rate 12% against 0%"}),
    told.MODEL_SHARED: ("registries/mlops-registry/models/tabular-classifier/versions/3",
                        {"registry": "mlops-registry", "model": "tabular-classifier", "version": "3",
                         "assetId": "azureml://registries/mlops-registry/models/tabular-classifier/versions/3",
                         "source": {}}),
    told.PROMOTION_AWAITING_APPROVAL: ("promotions/tabular-classifier:3",
                                       {"model": "tabular-classifier:3", "registry": "mlops-registry", "assetId": ""}),
    told.PROMOTION_APPROVED: ("promotions/tabular-classifier:3",
                              {"model": "tabular-classifier:3", "registry": "mlops-registry", "assetId": "",
                               "by": "ana", "reason": "approved by ana"}),
    told.PROMOTION_REJECTED: ("promotions/tabular-classifier:3",
                              {"model": "tabular-classifier:3", "registry": "mlops-registry", "assetId": "",
                               "by": "ana", "reason": "rejected by ana"}),
    told.DRIFT_DETECTED: ("/endpoints/mlops-endpoint/deployments/blue",
                          {"alertId": "mlops-endpoint/blue/data_drift", "condition": "Fired", "signal": "data_drift",
                           "summary": "income drifted (normalized Wasserstein 0.31 > 0.1)", "evidence": {},
                           "endpoint": "mlops-endpoint", "model": "tabular-classifier:2"}),
    told.PERFORMANCE_DEGRADED: ("/endpoints/mlops-endpoint/deployments/blue",
                                {"alertId": "mlops-endpoint/blue/concept_drift", "condition": "Fired",
                                 "signal": "concept_drift", "summary": "f1 0.61 against 0.85 on the holdout",
                                 "evidence": {}, "endpoint": "mlops-endpoint", "model": "tabular-classifier:2"}),
    told.TRAINING_SLOWED: ("jobs/train-7", {"job": "train-7", "model": "tabular-classifier", "trigger": "new_data",
                                            "signal": "training_slowed", "duration": "9m30s", "usual": "3m05s",
                                            "factor": "3.1", "durationSeconds": 570.0, "usualSeconds": 185.0}),
}
RESOLVED = ("/endpoints/mlops-endpoint/deployments/blue",
            {"alertId": "mlops-endpoint/blue/data_drift", "condition": "Resolved", "signal": "data_drift",
             "summary": "", "evidence": {}, "endpoint": "mlops-endpoint", "model": "tabular-classifier:2"})


def event(event_type: str, subject: str, data: dict, event_id: str = ""):
    """The event as the notify trigger receives it (parsed from the wire, as the Functions binding gives it)."""
    return events.parse({"id": event_id or str(uuid.uuid4()), "eventType": event_type, "subject": subject,
                         "eventTime": "2026-11-30T10:00:00Z", "dataVersion": "1.0", "data": data})


def sample(event_type: str, event_id: str = ""):
    subject, data = SAMPLES[event_type]
    return event(event_type, subject, data, event_id)
