"""Head pose (pitch, roll, yaw in degrees) from the detector's 5 keypoints or 68 3D landmarks.

Method
------
A scaled-orthographic (weak perspective) camera is fitted by least squares to map a mean 3D
face onto the detected points, the fitted 2x3 matrix is orthonormalised into a rotation, and the
rotation is read as Euler angles. With 5 keypoints the mean face is the 5-point subset (eye
centres, nose tip, mouth corners) of insightface's 68-point mean shape (``meanshape_68.pkl``),
so the 5-keypoint pose and the pose from a pack's ``1k3d68`` landmark model use the same frame.

Sign conventions (IMM's ``HeadPose``)
-------------------------------------
IMM does not publish signs; its high-definition rule only uses absolute values
(``|pitch|, |roll|, |yaw| < 30``). This module uses, as seen in the image:

* ``yaw > 0``: the face turns toward the image's right edge (the person's left);
* ``pitch > 0``: the face tilts up (chin raised, nose above its frontal position);
* ``roll > 0``: the head tilts clockwise (the eye on the image's right is lower).

A frontal face is ``(0, 0, 0)``. Angles are in degrees in ``[-90, 90]`` for pitch and yaw and
``(-180, 180]`` for roll. With only 5 points, pitch is the least precise of the three (the nose
is the only depth cue); expect a few degrees of bias on unusual faces.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MEAN_FACE_5", "pose_from_points", "pose_from_keypoints"]

#: Mean 3D face (x right, y down, z toward the camera) at the detector's 5 keypoints, in the order
#: left eye, right eye (as seen in the image), nose tip, left and right mouth corners. x and y are
#: insightface's ArcFace alignment template (scaled to an inter-ocular distance of 0.53), except the
#: nose tip's height: SCRFD puts it lower than the template does, at 0.58 of the way from the eyes
#: to the mouth (median over the frontal portraits of ../shared/faces/photos; the template says 0.49),
#: which would otherwise read as about 10 degrees of downward pitch on every frontal face. Depths z
#: come from insightface's 68-point mean shape (eye centres = mean of points 36-41 / 42-47, nose
#: tip 30, mouth corners 48 / 54).
MEAN_FACE_5 = np.array(
    [
        [-0.265, -0.303, 0.315],
        [0.265, -0.303, 0.315],
        [0.0, 0.052, 0.60],
        [-0.219, 0.309, 0.38],
        [0.219, 0.309, 0.38],
    ],
    dtype=np.float64,
)


#: Least-squares solver of the 5-point fit (pseudo-inverse of ``[MEAN_FACE_5, 1]``), computed once.
_PINV_MEAN_FACE_5 = np.linalg.pinv(np.hstack([MEAN_FACE_5, np.ones((5, 1))]))


def pose_from_points(model_points: np.ndarray, image_points: np.ndarray) -> tuple[float, float, float]:
    """Fit a weak-perspective camera and return ``(pitch, roll, yaw)`` in degrees (conventions above).

    Parameters
    ----------
    model_points : ndarray, shape (n, 3)
        Mean 3D face in the frame x right, y down, z toward the camera.
    image_points : ndarray, shape (n, 2) or (n, 3)
        The detected points in image pixels (a third column is ignored).
    """
    X = np.asarray(model_points, dtype=np.float64)
    Y = np.asarray(image_points, dtype=np.float64)[:, :2]
    if not np.isfinite(Y).all():
        return (float("nan"),) * 3
    A = np.hstack([X, np.ones((len(X), 1))])
    P, *_ = np.linalg.lstsq(A, Y, rcond=None)  # (4, 2): Y = A @ P
    r1, r2 = P[:3, 0], P[:3, 1]
    n1, n2 = np.linalg.norm(r1), np.linalg.norm(r2)
    if n1 < 1e-9 or n2 < 1e-9:
        return (float("nan"),) * 3
    r1, r2 = r1 / n1, r2 / n2
    # orthonormalise the two rows symmetrically, then complete the rotation
    u, _, vt = np.linalg.svd(np.stack([r1, r2]), full_matrices=False)
    r1, r2 = u @ vt
    R = np.stack([r1, r2, np.cross(r1, r2)])
    sy = np.hypot(R[0, 0], R[1, 0])
    if sy > 1e-6:
        x = np.arctan2(R[2, 1], R[2, 2])
        y = np.arctan2(-R[2, 0], sy)
        z = np.arctan2(R[1, 0], R[0, 0])
    else:  # pragma: no cover - gimbal lock, only at +-90 degrees yaw
        x = np.arctan2(-R[1, 2], R[1, 1])
        y = np.arctan2(-R[2, 0], sy)
        z = 0.0
    # with x right, y down and z toward the camera, a chin-up tilt, a turn toward the image's right
    # and a clockwise tilt are all positive rotations about x, y and z respectively
    pitch, yaw, roll = np.degrees(x), np.degrees(y), np.degrees(z)
    return float(pitch), float(roll), float(yaw)


def pose_from_keypoints(kps: np.ndarray) -> np.ndarray:
    """Pose of each face from its 5 keypoints.

    Parameters
    ----------
    kps : ndarray, shape (n, 5, 2)
        Keypoints in the detector's order (eyes, nose, mouth corners; left/right as in the image).

    Returns
    -------
    ndarray of float64, shape (n, 3)
        Columns ``pitch, roll, yaw`` in degrees.

    Examples
    --------
    >>> frontal = MEAN_FACE_5[:, :2] * 100 + 200
    >>> bool(np.abs(pose_from_keypoints(frontal[None])).max() < 1e-6)
    True
    """
    kps = np.asarray(kps, dtype=np.float64)
    if kps.ndim == 2:
        kps = kps[None]
    return _pose_batch(MEAN_FACE_5, kps)


def _pose_batch(model_points: np.ndarray, image_points: np.ndarray) -> np.ndarray:
    """:func:`pose_from_points` for many faces at once (same model points): ``(n, 3)`` pitch, roll, yaw."""
    X = np.asarray(model_points, dtype=np.float64)
    Y = np.asarray(image_points, dtype=np.float64)[..., :2]
    out = np.full((len(Y), 3), np.nan)
    if not len(Y):
        return out
    pinv = _PINV_MEAN_FACE_5 if X is MEAN_FACE_5 else np.linalg.pinv(np.hstack([X, np.ones((len(X), 1))]))
    P = pinv @ Y  # (n, 4, 2): least squares per face, Y = A @ P
    r1, r2 = P[:, :3, 0], P[:, :3, 1]
    n1, n2 = np.linalg.norm(r1, axis=1), np.linalg.norm(r2, axis=1)
    ok = np.isfinite(Y).all(axis=(1, 2)) & (n1 >= 1e-9) & (n2 >= 1e-9)
    if not ok.any():
        return out
    rows = np.stack([r1[ok] / n1[ok, None], r2[ok] / n2[ok, None]], axis=1)  # (m, 2, 3)
    u, _, vt = np.linalg.svd(rows, full_matrices=False)
    r12 = u @ vt
    r1, r2 = r12[:, 0], r12[:, 1]
    R = np.stack([r1, r2, np.cross(r1, r2)], axis=1)
    sy = np.hypot(R[:, 0, 0], R[:, 1, 0])
    regular = sy > 1e-6
    x = np.where(regular, np.arctan2(R[:, 2, 1], R[:, 2, 2]), np.arctan2(-R[:, 1, 2], R[:, 1, 1]))
    y = np.arctan2(-R[:, 2, 0], sy)
    z = np.where(regular, np.arctan2(R[:, 1, 0], R[:, 0, 0]), 0.0)
    out[ok] = np.degrees(np.stack([x, z, y], axis=1))  # pitch, roll, yaw (conventions above)
    return out
