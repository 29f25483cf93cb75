"""The stand-in's MLflow tracking store, as an Azure ML workspace keeps one: `file:<stand-in root>/mlruns`
(`mlflow ui --backend-store-uri` it, or `mlops runs`).

One run per job (experiment = the job's experiment, run name = the job's name, tags = its tags plus
mlops.job_name and mlops.data), created when the job starts; a pipeline job's steps are child runs. The job's
process gets MLFLOW_TRACKING_URI / MLFLOW_RUN_ID / MLFLOW_EXPERIMENT_ID (Azure ML sets these for a job) and
MLFLOW_ALLOW_FILE_STORE, so training/run_log.py logs into its run. At the end the run takes the job's status
and its compute.* metrics. A model version registered in the stand-in is created in the store's model registry
too, linked to the job's run.

Every call is blocking (file I/O, and the first one imports mlflow, ~1 s): the stand-in calls them in a thread.
Tracking is best effort, as the job's own logging is: a failure is logged as a warning and returns None; it
never fails a job or a registration."""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from lifecycle.core.platform_values import seconds_between

log = logging.getLogger("emulator.aml.tracking")
STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}     # Azure ML's → MLflow's
JOB_TAGS = ("mlops.trigger", "mlops.model_name", "mlops.data_batches", "mlops.champion", "mlops.task")
MB = 1024 * 1024


class Tracking:
    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        self.uri = "file:" + str(self.store.resolve())
        self._lock = threading.Lock()          # one writer at a time: experiments are created once
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            # the file store opens only with this set; the jobs' processes get it in their env too
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            from mlflow.tracking import MlflowClient
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def env(self, run_id: str, experiment_id: str) -> dict[str, str]:
        """What the job's process needs to log into its run."""
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment_id,
                "MLFLOW_ALLOW_FILE_STORE": "true"}

    # -- runs ------------------------------------------------------------------------------------------
    def start_run(self, job: dict, step: dict | None = None) -> tuple[str, str] | None:
        """Create the job's run (or, with `step`, the step's child run of the job's run): (run id, experiment
        id), or None if the store cannot be written."""
        try:
            with self._lock:
                client = self.client()
                experiment_id = self._experiment(client, job.get("experiment") or "Default")
                if step is None:
                    tags = {**{k: str(v) for k, v in (job.get("tags") or {}).items()}, "mlops.job_name": job["name"],
                            "mlops.data": str((job.get("inputs") or {}).get("data") or "")}
                else:           # the job's tags stay on the job's run: a search by them finds the job, not its steps
                    tags = {"mlflow.parentRunId": job["mlflow_run_id"], "mlops.step": step["name"]}
                started = (step or job).get("started")
                run = client.create_run(experiment_id, start_time=_millis(started), tags=tags,
                                        run_name=step["name"] if step is not None else job["name"])
                return run.info.run_id, experiment_id
        except Exception as error:
            log.warning("MLflow tracking: could not create a run for job %s%s in %s: %s", job.get("name"),
                        f" step {step['name']}" if step else "", self.uri, error)
            return None

    def end_run(self, run_id: str, status: str, metrics: dict[str, float], ended: str | None = None) -> None:
        """End a run with the job's (or step's) status and its compute.* metrics."""
        try:
            from mlflow.entities import Metric
            client = self.client()
            now = _millis(ended) or int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()
                                              if v is not None])
            client.set_terminated(run_id, STATUS.get(status, "FAILED"), end_time=now)
        except Exception as error:
            log.warning("MLflow tracking: could not end run %s (%s): %s", run_id, status, error)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        try:
            from mlflow.entities import RunTag
            self.client().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        except Exception as error:
            log.warning("MLflow tracking: could not tag run %s: %s", run_id, error)

    # -- the model registry ----------------------------------------------------------------------------
    def register_version(self, name: str, version: str, run_id: str | None, folder: Path,
                         tags: dict[str, str]) -> str | None:
        """Create the MLflow model version of the stand-in's `name:version`: source runs:/<run>/model and run_id
        for a job's model (else the registered folder). A run without "model" artifacts (a pipeline job: the
        evaluation step's child run logged them) gets the registered folder's, so runs:/<run>/model is the
        model. MLflow numbers versions itself; the stand-in's number is kept as the tag azureml.version, which
        also makes this idempotent (a registration cut short and done again finds its version). Returns
        MLflow's version number, or None."""
        try:
            with self._lock:
                client = self.client()
                if run_id and not client.list_artifacts(run_id, "model"):
                    client.log_artifacts(run_id, str(folder), "model")
                for found in client.search_model_versions(f"name='{_quoted(name)}'"):
                    if found.tags.get("azureml.version") == str(version):
                        return str(found.version)
                try:
                    client.create_registered_model(name)
                except Exception as error:
                    if "RESOURCE_ALREADY_EXISTS" not in str(getattr(error, "error_code", "")) \
                            and "already exists" not in str(error):
                        raise
                created = client.create_model_version(
                    name, source=f"runs:/{run_id}/model" if run_id else folder.resolve().as_uri(), run_id=run_id,
                    tags={**{k: str(v) for k, v in tags.items()}, "azureml.version": str(version)})
            if str(created.version) != str(version):
                log.warning("MLflow tracking: model %s:%s is MLflow version %s (MLflow numbers its own versions; "
                            "the tag azureml.version holds the stand-in's)", name, version, created.version)
            return str(created.version)
        except Exception as error:
            log.warning("MLflow tracking: could not create model version %s:%s in %s: %s", name, version,
                        self.uri, error)
            return None

    def _experiment(self, client: Any, name: str) -> str:
        found = client.get_experiment_by_name(name)
        return found.experiment_id if found else client.create_experiment(name)


def compute_metrics(record: dict, queue_seconds: float | None = None) -> dict[str, float]:
    """compute.* metrics of a job (or step) record: its times and its measured usage."""
    usage = record.get("usage") or {}
    peak = usage.get("peak_memory_bytes")
    return {k: v for k, v in {
        "compute.queue_seconds": queue_seconds,
        "compute.duration_seconds": seconds_between(record.get("started"), record.get("ended")),
        "compute.cpu_percent": usage.get("cpu_percent"),
        "compute.memory_percent": usage.get("memory_percent"),
        "compute.peak_memory_mb": round(peak / MB, 1) if peak is not None else None,
    }.items() if v is not None}


def _millis(iso: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None
    except ValueError:
        return None


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")
