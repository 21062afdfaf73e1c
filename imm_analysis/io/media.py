"""Decode images and sample video frames for the local face pipeline.

Images are returned as RGB ``uint8`` arrays of shape ``(height, width, 3)`` with the EXIF
orientation applied; grayscale, 16-bit, palette, CMYK and alpha images are converted (alpha is
composited onto white). Images with more than ``max_pixels`` pixels are refused before their
pixels are decoded, which guards against decompression bombs. Videos are read with OpenCV and
sampled at a fixed rate.

Every failure raises :class:`MediaError`, which names the file and the reason, so a batch can
record it and go on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "MAX_PIXELS",
    "MediaError",
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

_CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
    ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo", ".mkv": "video/x-matroska",
}


class MediaError(ValueError):
    """A file that cannot be used as an image or a video; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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


def file_sha256(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (raises :class:`MediaError` when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise MediaError(path, f"cannot read file: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = MAX_PIXELS,
    data: bytes | None = None,
    reduce: int = 1,
    fit: tuple[int, int] | None = None,
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

    Returns
    -------
    rgb : ndarray of uint8, shape (height, width, 3)
    info : ImageInfo

    Raises
    ------
    MediaError
        Zero-byte, unreadable, truncated, corrupt or non-image files, and images over the pixel limit.

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
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise MediaError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if not data:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        # our own limit is checked below from the header; silence Pillow's lower default limit
        with _pil_pixel_limit(None):
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise MediaError(path, f"image has {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
            exif = im.getexif()
            orientation = exif.get(0x0112)
            produce = _exif_time(exif)
            ow, oh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)  # size once transposed
            scale = _reduction(ow, oh, reduce, fit) if im.format == "JPEG" else 1
            if scale > 1:
                im.draft("RGB", (max(1, w // scale), max(1, h // scale)))  # Pillow picks w // size
                scale = max(1, round(w / im.size[0]))  # what libjpeg actually did
            im.load()
            mode = im.mode
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(path, f"not a readable image ({type(exc).__name__}: {exc})") from exc
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


class _pil_pixel_limit:
    def __init__(self, value: int | None) -> None:
        self.value = value

    def __enter__(self) -> None:
        from PIL import Image

        self.old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = self.value

    def __exit__(self, *exc: object) -> None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = self.old


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
    import cv2

    cap = _open_video(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    finally:
        cap.release()
    if fps <= 0 or w <= 0 or h <= 0:
        raise MediaError(path, "video has no readable frames (unknown frame rate or size)")
    return VideoInfo(width=w, height=h, fps=fps, frame_count=n, duration=n / fps if n > 0 else float("nan"))


def _open_video(path):
    import cv2

    p = Path(path)
    if not p.is_file():
        raise MediaError(path, "no such file")
    if p.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
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
    cannot be opened or yields no frame at all.
    """
    import cv2

    if not fps > 0:
        raise ValueError(f"video_fps must be > 0, got {fps!r}")
    info = video_info(path)
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise MediaError(path, f"video frames have {info.width}x{info.height} pixels, over the limit of {max_pixels:,}")
    step = info.fps / fps
    cap = _open_video(path)
    try:
        index, next_pick, yielded = 0, 0.0, 0
        while True:
            if not cap.grab():
                break
            if index >= round(next_pick):
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    yielded += 1
                    yield index, index / info.fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                while round(next_pick) <= index:
                    next_pick += step
            index += 1
    finally:
        cap.release()
    if yielded == 0:
        raise MediaError(path, "video yielded no decodable frame")
