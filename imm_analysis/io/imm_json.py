"""Load IMM JSON responses into typed DataFrames, and write frames back as IMM JSON.

Loaders
-------
:func:`load_clusters`, :func:`load_files` and :func:`load_figures` read every response
shape of the IMM face clustering APIs (QueryFigureClusters, GetFigureCluster,
BatchGetFigureCluster, SimpleQuery, GetFileMeta, BatchGetFileMeta, bare records) from
files, directories, globs, dicts, lists, JSON strings or file objects, and return frames
with the columns and dtypes of :mod:`imm_analysis.schema`.

Writers
-------
:func:`to_imm_clusters` and :func:`to_imm_files` turn frames back into a
QueryFigureClusters and a SimpleQuery response; loading those gives equal frames.
Times are written in UTC (``...Z``) with nanoseconds.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imm_analysis import schema
from imm_analysis.io.columns import ColumnStore, take
from imm_analysis.io.errors import ErrorLog, IMMFormatError, IMMLoadWarning
from imm_analysis.io.fast_jsonl import LINES_SUFFIXES, FastFigures, read_figures
from imm_analysis.io.records import Page, iter_pages
from imm_analysis.io.sources import iter_documents, source_paths
from imm_analysis.io.tables import CLUSTER_TABLE, FIGURE_TABLE, FILE_CONTEXT_TABLE, FILE_TABLE, RecordTable

__all__ = [
    "load_clusters",
    "load_files",
    "load_figures",
    "load_files_and_figures",
    "to_imm_clusters",
    "to_imm_files",
    "IMMFormatError",
    "IMMLoadWarning",
]

logger = logging.getLogger(__name__)

#: records converted per chunk (bounds the memory held as Python objects)
CHUNK = 50_000


# --------------------------------------------------------------------------- loading


def load_clusters(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load face clusters (``FigureCluster`` records) into a clusters frame.

    Parameters
    ----------
    source : path, directory, glob, dict, list, JSON string, bytes or binary file object
        IMM responses: QueryFigureClusters / BatchGetFigureCluster pages, GetFigureCluster
        responses or bare FigureCluster objects (``.json``, ``.jsonl``/``.ndjson``, gzipped or
        not). A directory is read in sorted file order (not recursively). File responses in
        the input are ignored.
    errors : {"raise", "collect"}, default="raise"
        ``"raise"``: the first bad record raises :class:`IMMFormatError` naming the file, the
        record and the field. ``"collect"``: bad records are skipped and listed in
        ``frame.attrs["errors"]`` (dicts with ``source``, ``record``, ``field``, ``reason``).
    progress : bool, default=False
        Show a progress bar over the files of a directory or glob.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`imm_analysis.schema.CLUSTER_COLUMNS`; ``cover_file_id`` and
        ``cover_uri`` come from ``Cover``; unknown fields are kept in ``extra`` (a dict, or
        None when the record has none). ``attrs["duplicates_dropped"]`` counts clusters seen
        twice (same ``cluster_id``; the first is kept).

    Examples
    --------
    >>> from imm_analysis import load_clusters
    >>> page = {"FigureClusters": [{"ObjectId": "Cluster-1", "FaceCount": 4,
    ...          "CreateTime": "2022-01-14T10:10:52.83948013+08:00"}], "TotalCount": 1}
    >>> clusters = load_clusters(page)
    >>> clusters[["cluster_id", "face_count", "create_time"]]
      cluster_id  face_count                         create_time
    0  Cluster-1           4 2022-01-14 02:10:52.839480130+00:00
    """
    log = ErrorLog(errors)
    loader = _RecordLoader(CLUSTER_TABLE, log)
    seen = _Seen("clusters")
    for page in iter_pages(iter_documents(source, log, progress=progress), log):
        seen.page(page)
        if page.kind == "clusters":
            for i, item in enumerate(page.items):
                loader.add(item, page.source, page.where(i))
    frame = loader.frame()
    frame, dropped, _ = _drop_duplicates(frame, ["cluster_id"], None, "clusters", "same cluster_id")
    seen.check_total(len(frame))
    return _finish(frame, "clusters", log, dropped)


def load_files(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load files (``File`` records) into a files frame, one row per file.

    Reads SimpleQuery, GetFileMeta and BatchGetFileMeta responses and bare File objects,
    plus the ``Cover`` file of every cluster when given cluster responses. Faces
    (``Figures``) are not columns here: see :func:`load_figures`.

    Parameters
    ----------
    source, errors, progress
        As in :func:`load_clusters`.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`imm_analysis.schema.FILE_COLUMNS`. A file seen twice (same
        ``file_id``) appears once: files from file responses are preferred over cluster
        covers, then the first seen is kept; ``attrs["duplicates_dropped"]`` counts the rest.

    Examples
    --------
    >>> from imm_analysis import load_files
    >>> files = load_files({"Files": [{"ObjectId": "f1", "URI": "oss://b/1.jpg", "Size": 187674}]})
    >>> files[["file_id", "uri", "size"]]
      file_id            uri    size
    0      f1  oss://b/1.jpg  187674
    """
    log = ErrorLog(errors)
    files, _ = _read_files(source, log, progress, files=True, figures=False)
    return files


def load_figures(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load faces (``File.Figures[]``) into a figures frame, one row per face.

    Reads the same inputs as :func:`load_files` (including the faces of each cluster's
    ``Cover`` file) and repeats the file's ``file_id``, ``uri``, ``media_type`` and
    ``produce_time`` on each of its faces.

    Parameters
    ----------
    source, errors, progress
        As in :func:`load_clusters`.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`imm_analysis.schema.FIGURE_COLUMNS`: ``Boundary`` flattened to
        ``left, top, width, height``, ``HeadPose`` to ``pitch, roll, yaw``, the reserved
        cluster ids kept as they are and ``cluster_state`` (``clustered``, ``independent`` or
        ``unavailable``). A face seen twice (same ``file_id`` and ``figure_id``) appears once
        (faces from file responses are preferred over cluster covers);
        ``attrs["duplicates_dropped"]`` counts the rest.

    Notes
    -----
    Records are converted column by column in chunks of :data:`CHUNK` faces, so memory
    stays proportional to the output frame; see ``benchmarks/bench_load.py``.

    Examples
    --------
    >>> from imm_analysis import load_figures
    >>> page = {"Files": [{"ObjectId": "f1", "URI": "oss://b/1.jpg", "Figures": [
    ...     {"FigureId": "a", "FigureClusterId": "figure-cluster-id-independent", "FaceQuality": 0.9,
    ...      "Boundary": {"Left": 10, "Top": 30, "Width": 200, "Height": 300}}]}]}
    >>> load_figures(page)[["figure_id", "cluster_state", "width", "face_quality"]]
      figure_id cluster_state  width  face_quality
    0         a   independent    200           0.9
    """
    log = ErrorLog(errors)
    _, figures = _read_files(source, log, progress, files=False, figures=True)
    return figures


def load_files_and_figures(
    source: Any, *, errors: str = "raise", progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`load_files` and :func:`load_figures` of the same source, reading it once.

    Each JSON document is parsed once and feeds both frames, page by page (memory stays that of
    the two frames). ``.jsonl`` files take :func:`load_figures`' columnar fast path for the faces
    and one parse for the files, as the two separate calls would.

    Parameters
    ----------
    source, errors, progress
        As in :func:`load_clusters`. With ``errors="collect"``, ``attrs["errors"]`` of both
        frames lists every bad record of the source.

    Returns
    -------
    files, figures : pandas.DataFrame
        Equal to ``load_files(source)`` and ``load_figures(source)``.

    Examples
    --------
    >>> from imm_analysis.io.imm_json import load_files_and_figures
    >>> page = {"Files": [{"ObjectId": "f1", "URI": "oss://b/1.jpg", "Figures": [{"FigureId": "a"}]}]}
    >>> files, figures = load_files_and_figures(page)
    >>> len(files), figures["figure_id"].tolist()
    (1, ['a'])
    """
    return _read_files(source, ErrorLog(errors), progress, files=True, figures=True)


def _read_files(
    source: Any, log: ErrorLog, progress: bool, *, files: bool, figures: bool
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The files and/or figures frames of file responses, every document parsed at most once."""
    file_loader = _RecordLoader(FILE_TABLE, log) if files else None
    figure_loader = _FigureLoader(log) if figures else None
    seen_files, seen_figures = _Seen("files"), _Seen("files")
    paths = source_paths(source)
    items: Iterable[Any] = [source] if paths is None else paths
    if progress and paths is not None and len(paths) > 1:
        from tqdm.auto import tqdm

        items = tqdm(paths, desc="IMM JSON files", unit="file")
    for item in items:
        fast = None
        if figure_loader is not None and isinstance(item, Path) and item.name.lower().endswith(LINES_SUFFIXES):
            fast = read_figures(item)
            if fast is not None:
                figure_loader.add_fast(fast)
                seen_figures.fast(fast, str(item))
                if file_loader is None:
                    continue
        slow_figures = figure_loader if fast is None else None
        for page in iter_pages(iter_documents(item, log, progress=progress and paths is None), log):
            seen_files.page(page)
            if slow_figures is not None:
                seen_figures.page(page)
            for record, src, where, cover in _file_records(page, log):
                if file_loader is not None:
                    file_loader.add(record, src, where, cover)
                if slow_figures is not None:
                    slow_figures.add(record, src, where, cover)
    files_frame = figures_frame = None
    if file_loader is not None:
        frame = file_loader.frame()
        priority = file_loader.priority()
        frame, dropped, kept = _drop_duplicates(frame, ["file_id"], priority, "files", "same file_id")
        seen_files.check_total(int((~priority[kept]).sum()))
        files_frame = _finish(frame, "files", log, dropped)
    if figure_loader is not None:
        frame, priority, n_files = figure_loader.finish()
        frame, dropped, _ = _drop_duplicates(
            frame, ["file_id", "figure_id"], priority, "faces", "same file_id and figure_id"
        )
        seen_figures.check_total(n_files)
        figures_frame = _finish(frame, "figures", log, dropped)
    return files_frame, figures_frame


def _file_records(page: Page, log: ErrorLog) -> Iterable[tuple[Any, str, str, bool]]:
    """``(file record, source, record label, from a cluster cover)`` of a page."""
    if page.kind == "files":
        for i, item in enumerate(page.items):
            yield item, page.source, page.where(i), False
        return
    for i, cluster in enumerate(page.items):
        cover = cluster.get("Cover") if isinstance(cluster, dict) else None
        if cover is None:
            continue
        where = f"{page.where(i)}.Cover"
        if not isinstance(cover, dict):
            log.add(page.source, page.where(i), "Cover", f"expected an object, got {type(cover).__name__}")
            continue
        yield cover, page.source, where, True


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

    package = str(Path(__file__).resolve().parents[1])
    frame, level = sys._getframe(2), 2
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


# --------------------------------------------------------------------------- writing

_ZERO_FRACTION = "000000000"


def _rfc3339(values: pd.Series) -> list[str | None]:
    """UTC RFC 3339 strings with up to nine fraction digits (``2022-01-14T02:10:52.83948013Z``)."""
    times = pd.to_datetime(values, utc=True).dt.tz_convert("UTC").astype(schema.TIME)
    ns = times.dt.tz_localize(None).to_numpy().astype("M8[ns]").view(np.int64)
    base = times.dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = np.mod(ns, 1_000_000_000)
    out: list[str | None] = []
    for b, f, na in zip(base.tolist(), frac.tolist(), times.isna().to_numpy().tolist(), strict=True):
        if na:
            out.append(None)
        elif f:
            out.append(f"{b}.{f:09d}".rstrip("0") + "Z")
        else:
            out.append(f"{b}Z")
    return out


def _json_values(series: pd.Series, dtype: str) -> list:
    """Column values as JSON-ready Python objects, None where missing."""
    if dtype == schema.TIME:
        return _rfc3339(series)
    if dtype == schema.OBJECT:
        return series.tolist()
    na = series.isna().to_numpy()
    if dtype == schema.INT:
        values = series.astype("Int64").to_numpy(dtype=np.int64, na_value=0).tolist()
    elif dtype == schema.FLOAT:
        values = series.astype(np.float64).to_numpy().tolist()
    else:
        values = series.astype(schema.STRING).to_numpy(dtype=object, na_value=None).tolist()
    return [None if m else v for v, m in zip(values, na.tolist(), strict=True)]


def _records(frame: pd.DataFrame, spec: Iterable[tuple[str, str, str | None]], paths: dict[str, str]) -> list[dict]:
    """One IMM dict per row: CamelCase (nested where the path has a dot), missing values left out."""
    fields = [(col, paths.get(col, imm), dtype) for col, dtype, imm in spec if paths.get(col, imm) and col in frame]
    columns = [(path.split("."), _json_values(frame[col], dtype)) for col, path, dtype in fields]
    extras = frame["extra"].tolist() if "extra" in frame else [None] * len(frame)
    out = []
    for i in range(len(frame)):
        record: dict[str, Any] = {}
        for path, values in columns:
            v = values[i]
            if v is None or (isinstance(v, float) and v != v):
                continue
            if len(path) == 1:
                record[path[0]] = v
            else:
                record.setdefault(path[0], {})[path[1]] = v
        if isinstance(extras[i], dict):
            _merge(record, extras[i])
        out.append(record)
    return out


def _merge(record: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(record.get(k), dict):
            _merge(record[k], v)
        else:
            record[k] = v


def to_imm_clusters(clusters: pd.DataFrame) -> dict[str, Any]:
    """Write a clusters frame as one QueryFigureClusters response.

    Columns become IMM fields (``face_count`` -> ``FaceCount``; ``cover_file_id`` and
    ``cover_uri`` -> ``Cover.ObjectId`` / ``Cover.URI``), missing values are left out,
    the ``extra`` dict is merged back in, and times are written in UTC
    (``2022-01-14T02:10:52.83948013Z``, nanoseconds kept). ``load_clusters`` of the result
    gives an equal frame.

    Parameters
    ----------
    clusters : pandas.DataFrame
        A clusters frame (as returned by :func:`load_clusters`).

    Returns
    -------
    dict
        ``{"FigureClusters": [...], "NextToken": "", "TotalCount": n}``.

    Examples
    --------
    >>> from imm_analysis import load_clusters, to_imm_clusters
    >>> clusters = load_clusters({"FigureCluster": {"ObjectId": "Cluster-1", "FaceCount": 4}})
    >>> to_imm_clusters(clusters)["FigureClusters"]
    [{'ObjectId': 'Cluster-1', 'FaceCount': 4}]
    """
    paths = {"cover_file_id": "Cover.ObjectId", "cover_uri": "Cover.URI"}
    records = _records(clusters, schema.CLUSTER_SPEC, paths)
    return {"FigureClusters": records, "NextToken": "", "TotalCount": len(records)}


def to_imm_files(files: pd.DataFrame | None, figures: pd.DataFrame | None = None) -> dict[str, Any]:
    """Write a files frame and its faces as one SimpleQuery response.

    Each file gets its faces (rows of ``figures`` with its ``file_id``, in frame order) as
    ``Figures``, with ``Boundary`` and ``HeadPose`` nested again. Faces whose file is not
    in ``files`` get a minimal file built from their ``file_id``, ``uri``, ``media_type``
    and ``produce_time``. ``cluster_state`` is not written (it is derived from
    ``figure_cluster_id``); columns outside the schema are not written. Times are written in
    UTC with nanoseconds. ``load_files`` / ``load_figures`` of the result give equal frames
    (figures ordered by file, as the loaders produce them).

    Parameters
    ----------
    files : pandas.DataFrame or None
        A files frame (as returned by :func:`load_files`); None builds the files from ``figures``.
    figures : pandas.DataFrame, optional
        A figures frame (as returned by :func:`load_figures`).

    Returns
    -------
    dict
        ``{"Files": [...], "Aggregations": [], "NextToken": ""}``.

    Examples
    --------
    >>> from imm_analysis import load_figures, to_imm_files
    >>> page = {"Files": [{"ObjectId": "f1", "URI": "oss://b/1.jpg",
    ...                    "Figures": [{"FigureId": "a", "HeadPose": {"Yaw": 9.5}}]}]}
    >>> to_imm_files(None, load_figures(page))["Files"]
    [{'ObjectId': 'f1', 'URI': 'oss://b/1.jpg', 'Figures': [{'FigureId': 'a', 'HeadPose': {'Yaw': 9.5}}]}]
    """
    if files is None:
        files = schema.empty_frame("files")
    file_records = _records(files, schema.FILE_SPEC, {})
    if figures is None or not len(figures):
        return {"Files": file_records, "Aggregations": [], "NextToken": ""}
    face_spec = [(c, d, imm) for c, d, imm in schema.FIGURE_SPEC if imm]
    face_records = _records(figures, face_spec, {})
    by_file: dict[Any, list[dict]] = {}
    file_ids = figures["file_id"].astype(schema.STRING).to_numpy(dtype=object, na_value=None).tolist()
    for fid, rec in zip(file_ids, face_records, strict=True):
        by_file.setdefault(fid, []).append(rec)
    known = files["file_id"].astype(schema.STRING).to_numpy(dtype=object, na_value=None).tolist()
    for fid, rec in zip(known, file_records, strict=True):
        if fid in by_file:
            rec["Figures"] = by_file.pop(fid)
    if by_file:
        context = [(c, d, imm) for c, d, imm in schema.FILE_SPEC if c in ("file_id", "uri", "media_type", "produce_time")]
        first = figures.drop_duplicates("file_id", keep="first")
        first = first[first["file_id"].isin(list(by_file))]
        for fid, rec in zip(first["file_id"].tolist(), _records(first, context, {}), strict=True):
            rec["Figures"] = by_file.pop(fid if fid is not pd.NA else None, [])
            file_records.append(rec)
    return {"Files": file_records, "Aggregations": [], "NextToken": ""}

