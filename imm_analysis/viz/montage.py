"""Face montages: grids of face crops cut from their source images, and one cluster's faces.

Images are read through :func:`imm_analysis.io.media.read_image` (with its pixel limit), and a
folder given as ``images=`` confines every data-controlled name to that folder
(:func:`imm_analysis.io.paths.confine`): a ``file_id`` such as ``../../x.jpg`` or ``/etc/x.jpg``
is never read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis._optional import require
from imm_analysis.quality import HD_FAIL_REASONS, HDRule, hd_mask

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ImageSource", "load_face_crop", "plot_face_montage", "plot_cluster_montage"]

#: Where a face's source image comes from: a mapping or a callable from ``file_id`` or ``uri``
#: to a local path (or an already loaded image: PIL image or HxWx3 array), or a folder that
#: holds the files under their base names.
ImageSource = Mapping[str, Any] | Callable[[str], Any] | str | Path | None


def _in_folder(base: Path, key: str) -> Path | None:
    """The file ``key`` names under ``base`` (as given, then by base name), confined to ``base``.

    A name that resolves outside ``base`` (``../x.jpg``, an absolute path, a symlink that
    points out) is refused: None, and nothing outside is read.
    """
    from imm_analysis.io.paths import PathError, confine

    for cand in (key, Path(key.split("?")[0]).name):
        if not cand:
            continue
        try:
            path = confine(cand, base)
        except PathError:
            continue
        if path.is_file():
            return path
    return None


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
                found = _in_folder(base, k)
                if found is not None:
                    return found
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
    """Decode through :func:`imm_analysis.io.media.read_image` (EXIF orientation, pixel limit); regular files only."""
    from imm_analysis.io.media import read_image
    from imm_analysis.io.paths import check_regular

    check_regular(path)
    return read_image(path)[0]


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

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("RGB", (200, 100), "red").save(os.path.join(folder, "f1.png"))
    >>> row = {"file_id": "f1.png", "left": 50, "top": 20, "width": 60, "height": 60}
    >>> crop = load_face_crop(row, folder, size=32)
    >>> crop.shape, crop[16, 16].tolist()
    ((32, 32, 3), [255, 0, 0])
    >>> load_face_crop({**row, "file_id": "../secret.png"}, folder) is None  # never read outside images=
    True
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
    return np.asarray(Image.fromarray(out).resize((size, size), Image.Resampling.BILINEAR))


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

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> images = {"f1.png": np.full((100, 200, 3), (255, 0, 0), np.uint8)}  # or a folder, or a callable
    >>> figures = pd.DataFrame({"file_id": ["f1.png", "missing.png"], "left": [50, 0], "top": [20, 0],
    ...                         "width": [90, 10], "height": [90, 10], "face_quality": [0.9, 0.4],
    ...                         "pitch": [0, 0], "roll": [0, 0], "yaw": [0, 0]})
    >>> fig = plot_face_montage(figures, images, ncols=2)
    >>> [a.get_title().splitlines()[-1] for a in fig.axes]
    ['q=0.90', 'not HD: too_small']
    >>> [t.get_text() for t in fig.axes[1].texts]
    ['no image']
    """
    mpl_figure = require("matplotlib.figure", purpose="plot_face_montage")

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
        fig = mpl_figure.Figure(figsize=(1.55 * ncols, 1.75 * nrows + (0.35 if title else 0)), layout="constrained")
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

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> photo = np.full((100, 200, 3), (255, 0, 0), np.uint8)
    >>> figures = pd.DataFrame({"file_id": ["f1.png", "f1.png", "f1.png"], "figure_cluster_id": ["C1", "C1", "C2"],
    ...                         "left": [10, 100, 50], "top": [10, 10, 10], "width": [80, 80, 80], "height": [80, 80, 80],
    ...                         "face_quality": [0.9, 0.95, 0.9]})
    >>> fig = plot_cluster_montage(figures, "C1", lambda file_id: photo)  # images from a callable
    >>> fig.get_suptitle(), len([a for a in fig.axes if a.get_visible()])
    ('C1: 2 faces', 2)
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
