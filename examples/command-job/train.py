"""The example team command job: read the training rows (CSV or Parquet files under --data), fit a gradient-
boosted classifier and save it as an MLflow model (--model), the output the chain's evaluation step reads.

    python train.py --data DIR --target COLUMN --model DIR [--learning-rate 0.1] [--seed 42]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

SUFFIXES = (".csv", ".parquet")
IGNORED = ("request_id",)        # the serving path's join key, never a feature


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a folder of CSV or Parquet files")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--model", required=True, help="the folder to save the MLflow model into")
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)

    files = sorted(f for f in Path(args.data).rglob("*") if f.is_file() and f.suffix in SUFFIXES)
    if not files:
        print(f"error: {args.data}: no CSV or Parquet files", file=sys.stderr)
        return 2
    frame = pd.concat([pd.read_csv(f) if f.suffix == ".csv" else pd.read_parquet(f) for f in files],
                      ignore_index=True).dropna(subset=[args.target])
    features = frame.drop(columns=[args.target, *(c for c in IGNORED if c in frame.columns)])
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    # text columns as codes inside the saved pipeline: the served model takes the raw columns
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    model = make_pipeline(
        ColumnTransformer([("text", codes, text)], remainder="passthrough"),
        HistGradientBoostingClassifier(learning_rate=args.learning_rate, random_state=args.seed,
                                       categorical_features=list(range(len(text))) or None))
    model.fit(features, frame[args.target])
    print(f"train: {len(frame)} rows from {len(files)} file(s); training accuracy "
          f"{model.score(features, frame[args.target]):.3f}")
    sample = features.head(5)
    # cloudpickle: mlflow's default format (skops) needs a package the serving environment lacks
    mlflow.sklearn.save_model(model, args.model, signature=infer_signature(sample, model.predict(sample)),
                              input_example=sample, serialization_format="cloudpickle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
