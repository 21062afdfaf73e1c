"""Pair the faces two detectors found in the same files: :func:`match_faces`.

IMM's export and a local run of the same photos (or two model packs) give the same people other
face ids and other file ids. Files are paired by a key both sides share (``uri`` by default, or a
content hash), faces by box overlap (IoU) with a one-to-one assignment per file: vectorised across
files where a face has a single candidate, Hungarian assignment only inside the files where
several faces compete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FaceMatch", "match_faces", "box_iou"]


@dataclass
class FaceMatch:
    """What :func:`match_faces` returns.

    Attributes
    ----------
    pairs : DataFrame
        One row per matched face: the file key (column named like ``on``), ``figure_id_a``,
        ``figure_id_b``, ``iou``, and ``row_a`` / ``row_b`` (positions in the inputs).
    only_a, only_b : DataFrame
        The faces found on one side only, as rows of that side's figures frame.
    key : str
        The file-key column of :attr:`pairs`.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"uri": ["x.jpg"], "figure_id": ["a1"], "left": [0], "top": [0], "width": [50],
    ...                   "height": [50]})
    >>> match_faces(a, a.assign(figure_id="b1", left=2))
    FaceMatch(1 pairs (median IoU 0.92), 0 only in a, 0 only in b)
    """

    pairs: pd.DataFrame
    only_a: pd.DataFrame
    only_b: pd.DataFrame
    key: str = "uri"

    def __repr__(self) -> str:
        iou = self.pairs["iou"].median() if len(self.pairs) else float("nan")
        return (f"FaceMatch({len(self.pairs)} pairs (median IoU {iou:.2f}), {len(self.only_a)} only in a, "
                f"{len(self.only_b)} only in b)")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of boxes ``[left, top, width, height]`` (arrays of shape (n, 4)); NaN boxes give NaN.

    Examples
    --------
    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10]])).round(3)
    array([0.333])
    """
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def _figures(obj: Any, name: str) -> pd.DataFrame:
    if isinstance(obj, tuple) and len(obj) == 2:
        obj = obj[1]
    if hasattr(obj, "figures") and not isinstance(obj, pd.DataFrame):
        obj = obj.figures
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"{name} must be a figures DataFrame (or a (clusters, figures) pair), not {type(obj).__name__}")
    return obj


def _text(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A text column as an object array, None where missing."""
    values: np.ndarray = frame[col].astype("string").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
    return values


def _numeric(frame: pd.DataFrame, col: str, name: str) -> np.ndarray:
    """``frame[col]`` as float64 (NaN where missing); a ValueError names the side, the field and the face."""
    values = frame[col]
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        face = frame["figure_id"].iloc[i] if "figure_id" in frame.columns else f"row {i}"
        raise ValueError(f"{name}: field {col!r} of face {face!r} is not a number: {values.iloc[i]!r}")
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def _boxes(frame: pd.DataFrame, name: str) -> np.ndarray:
    cols = ["left", "top", "width", "height"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise KeyError(f"{name}: the figures frame needs box columns {missing}")
    return np.column_stack([_numeric(frame, c, name) for c in cols])


def match_faces(a: Any, b: Any, *, on: str | tuple[str, str] = "uri", min_iou: float = 0.5) -> FaceMatch:
    """Pair the faces of two figures frames of the same files by box overlap, one to one.

    Parameters
    ----------
    a, b : figures DataFrame or (clusters, figures) pair
        E.g. IMM's export and a local run (``embed_images(...).figures``) of the same photos.
    on : str or (str, str), default="uri"
        The file key: a column of both frames (``"uri"``, ``"file_hash"``...), or one column
        name per side. Faces whose key is missing are unmatched.
    min_iou : float, default=0.5
        Faces pair only when their boxes' intersection over union reaches this.

    Returns
    -------
    FaceMatch
        ``.pairs`` (file key, ``figure_id_a``, ``figure_id_b``, ``iou``), ``.only_a``, ``.only_b``.

    Notes
    -----
    Candidate pairs come from one hash join on the file key (the sum over files of
    ``n_a * n_b`` rows); a face with one candidate and whose candidate has one candidate is
    paired directly. Files where faces compete are solved with
    :func:`scipy.optimize.linear_sum_assignment` maximising the total IoU.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"uri": ["x.jpg", "x.jpg"], "figure_id": ["a1", "a2"], "left": [0, 100],
    ...                   "top": [0, 0], "width": [50, 50], "height": [50, 50]})
    >>> b = pd.DataFrame({"uri": ["x.jpg"], "figure_id": ["b1"], "left": [103], "top": [2],
    ...                   "width": [50], "height": [50]})
    >>> m = match_faces(a, b)
    >>> m.pairs[["uri", "figure_id_a", "figure_id_b"]].values.tolist(), m.only_a["figure_id"].tolist()
    ([['x.jpg', 'a2', 'b1']], ['a1'])
    """
    fa, fb = _figures(a, "a"), _figures(b, "b")
    key_a, key_b = (on, on) if isinstance(on, str) else on
    for frame, key, name in ((fa, key_a, "a"), (fb, key_b, "b")):
        if key not in frame.columns:
            raise KeyError(f"{name}: no file-key column {key!r} (pass on= a column both frames have, e.g. 'uri')")
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    ka, kb = _text(fa, key_a), _text(fb, key_b)
    codes, uniq = pd.factorize(np.concatenate([ka, kb]), use_na_sentinel=True)
    ca, cb = codes[: len(ka)], codes[len(ka):]
    # candidate pairs: every a-face x b-face of the same file (int hash join)
    left = pd.DataFrame({"f": ca[ca >= 0], "ia": np.flatnonzero(ca >= 0)})
    right = pd.DataFrame({"f": cb[cb >= 0], "ib": np.flatnonzero(cb >= 0)})
    cand = left.merge(right, on="f", how="inner", sort=False)
    ia, ib, f = cand["ia"].to_numpy(), cand["ib"].to_numpy(), cand["f"].to_numpy()
    iou = box_iou(_boxes(fa, "a")[ia], _boxes(fb, "b")[ib]) if len(ia) else np.empty(0)
    ok = iou >= min_iou  # NaN -> False
    ia, ib, f, iou = ia[ok], ib[ok], f[ok], iou[ok]
    deg_a = np.bincount(ia, minlength=len(fa))
    deg_b = np.bincount(ib, minlength=len(fb))
    simple = (deg_a[ia] == 1) & (deg_b[ib] == 1)
    keep = simple.copy()
    if not simple.all():
        keep |= _assign(ia, ib, f, iou, ~simple)
    ia, ib, f, iou = ia[keep], ib[keep], f[keep], iou[keep]
    order = np.lexsort((ib, ia))
    ia, ib, f, iou = ia[order], ib[order], f[order], iou[order]
    key_name = key_a if key_a == key_b else f"{key_a}_a"
    fid_a = _text(fa, "figure_id") if "figure_id" in fa.columns else ia.astype(str).astype(object)
    fid_b = _text(fb, "figure_id") if "figure_id" in fb.columns else ib.astype(str).astype(object)
    pairs = pd.DataFrame({
        key_name: pd.array(np.asarray(uniq, dtype=object)[f], dtype="string"),
        "figure_id_a": pd.array(fid_a[ia], dtype="string"),
        "figure_id_b": pd.array(fid_b[ib], dtype="string"),
        "iou": iou,
        "row_a": ia,
        "row_b": ib,
    })
    matched_a = np.zeros(len(fa), dtype=bool)
    matched_a[ia] = True
    matched_b = np.zeros(len(fb), dtype=bool)
    matched_b[ib] = True
    return FaceMatch(pairs, fa.loc[~matched_a], fb.loc[~matched_b], key_name)


def _assign(ia: np.ndarray, ib: np.ndarray, f: np.ndarray, iou: np.ndarray, contested: np.ndarray) -> np.ndarray:
    """Hungarian assignment (max total IoU) inside each file holding a contested pair; the pairs kept."""
    from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

    keep = np.zeros(len(ia), dtype=bool)
    files = np.unique(f[contested])
    rows = np.flatnonzero(np.isin(f, files))
    rows = rows[np.argsort(f[rows], kind="stable")]
    bounds = np.flatnonzero(np.diff(f[rows])) + 1
    for group in np.split(rows, bounds):
        ua, ra = np.unique(ia[group], return_inverse=True)
        ub, rb = np.unique(ib[group], return_inverse=True)
        cost = np.zeros((len(ua), len(ub)))
        cost[ra, rb] = iou[group]
        r, c = linear_sum_assignment(cost, maximize=True)
        chosen = np.full((len(ua), len(ub)), -1, dtype=np.int64)
        chosen[ra, rb] = group
        picked = chosen[r, c]
        keep[picked[picked >= 0]] = True
    return keep
