"""Erasing faces from an embedding cache (:mod:`imm_analysis.faces.cache`) chunk by chunk, atomically.

A chunk that holds an erased face is written again without it under a new name that sorts
*before* the old one (so :meth:`EmbeddingCache.load`, where the first chunk wins when a key
repeats, serves the new one as soon as it is committed), then the old chunk is removed, its
commit record first. A kill at any step leaves the old chunk, or the new one (possibly with the
old one's files still there but never served), never a half-written one; the next erasure (or a
:func:`~imm_analysis.forget` with no targets) removes what is left, because the tombstones are
written before any chunk is touched and every tombstoned face is erased again.

Every step that changes the disk goes through :func:`_write_frame`, :func:`_save_npy`,
:func:`_write_bytes` or :func:`_remove_file` (the fault-injection test replaces them).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes
from imm_analysis.io.parquet import read_frame, write_frame

__all__ = ["Chunk", "cache_folders", "read_chunks", "rewrite_chunk"]

_STEM = re.compile(r"^part-(\d+)-\d+-[0-9a-f]+$")

# the write steps (replaced one by one by the fault-injection test)
_write_frame = write_frame
_save_npy = atomic_save_npy
_write_bytes = atomic_write_bytes


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


@dataclass
class Chunk:
    """One committed chunk of a cache folder: its frames (with ``cache_key``) and embeddings."""

    folder: Path
    stem: str
    files: pd.DataFrame
    figures: pd.DataFrame
    embeddings: np.ndarray

    @property
    def errors(self) -> pd.DataFrame:
        """The chunk's error rows (read when a rewrite needs them)."""
        return read_frame(self.folder / f"{self.stem}.errors.parquet")


def cache_folders(cache_dir: str | os.PathLike[str]) -> list[Path]:
    """The model folders (``<pack>-<key>`` with a ``meta.json``) of an embedding cache directory.

    Examples
    --------
    >>> import tempfile
    >>> cache_folders(tempfile.mkdtemp())
    []
    """
    root = Path(cache_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such embedding cache folder")
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "meta.json").is_file())


def read_chunks(folder: Path) -> Iterator[Chunk]:
    """Every committed chunk of one model folder, in load order (raw: tombstones not applied).

    Examples
    --------
    >>> import tempfile
    >>> from imm_analysis.faces.cache import EmbeddingCache
    >>> cache = EmbeddingCache(tempfile.mkdtemp(), "pack:x@1", 4, {})
    >>> list(read_chunks(cache.dir))
    []
    """
    dim = int(json.loads((folder / "meta.json").read_text()).get("dim", 0))
    for record in sorted(folder.glob("part-*.files.parquet")):
        stem = record.name[: -len(".files.parquet")]
        files = read_frame(record, json_columns=["extra", "custom_labels"])
        figures = read_frame(folder / f"{stem}.figures.parquet", json_columns=["extra"])
        emb = np.load(folder / f"{stem}.npy")
        if emb.shape != (len(figures), dim):
            raise ValueError(f"{folder / stem}.npy has shape {emb.shape}, expected ({len(figures)}, {dim})")
        yield Chunk(folder, stem, files, figures, emb)


def _earlier_stem(stem: str) -> str:
    m = _STEM.match(stem)
    t = int(m.group(1)) - 1 if m else 0
    return f"part-{max(t, 0):020d}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def rewrite_chunk(chunk: Chunk, keep: np.ndarray, *, drop_keys: set[str] | None = None,
                  step: Callable[[str], None] | None = None) -> str:
    """Replace ``chunk`` by a copy holding only the faces ``keep`` (and not the files ``drop_keys``).

    Returns the new chunk's stem. ``figure_count`` of the files rows follows the faces kept.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from imm_analysis.faces.cache import EmbeddingCache
    >>> cache = EmbeddingCache(tempfile.mkdtemp(), "pack:x@1", 2, {})
    >>> figs = pd.DataFrame({"cache_key": ["k", "k"], "figure_id": ["a", "b"]})
    >>> files = pd.DataFrame({"cache_key": ["k"], "figure_count": [2]})
    >>> cache.write_chunk(["k"], files, figs, np.eye(2, dtype=np.float32), pd.DataFrame({"cache_key": []}))
    >>> (chunk,) = read_chunks(cache.dir)
    >>> _ = rewrite_chunk(chunk, np.array([True, False]))
    >>> [(c.figures["figure_id"].tolist(), c.files["figure_count"].tolist()) for c in read_chunks(cache.dir)]
    [(['a'], [1])]
    """
    from imm_analysis.faces import cache as cache_mod

    keep = np.asarray(keep, dtype=bool)
    figures = chunk.figures.loc[keep].reset_index(drop=True)
    files = chunk.files
    errors = chunk.errors
    if drop_keys:
        files = files.loc[~files["cache_key"].astype(str).isin(drop_keys).to_numpy(bool)].reset_index(drop=True)
        errors = errors.loc[~errors["cache_key"].astype(str).isin(drop_keys).to_numpy(bool)].reset_index(drop=True)
    if "figure_count" in files.columns and len(files):
        counts = figures.groupby(figures["cache_key"].astype(str)).size()
        ok = files["status"].astype(str).eq("ok").to_numpy(bool) if "status" in files else np.ones(len(files), bool)
        n = files["cache_key"].astype(str).map(counts).fillna(0).to_numpy()
        files = files.copy()
        files.loc[ok, "figure_count"] = n[ok]
    new = _earlier_stem(chunk.stem)
    folder = chunk.folder
    with cache_mod._writing_lock:  # another cache opened in this process must not clean it meanwhile
        cache_mod._writing.add(new)
    try:
        _save_npy(folder / f"{new}.npy", np.ascontiguousarray(chunk.embeddings[keep], dtype=np.float32))
        _write_frame(figures, folder / f"{new}.figures.parquet", json_suffix="")
        _write_frame(errors, folder / f"{new}.errors.parquet", json_suffix="")
        _write_frame(files, folder / f"{new}.files.parquet", json_suffix="")  # the commit record, last
    finally:
        with cache_mod._writing_lock:
            cache_mod._writing.discard(new)
    # the old chunk: its commit record first, so a kill leaves nothing of it that is served
    for suffix in (".files.parquet", ".npy", ".figures.parquet", ".errors.parquet"):
        _remove_file(folder / f"{chunk.stem}{suffix}")
    return new
