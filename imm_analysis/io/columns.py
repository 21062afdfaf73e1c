"""Turn lists of raw JSON values into typed column chunks, and chunks into pandas arrays.

The loaders collect one Python list per column, convert it here in one vectorised step
(checking the JSON types of the whole list at once), and keep the converted chunks in a
:class:`ColumnStore` until the frame is assembled. Values of the wrong JSON type are
returned as ``(row, reason)`` pairs so the caller can name the record and the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imm_analysis import schema
from imm_analysis.io.limits import INT64_MAX, INT64_MIN

__all__ = ["KINDS", "convert", "take", "ColumnStore"]

#: schema dtype -> converter kind
KINDS = {
    schema.STRING: "string",
    schema.CATEGORY: "category",
    schema.INT: "int",
    schema.FLOAT: "float",
    schema.TIME: "time",
    schema.OBJECT: "object",
    schema.BOOL: "object",
}
_NONE = type(None)
_NUMBER = frozenset({int, float, _NONE})
_TEXT = frozenset({str, _NONE})
_EXPECTED = {"int": "a number", "float": "a number", "string": "a string", "category": "a string", "time": "a time string"}

Bad = list[tuple[int, str]]


def convert(values: list, kind: str) -> tuple[Any, Bad]:
    """Convert one column's raw JSON values; returns ``(chunk, bad)`` with bad = [(row, reason)]."""
    if kind == "object":
        return values, []
    allowed = _NUMBER if kind in ("int", "float") else _TEXT
    bad: Bad = []
    types = set(map(type, values))
    if not types <= allowed:
        values = list(values)
        for i, v in enumerate(values):
            if type(v) not in allowed:
                bad.append((i, f"expected {_EXPECTED[kind]}, got {type(v).__name__} {_short(v)}"))
                values[i] = None
    if kind in ("int", "float"):
        try:
            arr = np.array(values, dtype=np.float64) if values else np.empty(0, np.float64)
        except OverflowError:  # a Python int beyond float64 (only from dict sources: orjson makes floats)
            arr = _floats(values, bad)
        if kind == "int":
            return _ints(arr, values, bad), bad
        return arr, bad
    if kind == "time":
        return _times(values, bad), bad
    return pa.array(values, pa.string()), bad


def _floats(values: list, bad: Bad) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        try:
            out[i] = np.nan if v is None else float(v)
        except OverflowError:
            bad.append((i, f"number out of the float64 range: {_short(v)}"))
    return out


_EXACT = 2.0**53  # floats at or above this cannot tell neighbouring integers apart


def _ints(arr: np.ndarray, values: list, bad: Bad) -> tuple[np.ndarray, np.ndarray]:
    """``(int64 values, missing mask)``; out-of-range values are reported, integers beyond 2**53 kept exact."""
    mask = np.isnan(arr)
    big = np.abs(np.where(mask, 0.0, arr)) >= _EXACT
    out = np.where(mask | big, 0, np.rint(np.where(mask | big, 0.0, arr))).astype(np.int64)
    for i in np.flatnonzero(big).tolist():
        v = values[i]
        if isinstance(v, int) and INT64_MIN <= v <= INT64_MAX:
            out[i] = v  # exact: a JSON integer within int64
        elif isinstance(v, float) and -(2.0**63) < v < 2.0**63:
            out[i] = int(v)  # a float that is an integer (every float this large is)
        else:
            bad.append((i, f"integer out of the int64 range: {_short(v)}"))
            mask[i] = True
    return out, mask


def _times(values: list, bad: Bad) -> np.ndarray:
    if not values:
        return np.empty(0, "M8[ns]")
    try:
        parsed = pd.to_datetime(values, format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        parsed = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
        for i in np.flatnonzero(parsed.isna()):
            v = values[i]
            if v:  # None and "" are missing values, not errors
                bad.append((int(i), f"not an RFC 3339 time: {_short(v)}"))
    return parsed.as_unit("ns").tz_localize(None).to_numpy()


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def take(chunk: Any, kind: str, keep: np.ndarray) -> Any:
    """Rows ``keep`` (int indices) of a converted chunk."""
    if kind == "object":
        return [chunk[i] for i in keep]
    if kind == "int":
        return chunk[0][keep], chunk[1][keep]
    if kind in ("string", "category"):
        return chunk.take(pa.array(keep, pa.int64()))
    return chunk[keep]


class ColumnStore:
    """Converted chunks per column, assembled into a DataFrame at the end."""

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = kinds
        self.parts: dict[str, list] = {c: [] for c in kinds}
        self.n = 0

    def append(self, chunks: dict[str, Any], n: int) -> None:
        for c in self.kinds:
            self.parts[c].append(chunks[c])
        self.n += n

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: _assemble(self.parts[c], k, self.n) for c, k in self.kinds.items()})


def _assemble(parts: list, kind: str, n: int) -> Any:
    if kind == "object":
        out = np.empty(n, dtype=object)
        i = 0
        for part in parts:
            for v in part:
                out[i] = v
                i += 1
        return out
    if kind == "float":
        return np.concatenate(parts) if parts else np.empty(0)
    if kind == "int":
        if not parts:
            return pd.array([], dtype="Int64")
        return pd.arrays.IntegerArray(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    if kind == "time":
        values = np.concatenate(parts) if parts else np.empty(0, "M8[ns]")
        return pd.DatetimeIndex(values).tz_localize("UTC").array
    chunked = pa.chunked_array(parts, pa.string())
    if kind == "string":
        return pd.arrays.ArrowStringArray(chunked)
    return _categorical(chunked)


def _categorical(chunked: pa.ChunkedArray) -> pd.Categorical:
    """Categorical with sorted categories, built from arrow codes (no per-value Python work)."""
    cats = pc.unique(chunked).drop_null()
    cats = cats.take(pc.array_sort_indices(cats))
    codes = pc.index_in(chunked, value_set=cats).combine_chunks() if len(chunked) else pa.array([], pa.int32())
    codes = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return pd.Categorical.from_codes(codes, categories=pd.Index(cats.to_pylist(), dtype=schema.STRING))
