"""The current window of data, read in chunks and summarised against a reference profile.

`CurrentWindow.for_profile(profile)` tracks every profiled feature (and model output, for prediction
drift). `update(chunk)` takes a pyarrow Table/RecordBatch or a pandas DataFrame; the readers below feed
it from Parquet, CSV (pyarrow, streaming) and the data collector's JSONL lines. What is kept per column
is bounded, whatever the window's size:

* numeric: counts per reference quantile bin (`training.reference_profile.assign_bins`), null, type-error
  (non-null values that do not parse as numbers), infinite and out-of-range (outside the reference
  [min, max], infinities included) counts, and a uniform sample of at most `sample_size` finite values.
  The sample is a bottom-k sample on a hash of each row's position in the window, so it is the same
  however the window is chunked (and the same rows for every column).
* categorical: a count per reference category (`str(value)`, as the profile keys them), the count of
  values outside them ("unseen", they go to `__other__`), and the null count.

All counts are additive, hence exact for any chunking.
"""
from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.reference_profile import OTHER, assign_bins

DEFAULT_SAMPLE_SIZE = 10_000
DEFAULT_CHUNK_ROWS = 262_144
_WORKERS = min(os.cpu_count() or 1, 4)
_pool = None


def _map(fn, items: list) -> list:
    """fn over items on a small shared thread pool (numpy and arrow release the GIL while they count)."""
    global _pool
    if _WORKERS < 2 or len(items) < 2:
        return [fn(i) for i in items]
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="window")
    return list(_pool.map(fn, items))


def _prefetch(iterator: Iterator, depth: int = 1) -> Iterator:
    """The iterator's items, the next one read on a background thread while the caller works on this one."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                return q.put(item, timeout=0.1)
            except queue.Full:
                pass

    def produce() -> None:
        try:
            for item in iterator:
                if stop.is_set():
                    return
                put(item)
            put(done)
        except BaseException as exc:       # handed to the consumer, which raises it
            put(exc)
    thread = threading.Thread(target=produce, daemon=True, name="window-read")
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:                               # the consumer stopped early or failed: let the reader go
        stop.set()
        thread.join()


def _row_keys(start: int, n: int, seed: int) -> np.ndarray:
    """splitmix64 of the row positions start..start+n: a uniform, chunking-independent key per row."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass
class NumericCounts:
    edges: np.ndarray
    low: float
    high: float
    sample_size: int
    rows: int = 0
    nulls: int = 0
    type_errors: int = 0
    infinite: int = 0
    out_of_range: int = 0
    counts: np.ndarray = field(default=None)  # type: ignore[arg-type]  # None until __post_init__ fills it
    _keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    _values: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))

    def __post_init__(self) -> None:
        if self.counts is None:
            self.counts = np.zeros(max(len(self.edges) - 1, 1), dtype=np.int64)

    def add(self, values: np.ndarray, type_errors: int, keys: np.ndarray) -> None:
        """values: float64 with NaN for nulls and for values that failed to parse (type_errors of them)."""
        self.rows += len(values)
        finite_mask = np.isfinite(values)
        finite = values[finite_mask] if not finite_mask.all() else values
        nan = int(np.isnan(values).sum())
        self.type_errors += type_errors
        self.nulls += nan - type_errors
        infinite = len(values) - nan - len(finite)
        self.infinite += infinite
        if len(self.edges) == 0:          # the reference had no finite value: nothing to bin against
            return
        self.out_of_range += infinite + int(np.count_nonzero((finite < self.low) | (finite > self.high)))
        self.counts += np.bincount(assign_bins(finite, self.edges), minlength=len(self.counts))
        self._sample(finite, keys if finite is values else keys[finite_mask])

    def _sample(self, finite: np.ndarray, keys: np.ndarray) -> None:
        m = self.sample_size
        if len(self._keys) >= m:                      # only keys below the current m-th can enter
            take = keys < self._keys.max()
            finite, keys = finite[take], keys[take]
            if len(keys) == 0:
                return
        keys = np.concatenate((self._keys, keys))
        values = np.concatenate((self._values, finite))
        if len(keys) > m:
            keep = np.argpartition(keys, m - 1)[:m]
            keys, values = keys[keep], values[keep]
        self._keys, self._values = keys, values

    @property
    def sample(self) -> np.ndarray:
        return np.sort(self._values)


@dataclass
class CategoricalCounts:
    keys: list[str]
    rows: int = 0
    nulls: int = 0
    unseen: int = 0
    counts: np.ndarray = field(default=None)  # type: ignore[arg-type]  # None until __post_init__ fills it

    def __post_init__(self) -> None:
        self._index = {k: i for i, k in enumerate(self.keys)}
        if self.counts is None:
            self.counts = np.zeros(len(self.keys), dtype=np.int64)

    def add(self, values: Iterable, counts: Iterable[int], rows: int, nulls: int) -> None:
        """values/counts: the distinct non-null values of a chunk and how often each occurred."""
        self.rows += rows
        self.nulls += nulls
        for value, count in zip(values, counts):
            i = self._index.get(str(value))
            if i is None or self.keys[i] == OTHER:
                self.unseen += int(count)
            else:
                self.counts[i] += int(count)


class CurrentWindow:
    """Bounded summaries of the current window, per feature and per model output."""

    def __init__(self, features: dict[str, NumericCounts | CategoricalCounts],
                 outputs: dict[str, NumericCounts | CategoricalCounts] | None = None, seed: int = 0):
        self.features = features
        self.outputs = outputs or {}
        self.rows = 0
        self._outputs_seen = 0
        self.seed = seed

    @classmethod
    def for_profile(cls, profile: dict, *, sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0) -> CurrentWindow:
        def make(spec: dict) -> NumericCounts | CategoricalCounts:
            if spec["type"] == "numeric":
                edges = np.asarray(spec["histogram"]["edges"], dtype=np.float64)
                return NumericCounts(edges, spec["min"] if spec["min"] is not None else np.nan,
                                     spec["max"] if spec["max"] is not None else np.nan, sample_size)
            return CategoricalCounts(list(spec["frequencies"]))
        return cls({n: make(s) for n, s in profile["features"].items()},
                   {n: make(s) for n, s in (profile.get("outputs") or {}).items()}, seed)

    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.features, *self.outputs]))

    def update(self, chunk: pa.Table | pa.RecordBatch | pd.DataFrame) -> CurrentWindow:
        n = self._count(chunk, [*self.features.items(), *self.outputs.items()], self.rows)
        self.rows += n
        return self

    def update_outputs(self, chunk: pa.Table | pa.RecordBatch | pd.DataFrame) -> CurrentWindow:
        """The model outputs of requests update() has counted already: the data collector keeps inputs and
        outputs apart, so they are read apart, and the window's row count stays that of the requests."""
        self._outputs_seen += self._count(chunk, list(self.outputs.items()), self._outputs_seen)
        return self

    def _count(self, chunk, accumulators: list, start: int) -> int:
        n = chunk.num_rows if not isinstance(chunk, pd.DataFrame) else len(chunk)
        present = set(chunk.columns if isinstance(chunk, pd.DataFrame) else chunk.column_names)
        tracked = [(name, acc) for name, acc in accumulators if name in present]
        keys = _row_keys(start, n, self.seed) if any(isinstance(a, NumericCounts) for _, a in tracked) else None

        def count(item) -> None:
            name, acc = item
            column = chunk[name]
            if isinstance(acc, NumericCounts):
                values, errors = _as_float(column)
                assert keys is not None      # made whenever a NumericCounts is tracked
                acc.add(values, errors, keys)
            else:
                acc.add(*_value_counts(column), rows=n, nulls=_null_count(column))
        _map(count, tracked)
        return n


def _as_float(column) -> tuple[np.ndarray, int]:
    """float64 values (NaN for nulls and unparseable values) and the count of unparseable values."""
    if isinstance(column, (pa.ChunkedArray, pa.Array)):
        t = column.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
            return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), 0
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            try:
                return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), 0
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        column = column.to_pandas()
    series = pd.Series(column)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    null = series.isna().to_numpy()
    parsed = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    errors = int(np.count_nonzero(np.isnan(parsed) & ~null & ~series.astype(str).str.lower().isin(["nan"]).to_numpy()))
    return parsed, errors


def _value_counts(column) -> tuple[list, list[int]]:
    if isinstance(column, (pa.ChunkedArray, pa.Array)):
        if isinstance(column.type, pa.DictionaryType):         # count the codes: no decoding
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            values, counts = [], []
            for piece in chunks:
                part = cast(pa.DictionaryArray, piece)     # a dictionary column's chunks
                codes = part.indices.to_numpy(zero_copy_only=False)
                codes = codes[~np.isnan(codes)].astype(np.int64) if codes.dtype.kind == "f" else codes
                found = np.bincount(codes, minlength=len(part.dictionary))
                values += part.dictionary.to_pylist()
                counts += found.tolist()
            return ([v for v, c in zip(values, counts) if c and v is not None and v == v],
                    [c for v, c in zip(values, counts) if c and v is not None and v == v])
        vc = pc.value_counts(column)
        values, counts = vc.field("values").to_pylist(), vc.field("counts").to_pylist()
        return ([v for v in values if v is not None and v == v],
                [c for v, c in zip(values, counts) if v is not None and v == v])
    counted = pd.Series(column).value_counts(dropna=True, sort=False)
    return list(counted.index), counted.to_numpy().tolist()


def _null_count(column) -> int:
    if isinstance(column, (pa.ChunkedArray, pa.Array)):
        nulls = column.null_count
        if pa.types.is_floating(column.type):
            nulls += int(pc.sum(pc.is_nan(column)).as_py() or 0)  # type: ignore[type-var]  # sums booleans as counts
        return nulls
    return int(pd.Series(column).isna().sum())


# ---- readers --------------------------------------------------------------------------------------------

def read_parquet(window: CurrentWindow, paths: str | Path | Iterable[str | Path], *,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> CurrentWindow:
    import pyarrow.parquet as pq
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        file = pq.ParquetFile(path)
        wanted = [c for c in window.columns() if c in file.schema_arrow.names]
        # one row group at a time: a single iter_batches over the whole file keeps its buffers alive, and
        # memory then grows with the file (measured: 880 MB for 4M rows x 20 columns, 330 MB this way)
        batches = (batch for group in range(file.num_row_groups)
                   for batch in file.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=wanted))
        for batch in _prefetch(batches):
            window.update(batch)
    return window


def read_csv(window: CurrentWindow, paths: str | Path | Iterable[str | Path], *,
             chunk_bytes: int = 16 << 20) -> CurrentWindow:
    """CSV, streamed by pyarrow. Every tracked column is read as text and parsed here, so that a bad value
    late in the file is a type error rather than a failed read."""
    from pyarrow import csv
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        header = csv.open_csv(path, read_options=csv.ReadOptions(block_size=1 << 16)).schema.names
        wanted = [c for c in window.columns() if c in header]
        convert = csv.ConvertOptions(include_columns=wanted, column_types={c: pa.string() for c in wanted},
                                     strings_can_be_null=True)
        with csv.open_csv(path, read_options=csv.ReadOptions(block_size=chunk_bytes),
                          convert_options=convert) as reader:
            for batch in _prefetch(iter(reader)):
                window.update(batch)
    return window


def jsonl_rows(lines: Iterable[str | bytes]) -> Iterator[dict]:
    """The rows of data collector lines: each line's `data` is a list of row dicts (or {"columns", "data"})."""
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line).get("data")
        if isinstance(data, dict) and isinstance(data.get("columns"), list):
            yield from (dict(zip(data["columns"], row)) for row in data.get("data") or [])
        elif isinstance(data, list):
            yield from (row for row in data if isinstance(row, dict))
        elif isinstance(data, dict):
            yield data


def read_jsonl(window: CurrentWindow, source: str | Path | Iterable[str | Path] | Iterable[str], *,
               chunk_rows: int = 50_000) -> CurrentWindow:
    """source: a .jsonl path, several paths, or an iterable of lines."""
    def lines() -> Iterator[str]:
        items = [source] if isinstance(source, (str, Path)) else source
        for item in items:
            if isinstance(item, Path) or (isinstance(item, str) and not item.lstrip().startswith("{")):
                with open(item, encoding="utf-8") as f:
                    yield from f
            else:
                yield item
    rows: list[dict] = []
    for row in jsonl_rows(lines()):
        rows.append(row)
        if len(rows) >= chunk_rows:
            window.update(pd.DataFrame.from_records(rows))
            rows = []
    if rows:
        window.update(pd.DataFrame.from_records(rows))
    return window


def read_window(profile: dict, paths: str | Path | Iterable[str | Path], **options) -> CurrentWindow:
    """A window over files of one format, picked by suffix (.parquet, .csv, .jsonl/.json)."""
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    window = CurrentWindow.for_profile(profile, **options)
    for path in files:
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            read_parquet(window, path)
        elif suffix == ".csv":
            read_csv(window, path)
        elif suffix in (".jsonl", ".json"):
            read_jsonl(window, path)
        else:
            raise ValueError(f"{path}: unknown window format {suffix!r}; use .parquet, .csv or .jsonl")
    return window
