"""Face quality and head pose: IMM's high-definition face rule, summaries and diagnosis.

Pure computation on figures frames (see :mod:`imm_analysis.schema`); nothing here plots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["HD_FAIL_REASONS", "hd_mask", "hd_faces"]

#: Values of the ``hd_fail`` column, in the order the criteria are checked.
HD_FAIL_REASONS = ("missing", "too_small", "extreme_pose", "low_quality")


def _col(figures: pd.DataFrame, name: str) -> np.ndarray:
    if name not in figures.columns:
        return np.full(len(figures), np.nan)
    return pd.to_numeric(figures[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def hd_mask(
    figures: pd.DataFrame, *, min_size: float = 75, max_pose: float = 30, min_quality: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised core of :func:`hd_faces`.

    Returns
    -------
    is_hd : ndarray of bool, shape (n,)
    reason : ndarray of int8, shape (n,)
        -1 where the face is high-definition, else the index into :data:`HD_FAIL_REASONS`
        of the first criterion it fails.
    """
    w, h = _col(figures, "width"), _col(figures, "height")
    pose = np.column_stack([_col(figures, c) for c in ("pitch", "roll", "yaw")]) if len(figures) else np.empty((0, 3))
    q = _col(figures, "face_quality")
    missing = np.isnan(w) | np.isnan(h) | np.isnan(pose).any(axis=1) | np.isnan(q)
    with np.errstate(invalid="ignore"):
        too_small = ~((w > min_size) & (h > min_size))
        extreme = ~(np.abs(pose) < max_pose).all(axis=1)
        low = ~(q > min_quality)
    reason = np.full(len(figures), -1, dtype=np.int8)
    for code, failed in reversed(list(enumerate((missing, too_small, extreme, low)))):
        reason[failed] = code
    return reason < 0, reason


def hd_faces(
    figures: pd.DataFrame, *, min_size: float = 75, max_pose: float = 30, min_quality: float = 0.8
) -> pd.DataFrame:
    """Apply IMM's high-definition face rule.

    A face is high-definition when ``width > min_size`` and ``height > min_size``, each of
    ``|pitch|``, ``|roll|``, ``|yaw|`` is below ``max_pose``, and ``face_quality >
    min_quality`` (all strict, as in IMM's face-clustering guide). Only high-definition
    faces can found a cluster.

    Parameters
    ----------
    figures : DataFrame
        A figures frame (``load_figures``, ``embed_images(...).figures``).
    min_size : float, default=75
        Face width and height must both be greater than this, in pixels.
    max_pose : float, default=30
        Each absolute head-pose angle must be less than this, in degrees.
    min_quality : float, default=0.8
        ``face_quality`` must be greater than this.

    Returns
    -------
    DataFrame
        A copy of ``figures`` with ``is_hd`` (bool) and ``hd_fail`` (categorical: the first
        failed criterion, ``missing`` when a value is absent; null for HD faces).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"width": [80, 60], "height": [80, 90], "pitch": [0, 0],
    ...                   "roll": [0, 0], "yaw": [10, 0], "face_quality": [0.9, 0.95]})
    >>> hd_faces(f)[["is_hd", "hd_fail"]].values.tolist()
    [[True, nan], [False, 'too_small']]
    """
    is_hd, reason = hd_mask(figures, min_size=min_size, max_pose=max_pose, min_quality=min_quality)
    out = figures.copy()
    out["is_hd"] = is_hd
    out["hd_fail"] = pd.Categorical.from_codes(reason, categories=list(HD_FAIL_REASONS))
    return out
