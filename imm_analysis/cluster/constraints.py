"""Per-face facts the clusterer needs from a figures frame: HD flags, image keys, cannot-link pairs."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from imm_analysis import schema
from imm_analysis.quality.hd import resolve_hd

__all__ = ["check_figures", "resolve_hd", "image_keys", "same_image_pairs"]


def check_figures(figures: pd.DataFrame, n: int, name: str = "figures") -> pd.DataFrame:
    """A figures frame row-aligned with ``n`` embeddings, unique ``figure_id`` (made up when absent), typed.

    Examples
    --------
    >>> import pandas as pd
    >>> check_figures(pd.DataFrame({"figure_id": ["a", "b"]}), 2)["figure_id"].tolist()
    ['a', 'b']
    """
    if not isinstance(figures, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame, got {type(figures).__name__}")
    if len(figures) != n:
        raise ValueError(f"{name} has {len(figures)} rows but the embeddings have {n}; they must be row-aligned")
    figures = figures.reset_index(drop=True)
    if "figure_id" not in figures.columns:
        figures = figures.assign(figure_id=[f"face-{uuid.uuid4()}" for _ in range(n)])
    fid = figures["figure_id"].astype("string")
    if fid.isna().any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(fid.isna().to_numpy(bool))[0])} has no figure_id")
    dup = fid.duplicated()
    if dup.any():
        raise ValueError(f"{name}: figure_id {fid[dup].iloc[0]!r} appears more than once")
    return schema.coerce_frame(figures, "figures")



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
    out = key.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
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
