"""Face alignment: the similarity transform onto insightface's ArcFace template, and box crops.

Pure numpy plus OpenCV's ``warpAffine``; no model runs here.
"""

from __future__ import annotations

import numpy as np

from imm_analysis._optional import require

__all__ = ["ARCFACE_TEMPLATE", "align", "box_crops", "crop_reduction", "cv2_invert"]

#: Where insightface's ArcFace alignment puts the 5 keypoints in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)



def align(rgb: np.ndarray, kps: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp each face to insightface's ArcFace 112x112 template (similarity transform on the 5 keypoints).

    Returns an array of shape ``(n, size, size, 3)`` uint8.

    Examples
    --------
    >>> rgb = np.zeros((200, 200, 3), np.uint8)
    >>> align(rgb, ARCFACE_TEMPLATE[None]).shape
    (1, 112, 112, 3)
    """
    cv2 = require("cv2", purpose="face alignment")
    kps = np.asarray(kps, dtype=np.float64).reshape(-1, 5, 2)
    dst = ARCFACE_TEMPLATE * (size / 112.0)
    out = np.empty((len(kps), size, size, 3), np.uint8)
    for i, k in enumerate(kps):
        M = _similarity(k, dst)
        out[i] = cv2.warpAffine(rgb, M, (size, size), borderValue=0.0)
    return out


def box_crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Square float32 crops of ``size`` pixels around each box (1.5 x its longer side), with their 2x3 matrices.

    Examples
    --------
    >>> crops, mats = box_crops(np.zeros((50, 50, 3), np.uint8), np.array([[10, 10, 30, 30]]), 96)
    >>> crops.shape, mats[0].shape
    ((1, 96, 96, 3), (2, 3))
    """
    cv2 = require("cv2", purpose="face crops")
    crops = np.empty((len(boxes), size, size, 3), np.float32)
    mats = []
    for i, b in enumerate(boxes):
        w, h = b[2] - b[0], b[3] - b[1]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        s = size / (max(w, h) * 1.5)
        M = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float64)
        crops[i] = cv2.warpAffine(rgb, M, (size, size), borderValue=0.0)
        mats.append(M)
    return crops, mats


def crop_reduction(kps: np.ndarray, scale: int) -> int:
    """Largest reduction <= ``scale`` at which no face is upsampled by alignment (``kps`` in original pixels).

    Examples
    --------
    >>> crop_reduction(ARCFACE_TEMPLATE[None] * 8, 8)  # a face 8 times the crop's size
    8
    >>> crop_reduction(ARCFACE_TEMPLATE[None], 8)  # already crop-sized: full resolution
    1
    """
    need = scale
    for k in kps:
        m = _similarity(np.asarray(k, np.float64), ARCFACE_TEMPLATE)
        zoom = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # crop pixels per original pixel
        while need > 1 and zoom * need > 1.0:
            need //= 2
    return need


def cv2_invert(M: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix.

    Examples
    --------
    >>> cv2_invert(np.array([[2.0, 0, 1], [0, 2.0, 0]]))
    array([[ 0.5,  0. , -0.5],
           [ 0. ,  0.5,  0. ]])
    """
    A = np.vstack([M, [0, 0, 1]])
    return np.linalg.inv(A)[:2]


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping src points onto dst, as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    R = u @ np.diag(d) @ vt
    var = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var if var > 0 else 1.0
    t = mu_d - scale * R @ mu_s
    return np.hstack([scale * R, t[:, None]])

