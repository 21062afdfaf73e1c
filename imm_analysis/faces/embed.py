"""Detect, align and embed faces in images, videos and pre-aligned crops, as IMM-shaped frames.

:func:`embed_images` and :func:`embed_crops` return an :class:`EmbedResult` whose ``files`` and
``figures`` frames have the columns of :func:`imm_analysis.load_files` / ``load_figures`` (through
:func:`imm_analysis.schema.coerce_frame`), so everything downstream works the same on local runs
and on IMM's own results.

How it runs
-----------
* A thread pool reads, hashes and decodes the next files while the current ones are in
  onnxruntime (decoding overlaps inference; OpenCV and Pillow release the GIL).
* Detection runs per image (SCRFD's exported graphs take one image); aligned faces from several
  images are pooled and recognised in batches of ``batch_size``.
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
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.io.media import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    VIDEO_EXTENSIONS,
    MediaError,
    content_type,
    media_type,
    read_image,
    sample_video,
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


def _map_uri(uri: str, uri_root: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None) -> Path:
    """Local path of ``uri``. ``uri_root``: a folder (``oss://bucket/key`` -> ``root/bucket/key``) or a prefix map."""
    if "://" not in uri:
        return Path(uri)
    if uri_root is None:
        raise ValueError(f"{uri}: remote URI needs a uri_root mapping to a local folder (e.g. uri_root='/data/oss')")
    if isinstance(uri_root, Mapping):
        prefixes = sorted(uri_root, key=len, reverse=True)
        prefix = next((p for p in prefixes if uri.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"{uri}: no uri_root entry matches (prefixes: {prefixes})")
        root, rest = Path(uri_root[prefix]), uri[len(prefix) :]
    else:
        root, rest = Path(uri_root), uri.split("://", 1)[1]
    parts = PurePosixPath(rest.lstrip("/")).parts
    if ".." in parts or any(p.startswith("/") for p in parts):
        raise ValueError(f"{uri}: refusing a URI that leaves its root {root} ('..')")
    path = root.joinpath(*parts)
    base = os.path.normpath(os.path.abspath(root))
    if os.path.commonpath([base, os.path.normpath(os.path.abspath(path))]) != base:
        raise ValueError(f"{uri}: refusing a URI that leaves its root {root}")
    return path


def resolve_sources(
    source: Any,
    *,
    uri_root: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    extensions: Iterable[str] = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS,
) -> list[_Item]:
    """The files to embed: a directory (recursive, media extensions only, sorted), a path, a list of
    paths, or a files frame with a ``uri`` column (remote URIs mapped through ``uri_root``)."""
    exts = {e.lower() for e in extensions}
    if isinstance(source, pd.DataFrame):
        if "uri" not in source.columns:
            raise ValueError(f"a files frame source needs a 'uri' column; columns: {list(source.columns)}")
        return [_Item(_map_uri(str(u), uri_root), str(u)) for u in source["uri"].dropna()]
    if isinstance(source, (str, os.PathLike)):
        p = Path(source).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in exts and (f.is_file() or f.is_symlink()))
            return [_Item(f, str(f.absolute())) for f in files]
        if not p.exists() and "://" in str(source):
            q = _map_uri(str(source), uri_root)
            return [_Item(q, str(source))]
        return [_Item(p, str(p.absolute()))]
    if isinstance(source, Iterable):
        out: list[_Item] = []
        for s in source:
            if "://" in str(s):
                out.append(_Item(_map_uri(str(s), uri_root), str(s)))
            else:
                out.append(_Item(Path(s).expanduser(), str(Path(s).expanduser().absolute())))
        return out
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
    cached: bool = False


def _load(item: _Item, cached_keys: set[str], video_fps: float, max_pixels: int | None, crop: bool) -> _Loaded:
    import hashlib

    out = _Loaded(item)
    try:
        kind = media_type(item.path)
        if kind is None or (crop and kind != "image"):
            raise MediaError(item.path, f"unsupported file type {item.path.suffix or '(no extension)'!r}")
        try:
            st = item.path.stat()
            data = item.path.read_bytes() if kind == "image" else None
        except OSError as exc:
            raise MediaError(item.path, f"cannot read file: {exc.strerror or exc}") from exc
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
            out.rgb, out.info = read_image(item.path, max_pixels=max_pixels, data=data)
        else:
            out.info = video_info(item.path)
    except MediaError as exc:
        out.error = ("MediaError", exc.reason)
    except Exception as exc:  # noqa: BLE001 - a batch never dies on one file
        out.error = (type(exc).__name__, str(exc))
    return out


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
) -> list[dict]:
    from imm_analysis.faces.pose import pose_from_keypoints
    from imm_analysis.faces.quality import face_quality, sharpness

    n = len(crops)
    if not n:
        return []
    h, w = rgb.shape[:2]
    sharp = sharpness(crops)
    if len(boxes):
        pose = model.pose_3d(rgb, boxes[:, :4])
        if pose is None:
            pose = pose_from_keypoints(kps)
        attrs = model.attributes(rgb, boxes[:, :4])
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
    fid = ld.sha[:32]
    rows = []
    for i in range(n):
        row = {
            "file_id": fid,
            "uri": ld.item.uri,
            "media_type": ld.kind,
            "figure_id": f"{fid}-{frame_index or 0}-{i}",
            "figure_cluster_id": CLUSTER_UNAVAILABLE,
            "cluster_state": "unavailable",
            "figure_type": "face",
            "figure_confidence": det[i],
            "face_quality": quality[i],
            "sharpness": sharp[i],
            "left": int(round(x1[i])),
            "top": int(round(y1[i])),
            "width": int(round(x2[i] - x1[i])),
            "height": int(round(y2[i] - y1[i])),
            "pitch": pose[i, 0],
            "roll": pose[i, 1],
            "yaw": pose[i, 2],
            "det_score": det[i],
            "timestamp": timestamp if timestamp is not None else np.nan,
            "frame_index": frame_index,
            "extra": {"kps": np.round(kps[i], 2).tolist()} if len(kps) else {},
        }
        if attrs is not None:
            row["age"] = float(attrs[i, 0])
            row["gender"] = "male" if attrs[i, 1] >= 0.5 else "female"
        if ld.info is not None and getattr(ld.info, "produce_time", None) is not None:
            row["produce_time"] = ld.info.produce_time
        rows.append(row)
    return rows


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
               "error": err[0], "reason": err[1]}
        self.stats["errors"] += 1
        self.slots[pos] = (None, None, None, pd.DataFrame([row]))
        if cache and self.cache is not None and ld.key is not None:
            self.pending_errors.append((pos, ld.key, row))

    def add(self, pos: int, pend: _Pending) -> None:
        self.pending.append((pos, pend))
        self.n_faces_pending += len(pend.crops)
        if self.n_faces_pending >= self.batch_size * 4 or len(self.pending) >= self.chunk_files:
            self.flush()

    def from_cache(self, pos: int, ld: _Loaded) -> None:
        e = self.cached[ld.key]
        self.stats["cached_files"] += 1
        if len(e.error):
            err = e.error.iloc[0]
            self.error(pos, ld, (str(err["error"]), str(err["reason"])), cache=False)
            return
        files = e.file.copy()
        files["uri"] = ld.item.uri
        files["filename"] = ld.item.path.name
        files["extra"] = [{**(x or {}), "path": str(ld.item.path)} for x in files["extra"]]
        figs = e.figures.copy()
        figs["uri"] = ld.item.uri
        self.slots[pos] = (files, figs, e.embeddings, None)
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


def _open_cache(cache_dir, model: FaceModel, mode: str):
    if cache_dir is None:
        return None
    from imm_analysis.faces.cache import EmbeddingCache

    settings = {"mode": mode, "det_size": list(model.det_size), "det_thresh": model.det_thresh,
                "rec_norm": [model.rec_mean, model.rec_std]}
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
        ``{"oss://bucket/prefix/": "/local/folder"}`` mapping. URIs with ``..`` are refused.
    max_pixels : int or None, default=100_000_000
        Images (and video frames) with more pixels are refused (decompression bombs).
    workers : int, default=2
        Threads that read and decode files ahead of inference (0: decode inline).
    chunk_files : int, default=16
        Files per committed chunk (the unit of caching and of crash recovery).

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

    items = resolve_sources(source, uri_root=uri_root)
    cache = _open_cache(cache_dir, model, "detect")
    run = _Run(model, items, cache, max(1, int(batch_size)), max(1, int(chunk_files)))
    keys = set(run.cached)

    def load(item: _Item) -> _Loaded:
        return _load(item, keys, video_fps, max_pixels, crop=False)

    bar = tqdm(total=len(items), desc="embedding", unit="file", disable=not progress)
    try:
        for pos, ld in enumerate(_prefetch(items, load, workers, ahead=max(4, 2 * workers))):
            bar.update(1)
            if ld.error is not None:
                run.error(pos, ld, ld.error, cache=ld.key is not None)
                continue
            if ld.key in run.seen:
                run.error(pos, ld, ("DuplicateFile", f"same content as {run.seen[ld.key]} (embedded once)"), cache=False)
                continue
            run.seen[ld.key] = ld.item.uri
            if ld.cached:
                run.from_cache(pos, ld)
                continue
            try:
                if ld.kind == "image":
                    boxes, kps = model.detect(ld.rgb)
                    crops = model.align(ld.rgb, kps)
                    rows = _face_rows(model, ld, ld.rgb, boxes, kps, crops, None, None)
                    ld.rgb = None  # free the pixels; the crops are kept
                    run.add(pos, _Pending(ld, _file_row(ld, len(rows), False), rows, list(crops)))
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
    import cv2
    from tqdm.auto import tqdm

    items = resolve_sources(source, uri_root=uri_root, extensions=IMAGE_EXTENSIONS)
    cache = _open_cache(cache_dir, model, "crop" if detect else "crop-nodetect")
    run = _Run(model, items, cache, max(1, int(batch_size)), max(1, int(chunk_files)))
    keys = set(run.cached)
    pad = 24

    def load(item: _Item) -> _Loaded:
        return _load(item, keys, 1.0, MAX_PIXELS, crop=True)

    bar = tqdm(total=len(items), desc="embedding crops", unit="crop", disable=not progress)
    try:
        for pos, ld in enumerate(_prefetch(items, load, workers, ahead=max(8, 4 * workers))):
            bar.update(1)
            if ld.error is not None:
                run.error(pos, ld, ld.error, cache=ld.key is not None)
                continue
            if ld.key in run.seen:
                run.error(pos, ld, ("DuplicateFile", f"same content as {run.seen[ld.key]} (embedded once)"), cache=False)
                continue
            run.seen[ld.key] = ld.item.uri
            if ld.cached:
                run.from_cache(pos, ld)
                continue
            rgb = ld.rgb
            h, w = rgb.shape[:2]
            crop = rgb if (h, w) == (112, 112) else cv2.resize(rgb, (112, 112), interpolation=cv2.INTER_AREA)
            boxes = np.zeros((1, 5), np.float32)
            kps = np.zeros((0, 5, 2), np.float32)
            if detect:
                canvas = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
                b, k = model.detect(canvas, det_size=(160, 160))
                if len(b):
                    boxes = b[:1].copy()
                    boxes[:, :4] -= pad
                    kps = k[:1] - pad
            found = detect and len(kps) > 0
            rows = _face_rows(model, ld, crop, boxes if found else boxes[:0], kps, crop[None], None, None,
                              size_override=float(min(h, w)))
            row = rows[0]
            row.update(left=0, top=0, width=w, height=h)
            if detect and not found:
                row.update(det_score=0.0, figure_confidence=0.0, face_quality=0.0)
            if not detect:
                row.update(face_quality=np.nan)
            ld.rgb = None
            run.add(pos, _Pending(ld, _file_row(ld, 1, True), [row], [crop]))
        return run.result()
    finally:
        bar.close()
