"""Detect, align and embed faces in images, videos and pre-aligned crops, as IMM-shaped frames.

:func:`embed_images` and :func:`embed_crops` return an :class:`EmbedResult` whose ``files`` and
``figures`` frames have the columns of :func:`imm_analysis.load_files` / ``load_figures`` (through
:func:`imm_analysis.schema.coerce_frame`), so everything downstream works the same on local runs
and on IMM's own results.

How it runs
-----------
* A thread pool reads, hashes and decodes the next files while the current ones are in
  onnxruntime (decoding overlaps inference; OpenCV and Pillow release the GIL).
* Reduced decoding (``decode_scale="auto"``, the default): a large JPEG is decoded at 1/2, 1/4
  or 1/8 of its size (libjpeg's DCT scaling, several times less work) as long as the decoded
  image still covers the detector's input (``det_size``), which sees the image at that size
  anyway. Boxes and keypoints are mapped back to original pixels, so ``left``/``top``/``width``/
  ``height`` (IMM's HD rule) and ``image_width``/``image_height`` are in original pixels. A face
  is aligned from a reduced image only when that image still has at least as many pixels on the
  face as the 112x112 crop keeps; otherwise the file is decoded again at the finest scale that
  face needs (at worst full size), so crops, ``sharpness`` and ``face_quality`` never come from an
  upsampled face and match full decoding closely. ``extra`` of the file row records the scales
  used (``decode_scale`` for detection, ``align_scale`` for the crops). ``decode_scale=1`` turns
  it off. On ``faces/photos`` the embeddings of the two ways have a mean cosine of 0.995 (min
  0.91, a small turned face; see ``benchmarks/bench_embed.py``), sharpness and quality differ by
  less than 0.015, boxes by a few pixels.
* Detection of full images runs per image (their detector canvases differ in size), in those
  same threads (onnxruntime runs concurrent calls), together with alignment, pose and sharpness;
  aligned faces from several images are pooled and recognised in batches of ``batch_size`` in the
  calling thread, while the loader threads go on with the next images. Crops (all padded to one
  canvas) are detected in batches too (:meth:`FaceModel.detect_many`).
* Results are committed in chunks of a few files; with ``cache_dir`` each chunk is written to disk
  as soon as it is made (see :mod:`imm_analysis.faces.cache`), and a later run skips every file
  already there, also after a crash.
* A file that cannot be used becomes one row of ``errors`` and the run goes on.

Identifiers
-----------
``file_id`` is the first 32 hex digits of the file's SHA-256 (``file_hash`` holds all 64), so the
same bytes get the same id wherever they are. Two files with identical bytes in one run are
embedded once; the second is listed in ``errors`` as a duplicate. ``figure_id`` is
``<file_id>-<frame index>-<face index>`` with faces numbered by detector score, which is stable
from run to run. ``figure_cluster_id`` is ``figure-cluster-id-unavailable`` (not clustered yet).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.io.media import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    VIDEO_EXTENSIONS,
    MediaError,
    clean_reason,
    content_type,
    from_original,
    media_type,
    read_image,
    read_media_bytes,
    sample_video,
    to_original,
    video_info,
)
from imm_analysis.schema import CLUSTER_UNAVAILABLE, coerce_frame, empty_frame

if TYPE_CHECKING:
    from imm_analysis.faces.model import FaceModel

__all__ = ["EmbedResult", "embed_images", "embed_crops", "resolve_sources", "ERROR_COLUMNS"]

logger = logging.getLogger(__name__)

#: Columns of :attr:`EmbedResult.errors`.
ERROR_COLUMNS = {"uri": "string", "path": "string", "file_id": "string", "error": "string", "reason": "string"}
_EXTRA_FIGURE_COLUMNS = ("det_score", "timestamp", "frame_index")


# ---------------------------------------------------------------------------------------------- result
@dataclass
class EmbedResult:
    """What :func:`embed_images` / :func:`embed_crops` return.

    Attributes
    ----------
    files : DataFrame
        One row per usable file (``load_files`` columns; ``figure_count`` filled).
    figures : DataFrame
        One row per face (``load_figures`` columns plus ``det_score``, ``timestamp``, ``frame_index``).
    embeddings : ndarray of float32, shape (n_faces, dim)
        L2-normalised, row-aligned with ``figures``.
    errors : DataFrame
        One row per file that could not be used: ``uri, path, file_id, error, reason``.
    model_id : str
        The :attr:`FaceModel.model_id` that made the embeddings.
    """

    files: pd.DataFrame
    figures: pd.DataFrame
    embeddings: np.ndarray
    errors: pd.DataFrame
    model_id: str
    stats: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.figures)

    def __repr__(self) -> str:
        return (
            f"EmbedResult({len(self.files)} files, {len(self.figures)} faces, {len(self.errors)} errors, "
            f"dim={self.embeddings.shape[1] if self.embeddings.ndim == 2 else 0}, model_id={self.model_id!r})"
        )

    @staticmethod
    def concat(results: Sequence[EmbedResult]) -> EmbedResult:
        """Stack several results made by the same model; raises ``ValueError`` when model ids differ."""
        if not results:
            raise ValueError("nothing to concatenate")
        ids = {r.model_id for r in results}
        if len(ids) > 1:
            raise ValueError(f"cannot mix embeddings of different models: {sorted(ids)}")
        return EmbedResult(
            files=coerce_frame(pd.concat([r.files for r in results], ignore_index=True), "files"),
            figures=coerce_frame(pd.concat([r.figures for r in results], ignore_index=True), "figures"),
            embeddings=np.concatenate([r.embeddings for r in results]).astype(np.float32, copy=False),
            errors=pd.concat([r.errors for r in results], ignore_index=True),
            model_id=results[0].model_id,
        )


# ---------------------------------------------------------------------------------------------- sources
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
        prefix = next((p for p in prefixes if uri.startswith(p)), None)
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


# ---------------------------------------------------------------------------------------------- loading
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
    import hashlib

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
            from imm_analysis.io.media import file_sha256

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
        for it in items:
            yield fn(it)
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


# ---------------------------------------------------------------------------------------------- per file
@dataclass
class _Pending:
    """A file whose faces are detected and aligned, waiting for recognition."""

    loaded: _Loaded
    file_row: dict
    face_rows: list[dict]
    crops: list[np.ndarray]


def _file_row(ld: _Loaded, n_faces: int, crop: bool) -> dict:
    item, info = ld.item, ld.info
    row: dict[str, Any] = {
        "file_id": ld.sha[:32],
        "uri": item.uri,
        "filename": item.path.name,
        "media_type": ld.kind,
        "content_type": getattr(info, "content_type", None) or content_type(item.path),
        "size": ld.size,
        "file_hash": ld.sha,
        "figure_count": n_faces,
        "file_modified_time": datetime.fromtimestamp(ld.mtime, UTC) if ld.mtime is not None else None,
        "extra": {"path": str(item.path), "mode": "crop" if crop else "detect"},
    }
    if ld.kind == "image":
        row.update(image_width=info.width, image_height=info.height, orientation=info.orientation,
                   produce_time=info.produce_time)
    else:
        row.update(video_width=info.width, video_height=info.height, duration=info.duration)
    return row


def _face_rows(
    model: FaceModel, ld: _Loaded, rgb: np.ndarray, boxes: np.ndarray, kps: np.ndarray, crops: np.ndarray,
    frame_index: int | None, timestamp: float | None, size_override: float | None = None,
    scale: int = 1, image_size: tuple[int, int] | None = None,
) -> list[dict]:
    """Figure rows; ``boxes``/``kps`` in original pixels, ``rgb`` decoded at ``1 / scale`` of ``image_size``."""
    from imm_analysis.faces.pose import pose_from_keypoints
    from imm_analysis.faces.quality import face_quality, sharpness

    n = len(crops)
    if not n:
        return []
    w, h = image_size if image_size is not None else (rgb.shape[1], rgb.shape[0])
    sharp = sharpness(crops)
    if len(boxes):
        in_rgb = boxes[:, :4] if scale == 1 else from_original(boxes[:, :4].reshape(-1, 2), scale).reshape(-1, 4)
        pose = model.pose_3d(rgb, in_rgb)
        if pose is None:
            pose = pose_from_keypoints(kps)
        attrs = model.attributes(rgb, in_rgb)
        x1 = np.clip(boxes[:, 0], 0, w)
        y1 = np.clip(boxes[:, 1], 0, h)
        x2 = np.clip(boxes[:, 2], 0, w)
        y2 = np.clip(boxes[:, 3], 0, h)
        det = boxes[:, 4].astype(np.float64)
    else:
        pose, attrs = np.full((n, 3), np.nan), None
        x1 = y1 = np.zeros(n)
        x2, y2 = np.full(n, float(w)), np.full(n, float(h))
        det = np.full(n, np.nan)
    size = np.minimum(x2 - x1, y2 - y1) if size_override is None else np.full(n, size_override)
    quality = face_quality(det, sharp, size, pose[:, 0], pose[:, 2])
    return [
        _row(ld, i, frame_index, timestamp, det[i], quality[i], sharp[i], (x1[i], y1[i], x2[i], y2[i]), pose[i],
             kps[i] if len(kps) else None, attrs[i] if attrs is not None else None)
        for i in range(n)
    ]


def _row(
    ld: _Loaded, i: int, frame_index: int | None, timestamp: float | None, det: float, quality: float, sharp: float,
    box: Sequence[float], pose: np.ndarray, kps: np.ndarray | None, attrs: np.ndarray | None,
) -> dict:
    """One figure row (``box`` = clipped ``x1, y1, x2, y2`` in original pixels)."""
    fid = ld.sha[:32]
    x1, y1, x2, y2 = box
    row = {
        "file_id": fid,
        "uri": ld.item.uri,
        "media_type": ld.kind,
        "figure_id": f"{fid}-{frame_index or 0}-{i}",
        "figure_cluster_id": CLUSTER_UNAVAILABLE,
        "figure_type": "face",
        "figure_confidence": det,
        "face_quality": quality,
        "sharpness": sharp,
        "left": int(round(x1)),
        "top": int(round(y1)),
        "width": int(round(x2 - x1)),
        "height": int(round(y2 - y1)),
        "pitch": pose[0],
        "roll": pose[1],
        "yaw": pose[2],
        "det_score": det,
        "timestamp": timestamp if timestamp is not None else np.nan,
        "frame_index": frame_index,
        "extra": {"kps": np.round(kps, 2).tolist()} if kps is not None else {},
    }
    if attrs is not None:
        row["age"] = float(attrs[0])
        row["gender"] = "male" if attrs[1] >= 0.5 else "female"
    if ld.info is not None and getattr(ld.info, "produce_time", None) is not None:
        row["produce_time"] = ld.info.produce_time
    return row


_CROP_PAD = 24  # black border around a crop for the detector pass (crop + 2 x 24 = 160 = its input size)


def _crop_input(model: FaceModel, rgb: np.ndarray, detect: bool) -> tuple[np.ndarray, Any]:
    """The 112x112 crop and its detector input (None without ``detect``); run in the loader threads."""
    import cv2

    h, w = rgb.shape[:2]
    crop = rgb if (h, w) == (112, 112) else cv2.resize(rgb, (112, 112), interpolation=cv2.INTER_AREA)
    if not detect:
        return crop, None
    p = _CROP_PAD
    canvas = cv2.copyMakeBorder(crop, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return crop, model.detector_input(canvas, det_size=(112 + 2 * p, 112 + 2 * p))


@dataclass
class _CropFace:
    pos: int
    ld: _Loaded
    crop: np.ndarray
    size: tuple[int, int]  # the file's (width, height)
    box: np.ndarray | None = None  # (5,) in crop pixels when the detector found the face
    kps: np.ndarray | None = None  # (5, 2)
    prepared: Any = None  # FaceModel.detector_input of the padded crop, until detected


def _crop_rows(model: FaceModel, faces: list[_CropFace], detect: bool) -> list[dict]:
    """Rows of many crops at once (sharpness, pose and quality vectorised over the batch)."""
    from imm_analysis.faces.pose import pose_from_keypoints
    from imm_analysis.faces.quality import face_quality, sharpness

    n = len(faces)
    if n == 0:  # e.g. every crop of the last batch came from the cache
        return []
    crops = np.stack([f.crop for f in faces])
    sharp = sharpness(crops)
    found = np.array([f.box is not None for f in faces], bool)
    det = np.array([f.box[4] if f.box is not None else np.nan for f in faces], np.float64)
    pose = np.full((n, 3), np.nan)
    attrs = np.full((n, 2), np.nan) if model.has_attributes else None
    idx = np.flatnonzero(found)
    if len(idx):
        boxes = np.stack([faces[i].box[:4] for i in idx])
        if model.has_landmarks_3d or model.has_attributes:  # these models take one image per call
            for j, i in enumerate(idx):
                if model.has_landmarks_3d:
                    pose[i] = model.pose_3d(faces[i].crop, boxes[j : j + 1])[0]
                if attrs is not None:
                    attrs[i] = model.attributes(faces[i].crop, boxes[j : j + 1])[0]
        if not model.has_landmarks_3d:
            pose[idx] = pose_from_keypoints(np.stack([faces[i].kps for i in idx]))
    size = np.array([min(f.size) for f in faces], np.float64)
    quality = face_quality(det, sharp, size, pose[:, 0], pose[:, 2])
    if detect:
        quality[~found] = 0.0  # the detector found no face in the crop
        det[~found] = 0.0
    else:
        quality[:] = np.nan
    return [
        _row(f.ld, 0, None, None, det[i], quality[i], sharp[i], (0, 0, f.size[0], f.size[1]), pose[i],
             f.kps, attrs[i] if attrs is not None and found[i] else None)
        for i, f in enumerate(faces)
    ]


# ---------------------------------------------------------------------------------------------- driver
class _Run:
    """State of one embedding run: output lists in source order, pending faces, cache."""

    def __init__(self, model: FaceModel, items: list[_Item], cache, batch_size: int, chunk_files: int) -> None:
        self.model = model
        self.cache = cache
        self.batch_size = batch_size
        self.chunk_files = chunk_files
        self.cached = cache.load() if cache is not None else {}
        self.slots: list[Any] = [None] * len(items)  # per item: (files_df, figures_df, emb, errors_df)
        self.pending: list[tuple[int, _Pending]] = []
        self.pending_errors: list[tuple[int, str, dict]] = []  # errors to commit with the next chunk
        self.seen: dict[str, str] = {}
        self.n_faces_pending = 0
        self.stats = {"cached_files": 0, "new_files": 0, "errors": 0, "faces": 0}

    def error(self, pos: int, ld: _Loaded, err: tuple[str, str], *, cache: bool) -> None:
        row = {"uri": ld.item.uri, "path": str(ld.item.path), "file_id": ld.sha[:32] if ld.sha else None,
               "error": err[0], "reason": clean_reason(err[1])}
        self.stats["errors"] += 1
        self.slots[pos] = (None, None, None, pd.DataFrame([row]))
        if cache and self.cache is not None and ld.key is not None:
            self.pending_errors.append((pos, ld.key, row))

    def add(self, pos: int, pend: _Pending) -> None:
        self.pending.append((pos, pend))
        self.n_faces_pending += len(pend.crops)
        if self.n_faces_pending >= self.batch_size * 4 or len(self.pending) >= self.chunk_files:
            self.flush()

    def settled(self, pos: int, ld: _Loaded) -> bool:
        """Record a file that needs no inference (load error, duplicate content, cache hit); True if so."""
        if ld.error is not None:
            self.error(pos, ld, ld.error, cache=ld.error_cacheable and ld.key is not None)
            return True
        if ld.key in self.seen:
            self.error(pos, ld, ("DuplicateFile", f"same content as {self.seen[ld.key]} (embedded once)"), cache=False)
            return True
        self.seen[ld.key] = ld.item.uri
        if ld.cached:
            self.from_cache(pos, ld)
            return True
        return False

    def from_cache(self, pos: int, ld: _Loaded) -> None:
        e = self.cached[ld.key]
        self.stats["cached_files"] += 1
        if e.error:
            err = e.error[0]
            self.error(pos, ld, (str(err["error"]), clean_reason(str(err["reason"]))), cache=False)
            return
        path = str(ld.item.path)
        files = [dict(r, uri=ld.item.uri, filename=ld.item.path.name, extra={**(r.get("extra") or {}), "path": path})
                 for r in e.file]
        figs = [dict(r, uri=ld.item.uri) for r in e.figures]
        self.slots[pos] = (files, figs, e.embeddings, None)  # plain rows, like a new file's
        self.stats["faces"] += len(figs)

    def flush(self) -> None:
        if not self.pending and not self.pending_errors:
            return
        crops = [c for _, p in self.pending for c in p.crops]
        emb = (self.model.embed(np.stack(crops), batch_size=self.batch_size) if crops
               else np.zeros((0, self.model.embedding_dim), np.float32))
        keys, f_rows, g_rows, start = [], [], [], 0
        for pos, p in self.pending:
            n = len(p.crops)
            # plain rows here; frames are built once per chunk (cache) and once per run (result)
            self.slots[pos] = ([p.file_row], p.face_rows, emb[start : start + n], None)
            start += n
            keys.append(p.loaded.key)
            f_rows.append(dict(p.file_row, cache_key=p.loaded.key))
            g_rows += [dict(r, cache_key=p.loaded.key) for r in p.face_rows]
            self.stats["new_files"] += 1
            self.stats["faces"] += n
        if self.cache is not None:
            err_rows = [dict(r, cache_key=k) for _, k, r in self.pending_errors]
            keys += [k for _, k, _ in self.pending_errors]
            files_df = (coerce_frame(pd.DataFrame(f_rows), "files") if f_rows
                        else coerce_frame(pd.DataFrame({"cache_key": pd.Series([], dtype="string")}), "files"))
            figs_df = (coerce_frame(pd.DataFrame(g_rows), "figures") if g_rows
                       else empty_frame("figures", (*_EXTRA_FIGURE_COLUMNS, "cache_key")))
            errs = pd.DataFrame(err_rows, columns=[*ERROR_COLUMNS, "cache_key"]).astype("string")
            self.cache.write_chunk(keys, files_df, figs_df, emb, errs)
        self.pending, self.pending_errors, self.n_faces_pending = [], [], 0

    def result(self) -> EmbedResult:
        self.flush()
        files: list[pd.DataFrame] = []
        figs: list[pd.DataFrame] = []
        embs, errs = [], []
        f_buf: list[dict] = []
        g_buf: list[dict] = []

        def spill() -> None:
            if f_buf:
                files.append(pd.DataFrame(f_buf))
                f_buf.clear()
            if g_buf:
                figs.append(pd.DataFrame(g_buf))
                g_buf.clear()

        for slot in self.slots:
            if slot is None:
                continue
            f, g, e, r = slot
            if isinstance(f, list):  # fresh rows
                f_buf += f
                g_buf += g
            elif f is not None:  # frames from the cache
                spill()
                files.append(f)
                if g is not None and len(g):
                    figs.append(g)
            if e is not None and len(e):
                embs.append(e)
            if r is not None:
                errs.append(r)
        spill()
        files_df = coerce_frame(pd.concat(files, ignore_index=True), "files") if files else empty_frame("files")
        figs_df = (coerce_frame(pd.concat(figs, ignore_index=True), "figures") if figs
                   else empty_frame("figures", _EXTRA_FIGURE_COLUMNS))
        for col in _EXTRA_FIGURE_COLUMNS:
            if col not in figs_df:
                figs_df[col] = pd.Series(np.nan if col != "frame_index" else pd.NA, index=figs_df.index)
        figs_df = coerce_frame(figs_df, "figures")
        emb = np.concatenate(embs).astype(np.float32, copy=False) if embs else np.zeros((0, self.model.embedding_dim), np.float32)
        err_df = (pd.concat(errs, ignore_index=True) if errs else pd.DataFrame(columns=list(ERROR_COLUMNS)))
        err_df = err_df.astype(ERROR_COLUMNS)
        if len(emb) != len(figs_df):  # pragma: no cover - an internal invariant
            raise RuntimeError(f"internal error: {len(emb)} embeddings for {len(figs_df)} faces")
        return EmbedResult(files_df, figs_df, emb, err_df, self.model.model_id, dict(self.stats))


def _decode_reduction(decode_scale: int | str) -> int:
    if decode_scale == "auto":
        return 8
    if decode_scale in (1, 2, 4, 8) and not isinstance(decode_scale, bool):
        return int(decode_scale)
    raise ValueError(f"decode_scale must be 'auto', 1, 2, 4 or 8, got {decode_scale!r}")


def _open_cache(cache_dir, model: FaceModel, mode: str, decode_scale: int = 1):
    if cache_dir is None:
        return None
    from imm_analysis.faces.cache import EmbeddingCache

    settings = {"mode": mode, "det_size": list(model.det_size), "det_thresh": model.det_thresh,
                "rec_norm": [model.rec_mean, model.rec_std]}
    if decode_scale != 1:  # full decoding keeps the settings (and so the cache folders) it always had
        settings["decode_scale"] = decode_scale
    if mode == "detect" and model.det_canvas != "square":  # likewise the padded canvas of the first release
        settings["det_canvas"] = model.det_canvas
    return EmbeddingCache(cache_dir, model.model_id, model.embedding_dim, settings)


def embed_images(
    source: Any,
    model: FaceModel,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    video_fps: float = 1.0,
    batch_size: int = 32,
    progress: bool = True,
    uri_root: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    max_pixels: int | None = MAX_PIXELS,
    workers: int = 2,
    chunk_files: int = 16,
    decode_scale: int | str = "auto",
) -> EmbedResult:
    """Detect, align and embed every face of the images and videos in ``source``.

    Parameters
    ----------
    source : path-like, list of path-like, or DataFrame
        A directory (searched recursively for .jpg/.jpeg/.png/.webp/.bmp/.tif/.tiff and
        .mp4/.mov/.avi/.mkv), one file, a list of files, or a files frame with a ``uri`` column.
    model : FaceModel
    cache_dir : path-like, optional
        Where to keep results between runs (Parquet + ``.npy``; see :mod:`imm_analysis.faces.cache`).
    video_fps : float, default=1.0
        Frames sampled per second of video.
    batch_size : int, default=32
        Faces per recognizer call (faces of several images share a batch).
    progress : bool, default=True
        Show a tqdm progress bar over files.
    uri_root : path-like or mapping, optional
        Maps ``oss://bucket/key`` URIs to local files: a folder (``<folder>/bucket/key``) or a
        ``{"oss://bucket/prefix/": "/local/folder"}`` mapping. When given, every URI (with or
        without a scheme, e.g. ``/abs/x.jpg`` or ``../x.jpg``) must resolve, symlinks followed,
        under its root; one that does not, and a row with a null ``uri``, becomes one row of
        ``errors`` (``error="PathError"``) and the run goes on.
    max_pixels : int or None, default=100_000_000
        Images (and video frames) with more pixels are refused (decompression bombs).
    workers : int, default=2
        Threads that read and decode files ahead of inference (0: decode inline).
    chunk_files : int, default=16
        Files per committed chunk (the unit of caching and of crash recovery).
    decode_scale : "auto" or {1, 2, 4, 8}, default="auto"
        Reduced JPEG decoding (see the module docstring): ``"auto"`` decodes a large JPEG at up to
        1/8 of its size while it still covers ``det_size``, re-decoding finer when a face needs
        it; an integer caps the reduction (``1``: always decode at full size). Coordinates and
        sizes in the results are always in original pixels.

    Returns
    -------
    EmbedResult
        ``files``, ``figures``, ``embeddings`` (float32, L2-normalised, row-aligned) and ``errors``.

    Examples
    --------
    >>> from imm_analysis import FaceModel, embed_images
    >>> model = FaceModel("../shared/models/mbf128_det500m")  # doctest: +SKIP
    >>> res = embed_images("../shared/faces/photos", model, cache_dir="../.cache/embed")  # doctest: +SKIP
    >>> res.figures[["figure_id", "face_quality", "yaw"]].head()  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    reduce = _decode_reduction(decode_scale)
    items = resolve_sources(source, uri_root=uri_root)
    cache = _open_cache(cache_dir, model, "detect", decode_scale=reduce)
    run = _Run(model, items, cache, max(1, int(batch_size)), max(1, int(chunk_files)))
    keys = set(run.cached)

    def load(item: _Item) -> _Loaded:
        ld = _load(item, keys, video_fps, max_pixels, crop=False, reduce=reduce, fit=model.det_size,
                   prepare=model.detector_input if workers > 0 else None)
        if workers > 0 and ld.kind == "image" and ld.error is None and not ld.cached:
            # detect and align here too: the main thread only recognises, this runs alongside it
            try:
                ld.pending = _image_pending(model, ld, max_pixels)
            except MediaError as exc:
                ld.fail = (("MediaError", exc.reason), True)
            except Exception as exc:  # noqa: BLE001 - a batch never dies on one file
                ld.fail = ((type(exc).__name__, str(exc)), False)
        return ld

    bar = tqdm(total=len(items), desc="embedding", unit="file", disable=not progress)
    try:
        for pos, ld in enumerate(_prefetch(items, load, workers, ahead=max(16, 8 * workers))):
            bar.update(1)
            if run.settled(pos, ld):
                continue
            if ld.fail is not None:
                if not ld.fail[1]:
                    logger.warning("%s: %s", ld.item.path, ld.fail[0][1])
                run.error(pos, ld, ld.fail[0], cache=ld.fail[1])
                continue
            if ld.pending is not None:
                run.add(pos, ld.pending)
                continue
            try:
                if ld.kind == "image":
                    run.add(pos, _image_pending(model, ld, max_pixels))
                else:
                    run.add(pos, _video_pending(model, ld, video_fps, max_pixels))
            except MediaError as exc:
                run.error(pos, ld, ("MediaError", exc.reason), cache=True)
            except Exception as exc:  # noqa: BLE001 - a batch never dies on one file
                logger.warning("%s: %s", ld.item.path, exc)
                run.error(pos, ld, (type(exc).__name__, str(exc)), cache=False)
        return run.result()
    finally:
        bar.close()


def _crop_reduction(kps: np.ndarray, scale: int) -> int:
    """Largest reduction <= ``scale`` at which no face is upsampled by alignment (``kps`` in original pixels)."""
    from imm_analysis.faces.model import ARCFACE_TEMPLATE, _similarity

    need = scale
    for k in kps:
        m = _similarity(np.asarray(k, np.float64), ARCFACE_TEMPLATE)
        zoom = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # crop pixels per original pixel
        while need > 1 and zoom * need > 1.0:
            need //= 2
    return need


def _image_pending(model: FaceModel, ld: _Loaded, max_pixels: int | None) -> _Pending:
    """Detect on the (possibly reduced) image, align from pixels fine enough for every face."""
    rgb, scale = ld.rgb, ld.info.scale
    boxes, kps = model.detect(rgb, prepared=ld.det_input)
    ld.det_input = None
    if scale > 1:
        boxes[:, :4] = to_original(boxes[:, :4].reshape(-1, 2), scale).reshape(-1, 4)
        kps = to_original(kps, scale).astype(np.float32)
        need = _crop_reduction(kps, scale)
        if need < scale:  # a face would be upsampled: decode again, finer (at worst full size)
            rgb, info = read_image(ld.item.path, max_pixels=max_pixels, data=ld.data, reduce=need)
            scale = info.scale
        crops = model.align(rgb, from_original(kps, scale))
    else:
        crops = model.align(rgb, kps)
    rows = _face_rows(model, ld, rgb, boxes, kps, crops, None, None, scale=scale,
                      image_size=(ld.info.width, ld.info.height))
    file_row = _file_row(ld, len(rows), False)
    if ld.info.scale > 1:  # which reduced decodings were used (detection, alignment)
        file_row["extra"].update(decode_scale=ld.info.scale, align_scale=scale)
    ld.rgb = ld.data = None  # free the pixels; the crops are kept
    return _Pending(ld, file_row, rows, list(crops))


def _video_pending(model: FaceModel, ld: _Loaded, video_fps: float, max_pixels: int | None) -> _Pending:
    rows: list[dict] = []
    crops: list[np.ndarray] = []
    for frame_index, ts, rgb in _background(sample_video(ld.item.path, video_fps, max_pixels=max_pixels)):
        boxes, kps = model.detect(rgb)
        c = model.align(rgb, kps)
        rows += _face_rows(model, ld, rgb, boxes, kps, c, frame_index, ts)
        crops += list(c)
    return _Pending(ld, _file_row(ld, len(rows), False), rows, crops)


def embed_crops(
    source: Any,
    model: FaceModel,
    *,
    detect: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool = True,
    uri_root: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    workers: int = 2,
    chunk_files: int = 256,
) -> EmbedResult:
    """Embed faces that are already aligned to insightface's 112x112 template (e.g. ``faces/lfw_dev``).

    Each image is one face; no detection decides where it is. Crops of another size are resized
    to 112x112.

    Parameters
    ----------
    source : path-like, list of path-like, or DataFrame
        As in :func:`embed_images` (images only).
    model : FaceModel
    detect : bool, default=True
        Also run the detector on the crop (padded to 160x160) to fill ``det_score`` and the pose
        (from its keypoints), so ``face_quality`` and IMM's rule work as on full images. When the
        detector finds no face in a crop, ``det_score`` is 0 and so is ``face_quality``. With
        ``detect=False`` those columns are null (the rule then treats the face as not HD) and only
        the recognizer runs.
    cache_dir, batch_size, progress, uri_root, workers, chunk_files
        As in :func:`embed_images`.

    Returns
    -------
    EmbedResult
        One figure per usable crop: ``left = top = 0``, ``width``/``height`` the crop's size.

    Examples
    --------
    >>> res = embed_crops("../shared/faces/lfw_dev", model)  # doctest: +SKIP
    >>> res.embeddings.shape  # doctest: +SKIP
    (3849, 128)
    """
    from tqdm.auto import tqdm

    items = resolve_sources(source, uri_root=uri_root, extensions=IMAGE_EXTENSIONS)
    cache = _open_cache(cache_dir, model, "crop" if detect else "crop-nodetect")
    run = _Run(model, items, cache, max(1, int(batch_size)), max(1, int(chunk_files)))
    keys = set(run.cached)
    batch: list[_CropFace] = []

    def load(item: _Item) -> _Loaded:
        return _load(item, keys, 1.0, MAX_PIXELS, crop=True, prepare=lambda rgb: _crop_input(model, rgb, detect))

    def commit() -> None:
        if detect:  # every crop has the same detector input size: one call per batch of crops
            for f, (b, k) in zip(batch, model.detect_many([f.prepared for f in batch]), strict=True):
                f.prepared = None
                if len(b):
                    f.box = b[0].copy()
                    f.box[:4] -= _CROP_PAD
                    f.kps = k[0] - _CROP_PAD
        for f, row in zip(batch, _crop_rows(model, batch, detect), strict=True):
            run.add(f.pos, _Pending(f.ld, _file_row(f.ld, 1, True), [row], [f.crop]))
        batch.clear()

    bar = tqdm(total=len(items), desc="embedding crops", unit="crop", disable=not progress)
    try:
        for pos, ld in enumerate(_prefetch(items, load, workers, ahead=max(64, 4 * int(batch_size)))):
            bar.update(1)
            if run.settled(pos, ld):
                continue
            crop, prepared = ld.det_input
            face = _CropFace(pos, ld, crop, (ld.rgb.shape[1], ld.rgb.shape[0]), prepared=prepared)
            ld.rgb = ld.det_input = None
            batch.append(face)
            if len(batch) >= 64:
                commit()
        commit()
        return run.result()
    finally:
        bar.close()
