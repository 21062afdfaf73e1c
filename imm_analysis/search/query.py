"""Faces of a query image: every face (boxes, embeddings) or the largest one, as IMM takes it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.faces.model import FaceModel

__all__ = ["NoFaceError", "ImageFaces", "image_faces", "largest_face"]


class NoFaceError(ValueError):
    """A query image in which the detector found no face; the message names the image.

    Picklable with its field, so it survives a worker process.

    Examples
    --------
    >>> import pickle
    >>> err = pickle.loads(pickle.dumps(NoFaceError("query.jpg")))
    >>> err.image, str(err)
    ('query.jpg', 'query.jpg: no face found in the query image')
    """

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(f"{image}: no face found in the query image")

    def __reduce__(self):
        return (type(self), (self.image,))


@dataclass
class ImageFaces:
    """Faces of one image: ``boxes`` (n, 4) as ``left, top, width, height`` in pixels,
    ``scores`` (n,) detector scores and ``embeddings`` (n, dim) float32, largest face first."""

    name: str
    boxes: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray


def _name(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    if isinstance(image, np.ndarray):
        return f"<array {'x'.join(map(str, image.shape))}>"
    return f"<{type(image).__name__}>"


def _rgb(image: Any) -> np.ndarray:
    from imm_analysis.io.media import read_image

    if isinstance(image, (str, os.PathLike)):
        rgb, _ = read_image(Path(image).expanduser())
        return rgb
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"a query image array must have shape (h, w, 3) RGB, got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"a query image array must be uint8 RGB, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr[:, :, :3])


def image_faces(image: Any, model: FaceModel) -> ImageFaces:
    """Detect, align and embed every face of ``image`` (a path or an RGB uint8 array).

    Raises
    ------
    NoFaceError
        When no face is found.
    imm_analysis.io.media.MediaError
        When the file cannot be read as an image.

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> faces = image_faces("../shared/faces/group/t1.jpg", model)  # doctest: +SKIP
    >>> len(faces.boxes)  # doctest: +SKIP
    6
    """
    name = _name(image)
    rgb = _rgb(image)
    boxes, kps = model.detect(rgb)
    if not len(boxes):
        raise NoFaceError(name)
    x1, y1 = np.clip(boxes[:, 0], 0, rgb.shape[1]), np.clip(boxes[:, 1], 0, rgb.shape[0])
    x2, y2 = np.clip(boxes[:, 2], 0, rgb.shape[1]), np.clip(boxes[:, 3], 0, rgb.shape[0])
    ltwh = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(np.float64)
    order = np.argsort(-(ltwh[:, 2] * ltwh[:, 3]), kind="stable")
    emb = model.embed(model.align(rgb, kps[order]))
    return ImageFaces(name, ltwh[order], boxes[order, 4].astype(np.float64), emb.astype(np.float32, copy=False))


def largest_face(image: Any, model: FaceModel) -> np.ndarray:
    """The embedding (float32, unit length) of the largest face of ``image``, as IMM's
    ``CreateFacesSearchingTask`` and ``CompareImageFaces`` take it.

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> largest_face("../shared/faces/video/lin-manuel-miranda.png", model).shape  # doctest: +SKIP
    (128,)
    """
    return image_faces(image, model).embeddings[0]
