"""Plots of face quality and head pose with IMM's high-definition thresholds drawn."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imm_analysis.quality import HDRule

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_quality_distributions"]

_HD_COLOUR, _POOR_COLOUR, _LINE_COLOUR = "#2a9d8f", "#e76f51", "#264653"


def _values(figures: pd.DataFrame, name: str) -> np.ndarray:
    if name == "face_size":
        w, h = _values(figures, "width"), _values(figures, "height")
        return np.where(np.isnan(w) | np.isnan(h), np.nan, np.fmin(w, h))
    if name not in figures.columns:
        return np.full(len(figures), np.nan)
    return pd.to_numeric(figures[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def plot_quality_distributions(
    figures: pd.DataFrame,
    *,
    rule: HDRule | dict | None = None,
    min_size: float | None = None,
    max_pose: float | None = None,
    min_quality: float | None = None,
    bins: int = 30,
    figsize: tuple[float, float] = (13.0, 7.0),
) -> Figure:
    """Histograms of face_quality, sharpness, face size, pitch, roll and yaw, HD thresholds drawn.

    Each histogram stacks high-definition faces (under the rule given by the thresholds)
    and the others, so the reader sees which criterion keeps faces out. Vertical dashed
    lines mark ``face_quality > min_quality``, ``min(width, height) > min_size`` and
    ``|angle| < max_pose``; sharpness has no threshold in IMM's rule.

    Parameters
    ----------
    figures : DataFrame
        A figures frame.
    rule : HDRule or dict, optional
        The high-definition rule (:class:`imm_analysis.quality.HDRule`); default IMM's.
    min_size, max_pose, min_quality : float, optional
        Override single thresholds of ``rule``.
    bins : int, default=30
    figsize : (float, float), default=(13, 7)

    Returns
    -------
    matplotlib.figure.Figure
        Six axes (2 x 3); nothing is shown.

    Examples
    --------
    >>> from imm_analysis.synth import make_dataset
    >>> fig = plot_quality_distributions(make_dataset(5, seed=1).figures)
    >>> len(fig.axes)
    6
    """
    from imm_analysis._optional import require

    mpl_figure = require("matplotlib.figure", purpose="plot_quality_distributions")

    r = HDRule.coerce(rule, min_size=min_size, max_pose=max_pose, min_quality=min_quality)
    min_size, max_pose, min_quality = r.min_size, r.max_pose, r.min_quality
    is_hd = r.mask(figures)
    panels = [
        ("face_quality", "face_quality", [(min_quality, f"> {min_quality:g}")], (0.0, 1.0)),
        ("sharpness", "sharpness (no HD threshold)", [], (0.0, 1.0)),
        ("face_size", "face size: min(width, height), px", [(min_size, f"> {min_size:g} px")], None),
        ("pitch", "pitch, degrees", [(-max_pose, f"-{max_pose:g}"), (max_pose, f"+{max_pose:g}")], None),
        ("roll", "roll, degrees", [(-max_pose, f"-{max_pose:g}"), (max_pose, f"+{max_pose:g}")], None),
        ("yaw", "yaw, degrees", [(-max_pose, f"-{max_pose:g}"), (max_pose, f"+{max_pose:g}")], None),
    ]
    fig = mpl_figure.Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, (name, label, lines, fixed) in zip(axes.ravel(), panels, strict=True):
        v = _values(figures, name)
        ok = ~np.isnan(v)
        if fixed is not None:
            lo, hi = fixed
        elif ok.any():
            lo, hi = float(np.min(v[ok])), float(np.max(v[ok]))
            for x, _ in lines:
                lo, hi = min(lo, x), max(hi, x)
            pad = 0.02 * (hi - lo or 1.0)
            lo, hi = lo - pad, hi + pad
        else:
            lo, hi = (-1.0, 1.0)
        edges = np.linspace(lo, hi, bins + 1)
        ax.hist(
            [v[ok & is_hd], v[ok & ~is_hd]],
            bins=edges,
            stacked=True,
            color=[_HD_COLOUR, _POOR_COLOUR],
            label=["high-definition", "not high-definition"],
        )
        for x, text in lines:
            ax.axvline(x, color=_LINE_COLOUR, linestyle="--", linewidth=1.2)
            ax.annotate(
                text,
                xy=(x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                color=_LINE_COLOUR,
                fontsize=8,
            )
        missing = int((~ok).sum())
        ax.set_xlabel(label + (f" ({missing} missing)" if missing else ""))
        ax.set_ylabel("faces")
    axes[0, 0].legend(loc="upper left", fontsize=8, frameon=False)
    n = len(figures)
    share = f"{is_hd.mean():.0%}" if n else "n/a"
    fig.suptitle(
        f"Face quality and head pose: {n:,} faces, {int(is_hd.sum()):,} high-definition ({share}); "
        f"dashed lines: IMM's thresholds"
    )
    return fig
