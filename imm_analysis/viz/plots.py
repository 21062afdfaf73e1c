"""Plots of face clusterings: projections, face montages, threshold sweeps and cluster sizes.

Every function returns a matplotlib Figure or Axes and never calls ``show()``; pass ``ax=``
to draw into an existing Axes. Inputs are the toolkit's frames (:mod:`imm_analysis.schema`)
and plain arrays, so the same plots serve IMM results and local runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.quality import HD_FAIL_REASONS, HDRule, hd_mask
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ImageSource",
    "plot_projection",
    "plot_projections",
    "plot_face_montage",
    "plot_cluster_montage",
    "plot_threshold_sweep",
    "plot_cluster_sizes",
    "load_face_crop",
]

#: Where a face's source image comes from: a mapping or a callable from ``file_id`` or ``uri``
#: to a local path (or an already loaded image: PIL image or HxWx3 array), or a folder that
#: holds the files under their base names.
ImageSource = Mapping[str, Any] | Callable[[str], Any] | str | Path | None

#: Colour of faces that belong to no cluster, and of missing values.
INDEPENDENT_COLOR = (0.62, 0.62, 0.62)
#: Above this many points projections are drawn as a binned image instead of a scatter.
SCATTER_MAX = 200_000
_POSE = ("pitch", "roll", "yaw")


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (6.0, 5.0)) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


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
            v = col.astype("string").to_numpy(dtype=object, na_value=None)
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
    from matplotlib.colors import hsv_to_rgb

    if n_cat <= 10:
        table = np.asarray(colormaps["tab10"].colors)[:n_cat]
    elif n_cat <= 20:
        table = np.asarray(colormaps["tab20"].colors)[:n_cat]
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
    from matplotlib.lines import Line2D

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
    """
    from matplotlib.figure import Figure

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
    fig = Figure(figsize=(panel_size * ncols, panel_size * nrows * 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for a, (b, vals) in zip(axes, panels, strict=False):
        plot_projection(coords, figures, by=b, values=vals, ax=a, **kwargs)
    for a in axes[len(panels):]:
        a.set_visible(False)
    return fig


# --------------------------------------------------------------------------- montages
def _lookup(images: ImageSource, keys: Sequence[Any]) -> Any:
    if images is None:
        for k in keys:
            if isinstance(k, str) and k:
                p = Path(k[7:] if k.startswith("file://") else k)
                if p.exists():
                    return p
        return None
    if isinstance(images, str | Path):
        base = Path(images)
        for k in keys:
            if isinstance(k, str) and k:
                for cand in (base / k, base / Path(k.split("?")[0]).name):
                    if cand.exists():
                        return cand
        return None
    if isinstance(images, Mapping):
        for k in keys:
            if k in images:
                return images[k]
        return None
    for k in keys:
        if k is None or k is pd.NA:
            continue
        try:
            got = images(k)
        except (KeyError, FileNotFoundError, LookupError):
            continue
        if got is not None:
            return got
    return None


@lru_cache(maxsize=64)
def _open_image(path: str) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def _as_array(src: Any) -> np.ndarray | None:
    if src is None:
        return None
    if isinstance(src, str | Path):
        p = Path(str(src)[7:] if str(src).startswith("file://") else src)
        if not p.exists():
            return None
        return _open_image(str(p))
    if hasattr(src, "convert"):  # PIL image
        return np.asarray(src.convert("RGB"))
    arr = np.asarray(src)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return arr[..., :3]


def _num(row: pd.Series, key: str) -> float:
    val = row.get(key)
    try:
        return float(val) if val is not None and not pd.isna(val) else math.nan
    except (TypeError, ValueError):
        return math.nan


def load_face_crop(
    row: pd.Series | Mapping[str, Any], images: ImageSource = None, *, size: int = 96, margin: float = 0.15
) -> np.ndarray | None:
    """Cut one face out of its source image with its boundary box.

    Parameters
    ----------
    row : Series or mapping
        One figures row: ``file_id``, ``uri``, ``left``, ``top``, ``width``, ``height``.
        Without a boundary the whole image is used (aligned crops such as LFW).
    images : ImageSource
        See :data:`ImageSource`; ``None`` reads ``uri`` when it is a local path.
    size : int, default=96
        Side of the returned square crop, in pixels.
    margin : float, default=0.15
        Extra context around the box, as a share of its size.

    Returns
    -------
    ndarray of uint8, shape (size, size, 3), or None when the image cannot be found.
    """
    from PIL import Image

    row = pd.Series(row) if not isinstance(row, pd.Series) else row
    img = _as_array(_lookup(images, [row.get("file_id"), row.get("uri")]))
    if img is None:
        return None
    h, w = img.shape[:2]
    left, top, bw, bh = (_num(row, k) for k in ("left", "top", "width", "height"))
    if any(math.isnan(t) for t in (left, top, bw, bh)) or bw <= 0 or bh <= 0:
        x0, y0, x1, y1 = 0, 0, w, h
    else:
        # a square around the box with some context; shrink the context and shift the square
        # to stay inside the image where it can (aligned crops fill their whole image)
        face = max(bw, bh)
        side = max(face, min(face * (1 + 2 * margin), min(w, h)))
        cx, cy = left + bw / 2, top + bh / 2
        x0f = min(max(cx - side / 2, 0.0), w - side) if side <= w else cx - side / 2
        y0f = min(max(cy - side / 2, 0.0), h - side) if side <= h else cy - side / 2
        x0f, y0f = min(x0f, left), min(y0f, top)  # never cut the face itself
        x0, y0 = int(round(x0f)), int(round(y0f))
        x1, y1 = int(round(x0f + side)), int(round(y0f + side))
    # pad outside the image with grey so the face stays centred
    out = np.full((max(y1 - y0, 1), max(x1 - x0, 1), 3), 128, dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return np.asarray(Image.fromarray(out).resize((size, size), Image.BILINEAR))


def _hd_flags(figures: pd.DataFrame, hd_rule: HDRule | Mapping[str, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """HD flags and failure codes; an ``is_hd`` column (the flags a clustering used) wins over the rule."""
    hd, reason = hd_mask(figures, hd_rule)
    if "is_hd" in figures.columns:
        hd = figures["is_hd"].to_numpy(dtype=bool)
        reason = np.where(hd, -1, reason)  # a face the rule passes but the clustering did not: reason unknown
    return hd, reason


def plot_face_montage(
    figures: pd.DataFrame,
    images: ImageSource = None,
    *,
    rows: Any = None,
    captions: Sequence[str] | None = None,
    cover: Any = None,
    flag_non_hd: bool = True,
    hd_rule: HDRule | Mapping[str, float] | None = None,
    ncols: int = 6,
    max_faces: int = 36,
    crop_size: int = 96,
    margin: float = 0.15,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """A grid of face crops cut from their source images.

    Parameters
    ----------
    figures : DataFrame
        Figures frame (``file_id``, ``uri``, boundary ``left/top/width/height``; pose and
        ``face_quality`` for the HD flag).
    images : ImageSource
        Maps ``file_id`` or ``uri`` to a local image (see :data:`ImageSource`).
    rows : array-like, optional
        Positions (``iloc``) or a bool mask of the faces to show, in order; default all.
        A position of -1 leaves an empty tile (to line faces up in columns).
    captions : sequence of str, optional
        One caption per shown face; default the face's ``face_quality``.
    cover : str or int, optional
        The face to mark as cover: a position (int) or a ``file_id`` (its first face shown).
        Drawn with a thick gold frame and "cover" in its caption.
    flag_non_hd : bool, default=True
        Frame faces that fail IMM's high-definition rule in red, captioned with the reason.
    hd_rule : HDRule or mapping, optional
        The high-definition rule (:class:`~imm_analysis.quality.HDRule` or a mapping of its
        thresholds); default IMM's.
    ncols, max_faces, crop_size, margin
        Layout: columns, faces shown at most, crop side in pixels, context around the box.
    title : str, optional
        Figure title.
    fig : Figure, optional
        Draw into this (cleared) Figure.

    Returns
    -------
    Figure
        One Axes per face shown (``fig.axes``); a face whose image is not found is a grey
        tile captioned "no image".
    """
    from matplotlib.figure import Figure

    idx = np.arange(len(figures)) if rows is None else np.asarray(rows)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    idx = idx[:max_faces].astype(np.int64)
    blank = idx < 0
    sub = figures.iloc[np.where(blank, 0, idx)] if len(figures) else figures.iloc[idx[~blank]]
    hd, reason = _hd_flags(sub, hd_rule)
    cover_pos = None
    if cover is not None:
        if isinstance(cover, int | np.integer) and not isinstance(cover, bool):
            hit = np.flatnonzero(idx == cover)
            cover_pos = int(hit[0]) if len(hit) else None
        elif "file_id" in sub.columns:
            hit = np.flatnonzero((sub["file_id"].astype("string") == str(cover)).fillna(False).to_numpy(bool))
            cover_pos = int(hit[0]) if len(hit) else None
    k = len(idx)
    ncols = max(1, min(ncols, max(k, 1)))
    nrows = max(1, math.ceil(k / ncols))
    if fig is None:
        fig = Figure(figsize=(1.55 * ncols, 1.75 * nrows + (0.35 if title else 0)), layout="constrained")
    else:
        fig.clear()
    if title:
        fig.suptitle(title, fontsize="medium")
    if k == 0:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no faces", ha="center", va="center")
        return fig
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for pos, a in enumerate(axes):
        a.set_xticks([])
        a.set_yticks([])
        if pos >= k or blank[pos]:
            a.set_visible(False)
            continue
        row = sub.iloc[pos]
        crop = load_face_crop(row, images, size=crop_size, margin=margin)
        if crop is None:
            a.imshow(np.full((crop_size, crop_size, 3), 200, dtype=np.uint8))
            a.text(crop_size / 2, crop_size / 2, "no image", ha="center", va="center", fontsize="x-small")
        else:
            a.imshow(crop)
        if captions is not None:
            cap = str(captions[pos])
        else:
            q = _num(row, "face_quality")
            cap = f"q={q:.2f}" if not math.isnan(q) else ""
        color, width = "0.8", 0.8
        if flag_non_hd and not hd[pos]:
            color, width = "tab:red", 2.5
            cap = f"{cap}\nnot HD: {HD_FAIL_REASONS[reason[pos]]}".strip()
        if pos == cover_pos:
            color, width = "gold", 4.0
            cap = f"cover {cap}".strip()
        for sp in a.spines.values():
            sp.set_edgecolor(color)
            sp.set_linewidth(width)
        a.set_title(cap, fontsize="x-small", color="tab:red" if (flag_non_hd and not hd[pos]) else "black")
    return fig


def plot_cluster_montage(
    figures: pd.DataFrame,
    cluster_id: Any,
    images: ImageSource = None,
    *,
    clusters: pd.DataFrame | None = None,
    labels: Any = None,
    cover: Any = None,
    max_faces: int = 36,
    **kwargs: Any,
) -> Figure:
    """Montage of one cluster's faces, cover marked and non-HD faces flagged.

    Parameters
    ----------
    figures : DataFrame
        Figures frame with ``figure_cluster_id`` (or pass ``labels``).
    cluster_id : str or int
        The cluster: a ``figure_cluster_id``, or a label when ``labels`` is given.
    images : ImageSource
        Maps ``file_id`` / ``uri`` to local images.
    clusters : DataFrame, optional
        Clusters frame; its ``cover_file_id`` marks the cover.
    labels : array-like, optional
        Row-aligned integer labels to select by instead of ``figure_cluster_id``.
    cover : str or int, optional
        Explicit cover (file_id or row position); overrides ``clusters``. Default for
        ``labels``: the cluster's best high-definition face by ``face_quality``.
    max_faces : int, default=36
        Faces shown at most (best quality first).
    **kwargs
        Passed to :func:`plot_face_montage`.

    Returns
    -------
    Figure
    """
    if labels is not None:
        lab = np.asarray(labels)
        mask = lab == cluster_id
    else:
        if "figure_cluster_id" not in figures.columns:
            raise ValueError("figures have no figure_cluster_id column; pass labels=")
        mask = (figures["figure_cluster_id"].astype("string") == str(cluster_id)).fillna(False).to_numpy(bool)
    rows = np.flatnonzero(mask)
    if not len(rows):
        raise KeyError(f"cluster {cluster_id!r} has no faces in figures")
    q = (
        pd.to_numeric(figures["face_quality"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[rows]
        if "face_quality" in figures.columns
        else np.zeros(len(rows))
    )
    rows = rows[np.argsort(-np.nan_to_num(q, nan=-1.0), kind="stable")]
    if cover is None and clusters is not None and "cover_file_id" in clusters.columns:
        hit = clusters.loc[(clusters["cluster_id"].astype("string") == str(cluster_id)).fillna(False).to_numpy(bool)]
        if len(hit) and not pd.isna(hit["cover_file_id"].iloc[0]):
            cover = str(hit["cover_file_id"].iloc[0])
    if cover is None and labels is not None:
        hd = _hd_flags(figures.iloc[rows], kwargs.get("hd_rule"))[0]
        cover = int(rows[np.flatnonzero(hd)[0]]) if hd.any() else None
    if isinstance(cover, str) and "file_id" in figures.columns:
        # make sure the cover's face is among those shown
        is_cov = (figures["file_id"].iloc[rows].astype("string") == cover).fillna(False).to_numpy(bool)
        if is_cov.any() and np.flatnonzero(is_cov)[0] >= max_faces:
            first = np.flatnonzero(is_cov)[0]
            rows = np.r_[rows[first], np.delete(rows, first)]
    kwargs.setdefault("title", f"{cluster_id}: {int(mask.sum()):,} faces")
    return plot_face_montage(figures, images, rows=rows, cover=cover, max_faces=max_faces, **kwargs)


# --------------------------------------------------------------------------- sweep and sizes
def plot_threshold_sweep(
    sweep: pd.DataFrame,
    *,
    calibrated: float | None = None,
    chosen: float | None = None,
    metric: str = "bcubed",
    ax: Axes | None = None,
) -> Axes:
    """Precision, recall, F and the number of clusters against the similarity threshold.

    Parameters
    ----------
    sweep : DataFrame
        :func:`~imm_analysis.evaluate.sweep_thresholds` output: a ``threshold`` column (or
        index) and ``{metric}_precision``, ``{metric}_recall``, ``{metric}_f``, ``n_clusters``.
    calibrated : float, optional
        The label-free threshold (:func:`~imm_analysis.cluster.calibrate.calibrate_threshold`),
        drawn as a dashed vertical line.
    chosen : float, optional
        The threshold in use, drawn as a solid vertical line.
    metric : {"bcubed", "pairwise"}, default="bcubed"
        Which precision/recall/F family to draw.
    ax : Axes, optional

    Returns
    -------
    Axes
        The metrics Axes; ``n_clusters`` is on its twin (right axis, ``ax.figure.axes[-1]``).
    """
    df = sweep.reset_index() if "threshold" not in sweep.columns else sweep
    if "threshold" not in df.columns:
        raise ValueError("sweep needs a 'threshold' column or index")
    df = df.sort_values("threshold")
    t = df["threshold"].to_numpy(dtype=float)
    ax = _new_ax(ax, (7.0, 4.5))
    styles = {"precision": ("tab:blue", "-"), "recall": ("tab:orange", "-"), "f": ("tab:green", "-")}
    drawn = 0
    for name, (color, ls) in styles.items():
        col = f"{metric}_{name}"
        if col in df.columns:
            ax.plot(t, df[col].to_numpy(dtype=float), color=color, ls=ls, lw=2 if name == "f" else 1.5,
                    label=f"{metric} {'F' if name == 'f' else name}")
            drawn += 1
    if not drawn:
        raise ValueError(f"sweep has none of {metric}_precision/_recall/_f; columns: {list(df.columns)}")
    f_col = f"{metric}_f"
    if f_col in df.columns and df[f_col].notna().any():
        best = int(np.nanargmax(df[f_col].to_numpy(dtype=float)))
        ax.plot([t[best]], [df[f_col].iloc[best]], marker="*", ms=12, color="tab:green", ls="",
                label=f"best F {df[f_col].iloc[best]:.3f} at {t[best]:.3f}")
    ax.set_xlabel("similarity threshold (cosine)")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    lines = []
    if calibrated is not None:
        lines.append(ax.axvline(calibrated, color="tab:purple", ls="--", lw=1.5, label=f"calibrated {calibrated:.3f}"))
    if chosen is not None:
        lines.append(ax.axvline(chosen, color="black", ls="-", lw=1.2, label=f"chosen {chosen:.3f}"))
    handles, labels = ax.get_legend_handles_labels()
    top = ax
    if "n_clusters" in df.columns:
        top = ax.twinx()
        top.plot(t, df["n_clusters"].to_numpy(dtype=float), color="tab:gray", ls=":", lw=1.5, label="clusters")
        top.set_ylabel("clusters")
        h2, l2 = top.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    # the legend goes on the top-most Axes so the twin's line does not hide it
    top.legend(handles, labels, loc="best", fontsize="small", framealpha=0.85)
    ax.set_title(f"threshold sweep ({metric})", fontsize="medium")
    return ax


def _cluster_sizes(data: Any) -> tuple[np.ndarray, int]:
    if isinstance(data, pd.DataFrame):
        if "face_count" in data.columns and "figure_cluster_id" not in data.columns:
            sizes = pd.to_numeric(data["face_count"], errors="coerce").dropna().to_numpy(dtype=np.int64)
            return sizes, 0
        if "figure_cluster_id" in data.columns:
            ids = data["figure_cluster_id"].astype("string")
            free = ids.isin([CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE]).fillna(True).to_numpy(bool) | ids.isna().to_numpy()
            sizes = ids[~free].value_counts().to_numpy(dtype=np.int64)
            return sizes, int(free.sum())
        raise ValueError("a frame needs face_count (clusters) or figure_cluster_id (figures)")
    lab = np.asarray(data)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (-1 = independent); got dtype {lab.dtype}")
    free = lab < 0
    sizes = np.bincount(lab[~free]) if (~free).any() else np.zeros(0, dtype=np.int64)
    return sizes[sizes > 0], int(free.sum())


def plot_cluster_sizes(data: Any, *, ax: Axes | None = None, log: bool | None = None) -> Axes:
    """Distribution of cluster sizes (faces per cluster).

    Parameters
    ----------
    data : ndarray of int, or DataFrame
        Integer labels (-1 = independent), a clusters frame (``face_count``) or a figures
        frame (``figure_cluster_id``).
    ax : Axes, optional
    log : bool, optional
        Logarithmic size bins and count axis; default when the largest cluster exceeds 50.

    Returns
    -------
    Axes
        Bars count the clusters of each size (bin); the title gives the number of
        clusters, clustered faces and independent faces.

    Examples
    --------
    >>> ax = plot_cluster_sizes(np.array([0, 0, 0, 1, 1, 1, 1, -1]))
    >>> ax.get_title()
    '2 clusters, 7 faces clustered, 1 independent'
    """
    sizes, n_free = _cluster_sizes(data)
    ax = _new_ax(ax, (6.0, 4.0))
    biggest = int(sizes.max()) if len(sizes) else 1
    log = biggest > 50 if log is None else log
    if log:
        edges = np.unique(np.round(np.logspace(0, np.log10(biggest + 1), 30)).astype(int))
        edges = np.r_[edges, edges[-1] + 1] if edges[-1] <= biggest else edges
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        edges = np.arange(0.5, biggest + 1.5)  # one bar per integer size
    ax.hist(sizes, bins=edges, color="tab:blue", edgecolor="white")
    ax.set_xlabel("faces per cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"{len(sizes):,} clusters, {int(sizes.sum()):,} faces clustered, {n_free:,} independent",
                 fontsize="medium")
    return ax
