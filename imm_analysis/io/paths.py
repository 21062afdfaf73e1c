"""Safe paths: confinement under a root the user named, and opening regular files only.

Every reader of user-named or data-named paths (the IMM JSON loaders, the media pipeline,
montages and crops in :mod:`imm_analysis.viz`) goes through these two functions, so the rules
live in one place:

* :func:`confine` resolves a path *with symlinks* (``os.path.realpath``) and refuses one that
  leaves its root, whether it came as a relative path, an absolute path or a URI's key;
* :func:`open_regular` opens a file without blocking and refuses FIFOs, devices, sockets and
  folders, through symlinks too, so a hostile path can neither hang a batch nor stream without end.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = ["PathError", "confine", "open_regular", "check_regular"]


class PathError(ValueError):
    """A path that may not be read: outside its root, or not a regular file.

    The message names the path and the reason. Picklable, so it survives a worker process.

    Examples
    --------
    >>> import pickle
    >>> err = pickle.loads(pickle.dumps(PathError("/tmp/x", "not a regular file")))
    >>> (err.path, err.reason)
    ('/tmp/x', 'not a regular file')
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


def confine(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """Resolve ``path`` under ``root`` (following symlinks) or raise :class:`PathError`.

    A relative ``path`` is taken relative to ``root``; an absolute one must already lie under it.
    Symlinks are resolved on both sides (``os.path.realpath``), so a link inside the root that
    points outside is refused.

    Parameters
    ----------
    path : str or os.PathLike
        The path to check: relative to ``root``, or absolute.
    root : str or os.PathLike
        The folder the user named.

    Returns
    -------
    pathlib.Path
        The resolved path, under the resolved root.

    Raises
    ------
    PathError
        When the resolved path is not under the resolved root.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> confine("a/b.jpg", root).name
    'b.jpg'
    >>> confine("../outside.jpg", root)
    Traceback (most recent call last):
    ...
    imm_analysis.io.paths.PathError: ../outside.jpg: leaves its root ...
    """
    base = os.path.realpath(os.fspath(root))
    raw = os.fspath(path)
    parts = PurePosixPath(raw.replace("\\", "/")).parts if not os.path.isabs(raw) else None
    joined = os.path.join(base, *parts) if parts is not None else raw
    resolved = os.path.realpath(joined)
    if os.path.commonpath([base, resolved]) != base:
        raise PathError(raw, f"leaves its root {base}")
    return Path(resolved)


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` of ``path`` (following symlinks), or :class:`PathError` when it is not a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PathError(path, "no such file") from None
    except OSError as exc:
        raise PathError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(st.st_mode):
        raise PathError(path, f"not a regular file ({_kind(st.st_mode)})")
    return st


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for binary reading if, once opened, it is a regular file.

    The file is opened with ``O_NONBLOCK`` (a FIFO does not block the open) and checked with
    ``fstat`` on the open descriptor, so a path swapped between a check and the open is still
    refused.

    Raises
    ------
    PathError
        Missing, unreadable, or not a regular file (FIFO, device, socket, folder).

    Examples
    --------
    >>> open_regular("/dev/null")
    Traceback (most recent call last):
    ...
    imm_analysis.io.paths.PathError: /dev/null: not a regular file (character device)
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise PathError(path, "no such file") from None
    except IsADirectoryError:
        raise PathError(path, "not a regular file (folder)") from None
    except OSError as exc:
        raise PathError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathError(path, f"not a regular file ({_kind(st.st_mode)})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"
