"""Train a tabular model: the script Azure ML runs as the training command job (training/job.yml),
and the local stack runs in a subprocess with the same arguments.

    python train.py --data PATH [PATH ...] --target COLUMN --model-name NAME --output DIR
                    [--task classification|regression] [--data-files FILE] [--holdout-files FILE]
                    [--window-column COLUMN --window-days N]
                    [--algorithm hist_gradient_boosting|random_forest|linear]
                    [--max-iter N] [--learning-rate X] [--max-depth N] [--n-estimators N] [--C X] [--alpha X]
                    [--test-size 0.2] [--seed 42] [--min-rows 50] [--champion-model MLFLOW_MODEL_DIR]

--task classification (the default) trains a classifier, binary or multiclass as the labels have it;
regression trains a regressor on a numeric target. "linear" is logistic regression for a classifier (--C)
and ridge regression for a regressor (--alpha); "logistic_regression", its old name, still works.
--data-files FILE reads only the files listed in FILE, one path a line relative to the first --data folder
(the training window). --holdout-files FILE, in the same form, names the window's new files, data the
live model never saw: the holdout is cut from their rows alone and every other row trains, unless they
hold too few rows (then from all the rows, with the reason; split.py's docstring has the rule). The rows
are cut as split.py cuts them (split.read_and_cut): same data, --test-size, --seed and --holdout-files,
same holdout. --window-column COLUMN --window-days N (both or neither) train on the rows whose date in
COLUMN lies within the last N days of the data read (date >= the latest date - N days; undated rows are
dropped too) and leave COLUMN out of the features: a raw timestamp is a poor feature, and leaks when a
row was collected (split.py applies the same window).

Writes DIR/model/ (an MLflow model, with reference/profile.json, reference/sample.csv,
reference/holdout.parquet (the holdout's inputs, target and "prediction", for monitoring) and metrics.json in
it) and DIR/metrics.json, last (evaluate.evaluate_and_write, which evaluate.py uses for a team's model).
metrics.json holds what the registration gate and monitoring read:
- "task": "classification" | "regression"; "classification": "binary" | "multiclass" (None for regression);
  "classes", "positive_class", "average" (None for regression);
- "metrics": the holdout's accuracy, f1, precision, recall, roc_auc (evaluation.classification_metrics), or
  for regression mae, rmse, r2 and mape (evaluation.regression_metrics; mape None where a target is 0);
  "calibration": a classifier's expected calibration error, which monitoring checks before estimating
  performance without labels (evaluation.calibration); None for regression;
- "champion": the live model (--champion-model) scored on the same holdout rows with the same metrics, or
  None with the reason in "champion_error" (other columns, labels it never predicts, ...);
- "compatibility": None without --champion-model; else the champion's inputs and labels against the
  challenger's, computed even when the champion cannot be scored (compatibility.py has the layout):
  {"champion_features", "challenger_features", "missing_features", "new_features", "changed_types",
   "champion_classes", "new_classes", "missing_classes", "compatible": bool, "reasons": [...]};
- "single_feature": how well each feature alone predicts the target on the same holdout, the leak check
  (leakage.py has the method and what it catches): {"method", "bins", "rows", "features", "baseline",
   "best": {metric: {"feature", "value"} | None}, "top": [{"feature", "accuracy", "f1", ...}, ...]}
  (regression: method "bin_mean", metrics r2, mae, rmse, the baseline the mean predictor);
- "data_notes": values read as missing (infinities, stray text in a column of numbers; dataset.py);
- "holdout": where the holdout came from, {"from": "new files" | "all files", "files": the data files of
  --holdout-files ([] without it), "rows": the holdout's rows, "note": why it is not from the new files
  (too few rows there), or None};
- "row_window": None without --window-column; else {"column", "days", "from", "to": the window's first and
  last dates (ISO; a date alone at midnight), "rows_kept", "rows_dropped": of the rows read};
- rows, class balance (None for regression), features, files, trainer, algorithm and hyperparameters.
Bad data exits with status 2 and one line on stderr, "error: <file>: <problem>",
and leaves DIR/error.json with the same message.
Everything it needs lives in this folder, which is the job's code snapshot.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

try:                                        # imported as training.train (tests, the local stack)
    from .compatibility import input_types
    from .dataset import DataError, load_training_data, model_inputs
    from .evaluate import evaluate_and_write
    from .evaluation import Scored
    from .run_log import fail, log
    from .split import add_data_arguments, check_data_arguments, positive_float, positive_int, read_and_cut
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from compatibility import input_types  # type: ignore[import-not-found, no-redef]
    from dataset import DataError, load_training_data, model_inputs  # type: ignore[import-not-found, no-redef]
    from evaluate import evaluate_and_write  # type: ignore[import-not-found, no-redef]
    from evaluation import Scored  # type: ignore[import-not-found, no-redef]
    from run_log import fail, log  # type: ignore[import-not-found, no-redef]
    from split import (  # type: ignore[import-not-found, no-redef]
        add_data_arguments,
        check_data_arguments,
        positive_float,
        positive_int,
        read_and_cut,
    )

__all__ = ["DataError", "load_training_data", "main", "model_inputs", "parse_args", "run"]

ALGORITHMS = ("hist_gradient_boosting", "random_forest", "linear")
ALIASES = {"logistic_regression": "linear"}         # the old name of "linear", from when all were classifiers
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {
        "hist_gradient_boosting": {"max_iter": 100, "learning_rate": 0.1, "max_depth": None},
        "random_forest": {"n_estimators": 200, "max_depth": None},
        "linear": {"C": 1.0, "max_iter": 1000},
    },
    "regression": {
        "hist_gradient_boosting": {"max_iter": 100, "learning_rate": 0.1, "max_depth": None},
        "random_forest": {"n_estimators": 200, "max_depth": None},
        "linear": {"alpha": 1.0},
    },
}
MAX_CATEGORIES = 50                         # one-hot columns per categorical feature; rarer values share one
SIGNATURE_ROWS = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train.py", description="Train a tabular classifier or regression model "
                                                             "and write an MLflow model.")
    add_data_arguments(p)
    p.add_argument("--model-name", required=True, metavar="NAME")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--algorithm", choices=(*ALGORITHMS, *ALIASES), default="hist_gradient_boosting")
    p.add_argument("--max-iter", type=positive_int, help="boosting iterations / solver iterations")
    p.add_argument("--learning-rate", type=positive_float)
    p.add_argument("--max-depth", type=positive_int)
    p.add_argument("--n-estimators", type=positive_int, help="trees of the random forest")
    p.add_argument("--C", type=positive_float, help="inverse regularisation strength of logistic regression")
    p.add_argument("--alpha", type=positive_float, help="regularisation strength of ridge regression")
    p.add_argument("--champion-model", metavar="DIR",
                   help="the live model (MLflow model folder), scored on the same held-out rows")
    return check_data_arguments(p, p.parse_args(argv))


def hyperparameters(args: argparse.Namespace) -> dict:
    """The algorithm's effective hyperparameters: its defaults overridden by the flags given."""
    algorithm = ALIASES.get(args.algorithm, args.algorithm)
    chosen = dict(DEFAULTS[args.task][algorithm])
    given = {"max_iter": args.max_iter, "learning_rate": args.learning_rate, "max_depth": args.max_depth,
             "n_estimators": args.n_estimators, "C": args.C, "alpha": args.alpha}
    for name, value in given.items():
        if value is None:
            continue
        if name in chosen:
            chosen[name] = value
        else:
            log(f"note: --{name.replace('_', '-')} does not apply to {args.algorithm} ({args.task}); ignored")
    return chosen


def build_pipeline(numeric: list[str], categorical: list[str], algorithm: str, params: dict, seed: int,
                   task: str = "classification"):
    """ColumnTransformer (median-imputed numbers, scaled for the linear models; most-frequent-imputed,
    one-hot categories, unknown ones ignored) followed by the classifier or regressor."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    algorithm = ALIASES.get(algorithm, algorithm)
    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if algorithm == "linear":
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
    regression = task == "regression"
    if algorithm == "hist_gradient_boosting":
        estimator = (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(
            random_state=seed, **params)
    elif algorithm == "random_forest":
        estimator = (RandomForestRegressor if regression else RandomForestClassifier)(
            random_state=seed, n_jobs=-1, **params)
    elif regression:
        estimator = Ridge(random_state=seed, **params)
    else:
        estimator = LogisticRegression(random_state=seed, **params)
    return Pipeline([("features", ColumnTransformer(transformers, remainder="drop")),
                     ("regressor" if regression else "classifier", estimator)])


def run(args: argparse.Namespace) -> dict:
    """Train, evaluate, write the outputs; returns metrics.json's content. Raises DataError for bad data."""
    split = read_and_cut(args)
    data = split.data
    params = hyperparameters(args)
    log(f"training {args.algorithm} ({_params_text(params)}) on {len(split.train):,} rows, "
        f"holding out {len(split.holdout):,}")
    model = build_pipeline(list(data.numeric), list(data.categorical), args.algorithm, params, args.seed, args.task)
    model.fit(split.x_train, split.y_train)

    x_hold = split.x_hold
    if args.task == "regression":
        scored = Scored(model.predict(x_hold).astype("float64"))
    else:
        scored = Scored(model.predict(x_hold), model.predict_proba(x_hold), list(model.classes_))
    signature = model_signature(model, split.x_train)

    def save(folder: Path) -> None:
        import mlflow.sklearn

        quiet = logging.getLogger("mlflow.sklearn")        # its pickle-format advice, once per save
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            # cloudpickle, not mlflow 3's default skops: skops is not installed and every loader would need
            # it; the model only ever comes from this job. Explicit requirements also skip mlflow's
            # inference of them, which loads the model again in a subprocess (seconds).
            mlflow.sklearn.save_model(model, str(folder), signature=signature, serialization_format="cloudpickle",
                                      pip_requirements=_requirements())
        finally:
            quiet.setLevel(level)

    # a ridge model recorded as "logistic_regression" would mislead: a regression run records the new name
    algorithm = ALIASES.get(args.algorithm, args.algorithm) if args.task == "regression" else args.algorithm
    return evaluate_and_write(Path(args.output), split, scored, save, model_name=args.model_name,
                              champion_model=args.champion_model, challenger_inputs=input_types(signature.inputs),
                              inputs=data.features, trainer="train.py", algorithm=algorithm,
                              hyperparameters=params)


def model_signature(model, x_train):
    """The MLflow signature of the model's inputs and predictions, from the first SIGNATURE_ROWS rows."""
    from mlflow.models import infer_signature

    head = x_train.head(SIGNATURE_ROWS)
    with warnings.catch_warnings():                   # its integer-column hint: integers stay long on purpose
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        return infer_signature(head, model.predict(head))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except DataError as e:
        return fail(Path(args.output), str(e))
    return 0


def _requirements() -> list[str]:
    import cloudpickle
    import numpy
    import pandas
    import sklearn

    return [f"scikit-learn=={sklearn.__version__}", f"pandas=={pandas.__version__}", f"numpy=={numpy.__version__}",
            f"cloudpickle=={cloudpickle.__version__}"]


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


if __name__ == "__main__":
    sys.exit(main())
