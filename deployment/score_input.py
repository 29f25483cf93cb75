"""The scoring script's input side: the request bodies Azure ML endpoints accept, read into columns,
checked against the model's column schema and converted to the column types, with a reason naming the
row and column for anything that does not fit. Kept beside score.py (and deployed with it); it needs
only numpy and pandas."""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

MAX_ROWS = 10_000
REQUEST_ID = "request_id"
_STR_DTYPE: Any = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
_INT_TYPES = {"long": np.int64, "integer": np.int32}
_FLOAT_TYPES = {"double": np.float64, "float": np.float32}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class BadRequest(ValueError):
    """The request cannot be scored; the message says why and is sent to the caller."""


class Column:
    __slots__ = ("name", "type", "required")

    def __init__(self, name: str, type_: str, required: bool = True) -> None:
        self.name, self.type, self.required = name, type_, required


# --------------------------------------------------------------------------------------------------
# request bodies


class Rows:
    """The request's columns of raw JSON values, each of length n_rows."""

    __slots__ = ("columns", "n_rows")

    def __init__(self, columns: dict[str, list[Any]], n_rows: int) -> None:
        self.columns, self.n_rows = columns, n_rows


def parse_rows(raw_data: str | bytes, schema_order: list[str]) -> Rows:
    if isinstance(raw_data, (bytes, bytearray)):
        raw_data = raw_data.decode("utf-8", errors="replace")
    if not raw_data or not raw_data.strip():
        raise BadRequest('the request body is empty; send {"input_data": {"columns": [...], "data": [[...]]}} '
                         'or {"data": [{"column": value, ...}]}')
    try:
        body = json.loads(raw_data)
    except ValueError as err:
        raise BadRequest(f"the request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {_json_type(body)}")
    for key in ("input_data", "data", "dataframe_split", "dataframe_records", "inputs"):
        if key in body:
            return _table(body[key], key, schema_order)
    raise BadRequest(f"no input found: expected a key 'input_data' or 'data', got {_names(list(body)[:10])}")


def _table(payload: Any, key: str, schema_order: list[str]) -> Rows:
    if isinstance(payload, dict):
        if "columns" in payload or ("data" in payload and set(payload) <= {"columns", "data", "index"}):
            data = payload.get("data")
            if not isinstance(data, list):
                raise BadRequest(f"'{key}.data' must be a list of rows (each a list of values), got {_json_type(data)}")
            return _split(payload.get("columns"), data, key, schema_order)
        return _columnar(payload, key)
    if isinstance(payload, list):
        if not payload:
            raise BadRequest(f"'{key}' has no rows to score")
        _check_count(len(payload))
        if all(isinstance(row, dict) for row in payload):
            return _records(payload)
        if all(isinstance(row, list) for row in payload):
            return _split(None, payload, key, schema_order)
        kinds = sorted({_json_type(r) for r in payload})
        raise BadRequest(f"'{key}' must be a list of objects (one per row) or of lists; it mixes {', '.join(kinds)}")
    raise BadRequest(f"'{key}' must be an object with 'columns' and 'data', or a list of rows; "
                     f"got {_json_type(payload)}")


def _check_count(n: int) -> None:
    if n == 0:
        raise BadRequest("no rows to score")
    if n > MAX_ROWS:
        raise BadRequest(f"{n} rows is more than the limit of {MAX_ROWS} rows per request; split the request")


def _split(columns: Any, data: list[Any], key: str, schema_order: list[str]) -> Rows:
    _check_count(len(data))
    if columns is None:
        if not schema_order:
            raise BadRequest(f"'{key}' gives rows without 'columns', and the model has no schema to name them")
        columns = schema_order
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest(f"'{key}.columns' must be a list of column names")
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise BadRequest(f"duplicate column(s) {_names(dupes)}")
    width = len(columns)
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise BadRequest(f"row {i} must be a list of {width} values, got {_json_type(row)}")
        if len(row) != width:
            raise BadRequest(f"row {i} has {len(row)} values, expected {width} (one per column: {_names(columns)})")
    return Rows(dict(zip(columns, map(list, zip(*data)))), len(data))


def _records(rows: list[dict[str, Any]]) -> Rows:
    names: dict[str, None] = {}
    for row in rows:
        for name in row:
            names[name] = None
    if len(names) == 1 or all(len(row) == len(names) for row in rows):
        # every row names every column (the usual case): no per-key lookups with defaults
        try:
            return Rows({name: [row[name] for row in rows] for name in names}, len(rows))
        except KeyError:
            pass
    return Rows({name: [row.get(name) for row in rows] for name in names}, len(rows))


def _columnar(payload: dict[str, Any], key: str) -> Rows:
    if not payload:
        raise BadRequest(f"'{key}' has no columns")
    lengths = set()
    for name, values in payload.items():
        if not isinstance(values, list):
            raise BadRequest(f"'{key}' must be {{'columns': [...], 'data': [[...]]}}, a list of rows, or "
                             f"{{column: [values...]}}; column '{name}' is {_json_type(values)}, not a list")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise BadRequest(f"the columns of '{key}' have different lengths: {sorted(lengths)}")
    n = lengths.pop()
    _check_count(n)
    return Rows(dict(payload), n)


def to_frame(table: Rows, schema: list[Column]) -> tuple[pd.DataFrame, list[Any] | None]:
    """Validate the rows against the model's column schema and build its input DataFrame. Returns the
    frame and the request ids (the request_id column), if the caller sent them."""
    by_name = {c.name: c for c in schema}
    names = [c.name for c in schema]
    columns = dict(table.columns)
    # request_id is the caller's join key, not a feature (unless the model really takes one)
    request_ids = None if REQUEST_ID in by_name else columns.pop(REQUEST_ID, None)
    if not schema:  # a model without a column schema: pass the columns through
        return pd.DataFrame(columns), request_ids
    extra = [c for c in columns if c not in by_name]
    if extra:
        raise BadRequest(f"unexpected column(s) {_names(extra)}; the model takes {_names(names)}"
                         f" (and optionally '{REQUEST_ID}')")
    missing = [c.name for c in schema if c.name not in columns and c.required]
    if missing:
        raise BadRequest(f"missing column(s) {_names(missing)}; the model takes {_names(names)}")
    data = {}
    for col in schema:
        values = columns.get(col.name)
        if values is None:
            values = [None] * table.n_rows
        data[col.name] = convert(values, col)
    return pd.DataFrame(data, copy=False), request_ids


# --------------------------------------------------------------------------------------------------
# type conversion: a fast vectorised path, and a per-value path that names the first bad value


def convert(values: list[Any], col: Column) -> Any:
    kind = col.type
    if kind in _FLOAT_TYPES or kind in _INT_TYPES:
        arr = _numbers(values, col)
        if kind in _INT_TYPES:
            finite = ~np.isnan(arr)
            fractional = finite & (arr != np.floor(arr))
            if fractional.any():
                i = int(np.argmax(fractional))
                raise _bad_value(i, col, values[i], "an integer")
            if finite.all():
                return arr.astype(_INT_TYPES[kind])
            return arr  # missing values: float with NaN, for the model's imputer
        return arr.astype(_FLOAT_TYPES[kind], copy=False)
    if kind == "string":
        return pd.array(_strings(values, col), dtype=_STR_DTYPE)
    if kind == "boolean":
        return _booleans(values, col)
    if kind == "datetime":
        series = pd.Series(values, dtype=object)
        parsed = pd.to_datetime(series, errors="coerce")
        bad = parsed.isna() & series.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise _bad_value(i, col, values[i], "a date/time")
        return parsed
    return values  # binary and structured types: passed through as given


def _numbers(values: list[Any], col: Column) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
        if arr.ndim == 1 and not np.isinf(arr).any():
            return arr
    except (TypeError, ValueError):
        pass
    for i, v in enumerate(values):  # slow path: find and name the first bad value
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            if math.isinf(v):
                raise _bad_value(i, col, v, "a finite number")
            continue
        if isinstance(v, str):
            try:
                if not math.isinf(float(v)):
                    continue
            except ValueError:
                pass
        raise _bad_value(i, col, v, "a number")
    raise BadRequest(f"column '{col.name}' could not be read as numbers")  # pragma: no cover


def _strings(values: list[Any], col: Column) -> list[Any]:
    out = values
    for i, v in enumerate(values):
        if type(v) is str or v is None:
            continue
        if isinstance(v, (int, float)):  # numbers and bools sent for a categorical column
            if out is values:
                out = list(values)
            out[i] = None if isinstance(v, float) and math.isnan(v) else str(v)
            continue
        raise _bad_value(i, col, v, "a string")
    return out


def _booleans(values: list[Any], col: Column) -> np.ndarray:
    out: list[Any] = []
    missing = False
    for i, v in enumerate(values):
        if isinstance(v, bool):
            out.append(v)
        elif v is None:
            out.append(np.nan)
            missing = True
        elif isinstance(v, (int, float)) and v in (0, 1):
            out.append(bool(v))
        elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            out.append(v.strip().lower() in _TRUE)
        else:
            raise _bad_value(i, col, v, "true or false")
    return np.array(out, dtype=object if missing else bool)


def _bad_value(row: int, col: Column, value: Any, expected: str) -> BadRequest:
    shown = json.dumps(value) if not isinstance(value, float) else repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return BadRequest(f"row {row}, column '{col.name}': {shown} is not {expected} (the column's type is {col.type})")


def _names(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
