"""The events Azure ML's workspace system topic emits, in the real schema, for the local stand-in."""
from __future__ import annotations

import uuid

from emulator.eventgrid.schema import WireEvent, system_event

PREFIX = "Microsoft.MachineLearningServices."


def experiment_id(experiment: str) -> str:
    # Azure ML gives each experiment a GUID; a name-based UUID keeps it stable across restarts.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"azureml-experiment:{experiment}"))


def run_event(topic_id: str, event_type: str, job: dict) -> WireEvent:
    """RunCompleted or RunStatusChanged for a job record of the local job runner."""
    experiment = job["experiment"]
    data = {
        "experimentId": experiment_id(experiment),
        "experimentName": experiment,
        "runId": job["name"],
        "runType": "azureml.scriptrun",
        "runTags": dict(job.get("tags") or {}),
        "runProperties": {"mlops.error": job.get("error") or ""} if job.get("error") else {},
    }
    if event_type == "RunStatusChanged":
        data["runStatus"] = job["status"]
    return system_event(topic_id=topic_id, subject=f"experiments/{data['experimentId']}/runs/{job['name']}",
                        event_type=PREFIX + event_type, data=data, data_version="2")


def model_registered(topic_id: str, model: dict) -> WireEvent:
    data = {"modelName": model["name"], "modelVersion": model["version"], "modelTags": dict(model.get("tags") or {}),
            "modelProperties": dict(model.get("properties") or {})}
    return system_event(topic_id=topic_id, subject=f"models/{model['name']}:{model['version']}",
                        event_type=PREFIX + "ModelRegistered", data=data, data_version="2")
