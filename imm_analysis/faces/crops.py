"""Rows of pre-aligned crops (:func:`~imm_analysis.faces.embed.embed_crops`): one face per file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imm_analysis._optional import require
from imm_analysis.faces.prefetch import _Loaded
from imm_analysis.faces.rows import _row

if TYPE_CHECKING:
    from imm_analysis.faces.model import FaceModel

__all__: list[str] = []


_CROP_PAD = 24  # black border around a crop for the detector pass (crop + 2 x 24 = 160 = its input size)


def _crop_input(model: FaceModel, rgb: np.ndarray, detect: bool) -> tuple[np.ndarray, Any]:
    """The 112x112 crop and its detector input (None without ``detect``); run in the loader threads."""
    cv2 = require("cv2", purpose="embed_crops")
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
        boxes = np.stack([np.asarray(faces[i].box)[:4] for i in idx])
        if model.has_landmarks_3d or model.has_attributes:  # these models take one image per call
            for j, i in enumerate(idx):
                if model.has_landmarks_3d:
                    pose[i] = np.asarray(model.pose_3d(faces[i].crop, boxes[j : j + 1]))[0]
                if attrs is not None:
                    attrs[i] = np.asarray(model.attributes(faces[i].crop, boxes[j : j + 1]))[0]
        if not model.has_landmarks_3d:
            pose[idx] = pose_from_keypoints(np.stack([np.asarray(faces[i].kps) for i in idx]))
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

