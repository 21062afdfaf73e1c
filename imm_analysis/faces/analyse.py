"""From decoded images to face records: the one route of :meth:`FaceModel.analyse`.

For each image: detect (SCRFD), map boxes and keypoints to original pixels when the image was
decoded reduced, decode finer when a face would otherwise be upsampled by alignment, align to
the ArcFace template, then pose (68-point 3D landmarks when the pack has them, else the 5
keypoints) and age/gender. What comes next is scoring (:mod:`imm_analysis.faces.rows`) and
recognition with :meth:`FaceModel.embed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imm_analysis.faces.align import align, crop_reduction
from imm_analysis.io.media import from_original, to_original

if TYPE_CHECKING:
    from imm_analysis.faces.model import FaceModel

__all__ = ["Decoded", "FaceRecords", "analyse_image"]


@dataclass
class Decoded:
    """An image as decoded for the pipeline.

    Attributes
    ----------
    rgb : ndarray of uint8, shape (h, w, 3)
        The pixels, decoded at ``1 / scale`` of the original size.
    scale : int, default=1
        Original pixels per decoded pixel (JPEG reduced decoding).
    finer : callable, optional
        ``finer(reduce) -> (rgb, scale)``: the image decoded again at a reduction of at most
        ``reduce``; used when a face needs more pixels than ``rgb`` has.
    prepared : tuple, optional
        :meth:`FaceModel.detector_input` of ``rgb``, when already made (e.g. in a loader thread).

    Examples
    --------
    >>> Decoded(np.zeros((4, 4, 3), np.uint8)).scale
    1
    """

    rgb: np.ndarray
    scale: int = 1
    finer: Callable[[int], tuple[np.ndarray, int]] | None = None
    prepared: Any = None


@dataclass
class FaceRecords:
    """The faces of one image, by descending detector score; coordinates in original pixels.

    Attributes
    ----------
    boxes : ndarray of float32, shape (n, 5)
        ``x1, y1, x2, y2, det_score`` (not clipped to the image).
    kps : ndarray of float32, shape (n, 5, 2)
        The 5 keypoints.
    crops : ndarray of uint8, shape (n, 112, 112, 3)
        Faces aligned to the ArcFace template.
    pose : ndarray of float64, shape (n, 3)
        Pitch, roll, yaw in degrees.
    attributes : ndarray of float64, shape (n, 2), or None
        Age in years and gender (0 female, 1 male) when the pack has an attribute model.
    align_scale : int
        The reduction of the pixels the crops were aligned from (1 = full size).

    Examples
    --------
    >>> empty = FaceRecords(np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32),
    ...                     np.zeros((0, 112, 112, 3), np.uint8), np.zeros((0, 3)), None, 1)
    >>> len(empty), empty.scores.shape
    (0, (0,))
    """

    boxes: np.ndarray
    kps: np.ndarray
    crops: np.ndarray
    pose: np.ndarray
    attributes: np.ndarray | None
    align_scale: int = 1

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def scores(self) -> np.ndarray:
        """Detector scores, ``boxes[:, 4]``."""
        return self.boxes[:, 4]


def analyse_image(model: FaceModel, image: np.ndarray | Decoded) -> FaceRecords:
    """:meth:`FaceModel.analyse` of one image.

    Examples
    --------
    >>> model = FaceModel("../shared/models/mbf128_det500m")  # doctest: +SKIP
    >>> analyse_image(model, np.zeros((64, 64, 3), np.uint8)).crops.shape  # doctest: +SKIP
    (0, 112, 112, 3)
    """
    from imm_analysis.faces.pose import pose_from_keypoints

    im = image if isinstance(image, Decoded) else Decoded(np.asarray(image))
    rgb, scale = im.rgb, im.scale
    boxes, kps = model.detect(rgb, prepared=im.prepared)
    im.prepared = None
    if scale > 1:
        boxes[:, :4] = to_original(boxes[:, :4].reshape(-1, 2), scale).reshape(-1, 4)
        kps = to_original(kps, scale).astype(np.float32)
        need = crop_reduction(kps, scale)
        if need < scale and im.finer is not None:  # a face would be upsampled: decode finer
            rgb, scale = im.finer(need)
        crops = align(rgb, from_original(kps, scale))
    else:
        crops = align(rgb, kps)
    if not len(boxes):
        return FaceRecords(boxes, kps, crops, np.zeros((0, 3)), None, scale)
    in_rgb = boxes[:, :4] if scale == 1 else from_original(boxes[:, :4].reshape(-1, 2), scale).reshape(-1, 4)
    pose = model.pose_3d(rgb, in_rgb)
    if pose is None:
        pose = pose_from_keypoints(kps)
    return FaceRecords(boxes, kps, crops, pose, model.attributes(rgb, in_rgb), scale)
