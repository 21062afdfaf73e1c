"""Erasing forgotten people from output folders: report tables, pages, crops, thumbnails, UMAP caches.

* CSV and Parquet tables: rows that mention a forgotten id (a cluster, figure or file id, anywhere
  in a text cell) or carry a forgotten cluster's name (a whole cell) are dropped, and the table is
  written again atomically; tables without such rows are left alone.
* HTML, JSON, Markdown and text pages that mention a forgotten id are removed (an aggregate
  page cannot be rewritten without its data: make the report again from the erased stores).
* Images (crops, thumbnails, covers) whose file name holds a forgotten id are removed.
* Temporary files of an interrupted atomic write (``.<name>.<hex>.tmp``) are removed.
* ``umap-*.npy`` projection caches (:func:`imm_analysis.project_umap`) are removed: each holds a
  point per face of the collection it was computed from, forgotten faces included.

Every step that changes the disk goes through :data:`_write_bytes` or :func:`_remove_file`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.io.atomic import atomic_write_bytes

__all__ = ["erase_outputs"]

_PAGES = {".html", ".htm", ".json", ".md", ".txt", ".ipynb"}
_IMAGES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}

_ATOMIC_TMP = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")  # imm_analysis.io.atomic's temporary names

_write_bytes = atomic_write_bytes


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def _pattern(ids: list[str]) -> re.Pattern | None:
    """One regex for every id, as a whole word: ``...-0-1`` does not match inside ``...-0-10``."""
    if not ids:
        return None
    alt = "|".join(re.escape(t) for t in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?<![0-9A-Za-z])(?:{alt})(?![0-9A-Za-z])")


def _hits(frame: pd.DataFrame, rx: re.Pattern | None, names: set[str]) -> pd.Series:
    hit = pd.Series(False, index=frame.index)
    for col in frame.columns:
        s = frame[col]
        if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
            continue
        text = s.astype("string").fillna("")
        if names:
            hit |= text.isin(names).to_numpy(bool)
        if rx is not None:
            hit |= text.str.contains(rx).to_numpy(bool)
    return hit


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path)


def _table_bytes(path: Path, frame: pd.DataFrame, keep: np.ndarray, suffix: str) -> bytes:
    """The table without the rows not in ``keep``; a Parquet file keeps its schema and metadata
    (a dataset part of :func:`~imm_analysis.io.exports_to_parquet` stays readable as one)."""
    if suffix == ".csv":
        return frame.loc[keep].to_csv(index=False).encode("utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    buf = io.BytesIO()
    pq.write_table(table.filter(pa.array(keep)), buf)
    return buf.getvalue()


def erase_outputs(folder: str | os.PathLike[str], ids: Iterable[str], names: Iterable[str] = (),
                  *, dry_run: bool = False) -> dict[str, Any]:
    """Remove every trace of ``ids`` (and cluster ``names``) from the files under ``folder``.

    Parameters
    ----------
    folder : path-like
        A report or output folder (searched recursively; symlinks are not followed).
    ids : iterable of str
        Forgotten cluster, figure and file ids (matched inside text cells and pages).
    names : iterable of str
        Names of forgotten clusters (matched as whole table cells).
    dry_run : bool, default=False
        Only say what would change.

    Returns
    -------
    dict
        ``rewritten`` (table -> rows dropped) and ``removed`` (files removed), paths relative to ``folder``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "visitors.csv").write_text("visitor_id,visits\\nCluster-a,3\\nCluster-b,1\\n")
    >>> erase_outputs(d, ["Cluster-a"])["rewritten"]
    {'visitors.csv': 1}
    >>> (d / "visitors.csv").read_text().splitlines()
    ['visitor_id,visits', 'Cluster-b,1']

    Ids match as whole words: erasing face ``f-0-1`` leaves ``f-0-10``.

    >>> _ = (d / "faces.csv").write_text("figure_id\\nf-0-1\\nf-0-10\\n")
    >>> erase_outputs(d, ["f-0-1"])["rewritten"]
    {'faces.csv': 1}
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such output folder")
    rx = _pattern(sorted({str(i) for i in ids if i and str(i).strip()}))
    name_set = {str(n) for n in names if n is not None and str(n).strip()}
    rewritten: dict[str, int] = {}
    removed: list[str] = []
    for dirpath, _dirs, filenames in os.walk(root):  # does not follow symlinked folders
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            if path.is_symlink() or not path.is_file():
                continue
            if fname.startswith("."):  # a killed atomic write's temporary file goes too
                if _ATOMIC_TMP.match(fname):
                    removed.append(str(path.relative_to(root)))
                    if not dry_run:
                        _remove_file(path)
                continue
            rel = str(path.relative_to(root))
            suffix = path.suffix.lower()
            if fname.startswith("umap-") and suffix == ".npy":
                removed.append(rel)
            elif suffix in _IMAGES:
                if rx is not None and rx.search(fname):
                    removed.append(rel)
            elif suffix in (".csv", ".parquet"):
                try:
                    frame = _read_table(path)
                except Exception as exc:  # noqa: BLE001 - a table we cannot read cannot be vouched for
                    raise ValueError(f"{path}: cannot read this table to erase from it ({exc})") from exc
                hit = _hits(frame, rx, name_set)
                if hit.any():
                    rewritten[rel] = int(hit.sum())
                    if not dry_run:
                        _write_bytes(path, _table_bytes(path, frame, ~hit.to_numpy(bool), suffix))
                continue
            elif suffix in _PAGES:
                text = path.read_bytes().decode("utf-8", errors="replace")
                if rx is not None and rx.search(text):
                    removed.append(rel)
            if removed and removed[-1] == rel and not dry_run:
                _remove_file(path)
    return {"rewritten": rewritten, "removed": removed}
