"""The local pipeline's ``sharpness`` and ``face_quality``.

``sharpness``
    The variance of the Laplacian of the aligned 112x112 crop's grey levels, over its central
    80x80 pixels (16 px trimmed on each side, so hair and background edges count less), mapped
    to [0, 1] by ``1 - exp(-variance / SHARPNESS_SCALE)``. A flat crop scores 0.
    It is a separate column, not IMM's ``Sharpness`` model.

``face_quality``
    The product of four terms, each in [0, 1] and equal to 1 when that aspect is good enough:

    * detector confidence: ``(det_score - DET_LOW) / (DET_HIGH - DET_LOW)``, clipped;
    * sharpness: ``sharpness / SHARP_GOOD``, clipped;
    * size: ``(min(width, height) - SIZE_LOW) / (SIZE_HIGH - SIZE_LOW)`` in pixels of the original image, clipped;
    * pose: ``(cos(yaw) * cos(pitch)) ** POSE_POWER`` (0.90 at 20 degrees of yaw, 0.78 at 30, 0.63 at 40).

    Being a product, any one weak aspect pulls the score down; a term that is unknown (NaN, e.g.
    the pose of a crop embedded with ``detect=False``) is left out. The constants are calibrated on
    ``../shared/faces`` with the 128-d test pack so that IMM's rule ``face_quality > 0.8`` keeps
    faces whose embeddings agree with the same person's other faces: mean same-person similarity
    falls for faces turned by more than about 30 degrees, for blurred faces (sharpness below ~0.3)
    and for low detector scores, which are the faces this score puts under 0.8 (notebook 03 plots
    quality against same-person similarity). Another detector may score faces differently:
    re-check that plot before relying on the 0.8 cut with another pack.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SHARPNESS_SCALE", "SHARP_GOOD", "DET_LOW", "DET_HIGH", "SIZE_LOW", "SIZE_HIGH", "POSE_POWER",
    "sharpness", "face_quality",
]

SHARPNESS_SCALE = 150.0
SHARP_GOOD = 0.35
DET_LOW, DET_HIGH = 0.3, 0.6
SIZE_LOW, SIZE_HIGH = 16.0, 64.0
POSE_POWER = 1.75


def sharpness(crops: np.ndarray) -> np.ndarray:
    """Sharpness in [0, 1] of aligned RGB 112x112 face crops (see the module docstring).

    Examples
    --------
    >>> flat = np.full((1, 112, 112, 3), 128, np.uint8)
    >>> noisy = np.random.default_rng(0).integers(0, 255, (1, 112, 112, 3)).astype(np.uint8)
    >>> float(sharpness(flat)[0]), bool(sharpness(noisy)[0] > 0.99)
    (0.0, True)
    """
    from imm_analysis._optional import require

    cv2 = require("cv2", purpose="sharpness")
    crops = np.asarray(crops)
    out = np.empty(len(crops), np.float64)
    for i, c in enumerate(crops):
        gray = cv2.cvtColor(c, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        y0, x0 = int(h * 16 / 112), int(w * 16 / 112)
        lap = cv2.Laplacian(gray[y0 : h - y0, x0 : w - x0], cv2.CV_64F)
        out[i] = lap.var()
    return 1.0 - np.exp(-out / SHARPNESS_SCALE)


def face_quality(
    det_score: np.ndarray,
    sharp: np.ndarray,
    size: np.ndarray,
    pitch: np.ndarray,
    yaw: np.ndarray,
) -> np.ndarray:
    """Combine detector score, sharpness, size (pixels) and pose (degrees) into ``face_quality`` in [0, 1].

    Examples
    --------
    >>> face_quality([0.9], [0.9], [120], [0.0], [0.0]).round(3)
    array([1.])
    >>> face_quality([0.9], [0.9], [120], [0.0], [40.0]).round(3)
    array([0.627])
    >>> face_quality([0.9], [np.nan], [120], [np.nan], [np.nan]).round(3)
    array([1.])
    """
    det = np.clip((np.asarray(det_score, np.float64) - DET_LOW) / (DET_HIGH - DET_LOW), 0, 1)
    sh = np.clip(np.asarray(sharp, np.float64) / SHARP_GOOD, 0, 1)
    sz = np.clip((np.asarray(size, np.float64) - SIZE_LOW) / (SIZE_HIGH - SIZE_LOW), 0, 1)
    p, y = np.radians(np.asarray(pitch, np.float64)), np.radians(np.asarray(yaw, np.float64))
    pose = np.clip(np.cos(y) * np.cos(p), 0, 1) ** POSE_POWER
    terms = np.stack(np.broadcast_arrays(det, sh, sz, pose))
    known = np.isfinite(terms)
    q = np.prod(np.where(known, terms, 1.0), axis=0)
    return np.where(known.any(axis=0), q, np.nan)
