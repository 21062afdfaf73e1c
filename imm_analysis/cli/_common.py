"""What every subcommand shares: the user-error type, progress lines, warnings, option checks.

Rules every subcommand follows (they are the command line's contract):

* a problem with the input is a :class:`UserError`: one line ``imm-analysis: error: ...``, exit 1;
  ``--debug`` shows the traceback of unexpected errors instead;
* Python warnings and the package's logged warnings become one-line
  ``imm-analysis: warning: ...`` messages on stderr, with or without ``-q``;
* progress lines go to stderr and ``-q`` silences them; results go to stdout;
* every input option is checked before any slow work (model loading, embedding) starts.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["PROG", "UserError", "Progress", "common_options", "check_path", "check_out", "open_input", "load_npy",
           "warn", "one_line", "captured_warnings"]

PROG = "imm-analysis"


class UserError(Exception):
    """A problem with the user's input: reported as one line, without a traceback."""


def one_line(text: object) -> str:
    """``text`` on one line (whitespace runs collapsed), without Python object addresses.

    Examples
    --------
    >>> one_line("bad\\n  file <_io.BytesIO object at 0x7f00>")
    'bad file (file data)'
    """
    from imm_analysis.report.notes import clean_reason

    return clean_reason(text)


def warn(message: str) -> None:
    """Print one ``imm-analysis: warning: ...`` line on stderr (shown with ``-q`` too)."""
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr, flush=True)


class Progress:
    """Timestamped progress lines on stderr; silent when disabled (``-q``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def common_options() -> argparse.ArgumentParser:
    """A parent parser with ``-q/--quiet`` and ``--debug`` for every subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    g = parent.add_argument_group("output")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress messages (warnings and errors still show)")
    g.add_argument("--debug", action="store_true", help="show tracebacks")
    return parent


def check_path(value: str, option: str, *, kind: str | None = None) -> str:
    """``value`` when it exists (a glob must match something); ``kind`` ``"dir"`` or ``"file"`` narrows it."""
    if glob.has_magic(value):
        if not glob.glob(value):
            raise UserError(f"{option} {value}: no file matches this pattern")
        return value
    p = Path(value)
    if not p.exists():
        raise UserError(f"{option} {value}: no such file or folder")
    if kind == "dir" and not p.is_dir():
        raise UserError(f"{option} {value}: not a folder")
    return value


def open_input(path: str | Path, option: str) -> BinaryIO:
    """``path`` opened for reading when it is a regular file (a FIFO or device would block or never end).

    Examples
    --------
    >>> open_input("/dev/zero", "--names")
    Traceback (most recent call last):
    ...
    imm_analysis.cli._common.UserError: --names /dev/zero: not a regular file (character device)
    """
    from imm_analysis.io.paths import PathError, open_regular

    try:
        return open_regular(path)
    except PathError as exc:
        raise UserError(f"{option} {exc}") from None


def load_npy(path: str | Path, option: str) -> Any:
    """The array in the ``.npy`` file ``path`` (no pickles); a UserError names the option and the file.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> with tempfile.NamedTemporaryFile(suffix=".npy") as f:
    ...     _ = f.write(b"not an array")
    ...     f.flush()
    ...     load_npy(f.name, "--embeddings")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imm_analysis.cli._common.UserError: --embeddings ...npy: not a .npy array (...)
    """
    import numpy as np

    with open_input(path, option) as fh:
        try:
            return np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{option} {path}: not a .npy array ({exc})") from None


def check_out(value: str, option: str = "--out") -> Path:
    """An output folder: it may exist (as a folder) or not yet."""
    p = Path(value)
    if p.exists() and not p.is_dir():
        raise UserError(f"{option} {value}: exists and is not a folder")
    return p


_THRESHOLD_ADVICE = re.compile(r"threshold", re.IGNORECASE)


def _format_warning(message: Warning | str, category: type[Warning]) -> str:
    text = one_line(message)
    if _THRESHOLD_ADVICE.search(text) and "--threshold" not in text:
        text += " (--threshold sets it)"
    return text


class _LogToWarning(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - trivial
        try:
            warn(record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


@contextlib.contextmanager
def captured_warnings() -> Iterator[None]:
    """Inside the block, warnings and the package's log warnings print as one-line ``warning:`` messages."""
    logger = logging.getLogger("imm_analysis")
    handler = _LogToWarning(logging.WARNING)
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    seen: set[str] = set()

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        text = _format_warning(message, category)
        if text not in seen:  # the same advice once per run
            seen.add(text)
            warn(text)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate
