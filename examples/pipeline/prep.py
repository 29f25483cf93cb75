"""The example team pipeline's first step: read the training rows (CSV or Parquet files under --data), drop
rows without a label and exact duplicates, and write them to --prepared as prepared.csv.

    python prep.py --data DIR --target COLUMN --prepared DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

SUFFIXES = (".csv", ".parquet")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="prep.py", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a folder of CSV or Parquet files")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--prepared", required=True, help="the folder to write prepared.csv into")
    args = p.parse_args(argv)

    files = sorted(f for f in Path(args.data).rglob("*") if f.is_file() and f.suffix in SUFFIXES)
    if not files:
        print(f"error: {args.data}: no CSV or Parquet files", file=sys.stderr)
        return 2
    frame = pd.concat([pd.read_csv(f) if f.suffix == ".csv" else pd.read_parquet(f) for f in files],
                      ignore_index=True)
    if args.target not in frame.columns:
        print(f"error: {args.data}: no column {args.target!r} (columns: {', '.join(map(str, frame.columns))})",
              file=sys.stderr)
        return 2
    rows = len(frame)
    frame = frame.dropna(subset=[args.target]).drop_duplicates()
    out = Path(args.prepared)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "prepared.csv", index=False)
    print(f"prep: kept {len(frame)} of {rows} rows from {len(files)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
