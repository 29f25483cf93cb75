"""A stand-in for training/evaluate.py (being written), with its command line, until it lands; the tests run
the real one when it exists. Scores the MLflow model (--model) on --holdout/holdout.csv, copies it to
--output/model/ and writes --output/metrics.json.

    python evaluate.py --model DIR --holdout DIR --target COL --task T --model-name NAME --output DIR
                       [--train-data DIR] [--champion-model DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score


def main() -> int:
    p = argparse.ArgumentParser(prog="evaluate.py")
    for flag in ("--model", "--holdout", "--target", "--task", "--model-name", "--output"):
        p.add_argument(flag, required=True)
    p.add_argument("--train-data")
    p.add_argument("--champion-model")
    args = p.parse_args()
    if not (Path(args.model) / "MLmodel").exists():
        print(f"error: {args.model}: the team's model output holds no MLmodel file", file=sys.stderr)
        return 2
    holdout = pd.read_csv(Path(args.holdout) / "holdout.csv")
    features, labels = holdout.drop(columns=[args.target]), holdout[args.target]
    predicted = mlflow.pyfunc.load_model(args.model).predict(features)
    score = accuracy_score if args.task == "classification" else r2_score
    metrics = {"model_name": args.model_name, "task": args.task, "rows": len(holdout),
               "metrics": {score.__name__.removesuffix("_score"): float(score(labels, predicted))},
               "train_data": bool(args.train_data), "champion": args.champion_model}
    out = Path(args.output)
    shutil.copytree(args.model, out / "model", dirs_exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"evaluate: {metrics['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
