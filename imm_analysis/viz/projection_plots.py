"""Projection plots: 2-D embeddings (UMAP) coloured by cluster, truth, HD flag, pose or any value.

Every function returns a matplotlib Figure or Axes and never calls ``show()``; pass ``ax=``
to draw into an existing Axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis._optional import require
from imm_analysis.quality import hd_mask
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE
from imm_analysis.viz._common import INDEPENDENT_COLOR, SCATTER_MAX
from imm_analysis.viz._common import new_ax as _new_ax

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_projection", "plot_projections"]

_POSE = ("pitch", "roll", "yaw")


# --------------------------------------------------------------------------- projection
def _projection_values(
    figures: pd.DataFrame | None, by: str, values: Any, n: int
) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """Return (values, unassigned mask, categorical?, legend name for the unassigned)."""
    if values is not None:
        v = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    elif by == "cluster":
        if figures is None or "figure_cluster_id" not in figures.columns:
            raise ValueError("by='cluster' needs values= (cluster labels) or figures with figure_cluster_id")
        v = figures["figure_cluster_id"].astype("string").to_numpy(dtype=object, na_value=CLUSTER_UNAVAILABLE)
    elif by == "is_hd":
        if figures is None:
            raise ValueError("by='is_hd' needs figures (width, height, pose, face_quality) or values=")
        v = figures["is_hd"].to_numpy(dtype=bool) if "is_hd" in figures.columns else hd_mask(figures)[0]
    elif by == "identity":
        if figures is None or "identity" not in figures.columns:
            raise ValueError("by='identity' needs values= (the true person of each face) or an 'identity' column")
        v = figures["identity"].to_numpy(dtype=object)
    else:
        if figures is None or by not in figures.columns:
            raise ValueError(f"by={by!r}: no column {by!r} in figures; pass values= instead")
        col = figures[by]
        if pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(dtype=bool, na_value=False)
        elif pd.api.types.is_numeric_dtype(col):
            v = pd.to_numeric(col).astype("float64").to_numpy(na_value=np.nan)
        else:
            v = np.asarray(col.astype("string").to_numpy(dtype=object, na_value=None))  # type: ignore[call-overload]
    if len(v) != n:
        raise ValueError(f"{len(v)} values for {n} points (by={by!r}); they must be row-aligned")
    if v.dtype == bool:
        return v, np.zeros(n, dtype=bool), True, ""
    none = {"cluster": "independent", "identity": "unknown"}.get(by, "missing")
    if v.dtype.kind in "iu":
        return v, v < 0, True, none
    if v.dtype.kind == "f" and by in ("cluster", "identity"):
        miss = np.isnan(v) | (v < 0)
        return v, miss, True, none
    if v.dtype.kind == "f":
        return v, np.isnan(v), False, "missing"
    obj = v.astype(object)
    miss = np.array([x is None or x is pd.NA or x in (CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE) for x in obj])
    return obj, miss, True, none


def _category_colors(codes: np.ndarray, n_cat: int) -> np.ndarray:
    """RGB per code: tab20-like colours for few categories, a golden-ratio hue walk for many."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, hsv_to_rgb

    if n_cat <= 20:
        listed = colormaps["tab10" if n_cat <= 10 else "tab20"]
        assert isinstance(listed, ListedColormap)
        table = np.asarray(listed.colors)[:n_cat]
    else:
        i = np.arange(n_cat)
        hsv = np.column_stack([(i * 0.618034) % 1.0, 0.55 + 0.4 * ((i * 7) % 3) / 2, 0.65 + 0.3 * ((i * 5) % 2)])
        table = hsv_to_rgb(hsv)
    return table[codes]


def _binned_image(
    ax: Axes, xy: np.ndarray, rgb: np.ndarray | None, values: np.ndarray | None, bins: int, cmap: str, vlim
) -> Any:
    """Datashader-like rendering: per pixel the mean colour (or mean value), alpha by log count."""
    x, y = xy[:, 0], xy[:, 1]
    x0, x1 = float(np.nanmin(x)), float(np.nanmax(x))
    y0, y1 = float(np.nanmin(y)), float(np.nanmax(y))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    ix = np.clip(((x - x0) / (x1 - x0) * bins).astype(np.int64), 0, bins - 1)
    iy = np.clip(((y - y0) / (y1 - y0) * bins).astype(np.int64), 0, bins - 1)
    flat = iy * bins + ix
    count = np.bincount(flat, minlength=bins * bins).astype(np.float64)
    alpha = np.log1p(count) / max(np.log1p(count.max()), 1e-12)
    alpha = np.where(count > 0, 0.25 + 0.75 * alpha, 0.0)
    safe = np.maximum(count, 1)
    if rgb is not None:
        img = np.empty((bins * bins, 4))
        for c in range(3):
            img[:, c] = np.bincount(flat, weights=rgb[:, c], minlength=bins * bins) / safe
        img[:, 3] = alpha
        return ax.imshow(img.reshape(bins, bins, 4), origin="lower", extent=(x0, x1, y0, y1), aspect="auto",
                         interpolation="nearest")
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    assert values is not None  # one of rgb and values is given
    ok = ~np.isnan(values)
    cnt_ok = np.bincount(flat[ok], minlength=bins * bins)
    mean = np.bincount(flat[ok], weights=values[ok], minlength=bins * bins) / np.maximum(cnt_ok, 1)
    norm = Normalize(*vlim)
    img = colormaps[cmap](norm(mean))
    img[cnt_ok == 0, :3] = INDEPENDENT_COLOR
    img[:, 3] = alpha
    im = ax.imshow(img.reshape(bins, bins, 4), origin="lower", extent=(x0, x1, y0, y1), aspect="auto",
                   interpolation="nearest")
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=norm, cmap=cmap)
    return im, sm


def plot_projection(
    coords: np.ndarray,
    figures: pd.DataFrame | None = None,
    *,
    by: str = "cluster",
    values: Any = None,
    ax: Axes | None = None,
    scatter_max: int = SCATTER_MAX,
    bins: int = 400,
    point_size: float | None = None,
    cmap: str | None = None,
    max_legend: int = 12,
    title: str | None = None,
) -> Axes:
    """Scatter a 2-D projection of faces, coloured by cluster, identity, quality, HD or pose.

    Parameters
    ----------
    coords : ndarray, shape (n, 2)
        Projected faces (:func:`~imm_analysis.viz.projection.project_umap`).
    figures : DataFrame, optional
        Figures frame row-aligned with ``coords``; the source of ``by`` unless ``values`` is given.
    by : str, default="cluster"
        ``"cluster"`` (``figure_cluster_id``, or integer labels in ``values`` with -1 for
        independent), ``"identity"`` (true person in ``values`` or an ``identity`` column),
        ``"is_hd"`` (IMM's high-definition rule via :func:`~imm_analysis.quality.hd_mask`),
        or any figures column: ``"face_quality"``, ``"sharpness"``, ``"pitch"``, ``"roll"``,
        ``"yaw"``, ``"age"``...
    values : array-like, optional
        Row-aligned values to colour by, overriding the column.
    ax : Axes, optional
        Draw here; a new Figure is made otherwise.
    scatter_max : int, default=200_000
        Above this many points the faces are binned into a ``bins x bins`` image (mean
        colour per pixel, opacity by log count), which draws 1,000,000 points in about a second.
    bins : int, default=400
        Pixels per side of the binned image.
    point_size : float, optional
        Marker area; default shrinks with n.
    cmap : str, optional
        Colormap for numeric values (``viridis``; ``coolwarm`` centred on 0 for pose angles).
    max_legend : int, default=12
        Categorical legends list at most this many entries (the largest categories).
    title : str, optional
        Axes title; default names ``by`` and the number of faces.

    Returns
    -------
    Axes
        Faces without a cluster (independent), missing identity or missing values are drawn
        as small grey crosses beneath the others, in their own legend entry.

    Examples
    --------
    >>> xy = np.random.default_rng(0).normal(size=(50, 2))
    >>> ax = plot_projection(xy, values=np.repeat([-1, 0, 1, 2, 3], 10))
    >>> sum(len(c.get_offsets()) for c in ax.collections)
    50
    """
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must have shape (n, 2); got {xy.shape}")
    n = len(xy)
    v, miss, categorical, miss_name = _projection_values(figures, by, values, n)
    ax = _new_ax(ax)
    big = n > scatter_max
    s = point_size if point_size is not None else float(np.clip(3e4 / max(n, 1), 0.5, 25.0))
    Line2D = require("matplotlib.lines", purpose="plot_projection").Line2D

    handles: list[Any] = []
    if categorical:
        if v.dtype == bool:
            names = np.array(["not HD", "HD"] if by == "is_hd" else ["False", "True"], dtype=object)
            codes = v.astype(np.int64)
            rgb_table = np.array([[0.85, 0.33, 0.1], [0.12, 0.47, 0.71]])
            rgb = rgb_table[codes]
            order_cats = np.array([1, 0])
            counts = np.bincount(codes, minlength=2)
        else:
            cats, codes = np.unique(np.asarray(v[~miss]).astype(str) if v.dtype == object else v[~miss],
                                    return_inverse=True)
            full = np.full(n, -1, dtype=np.int64)
            full[~miss] = codes
            codes = full
            counts = np.bincount(codes[codes >= 0], minlength=len(cats))
            names = np.asarray(cats, dtype=object)
            rgb = np.tile(np.asarray(INDEPENDENT_COLOR), (n, 1))
            if len(cats):
                rgb[~miss] = _category_colors(codes[~miss], len(cats))
            order_cats = np.argsort(-counts, kind="stable")
        if big:
            _binned_image(ax, xy, rgb, None, bins, "", None)
        else:
            if miss.any():
                ax.scatter(xy[miss, 0], xy[miss, 1], s=s, marker="x", c=[INDEPENDENT_COLOR], linewidths=0.6,
                           alpha=0.7, label=f"{miss_name} ({int(miss.sum()):,})", zorder=1)
            keep = ~miss
            ax.scatter(xy[keep, 0], xy[keep, 1], s=s, c=rgb[keep], linewidths=0, alpha=0.9, zorder=2)
        n_cat = len(names)
        for c in order_cats[:max_legend]:
            if counts[c] == 0:
                continue
            color = rgb[np.flatnonzero(codes == c)[0]]
            handles.append(Line2D([], [], ls="", marker="o", color=color, label=f"{names[c]} ({counts[c]:,})"))
        if miss.any():
            handles.append(Line2D([], [], ls="", marker="x", color=INDEPENDENT_COLOR,
                                  label=f"{miss_name} ({int(miss.sum()):,})"))
        if handles and (n_cat <= max_legend or v.dtype == bool):
            ax.legend(handles=handles, loc="best", fontsize="small", markerscale=1.2, frameon=False)
        elif handles:
            extra = f"{n_cat:,} {({'cluster': 'clusters', 'identity': 'people'}).get(by, 'values')}"
            ax.legend(handles=handles[-1:] if miss.any() else [], title=extra, loc="best", fontsize="small",
                      frameon=False)
    else:
        finite = v[~miss]
        if by in _POSE:
            # symmetric around 0; a few absurd angles (detector failures) must not wash out the rest
            lim = float(np.percentile(np.abs(finite), 99)) if len(finite) else 1.0
            lim = min(max(lim, 1e-9), 90.0)
            vlim = (-lim, lim)
            cmap = cmap or "coolwarm"
        else:
            vlim = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
            cmap = cmap or "viridis"
        if big:
            _, mappable = _binned_image(ax, xy, None, v, bins, cmap, vlim)
        else:
            if miss.any():
                ax.scatter(xy[miss, 0], xy[miss, 1], s=s, marker="x", c=[INDEPENDENT_COLOR], linewidths=0.6,
                           label=f"missing ({int(miss.sum()):,})", zorder=1)
                ax.legend(loc="best", fontsize="small", frameon=False)
            mappable = ax.scatter(xy[~miss, 0], xy[~miss, 1], s=s, c=finite, cmap=cmap, vmin=vlim[0], vmax=vlim[1],
                                  linewidths=0, zorder=2)
        ax.figure.colorbar(mappable, ax=ax, label=by, shrink=0.85)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    how = f" (binned {bins}x{bins})" if big else ""
    ax.set_title(title if title is not None else f"{by}: {n:,} faces{how}", fontsize="medium")
    return ax


def plot_projections(
    coords: np.ndarray,
    figures: pd.DataFrame | None = None,
    *,
    labels: Any = None,
    true_labels: Any = None,
    by: Sequence[str] = ("cluster", "identity", "face_quality", "is_hd", "pitch", "roll", "yaw"),
    ncols: int = 3,
    panel_size: float = 4.0,
    **kwargs: Any,
) -> Figure:
    """A grid of :func:`plot_projection` panels, one per colouring in ``by``.

    Panels whose data are absent (no ``true_labels``, a column missing from ``figures``)
    are left out rather than failing.

    Parameters
    ----------
    coords : ndarray, shape (n, 2)
    figures : DataFrame, optional
        Row-aligned figures frame.
    labels : array-like, optional
        Cluster labels (-1 independent) for the ``"cluster"`` panel; default ``figure_cluster_id``.
    true_labels : array-like, optional
        True person of each face for the ``"identity"`` panel.
    by : sequence of str
        Panels, in order.
    ncols : int, default=3
    panel_size : float, default=4.0
        Inches per panel.
    **kwargs
        Passed to :func:`plot_projection`.

    Returns
    -------
    Figure

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.random.default_rng(0).normal(size=(40, 2))
    >>> fig = plot_projections(xy, labels=np.repeat([0, 1, 2, 3], 10), true_labels=np.repeat([0, 1], 20))
    >>> [a.get_title().split(":")[0] for a in fig.axes if a.get_visible()]  # no figures: no quality or pose panels
    ['cluster', 'identity']
    """
    mpl_figure = require("matplotlib.figure", purpose="plot_projections")

    panels: list[tuple[str, Any]] = []
    for b in by:
        vals = labels if b == "cluster" else true_labels if b == "identity" else None
        try:
            _projection_values(figures, b, vals, len(coords))
        except ValueError:
            continue
        if vals is None and figures is not None and b in figures.columns and figures[b].isna().all():
            continue
        panels.append((b, vals))
    if not panels:
        raise ValueError(f"nothing to plot: none of {list(by)} is available")
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig = mpl_figure.Figure(figsize=(panel_size * ncols, panel_size * nrows * 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for a, (b, vals) in zip(axes, panels, strict=False):
        plot_projection(coords, figures, by=b, values=vals, ax=a, **kwargs)
    for a in axes[len(panels):]:
        a.set_visible(False)
    return fig
