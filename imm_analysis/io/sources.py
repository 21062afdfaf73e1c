"""Open every kind of ``source`` the loaders accept and yield parsed JSON documents.

A source is a path (``.json``, ``.jsonl``/``.ndjson``, either gzipped), a directory (its
JSON files in sorted order, not recursive), a glob, a dict, a list (of dicts, paths or
JSON strings), a JSON (or JSON Lines) string, bytes, or a file object opened in binary
or text mode. Each document comes out as ``(source_name, record_label, parsed_value)``:
``record_label`` is ``"document"`` for a whole-file JSON value and ``"line N"`` for JSON Lines.
"""

from __future__ import annotations

import glob
import gzip
import os
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from imm_analysis.io.errors import ErrorLog, IMMLoadWarning

__all__ = ["Document", "iter_documents", "source_paths", "JSON_SUFFIXES"]

Document = tuple[str, str, Any]

#: File names a directory listing picks up.
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
_LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (EOFError, OSError, zlib.error)


def iter_documents(source: Any, log: ErrorLog, *, progress: bool = False) -> Iterator[Document]:
    """Yield ``(source_name, record_label, value)`` for every JSON document in ``source``.

    Unparseable JSON and unreadable files are reported to ``log`` (raised, or collected
    and skipped).
    """
    if isinstance(source, dict):
        yield "<dict>", "document", source
    elif isinstance(source, (list, tuple)):
        yield from _iter_list(source, log, progress)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        yield from _iter_bytes(bytes(source), "<bytes>", log)
    elif isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        yield from _iter_bytes(source.encode(), "<string>", log)
    elif isinstance(source, (str, os.PathLike)):
        paths = _expand_path(source)
        if progress and len(paths) > 1:
            from tqdm.auto import tqdm

            paths = tqdm(paths, desc="IMM JSON files", unit="file")
        for path in paths:
            yield from _iter_path(path, log)
    elif hasattr(source, "read"):
        data = source.read()
        name = str(getattr(source, "name", "<file object>"))
        yield from _iter_bytes(data.encode() if isinstance(data, str) else bytes(data), name, log)
    else:
        raise TypeError(
            "source must be a path, directory, glob, dict, list of dicts, JSON string, bytes or a file object; "
            f"got {type(source).__name__}"
        )


def source_paths(source: Any) -> list[Path] | None:
    """The files a path, directory or glob ``source`` stands for (sorted); None for other sources."""
    if isinstance(source, os.PathLike) or (isinstance(source, str) and source.lstrip()[:1] not in ("{", "[")):
        return _expand_path(source)
    return None


def _iter_list(items: list | tuple, log: ErrorLog, progress: bool) -> Iterator[Document]:
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(item, "read"):
            yield from iter_documents(item, log, progress=progress)
        else:  # a JSON value: the records layer says whether it is an IMM response
            yield "<list>", f"item {i}", item


def _expand_path(source: str | os.PathLike) -> list[Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(JSON_SUFFIXES))
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
        if not found and subdirs:
            warnings.warn(
                f"{path} holds no JSON files (directories are not read recursively); its folders: {', '.join(subdirs[:8])}",
                IMMLoadWarning,
                stacklevel=4,
            )
        return found
    if path.exists():
        return [path]
    text = str(source)
    if any(ch in text for ch in "*?["):
        return [Path(p) for p in sorted(glob.glob(os.path.expanduser(text), recursive=True)) if Path(p).is_file()]
    raise FileNotFoundError(f"IMM JSON source not found: {text!r} (not a file, a directory or a glob that matches)")


def _iter_path(path: Path, log: ErrorLog) -> Iterator[Document]:
    name = str(path)
    lower = path.name.lower()
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == _GZIP_MAGIC
    if lower.endswith(_LINES_SUFFIXES):
        yield from _iter_lines_file(path, name, gzipped, log)
        return
    try:
        data = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    except _GZIP_ERRORS as exc:
        log.add(name, "document", None, f"truncated or corrupt gzip file ({exc})")
        return
    yield from _iter_bytes(data, name, log)


def _iter_lines_file(path: Path, name: str, gzipped: bool, log: ErrorLog) -> Iterator[Document]:
    lineno = 0
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):  # noqa: B007 (lineno used after the loop)
                doc = _parse_line(line, name, lineno, log)
                if doc is not None:
                    yield doc
    except _GZIP_ERRORS as exc:
        log.add(name, f"line {lineno + 1}", None, f"truncated or corrupt gzip file ({exc})")


def _parse_line(line: bytes, name: str, lineno: int, log: ErrorLog) -> Document | None:
    if not line.strip():
        return None
    try:
        return name, f"line {lineno}", orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        log.add(name, f"line {lineno}", None, f"invalid JSON at column {exc.colno}: {exc.msg}")
        return None


def _iter_bytes(data: bytes, name: str, log: ErrorLog) -> Iterator[Document]:
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except _GZIP_ERRORS as exc:
            log.add(name, "document", None, f"truncated or corrupt gzip data ({exc})")
            return
    if not data.strip():
        return
    try:
        yield name, "document", orjson.loads(data)
        return
    except orjson.JSONDecodeError as exc:
        if not _looks_like_lines(data):
            log.add(name, f"line {exc.lineno}", None, f"invalid JSON at column {exc.colno}: {exc.msg}")
            return
    for lineno, line in enumerate(data.splitlines(), 1):
        doc = _parse_line(line, name, lineno, log)
        if doc is not None:
            yield doc


def _looks_like_lines(data: bytes) -> bool:
    """True when the first non-blank line is a complete JSON value of its own (JSON Lines)."""
    for line in data.splitlines():
        if line.strip():
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                return False
            return True
    return False
