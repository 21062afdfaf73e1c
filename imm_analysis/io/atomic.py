"""Crash-safe file writing: a temporary file in the same folder, fsync, :func:`os.replace`.

A reader (or a run resumed after SIGKILL or a power cut) sees either the old file or the
complete new one, never a half-written file: the data is written to ``.<name>.<random>.tmp``
beside the target, flushed and fsynced, moved over the target with :func:`os.replace` (atomic
on POSIX and Windows) and the folder itself is fsynced where the platform allows it, so the
rename survives a power cut too.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_save_npy", "fsync_dir"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (renames, new files) to disk; a no-op where folders cannot be opened (Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing so that it appears complete or not at all.

    Yields a file object on a temporary file beside ``path``. When the block ends without
    an exception the file is flushed, fsynced and moved onto ``path``, and the folder is
    fsynced; on an exception the temporary file is removed and ``path`` is left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> with atomic_open(target) as fh:
    ...     _ = fh.write(b"done")
    >>> target.read_bytes()
    b'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """:func:`numpy.save` ``array`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as fh:
        np.save(fh, np.asarray(array))
