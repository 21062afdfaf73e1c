"""IMM JSON exports as a partitioned Parquet dataset, and reading it back (pandas or Dask).

Layout written by :func:`exports_to_parquet` (one partition per input file, in source order)::

    out/figures/part-00000.parquet   load_figures of input file 0 (schema dtypes)
    out/files/part-00000.parquet     load_files of input file 0
    out/clusters/part-00000.parquet  load_clusters of input file 0
    out/errors.parquet               errors="collect": source, record, field, reason
    out/_imm_dataset.json            written last: the dataset's commit record

Every file is written atomically (:func:`imm_analysis.io.parquet.write_frame`: dict columns as
JSON text, categories' dtypes in the file's metadata), the record last, so a folder without
``_imm_dataset.json`` is an unfinished conversion and is never read as a dataset.

Each input file is converted by its own loader call, so the loaders' rules (duplicates dropped,
covers of cluster pages, ``TotalCount`` checks) apply within one input file; a face repeated in
two input files is kept in both partitions.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from imm_analysis import schema
from imm_analysis.io.atomic import atomic_write_bytes
from imm_analysis.io.errors import IMMLoadWarning
from imm_analysis.io.parquet import JSON_SUFFIX, _decode, _file_info, write_frame

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["exports_to_parquet", "read_dataset", "read_figures_dask", "is_dataset", "DATASET_RECORD", "TABLES"]

#: the commit record of a dataset folder
DATASET_RECORD = "_imm_dataset.json"
#: the tables of a dataset, one sub-folder each
TABLES = ("figures", "files", "clusters")
ERROR_FIELDS = ("source", "record", "field", "reason")
_FORMAT = 1
_NO_CLUSTERS = "no clusters were loaded"
_quiet = threading.local()  # set while this thread converts: a files page has no clusters, not worth a word


class _NoClustersFilter(logging.Filter):
    """Drops the loaders' "no clusters were loaded" record in a thread that is converting a file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(_quiet, "on", False) and _NO_CLUSTERS in record.getMessage())


_FILTER = _NoClustersFilter()


def _convert_one(path: str, index: int, out: str, errors: str) -> dict[str, Any]:
    """Convert one input file into one partition of each table; its counts and its errors."""
    from imm_analysis.io.imm_json import load_clusters, load_files_and_figures

    files, figures = load_files_and_figures(path, errors=errors)
    logging.getLogger("imm_analysis.io.imm_json").addFilter(_FILTER)  # once: the same filter is not added twice
    _quiet.on = True
    try:
        with warnings.catch_warnings(record=True) as caught:  # a files page has no clusters: not worth a warning
            warnings.simplefilter("always")
            clusters = load_clusters(path, errors=errors)
    finally:
        _quiet.on = False
    for w in caught:
        if not (issubclass(w.category, IMMLoadWarning) and _NO_CLUSTERS in str(w.message)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    name = f"part-{index:05d}.parquet"
    frames = {"figures": figures, "files": files, "clusters": clusters}
    for table, frame in frames.items():
        write_frame(frame, Path(out) / table / name)
    seen, errs = set(), []
    for frame in (files, figures, clusters):  # one document parsed by two loaders logs its errors twice
        for e in frame.attrs.get("errors", []):
            key = tuple(str(e.get(k)) for k in ERROR_FIELDS)
            if key not in seen:
                seen.add(key)
                errs.append({k: e.get(k) for k in ERROR_FIELDS})
    return {"counts": {t: len(f) for t, f in frames.items()}, "errors": errs}


def exports_to_parquet(
    source: Any,
    out: str | os.PathLike[str],
    *,
    client: Any = None,
    errors: str = "raise",
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Convert IMM JSON exports into a partitioned Parquet dataset of figures, files and clusters.

    Parameters
    ----------
    source : path, directory, glob or list of paths
        What the loaders read (``.json``, ``.jsonl``, gzipped or not); one partition per file.
    out : path-like
        The dataset folder (created; must not hold a finished dataset; the parts of an unfinished
        conversion there are replaced).
    client : dask.distributed.Client or str, optional
        Convert on a Dask cluster (files must be readable by the workers, ``out`` writable).
        Default: local processes (``workers``).
    errors : {"raise", "collect"}, default="raise"
        The loaders' rule: ``"raise"`` stops at the first bad record (:class:`IMMFormatError`);
        ``"collect"`` converts the rest and writes the bad records to ``out/errors.parquet``.
    workers : int, optional
        Local processes when ``client`` is None (default: the CPU count; 1 converts in this process).
    progress : bool, default=False
        A progress bar over input files.

    Returns
    -------
    Path
        ``out``; read it with ``load_figures(out, columns=..., filters=...)`` or
        :func:`read_figures_dask`.

    Examples
    --------
    >>> import tempfile
    >>> from imm_analysis.io import exports_to_parquet, load_figures
    >>> out = exports_to_parquet("data/sample/files", tempfile.mkdtemp() + "/ds", workers=1)  # doctest: +SKIP
    >>> load_figures(out, columns=["figure_id", "face_quality"]).shape  # doctest: +SKIP
    (420, 2)
    """
    from imm_analysis.io.errors import ErrorLog
    from imm_analysis.io.sources import source_paths

    ErrorLog(errors)  # checks the mode
    paths = source_paths(source) if not isinstance(source, (list, tuple)) else [Path(p) for p in source]
    if paths is None:
        raise TypeError(f"exports_to_parquet reads files: a path, directory, glob or list of paths, not {type(source).__name__}")
    if not paths:
        raise FileNotFoundError(f"no IMM JSON files in {source!r}")
    out = Path(out).expanduser()
    if (out / DATASET_RECORD).exists():
        raise FileExistsError(f"{out} already holds a dataset ({DATASET_RECORD}); choose another folder")
    for table in TABLES:
        (out / table).mkdir(parents=True, exist_ok=True)
        for stale in (out / table).glob("part-*.parquet"):  # left by an unfinished conversion
            stale.unlink()
    (out / "errors.parquet").unlink(missing_ok=True)
    args = [(str(p), i, str(out), errors) for i, p in enumerate(paths)]
    results = _run_all(args, client, workers, progress)
    errs = [e for r in results for e in r["errors"]]
    if errors == "collect":
        write_frame(pd.DataFrame(errs, columns=list(ERROR_FIELDS)).astype("string"), out / "errors.parquet")
    record = {
        "format": _FORMAT,
        "tables": {t: sum(r["counts"][t] for r in results) for t in TABLES},
        "partitions": len(paths),
        "sources": [str(p) for p in paths],
        "errors": len(errs),
    }
    atomic_write_bytes(out / DATASET_RECORD, json.dumps(record, indent=1).encode())
    return out


def _run_all(args: list[tuple], client: Any, workers: int | None, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(args), desc="IMM JSON -> Parquet", unit="file", disable=not progress)
    try:
        if client is not None:
            from imm_analysis.faces.distributed import connect

            client, created = connect(client)
            try:
                futures = [client.submit(_convert_one, *a, pure=False) for a in args]
                for f in futures:
                    f.add_done_callback(lambda _f: bar.update(1))
                return client.gather(futures)
            finally:
                if created:
                    client.close()
        n = min(len(args), workers or os.cpu_count() or 1)
        if n <= 1:
            out = []
            for a in args:
                out.append(_convert_one(*a))
                bar.update(1)
            return out
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            futs = [pool.submit(_convert_one, *a) for a in args]
            for f in futs:
                f.add_done_callback(lambda _f: bar.update(1))
            return [f.result() for f in futs]
    finally:
        bar.close()


# ------------------------------------------------------------------------------------------ reading
def _table_dir(source: Any, kind: str) -> Path | None:
    """The folder of table ``kind`` when ``source`` is a dataset (or one of its table folders)."""
    if not isinstance(source, (str, os.PathLike)) or (isinstance(source, str) and source.lstrip()[:1] in "{["):
        return None
    try:
        p = Path(source).expanduser()
        if (p / DATASET_RECORD).is_file():
            return p / kind
        if p.name in TABLES and (p.parent / DATASET_RECORD).is_file():
            if p.name != kind:
                raise ValueError(f"{p} is the {p.name!r} table of a dataset, not {kind!r}")
            return p
    except OSError:
        return None
    return None


def is_dataset(source: Any) -> bool:
    """Whether ``source`` is a dataset folder written by :func:`exports_to_parquet`.

    Examples
    --------
    >>> is_dataset("data/sample/files")
    False
    """
    return _table_dir(source, "figures") is not None


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def _disk_names(folder: Path) -> dict[str, str]:
    """``{column: name on disk}`` of the JSON-encoded columns, from a partition's metadata."""
    parts = _parts(folder)
    info = _file_info(parts[0]) if parts else None
    return {} if info is None else dict(info.get("json_columns", {}))


def read_dataset(
    source: str | os.PathLike[str],
    kind: str,
    *,
    columns: Sequence[str] | None = None,
    filters: Any = None,
) -> pd.DataFrame:
    """Read table ``kind`` of a dataset, with the schema's dtypes; the engine of ``load_*(dataset)``.

    Parameters
    ----------
    source : path-like
        A dataset folder (or its ``kind`` sub-folder).
    kind : {"figures", "files", "clusters"}
    columns : list of str, optional
        Read only these columns (in this order).
    filters : pyarrow Expression or list of tuples, optional
        Row filter pushed down to Parquet: ``pyarrow.compute`` expression, or DNF tuples as
        :func:`pyarrow.parquet.read_table` takes them (``[("face_quality", ">=", 0.8)]``).
        JSON-encoded columns (``extra``, ``custom_labels``) cannot be filtered on.

    Returns
    -------
    DataFrame
        ``attrs["errors"]`` holds the conversion's collected errors.

    Examples
    --------
    >>> read_dataset("ds", "figures", columns=["figure_id"], filters=[("width", ">", 75)])  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    folder = _table_dir(source, kind)
    if folder is None:
        raise ValueError(f"{source} is not a dataset written by exports_to_parquet (no {DATASET_RECORD})")
    json_cols = _disk_names(folder)
    names = list(schema.empty_frame(kind).columns)
    parts = _parts(folder)
    dataset = None
    if parts:  # an empty partition may have null-typed columns: the schema is that of all partitions
        unified = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
        dataset = ds.dataset([str(p) for p in parts], schema=unified, format="parquet")
    on_disk = set(dataset.schema.names) if dataset is not None else set()
    known = {c for c in names} | {c for c in on_disk if not c.endswith(JSON_SUFFIX)} | set(json_cols)
    if columns is not None:
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise KeyError(f"{folder}: no column(s) {unknown} in the {kind} table")
    if filters is not None and not isinstance(filters, ds.Expression):
        filters = pq.filters_to_expression(filters)
    if dataset is None:
        frame = schema.empty_frame(kind)
    else:
        wanted = None if columns is None else [json_cols.get(c, c) for c in columns if json_cols.get(c, c) in on_disk]
        table = dataset.to_table(columns=wanted, filter=filters)
        # partitions hold different dictionaries (categories): read plain values, coerce_frame re-makes them
        fields = [pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in table.schema]
        frame = table.cast(pa.schema(fields)).to_pandas(ignore_metadata=True)
        stored = {disk: col for col, disk in json_cols.items()}
        for disk, col in stored.items():
            if disk in frame:
                frame[disk] = pd.Series(_decode(frame[disk], folder, col), index=frame.index, dtype=object)
        frame = frame.rename(columns=stored)
        frame = schema.coerce_frame(frame, kind)
    if columns is not None:
        frame = frame[list(columns)]
    frame.attrs["errors"] = _errors(folder.parent)
    return frame


def _errors(root: Path) -> list[dict]:
    from imm_analysis.io.parquet import read_frame

    p = root / "errors.parquet"
    if not p.exists():
        return []
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in read_frame(p).to_dict("records")]


def _read_part(path: str, kind: str, columns: list[str] | None) -> pd.DataFrame:
    from imm_analysis.io.parquet import read_frame

    frame = read_frame(path, kind=kind)
    return frame if columns is None else frame[columns]


def read_figures_dask(path: str | os.PathLike[str], *, columns: Sequence[str] | None = None) -> dd.DataFrame:
    """The figures of a dataset as a ``dask.dataframe``: one partition per input file, schema dtypes.

    Its ``meta`` is :func:`imm_analysis.schema.empty_frame` ``("figures")``, so the dtypes are known
    before anything is read; :func:`imm_analysis.quality.quality_summary` and
    :func:`imm_analysis.quality.hd_faces` accept it.

    Parameters
    ----------
    path : path-like
        A dataset folder written by :func:`exports_to_parquet`.
    columns : list of str, optional
        Keep only these columns.

    Returns
    -------
    dask.dataframe.DataFrame

    Examples
    --------
    >>> from imm_analysis.io import read_figures_dask
    >>> ddf = read_figures_dask("ds")  # doctest: +SKIP
    >>> quality_summary(ddf)  # doctest: +SKIP
    """
    from imm_analysis._optional import require

    dd = require("dask.dataframe", purpose="read_figures_dask")
    folder = _table_dir(path, "figures")
    if folder is None:
        raise ValueError(f"{path} is not a dataset written by exports_to_parquet (no {DATASET_RECORD})")
    cols = None if columns is None else list(columns)
    meta = schema.empty_frame("figures")
    meta = schema.coerce_frame(meta, "figures")
    from dask.dataframe.utils import clear_known_categories

    meta = clear_known_categories(meta)  # categories are those of each partition's values
    if cols is not None:
        unknown = [c for c in cols if c not in meta.columns]
        if unknown:
            raise KeyError(f"{folder}: no column(s) {unknown} in the figures table")
        meta = meta[cols]
    parts = [str(p) for p in _parts(folder)]
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    import dask

    with dask.config.set({"dataframe.convert-string": False}):  # keep string dtypes and dict columns as they are
        return dd.from_map(_read_part, parts, kind="figures", columns=cols, meta=meta, enforce_metadata=False)
