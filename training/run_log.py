"""What the job scripts (train.py, split.py, evaluate.py) tell the outside: progress lines on stdout; a
failure as one line on stderr, "error: <file>: <problem>", exit status 2 and DIR/error.json; results as
MLflow tracking params and metrics when a tracking server is configured."""
from __future__ import annotations

import json
import os
import sys
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
    if os.environ.get("MLFLOW_TRACKING_URI"):
        try:
            import mlflow

            mlflow.set_tag("mlops.error", message[:4000])
            if not os.environ.get("MLFLOW_RUN_ID"):
                mlflow.end_run(status="FAILED")
        except Exception:
            pass


def track(doc: dict) -> None:
    """Log params and metrics to the active MLflow run when a tracking server is configured (Azure ML
    sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID for the job). A tracking failure never fails the job."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return
    try:
        import mlflow

        mlflow.log_params({"model_name": doc["model_name"], "target": doc["target"], "task": doc["task"],
                           "algorithm": doc["algorithm"], "test_size": doc["test_size"], "seed": doc["seed"],
                           "rows_total": doc["rows"]["total"],
                           **{k: "None" if v is None else v for k, v in doc["hyperparameters"].items()}})
        values = {k: v for k, v in doc["metrics"].items() if v is not None}
        values.update({f"champion_{k}": v for k, v in (doc["champion"] or {}).items() if v is not None})
        if (doc.get("calibration") or {}).get("expected_calibration_error") is not None:
            values["expected_calibration_error"] = doc["calibration"]["expected_calibration_error"]
        mlflow.log_metrics(values)
        if not os.environ.get("MLFLOW_RUN_ID"):           # a run we started ourselves: close it
            mlflow.end_run()
        log("logged params and metrics to MLflow tracking")
    except Exception as e:
        print(f"warning: could not log to MLflow tracking ({type(e).__name__}: {first_line(e)}); "
              f"the results are in metrics.json", file=sys.stderr, flush=True)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
