"""Evaluate a model on the holdout and write what the rest of the chain reads: train.py's last step, and the
step after a team's own training code (the rows come from split.py).

    python evaluate.py --model MLFLOW_MODEL_DIR --holdout DIR --target COLUMN
                       --task classification|regression --model-name NAME --output DIR
                       [--train-data DIR] [--champion-model MLFLOW_MODEL_DIR]

Scores the team's MLflow model (any flavour mlflow.pyfunc loads; predict_proba where its scikit-learn
flavour has it) and the champion on DIR/holdout.csv, and writes what train.py writes: DIR/model/ (a copy
of the team's model with reference/profile.json, reference/sample.csv, reference/holdout.parquet and
metrics.json added) and
DIR/metrics.json, last; `evaluate_and_write` is the part train.py calls too, so a team's model and ours
cannot be told apart downstream. --train-data (split.py's train.csv) gives the leak check its training
rows and the reference profile all the rows, as train.py has them; without it "single_feature" is None
and the profile describes the holdout rows.

metrics.json (train.py's docstring has the common keys): "task" ("classification" | "regression"),
"classification" ("binary" | "multiclass", None for regression), "classes", "positive_class", "average",
"metrics" (classification: accuracy, f1, precision, recall, roc_auc; regression: mae, rmse, r2, mape),
"calibration" (None for regression), "champion", "champion_error", "champion_model", "compatibility",
"single_feature", "rows", "holdout" (where the holdout came from: split.py's --holdout-files), "row_window"
(split.py's --window-column and --window-days, or None), "class_balance" (None for regression), "features",
"data_notes", "data_files",
"trainer" ("train.py" | "team"), "algorithm", "hyperparameters", "test_size", "seed", "trained_at".
Bad data or a model that cannot be scored exits with status 2 and one line on stderr,
"error: <file>: <problem>", and leaves DIR/error.json with the same message.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

try:                                        # imported as training.evaluate (tests, the local stack)
    from .compatibility import compatibility, input_types
    from .dataset import TASKS, DataError
    from .evaluation import (
        Scored,
        calibration,
        evaluate_champion,
        find_mlflow_model,
        holdout_metrics,
        metric_names,
        score_model,
    )
    from .leakage import single_feature
    from .reference_profile import build_profile
    from .run_log import fail, first_line, log, track
    from .split import Split, read_split
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from compatibility import compatibility, input_types  # type: ignore[import-not-found, no-redef]
    from dataset import TASKS, DataError  # type: ignore[import-not-found, no-redef]
    from evaluation import (  # type: ignore[import-not-found, no-redef]
        Scored,
        calibration,
        evaluate_champion,
        find_mlflow_model,
        holdout_metrics,
        metric_names,
        score_model,
    )
    from leakage import single_feature  # type: ignore[import-not-found, no-redef]
    from reference_profile import build_profile  # type: ignore[import-not-found, no-redef]
    from run_log import fail, first_line, log, track  # type: ignore[import-not-found, no-redef]
    from split import Split, read_split  # type: ignore[import-not-found, no-redef]

SAMPLE_ROWS = 500                           # reference/sample.csv, for smoke tests of a deployment
HOLDOUT_ROWS = 50_000                       # reference/holdout.parquet: enough for monitoring to learn errors from
PREDICTION = "prediction"                   # its column of the model's answers (monitoring.holdout reads it)
OURS = ("reference", "metrics.json")        # what evaluate_and_write adds to the model folder


class ModelError(Exception):
    """The model to evaluate cannot be read or scored. The message names its folder and the problem."""


def evaluate_and_write(out: Path, split: Split, scored: Scored, save_model: Callable[[Path], None], *,
                       model_name: str, champion_model: str | None, challenger_inputs: dict[str, str],
                       inputs: list[str], trainer: str, algorithm: str, hyperparameters: dict) -> dict:
    """Score what the model predicted on the holdout (scored), the champion on the same rows, and each
    feature alone; build the reference profile; write out/model/ (save_model(folder) writes the MLflow
    model into the folder, which must not exist yet; reference/ and metrics.json are added to it) and
    out/metrics.json; log to MLflow tracking. Returns metrics.json's content. inputs: the columns the
    model takes (reference/sample.csv); challenger_inputs: their MLflow types (compatibility)."""
    task, classes, data = split.task, split.classes, split.data
    binary = classes is not None and len(classes) == 2
    metrics = holdout_metrics(task, split.y_hold, scored, classes)
    log(f"holdout ({len(split.holdout):,} rows): {metrics_text(metrics, task)}")
    calibrated = None
    if task == "classification" and scored.proba is not None and scored.proba_classes is not None:
        calibrated = calibration(split.y_hold, scored.proba, scored.proba_classes, list(classes or []))
    if calibrated is not None and calibrated["expected_calibration_error"] is not None:
        log(f"holdout expected calibration error ({calibrated['method'].replace('_', '-')} probability, "
            f"{calibrated['bins']} bins): {calibrated['expected_calibration_error']:.4f}")
    single = _single_feature(split)

    champion, champion_error, compatible = None, None, None
    if champion_model:
        compatible = compatibility(champion_model, challenger_inputs, classes, task)
        same = "same inputs and labels" if classes is not None else "same inputs"
        log("challenger and champion: " + (same if compatible["compatible"] else "; ".join(compatible["reasons"])))
        try:
            champion = evaluate_champion(champion_model, split.holdout_rows, split.y_hold, classes, task)
            log(f"champion on the same holdout: {metrics_text(champion, task)}")
        except Exception as e:                          # a schema change must not fail the job: record why
            champion_error = f"{type(e).__name__}: {first_line(e)}"
            log(f"champion could not be scored on this holdout: {champion_error}")

    doc = {
        "model_name": model_name,
        "target": data.target,
        "task": task,
        "classification": None if classes is None else "binary" if binary else "multiclass",
        "classes": classes,
        "positive_class": classes[-1] if binary and classes else None,
        "average": None if classes is None else "binary" if binary else "macro",
        "metrics": metrics,
        "calibration": calibrated,
        "champion": champion,
        "champion_error": champion_error,
        "champion_model": champion_model,
        "compatibility": compatible,
        "single_feature": single,
        "rows": {"train": len(split.train), "holdout": len(split.holdout), "total": len(data.frame),
                 "unlabelled_dropped": data.dropped_unlabelled},
        "holdout": split.holdout_record,
        "row_window": data.row_window,
        "class_balance": split.class_counts,
        "features": {"numeric": list(data.numeric), "categorical": list(data.categorical),
                     "ignored": list(data.ignored)},
        "data_notes": list(data.notes),
        "data_files": [str(f) for f in data.files],
        "trainer": trainer,
        "algorithm": algorithm,
        "hyperparameters": hyperparameters,
        "test_size": split.test_size,
        "seed": split.seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    seed = split.seed if split.seed is not None else 0
    profiled = list(dict.fromkeys([*data.features, *(c for c in inputs if c in data.frame.columns)]))
    prediction = pd.Series(scored.predicted, dtype="float64" if task == "regression" else None)
    profile = build_profile(data.frame[[*profiled, data.target]], data.target, seed=seed, task=task,
                            outputs={"prediction": prediction})
    present = [c for c in inputs if c in data.frame.columns] or data.features
    sample = smoke_rows(data.frame[present], np.random.default_rng(seed))
    write_outputs(out, save_model, doc, profile, sample,
                  holdout_rows(split, [c for c in profiled if c != PREDICTION], scored.predicted, seed))
    log(f"wrote {out / 'model'} and {out / 'metrics.json'}")
    track(doc, out / "model")           # the run's "model" artifacts: runs:/<run id>/model
    return doc


def _single_feature(split: Split) -> dict | None:
    if not len(split.train):
        log("each feature alone: not checked (no training rows: give --train-data)")
        return None
    data = split.data
    started = time.perf_counter()
    single = single_feature(split.task, split.x_train, split.y_train, split.x_hold, split.y_hold, split.classes,
                            data.numeric, data.categorical)
    key, baseline = ("r2", "mean predictor") if split.task == "regression" else ("f1", "majority class")
    best = single["best"][key]
    log(f"each feature alone on the holdout ({single['features']} features, {time.perf_counter() - started:.1f} s): "
        + (f"best {key} {best['value']:.4f} ({best['feature']!r})" if best else f"none beats the {baseline}")
        + f"; {baseline} {key} " + (f"{single['baseline'][key]:.4f}" if single["baseline"][key] is not None
                                    else "n/a"))
    return single


def holdout_rows(split: Split, columns: list[str], predicted: np.ndarray, seed: int) -> pd.DataFrame:
    """The holdout rows as monitoring reads them back (monitoring.holdout): the model's input columns, the
    target and the model's answer in PREDICTION; at most HOLDOUT_ROWS of them, drawn at random, in order."""
    frame = split.data.frame.iloc[split.holdout][[*columns, split.data.target]].reset_index(drop=True)
    frame[PREDICTION] = predicted
    if len(frame) > HOLDOUT_ROWS:
        frame = frame.iloc[np.sort(np.random.default_rng(seed).choice(len(frame), HOLDOUT_ROWS, replace=False))]
    return frame


def write_outputs(out: Path, save_model: Callable[[Path], None], doc: dict, profile: dict, sample,
                  holdout: pd.DataFrame | None = None) -> None:
    """DIR/model/ (MLflow model + reference/ + metrics.json), then DIR/metrics.json. The model is built
    in a staging folder and renamed into place, so a reader never sees half of one."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".model-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    save_model(staging)
    reference = staging / "reference"
    reference.mkdir()
    (reference / "profile.json").write_text(json.dumps(profile, allow_nan=False))
    sample.to_csv(reference / "sample.csv", index=False)
    if holdout is not None:
        try:
            holdout.to_parquet(reference / "holdout.parquet", index=False)
        except (ValueError, TypeError, ImportError):     # a column pyarrow cannot type (mixed values): as text
            (reference / "holdout.parquet").unlink(missing_ok=True)
            holdout.to_csv(reference / "holdout.csv", index=False)
    (staging / "metrics.json").write_text(json.dumps(doc, indent=2))
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    partial = out / "metrics.json.partial"
    partial.write_text(json.dumps(doc, indent=2))
    partial.replace(out / "metrics.json")


def smoke_rows(features: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Up to SAMPLE_ROWS feature rows, complete ones first, in their original order."""
    complete = features.notna().all(axis=1).to_numpy()
    order = np.concatenate([rng.permutation(np.flatnonzero(complete)), rng.permutation(np.flatnonzero(~complete))])
    return features.iloc[np.sort(order[:SAMPLE_ROWS])]


def metrics_text(metrics: dict, task: str = "classification") -> str:
    return "  ".join(f"{k} {metrics[k]:.4f}" if metrics.get(k) is not None else f"{k} n/a" for k in metric_names(task))


# --------------------------------------------------------------------------------------------------
# a team's model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate a team's MLflow model on split.py's "
                                                                "holdout and write what train.py writes.")
    p.add_argument("--model", required=True, metavar="MLFLOW_MODEL_DIR", help="the team's model (an MLmodel folder)")
    p.add_argument("--holdout", required=True, metavar="DIR", help="split.py's --holdout folder (holdout.csv)")
    p.add_argument("--target", required=True, metavar="COLUMN")
    p.add_argument("--task", choices=TASKS, default="classification")
    p.add_argument("--model-name", required=True, metavar="NAME")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--train-data", metavar="DIR", help="split.py's --train-data folder (train.csv)")
    p.add_argument("--champion-model", metavar="DIR",
                   help="the live model (MLflow model folder), scored on the same held-out rows")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Evaluate the team's model and write the outputs; returns metrics.json's content. Raises DataError
    for bad holdout or training rows, ModelError for a model that cannot be read or scored."""
    from mlflow.models import Model

    try:
        folder = find_mlflow_model(args.model)
        meta = Model.load(str(folder / "MLmodel"))
    except Exception as e:
        raise ModelError(f"{args.model}: not an MLflow model folder ({first_line(e)})") from None
    split = read_split(Path(args.holdout), Path(args.train_data) if args.train_data else None,
                       args.target, args.task)
    inputs = input_types(meta.get_input_schema())
    if not inputs:
        log(f"note: {folder} has no input signature: clients and monitoring cannot check its inputs "
            f"(save it with signature=mlflow.models.infer_signature(x, predictions))")
    algorithm, hyperparameters = describe_model(folder, meta)
    log(f"evaluating {algorithm} from {folder} on {len(split.holdout):,} holdout rows")
    try:
        scored = score_model(folder, split.holdout_rows, split.classes, args.task, who="the model")
    except Exception as e:
        raise ModelError(f"{folder}: cannot be scored on the holdout rows ({type(e).__name__}: {first_line(e)})") \
            from None

    def copy_model(staging: Path) -> None:
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns(*OURS))
    if any((folder / name).exists() for name in OURS):
        log(f"note: the model's own {' and '.join(n for n in OURS if (folder / n).exists())} replaced by this step's")
    return evaluate_and_write(Path(args.output), split, scored, copy_model, model_name=args.model_name,
                              champion_model=args.champion_model, challenger_inputs=inputs,
                              inputs=list(inputs) or split.data.features, trainer="team", algorithm=algorithm,
                              hyperparameters=hyperparameters)


def describe_model(folder: Path, meta) -> tuple[str, dict]:
    """What the team trained: the scikit-learn estimator's class (a Pipeline's last step) and its plain
    parameters, or the MLflow flavour it was saved with."""
    if "sklearn" in meta.flavors:
        try:
            import mlflow.sklearn

            estimator = mlflow.sklearn.load_model(str(folder))
            last = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
            params = {k: v for k, v in last.get_params(deep=False).items()
                      if v is None or isinstance(v, (bool, int, float, str))}
            return type(last).__name__, params
        except Exception:
            pass
    flavours = [f for f in meta.flavors if f != "python_function"]
    return (flavours[0] if flavours else "python_function"), {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except DataError as e:
        return fail(Path(args.output), str(e))
    except ModelError as e:
        return fail(Path(args.output), str(e), kind="model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
