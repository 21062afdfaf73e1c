"""On-disk cache of the local pipeline's results: Parquet frames plus float32 ``.npy`` embeddings.

Layout (one folder per model id and detector settings)::

    cache_dir/<pack>-<key>/meta.json                 model id, embedding dim, settings
    cache_dir/<pack>-<key>/part-<stamp>.figures.parquet
    cache_dir/<pack>-<key>/part-<stamp>.npy           float32 [n_faces, dim], row-aligned with figures
    cache_dir/<pack>-<key>/part-<stamp>.errors.parquet
    cache_dir/<pack>-<key>/part-<stamp>.files.parquet  written last: the chunk's commit record

Each chunk is written as it is made. Every file is written to a temporary name, fsynced and moved
into place with :func:`os.replace` (:mod:`imm_analysis.io.atomic`; frames through
:func:`imm_analysis.io.parquet.write_frame`, dict columns as JSON text under their own names), and
the ``.files.parquet`` record goes last, so a run killed at any moment (even with SIGKILL) leaves
either a complete chunk or one that is ignored and redone. Rows
are keyed by ``cache_key`` (the file's SHA-256, plus the sampling rate for videos); a key found in
several chunks (two runs at once) is read once. Opening a folder whose ``meta.json`` names another
model raises, and so does a chunk recorded by another model: embeddings of two models never mix.

Killed runs leave no lasting trace: parts of a chunk that was never committed (its files written
before the ``.files.parquet`` record, and ``.<name>.<random>.tmp`` files of an interrupted
write) are removed when the folder is next opened (:meth:`EmbeddingCache.clean_stale`). A part
is stale when the process that wrote it (its pid is in the name) is gone, or is this very
process and no longer writing it; parts of a run still in progress elsewhere are left alone.
Process ids are those of this machine: a cache folder written by runs on several machines at
once (a shared network folder) is not supported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes
from imm_analysis.io.parquet import read_frame, write_frame
from imm_analysis.io.tombstones import read_tombstones, tombstoned_mask

__all__ = ["EmbeddingCache", "CachedEntry", "atomic_write_bytes"]

_FORMAT = 1
_PART = re.compile(r"^\.?(part-\d+-(\d+)-[0-9a-f]+)\.")
_writing: set[str] = set()  # chunk stems this process is writing right now
_writing_lock = threading.Lock()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@dataclass
class CachedEntry:
    """One cached source file: its files row, its faces and their embeddings, or its error."""

    key: str
    file: list[dict]  # one files row (none when the file failed)
    figures: list[dict]  # its faces' rows
    embeddings: np.ndarray
    error: list[dict]  # one row when the file failed, else none

    # Rows stay plain dicts, the form the pipeline produces for new files, so a run builds
    # each frame once for cached and new files alike (no small frame per cached file).


class EmbeddingCache:
    """Chunked, crash-safe store of embedding results for one model id and settings.

    Parameters
    ----------
    root : path-like
        The user's cache directory (created when missing).
    model_id : str
        :attr:`FaceModel.model_id`.
    dim : int
        Embedding dimension.
    settings : dict
        Anything else that changes the results (detector size and threshold, mode).
    """

    def __init__(self, root: str | os.PathLike[str], model_id: str, dim: int, settings: dict) -> None:
        self.model_id = model_id
        self.dim = int(dim)
        self.settings = dict(settings)
        key = hashlib.sha1(json.dumps([model_id, self.settings], sort_keys=True).encode()).hexdigest()[:12]
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id.split(":")[0])
        self.dir = Path(root).expanduser() / f"{name}-{key}"
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        meta = {"format": _FORMAT, "model_id": model_id, "dim": self.dim, "settings": self.settings}
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"{meta_path}: unreadable cache description ({exc}); remove the folder to rebuild it") from None
            if not isinstance(old, dict):
                raise ValueError(f"{meta_path}: expected a JSON object, got a JSON {type(old).__name__}")
            if old.get("model_id") != model_id or int(old.get("dim", -1)) != self.dim:
                raise ValueError(
                    f"cache {self.dir} holds embeddings of model {old.get('model_id')!r} (dim {old.get('dim')}), "
                    f"not {model_id!r} (dim {self.dim}); embeddings of two models cannot be mixed"
                )
        else:
            atomic_write_bytes(meta_path, json.dumps(meta, indent=1).encode())
        self.clean_stale()

    def clean_stale(self) -> list[str]:
        """Remove the parts of chunks that were never committed by a process that is gone.

        Returns the names removed (the files of one killed chunk, and temporary files of
        interrupted writes). Parts written by a live process (another run at work on this
        folder) are kept; those of this process are kept while it is writing them.

        Examples
        --------
        >>> import tempfile
        >>> cache = EmbeddingCache(tempfile.mkdtemp(), "pack:x@1", 4, {})
        >>> cache.clean_stale()
        []
        """
        committed = {p.name[: -len(".files.parquet")] for p in self.dir.glob("part-*.files.parquet")}
        removed = []
        with _writing_lock:
            writing = set(_writing)
        for p in self.dir.iterdir():
            m = _PART.match(p.name)
            if m is None or not p.is_file():
                continue
            stem, pid = m.group(1), int(m.group(2))
            is_tmp = p.name.startswith(".")
            if (stem in committed and not is_tmp) or stem in writing:
                continue
            if pid != os.getpid() and _pid_alive(pid):
                continue
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p.name)
        return sorted(removed)

    def load(self) -> dict[str, CachedEntry]:
        """Every committed entry, keyed by ``cache_key`` (the first chunk wins when a key repeats).

        Faces tombstoned in ``root/tombstones.json`` (forgotten or expired, see
        :mod:`imm_analysis.io.tombstones`) are left out.
        """
        entries: dict[str, CachedEntry] = {}
        tombstones = read_tombstones(self.dir.parent)
        for record in sorted(self.dir.glob("part-*.files.parquet")):
            stem = record.name[: -len(".files.parquet")]
            files = read_frame(record, json_columns=["extra", "custom_labels"])
            ids = set(files["model_id"].dropna().unique()) if "model_id" in files else set()
            if ids - {self.model_id}:
                raise ValueError(f"{record} was written by model {sorted(ids)}, not {self.model_id!r}; refusing to mix")
            figures = read_frame(self.dir / f"{stem}.figures.parquet", json_columns=["extra"])
            emb = np.load(self.dir / f"{stem}.npy")
            errors = read_frame(self.dir / f"{stem}.errors.parquet")
            if emb.shape != (len(figures), self.dim):
                raise ValueError(f"{self.dir / stem}.npy has shape {emb.shape}, expected ({len(figures)}, {self.dim})")
            # row positions per key, found once per chunk (not a full mask per key)
            fig_rows = figures.groupby("cache_key", sort=False).indices
            err_rows = errors.groupby("cache_key", sort=False).indices
            ok = (files["status"] == "ok").to_numpy()
            file_recs = files.drop(columns=["cache_key", "status", "model_id"]).to_dict("records")
            fig_recs = figures.drop(columns=["cache_key"]).to_dict("records")
            err_recs = errors.drop(columns=["cache_key"]).to_dict("records")
            none = np.empty(0, dtype=np.int64)
            for key, pos in files.groupby("cache_key", sort=False).indices.items():
                if key in entries:
                    continue
                rows = fig_rows.get(key, none)
                entries[str(key)] = CachedEntry(
                    key=str(key),
                    file=[file_recs[i] for i in pos if ok[i]],
                    figures=[fig_recs[i] for i in rows],
                    embeddings=emb[rows],
                    error=[err_recs[i] for i in err_rows.get(key, none)],
                )
        if tombstones:
            erased_files = {str(t["file_id"]) for t in tombstones}
            for e in entries.values():
                if not any(str(f.get("file_id")) in erased_files for f in e.figures):
                    continue
                gone = tombstoned_mask(e.figures, tombstones)
                if gone.any():
                    e.figures = [f for f, g in zip(e.figures, gone, strict=True) if not g]
                    e.embeddings = e.embeddings[~gone]
                    for f in e.file:
                        f["figure_count"] = len(e.figures)
        return entries

    def write_chunk(
        self,
        keys: list[str],
        files: pd.DataFrame,
        figures: pd.DataFrame,
        embeddings: np.ndarray,
        errors: pd.DataFrame,
    ) -> None:
        """Commit one chunk. ``files``, ``figures`` and ``errors`` carry a ``cache_key`` column.

        ``keys`` lists every key the chunk settles (files with faces, without faces, and failures).
        """
        if embeddings.shape != (len(figures), self.dim):
            raise ValueError(f"embeddings shape {embeddings.shape} does not match {len(figures)} faces x {self.dim}")
        stem = f"part-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        record = files.copy()
        record["status"] = "ok"
        settled = set(record["cache_key"])  # once, not per key
        failed = [k for k in keys if k not in settled]
        if failed:
            record = pd.concat([record, pd.DataFrame({"cache_key": failed, "status": "error"})], ignore_index=True)
        record["model_id"] = self.model_id
        with _writing_lock:
            _writing.add(stem)
        try:
            # JSON columns keep their names (json_suffix=""): the layout of the first release
            atomic_save_npy(self.dir / f"{stem}.npy", np.ascontiguousarray(embeddings, dtype=np.float32))
            write_frame(figures, self.dir / f"{stem}.figures.parquet", json_suffix="")
            write_frame(errors, self.dir / f"{stem}.errors.parquet", json_suffix="")
            write_frame(record, self.dir / f"{stem}.files.parquet", json_suffix="")  # the commit record, last
        finally:
            with _writing_lock:
                _writing.discard(stem)
