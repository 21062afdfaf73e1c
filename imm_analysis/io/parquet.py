"""Frames to Parquet and back, with dict/list columns as JSON text, written crash-safely.

Parquet cannot hold a column of Python dicts (``extra``, ``custom_labels``), and a round trip
loses the dtype of a categorical's categories (``string`` comes back as ``str``). The writer
stores every ``object`` column as JSON text (None, ``pd.NA`` and NaN as null) under the name
``<column><json_suffix>`` and records, in the file's key-value metadata (key ``imm_analysis``),
which columns it encoded and the categories' dtypes. The reader decodes those columns (back to
``object`` columns of dicts, lists, numbers, strings or None, at their old position), restores
the categories and, given a ``kind``, ends with :func:`imm_analysis.schema.coerce_frame`.

Files written before the metadata existed still load: columns ending in ``__json`` are decoded,
and so are the columns named in ``json_columns``, with the categories given by ``categories``.
Files are written through :func:`imm_analysis.io.atomic.atomic_open` (temporary file, fsync,
:func:`os.replace`, fsync of the folder).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis import schema
from imm_analysis.io.atomic import atomic_open

__all__ = ["write_frame", "read_frame", "category_dtypes", "JSON_SUFFIX"]

#: Default suffix of a JSON-encoded column's name on disk (``extra`` -> ``extra__json``).
JSON_SUFFIX = "__json"
_META_KEY = b"imm_analysis"
_FORMAT = 1


def category_dtypes(frame: pd.DataFrame) -> dict[str, str]:
    """The dtype of each categorical column's categories, e.g. ``{"gender": "string"}``."""
    return {
        str(c): str(frame[c].cat.categories.dtype)
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


def _encode(values: Iterable[Any]) -> pd.api.extensions.ExtensionArray:
    out = [
        None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else json.dumps(v, default=_json_default)
        for v in values
    ]
    return pd.array(out, dtype="string")


def write_frame(frame: pd.DataFrame, path: str | os.PathLike[str], *, json_suffix: str = JSON_SUFFIX) -> Path:
    """Write ``frame`` (without its index) to Parquet file ``path`` atomically.

    Parameters
    ----------
    frame : DataFrame
        Any frame; ``object`` columns must hold JSON-serialisable values (numpy scalars and
        arrays become numbers and lists, anything else unknown its ``str``).
    path : path-like
        Target file; its folder must exist.
    json_suffix : str, default="__json"
        Appended to the on-disk name of each JSON-encoded column. ``""`` keeps the names
        (the embedding cache's layout).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.parquet"
    >>> f = pd.DataFrame({"a": [1, 2], "extra": [{"k": [1, 2]}, None]})
    >>> read_frame(write_frame(f, p))["extra"].tolist()
    [{'k': [1, 2]}, None]
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    columns: dict[str, Any] = {}
    encoded: dict[str, str] = {}
    for col in frame.columns:
        series = frame[col]
        name = str(col)
        if series.dtype == object:
            name = f"{col}{json_suffix}"
            encoded[str(col)] = name
            series = pd.Series(_encode(series), index=frame.index)
        if name in columns:
            raise ValueError(f"{path}: column {col!r} would be written as {name!r}, which the frame already has")
        columns[name] = series
    disk = pd.DataFrame(columns, index=frame.index)
    table = pa.Table.from_pandas(disk, preserve_index=False)
    info = {"format": _FORMAT, "json_columns": encoded, "categories": category_dtypes(frame)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(info).encode()})
    with atomic_open(path) as fh:
        pq.write_table(table, fh)
    return path


def _file_info(path: Path) -> dict[str, Any] | None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(_META_KEY)
    return None if raw is None else json.loads(raw)


def _decode(values: pd.Series, path: Path, column: str) -> list[Any]:
    try:
        return [json.loads(v) if isinstance(v, str) else None for v in values]
    except json.JSONDecodeError:
        for i, v in enumerate(values):
            if isinstance(v, str):
                try:
                    json.loads(v)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: row {i}, column {column!r}: not JSON text ({exc})") from None
        raise


def read_frame(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    json_columns: Iterable[str] = (),
    categories: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Read a frame written by :func:`write_frame` (or by the writers it replaced).

    Parameters
    ----------
    path : path-like
        A Parquet file.
    kind : {"clusters", "files", "figures"}, optional
        Pass the result through :func:`imm_analysis.schema.coerce_frame`.
    json_columns : iterable of str
        For files without the ``imm_analysis`` metadata only: columns stored as JSON text
        under their own names (columns ending in ``__json`` are always decoded).
    categories : dict, optional
        For files without the metadata only: categories' dtypes to restore (as
        :func:`category_dtypes` returns them).

    Returns
    -------
    DataFrame
        JSON columns as ``object`` columns under their own names, in their original position.
    """
    path = Path(path)
    frame = pd.read_parquet(path)
    info = _file_info(path)
    if info is not None:
        stored = {name: col for col, name in info.get("json_columns", {}).items()}
        cats = info.get("categories", {})
    else:
        wanted = set(json_columns)
        stored = {c: c[: -len(JSON_SUFFIX)] for c in frame.columns if str(c).endswith(JSON_SUFFIX)}
        stored.update({c: c for c in frame.columns if c in wanted})
        cats = categories or {}
    out: dict[str, pd.Series] = {}
    for c in frame.columns:
        series = frame[c]
        if c in stored:
            out[stored[c]] = pd.Series(_decode(series, path, stored[c]), index=frame.index, dtype=object)
        elif c in cats and isinstance(series.dtype, pd.CategoricalDtype):
            out[c] = series.cat.set_categories(series.cat.categories.astype(cats[c]))
        else:
            out[c] = series
    frame = pd.DataFrame(out, index=frame.index)
    if kind is not None:
        frame = schema.coerce_frame(frame, kind)
    return frame
