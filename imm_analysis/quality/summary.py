"""Face counts, high-definition share, failure reasons and quality/pose percentiles per group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from imm_analysis.quality.hd import HD_FAIL_REASONS, RuleLike, _col, hd_mask, is_dask_frame

__all__ = ["SUMMARY_MEASURES", "quality_summary"]

#: Measures summarised by :func:`quality_summary` (``face_size`` is ``min(width, height)``).
SUMMARY_MEASURES = ("face_quality", "sharpness", "face_size", "pitch", "roll", "yaw")


def quality_summary(
    figures: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    percentiles: Sequence[float] = (5, 25, 50, 75, 95),
    rule: RuleLike = None,
    **overrides: float | None,
) -> pd.DataFrame:
    """Face counts, high-definition share, failure reasons and quality/pose percentiles.

    Parameters
    ----------
    figures : DataFrame or dask DataFrame
        A figures frame, or a dask dataframe of one (:func:`imm_analysis.io.read_figures_dask`):
        then the rule and the measures are computed per partition and combined
        (:mod:`imm_analysis.quality.scale`); the answer is the same.
    by : str or list of str, optional
        Column(s) to group by (for example ``"figure_cluster_id"``, ``"cluster_state"``,
        ``"media_type"``). None: one row (index ``"all"``) for the whole frame.
    percentiles : sequence of float, default=(5, 25, 50, 75, 95)
        Percentiles (0-100, linear interpolation as :func:`numpy.percentile`), missing
        values ignored.
    rule, **overrides
        The high-definition rule and single-threshold overrides (``min_size``, ``max_pose``,
        ``min_quality``), as in :func:`~imm_analysis.quality.hd_mask`.

    Returns
    -------
    DataFrame
        One row per group (index: the group keys, or ``"all"`` named ``scope``), columns:

        * ``faces``; ``images`` and ``videos``: distinct files of each media type (every
          file counts as an image when there is no ``media_type`` column);
        * ``hd_faces``, ``hd_share`` (0-1);
        * ``fail_missing``, ``fail_too_small``, ``fail_extreme_pose``, ``fail_low_quality``:
          faces whose first failed criterion is that one;
        * ``<measure>_p<q>`` for each measure in :data:`SUMMARY_MEASURES` (``face_quality``,
          ``sharpness``, ``face_size`` = ``min(width, height)`` in pixels, ``pitch``, ``roll``,
          ``yaw`` in degrees) and each percentile, for example ``face_quality_p50``.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"file_id": ["a", "a", "b"], "width": [80, 60, 100], "height": [90, 90, 120],
    ...                   "pitch": [0, 0, 40], "roll": [0, 0, 0], "yaw": [0, 0, 0],
    ...                   "face_quality": [0.9, 0.9, 0.95], "sharpness": [1.0, 0.5, 0.8]})
    >>> s = quality_summary(f)
    >>> s[["faces", "images", "hd_faces", "fail_too_small", "fail_extreme_pose", "face_size_p50"]].iloc[0].tolist()
    [3.0, 2.0, 1.0, 1.0, 1.0, 80.0]
    """
    pcts = [float(p) for p in percentiles]
    if any(not 0 <= p <= 100 for p in pcts):
        raise ValueError(f"percentiles must be in [0, 100], got {list(percentiles)}")
    keys = [by] if isinstance(by, str) else list(by or [])
    missing_cols = [k for k in keys if k not in figures.columns]
    if missing_cols:
        raise KeyError(f"quality_summary: by column(s) {missing_cols} not in the figures frame")

    if is_dask_frame(figures):  # per partition: the rule and the measures; combined: the group statistics
        from imm_analysis.quality.scale import gather_summary_data

        data = gather_summary_data(figures, _summary_data, keys, rule, overrides)
    else:
        data = _summary_data(figures, keys, rule, overrides)
    if "file_id" not in figures.columns:  # each face its own file, numbered over the frame, not per partition
        row = pd.Series(np.arange(len(data)), index=data.index)
        data["_image"] = row.where(data["_image"].notna()).to_numpy()
        data["_video"] = row.where(data["_video"].notna()).to_numpy()
    n = len(data)
    group_keys = [data.pop(f"__by_{i}").rename(k) for i, k in enumerate(keys or ["scope"])]
    g = data.groupby(group_keys, observed=True, dropna=False, sort=True)
    counts = pd.DataFrame(
        {
            "faces": g.size(),
            "images": g["_image"].nunique(),
            "videos": g["_video"].nunique(),
        }
    )
    sums = g[["hd_faces", *[f"fail_{r}" for r in HD_FAIL_REASONS]]].sum()
    out = counts.join(sums)
    out.insert(4, "hd_share", out["hd_faces"] / out["faces"])
    if n:
        q = pd.DataFrame(g[list(SUMMARY_MEASURES)].quantile(np.array([p / 100 for p in pcts])).unstack(-1))
        q.columns = [
            f"{m}_p{_pct_name(p)}"
            for m, p in zip(q.columns.get_level_values(0), q.columns.get_level_values(1) * 100, strict=True)
        ]
        out = out.join(q)
    else:
        for m in SUMMARY_MEASURES:
            for p in pcts:
                out[f"{m}_p{_pct_name(p)}"] = pd.Series([], dtype="float64")
    int_cols = ["faces", "images", "videos", "hd_faces", *[f"fail_{r}" for r in HD_FAIL_REASONS]]
    out[int_cols] = out[int_cols].astype("int64")
    out.columns.name = None
    return out


def _pct_name(p: float) -> str:
    p = round(float(p), 6)
    return str(int(p)) if p == int(p) else str(p).replace(".", "_")


def _summary_data(figures: pd.DataFrame, keys: list[str], rule: RuleLike, overrides: dict) -> pd.DataFrame:
    """Per face: the group key columns (``__by_<i>``), file ids, HD flags and measures."""
    is_hd, reason = hd_mask(figures, rule, **overrides)
    n = len(figures)
    file_id = figures["file_id"] if "file_id" in figures.columns else pd.Series(np.arange(n), index=figures.index)
    if "media_type" in figures.columns:
        video = (figures["media_type"].astype("string") == "video").fillna(False).to_numpy(bool)
    else:
        video = np.zeros(n, bool)
    w, h = _col(figures, "width"), _col(figures, "height")
    if keys:  # named apart from the measures; quality_summary gives them their names back
        group = {f"__by_{i}": figures[k].reset_index(drop=True) for i, k in enumerate(keys)}
    else:
        group = {"__by_0": pd.Series(np.full(n, "all", dtype=object))}
    return pd.DataFrame(
        {
            **group,
            "_image": file_id.where(~video).to_numpy(),
            "_video": file_id.where(video).to_numpy(),
            "hd_faces": is_hd.astype(np.int64),
            **{f"fail_{r}": (reason == i).astype(np.int64) for i, r in enumerate(HD_FAIL_REASONS)},
            "face_quality": _col(figures, "face_quality"),
            "sharpness": _col(figures, "sharpness"),
            "face_size": np.where(np.isnan(w) | np.isnan(h), np.nan, np.fmin(w, h)),
            "pitch": _col(figures, "pitch"),
            "roll": _col(figures, "roll"),
            "yaw": _col(figures, "yaw"),
        }
    )
