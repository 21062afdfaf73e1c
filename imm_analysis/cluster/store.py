"""Saving and loading a :class:`~imm_analysis.cluster.state.ClusterState` with no window without a state.

Layout of a saved state at ``path`` (a folder)::

    path/CURRENT        the name of the current version, e.g. "v-3" (replaced atomically)
    path/v-3/           figures.parquet, clusters.parquet, cannot_link.parquet, *.npy, state.json

A save writes the next version into a temporary folder inside ``path``, renames it to
``v-<n>``, then replaces ``CURRENT`` (:func:`imm_analysis.io.atomic.atomic_write_bytes`);
only then are older versions and stale temporary folders removed. A crash at any step leaves
``CURRENT`` naming a complete version, the old one or the new one, so :func:`load_parts`
always finds a state. Leftovers of a crashed save are removed by the next save or load.
States saved by the first release (the files directly in ``path``) still load, and the first
save over them moves to this layout. One writer at a time per ``path``.

Every step that changes the disk goes through one of the module-level functions
:func:`_write_frame`, :func:`_save_npy`, :func:`_write_bytes`, :func:`_rename`,
:func:`_remove_tree` and :func:`_remove_file` (the fault-injection test replaces them to
stop at each step).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes, fsync_dir
from imm_analysis.io.parquet import category_dtypes, read_frame, write_frame

__all__ = ["FORMAT", "POINTER", "current_version", "load_parts", "save_parts"]

#: Format number written into ``state.json``.
FORMAT = 1
#: The pointer file naming the current version folder.
POINTER = "CURRENT"
_VERSION = re.compile(r"^v-(\d+)$")
_TMP_PREFIX = ".tmp-v-"

# the write steps (replaced one by one by the fault-injection test)
_write_frame = write_frame
_save_npy = atomic_save_npy
_write_bytes = atomic_write_bytes


def _rename(src: Path, dst: Path) -> None:
    os.replace(src, dst)
    fsync_dir(dst.parent)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def _versions(path: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if path.is_dir():
        for child in path.iterdir():
            m = _VERSION.match(child.name)
            if m and child.is_dir():
                out[int(m.group(1))] = child
    return out


def current_version(path: str | os.PathLike[str]) -> Path | None:
    """The folder holding the current state under ``path`` (None when there is none).

    ``CURRENT`` names it; a state of the first release (files directly in ``path``) is
    ``path`` itself.

    Examples
    --------
    >>> import tempfile
    >>> current_version(tempfile.mkdtemp()) is None
    True
    """
    path = Path(path)
    pointer = path / POINTER
    if pointer.is_file():
        name = pointer.read_text().strip()
        if not _VERSION.match(name):
            raise ValueError(f"{pointer}: not a version name: {name[:40]!r}")
        target = path / name
        if not (target / "state.json").is_file():
            raise FileNotFoundError(f"{pointer} names {name}, which holds no state.json")
        return target
    if (path / "state.json").is_file():
        return path
    return None


def _legacy_backup(path: Path) -> Path | None:
    """A complete state left beside ``path`` by a first-release save killed between its two renames."""
    for old in sorted(path.parent.glob(f".{path.name}.old-*")):
        if (old / "state.json").is_file():
            return old
    return None


def clean(path: str | os.PathLike[str]) -> None:
    """Remove what a crashed or finished save left behind: stale temporary folders and old versions.

    Examples
    --------
    >>> import tempfile
    >>> clean(tempfile.mkdtemp())  # nothing to do
    """
    path = Path(path)
    if not path.is_dir():
        return
    current = current_version(path)
    for child in path.iterdir():
        if child.name.startswith(_TMP_PREFIX) or (_VERSION.match(child.name) and child != current):
            _remove_tree(child)
        elif child.name.startswith(f".{POINTER}.") and child.name.endswith(".tmp"):  # a killed pointer write
            _remove_file(child)
    if current is not None:
        # the first release's temporary and backup folders beside path
        for pattern in (f".{path.name}.tmp-*", f".{path.name}.old-*"):
            for stale in path.parent.glob(pattern):
                _remove_tree(stale)
        if current != path:  # a first-release state moved into versions: drop its files
            for name in _LEGACY_FILES:
                if (path / name).exists():
                    _remove_file(path / name)


_LEGACY_FILES = (
    "state.json", "figures.parquet", "clusters.parquet", "cannot_link.parquet", "embeddings.npy",
    "knn_indices.npy", "knn_similarities.npy", "hd.npy", "locked.npy", "tasks.json",
)


def save_parts(path: str | os.PathLike[str], frames: dict[str, pd.DataFrame], arrays: dict[str, np.ndarray],
               meta: dict[str, Any], *, files: dict[str, bytes] | None = None) -> Path:
    """Write a new version of the state under ``path`` and make it current (see the module docstring).

    Parameters
    ----------
    path : path-like
        The state folder (created if needed).
    frames : dict of str to DataFrame
        Written as ``<name>.parquet``.
    arrays : dict of str to ndarray
        Written as ``<name>.npy``.
    meta : dict
        Written as ``state.json`` (with ``format``), last.
    files : dict of str to bytes, optional
        Other files of the version (for example the task records, ``tasks.json``).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> p = save_parts(tempfile.mkdtemp(), {"t": pd.DataFrame({"a": [1]})}, {"x": np.arange(2)}, {})
    >>> current_version(p).name, load_parts(p, {"t": None}, ("x",))[1]["x"].tolist()
    ('v-1', [0, 1])
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder; cannot save a ClusterState there")
    path.mkdir(parents=True, exist_ok=True)
    clean(path)
    n = max(_versions(path), default=0) + 1
    current = current_version(path)
    if current is not None and _VERSION.match(current.name):
        n = max(n, int(current.name[2:]) + 1)
    tmp = path / f"{_TMP_PREFIX}{n}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name, frame in frames.items():
            _write_frame(frame, tmp / f"{name}.parquet")
        for name, array in arrays.items():
            _save_npy(tmp / f"{name}.npy", array)
        for name, data in (files or {}).items():
            _write_bytes(tmp / name, data)
        _write_bytes(tmp / "state.json", json.dumps({"format": FORMAT, **meta}, indent=1, default=str).encode())
        target = path / f"v-{n}"
        _rename(tmp, target)
    except BaseException:
        _remove_tree(tmp)
        raise
    _write_bytes(path / POINTER, f"v-{n}\n".encode())
    clean(path)
    return path


def load_parts(
    path: str | os.PathLike[str], frame_kinds: dict[str, str | None], array_names: tuple[str, ...]
) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray], dict[str, Any], Path]:
    """Read the current version under ``path`` (any layout); stale leftovers are removed first.

    Returns ``(frames, arrays, meta, folder)``; ``frame_kinds`` maps each frame name to its schema
    kind; ``folder`` is the version read (for other files of it).

    Examples
    --------
    >>> import tempfile, pytest
    >>> with pytest.raises(FileNotFoundError):
    ...     load_parts(tempfile.mkdtemp(), {}, ())
    """
    path = Path(path)
    if not path.exists() and _legacy_backup(path) is not None:
        where: Path | None = _legacy_backup(path)
    else:
        clean(path)
        where = current_version(path)
    if where is None:
        raise FileNotFoundError(f"{path} is not a saved ClusterState (no {POINTER} and no state.json)")
    meta_file = where / "state.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_file}: not a state record (invalid JSON: {exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file}: not a state record (a JSON {type(meta).__name__}, not an object)")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_file}: unsupported state format {meta.get('format')!r}")
    cats = meta.get("categories", {})
    frames = {
        name: read_frame(where / f"{name}.parquet", kind=kind, categories=cats.get(name)) if kind
        else read_frame(where / f"{name}.parquet")
        for name, kind in frame_kinds.items()
    }
    arrays = {name: np.load(where / f"{name}.npy") for name in array_names}
    return frames, arrays, meta, where


def frame_categories(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    """Category dtypes of each frame, kept in ``state.json`` for readers of the first release.

    >>> import pandas as pd
    >>> list(frame_categories({"f": pd.DataFrame({"g": pd.Categorical(["a"])})})["f"])
    ['g']
    """
    return {name: category_dtypes(frame) for name, frame in frames.items()}
