"""Open every kind of ``source`` the loaders accept and yield parsed JSON documents.

A source is a path (``.json``, ``.jsonl``/``.ndjson``, either gzipped), a directory (its
JSON files in sorted order, not recursive), a glob, a dict, a list (of dicts, paths or
JSON strings), a JSON (or JSON Lines) string, bytes, or a file object opened in binary
or text mode. Each document comes out as ``(source_name, record_label, parsed_value)``:
``record_label`` is ``"document"`` for a whole-file JSON value and ``"line N"`` for JSON Lines.

Rules (see also :mod:`imm_analysis.io.limits` for the size and depth limits):

* **JSON text or path**: a string names a path when a file or folder of that name exists;
  otherwise it is JSON text when it starts (after blanks) with ``{`` or ``[``, else a path or a
  glob. So ``"[2024] export.json"`` is read as a file when it exists; to use a glob that starts
  with ``[``, pass a :class:`pathlib.Path` or write ``./[ab]*.json``.
* **Nothing is silently empty**: a glob that matches no file raises :class:`FileNotFoundError`; an
  empty (or blank) ``.json`` file, string or bytes is a bad document (a blank string is never
  read as the current folder) (an empty ``.jsonl`` file is
  a valid JSON Lines file with no records).
* **Only regular files are read**: FIFOs, devices and sockets (through symlinks too) are bad
  documents, refused without blocking (:func:`imm_analysis.io.paths.open_regular`).
* **Encoding**: UTF-8; a leading byte order mark is skipped, on the ``.json`` and the ``.jsonl``
  path alike; invalid UTF-8 is a bad document (or line).
* **Duplicate response keys** (two ``"Files"`` arrays in one object) are an error naming the key.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from imm_analysis.io import limits
from imm_analysis.io.errors import ErrorLog, IMMLoadWarning
from imm_analysis.io.paths import PathError, open_regular

__all__ = ["Document", "iter_documents", "source_paths", "JSON_SUFFIXES"]

Document = tuple[str, str, Any]

#: File names a directory listing picks up.
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
_LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (EOFError, OSError, zlib.error)
_BOM = b"\xef\xbb\xbf"


def iter_documents(source: Any, log: ErrorLog, *, progress: bool = False) -> Iterator[Document]:
    """Yield ``(source_name, record_label, value)`` for every JSON document in ``source``.

    Unparseable JSON and unreadable files are reported to ``log`` (raised, or collected
    and skipped).
    """
    if isinstance(source, dict):
        yield from _checked("<dict>", "document", source, log)
    elif isinstance(source, (list, tuple)):
        yield from _iter_list(source, log, progress)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        yield from _iter_bytes(bytes(source), "<bytes>", log)
    elif isinstance(source, str) and _is_json_text(source):
        yield from _iter_bytes(source.encode("utf-8", "surrogatepass"), "<string>", log)
    elif isinstance(source, (str, os.PathLike)):
        paths: Iterable[Path] = _expand_path(source)
        if progress and len(paths) > 1:  # type: ignore[arg-type]
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
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not _is_json_text(source)):
        return _expand_path(source)
    return None


def _is_json_text(source: str) -> bool:
    """The documented rule: an existing path is a path; else text starting with ``{`` or ``[`` is JSON.

    A blank string is (empty) JSON text, never the current folder.
    """
    if not source.strip():
        return True
    if source.lstrip()[:1] not in ("{", "["):
        return False
    return len(source) > 4096 or "\n" in source or not os.path.exists(source)


def _checked(name: str, label: str, value: Any, log: ErrorLog, text: bytes | None = None) -> Iterator[Document]:
    """``value`` when within :data:`~imm_analysis.io.limits.MAX_DEPTH` and, given its JSON ``text``,
    without a response key that the parser merged (two ``"Files"``); else one error for ``log``."""
    in_text = limits.count_shape_keys(text) if text is not None else 0
    where, seen = limits.walk(value, keys=limits.SHAPE_KEYS if in_text > 1 else frozenset())
    if where is not None:
        log.add(name, label, where, limits.depth_reason())
        return
    if in_text > 1 and in_text > seen:
        key = next(
            (k for k in sorted(limits.SHAPE_KEYS) if _key_count(text, k) > limits.walk(value, keys=frozenset({k}))[1]),
            None,
        )
        log.add(name, label, key, "duplicate key: it appears twice in one object (only one value would be kept)")
        return
    yield name, label, value


def _key_count(text: bytes | None, key: str) -> int:
    return len(re.findall(rb'"' + key.encode() + rb'"\s*:', text or b""))


def _iter_list(items: list | tuple, log: ErrorLog, progress: bool) -> Iterator[Document]:
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(item, "read"):
            yield from iter_documents(item, log, progress=progress)
        else:  # a JSON value: the records layer says whether it is an IMM response
            yield from _checked("<list>", f"item {i}", item, log)


def _expand_path(source: str | os.PathLike) -> list[Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        # not only regular files: a FIFO or device named *.json becomes an error row, not a silent gap
        found = sorted(p for p in path.iterdir() if not p.is_dir() and p.name.lower().endswith(JSON_SUFFIXES))
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
        if not found and subdirs:
            warnings.warn(
                f"{path} holds no JSON files (directories are not read recursively); its folders: {', '.join(subdirs[:8])}",
                IMMLoadWarning,
                stacklevel=4,
            )
        return found
    if os.path.lexists(path):
        return [path]
    text = str(source)
    if any(ch in text for ch in "*?["):
        found = [Path(p) for p in sorted(glob.glob(os.path.expanduser(text), recursive=True)) if not Path(p).is_dir()]
        if found:
            return found
        raise FileNotFoundError(f"IMM JSON source not found: the glob {text!r} matches no file")
    raise FileNotFoundError(f"IMM JSON source not found: {text!r} (not a file, a directory or a glob that matches)")


def _iter_path(path: Path, log: ErrorLog) -> Iterator[Document]:
    name = str(path)
    try:
        fh = open_regular(path)
    except PathError as exc:
        log.add(name, "document", None, exc.reason)
        return
    with fh:
        gzipped = fh.read(2) == _GZIP_MAGIC
        fh.seek(0)
        if path.name.lower().endswith(_LINES_SUFFIXES):
            yield from _iter_lines_file(fh, name, gzipped, log)
            return
        try:
            data = _read_limited(gzip.GzipFile(fileobj=fh) if gzipped else fh)
        except _GZIP_ERRORS as exc:
            log.add(name, "document", None, f"truncated or corrupt gzip file ({exc})")
            return
    if data is None:
        log.add(name, "document", None, _size_reason())
        return
    yield from _iter_bytes(data, name, log, empty="empty file")


def _size_reason() -> str:
    return f"larger than {limits.MAX_DOCUMENT_BYTES} bytes (MAX_DOCUMENT_BYTES in imm_analysis.io.limits)"


def _read_limited(fh: Any) -> bytes | None:
    """All of ``fh``, or None when it holds more than ``MAX_DOCUMENT_BYTES`` (never reads more than that + 1)."""
    data = fh.read(limits.MAX_DOCUMENT_BYTES + 1)
    return None if len(data) > limits.MAX_DOCUMENT_BYTES else data


def _iter_lines_file(fh: Any, name: str, gzipped: bool, log: ErrorLog) -> Iterator[Document]:
    lineno = 0
    try:
        stream = gzip.GzipFile(fileobj=fh) if gzipped else fh
        while True:
            line = stream.readline(limits.MAX_LINE_BYTES + 1)
            if not line:
                break
            lineno += 1
            if len(line) > limits.MAX_LINE_BYTES:
                while line and not line.endswith(b"\n"):  # skip the rest of the long line
                    line = stream.readline(1 << 20)
                log.add(name, f"line {lineno}", None, f"longer than {limits.MAX_LINE_BYTES} bytes (MAX_LINE_BYTES in imm_analysis.io.limits)")
                continue
            if lineno == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            doc = _parse_line(line, name, lineno, log)
            if doc is not None:
                yield from _checked(*doc, log, line)
    except _GZIP_ERRORS as exc:
        log.add(name, f"line {lineno + 1}", None, f"truncated or corrupt gzip file ({exc})")


def _parse_line(line: bytes, name: str, lineno: int, log: ErrorLog) -> Document | None:
    if not line.strip():
        return None
    try:
        return name, f"line {lineno}", orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        log.add(name, f"line {lineno}", None, _decode_reason(exc))
        return None


def _decode_reason(exc: orjson.JSONDecodeError) -> str:
    if "depth limit" in exc.msg:
        return limits.depth_reason()
    return f"invalid JSON at column {exc.colno}: {exc.msg}"


def _iter_bytes(raw: bytes, name: str, log: ErrorLog, *, empty: str = "empty document") -> Iterator[Document]:
    data: bytes | None = raw
    if raw[:2] == _GZIP_MAGIC:
        try:
            data = _read_limited(gzip.GzipFile(fileobj=io.BytesIO(raw)))
        except _GZIP_ERRORS as exc:
            log.add(name, "document", None, f"truncated or corrupt gzip data ({exc})")
            return
    if data is None or len(data) > limits.MAX_DOCUMENT_BYTES:
        log.add(name, "document", None, _size_reason())
        return
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.strip():
        log.add(name, "document", None, f"{empty}: no JSON document")
        return
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not _looks_like_lines(data):
            log.add(name, f"line {exc.lineno}", None, _decode_reason(exc))
            return
    else:
        yield from _checked(name, "document", value, log, data)
        return
    for lineno, line in enumerate(data.splitlines(), 1):
        if len(line) > limits.MAX_LINE_BYTES:
            log.add(name, f"line {lineno}", None, f"longer than {limits.MAX_LINE_BYTES} bytes (MAX_LINE_BYTES in imm_analysis.io.limits)")
            continue
        doc = _parse_line(line, name, lineno, log)
        if doc is not None:
            yield from _checked(*doc, log, line)


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
