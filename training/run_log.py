"""What the job scripts (train.py, split.py, evaluate.py) tell the outside: progress lines on stdout; a
failure as one line on stderr, "error: <file>: <problem>", exit status 2 and DIR/error.json; results as
MLflow tracking params, metrics and the model's artifacts when there is a run to log into (the job's own, whose
id Azure ML and the local stand-in give in MLFLOW_RUN_ID) or a tracking server is configured."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

FAILED = 2                                  # the exit status of bad data (argparse's usage errors use it too)


def log(message: str) -> None:
    print(message, flush=True)


def fail(out: Path, message: str, kind: str = "data") -> int:
    """Say why the job cannot go on, in one line on stderr and in out/error.json; returns the exit status."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    record_failure(out, message, kind)
    return FAILED


def record_failure(out: Path, message: str, kind: str = "data") -> None:
    """Leave the reason where the lifecycle can read it without parsing logs: DIR/error.json, and the
    run tag mlops.error when MLflow tracking is configured (on Azure ML, run tags travel in the
    RunStatusChanged event). Best effort: the exit status and stderr already say it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.json").write_text(json.dumps(
            {"error": kind, "message": message, "at": datetime.now(UTC).isoformat(timespec="seconds")}))
    except OSError:
        pass
    if tracking_on():
        try:
            import mlflow

            mlflow.set_tag("mlops.error", message[:4000])
            if not os.environ.get("MLFLOW_RUN_ID"):
                mlflow.end_run(status="FAILED")
        except Exception:
            pass


def tracking_on() -> bool:
    """A run to log into: Azure ML (and the local stand-in) set MLFLOW_RUN_ID for the job's own run; with
    MLFLOW_TRACKING_URI alone (train.py run by hand) the job starts a run of its own."""
    return bool(os.environ.get("MLFLOW_RUN_ID") or os.environ.get("MLFLOW_TRACKING_URI"))


@contextlib.contextmanager
def untracked() -> Iterator[None]:
    """Run a job script in-process (mlops simulate's train.main()) without MLflow tracking: MLFLOW_* are out of
    the environment meanwhile, so nothing logs into a run the calling process's environment names."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MLFLOW_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def track(doc: dict, model_dir: Path | None = None) -> None:
    """Log params and metrics, and the model folder (`model_dir`, an MLflow model) as the run's "model"
    artifacts, so that runs:/<run id>/model is the model. Into the job's run when MLFLOW_RUN_ID is set, else a
    new run when a tracking server is configured, else nothing. A tracking failure never fails the job."""
    if not tracking_on():
        return
    try:
        import mlflow

        run_id = os.environ.get("MLFLOW_RUN_ID")
        active = mlflow.active_run()
        if active is None:
            mlflow.start_run(run_id=run_id or None)
        mlflow.log_params({"model_name": doc["model_name"], "target": doc["target"], "task": doc["task"],
                           "algorithm": doc["algorithm"], "test_size": doc["test_size"], "seed": doc["seed"],
                           "rows_total": doc["rows"]["total"],
                           **{k: "None" if v is None else v for k, v in doc["hyperparameters"].items()}})
        values = {k: v for k, v in doc["metrics"].items() if v is not None}
        values.update({f"champion_{k}": v for k, v in (doc["champion"] or {}).items() if v is not None})
        if (doc.get("calibration") or {}).get("expected_calibration_error") is not None:
            values["expected_calibration_error"] = doc["calibration"]["expected_calibration_error"]
        mlflow.log_metrics(values)
        if model_dir is not None and model_dir.is_dir():
            mlflow.log_artifacts(str(model_dir), "model")
        if not run_id and active is None:                  # a run we started ourselves: close it
            mlflow.end_run()
        log("logged params, metrics" + (" and the model" if model_dir is not None else "") + " to MLflow tracking")
    except Exception as e:
        print(f"warning: could not log to MLflow tracking ({type(e).__name__}: {first_line(e)}); "
              f"the results are in metrics.json", file=sys.stderr, flush=True)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
