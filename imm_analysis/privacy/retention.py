"""Retention for the embedding cache: :func:`expire_cache` drops files captured (or indexed) before a cut-off.

The counterpart of :meth:`ClusterState.expire <imm_analysis.ClusterState.expire>`, with the
guarantees of :func:`~imm_analysis.forget`: tombstones first (so a later ``embed_images`` over
the same folder does not bring the faces back), then each chunk rewritten atomically.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.cluster.erase import cutoff_time
from imm_analysis.io.tombstones import tombstone_rows
from imm_analysis.privacy.stores import CacheStore

__all__ = ["expire_cache"]

_STEM_TIME = re.compile(r"^part-(\d+)-")


def _file_times(files: pd.DataFrame, stem: str) -> pd.Series:
    """Capture time of each files row (``produce_time``), else when the chunk was written (indexed)."""
    m = _STEM_TIME.match(stem)
    indexed = pd.Timestamp(int(m.group(1)), unit="ns", tz="UTC") if m else pd.NaT
    if "produce_time" in files.columns:
        t = pd.to_datetime(files["produce_time"], utc=True, errors="coerce")
    else:
        t = pd.Series(pd.NaT, index=files.index, dtype="datetime64[ns, UTC]")
    return t.fillna(indexed)  # type: ignore[arg-type]


def expire_cache(cache_dir: str | os.PathLike[str], older_than: Any, *, now: pd.Timestamp | None = None,
                 dry_run: bool = False) -> dict[str, int]:
    """Drop the files (and their faces and embeddings) captured before a cut-off from an embedding cache.

    Parameters
    ----------
    cache_dir : path-like
        The embedding cache directory (``embed_images(..., cache_dir=...)``).
    older_than : Timestamp, str or Timedelta
        A cut-off time, or an age such as ``"30D"`` (cut-off = ``now`` minus it).
    now : Timestamp, optional
        The present (default: now), for ages.
    dry_run : bool, default=False
        Only count.

    Returns
    -------
    dict
        ``files`` and ``faces`` expired, ``chunks`` rewritten.

    Notes
    -----
    A file's time is its capture time (``produce_time``, from EXIF) when known, else the time
    its chunk was written (when it was indexed). Expired faces are tombstoned, so a later run over
    the same files embeds the files again but leaves those faces out.

    Examples
    --------
    >>> import tempfile
    >>> from imm_analysis.faces.cache import EmbeddingCache
    >>> root = tempfile.mkdtemp()
    >>> _ = EmbeddingCache(root, "pack:x@1", 4, {})
    >>> expire_cache(root, "30D")
    {'files': 0, 'faces': 0, 'chunks': 0}
    """
    from imm_analysis.io.tombstones import add_tombstones
    from imm_analysis.privacy import cache_store as C

    cut = cutoff_time(older_than, now)
    store = CacheStore(cache_dir, clean=not dry_run)
    plans = []
    tombs: list[dict] = []
    n_files = 0
    for ch in store.chunks:
        old = (_file_times(ch.files, ch.stem) < cut).to_numpy(bool)
        keys = set(ch.files.loc[old, "cache_key"].astype(str))
        if not keys:
            continue
        gone = ch.figures["cache_key"].astype(str).isin(keys).to_numpy(bool)
        n_files += len(keys)
        tombs += tombstone_rows(ch.figures.loc[gone], reason="expire")
        plans.append((ch, gone, keys))
    out = {"files": n_files, "faces": int(sum(int(np.sum(g)) for _, g, _ in plans)), "chunks": len(plans)}
    if dry_run or not plans:
        return out
    add_tombstones(store.root, tombs, write=C._write_bytes)
    for ch, gone, keys in plans:
        C.rewrite_chunk(ch, ~gone, drop_keys=keys)
    return out
