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
* A file that cannot be used becomes one row of ``errors`` and the run goes on; so does a
  source that cannot be resolved (a URI outside ``uri_root``, a null ``uri``, a folder that
  cannot be listed; see :mod:`imm_analysis.faces.sources`).

Limits
------
Only regular files are read (FIFOs, devices, sockets, also behind symlinks, are error rows and
never block). The limits of :mod:`imm_analysis.io.media` apply to every file: ``MAX_PIXELS``
(100,000,000 pixels, the ``max_pixels`` argument), ``MAX_DECODE_BYTES`` (1 GiB of decoding
memory per image), ``MAX_MEDIA_BYTES`` (1 GiB read from one image file) and
``MAX_VIDEO_BYTES`` (64 GiB per video file). Pillow's global ``MAX_IMAGE_PIXELS`` is never
changed.

Module layout
-------------
The route of one image is decode (:mod:`~imm_analysis.faces.prefetch`), analyse
(:meth:`FaceModel.analyse`), score (:mod:`~imm_analysis.faces.rows`), then recognise and write
(:mod:`~imm_analysis.faces.run`, :mod:`~imm_analysis.faces.cache`). Sources are resolved in
:mod:`~imm_analysis.faces.sources`, crops in :mod:`~imm_analysis.faces.crops`;
:class:`EmbedResult` lives in :mod:`~imm_analysis.faces.result` and stays importable from here.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from imm_analysis.faces.analyse import Decoded
from imm_analysis.faces.crops import _CROP_PAD, _crop_input, _crop_rows, _CropFace
from imm_analysis.faces.prefetch import _background, _load, _Loaded, _prefetch
from imm_analysis.faces.result import _EXTRA_FIGURE_COLUMNS, ERROR_COLUMNS, EmbedResult
from imm_analysis.faces.rows import _Pending, face_rows, file_row, score_faces
from imm_analysis.faces.run import _decode_reduction, _open_cache, _Run
from imm_analysis.faces.sources import UriRoot, _Item, _map_uri, resolve_sources
from imm_analysis.io.media import IMAGE_EXTENSIONS, MAX_PIXELS, MediaError, read_image, sample_video

if TYPE_CHECKING:
    from imm_analysis.faces.model import FaceModel

__all__ = ["EmbedResult", "embed_images", "embed_crops", "resolve_sources", "ERROR_COLUMNS"]

# kept importable from here (they moved to the modules named in the docstring)
_REEXPORTED = (_EXTRA_FIGURE_COLUMNS, _map_uri, _decode_reduction, _Item)

logger = logging.getLogger(__name__)


def embed_images(
    source: Any,
    model: FaceModel,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    video_fps: float = 1.0,
    batch_size: int = 32,
    progress: bool = True,
    uri_root: UriRoot = None,
    max_pixels: int | None = MAX_PIXELS,
    workers: int = 2,
    chunk_files: int = 16,
    decode_scale: int | str = "auto",
    client: Any = None,
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
    client : dask.distributed.Client or str, optional
        Run on a Dask cluster (a ``Client`` or a scheduler address): files go to the workers in
        batches, each worker loads the model once, writes its results into ``cache_dir`` (required,
        on storage every worker sees) and the answer is assembled from that cache; it equals the
        single-process answer. See :mod:`imm_analysis.faces.distributed`.

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
    reduce = _decode_reduction(decode_scale)
    items = resolve_sources(source, uri_root=uri_root)
    options: dict[str, Any] = {"video_fps": video_fps, "batch_size": batch_size, "max_pixels": max_pixels,
                               "workers": workers, "chunk_files": chunk_files, "reduce": reduce}
    if client is not None:  # scale-out: batches of files on the workers of a Dask cluster
        from imm_analysis.faces.distributed import embed_on_cluster

        return embed_on_cluster("images", items, model, client, cache_dir, options, progress=progress)
    cache = _open_cache(cache_dir, model, "detect", decode_scale=reduce)
    return _images_run(items, model, cache, progress=progress, **options).result()


def _images_run(
    items: list[_Item], model: FaceModel, cache: Any, *, video_fps: float, batch_size: int, progress: bool,
    max_pixels: int | None, workers: int, chunk_files: int, reduce: int,
) -> _Run:
    """The loop of :func:`embed_images` over resolved ``items``; returns the finished run."""
    from tqdm.auto import tqdm

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
        run.flush()
        return run
    finally:
        bar.close()



def _image_pending(model: FaceModel, ld: _Loaded, max_pixels: int | None) -> _Pending:
    """Analyse one decoded image (decoding finer where a face needs it), score its faces, make its rows."""
    path, data = ld.item.path, ld.data

    def finer(reduce: int) -> tuple[np.ndarray, int]:
        rgb, info = read_image(path, max_pixels=max_pixels, data=data, reduce=reduce)
        return rgb, info.scale

    assert ld.rgb is not None  # a decoded image
    (faces,) = model.analyse([Decoded(ld.rgb, ld.info.scale, finer, ld.det_input)])
    ld.det_input = None
    size = (ld.info.width, ld.info.height)
    rows = face_rows(ld, faces, score_faces(faces, size))
    row = file_row(ld, len(rows), False)
    if ld.info.scale > 1:  # which reduced decodings were used (detection, alignment)
        row["extra"].update(decode_scale=ld.info.scale, align_scale=faces.align_scale)
    ld.rgb = ld.data = None  # free the pixels; the crops are kept
    return _Pending(ld, row, rows, list(faces.crops))


def _video_pending(model: FaceModel, ld: _Loaded, video_fps: float, max_pixels: int | None) -> _Pending:
    rows: list[dict] = []
    crops: list[np.ndarray] = []
    for frame_index, ts, rgb in _background(sample_video(ld.item.path, video_fps, max_pixels=max_pixels)):
        (faces,) = model.analyse([rgb])
        rows += face_rows(ld, faces, score_faces(faces, (rgb.shape[1], rgb.shape[0])), frame_index, ts)
        crops += list(faces.crops)
    return _Pending(ld, file_row(ld, len(rows), False), rows, crops)


def embed_crops(
    source: Any,
    model: FaceModel,
    *,
    detect: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool = True,
    uri_root: UriRoot = None,
    workers: int = 2,
    chunk_files: int = 256,
    client: Any = None,
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
    cache_dir, batch_size, progress, uri_root, workers, chunk_files, client
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
    items = resolve_sources(source, uri_root=uri_root, extensions=IMAGE_EXTENSIONS)
    options: dict[str, Any] = {"detect": detect, "batch_size": batch_size, "workers": workers,
                               "chunk_files": chunk_files}
    if client is not None:  # scale-out: batches of crops on the workers of a Dask cluster
        from imm_analysis.faces.distributed import embed_on_cluster

        return embed_on_cluster("crops", items, model, client, cache_dir, options, progress=progress)
    cache = _open_cache(cache_dir, model, "crop" if detect else "crop-nodetect")
    return _crops_run(items, model, cache, progress=progress, **options).result()


def _crops_run(
    items: list[_Item], model: FaceModel, cache: Any, *, detect: bool, batch_size: int, progress: bool,
    workers: int, chunk_files: int,
) -> _Run:
    """The loop of :func:`embed_crops` over resolved ``items``; returns the finished run."""
    from tqdm.auto import tqdm

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
            run.add(f.pos, _Pending(f.ld, file_row(f.ld, 1, True), [row], [f.crop]))
        batch.clear()

    bar = tqdm(total=len(items), desc="embedding crops", unit="crop", disable=not progress)
    try:
        for pos, ld in enumerate(_prefetch(items, load, workers, ahead=max(64, 4 * int(batch_size)))):
            bar.update(1)
            if run.settled(pos, ld):
                continue
            crop, prepared = ld.det_input
            h, w = np.asarray(ld.rgb).shape[:2]
            face = _CropFace(pos, ld, crop, (w, h), prepared=prepared)
            ld.rgb = ld.det_input = None
            batch.append(face)
            if len(batch) >= 64:
                commit()
        commit()
        run.flush()
        return run
    finally:
        bar.close()
