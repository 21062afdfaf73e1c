"""The optional visitor gallery: one cover face per visitor and the files each visitor appears in.

Off by default (``visitor_report(..., faces=False)``): a report meant to be shared should not
carry faces. :func:`gallery_table` is pure pandas (which face is each visitor's cover, which
files hold the visitor); :func:`thumbnail_png` cuts one face out of its image through
:func:`imm_analysis.io.media.read_image` (with its pixel limit, so a decompression bomb is
refused) with the face's boundary box and a margin, and returns a small PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["gallery_table", "thumbnail_png", "THUMB_SIZE"]

#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 96
_BOX = ["left", "top", "width", "height"]


def _local_path(uri: object, extra: object = None) -> str | None:
    """A local file for a face's image: its ``uri`` when that is a path, else ``extra['path']``."""
    if isinstance(extra, dict) and isinstance(extra.get("path"), str):
        return extra["path"]
    if isinstance(uri, str) and uri and "://" not in uri:
        return uri
    if isinstance(uri, str) and uri.startswith("file://"):
        return uri[len("file://") :]
    return None


def gallery_table(
    figures: pd.DataFrame, visitor_ids: np.ndarray, rows: np.ndarray, visitor_codes: np.ndarray,
    order: pd.Series, clusters: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Cover face and member files per visitor.

    Parameters
    ----------
    figures : DataFrame
        The faces (``uri``, ``file_id``, boundary box ``left, top, width, height``; ``face_quality``).
    visitor_ids : ndarray of str
        Visitor id per visitor code.
    rows : ndarray of int
        Row of ``figures`` of each sighting.
    visitor_codes : ndarray of int
        Visitor code of each sighting (aligned with ``rows``).
    order : Series
        The visitor ids to list, in the report's order (``name`` alongside when known).
    clusters : DataFrame, optional
        Clusters frame: a ``cover_file_id`` picks the cover face's file.

    Returns
    -------
    DataFrame
        ``visitor_id, name, n_files, files, cover_uri, cover_path, left, top, width, height``.

    Examples
    --------
    >>> f = pd.DataFrame({"uri": ["/a.jpg", "/b.jpg"], "file_id": ["a", "b"], "left": [1, 2], "top": [1, 2],
    ...                   "width": [10, 20], "height": [10, 20], "face_quality": [0.5, 0.9]})
    >>> g = gallery_table(f, np.array(["C1"]), np.array([0, 1]), np.array([0, 0]), pd.Series(["C1"]))
    >>> g[["visitor_id", "n_files", "files", "cover_uri"]].to_dict("records")
    [{'visitor_id': 'C1', 'n_files': 2, 'files': 'a.jpg, b.jpg', 'cover_uri': '/b.jpg'}]
    """
    n = len(rows)
    uri = figures["uri"].astype("string").to_numpy(object, na_value="")[rows] if "uri" in figures else np.full(n, "")
    fid = figures["file_id"].astype("string").to_numpy(object, na_value="")[rows] if "file_id" in figures else uri
    box = {c: pd.to_numeric(figures[c], errors="coerce").to_numpy("float64", na_value=np.nan)[rows]
           if c in figures else np.full(n, np.nan) for c in _BOX}
    q = (pd.to_numeric(figures["face_quality"], errors="coerce").to_numpy("float64", na_value=np.nan)[rows]
         if "face_quality" in figures else np.full(n, np.nan))
    extra = figures["extra"].to_numpy(object)[rows] if "extra" in figures else np.full(n, None, dtype=object)
    frame = pd.DataFrame({"v": visitor_ids[visitor_codes], "uri": uri, "fid": fid,
                          "area": np.nan_to_num(box["width"] * box["height"]), "q": np.nan_to_num(q, nan=-1.0),
                          "pos": np.arange(n)})
    cover_file = {}
    if clusters is not None and {"cluster_id", "cover_file_id"} <= set(clusters.columns):
        c = clusters.dropna(subset=["cover_file_id"])
        cover_file = dict(zip(c["cluster_id"].astype(str), c["cover_file_id"].astype(str), strict=True))
    frame["is_cover_file"] = [cover_file.get(v) == f for v, f in zip(frame["v"], frame["fid"], strict=True)]
    best = frame.sort_values(["v", "is_cover_file", "q", "area", "pos"], ascending=[True, False, False, False, True],
                             kind="stable").drop_duplicates("v").set_index("v")
    names = frame.assign(name=[u.rsplit("/", 1)[-1] for u in frame["uri"]])
    files = names.drop_duplicates(["v", "uri"]).groupby("v", sort=False)["name"].agg(lambda s: ", ".join(sorted(s)))
    n_files = names.drop_duplicates(["v", "uri"]).groupby("v", sort=False).size()
    ids = order.astype(str).tolist()
    pos = best.reindex(ids)["pos"].to_numpy("float64", na_value=np.nan)
    ok = np.isfinite(pos)
    p = np.where(ok, pos, 0).astype(np.int64)
    out = pd.DataFrame({
        "visitor_id": pd.array(ids, dtype="string"),
        "n_files": n_files.reindex(ids).fillna(0).astype(np.int64).to_numpy(),
        "files": pd.array(files.reindex(ids).fillna("").tolist(), dtype="string"),
        "cover_uri": pd.array([str(uri[i]) if k else None for i, k in zip(p, ok, strict=True)], dtype="string"),
        "cover_path": pd.array([_local_path(uri[i], extra[i]) if k else None for i, k in zip(p, ok, strict=True)],
                               dtype="string"),
    })
    for col in _BOX:
        out[col] = np.where(ok, box[col][p], np.nan)
    return out


def thumbnail_png(path: str | Path, box: tuple[float, float, float, float], *, size: int = THUMB_SIZE,
                  margin: float = 0.25) -> bytes:
    """PNG bytes of the face in ``box`` (``left, top, width, height``, original pixels) of image ``path``.

    The image is read with :func:`imm_analysis.io.media.read_image` (EXIF orientation applied,
    pixel limit enforced); the box grows by ``margin`` of its size on each side, is clipped to the
    image and shrunk so its longest side is at most ``size``.

    Raises
    ------
    MediaError
        When the image cannot be read; ``ValueError`` when the box is empty or outside the image.

    Examples
    --------
    >>> import tempfile, os
    >>> from PIL import Image
    >>> p = os.path.join(tempfile.mkdtemp(), "g.png")
    >>> Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(p)
    >>> Image.open(io.BytesIO(thumbnail_png(p, (100, 50, 80, 100)))).size
    (77, 96)
    """
    from PIL import Image

    from imm_analysis.io.media import read_image

    left, top, width, height = (float(v) for v in box)
    if not (np.isfinite([left, top, width, height]).all() and width > 0 and height > 0):
        raise ValueError(f"{path}: no boundary box for the face ({box})")
    rgb, _ = read_image(path)
    h, w = rgb.shape[:2]
    mx, my = margin * width, margin * height
    x0, y0 = max(0, int(left - mx)), max(0, int(top - my))
    x1, y1 = min(w, int(np.ceil(left + width + mx))), min(h, int(np.ceil(top + height + my)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{path}: the face's box {box} is outside the {w}x{h} image")
    im = Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
