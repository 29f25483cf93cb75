"""Cut the data into training and holdout rows exactly as train.py cuts it: the step before a team's own
training code, so that evaluate.py scores the team's model, and the champion, on the rows train.py would
have held out.

    python split.py --data PATH [PATH ...] --target COLUMN --task classification|regression
                    --train-data OUTDIR --holdout OUTDIR [--data-files FILE] [--holdout-files FILE]
                    [--window-column COLUMN --window-days N] [--test-size 0.2] [--seed 42] [--min-rows 50]

Reads the data as train.py does (dataset.py: files or folders of CSV / gzipped CSV / Parquet, every check
and repair), only the files listed in FILE with --data-files (one path a line, relative to the first
--data folder: the training window). Same data, --test-size, --seed and --holdout-files: the same holdout
rows as train.py (stratified by class for classification).
--holdout-files FILE (the same form as --data-files) names the window's new files, data the live model
never saw: the holdout is then --test-size of their rows alone, and every other row trains, so that the
champion is not scored on rows it was trained on. When they hold too few rows for a holdout (fewer than
MIN_HOLDOUT_ROWS held out, or than the classes; a class with fewer than 2 rows in them) the holdout is cut
from all the rows as without the flag, and the "holdout" record says why (`cut`).
--window-column COLUMN --window-days N (both or neither) then keep only the rows whose date in COLUMN lies
within the last N days of the data read: date >= (the latest date in COLUMN - N days); rows without a date
are dropped too, with a note (dataset.py's docstring has the rule). COLUMN is then not a feature: a raw
timestamp is a poor feature that leaks when a row was collected. Same flags: the same rows as train.py.
Writes, each renamed into place when complete:
- --train-data OUTDIR/train.csv and --holdout OUTDIR/holdout.csv: the labelled rows, every column as read
  (values dataset.py reads as missing left empty) but request_id, as CSV so that any team's script can read
  them. request_id is left out because the scoring script takes it out of every request: a model that
  needed it could not answer;
- split.json beside each: task, target, seed, test size, row counts, classes, features, the data files
  and notes of the read, and where the holdout came from ("holdout": {"from": "new files" | "all files",
  "files": the data files of --holdout-files ([] without it), "rows": the holdout's rows, "note": why the
  holdout is not from the new files, or None}) and the row window ("row_window": {"column", "days", "from",
  "to": the window's first and last dates (ISO), "rows_kept", "rows_dropped": of the rows read}, or None
  without --window-column), which evaluate.py carries into metrics.json.
Bad data exits with status 2 and one line on stderr, "error: <file>: <problem>", and leaves
--holdout OUTDIR/error.json with the same message.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

try:                                        # imported as training.split (tests, the local stack)
    from .dataset import (
        IGNORED_COLUMNS,
        TASKS,
        DataError,
        RowWindow,
        TrainingData,
        concat_frames,
        describe_files,
        listed_paths,
        load,
        model_inputs,
        prepare,
        read_frames,
        window_files,
    )
    from .labels import plain
    from .run_log import fail, log
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from dataset import (  # type: ignore[import-not-found, no-redef]
        IGNORED_COLUMNS,
        TASKS,
        DataError,
        RowWindow,
        TrainingData,
        concat_frames,
        describe_files,
        listed_paths,
        load,
        model_inputs,
        prepare,
        read_frames,
        window_files,
    )
    from labels import plain  # type: ignore[import-not-found, no-redef]
    from run_log import fail, log  # type: ignore[import-not-found, no-redef]

TRAIN_FILE, HOLDOUT_FILE, MANIFEST = "train.csv", "holdout.csv", "split.json"
MIN_HOLDOUT_ROWS = 20                       # fewest rows of the new files to hold out (--holdout-files)
NEW_FILES, ALL_FILES = "new files", "all files"


@dataclass(frozen=True)
class Split:
    """The labelled rows and which of them train and which are held out (positions in data.frame)."""
    data: TrainingData
    task: str
    train: np.ndarray
    holdout: np.ndarray
    x: pd.DataFrame                         # model_inputs(data): the features as the model sees them
    seed: int | None = None
    test_size: float | None = None
    from_new_files: bool = False            # the holdout was cut from the rows of --holdout-files alone
    new_files: tuple[str, ...] = ()         # the data files of --holdout-files, as in data.files
    holdout_note: str | None = None         # why the holdout is not from the new files (too few rows)

    @property
    def holdout_record(self) -> dict:
        """Where the holdout came from: metrics.json's and split.json's "holdout"."""
        return {"from": NEW_FILES if self.from_new_files else ALL_FILES, "files": list(self.new_files),
                "rows": len(self.holdout), "note": self.holdout_note}

    @property
    def labels(self) -> pd.Series:
        return self.data.frame[self.data.target]

    @property
    def classes(self) -> list | None:
        """The sorted labels of a classification target; None for regression."""
        if self.task == "regression":
            return None
        return [plain(c) for c in self.labels.value_counts().sort_index().index]

    @property
    def class_counts(self) -> dict[str, int] | None:
        if self.task == "regression":
            return None
        counts = self.labels.value_counts().sort_index()
        return {str(plain(c)): int(n) for c, n in counts.items()}

    @property
    def x_train(self) -> pd.DataFrame:
        return self.x.iloc[self.train]

    @property
    def x_hold(self) -> pd.DataFrame:
        return self.x.iloc[self.holdout]

    @property
    def y_train(self) -> pd.Series:
        return self.labels.iloc[self.train]

    @property
    def y_hold(self) -> pd.Series:
        return self.labels.iloc[self.holdout]

    @property
    def holdout_rows(self) -> pd.DataFrame:
        """The held-out rows with every column but the target, for a model that takes other columns."""
        return self.data.frame.iloc[self.holdout].drop(columns=[self.data.target])


def cut(data: TrainingData, task: str, test_size: float, seed: int,
        new_files: Sequence[Path] | None = None) -> Split:
    """train.py's split: scikit-learn's train_test_split of the rows, stratified by class for classification.
    new_files (some of data.files, --holdout-files): the holdout is cut the same way from their rows alone,
    and every other row trains; when they hold too few rows for that (`too_few_new_rows`), from all the
    rows as without them, with the reason in holdout_note."""
    from sklearn.model_selection import train_test_split

    labels = data.frame[data.target]
    note = None
    if new_files is not None:
        if data.origins is None:
            raise ValueError("the data does not record each row's file (dataset.load does)")
        chosen = {Path(f) for f in new_files}
        files = tuple(str(f) for f in data.files if f in chosen)
        new = np.isin(data.origins, [i for i, f in enumerate(data.files) if f in chosen])
        note = too_few_new_rows(labels[new], labels, task, test_size)
        if note is None:
            rows = np.flatnonzero(new)
            train, holdout = train_test_split(rows, test_size=test_size, random_state=seed,
                                              stratify=labels.iloc[rows] if task == "classification" else None)
            train = np.sort(np.concatenate([np.flatnonzero(~new), train]))
            return Split(data, task, train, holdout, model_inputs(data), seed, test_size, True, files)
        note += "; the holdout is cut from all files"
    train, holdout = train_test_split(np.arange(len(labels)), test_size=test_size, random_state=seed,
                                      stratify=labels if task == "classification" else None)
    return Split(data, task, train, holdout, model_inputs(data), seed, test_size, False,
                 files if new_files is not None else (), note)


def too_few_new_rows(new: pd.Series, labels: pd.Series, task: str, test_size: float) -> str | None:
    """Why the labels of the new files (new, of all the labels) cannot give a holdout of their own, or None:
    fewer than max(MIN_HOLDOUT_ROWS, the classes) rows to hold out, too few left to train on for
    train_test_split, or (classification) a class with fewer than 2 rows among them, which stratifying
    needs (one on each side)."""
    held = math.ceil(test_size * len(new))              # as train_test_split rounds a fraction
    classes = labels.value_counts().sort_index() if task == "classification" else None
    least = max(MIN_HOLDOUT_ROWS, len(classes) if classes is not None else 1)
    if held < least:
        return (f"the new files hold {len(new):,} labelled row{'s' if len(new) != 1 else ''}: a {test_size:.0%} "
                f"holdout of them is {held:,} row{'s' if held != 1 else ''}, fewer than {least}")
    if classes is not None:
        counts = new.value_counts()
        for label in classes.index:
            count = int(counts.get(label, 0))
            if count < 2:
                return (f"class {plain(label)!r} has {count} row{'s' if count != 1 else ''} in the new files; a "
                        f"stratified holdout needs at least 2 of each class")
    if len(new) - held < (len(classes) if classes is not None else 1):
        return (f"a {test_size:.0%} holdout of the new files' {len(new):,} labelled rows leaves "
                f"{len(new) - held:,} of them to train on, too few to cut")
    return None


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The flags train.py and split.py share, so that both read and cut the data alike."""
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="CSV / Parquet / JSON lines files, or folders searched recursively for *.csv, *.csv.gz, "
                        "*.parquet, *.jsonl")
    p.add_argument("--target", required=True, metavar="COLUMN", help="the label column (a number for regression)")
    p.add_argument("--task", choices=TASKS, default="classification",
                   help="classification (binary or multiclass, found from the labels) or regression")
    p.add_argument("--data-files", metavar="FILE",
                   help="read only the files listed in FILE, one path a line relative to the first --data folder")
    p.add_argument("--holdout-files", metavar="FILE",
                   help="hold out rows of the files listed in FILE only (the new data, which the live model never "
                        "saw), listed like --data-files; the rest of the rows train")
    p.add_argument("--window-column", metavar="COLUMN",
                   help="with --window-days: keep only the rows whose date in COLUMN lies within the last N days of "
                        "the data (date >= the latest date - N days); COLUMN is then not a feature, since a raw "
                        "timestamp is a poor feature that leaks when a row was collected")
    p.add_argument("--window-days", type=positive_int, metavar="N",
                   help="with --window-column: how many days back from the latest date the rows are kept")
    p.add_argument("--test-size", type=fraction, default=0.2, help="held-out fraction (default 0.2)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-rows", type=positive_int, default=50, help="fewest labelled rows to train on (default 50)")


def check_data_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """args, once the flags of add_data_arguments that go together are checked (argparse's usage error and
    exit status 2 otherwise)."""
    if (args.window_column is None) != (args.window_days is None):
        given, missing = (("--window-column", "--window-days") if args.window_days is None
                          else ("--window-days", "--window-column"))
        p.error(f"{given} needs {missing}: a row window is a date column and a number of days (give both or "
                f"neither)")
    if args.window_column is not None and not args.window_column.strip():
        p.error("--window-column: the date column's name is empty")
    if args.window_column == args.target:
        p.error(f"--window-column {args.window_column!r} is the target (--target); the row window needs a date "
                f"column")
    return args


def read_and_cut(args: argparse.Namespace) -> Split:
    """read_data, then cut, the holdout from the rows of --holdout-files when given (its listing is read
    first, so that a bad line fails before the data is read); logs where the holdout comes from."""
    listed = listed_paths(args.data, args.holdout_files, "--holdout-files") if args.holdout_files else None
    data = read_data(args)
    new = new_files(data, listed, args) if listed is not None else None
    split = cut(data, args.task, args.test_size, args.seed, new)
    if split.from_new_files:
        log(f"holding out {len(split.holdout):,} rows of the {len(split.new_files)} new "
            f"file{'s' if len(split.new_files) != 1 else ''} ({describe_files([Path(f) for f in split.new_files])}, "
            f"--holdout-files); the other {len(split.train):,} rows train")
    elif split.holdout_note:
        log(f"note: {split.holdout_note} (--holdout-files)")
    return split


def new_files(data: TrainingData, listed: list[tuple[int, str, Path]], args: argparse.Namespace) -> list[Path]:
    """The data files --holdout-files names (a listed folder names the files read under it); raises DataError
    naming the listing and the line for a path that is not among the files read."""
    read = [f.resolve() for f in data.files]
    chosen: set[int] = set()
    for number, name, path in listed:
        where = path.resolve()
        found = [i for i, f in enumerate(read) if f == where or f.is_relative_to(where)]
        if not found:
            window = " (the training window, --data-files)" if args.data_files else ""
            raise DataError(f"{args.holdout_files}: line {number}: {name!r} is not among the data files "
                            f"read{window}")
        chosen.update(found)
    return [f for i, f in enumerate(data.files) if i in chosen]


def read_data(args: argparse.Namespace) -> TrainingData:
    """The data the flags of add_data_arguments name, read and checked (dataset.load); logs what it found."""
    paths = list(args.data)
    if args.data_files:
        if len(paths) > 1:
            log(f"note: --data-files lists the files to read under {paths[0]}; the other --data paths are not read")
        paths = window_files(paths, args.data_files)
    window = RowWindow(args.window_column, args.window_days) if args.window_column else None
    data = load(paths, args.target, min_rows=args.min_rows, test_size=args.test_size, log=log, task=args.task,
                window=window)
    if data.row_window:
        row = data.row_window
        log(f"row window: {row['rows_kept']:,} rows dated from {row['from']} to {row['to']} in {row['column']!r} "
            f"(the last {row['days']} days, --window-days); {row['rows_dropped']:,} rows outside it dropped")
    if data.dropped_unlabelled:
        log(f"dropped {data.dropped_unlabelled:,} rows without a value in {data.target!r}")
    for note in data.notes:
        log(f"note: {note}")
    for note in data.ignored:
        log(f"not a feature: {note}")
    labels = data.frame[data.target]
    if args.task == "regression":
        about = (f"mean {labels.mean():.4g}, std {labels.std():.4g}, "
                 f"from {labels.min():.4g} to {labels.max():.4g}")
    else:
        counts = labels.value_counts().sort_index()
        about = ", ".join(f"{plain(c)!r} {n:,} ({n / len(labels):.1%})" for c, n in counts.items())
    log(f"{len(data.frame):,} labelled rows from {data.source}; {len(data.numeric)} numeric and "
        f"{len(data.categorical)} categorical features; target {data.target!r}: {about}")
    return data


def write_split(split: Split, train_dir: Path, holdout_dir: Path) -> None:
    """train.csv, holdout.csv and split.json beside each (the module docstring)."""
    frame = split.data.frame.drop(columns=[c for c in IGNORED_COLUMNS if c in split.data.frame.columns])
    manifest = json.dumps(manifest_of(split), indent=2)
    for folder, name, rows in ((train_dir, TRAIN_FILE, split.train), (holdout_dir, HOLDOUT_FILE, split.holdout)):
        folder.mkdir(parents=True, exist_ok=True)
        part: pd.DataFrame = frame.iloc[rows]
        _replace(folder / name, lambda path, part=part: part.to_csv(path, index=False))
        _replace(folder / MANIFEST, lambda path: path.write_text(manifest))


def manifest_of(split: Split) -> dict:
    data = split.data
    return {"task": split.task, "target": data.target, "seed": split.seed, "test_size": split.test_size,
            "rows": {"train": len(split.train), "holdout": len(split.holdout), "total": len(data.frame),
                     "unlabelled_dropped": data.dropped_unlabelled},
            "classes": split.classes,
            "features": {"numeric": list(data.numeric), "categorical": list(data.categorical),
                         "ignored": list(data.ignored)},
            "data_files": [str(f) for f in data.files], "data_notes": list(data.notes),
            "holdout": split.holdout_record, "row_window": data.row_window}


def read_split(holdout: Path, train: Path | None, target: str, task: str) -> Split:
    """What split.py wrote, read back for evaluate.py: holdout.csv (and train.csv when given) through the
    same checks as any data, the features found on all the rows as train.py finds them. split.json, when
    present, restores the original data files, notes, seed, test size, where the holdout came from and the
    row window (whose date column is then not a feature, as in split.py). Raises DataError."""
    files = [_data_file(train, TRAIN_FILE)] if train is not None else []
    files.append(_data_file(holdout, HOLDOUT_FILE))
    manifest = _manifest(holdout)
    row_window = manifest.get("row_window")
    row_window = row_window if isinstance(row_window, dict) else None
    frames, read, notes = read_frames(files, target, log=log)
    train_rows = int(frames[0][target].notna().sum()) if train is not None else 0
    data = prepare(concat_frames(frames), target, read, min_rows=1, test_size=None, task=task, row_window=row_window)
    data = replace(data, notes=tuple(notes))
    if manifest.get("task") not in (None, task):
        raise DataError(f"{holdout}: the rows were split for {manifest['task']}, not {task} (--task)")
    if manifest:
        ignored = (manifest.get("features") or {}).get("ignored")      # as found on the data, request_id too
        data = replace(data, files=tuple(Path(f) for f in manifest.get("data_files") or read),
                       ignored=tuple(ignored) if isinstance(ignored, list) else data.ignored,
                       notes=tuple([*(manifest.get("data_notes") or []), *notes]),
                       dropped_unlabelled=data.dropped_unlabelled
                       + int((manifest.get("rows") or {}).get("unlabelled_dropped") or 0))
    positions = np.arange(len(data.frame))
    came = manifest.get("holdout")
    came = came if isinstance(came, dict) else {}         # none from split.py before --holdout-files: all files
    return Split(data, task, positions[:train_rows], positions[train_rows:], model_inputs(data),
                 manifest.get("seed"), manifest.get("test_size"), came.get("from") == NEW_FILES,
                 tuple(str(f) for f in came.get("files") or ()), came.get("note"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="split.py", description="Cut the data into training and holdout rows "
                                                             "as train.py does, for a team's own training code.")
    add_data_arguments(p)
    p.add_argument("--train-data", required=True, metavar="OUTDIR", help="where train.csv is written")
    p.add_argument("--holdout", required=True, metavar="OUTDIR", help="where holdout.csv is written")
    return check_data_arguments(p, p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        split = read_and_cut(args)
        write_split(split, Path(args.train_data), Path(args.holdout))
    except DataError as e:
        return fail(Path(args.holdout), str(e))
    log(f"wrote {len(split.train):,} training rows to {Path(args.train_data) / TRAIN_FILE} and "
        f"{len(split.holdout):,} holdout rows to {Path(args.holdout) / HOLDOUT_FILE}")
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _data_file(folder: Path, name: str) -> Path:
    """folder/name as split.py wrote it; a file given directly is taken as it is."""
    if folder.is_file():
        return folder
    if (folder / name).is_file():
        return folder / name
    raise DataError(f"{folder}: no {name} in this folder (split.py writes it there)")


def _manifest(folder: Path) -> dict:
    path = (folder if folder.is_dir() else folder.parent) / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not readable JSON ({e})") from None
    return manifest if isinstance(manifest, dict) else {}


def _replace(path: Path, write) -> None:
    """Write through a temporary name and rename, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
