"""What `mlops drift` reads, on either side: the data files a path names, read in one way whatever the format.

A path is a file, a folder (every data file beneath it, recursively, in name order; names starting with
'.' or '_' skipped, like _SUCCESS) or a quoted glob ('data/*.csv'). Formats, by the file's name:

    .csv .csv.gz                 CSV (gzipped or not)
    .parquet .pq                 Parquet
    .json                        a JSON array of row objects, or JSON lines
    .jsonl .ndjson (.gz too)     JSON lines: one row object a line, or the data collector's
                                 {"data": [rows]} lines

The reference side is read whole (it is profiled: `read_frame`); the current side streams into a
`monitoring.window.CurrentWindow` (`fill_window`): Parquet by row groups and CSV in blocks through the
window's own readers, JSON in chunks of rows. Every problem is an `InputError` whose one-line message names
the file.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pandas as pd

FORMATS = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json",
           ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".ndjson": "jsonl", ".ndjson.gz": "jsonl"}
KNOWN = ", ".join(FORMATS)
JSON_CHUNK_ROWS = 50_000


class InputError(ValueError):
    """Input the user has to fix; the message is one line saying what is wrong with which file."""


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    return next((kind for suffix, kind in sorted(FORMATS.items(), key=lambda kv: -len(kv[0]))
                 if name.endswith(suffix)), None)


def data_files(spec: str | Path) -> list[Path]:
    """The data files a path names: a file, a folder searched recursively, or a glob pattern."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return _in_folder(path)
    if path.is_file():
        if file_format(path) is None:
            raise InputError(f"{path}: unknown format {_suffix(path)!r}; use {KNOWN}, a folder of them, "
                             "or a profile.json")
        return [path]
    if any(c in text for c in "*?["):
        found: list[Path] = []
        for match in sorted(Path().glob(text) if not path.is_absolute() else _absolute_glob(path)):
            found += _in_folder(match) if match.is_dir() else [match] if file_format(match) else []
        if not found:
            raise InputError(f"{text}: no data file matches ({KNOWN})")
        return list(dict.fromkeys(found))
    raise InputError(f"{text}: no such file or folder")


def _absolute_glob(path: Path) -> Iterator[Path]:
    anchor = Path(path.anchor)
    return anchor.glob(str(path.relative_to(anchor)))


def _in_folder(folder: Path) -> list[Path]:
    found: list[Path] = []
    others: list[str] = []
    for entry in sorted(folder.rglob("*")):
        if entry.is_file() and not any(p.startswith((".", "_")) for p in entry.relative_to(folder).parts):
            if file_format(entry):
                found.append(entry)
            else:
                others.append(entry.name)
    if not found:
        shown = f"; other files there: {', '.join(others[:5])}" if others else ""
        raise InputError(f"{folder}: no data files in this folder or beneath it ({KNOWN}){shown}")
    return found


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]) or "(no suffix)"


def describe(files: list[Path], spec: str | Path) -> str:
    """How messages name one side: the file, or the path given and its count of files."""
    return str(files[0]) if len(files) == 1 and str(files[0]) == str(spec) else f"{spec} ({len(files)} files)"


# ---- the reference: read whole --------------------------------------------------------------------------------

def read_frame(files: list[Path]) -> pd.DataFrame:
    """All rows of the files as one DataFrame (files with other columns add theirs, NaN elsewhere)."""
    from training.dataset import concat_frames
    frames = []
    for path in files:
        kind = file_format(path)
        with _reading(path, kind):
            if kind == "csv":
                try:
                    frames.append(pd.read_csv(path, low_memory=False))
                except pd.errors.EmptyDataError:
                    raise InputError(f"{path}: the file is empty (no header, no rows)") from None
            elif kind == "parquet":
                frames.append(pd.read_parquet(path))
            else:
                frames.extend(json_chunks(path))
    frames = [f for f in frames if len(f.columns)]
    return concat_frames(frames) if frames else pd.DataFrame()


# ---- the current side: streamed ------------------------------------------------------------------------------

def fill_window(window, files: list[Path]) -> set[str]:
    """Count every file's rows into window (a CurrentWindow); the columns the files hold."""
    import pyarrow.parquet as pq
    from pyarrow import csv

    from monitoring.window import read_csv, read_parquet
    columns: set[str] = set()
    for path in files:
        kind = file_format(path)
        with _reading(path, kind):
            if kind == "parquet":
                schema = pq.read_schema(path)
                index = (schema.pandas_metadata or {}).get("index_columns", [])   # a saved pandas index
                columns.update(n for n in schema.names if n not in index)
                read_parquet(window, path)
            elif kind == "csv":
                columns.update(csv.open_csv(path, read_options=csv.ReadOptions(block_size=1 << 16)).schema.names)
                read_csv(window, path)
            else:
                for chunk in json_chunks(path):
                    columns.update(map(str, chunk.columns))
                    window.update(chunk)
    return columns


def json_chunks(path: Path, chunk_rows: int = JSON_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The rows of a JSON file as DataFrames of at most chunk_rows rows: a JSON array of objects (read whole:
    an array has no line to stop at), JSON lines of row objects, or data collector lines."""
    with _open_text(path) as handle:
        first = _first_char(handle)
        if first == "":
            return
        if first == "[":
            rows = json.load(handle)
            if not all(isinstance(r, dict) for r in rows):
                raise InputError(f"{path}: a JSON array of objects (one per row) was expected")
            for start in range(0, len(rows), chunk_rows):
                yield pd.DataFrame.from_records(rows[start:start + chunk_rows])
            return
        if first != "{":
            raise InputError(f"{path}: neither a JSON array of rows nor JSON lines (it starts with {first!r})")
        batch: list[dict] = []
        for row in _json_line_rows(path, handle):
            batch.append(row)
            if len(batch) >= chunk_rows:
                yield pd.DataFrame.from_records(batch)
                batch = []
        if batch:
            yield pd.DataFrame.from_records(batch)


def _json_line_rows(path: Path, handle: IO[str]) -> Iterator[dict]:
    """Rows of JSON lines: a line holding {"data": [rows]} (or {"data": {"columns", "data"}}) is a data
    collector line (monitoring.window.jsonl_rows reads it), any other object is one row."""
    from monitoring.window import jsonl_rows
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}: line {number} is not JSON ({error.msg})") from None
        if not isinstance(value, dict):
            raise InputError(f"{path}: line {number} is not a JSON object (one row per line was expected)")
        if isinstance(value.get("data"), (list, dict)):
            yield from jsonl_rows([line])
        else:
            yield value


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _first_char(handle: IO[str]) -> str:
    """The first character that is not white space (a BOM skipped), the handle left at the start."""
    head = handle.read(4096).lstrip("\ufeff \t\r\n")
    while not head:
        more = handle.read(4096)
        if not more:
            break
        head = more.lstrip("\ufeff \t\r\n")
    handle.seek(0)
    if handle.read(1) != "\ufeff":
        handle.seek(0)
    return head[:1]


@contextmanager
def _reading(path: Path, kind: str | None) -> Iterator[None]:
    """Errors while reading one file become an InputError naming it and the format."""
    try:
        yield
    except InputError:
        raise
    except (OSError, EOFError, ValueError, KeyError) as error:   # ArrowInvalid is a ValueError, BadGzipFile an OSError
        raise InputError(f"{path}: cannot be read as {kind or 'data'}: {first_line(error)}") from None


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
