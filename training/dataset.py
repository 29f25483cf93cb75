"""Reading training data: CSV / Parquet files or folders of them, checked so that bad data fails with one
message naming the file and the problem (`DataError`), never a traceback from deep inside pandas.

Values scikit-learn refuses are settled here, per file (`repair_numbers`), not inside the models:
- an infinity (inf, -inf, "Infinity", "1e400") in a feature is treated as missing, and so imputed like
  an empty cell; the count per column is reported (TrainingData.notes);
- a few text cells in a column of numbers (at most STRAY_TEXT_SHARE of its values: "unknown", "?") are
  treated as missing the same way, and the column stays numeric; more text than that and the column is
  text (categorical), as before;
- a finite number beyond the float32 range (|x| > 3.4e38, e.g. 1e308, often a "missing" sentinel) fails
  with a DataError naming the file, the column and the count: the models compute in 32-bit floats, and
  only the data's owner knows whether such values mean "missing" or need rescaling;
- in the target, an infinity fails (a label must be a class, a regression target a finite number); empty
  labels drop their rows. A regression target must be numbers (`task="regression"`), a few text cells
  included: those fail, naming them, since only the data's owner knows what they stand for.
Missing feature values (NaN) are imputed by the model's pipeline; a column with no values is not a feature.

A row window (`RowWindow`: --window-column COL --window-days N) keeps, of the rows read, those whose date in
COL lies within the last N days of the data: date >= (the latest date in COL - N days), that day included.
COL must be dates in every file (a text format pandas reads, one format a column, or a date column of
Parquet); a value that is not a date fails, naming the file; rows without a date are dropped (they cannot
be placed in the window) with a note. COL is then never a feature: a raw timestamp is a poor feature that
leaks when the data was collected, and no value the live model will be sent lies in the window's past."""
from __future__ import annotations

import difflib
import gzip
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:                                        # imported as training.dataset (tests, the local stack)
    from .reference_profile import column_kind
except ImportError:                         # run as a script from the code snapshot (Azure ML)
    # the same modules by their script names: mypy checks the package imports above
    from reference_profile import column_kind  # type: ignore[import-not-found, no-redef]

JSON_LINES_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", *JSON_LINES_SUFFIXES)
FLOAT32_MAX = float(np.finfo(np.float32).max)   # 3.4e38: trees (random forest) cast features to float32
STRAY_TEXT_SHARE = 0.05                     # text cells a column of numbers may hold, read as missing
IGNORED_COLUMNS = ("request_id",)           # the serving path adds it to join ground truth; never a feature
TASKS = ("classification", "regression")    # binary or multiclass is found from the labels
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


class DataError(Exception):
    """The training data cannot be used. The message names the file (or files) and the problem."""


@dataclass(frozen=True)
class TrainingData:
    frame: pd.DataFrame                     # the labelled rows, every column (ignored ones too)
    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    ignored: tuple[str, ...]                # columns present but not used as features, with the reason
    files: tuple[Path, ...]
    dropped_unlabelled: int                 # rows whose target was empty
    notes: tuple[str, ...] = ()             # values read as missing (infinities, stray text), per column
    # each row's file, as its position in files (`load` sets it; None when unknown): the --holdout-files rows
    origins: np.ndarray | None = field(default=None, compare=False, repr=False)
    # the row window the rows were kept by (`RowWindow.record`'s layout), or None: every row read
    row_window: dict | None = field(default=None, compare=False)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def source(self) -> str:
        return describe_files(self.files)


@dataclass(frozen=True)
class RowWindow:
    """Train on the rows whose date in `column` lies within the last `days` days of the data (--window-column,
    --window-days): date >= (the latest date - days)."""
    column: str
    days: int

    def record(self, start: pd.Timestamp, end: pd.Timestamp, kept: int, dropped: int) -> dict:
        """metrics.json's and split.json's "row_window": the window's first and last dates (ISO, a date alone
        when it falls on midnight) and the rows read that it kept and dropped."""
        return {"column": self.column, "days": self.days, "from": _iso(start), "to": _iso(end),
                "rows_kept": kept, "rows_dropped": dropped}


def find_data_files(paths: Iterable[str | Path]) -> list[Path]:
    """The data files named by paths: files as given, folders searched recursively for *.csv, *.csv.gz,
    *.parquet and JSON lines (*.jsonl, *.ndjson, gzipped or not), skipping hidden and marker entries (names
    starting with '.' or '_', like _SUCCESS)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found: list[Path] = []
            skipped: list[Path] = []
            for entry in sorted(path.rglob("*")):
                if not entry.is_file():
                    continue
                parts = entry.relative_to(path).parts
                if any(part.startswith((".", "_")) for part in parts):
                    continue
                (found if entry.name.lower().endswith(DATA_SUFFIXES) else skipped).append(entry)
            if not found:
                others = f"; other files there: {_names(skipped)}" if skipped else ""
                raise DataError(f"{path}: no data files found in this folder (looked for *.csv, *.csv.gz, "
                                f"*.parquet and *.jsonl in it and its subfolders{others})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    return list(dict.fromkeys(files))


def read_data_file(path: Path) -> pd.DataFrame:
    """One CSV or JSON lines file (optionally gzipped), or Parquet file, as a DataFrame with at least one row.
    Parquet is recognised by the file's first bytes, so a Parquet file named .csv still reads; JSON lines by
    the name (.jsonl, .ndjson)."""
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(4)
    is_parquet = head == PARQUET_MAGIC
    if not is_parquet and path.name.lower().endswith((".parquet", ".pq")):
        raise DataError(f"{path}: not a Parquet file (it does not start with the Parquet magic bytes 'PAR1')")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: UTF-16 text, not UTF-8 text; save it as UTF-8 CSV or Parquet")
    if not is_parquet and head[:2] != GZIP_MAGIC:
        with open(path, "rb") as f:
            if b"\x00" in f.read(8192):
                raise DataError(f"{path}: a binary file, neither CSV text nor Parquet")
    json_lines = not is_parquet and path.name.lower().endswith(JSON_LINES_SUFFIXES)
    try:
        if json_lines:
            frame = pd.read_json(path, lines=True, compression="gzip" if head[:2] == GZIP_MAGIC else None)
        elif is_parquet:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, low_memory=False, compression="gzip" if head[:2] == GZIP_MAGIC else None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no header and no rows (only blank lines)") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({_bad_encoding_where(path, e)}); "
                        f"save it as UTF-8 CSV or Parquet") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: not valid CSV ({_first_line(e)})") from None
    except (OSError, EOFError, ValueError, gzip.BadGzipFile) as e:    # pyarrow's ArrowInvalid is a ValueError
        kind = ("Parquet" if is_parquet else "JSON lines" if json_lines
                else "gzipped CSV" if head[:2] == GZIP_MAGIC else "CSV")
        raise DataError(f"{path}: cannot be read as {kind} ({_first_line(e)})") from None
    if frame.shape[1] == 0:
        raise DataError(f"{path}: the file has no columns")
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no rows (columns: {_names(frame.columns, width=60)})")
    return frame


def load_training_data(paths: Sequence[str | Path], target: str, *, min_rows: int = 50, test_size: float = 0.2,
                       log=None, task: str = "classification") -> pd.DataFrame:
    """The labelled rows of every data file under paths, as one DataFrame; raises DataError naming the
    file and the problem (see `read_files` and `prepare`)."""
    return load(paths, target, min_rows=min_rows, test_size=test_size, log=log, task=task).frame


def load(paths: Sequence[str | Path], target: str, *, min_rows: int = 50, test_size: float | None = 0.2,
         log=None, task: str = "classification", window: RowWindow | None = None) -> TrainingData:
    """Read and check the training data: `read_files`, then (`window`) `window_rows`, then `prepare`; also
    records each row's file (origins)."""
    frames, files, notes = read_frames(paths, target, log=log)
    record = None
    if window is not None:
        frames, record, undated = window_rows(frames, files, window)
        notes.extend(undated)
    origins = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    kept = [f for f in frames if len(f)] or frames[:1]          # a file the window left empty adds no rows
    data = prepare(concat_frames(kept), target, files, min_rows=min_rows, test_size=test_size, task=task,
                   origins=origins, row_window=record)
    return replace(data, notes=tuple(notes))


def window_rows(frames: list[pd.DataFrame], files: Sequence[Path],
                window: RowWindow) -> tuple[list[pd.DataFrame], dict, list[str]]:
    """Each file's rows dated within the window (the module docstring): the frames cut, the window's record
    (`RowWindow.record`) and a note on the rows without a date, if any. Raises DataError naming the file for
    a missing column, or values that are not dates."""
    column = window.column
    if column not in frames[0].columns:         # read_frames: every file has the first one's columns
        raise DataError(f"{files[0]}: column {column!r} (--window-column) is missing"
                        f"{_did_you_mean(column, frames[0].columns)}; the columns are: "
                        f"{_names(frames[0].columns, limit=30, width=60)}")
    dates = [_dates(frame[column], column, path) for frame, path in zip(frames, files, strict=True)]
    present = [d.dropna() for d in dates]
    if not any(len(d) for d in present):
        raise DataError(f"{describe_files(files)}: column {column!r} (--window-column) has no dates: it is "
                        f"empty in all {sum(len(f) for f in frames):,} rows")
    end = max(d.max() for d in present if len(d))
    start = end - pd.Timedelta(days=window.days)
    keep = [(d >= start).to_numpy() for d in dates]             # NaT (no date) compares False: dropped
    cut = [frame.loc[k].reset_index(drop=True) for frame, k in zip(frames, keep, strict=True)]
    kept = sum(int(k.sum()) for k in keep)
    total = sum(len(f) for f in frames)
    undated = sum(int(d.isna().sum()) for d in dates)
    notes = [f"column {column!r}: {undated:,} row{'s' if undated != 1 else ''} without a date, outside the row "
             f"window (--window-column), dropped"] if undated else []
    return cut, window.record(start, end, kept, total - kept), notes


def _dates(values: pd.Series, column: str, path: Path) -> pd.Series:
    """A file's column of dates as naive timestamps (dates with a time zone in UTC); NaT where it is empty.
    Raises DataError for a column of numbers or values that are not dates."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    present = values.notna()
    if (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
            and present.any()):
        raise DataError(f"{path}: column {column!r} (--window-column) holds numbers (e.g. "
                        f"{_plain(values[present].iloc[0])!r}), not dates; the row window needs dates such as "
                        f"2025-05-01 or 2025-05-01T12:00:00")
    with warnings.catch_warnings():         # "Could not infer format": the values that fail are named below
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(values, errors="coerce")
        except ValueError:                  # offsets that differ (summer and winter time): compare them in UTC
            parsed = pd.to_datetime(values, errors="coerce", utc=True)
        except (TypeError, OverflowError) as e:
            raise DataError(f"{path}: column {column!r} (--window-column) cannot be read as dates "
                            f"({_first_line(e)})") from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = present.to_numpy() & parsed.isna().to_numpy()
    if bad.any():
        count = int(bad.sum())
        examples = _names([repr(str(v)) for v in pd.unique(values[bad])[:5]])
        raise DataError(f"{path}: column {column!r} (--window-column) has {count:,} value{'s' if count != 1 else ''} "
                        f"that {'are' if count != 1 else 'is'} not dates ({examples}); the row window needs a "
                        f"date in one format in each row (e.g. 2025-05-01), or the cell left empty")
    return parsed


def _iso(moment: pd.Timestamp) -> str:
    return moment.date().isoformat() if moment == moment.normalize() else moment.isoformat()


def window_files(paths: Sequence[str | Path], listing: str | Path) -> list[Path]:
    """The training window: the files (or folders) listed in the file `listing`, one path a line relative to
    the first of paths (a folder, the dataset root); blank lines and lines starting with '#' are skipped.
    Raises DataError naming the listing and the line for a path that is not there or leaves the root."""
    return [path for _, _, path in listed_paths(paths, listing)]


def listed_paths(paths: Sequence[str | Path], listing: str | Path,
                 flag: str = "--data-files") -> list[tuple[int, str, Path]]:
    """`window_files` with each path's line number and text as written: (line, name, path). flag: the
    option that named the listing, for the message when the first of paths is not a folder."""
    listing = Path(listing)
    root = Path(paths[0])
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{listing}: the list of data files cannot be read ({_first_line(e)})") from None
    if not root.is_dir():
        raise DataError(f"{root}: {flag} lists paths relative to the first --data folder, and this is "
                        f"not a folder")
    files: list[tuple[int, str, Path]] = []
    base = root.resolve()
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        path = root / name.lstrip("/")
        if not path.resolve().is_relative_to(base):
            raise DataError(f"{listing}: line {number}: {name!r} is outside the data folder {root}")
        if not path.exists():
            raise DataError(f"{listing}: line {number}: {name!r} is not in the data folder {root}")
        files.append((number, name, path))
    if not files:
        raise DataError(f"{listing}: lists no data files (one path a line, relative to {root})")
    return files


def read_files(paths: Sequence[str | Path], target: str, *, log=None) -> tuple[pd.DataFrame, list[Path], list[str]]:
    """Read every data file under paths into one DataFrame, checking each file on the way: readable,
    not empty, has the target column, same columns as the first file, numbers scikit-learn can use
    (`repair_numbers`), and each column of one kind (numeric or text) in all files. Raises DataError
    naming the file and the problem. Also returns notes on the values read as missing, per column."""
    frames, files, notes = read_frames(paths, target, log=log)
    return concat_frames(frames), files, notes


def read_frames(paths: Sequence[str | Path], target: str, *,
                log=None) -> tuple[list[pd.DataFrame], list[Path], list[str]]:
    """`read_files` without the final concatenation: one DataFrame per file, in the order of the files."""
    files = find_data_files(paths)
    if log:
        log(f"reading {len(files)} data file{'s' if len(files) != 1 else ''} "
            f"({_size(sum(f.stat().st_size for f in files))})")
    frames: list[pd.DataFrame] = []
    first: Path | None = None
    kinds: dict[str, tuple[str, Path]] = {}          # column -> (kind, first file where it had values)
    repaired: dict[tuple[str, str], list] = {}      # (column, "text" | "infinite") -> [count, examples, files]
    for path in files:
        frame = read_data_file(path)
        if target not in frame.columns:
            raise DataError(f"{path}: the target column {target!r} is missing{_did_you_mean(target, frame.columns)}; "
                            f"the columns are: {_names(frame.columns, limit=30, width=60)}")
        if first is None:
            first = path
        else:
            missing = [c for c in frames[0].columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in frames[0].columns]
            if missing or extra:
                what = "; ".join(p for p in (f"missing {_names(missing, width=60)}" if missing else "",
                                              f"unexpected {_names(extra, width=60)}" if extra else "") if p)
                raise DataError(f"{path}: its columns differ from those of {first} ({what})")
            frame = frame[list(frames[0].columns)]
        frame, found = repair_numbers(frame, target, path)
        for column, what, count, examples in found:
            seen = repaired.setdefault((column, what), [0, [], []])
            seen[0] += count
            seen[1] += [e for e in examples if e not in seen[1]]
            seen[2].append(path)
        for column in frame.columns:
            values = frame[column]
            if column == target or values.isna().all():
                continue
            kind = column_kind(values) or str(values.dtype)
            first_kind, first_path = kinds.setdefault(column, (kind, path))
            if first_kind != kind:
                example = _plain(values.dropna().iloc[0])
                raise DataError(f"{path}: column {column!r} holds {kind} values (e.g. {example!r}) but "
                                f"{first_kind} values in {first_path}")
        if log:
            log(f"  {path}: {len(frame):,} rows x {frame.shape[1]} columns")
        frames.append(frame)
    notes = [f"column {column!r}: {count:,} {what} value{'s' if count != 1 else ''} "
             f"({_names(examples[:5])}) in {_names(paths_, limit=3)}, treated as missing"
             for (column, what), (count, examples, paths_) in repaired.items()]
    return frames, files, notes


def repair_numbers(frame: pd.DataFrame, target: str, path: Path) -> tuple[pd.DataFrame, list[tuple]]:
    """frame with the feature values scikit-learn refuses settled (see the module docstring): stray text
    in a column of numbers and infinities become NaN; a number beyond the float32 range raises DataError.
    Also returns what was changed: (column, "text" | "infinite", count, examples)."""
    found = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        if _is_text(values.dtype):
            parsed, stray = _stray_text(values)
            if parsed is None or stray is None:     # both or neither
                continue
            found.append((column, "text", int(stray.sum()), [repr(str(v)) for v in pd.unique(values[stray])[:5]]))
            frame[column] = values = parsed
        if not pd.api.types.is_float_dtype(values.dtype):     # integers cannot hold infinities nor exceed 9.3e18
            continue
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        infinite = np.isinf(numbers)
        huge = np.abs(numbers, where=~infinite, out=np.zeros_like(numbers)) > FLOAT32_MAX
        if huge.any():
            count = int(huge.sum())
            raise DataError(f"{path}: column {column!r} has {count:,} value{'s' if count != 1 else ''} beyond "
                            f"±{FLOAT32_MAX:.1e} (e.g. {numbers[huge][0]:g}), too large for the models, which "
                            f"compute in 32-bit floats: if they stand for missing values, leave those cells empty; "
                            f"otherwise rescale the column (divide it, or take its logarithm)")
        if infinite.any():
            signs = ["inf" if v > 0 else "-inf" for v in pd.unique(numbers[infinite])]
            found.append((column, "infinite", int(infinite.sum()), signs))
            frame[column] = values.mask(infinite)
    return frame, found


def _is_text(dtype) -> bool:
    return pd.api.types.is_object_dtype(dtype) or (pd.api.types.is_string_dtype(dtype)
                                                   and not isinstance(dtype, pd.CategoricalDtype))


def _stray_text(values: pd.Series) -> tuple[pd.Series | None, pd.Series | None]:
    """A text column of numbers with a few text cells: (the numbers, NaN for those cells, and which cells
    they were), or (None, None) when it is not one: text throughout, numbers throughout (a declared text
    column such as postcodes stays text), or more text than STRAY_TEXT_SHARE."""
    present = values.notna()
    count = int(present.sum())
    if count == 0:
        return None, None
    head = values[present].iloc[:200]
    if any(isinstance(v, (bool, np.bool_)) for v in head):      # True/False are categories, not 1/0
        return None, None
    try:
        if pd.to_numeric(head, errors="coerce").notna().mean() < 1 - 4 * STRAY_TEXT_SHARE:   # cheap first look
            return None, None
        codes, uniques = pd.factorize(values, use_na_sentinel=True)                # parse each value once
        numbers = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return None, None
    parsed = np.where(codes >= 0, numbers[np.maximum(codes, 0)] if len(numbers) else np.nan, np.nan)
    stray = pd.Series(present.to_numpy() & np.isnan(parsed), index=values.index)
    if not stray.any() or stray.sum() > STRAY_TEXT_SHARE * count:
        return None, None
    return pd.Series(parsed, index=values.index, name=values.name), stray


def prepare(frame: pd.DataFrame, target: str, files: Sequence[Path], *, min_rows: int = 50,
            test_size: float | None = 0.2, task: str = "classification",
            origins: np.ndarray | None = None, row_window: dict | None = None) -> TrainingData:
    """Check that frame can train and evaluate a model of `task` on target, and sort its columns into
    numeric and categorical features. Rows without a label are dropped. test_size None: the rows are
    already split (evaluate.py), so the checks that each side of a split can be cut are skipped.
    origins: each row's file (its position in files), kept for the labelled rows. row_window: the rows are
    those of a row window (`RowWindow.record`): its date column is not a feature, and too few rows say so."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    source = describe_files(files)
    labels = frame[target]
    if isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.astype(labels.cat.categories.dtype)
    labelled = labels.notna()
    if not labelled.any():
        raise DataError(f"{source}: the target column {target!r} is empty in all {len(frame):,} rows")
    dropped = int((~labelled).sum())
    if origins is not None:
        origins = np.asarray(origins)[labelled.to_numpy()]
    frame = frame.loc[labelled].reset_index(drop=True)
    labels = labels[labelled].reset_index(drop=True)
    labels = (_numeric_target(labels, target, source) if task == "regression"
              else _normalise_labels(labels, target, source))
    frame[target] = labels

    counts = labels.value_counts()
    if len(counts) < 2:
        raise DataError(f"{source}: the target column {target!r} has only one "
                        + (f"value ({_plain(counts.index[0])!r} in all {len(frame):,} labelled rows); "
                           f"there is nothing to learn" if task == "regression" else
                           f"class ({_plain(counts.index[0])!r} in all {len(frame):,} labelled rows); "
                           f"a classifier needs at least two"))
    if len(frame) < min_rows:
        within = (f" dated within the last {row_window['days']} days of {row_window['column']!r} (--window-days)"
                  if row_window else "")
        raise DataError(f"{source}: only {len(frame):,} labelled rows{within}; at least {min_rows} are needed "
                        f"(--min-rows)")
    if task == "classification" and test_size is not None:
        rare = counts[counts < 2]
        if len(rare):
            raise DataError(f"{source}: class {_plain(rare.index[0])!r} of {target!r} has only "
                            f"{int(rare.iloc[0])} row; each class needs at least 2 for a stratified holdout "
                            f"(drop or relabel those rows)")
        holdout = int(np.ceil(test_size * len(frame)))
        if holdout < len(counts) or len(frame) - holdout < len(counts):
            raise DataError(f"{source}: {len(frame):,} rows are too few for {len(counts)} classes with a "
                            f"{test_size:.0%} holdout: each side of the split needs a row of every class")

    numeric: list[str] = []
    categorical: list[str] = []
    ignored: list[str] = []
    for column in frame.columns:
        if column == target:
            continue
        kind = column_kind(frame[column])
        if column in IGNORED_COLUMNS:
            ignored.append(f"{column} (request id)")
        elif row_window and column == row_window.get("column"):
            ignored.append(f"{column} (the row window's dates, --window-column)")
        elif kind is None:
            ignored.append(f"{column} ({frame[column].dtype} is not a usable feature type)")
        elif frame[column].isna().all():
            ignored.append(f"{column} (no values)")
        elif kind == "categorical" and _all_distinct(frame[column]):
            ignored.append(f"{column} (every value distinct: an identifier, not a category)")
        else:
            (numeric if kind == "numeric" else categorical).append(column)
    if not numeric and not categorical:
        raise DataError(f"{source}: no usable feature columns besides the target {target!r}")
    return TrainingData(frame=frame, target=target, numeric=tuple(numeric), categorical=tuple(categorical),
                        ignored=tuple(ignored), files=tuple(files), dropped_unlabelled=dropped, origins=origins,
                        row_window=row_window)


def describe_files(files: Sequence[Path]) -> str:
    """How an error names the data: the file itself, or the folder and how many files."""
    if len(files) == 1:
        return str(files[0])
    folder = os.path.commonpath([str(f.parent) for f in files]) or "."
    return f"{folder} ({len(files)} files: {_names([f.name for f in files], limit=3)})"


def _normalise_labels(labels: pd.Series, target: str, source: str) -> pd.Series:
    """Integral floats (a CSV label column with gaps reads as float) become ints; other floats are not
    class labels."""
    if pd.api.types.is_float_dtype(labels.dtype):
        values = labels.to_numpy(dtype="float64")
        infinite = np.isinf(values)
        if infinite.any():
            count = int(infinite.sum())
            signs = _names(["inf" if v > 0 else "-inf" for v in pd.unique(values[infinite])])
            raise DataError(f"{source}: the target column {target!r} has {count:,} infinite "
                            f"value{'s' if count != 1 else ''} ({signs}); a label must be a class: drop those rows, "
                            f"or leave their label empty to have them dropped")
        if not np.equal(np.mod(values, 1), 0).all() or np.abs(values).max() >= 2 ** 53:
            example = _plain(next(v for v in values if v != int(v) or abs(v) >= 2 ** 53))
            raise DataError(f"{source}: the target column {target!r} holds continuous numbers (e.g. {example!r}); "
                            f"a classifier needs class labels: give a column of labels, or train a regression "
                            f"model (--task regression)")
        return labels.astype("int64")
    if pd.api.types.is_object_dtype(labels.dtype) and len({type(v) for v in labels}) > 1:
        return labels.map(str).astype("str")            # mixed Python values ("1" and 1): compare as text
    return labels


def _numeric_target(labels: pd.Series, target: str, source: str) -> pd.Series:
    """A regression target as float64: numbers, or text that is all numbers ("3.5"); booleans, text and
    infinities fail, naming a few of them."""
    if pd.api.types.is_bool_dtype(labels.dtype) or any(isinstance(v, (bool, np.bool_)) for v in labels.iloc[:200]):
        raise DataError(f"{source}: the target column {target!r} holds true/false values; a regression model "
                        f"needs numbers (for labels, use --task classification)")
    if pd.api.types.is_numeric_dtype(labels.dtype) and not pd.api.types.is_complex_dtype(labels.dtype):
        values = labels.to_numpy(dtype="float64", na_value=np.nan)
    else:
        values = pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        text = np.isnan(values)
        if text.any():
            count = int(text.sum())
            examples = _names([repr(str(v)) for v in pd.unique(labels[text])[:5]])
            raise DataError(f"{source}: the target column {target!r} holds {count:,} value{'s' if count != 1 else ''} "
                            f"that are not numbers ({examples}); a regression model needs numbers: fix or drop "
                            f"those rows, or leave their target empty to have them dropped "
                            f"(for labels, use --task classification)")
    infinite = np.isinf(values)
    if infinite.any():
        count = int(infinite.sum())
        raise DataError(f"{source}: the target column {target!r} has {count:,} infinite "
                        f"value{'s' if count != 1 else ''}; a regression target must be a finite number: drop those "
                        f"rows, or leave their target empty to have them dropped")
    if np.abs(values).max() > FLOAT32_MAX:
        raise DataError(f"{source}: the target column {target!r} has values beyond ±{FLOAT32_MAX:.1e} "
                        f"(e.g. {values[np.abs(values) > FLOAT32_MAX][0]:g}): rescale it (divide it, or take its "
                        f"logarithm)")
    return pd.Series(values, index=labels.index, name=labels.name)


def model_inputs(data: TrainingData) -> pd.DataFrame:
    """The feature frame as the model sees it: columns as read, except object columns mixing Python
    types (1 and "1"), which become text so the encoder sees one kind of value, and nullable booleans
    with gaps (Parquet), which become Python booleans and NaN (scikit-learn cannot compare pandas' NA).
    Integer columns stay integers: the signature then accepts the JSON integers a client sends (MLflow
    will not cast int64 to double, calling it unsafe)."""
    x = data.frame[data.features].copy()
    for column in data.categorical:
        if pd.api.types.is_object_dtype(x[column].dtype) and len({type(v) for v in x[column].dropna()}) > 1:
            x[column] = x[column].map(lambda v: v if v is None or v != v else str(v)).astype("str")
        elif isinstance(x[column].dtype, pd.BooleanDtype) and x[column].isna().any():
            x[column] = x[column].astype(object).where(x[column].notna(), np.nan)
    return x


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    # A column with no values in one file reads as float64 (CSV) and would turn a text column into object.
    dtypes: dict[str, Any] = {}          # numpy or pandas extension dtypes
    for frame in frames:
        for column in frame.columns:
            if column not in dtypes and frame[column].notna().any():
                dtypes[column] = frame[column].dtype
    aligned = []
    for frame in frames:
        empty = [c for c in frame.columns if c in dtypes and frame[c].dtype != dtypes[c] and frame[c].isna().all()
                 and not pd.api.types.is_bool_dtype(dtypes[c]) and not pd.api.types.is_integer_dtype(dtypes[c])]
        aligned.append(frame.astype({c: dtypes[c] for c in empty}) if empty else frame)
    return pd.concat(aligned, ignore_index=True)


def _bad_encoding_where(path: Path, error: UnicodeDecodeError) -> str:
    opener = gzip.open if path.read_bytes()[:2] == GZIP_MAGIC else open
    try:
        with opener(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as e:
                    return f"line {number} has byte 0x{line[e.start]:02x}"
    except OSError:
        pass
    return f"byte 0x{error.object[error.start]:02x}"


def _all_distinct(values: pd.Series) -> bool:
    present = values.dropna()
    return len(present) >= 20 and not pd.api.types.is_bool_dtype(values.dtype) and present.nunique() == len(present)


def _plain(value: object) -> object:
    """numpy scalars as Python ones, so messages say 2 rather than np.int64(2)."""
    return value.item() if isinstance(value, np.generic) else value


def _did_you_mean(name: str, columns: Iterable[object]) -> str:
    names = [str(c) for c in columns]
    close = ([c for c in names if c.strip().lower() == name.strip().lower()]
             or difflib.get_close_matches(name, names, n=1))
    return f" (did you mean {close[0]!r}?)" if close else ""


def _names(items: Iterable[object], limit: int = 10, width: int | None = None) -> str:
    """Up to `limit` of items, each cut to `width` characters (column names can be megabytes long)."""
    texts = [str(i) for i in items]
    if width is not None:
        texts = [text if len(text) <= width else text[:width - 1] + "…" for text in texts]
    shown = ", ".join(texts[:limit])
    return shown + (f", ... ({len(texts) - limit} more)" if len(texts) > limit else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
