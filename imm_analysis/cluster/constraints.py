"""Per-face facts the clusterer needs from a figures frame: HD flags, image keys, cannot-link pairs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["resolve_hd", "image_keys", "same_image_pairs"]


def resolve_hd(figures: pd.DataFrame | None, n: int, hd_rule: Any = None) -> np.ndarray:
    """High-definition flag per face.

    ``figures`` None: every face is HD. ``hd_rule`` None: IMM's rule
    (:func:`imm_analysis.quality.hd_mask`); a mapping: ``hd_mask`` keyword arguments; a callable:
    ``hd_rule(figures) -> bool array``.
    """
    if figures is None:
        return np.ones(n, dtype=bool)
    if callable(hd_rule):
        out = np.asarray(hd_rule(figures), dtype=bool)
    else:
        from imm_analysis.quality import hd_mask

        if hd_rule is not None and not isinstance(hd_rule, Mapping):
            raise TypeError(f"hd_rule must be None, a dict of hd_mask arguments or a callable, got {type(hd_rule).__name__}")
        out = hd_mask(figures, **dict(hd_rule or {}))[0]
    if out.shape != (n,):
        raise ValueError(f"hd_rule returned shape {out.shape}, expected ({n},) (one flag per face)")
    return out




def image_keys(figures: pd.DataFrame | None, n: int) -> np.ndarray:
    """A string key per face naming the image it was seen in.

    For images the key is ``file_id``; for video faces it is ``file_id#frame`` (from
    ``frame_index``, else ``timestamp``), so two faces of one video frame share a key while
    the same person in different frames does not. Without ``file_id`` (or without figures)
    every face is its own image (``#row<i>``).
    """
    own = np.array([f"#row{i}" for i in range(n)], dtype=object)
    if figures is None or "file_id" not in figures.columns:
        return own
    fid = figures["file_id"].astype("string")
    key = fid.copy()
    frame = None
    if "frame_index" in figures.columns:
        frame = pd.to_numeric(figures["frame_index"], errors="coerce").astype("Float64").round(0).astype("string")
    if "timestamp" in figures.columns:
        ts = pd.to_numeric(figures["timestamp"], errors="coerce").astype("Float64").round(3).astype("string")
        frame = ts if frame is None else frame.fillna(ts)
    if frame is not None:
        key = (fid + "#" + frame).where(frame.notna(), fid)
    out = key.to_numpy(dtype=object, na_value=None)
    missing = pd.isna(out)
    out[missing] = own[missing]
    return out


def same_image_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)``, ``i < j``, of rows sharing an image code (vectorised)."""
    codes = np.asarray(codes)
    if len(codes) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
    sizes = np.diff(np.r_[starts, len(sc)])
    multi = sizes > 1
    if not multi.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pos_in_group = np.arange(len(sc)) - np.repeat(starts, sizes)
    group_size = np.repeat(sizes, sizes)
    n_after = group_size - pos_in_group - 1  # partners after each element
    first = np.repeat(np.arange(len(sc)), n_after)
    # offsets 1..n_after for each element
    run_start = np.repeat(np.cumsum(n_after) - n_after, n_after)
    second = first + 1 + (np.arange(len(first)) - run_start)
    a, b = order[first], order[second]
    return np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
