"""Reading, hashing and decoding files ahead of inference, in threads.

:func:`_load` reads one source (regular files only, at most ``MAX_MEDIA_BYTES`` of an image),
hashes it, and decodes it (reduced JPEG decoding when allowed); :func:`_prefetch` runs it for the
next files in a thread pool while the current ones are in onnxruntime; :func:`_background` runs a
video's frame sampling in a thread with a bounded queue. A failure is recorded on the loaded item
(a :class:`~imm_analysis.io.media.MediaError` is a property of the file and may be cached; any
other exception is retried by a later run), never raised.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imm_analysis.faces.sources import _Item
from imm_analysis.io.media import MediaError, file_sha256, media_type, read_image, read_media_bytes, video_info

__all__: list[str] = []

logger = logging.getLogger(__name__)


@dataclass
class _Loaded:
    item: _Item
    key: str | None = None
    sha: str | None = None
    size: int | None = None
    mtime: float | None = None
    kind: str | None = None  # image / video
    rgb: np.ndarray | None = None
    info: Any = None
    error: tuple[str, str] | None = None
    error_cacheable: bool = False  # a MediaError describes the file itself; anything else may pass
    cached: bool = False
    data: bytes | None = None  # kept when the image was decoded reduced (a finer decode may follow)
    det_input: Any = None  # FaceModel.detector_input of rgb, made in the loader thread
    pending: Any = None  # _Pending of an image whose faces were detected in the loader thread
    fail: tuple[tuple[str, str], bool] | None = None  # (error, cache it?) of that detection


def _load(
    item: _Item, cached_keys: set[str], video_fps: float, max_pixels: int | None, crop: bool,
    reduce: int = 1, fit: tuple[int, int] | None = None, prepare: Callable[[np.ndarray], Any] | None = None,
) -> _Loaded:
    out = _Loaded(item)
    if item.error is not None:
        out.error = ("PathError", item.error)
        return out
    try:
        kind = media_type(item.path)
        if kind is None or (crop and kind != "image"):
            raise MediaError(item.path, f"unsupported file type {item.path.suffix or '(no extension)'!r}")
        if kind == "image":  # regular files only, at most MAX_MEDIA_BYTES
            data, st = read_media_bytes(item.path)
        else:
            data, st = None, _regular_stat(item.path)
        out.size, out.mtime, out.kind = st.st_size, st.st_mtime, kind
        if data is not None:
            out.sha = hashlib.sha256(data).hexdigest()
        else:
            out.sha = file_sha256(item.path)
        out.key = out.sha if kind == "image" else f"{out.sha}@{video_fps:g}fps"
        if out.key in cached_keys:
            out.cached = True
            return out
        if kind == "image":
            out.rgb, out.info = read_image(item.path, max_pixels=max_pixels, data=data, reduce=reduce, fit=fit)
            if out.info.scale > 1:
                out.data = data
            if prepare is not None:
                out.det_input = prepare(out.rgb)
        else:
            out.info = video_info(item.path)
    except MediaError as exc:
        out.error, out.error_cacheable = ("MediaError", exc.reason), True
    except Exception as exc:  # noqa: BLE001 - a batch never dies on one file
        logger.warning("%s: %s: %s", item.path, type(exc).__name__, exc)
        out.error = (type(exc).__name__, str(exc))  # not cached: a later run tries the file again
    return out


def _regular_stat(path: Path) -> os.stat_result:
    from imm_analysis.io.paths import PathError, check_regular

    try:
        return check_regular(path)
    except PathError as exc:
        raise MediaError(path, exc.reason) from None


def _prefetch(items: Sequence[_Item], fn: Callable[[_Item], _Loaded], workers: int, ahead: int) -> Iterator[_Loaded]:
    """Yield ``fn(item)`` in order while up to ``ahead`` later items load in ``workers`` threads."""
    if workers <= 0:
        for one in items:
            yield fn(one)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imm-decode") as pool:
        pending: list[Future] = []
        it = iter(items)
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                break
        while pending:
            fut = pending.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield fut.result()


def _background(gen: Iterator[Any], maxsize: int = 8) -> Iterator[Any]:
    """Run a generator in a thread with a bounded queue (video frames decode while faces embed)."""
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for x in gen:
                if stop.is_set():
                    break
                q.put(("item", x))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(("error", exc))
        finally:
            close = getattr(gen, "close", None)
            if close is not None:  # a consumer that stopped early: the video is released now, not at GC
                close()
            q.put(("done", done))

    t = threading.Thread(target=run, daemon=True, name="imm-video")
    t.start()
    try:
        while True:
            tag, x = q.get()
            if tag == "done":
                break
            if tag == "error":
                raise x
            yield x
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)

