"""The example team pipeline's second step: fit a random forest (a classifier, or a regressor for --task
regression) on prepared.csv (--data) and save it as an
MLflow model (--model), the output the chain's evaluation step reads. Numeric columns are imputed, text
columns one-hot encoded, inside the saved pipeline, so the model takes the raw columns when it serves.

    python train.py --data DIR --target COLUMN --model DIR [--task classification] [--n-estimators 100] [--seed 42]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

IGNORED = ("request_id",)        # the serving path's join key, never a feature


def model_for(features: pd.DataFrame, task: str, n_estimators: int, seed: int) -> Pipeline:
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    numbers = [c for c in features.columns if c not in text]
    columns = ColumnTransformer([
        ("numbers", SimpleImputer(strategy="median"), numbers),
        ("text", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), text),
    ])
    forest = RandomForestRegressor if task == "regression" else RandomForestClassifier
    return make_pipeline(columns, forest(n_estimators=n_estimators, random_state=seed, n_jobs=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the folder prep.py wrote prepared.csv into")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--model", required=True, help="the folder to save the MLflow model into")
    p.add_argument("--task", choices=("classification", "regression"), default="classification")
    p.add_argument("--n-estimators", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)

    frame = pd.read_csv(Path(args.data) / "prepared.csv")
    features = frame.drop(columns=[args.target, *(c for c in IGNORED if c in frame.columns)])
    model = model_for(features, args.task, args.n_estimators, args.seed).fit(features, frame[args.target])
    score = "r2" if args.task == "regression" else "accuracy"
    print(f"train: {args.n_estimators} trees on {len(frame)} rows, {features.shape[1]} features; "
          f"training {score} {model.score(features, frame[args.target]):.3f}")
    sample = features.head(5)
    # cloudpickle: mlflow's default format (skops) needs a package the serving environment lacks
    mlflow.sklearn.save_model(model, args.model, signature=infer_signature(sample, model.predict(sample)),
                              input_example=sample, serialization_format="cloudpickle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
