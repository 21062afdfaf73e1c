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

Layout: the loaders here; records to frames in :mod:`~imm_analysis.io.assemble`; the writers in
:mod:`~imm_analysis.io.writers` (re-exported here). Input rules and limits:
:mod:`~imm_analysis.io.sources`, :mod:`~imm_analysis.io.limits`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from imm_analysis.io.assemble import (
    CHUNK,  # noqa: F401 (documented here: load_figures, Notes)
    _drop_duplicates,
    _FigureLoader,
    _finish,
    _RecordLoader,
    _Seen,
)
from imm_analysis.io.errors import ErrorLog, IMMFormatError, IMMLoadWarning
from imm_analysis.io.fast_jsonl import LINES_SUFFIXES, checked_ahead, figures_from_bytes
from imm_analysis.io.records import Page, iter_pages
from imm_analysis.io.sources import iter_documents, source_paths
from imm_analysis.io.tables import CLUSTER_TABLE, FILE_TABLE
from imm_analysis.io.writers import to_imm_clusters, to_imm_files

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



# --------------------------------------------------------------------------- loading


def load_clusters(
    source: Any, *, errors: str = "raise", progress: bool = False, columns: Any = None, filters: Any = None
) -> pd.DataFrame:
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
    columns, filters : optional
        Only for a Parquet dataset written by :func:`imm_analysis.io.exports_to_parquet`
        (``source`` is its folder): read only these columns, and only the rows that pass the
        pyarrow filter (see :func:`imm_analysis.io.dataset.read_dataset`).

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
    dataset = _from_dataset(source, "clusters", columns, filters)
    if dataset is not None:
        return dataset
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


def load_files(
    source: Any, *, errors: str = "raise", progress: bool = False, columns: Any = None, filters: Any = None
) -> pd.DataFrame:
    """Load files (``File`` records) into a files frame, one row per file.

    Reads SimpleQuery, GetFileMeta and BatchGetFileMeta responses and bare File objects,
    plus the ``Cover`` file of every cluster when given cluster responses. Faces
    (``Figures``) are not columns here: see :func:`load_figures`.

    Parameters
    ----------
    source, errors, progress, columns, filters
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
    dataset = _from_dataset(source, "files", columns, filters)
    if dataset is not None:
        return dataset
    log = ErrorLog(errors)
    files, _ = _read_files(source, log, progress, files=True, figures=False)
    assert files is not None
    return files


def load_figures(
    source: Any, *, errors: str = "raise", progress: bool = False, columns: Any = None, filters: Any = None
) -> pd.DataFrame:
    """Load faces (``File.Figures[]``) into a figures frame, one row per face.

    Reads the same inputs as :func:`load_files` (including the faces of each cluster's
    ``Cover`` file) and repeats the file's ``file_id``, ``uri``, ``media_type`` and
    ``produce_time`` on each of its faces.

    Parameters
    ----------
    source, errors, progress, columns, filters
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
    dataset = _from_dataset(source, "figures", columns, filters)
    if dataset is not None:
        return dataset
    log = ErrorLog(errors)
    _, figures = _read_files(source, log, progress, files=False, figures=True)
    assert figures is not None
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
    files, figures = _read_files(source, ErrorLog(errors), progress, files=True, figures=True)
    assert files is not None and figures is not None
    return files, figures


def _from_dataset(source: Any, kind: str, columns: Any, filters: Any) -> pd.DataFrame | None:
    """Table ``kind`` of a Parquet dataset folder (:mod:`imm_analysis.io.dataset`), else None."""
    from imm_analysis.io.dataset import _table_dir, read_dataset

    if _table_dir(source, kind) is None:
        if columns is not None or filters is not None:
            raise ValueError(f"columns= and filters= apply to a Parquet dataset made by exports_to_parquet; {source!r} is not one")
        return None
    return read_dataset(source, kind, columns=columns, filters=filters)


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
    def fast_candidate(item: Any) -> bool:
        return figure_loader is not None and isinstance(item, Path) and item.name.lower().endswith(LINES_SUFFIXES)

    checked = checked_ahead([p for p in paths or [] if fast_candidate(p)])  # read and checked one file ahead
    try:  # closed on an error too: its reading thread (and the file it holds) must not outlive the call
        for item in items:
            fast = None
            if fast_candidate(item):
                data = next(checked)
                fast = None if data is None else figures_from_bytes(data)
                del data
                if fast is not None:
                    assert figure_loader is not None  # fast_candidate checked it
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
    finally:
        checked.close()
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
