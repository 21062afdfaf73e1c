"""Records to frames: chunked column conversion, duplicate rules, ``TotalCount`` checks, load warnings.

The machinery behind the loaders of :mod:`imm_analysis.io.imm_json`: :class:`_RecordLoader` and
:class:`_FigureLoader` buffer records and convert them column-wise in chunks of :data:`CHUNK`,
:class:`_Seen` compares what was loaded with the totals the pages announced, and
:func:`_drop_duplicates` / :func:`_finish` make the final frame.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imm_analysis import schema
from imm_analysis.io.columns import ColumnStore, take
from imm_analysis.io.errors import ErrorLog, IMMLoadWarning
from imm_analysis.io.fast_jsonl import FastFigures
from imm_analysis.io.records import Page
from imm_analysis.io.tables import FIGURE_TABLE, FILE_CONTEXT_TABLE, RecordTable

__all__ = ["CHUNK"]

logger = logging.getLogger("imm_analysis.io.imm_json")  # the loaders' logger, whichever module logs

#: records converted per chunk (bounds the memory held as Python objects)
CHUNK = 50_000


class _RecordLoader:
    """Buffers records of one table and converts them chunk by chunk."""

    def __init__(self, table: RecordTable, log: ErrorLog) -> None:
        self.table, self.log = table, log
        self.store = ColumnStore(table.kinds)
        self.records: list = []
        self.where: list[tuple[str, str]] = []
        self.cover: list[bool] = []
        self._priority: list[np.ndarray] = []

    def add(self, record: Any, source: str, where: str, cover: bool = False) -> None:
        self.records.append(record)
        self.where.append((source, where))
        self.cover.append(cover)
        if len(self.records) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        chunks, bad = self.table.columnise(self.records, self.where.__getitem__, self.log)
        cover = np.array(self.cover, dtype=bool)
        n = len(self.records)
        if bad is not None:
            keep = np.flatnonzero(~bad)
            chunks, cover, n = self.table.keep_rows(chunks, keep), cover[keep], len(keep)
        self.store.append(chunks, n)
        self._priority.append(cover)
        self.records, self.where, self.cover = [], [], []

    def frame(self) -> pd.DataFrame:
        self.flush()
        return self.store.to_frame()

    def priority(self) -> np.ndarray:
        return np.concatenate(self._priority) if self._priority else np.zeros(0, dtype=bool)


class _FigureLoader:
    """Buffers files and their faces; converts faces column-wise in chunks of about CHUNK."""

    def __init__(self, log: ErrorLog) -> None:
        self.log = log
        kinds = dict(FILE_CONTEXT_TABLE.kinds)
        kinds.update(FIGURE_TABLE.kinds)
        self.store = ColumnStore(kinds)
        self._priority: list[np.ndarray] = []
        self._file_ids: list[pa.Array] = []
        self._reset()

    def _reset(self) -> None:
        self.files: list[dict] = []
        self.file_where: list[tuple[str, str]] = []
        self.cover: list[bool] = []
        self.counts: list[int] = []
        self.figures: list = []

    def add(self, record: Any, source: str, where: str, cover: bool) -> None:
        if not isinstance(record, dict):
            self.log.add(source, where, None, f"expected a File object, got {type(record).__name__}")
            return
        figures = record.get("Figures")
        if figures is None:
            figures = []
        elif not isinstance(figures, list):
            self.log.add(source, where, "Figures", f"expected a list, got {type(figures).__name__}")
            return
        self.files.append(record)
        self.file_where.append((source, where))
        self.cover.append(cover)
        self.counts.append(len(figures))
        self.figures.extend(figures)
        if len(self.figures) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.files:
            return
        counts = np.array(self.counts, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])

        def face_where(i: int) -> tuple[str, str]:
            f = int(np.searchsorted(starts, i, side="right")) - 1
            source, where = self.file_where[f]
            return source, f"{where}.Figures[{i - starts[f]}]"

        ctx, bad_files = FILE_CONTEXT_TABLE.columnise(self.files, self.file_where.__getitem__, self.log)
        faces, bad_faces = FIGURE_TABLE.columnise(self.figures, face_where, self.log)
        file_of_face = np.repeat(np.arange(len(self.files)), counts)
        cover = np.array(self.cover, dtype=bool)
        file_ok = ~bad_files if bad_files is not None else np.ones(len(self.files), dtype=bool)
        if bad_faces is None and bad_files is None:
            keep = None
            n = len(self.figures)
        else:
            ok = file_ok[file_of_face] if bad_files is not None else np.ones(len(self.figures), dtype=bool)
            if bad_faces is not None:
                ok &= ~bad_faces
            keep = np.flatnonzero(ok)
            faces = FIGURE_TABLE.keep_rows(faces, keep)
            file_of_face = file_of_face[keep]
            n = len(keep)
        chunks = {c: take(ctx[c], FILE_CONTEXT_TABLE.kinds[c], file_of_face) for c in ctx}
        chunks.update(faces)
        self.store.append(chunks, n)
        self._priority.append(cover[file_of_face])
        listed = np.flatnonzero(file_ok & ~cover)
        self._file_ids.append(ctx["file_id"].take(pa.array(listed, pa.int64())))
        self._reset()

    def add_fast(self, fast: FastFigures) -> None:
        """Append the faces read by the pyarrow fast path (after what is buffered)."""
        self.flush()
        self.store.append(fast.chunks, fast.n)
        self._priority.append(np.zeros(fast.n, dtype=bool))
        self._file_ids.append(fast.file_ids)

    def finish(self) -> tuple[pd.DataFrame, np.ndarray, int]:
        """The frame, the cover flag per row, and the number of distinct files from file responses."""
        self.flush()
        frame = self.store.to_frame()
        priority = np.concatenate(self._priority) if self._priority else np.zeros(0, dtype=bool)
        ids = pa.chunked_array(self._file_ids, pa.string())
        n_files = int(pc.count_distinct(ids).as_py()) if len(ids) else 0
        return frame, priority, n_files


class _Seen:
    """Which kinds of documents were seen, and the ``TotalCount`` they announced."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.kinds: set[str] = set()
        self.totals: dict[int, str] = {}
        self.keys: set[str] = set()  # TotalCount (QueryFigureClusters) or TotalHits (SimpleQuery)

    def page(self, page: Page) -> None:
        self.kinds.add(page.kind)
        if page.kind == self.kind and page.total is not None:
            self.totals.setdefault(page.total, f"{page.source}, {page.label}")
            self.keys.add(page.total_key)

    def fast(self, fast: FastFigures, source: str) -> None:
        self.kinds.add("files")
        for key, total in fast.totals:
            self.totals.setdefault(total, source)
            self.keys.add(key)

    def check_total(self, n: int | None) -> None:
        if self.kind == "clusters" and self.kinds == {"files"}:
            _warn("the input holds only file responses (SimpleQuery, GetFileMeta); no clusters were loaded")
        if not self.totals or n is None:
            return
        key = "/".join(sorted(self.keys))
        if len(self.totals) > 1:
            _warn(f"pages disagree on {key} ({sorted(self.totals)}); loaded {n} {self.kind}")
        else:
            total = next(iter(self.totals))
            if total != n:
                _warn(f"{key} says {total} {self.kind} but {n} were loaded ({self.totals[total]})")


def _warn(message: str) -> None:
    logger.warning(message)
    warnings.warn(message, IMMLoadWarning, stacklevel=_outside_level())


def _outside_level() -> int:
    """``stacklevel`` (for a ``warnings.warn`` in the caller) of the first frame outside this package."""
    import sys
    from types import FrameType

    package = str(Path(__file__).resolve().parents[1])
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _drop_duplicates(
    frame: pd.DataFrame, keys: list[str], priority: np.ndarray | None, what: str, rule: str
) -> tuple[pd.DataFrame, int, np.ndarray]:
    """Drop repeated records (rows with a missing key are never duplicates); warn with the count.

    Returns the frame, the number dropped and the bool mask of kept rows.
    """
    everything = np.ones(len(frame), dtype=bool)
    if len(frame) < 2:
        return frame, 0, everything
    last = pa.array(frame[keys[-1]].astype(schema.STRING))
    if pc.count_distinct(last, mode="only_valid").as_py() == len(last) - last.null_count:
        return frame, 0, everything  # fast path: the last key alone is unique
    order = np.argsort(priority, kind="stable") if priority is not None and priority.any() else np.arange(len(frame))
    ordered = frame.iloc[order]
    dup_ordered = ordered.duplicated(subset=keys, keep="first").to_numpy() & ordered[keys].notna().all(axis=1).to_numpy()
    dup = np.empty(len(frame), dtype=bool)
    dup[order] = dup_ordered
    dropped = int(dup.sum())
    if dropped:
        _warn(f"dropped {dropped} duplicate {what} ({rule}); kept the first seen")
        frame = frame.loc[~dup].reset_index(drop=True)
    return frame, dropped, ~dup


def _finish(frame: pd.DataFrame, kind: str, log: ErrorLog, dropped: int) -> pd.DataFrame:
    out = schema.coerce_frame(frame, kind) if len(frame) else schema.empty_frame(kind)
    out.attrs["errors"] = log.errors
    out.attrs["duplicates_dropped"] = dropped
    if log.errors:
        logger.warning("skipped %d bad records (see frame.attrs['errors'])", len(log.errors))
    return out
