"""What to embed: directories, paths, URIs and files frames resolved to local files.

With ``uri_root`` every URI (with or without a scheme) must resolve, symlinks followed, under its
root (:func:`imm_analysis.io.paths.confine`). A source that cannot be used (a URI leaving its
root, a null ``uri``, a folder that cannot be listed) is kept as an item with ``error`` set, so
it becomes one row of ``errors`` and never aborts a run. Directory walks keep files that are not
regular (FIFOs, sockets, device links) so that reading them fails cleanly and is reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from imm_analysis.io.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

__all__ = ["resolve_sources", "UriRoot"]

@dataclass(frozen=True)
class _Item:
    path: Path
    uri: str
    error: str | None = None  # why this source cannot be read (bad URI, unlistable folder); becomes an error row


UriRoot = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None


def _map_uri(uri: str, uri_root: UriRoot) -> Path:
    """Local path of ``uri`` (raises :class:`PathError`).

    Without ``uri_root`` a URI without a scheme is a local path and a remote one is refused.
    With ``uri_root`` every URI is confined under its root with symlinks resolved
    (:func:`imm_analysis.io.paths.confine`): ``oss://bucket/key`` -> ``root/bucket/key`` (or the
    folder of the longest matching prefix of a mapping), a relative path is taken under the
    root, an absolute one must lie under it.
    """
    from imm_analysis.io.paths import PathError, confine

    if uri_root is None:
        if "://" in uri:
            raise PathError(uri, "remote URI needs a uri_root mapping to a local folder (e.g. uri_root='/data/oss')")
        return Path(uri).expanduser()
    if isinstance(uri_root, Mapping):
        prefixes = sorted(uri_root, key=len, reverse=True)
        # a prefix ends at a path boundary: "oss://photos" maps "oss://photos/a.jpg", not "oss://photos-x/a.jpg"
        prefix = next((p for p in prefixes if uri.startswith(p) and (
            len(uri) == len(p) or p.endswith(("/", ":")) or uri[len(p)] == "/")), None)
        if prefix is None:
            raise PathError(uri, f"no uri_root entry matches (prefixes: {prefixes})")
        root, rest = uri_root[prefix], uri[len(prefix) :].lstrip("/")
    else:
        root, rest = uri_root, (uri.split("://", 1)[1].lstrip("/") if "://" in uri else uri)
    return confine(rest, root)


def _item(uri: str, uri_root: UriRoot) -> _Item:
    from imm_analysis.io.paths import PathError

    try:
        path = _map_uri(uri, uri_root)
    except PathError as exc:
        return _Item(Path(uri), uri, exc.reason)
    return _Item(path, uri if "://" in uri else str(path.absolute()))


def _walk(folder: Path, exts: set[str], uri_root: UriRoot) -> list[_Item]:
    """Media files under ``folder`` (sorted), plus one error item per folder that cannot be listed.

    Entries that are not regular files (FIFOs, sockets, devices) are kept: reading them fails
    cleanly and they are reported in ``errors`` rather than silently left out.
    """
    from imm_analysis.io.paths import PathError, confine

    found: list[tuple[Path, str | None]] = []

    def unlistable(exc: OSError) -> None:
        found.append((Path(exc.filename or folder), f"cannot list folder: {exc.strerror or type(exc).__name__}"))

    for dirpath, _dirs, names in os.walk(folder, onerror=unlistable):
        for name in names:
            if os.path.splitext(name)[1].lower() in exts:
                found.append((Path(dirpath) / name, None))
    out = []
    for f, err in sorted(found, key=lambda x: x[0]):
        if err is None and uri_root is not None:
            try:
                confine(f, uri_root if not isinstance(uri_root, Mapping) else folder)
            except PathError as exc:
                err = exc.reason
        out.append(_Item(f, str(f.absolute()), err))
    return out


def resolve_sources(
    source: Any,
    *,
    uri_root: UriRoot = None,
    extensions: Iterable[str] = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS,
) -> list[_Item]:
    """The files to embed, in order.

    Parameters
    ----------
    source : path-like, list of path-like, or DataFrame
        A directory (recursive, media extensions only, sorted), a path, a list of paths or URIs,
        or a files frame with a ``uri`` column.
    uri_root : path-like or mapping, optional
        Where URIs live locally (see :func:`embed_images`). When given, every URI, with or
        without a scheme, must resolve (symlinks followed) under its root.
    extensions : iterable of str
        File name extensions searched for in directories.

    Returns
    -------
    list
        Items with ``path``, ``uri`` and ``error``: a source that cannot be used (a URI that
        leaves its root, a null ``uri``, a folder that cannot be listed) is kept with its
        ``error`` set, so it becomes one row of ``errors`` and never aborts the run.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> items = resolve_sources(["oss://b/a.jpg", "../x.jpg"], uri_root=root)
    >>> [it.path == root.resolve() / "b" / "a.jpg" for it in items][0], items[1].error.startswith("leaves its root")
    (True, True)
    """
    exts = {e.lower() for e in extensions}
    if isinstance(source, pd.DataFrame):
        if "uri" not in source.columns:
            raise ValueError(f"a files frame source needs a 'uri' column; columns: {list(source.columns)}")
        out = []
        for i, u in enumerate(source["uri"]):
            if u is None or (not isinstance(u, str) and pd.isna(u)):
                out.append(_Item(Path(f"<row {i}>"), f"<row {i}>", f"row {i} of the files frame has a null uri"))
            else:
                out.append(_item(str(u), uri_root))
        return out
    if isinstance(source, (str, os.PathLike)):
        p = Path(source).expanduser()
        if "://" not in str(source) and p.is_dir():
            if uri_root is not None and not isinstance(uri_root, Mapping):
                from imm_analysis.io.paths import PathError, confine

                try:
                    confine(p, uri_root)
                except PathError as exc:
                    return [_Item(p, str(p.absolute()), exc.reason)]
            return _walk(p, exts, uri_root)
        return [_item(str(source), uri_root)]
    if isinstance(source, Iterable):
        return [_item(str(s), uri_root) for s in source]
    raise TypeError(f"source must be a directory, a path, a list of paths or a files frame, not {type(source).__name__}")

