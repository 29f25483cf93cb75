"""A stand-in for training/split.py (being written), with its command line, until it lands; the tests run the
real one when it exists. Reads the CSV / Parquet files under --data (only those --data-files lists, one path
per line), and writes --train-data/train.csv and --holdout/holdout.csv.

    python split.py --data PATH --target COL --task classification|regression --train-data DIR --holdout DIR
                    [--data-files FILE] [--test-size 0.2] [--seed 42]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

SUFFIXES = (".csv", ".parquet")


def main() -> int:
    p = argparse.ArgumentParser(prog="split.py")
    p.add_argument("--data", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--task", choices=("classification", "regression"), required=True)
    p.add_argument("--train-data", required=True)
    p.add_argument("--holdout", required=True)
    p.add_argument("--data-files")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    root = Path(args.data)
    if args.data_files:
        files = [root / line.strip() for line in Path(args.data_files).read_text().splitlines() if line.strip()]
    else:
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
    if not files:
        print(f"error: {args.data}: no data files", file=sys.stderr)
        return 2
    frame = pd.concat([pd.read_csv(f) if f.suffix == ".csv" else pd.read_parquet(f) for f in files],
                      ignore_index=True)
    if args.target not in frame.columns:
        print(f"error: {files[0].name}: the target column '{args.target}' is missing", file=sys.stderr)
        return 2
    stratify = frame[args.target] if args.task == "classification" else None
    train, holdout = train_test_split(frame, test_size=args.test_size, random_state=args.seed, stratify=stratify)
    for folder, name, rows in ((args.train_data, "train.csv", train), (args.holdout, "holdout.csv", holdout)):
        Path(folder).mkdir(parents=True, exist_ok=True)
        rows.to_csv(Path(folder) / name, index=False)
    print(f"split: {len(train)} training rows, {len(holdout)} held out, from {len(files)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
