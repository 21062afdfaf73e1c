"""Decode images and sample video frames for the local face pipeline.

Images are returned as RGB ``uint8`` arrays of shape ``(height, width, 3)`` with the EXIF
orientation applied; grayscale, 16-bit, palette, CMYK and alpha images are converted (alpha is
composited onto white). Images with more than ``max_pixels`` pixels are refused before their
pixels are decoded, which guards against decompression bombs. Videos are read with OpenCV and
sampled at a fixed rate.

Every failure raises :class:`MediaError`, which names the file and the reason, so a batch can
record it and go on. A video that opens but ends early or has frames that cannot be decoded
(e.g. a partly corrupted mp4) is sampled as far as it goes, with a :class:`MediaWarning`.

Limits
------
Hostile or broken files must neither hang a batch nor exhaust memory, so every reader here:

* opens only regular files (:func:`imm_analysis.io.paths.open_regular`): FIFOs, devices
  (``/dev/zero``), sockets and folders are refused, through symlinks too, without blocking;
* ``MAX_PIXELS`` = 100,000,000: images (and video frames) with more pixels than ``max_pixels``
  are refused from the header, before their pixels are decoded (decompression bombs). The limit
  is passed to each decode; Pillow's global ``PIL.Image.MAX_IMAGE_PIXELS`` is never changed
  (it still applies on its own: an image over twice Pillow's limit is refused by Pillow);
* ``MAX_DECODE_BYTES`` = 1 GiB: the memory one image's decoding may take, estimated from the
  header (decoded pixels, the RGB copy, alpha compositing), so a small file with huge
  dimensions (a 97 KB PNG that would decode to gigabytes) is refused before it is decoded;
* ``MAX_MEDIA_BYTES`` = 1 GiB: the most bytes read into memory from one image file;
  ``MAX_VIDEO_BYTES`` = 64 GiB: the largest video file that is hashed and sampled (videos are
  streamed, never held in memory).

Error reasons never carry memory addresses (``<_io.BytesIO object at 0x...>``), so they are
stable from run to run and can be cached (:func:`clean_reason`).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from imm_analysis._optional import require

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "MAX_PIXELS",
    "MAX_DECODE_BYTES",
    "MAX_MEDIA_BYTES",
    "MAX_VIDEO_BYTES",
    "MediaError",
    "MediaWarning",
    "clean_reason",
    "read_media_bytes",
    "ImageInfo",
    "VideoInfo",
    "media_type",
    "file_sha256",
    "read_image",
    "to_original",
    "from_original",
    "video_info",
    "sample_video",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv"})
#: Default pixel limit (width x height) above which an image is refused: 100 megapixels.
MAX_PIXELS = 100_000_000
#: Default memory (bytes) one image's decoding may take, estimated from its header: 1 GiB.
MAX_DECODE_BYTES = 1 << 30
#: Most bytes read into memory from one image file: 1 GiB.
MAX_MEDIA_BYTES = 1 << 30
#: Largest video file (bytes) that is hashed and sampled (streamed, never held in memory): 64 GiB.
MAX_VIDEO_BYTES = 64 << 30

_CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
    ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo", ".mkv": "video/x-matroska",
}


class MediaError(ValueError):
    """A file that cannot be used as an image or a video; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = clean_reason(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):  # picklable with its fields (worker processes)
        return (type(self), (self.path, self.reason))


class MediaWarning(UserWarning):
    """A media file that was used only in part (e.g. a video whose later frames cannot be decoded)."""


_ADDRESS = re.compile(r"<[^<>]*? at 0x[0-9a-fA-F]+>")


def clean_reason(reason: str) -> str:
    """An error reason without memory addresses (``<_io.BytesIO object at 0x...>`` becomes ``the file``).

    Examples
    --------
    >>> clean_reason("cannot identify image file <_io.BytesIO object at 0x7f3a2c1b0>")
    'cannot identify image file the file'
    """
    return _ADDRESS.sub("the file", str(reason))


def read_media_bytes(path: str | os.PathLike[str], *, max_bytes: int | None = MAX_MEDIA_BYTES) -> tuple[bytes, os.stat_result]:
    """The bytes and ``stat`` of a regular file, reading at most ``max_bytes``.

    FIFOs, devices, sockets and folders (also through symlinks) are refused without blocking
    (:func:`imm_analysis.io.paths.open_regular`).

    Raises
    ------
    MediaError
        Not a regular file, unreadable, or larger than ``max_bytes``.

    Examples
    --------
    >>> read_media_bytes("/dev/zero")
    Traceback (most recent call last):
    ...
    imm_analysis.io.media.MediaError: /dev/zero: not a regular file (character device)
    """
    from imm_analysis.io.paths import PathError, check_regular, open_regular

    try:
        check_regular(path)  # names sockets and devices, which cannot even be opened, by their kind
        with open_regular(path) as fh:  # and a path swapped after that check is refused here
            st = os.fstat(fh.fileno())
            if max_bytes is not None and st.st_size > max_bytes:
                raise MediaError(path, f"file has {st.st_size:,} bytes, over the limit of {max_bytes:,} (MAX_MEDIA_BYTES)")
            data = fh.read(max_bytes + 1) if max_bytes is not None else fh.read()
    except PathError as exc:
        raise MediaError(path, exc.reason) from None
    except OSError as exc:
        raise MediaError(path, f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    if max_bytes is not None and len(data) > max_bytes:  # grew while being read
        raise MediaError(path, f"file has over {max_bytes:,} bytes (MAX_MEDIA_BYTES)")
    return data, st


@dataclass
class ImageInfo:
    """What :func:`read_image` learnt about the file besides its pixels."""

    width: int
    height: int
    orientation: int | None = None  # EXIF orientation tag before it was applied
    content_type: str | None = None
    produce_time: datetime | None = None  # EXIF DateTimeOriginal, read as UTC (EXIF has no zone)
    mode: str = ""
    extra: dict = field(default_factory=dict)
    scale: int = 1  # original pixels per decoded pixel (JPEG reduced decoding), 1 = full size


@dataclass
class VideoInfo:
    """Size, frame rate, frame count and duration (seconds) of a video."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration: float


def media_type(path: str | os.PathLike[str]) -> str | None:
    """``"image"``, ``"video"`` or ``None`` from the file name's extension."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def content_type(path: str | os.PathLike[str]) -> str | None:
    """MIME type guessed from the extension (``None`` when unknown)."""
    return _CONTENT_TYPES.get(Path(path).suffix.lower())


def file_sha256(
    path: str | os.PathLike[str], *, chunk: int = 1 << 20, max_bytes: int | None = MAX_VIDEO_BYTES
) -> str:
    """Hex SHA-256 of a regular file's bytes.

    Raises :class:`MediaError` when it cannot be read, is not a regular file (FIFO, device,
    socket; never blocks) or has more than ``max_bytes`` bytes.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> _ = open(p, "wb").write(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    from imm_analysis.io.paths import PathError, check_regular, open_regular

    digest = hashlib.sha256()
    read = 0
    try:
        check_regular(path)
        with open_regular(path) as fh:
            while block := fh.read(chunk):
                read += len(block)
                if max_bytes is not None and read > max_bytes:
                    raise MediaError(path, f"file has over {max_bytes:,} bytes (MAX_VIDEO_BYTES)")
                digest.update(block)
    except PathError as exc:
        raise MediaError(path, exc.reason) from None
    except OSError as exc:
        raise MediaError(path, f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    return digest.hexdigest()


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = MAX_PIXELS,
    data: bytes | None = None,
    reduce: int = 1,
    fit: tuple[int, int] | None = None,
    max_decode_bytes: int | None = MAX_DECODE_BYTES,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode an image file to an RGB ``uint8`` array with its EXIF orientation applied.

    JPEGs can be decoded at 1/2, 1/4 or 1/8 of their size (libjpeg's DCT scaling, which skips
    most of the decoding work and filters properly): ``info.scale`` then says how many original
    pixels one returned pixel spans, and ``info.width`` / ``info.height`` stay the original size.
    A point ``x`` of the returned array is at ``(x + 0.5) * info.scale - 0.5`` in the original
    (see :func:`to_original`). Other formats are always decoded at full size (``scale`` 1).

    Parameters
    ----------
    path : path-like
        The image file (also used in error messages when ``data`` is given).
    max_pixels : int or None, default=MAX_PIXELS
        Refuse images whose width x height (read from the header, before decoding) exceeds this.
    data : bytes, optional
        The file's bytes when already read.
    reduce : {1, 2, 4, 8}, default=1
        Largest reduction allowed (1 = full size).
    fit : (int, int), optional
        ``(width, height)`` the caller will shrink the image into (e.g. a detector's input size):
        the reduction is then capped so that the decoded image still covers that size, i.e. it
        is never smaller than what the caller will make of it.
    max_decode_bytes : int or None, default=MAX_DECODE_BYTES
        Refuse images whose decoding would take more memory than this (estimated from the
        header, after any reduction), so a small file with huge dimensions is never decoded.

    Returns
    -------
    rgb : ndarray of uint8, shape (height, width, 3)
    info : ImageInfo

    Raises
    ------
    MediaError
        Zero-byte, unreadable, truncated, corrupt or non-image files, files that are not regular
        files (FIFOs, devices, sockets), and images over the pixel, byte or decoding-memory limits.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> p = os.path.join(tempfile.mkdtemp(), "g.png")
    >>> Image.fromarray(np.zeros((4, 6), np.uint8)).save(p)
    >>> rgb, info = read_image(p)
    >>> rgb.shape, info.width, info.height
    ((4, 6, 3), 6, 4)
    """
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    if data is None:
        data, _ = read_media_bytes(path)
    if not data:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        # Pillow's global MAX_IMAGE_PIXELS is left alone: our limit is checked here, per call,
        # from the header, before any pixel is decoded
        im: Any = Image.open(io.BytesIO(data))
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            raise MediaError(path, f"image has {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
        if im.format != "JPEG":  # getexif() of a PNG may decode the pixels: check the memory first
            _check_decode_bytes(path, im, max_decode_bytes)
        exif = im.getexif()
        orientation = exif.get(0x0112)
        produce = _exif_time(exif)
        ow, oh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)  # size once transposed
        scale = _reduction(ow, oh, reduce, fit) if im.format == "JPEG" else 1
        if scale > 1:
            im.draft("RGB", (max(1, w // scale), max(1, h // scale)))  # Pillow picks w // size
            scale = max(1, round(w / im.size[0]))  # what libjpeg actually did
        _check_decode_bytes(path, im, max_decode_bytes)  # after any reduction
        im.load()
        mode = im.mode
        im = ImageOps.exif_transpose(im)
        rgb = _to_rgb(im)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(path, f"image is over the pixel limit of Pillow (PIL.Image.MAX_IMAGE_PIXELS, left as set): {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError) as exc:
        raise MediaError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None
    info = ImageInfo(
        width=ow if scale > 1 else rgb.shape[1], height=oh if scale > 1 else rgb.shape[0],
        orientation=int(orientation) if orientation else None,
        content_type=Image.MIME.get(im.format or "", None) or content_type(path), produce_time=produce, mode=mode,
        scale=scale,
    )
    return rgb, info


def _reduction(width: int, height: int, reduce: int, fit: tuple[int, int] | None) -> int:
    """Largest power of two <= ``reduce`` (at most 8) keeping the image at least as large as its fit in ``fit``."""
    limit = min(8, max(1, int(reduce)))
    if fit is not None:
        fw, fh = fit
        limit = min(limit, int(max(width / fw, height / fh)))  # image / s still >= its size inside fit
    s = 1
    while s * 2 <= limit:
        s *= 2
    return s


def to_original(points: np.ndarray, scale: int) -> np.ndarray:
    """Map pixel coordinates of an image decoded at ``1 / scale`` back to the original image.

    Examples
    --------
    >>> to_original(np.array([[0.0, 10.0]]), 2)
    array([[ 0.5, 20.5]])
    """
    points = np.asarray(points, dtype=np.float64)
    return points if scale == 1 else (points + 0.5) * scale - 0.5


def from_original(points: np.ndarray, scale: int) -> np.ndarray:
    """Inverse of :func:`to_original`: original pixel coordinates in an image decoded at ``1 / scale``."""
    points = np.asarray(points, dtype=np.float64)
    return points if scale == 1 else (points + 0.5) / scale - 0.5


_BAND_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def _check_decode_bytes(path: str | os.PathLike[str], im, limit: int | None) -> None:
    need = _decode_bytes(im)
    if limit is not None and need > limit:
        w, h = im.size
        raise MediaError(path, f"image of {w}x{h} pixels ({im.mode}) needs about {need:,} bytes to decode, "
                         f"over the limit of {limit:,} (MAX_DECODE_BYTES)")


def _decode_bytes(im) -> int:
    """Estimated peak memory of decoding ``im`` to RGB: its pixels, float work copies, the RGB array, alpha compositing."""
    w, h = im.size  # after any draft() reduction
    bands = len(im.getbands())
    per = bands * _BAND_BYTES.get(im.mode, 1)
    if im.mode in _BAND_BYTES:
        per += 8  # the float64 copy of 16-bit and float images
    if "A" in im.mode or (im.mode == "P" and "transparency" in im.info):
        per += 12  # RGBA conversion, white background and composite
    return w * h * (per + 3)  # + the RGB output


def _exif_time(exif) -> datetime | None:
    raw = None
    try:
        raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, else DateTime
        if raw:
            return datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def _to_rgb(im) -> np.ndarray:
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        gray = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's size, frame rate, frame count and duration (raises :class:`MediaError`)."""
    cv2 = require("cv2", purpose="video_info")
    cap = _open_video(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    finally:
        cap.release()
    if not (0 < fps < math.inf) or w <= 0 or h <= 0:  # NaN or infinite rates too
        raise MediaError(path, "video has no readable frames (unknown frame rate or size)")
    return VideoInfo(width=w, height=h, fps=fps, frame_count=n, duration=n / fps if n > 0 else float("nan"))


def _open_video(path):
    cv2 = require("cv2", purpose="reading videos")

    from imm_analysis.io.paths import PathError, check_regular

    p = Path(path)
    try:
        st = check_regular(p)
    except PathError as exc:
        raise MediaError(path, exc.reason) from None
    if st.st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    if st.st_size > MAX_VIDEO_BYTES:
        raise MediaError(path, f"file has {st.st_size:,} bytes, over the limit of {MAX_VIDEO_BYTES:,} (MAX_VIDEO_BYTES)")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise MediaError(path, "not a readable video (OpenCV could not open it)")
    return cap


def sample_video(
    path: str | os.PathLike[str], fps: float = 1.0, *, max_pixels: int | None = MAX_PIXELS
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_index, timestamp_seconds, rgb)`` for frames sampled every ``1 / fps`` seconds.

    The first frame is always sampled; then the frame nearest to each multiple of ``1 / fps``.
    Frames are read sequentially (``grab`` skips the others without decoding them), so the cost is
    one demux per frame and one decode per sampled frame. Raises :class:`MediaError` when the file
    cannot be opened or yields no frame at all; warns with :class:`MediaWarning` when it ends
    before its announced frame count or a sampled frame cannot be decoded (a partly corrupted
    file is used as far as it goes).

    Examples
    --------
    >>> frames = sample_video("../shared/faces/video/short_hamilton_clip.mp4", 1.0)  # doctest: +SKIP
    >>> index, seconds, rgb = next(frames)  # doctest: +SKIP
    """
    cv2 = require("cv2", purpose="sample_video")
    if not 0 < fps < math.inf:
        raise ValueError(f"video_fps must be a finite number > 0, got {fps!r}")
    info = video_info(path)
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise MediaError(path, f"video frames have {info.width}x{info.height} pixels, over the limit of {max_pixels:,}")
    # at most one pick per frame: a rate above the video's samples every frame (a step below one
    # frame would add ever smaller steps without end)
    step = max(info.fps / fps, 1.0)
    cap = _open_video(path)
    try:
        index, next_pick, yielded, failed = 0, 0.0, 0, 0
        while True:
            if not cap.grab():
                break
            if index >= round(next_pick):
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    yielded += 1
                    yield index, index / info.fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                else:
                    failed += 1
                while round(next_pick) <= index:
                    next_pick += step
            index += 1
    finally:
        cap.release()
    if yielded == 0:
        raise MediaError(path, "video yielded no decodable frame")
    if failed or (info.frame_count > 0 and index < info.frame_count):
        warnings.warn(
            f"{path}: video used in part: {index} of {info.frame_count} frames read, "
            f"{failed} sampled frame(s) could not be decoded",
            MediaWarning, stacklevel=2)
