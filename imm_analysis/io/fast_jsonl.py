"""Fast path for faces in JSON Lines exports of SimpleQuery pages, read with ``pyarrow.json``.

``pyarrow.json`` parses the file in C++ (several threads) straight into columns, so no
Python object is made per face. The known fields are read with an explicit schema (so
``"FaceQuality": "high"`` fails instead of being inferred, and times stay strings);
fields the toolkit does not model are inferred and go to ``extra``.

The fast path is only an optimisation: :func:`read_figures` returns None whenever the file
is anything but clean SimpleQuery pages (another response shape, a wrong field type, a
line that does not parse, a truncated gzip...), and the caller then reads the file with the
general loader, which reports the exact file, line, record and field. The file is read once
(through :func:`~imm_analysis.io.paths.open_regular`, so never a FIFO or a device) and checked
with :func:`~imm_analysis.io.limits.fast_path_ok` before pyarrow sees a byte: a file over
``MAX_DOCUMENT_BYTES``, a line over ``MAX_LINE_BYTES``, nesting over ``MAX_DEPTH``, invalid UTF-8,
a byte order mark or a duplicate ``Files`` key goes to the general loader; so does an integer
column value beyond 2**53 (pyarrow reads it as a double).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from imm_analysis.io import limits
from imm_analysis.io.paths import PathError, open_regular
from imm_analysis.io.tables import FIGURE_TABLE, FILE_CONTEXT_TABLE, RecordTable, strip_nulls

__all__ = ["FastFigures", "read_figures", "checked_bytes", "checked_ahead", "figures_from_bytes", "LINES_SUFFIXES"]

LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_BLOCK_SIZES = (4 << 20, 64 << 20)  # a JSON line (one page) must fit in a block; small blocks parse in parallel
_ARROW_TYPE = {"float": pa.float64(), "int": pa.float64(), "string": pa.string(), "category": pa.string(), "time": pa.string()}


@dataclass
class FastFigures:
    """Column chunks (ColumnStore format) of the faces of one file, and its page totals."""

    chunks: dict[str, Any]
    n: int
    file_ids: pa.Array  # one per file (for the TotalCount check)
    totals: list[tuple[str, int]] = field(default_factory=list)  # (TotalCount or TotalHits, value)


def _struct_type(table: RecordTable) -> pa.StructType:
    fields: list[pa.Field] = []
    nested: dict[str, list[pa.Field]] = {}
    for _, kind, path in table.fields:
        if len(path) == 1:
            fields.append(pa.field(path[0], _ARROW_TYPE[kind]))
        else:
            if path[0] not in nested:
                nested[path[0]] = []
                fields.append(pa.field(path[0], pa.null()))  # placeholder, replaced below
            nested[path[0]].append(pa.field(path[1], _ARROW_TYPE[kind]))
    return pa.struct([pa.field(f.name, pa.struct(nested[f.name])) if f.name in nested else f for f in fields])


_FACE_TYPE = _struct_type(FIGURE_TABLE)
_FILE_TYPE = pa.struct(list(_struct_type(FILE_CONTEXT_TABLE)) + [pa.field("Figures", pa.list_(_FACE_TYPE))])
_SCHEMA = pa.schema(
    [
        pa.field("Files", pa.list_(_FILE_TYPE)),
        pa.field("TotalCount", pa.int64()),
        pa.field("TotalHits", pa.int64()),
        pa.field("NextToken", pa.string()),
    ]
)
_OTHER_SHAPES = {"FigureClusters", "FigureCluster", "File", "body"}


def read_figures(path: Path) -> FastFigures | None:
    """Faces of a JSON Lines file of SimpleQuery pages, or None when the general loader must read it."""
    data = checked_bytes(path)
    return None if data is None else figures_from_bytes(data)


def checked_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` when the fast path may parse them (:func:`~imm_analysis.io.limits.fast_path_ok`), else None."""
    data = _read(path)
    return data if data is not None and limits.fast_path_ok(data) else None


def checked_ahead(paths: list[Path]) -> Generator[bytes | None, None, None]:
    """:func:`checked_bytes` of each path in order; the next file is read and checked in a thread
    while the caller parses the current one (pyarrow releases the GIL), so the checks cost little
    wall time on exports of several files. At most two files are held in memory."""
    if len(paths) < 2:
        yield from map(checked_bytes, paths)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="imm-jsonl-check") as pool:
        pending = pool.submit(checked_bytes, paths[0])
        for i in range(len(paths)):
            current = pending.result()
            if i + 1 < len(paths):
                pending = pool.submit(checked_bytes, paths[i + 1])
            yield current


def figures_from_bytes(data: bytes) -> FastFigures | None:
    """:func:`read_figures` of bytes already passed by :func:`checked_bytes`."""
    for block_size in _BLOCK_SIZES:
        try:
            with pa.BufferReader(data) as stream:
                table = pj.read_json(
                    stream,
                    read_options=pj.ReadOptions(block_size=block_size),
                    parse_options=pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="infer"),
                )
            return _figures(table)
        except pa.ArrowInvalid as exc:
            if "straddling" not in str(exc):  # a line longer than the block: retry with bigger blocks
                return None
        except (pa.ArrowException, OSError, EOFError, ValueError, TypeError, KeyError):
            return None
    return None


def _read(path: Path) -> bytes | None:
    """The (decompressed) bytes of ``path``; None when unreadable, special or over ``MAX_DOCUMENT_BYTES``."""
    try:
        with open_regular(path) as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            stream = gzip.GzipFile(fileobj=fh) if gzipped else fh
            data = stream.read(limits.MAX_DOCUMENT_BYTES + 1)
    except (PathError, OSError, EOFError, zlib.error):
        return None
    return data if len(data) <= limits.MAX_DOCUMENT_BYTES else None


def _figures(table: pa.Table) -> FastFigures | None:
    if set(table.column_names) & _OTHER_SHAPES or table.num_rows == 0 or table["Files"].null_count:
        return None
    files = pc.list_flatten(table["Files"])
    if files.null_count:
        return None
    figures_col = pc.struct_field(files, "Figures")
    counts = pc.list_value_length(figures_col).fill_null(0).to_numpy()
    faces = pc.list_flatten(figures_col)
    if faces.null_count:
        return None
    ctx = _columns(files, FILE_CONTEXT_TABLE)
    if ctx is None:
        return None
    chunks = _columns(faces, FIGURE_TABLE)
    if chunks is None:
        return None
    file_of_face = np.repeat(np.arange(len(files)), counts)
    take = pa.array(file_of_face, pa.int64())
    for col, kind, _ in FILE_CONTEXT_TABLE.fields:
        chunks[col] = ctx[col][file_of_face] if kind == "time" else ctx[col].take(take)
    chunks["extra"] = _extras(faces)
    totals = [
        (name, int(v)) for name in ("TotalCount", "TotalHits") for v in pc.unique(table[name]).drop_null().to_pylist()
    ]
    return FastFigures(chunks, len(faces), ctx["file_id"], totals)


def _columns(structs: pa.ChunkedArray, table: RecordTable) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for col, kind, path in table.fields:
        arr = pc.struct_field(structs, path[0])
        if len(path) == 2:
            arr = pc.struct_field(arr, path[1])
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if kind in ("string", "category"):
            out[col] = arr
        elif kind == "float":
            out[col] = arr.to_numpy(zero_copy_only=False)
        elif kind == "int":
            values = arr.to_numpy(zero_copy_only=False)
            mask = np.isnan(values)
            if (np.abs(values[~mask]) >= 2.0**53).any():
                return None  # not exact as a double: the general loader keeps it exact or names it
            out[col] = (np.where(mask, 0, np.rint(values)).astype(np.int64), mask)
        elif kind == "time":
            times = _times(arr)
            if times is None:
                return None
            out[col] = times
    return out


def _times(arr: pa.Array) -> np.ndarray | None:
    text = arr.to_pandas()
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if (parsed.isna() & text.notna() & (text != "")).any():
        return None  # a bad time: let the general loader name it
    return parsed.dt.as_unit("ns").dt.tz_localize(None).to_numpy()


def _extras(faces: pa.ChunkedArray) -> list:
    """Unknown face fields (and unknown sub-fields of Boundary / HeadPose) per face, None when none."""
    out: list = [None] * len(faces)
    known = FIGURE_TABLE.known
    face_type = faces.type
    unknown: list[tuple[str, str | None]] = [(f.name, None) for f in face_type if f.name not in known]
    for key in FIGURE_TABLE.open_nested:
        sub_type = face_type.field(key).type
        unknown.extend((key, f.name) for f in sub_type if f.name not in FIGURE_TABLE.nested[key])
    for key, sub in unknown:
        arr = pc.struct_field(faces, key)
        if sub is not None:
            arr = pc.struct_field(arr, sub)
        rows = np.flatnonzero(arr.is_valid().to_numpy(zero_copy_only=False))
        for i, value in zip(rows.tolist(), arr.take(pa.array(rows, pa.int64())).to_pylist(), strict=True):
            value = strip_nulls(value)
            extra = out[i] if out[i] is not None else {}
            if sub is None:
                extra[key] = value
            else:
                extra.setdefault(key, {})[sub] = value
            out[i] = extra
    return out
