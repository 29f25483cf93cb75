"""A history read from a folder of dated data files: each file (or subfolder of files) is a day, or a drop, of what
production saw, labelled. `read_folder(path, target)` makes the `History` that `mlops simulate` replays.

In the folder, an entry's date is the first YYYY-MM-DD or YYYYMMDD in its name (a real date, not within a longer
run of digits):
* files: CSV (.csv, .csv.gz), Parquet (.parquet, .pq), JSON lines (.jsonl, .ndjson, gzipped or not) and .json
  (JSON lines, or one array of objects), e.g. 2026-01-05.csv, sales_20260105.parquet;
* subfolders such as 2026-01-05/ or date=2026-01-05/ (Hive-style partitions): every such file in them, and in
  their subfolders, is that day's.
Entries that share a date are one day (their rows concatenated, in name order). Each day from the first date to
the last is in the history: a day with no entry, or whose files have no rows, is an empty frame with the same
columns. Names starting with '.' or '_' (_SUCCESS, .DS_Store) are skipped, and so are entries with no date in
their name; a dated file in a format above that this cannot read is an error, as is a file without the target
column. The rows have no known drifts (`drifts` is empty)."""
from __future__ import annotations

import datetime
import gzip
import io
import json
import re
from pathlib import Path

import pandas as pd

from training.dataset import concat_frames

from .histories import History

TASKS = ("classification", "regression")
MANY_VALUES = 20             # a float target with more distinct values than this is a regression target
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")
SUFFIXES = (*CSV_SUFFIXES, *PARQUET_SUFFIXES, *JSON_SUFFIXES)
FORMS = "*.csv, *.csv.gz, *.parquet, *.jsonl, *.json"
_DATE = re.compile(r"(?<!\d)(?:(\d{4})-(\d{2})-(\d{2})|(\d{4})(\d{2})(\d{2}))(?!\d)")


def read_folder(path: Path, target: str, task: str = "") -> History:
    """The history a folder of dated files holds (see the module docstring). task "" infers it from the target:
    "regression" for floats with more than 20 distinct values, else "classification". Raises ValueError, naming the
    file or folder, for a folder with no dated files, a file without the target column or one that cannot be read."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder; give a folder of dated data files (e.g. 2026-01-05.csv, "
                         f"or subfolders date=2026-01-05/)")
    task = (task or "").strip().lower()
    if task and task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)} (or leave it out to infer it from "
                         f"the target column)")
    dated = _dated_files(folder)
    read: dict[datetime.date, pd.DataFrame | None] = {}
    for day, files in sorted(dated.items()):
        frames = [frame for frame in (_read(file, target) for file in files) if frame.shape[1] > 0]
        read[day] = concat_frames(frames) if frames else None
    present = [frame for frame in read.values() if frame is not None]
    if not present:
        names = _names(str(file.relative_to(folder)) for files in dated.values() for file in files)
        raise ValueError(f"{folder}: every dated file is empty ({names}): there are no rows to replay")
    everything = concat_frames(present)       # the columns' dtypes from the files with rows (not a header's)
    template = everything.iloc[:0]
    columns = list(template.columns)
    first, last = min(read), max(read)
    days = []
    for offset in range((last - first).days + 1):
        frame = read.get(first + datetime.timedelta(days=offset))
        if frame is None or frame.empty:
            days.append(template.copy())
        else:
            days.append(frame if list(frame.columns) == columns else frame.reindex(columns=columns))
    rows = sum(len(frame) for frame in days)
    if rows == 0:
        raise ValueError(f"{folder}: the dated files hold no rows (only headers): there is nothing to replay")
    name = folder.resolve().name
    without = sum(1 for frame in days if frame.empty)
    gaps = f", {without:,} of them without rows" if without else ""
    description = (f"{len(days):,} days of data from {name} ({rows:,} rows{gaps}), "
                   f"{first.isoformat()} to {last.isoformat()}")
    return History(name=name, description=description, target=target,
                   task=task or _infer_task(everything[target]),
                   start=first, days=tuple(days), drifts=())


def date_in(name: str) -> datetime.date | None:
    """The first real date written YYYY-MM-DD or YYYYMMDD in a file or folder name; None without one."""
    for match in _DATE.finditer(name):
        year, month, day = (int(g) for g in (match.groups()[:3] if match[1] else match.groups()[3:]))
        try:
            return datetime.date(year, month, day)
        except ValueError:
            continue
    return None


def _dated_files(folder: Path) -> dict[datetime.date, list[Path]]:
    dated: dict[datetime.date, list[Path]] = {}
    seen: list[str] = []
    for entry in sorted(folder.iterdir()):
        if _hidden(entry.name):
            continue
        seen.append(entry.name + ("/" if entry.is_dir() else ""))
        day = date_in(entry.name)
        if day is None:
            continue
        if entry.is_dir():
            files = [file for file in sorted(entry.rglob("*")) if file.is_file()
                     and not any(_hidden(part) for part in file.relative_to(entry).parts)]
            for file in files:
                _check_form(file)
            dated.setdefault(day, []).extend(files)
        elif entry.is_file():
            _check_form(entry)
            dated.setdefault(day, []).append(entry)
    if not dated:
        there = f"; there: {_names(seen)}" if seen else "; it is empty"
        raise ValueError(f"{folder}: no dated data files found (looked for names with a date, YYYY-MM-DD or "
                         f"YYYYMMDD, like 2026-01-05.csv or date=2026-01-05/{there})")
    return dated


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _check_form(file: Path) -> None:
    if not file.name.lower().endswith(SUFFIXES):
        raise ValueError(f"{file}: not a data file this can read ({FORMS}, or .pq, .ndjson, gzipped JSON); "
                         f"convert it, or move it out of the folder")


def _read(file: Path, target: str) -> pd.DataFrame:
    """One file's rows; a frame with no columns for a file with nothing in it."""
    lower = file.name.lower()
    form = ("CSV" if lower.endswith(CSV_SUFFIXES) else "Parquet" if lower.endswith(PARQUET_SUFFIXES)
            else "JSON")
    if file.stat().st_size == 0:
        return pd.DataFrame()
    try:
        if form == "CSV":
            try:
                frame = pd.read_csv(file, low_memory=False)
            except pd.errors.EmptyDataError:       # blank lines only
                return pd.DataFrame()
        elif form == "Parquet":
            frame = pd.read_parquet(file)
        else:
            frame = _read_json(file)
    except (OSError, EOFError, ValueError, UnicodeDecodeError, pd.errors.ParserError, gzip.BadGzipFile) as e:
        raise ValueError(f"{file}: cannot be read as {form} ({_first_line(e)})") from None
    if frame.shape[1] > 0 and target not in frame.columns:
        raise ValueError(f"{file}: no target column {target!r}; its columns: {_names(map(str, frame.columns))}")
    return frame


def _read_json(file: Path) -> pd.DataFrame:
    """JSON lines, or one array of objects."""
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8").strip()
    if not text:
        return pd.DataFrame()
    if text.startswith("["):
        records = json.loads(text)
        if not all(isinstance(record, dict) for record in records):
            raise ValueError("a JSON array, but not of objects (one object a row)")
        return pd.DataFrame.from_records(records)
    return pd.read_json(io.StringIO(text), lines=True)


def _infer_task(labels: pd.Series) -> str:
    floats = pd.api.types.is_float_dtype(labels.dtype)
    return "regression" if floats and labels.nunique(dropna=True) > MANY_VALUES else "classification"


def _names(items, limit: int = 8) -> str:
    texts = list(items)
    shown = ", ".join(texts[:limit])
    return shown + (f", ... ({len(texts) - limit} more)" if len(texts) > limit else "")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
