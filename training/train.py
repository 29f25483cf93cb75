"""Train a tabular classifier: the script Azure ML runs as the training command job (training/job.yml),
and the local stack runs in a subprocess with the same arguments.

    python train.py --data PATH [PATH ...] --target COLUMN --model-name NAME --output DIR
                    [--algorithm hist_gradient_boosting|random_forest|logistic_regression]
                    [--max-iter N] [--learning-rate X] [--max-depth N] [--n-estimators N] [--C X]
                    [--test-size 0.2] [--seed 42] [--min-rows 50] [--champion-model MLFLOW_MODEL_DIR]

Writes DIR/model/ (an MLflow model, with reference/profile.json, reference/sample.csv and metrics.json in
it) and DIR/metrics.json, last. metrics.json holds what the registration gate and monitoring read:
- "metrics": the holdout's accuracy, f1, precision, recall, roc_auc (evaluation.classification_metrics);
  "calibration": their expected calibration error, which monitoring checks before estimating
  performance without labels (evaluation.calibration);
- "champion": the live model (--champion-model) scored on the same holdout rows, or None with the reason
  in "champion_error" (other columns, labels it never predicts, ...);
- "compatibility": None without --champion-model; else the champion's inputs and labels against the
  challenger's, computed even when the champion cannot be scored (compatibility.py has the layout):
  {"champion_features", "challenger_features", "missing_features", "new_features", "changed_types",
   "champion_classes", "new_classes", "missing_classes", "compatible": bool, "reasons": [...]};
- "single_feature": how well each feature alone predicts the target on the same holdout, the leak check
  (leakage.py has the method and what it catches): {"method", "bins", "rows", "features", "baseline",
   "best": {metric: {"feature", "value"} | None}, "top": [{"feature", "accuracy", "f1", ...}, ...]};
- "data_notes": values read as missing (infinities, stray text in a column of numbers; dataset.py);
- rows, class balance, features, files, algorithm and hyperparameters.
Bad data exits with status 2 and one line on stderr, "error: <file>: <problem>",
and leaves DIR/error.json with the same message.
Everything it needs lives in this folder, which is the job's code snapshot.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:                                        # imported as training.train (tests, the local stack)
    from .compatibility import compatibility, input_types
    from .dataset import DataError, TrainingData, load, load_training_data
    from .evaluation import METRICS, calibration, classification_metrics, evaluate_champion
    from .leakage import single_feature_power
    from .reference_profile import build_profile
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from compatibility import compatibility, input_types  # type: ignore[import-not-found, no-redef]
    from dataset import DataError, TrainingData, load, load_training_data  # type: ignore[import-not-found, no-redef]
    from evaluation import (  # type: ignore[import-not-found, no-redef]
        METRICS,
        calibration,
        classification_metrics,
        evaluate_champion,
    )
    from leakage import single_feature_power  # type: ignore[import-not-found, no-redef]
    from reference_profile import build_profile  # type: ignore[import-not-found, no-redef]

__all__ = ["DataError", "load_training_data", "main", "parse_args", "run"]

ALGORITHMS = ("hist_gradient_boosting", "random_forest", "logistic_regression")
DEFAULTS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"max_iter": 100, "learning_rate": 0.1, "max_depth": None},
    "random_forest": {"n_estimators": 200, "max_depth": None},
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
}
MAX_CATEGORIES = 50                         # one-hot columns per categorical feature; rarer values share one
SAMPLE_ROWS = 500                           # reference/sample.csv, for smoke tests of a deployment
SIGNATURE_ROWS = 200


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train.py", description="Train a tabular classifier and write an MLflow model.")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="CSV / Parquet files, or folders searched recursively for *.csv, *.csv.gz, *.parquet")
    p.add_argument("--target", required=True, metavar="COLUMN", help="the label column")
    p.add_argument("--model-name", required=True, metavar="NAME")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="hist_gradient_boosting")
    p.add_argument("--max-iter", type=_positive_int, help="boosting iterations / solver iterations")
    p.add_argument("--learning-rate", type=_positive_float)
    p.add_argument("--max-depth", type=_positive_int)
    p.add_argument("--n-estimators", type=_positive_int, help="trees of the random forest")
    p.add_argument("--C", type=_positive_float, help="inverse regularisation strength of logistic regression")
    p.add_argument("--test-size", type=_fraction, default=0.2, help="held-out fraction (default 0.2)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-rows", type=_positive_int, default=50, help="fewest labelled rows to train on (default 50)")
    p.add_argument("--champion-model", metavar="DIR",
                   help="the live model (MLflow model folder), scored on the same held-out rows")
    return p.parse_args(argv)


def hyperparameters(args: argparse.Namespace) -> dict:
    """The algorithm's effective hyperparameters: its defaults overridden by the flags given."""
    chosen = dict(DEFAULTS[args.algorithm])
    given = {"max_iter": args.max_iter, "learning_rate": args.learning_rate, "max_depth": args.max_depth,
             "n_estimators": args.n_estimators, "C": args.C}
    for name, value in given.items():
        if value is None:
            continue
        if name in chosen:
            chosen[name] = value
        else:
            log(f"note: --{name.replace('_', '-')} does not apply to {args.algorithm}; ignored")
    return chosen


def build_pipeline(numeric: list[str], categorical: list[str], algorithm: str, params: dict, seed: int):
    """ColumnTransformer (median-imputed numbers, scaled for logistic regression; most-frequent-imputed,
    one-hot categories, unknown ones ignored) followed by the classifier."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if algorithm == "logistic_regression":
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps = [
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", max_categories=MAX_CATEGORIES,
                                 sparse_output=algorithm != "hist_gradient_boosting")),  # HGB needs dense input
    ]
    transformers = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), list(numeric)))
    if categorical:
        transformers.append(("categorical", Pipeline(categorical_steps), list(categorical)))
    if algorithm == "hist_gradient_boosting":
        classifier = HistGradientBoostingClassifier(random_state=seed, **params)
    elif algorithm == "random_forest":
        classifier = RandomForestClassifier(random_state=seed, n_jobs=-1, **params)
    else:
        classifier = LogisticRegression(random_state=seed, **params)
    return Pipeline([("features", ColumnTransformer(transformers, remainder="drop")), ("classifier", classifier)])


def model_inputs(data: TrainingData):
    """The feature frame as the model sees it: columns as read, except object columns mixing Python
    types (1 and "1"), which become text so the encoder sees one kind of value, and nullable booleans
    with gaps (Parquet), which become Python booleans and NaN (scikit-learn cannot compare pandas' NA).
    Integer columns stay integers: the signature then accepts the JSON integers a client sends (MLflow
    will not cast int64 to double, calling it unsafe)."""
    import numpy as np
    import pandas as pd

    x = data.frame[data.features].copy()
    for column in data.categorical:
        if pd.api.types.is_object_dtype(x[column].dtype) and not _uniform(x[column]):
            x[column] = x[column].map(lambda v: v if v is None or v != v else str(v)).astype("str")
        elif isinstance(x[column].dtype, pd.BooleanDtype) and x[column].isna().any():
            x[column] = x[column].astype(object).where(x[column].notna(), np.nan)
    return x


def run(args: argparse.Namespace) -> dict:
    """Train, evaluate, write the outputs; returns metrics.json's content. Raises DataError for bad data."""
    import numpy as np
    import pandas as pd

    data = load(args.data, args.target, min_rows=args.min_rows, test_size=args.test_size, log=log)
    from sklearn.model_selection import train_test_split  # after the data checks: bad data fails fast

    labels = data.frame[data.target]
    counts = labels.value_counts().sort_index()
    classes = [_scalar(c) for c in counts.index]
    binary = len(classes) == 2
    if data.dropped_unlabelled:
        log(f"dropped {data.dropped_unlabelled:,} rows without a value in {data.target!r}")
    for note in data.notes:
        log(f"note: {note}")
    for note in data.ignored:
        log(f"not a feature: {note}")
    log(f"{len(data.frame):,} labelled rows from {data.source}; {len(data.numeric)} numeric and "
        f"{len(data.categorical)} categorical features; target {data.target!r}: "
        + ", ".join(f"{c!r} {n:,} ({n / len(labels):.1%})" for c, n in zip(classes, counts.tolist())))

    x = model_inputs(data)
    x_train, x_hold, y_train, y_hold = train_test_split(
        x, labels, test_size=args.test_size, random_state=args.seed, stratify=labels)
    params = hyperparameters(args)
    log(f"training {args.algorithm} ({_params_text(params)}) on {len(x_train):,} rows, holding out {len(x_hold):,}")
    model = build_pipeline(list(data.numeric), list(data.categorical), args.algorithm, params, args.seed)
    model.fit(x_train, y_train)

    predicted = model.predict(x_hold)
    proba = model.predict_proba(x_hold)
    metrics = classification_metrics(y_hold, predicted, proba, list(model.classes_), classes)
    log(f"holdout ({len(x_hold):,} rows): {_metrics_text(metrics)}")
    calibrated = calibration(y_hold, proba, list(model.classes_), classes)
    if calibrated is not None and calibrated["expected_calibration_error"] is not None:
        log(f"holdout expected calibration error ({calibrated['method'].replace('_', '-')} probability, "
            f"{calibrated['bins']} bins): {calibrated['expected_calibration_error']:.4f}")
    started = time.perf_counter()
    single = single_feature_power(x_train, y_train, x_hold, y_hold, classes, data.numeric, data.categorical)
    log(f"each feature alone on the holdout ({single['features']} features, {time.perf_counter() - started:.1f} s): "
        + (f"best f1 {single['best']['f1']['value']:.4f} ({single['best']['f1']['feature']!r})"
           if single["best"]["f1"] else "none beats the majority class")
        + f"; majority class f1 {single['baseline']['f1']:.4f}")
    signature = model_signature(model, x_train)

    champion, champion_error, compatible = None, None, None
    if args.champion_model:
        compatible = compatibility(args.champion_model, input_types(signature.inputs), classes)
        log("challenger and champion: " + ("same inputs and labels" if compatible["compatible"]
                                           else "; ".join(compatible["reasons"])))
        champion_rows = data.frame.loc[x_hold.index].drop(columns=[data.target])
        try:
            champion = evaluate_champion(args.champion_model, champion_rows, y_hold, classes)
            log(f"champion on the same holdout: {_metrics_text(champion)}")
        except Exception as e:                          # a schema change must not fail the job: record why
            champion_error = f"{type(e).__name__}: {_first_line(e)}"
            log(f"champion could not be scored on this holdout: {champion_error}")

    doc = {
        "model_name": args.model_name,
        "target": data.target,
        "task": "binary" if binary else "multiclass",
        "classes": classes,
        "positive_class": classes[-1] if binary else None,
        "average": "binary" if binary else "macro",
        "metrics": metrics,
        "calibration": calibrated,
        "champion": champion,
        "champion_error": champion_error,
        "champion_model": args.champion_model,
        "compatibility": compatible,
        "single_feature": single,
        "rows": {"train": len(x_train), "holdout": len(x_hold), "total": len(x),
                 "unlabelled_dropped": data.dropped_unlabelled},
        "class_balance": {str(c): int(n) for c, n in zip(classes, counts.tolist())},
        "features": {"numeric": list(data.numeric), "categorical": list(data.categorical),
                     "ignored": list(data.ignored)},
        "data_notes": list(data.notes),
        "data_files": [str(f) for f in data.files],
        "algorithm": args.algorithm,
        "hyperparameters": params,
        "test_size": args.test_size,
        "seed": args.seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    profile = build_profile(data.frame[[*data.features, data.target]], data.target, seed=args.seed,
                            outputs={"prediction": pd.Series(predicted)})
    sample = _smoke_rows(data.frame[data.features], np.random.default_rng(args.seed))
    write_outputs(Path(args.output), model, signature, doc, profile, sample)
    log(f"wrote {Path(args.output) / 'model'} and {Path(args.output) / 'metrics.json'}")
    track(doc)
    return doc


def model_signature(model, x_train):
    """The MLflow signature of the model's inputs and predictions, from the first SIGNATURE_ROWS rows."""
    from mlflow.models import infer_signature

    head = x_train.head(SIGNATURE_ROWS)
    with warnings.catch_warnings():                   # its integer-column hint: integers stay long on purpose
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        return infer_signature(head, model.predict(head))


def write_outputs(out: Path, model, signature, doc: dict, profile: dict, sample) -> None:
    """DIR/model/ (MLflow model + reference/ + metrics.json), then DIR/metrics.json. The model is built
    in a staging folder and renamed into place, so a reader never sees half of one."""
    import mlflow.sklearn

    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".model-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    quiet = logging.getLogger("mlflow.sklearn")        # its pickle-format advice, once per save
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # cloudpickle, not mlflow 3's default skops: skops is not installed and every loader would need
        # it; the model only ever comes from this job. Explicit requirements also skip mlflow's
        # inference of them, which loads the model again in a subprocess (seconds).
        mlflow.sklearn.save_model(model, str(staging), signature=signature, serialization_format="cloudpickle",
                                  pip_requirements=_requirements())
    finally:
        quiet.setLevel(level)
    reference = staging / "reference"
    reference.mkdir()
    (reference / "profile.json").write_text(json.dumps(profile, allow_nan=False))
    sample.to_csv(reference / "sample.csv", index=False)
    (staging / "metrics.json").write_text(json.dumps(doc, indent=2))
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    partial = out / "metrics.json.partial"
    partial.write_text(json.dumps(doc, indent=2))
    partial.replace(out / "metrics.json")


def track(doc: dict) -> None:
    """Log params and metrics to the active MLflow run when a tracking server is configured (Azure ML
    sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID for the job). A tracking failure never fails training."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return
    try:
        import mlflow

        mlflow.log_params({"model_name": doc["model_name"], "target": doc["target"], "algorithm": doc["algorithm"],
                           "test_size": doc["test_size"], "seed": doc["seed"], "rows_total": doc["rows"]["total"],
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
        print(f"warning: could not log to MLflow tracking ({type(e).__name__}: {_first_line(e)}); "
              f"the results are in metrics.json", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        record_failure(Path(args.output), str(e))
        return 2
    return 0


def record_failure(out: Path, message: str) -> None:
    """Leave the reason where the lifecycle can read it without parsing logs: DIR/error.json, and the
    run tag mlops.error when MLflow tracking is configured (on Azure ML, run tags travel in the
    RunStatusChanged event). Best effort: the exit status and stderr already say it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.json").write_text(json.dumps(
            {"error": "data", "message": message, "at": datetime.now(UTC).isoformat(timespec="seconds")}))
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


def _requirements() -> list[str]:
    import cloudpickle
    import numpy
    import pandas
    import sklearn

    return [f"scikit-learn=={sklearn.__version__}", f"pandas=={pandas.__version__}", f"numpy=={numpy.__version__}",
            f"cloudpickle=={cloudpickle.__version__}"]


def _smoke_rows(features, rng):
    """Up to SAMPLE_ROWS feature rows, complete ones first, in their original order."""
    import numpy as np

    complete = features.notna().all(axis=1).to_numpy()
    order = np.concatenate([rng.permutation(np.flatnonzero(complete)), rng.permutation(np.flatnonzero(~complete))])
    return features.iloc[np.sort(order[:SAMPLE_ROWS])]


def _uniform(values) -> bool:
    types = {type(v) for v in values.dropna()}
    return len(types) <= 1


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


def _metrics_text(metrics: dict) -> str:
    return "  ".join(f"{k} {metrics[k]:.4f}" if metrics[k] is not None else f"{k} n/a" for k in METRICS)


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
