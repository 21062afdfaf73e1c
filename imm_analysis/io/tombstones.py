"""Tombstones of forgotten faces: a content hash and a box, never an embedding or pixels.

When a person is forgotten (:func:`imm_analysis.forget`) or a face expires, each of its faces
leaves a tombstone ``{"file_id", "frame_index", "box"}``: the file's content id (for the local
pipeline the first 32 hex digits of the file's SHA-256, see :mod:`imm_analysis.faces.embed`), the
video frame (None for images) and the face box ``[left, top, width, height]`` in original pixels.
A tombstone identifies a face *position in a file*, not a person: it holds no embedding, no crop
and no name.

Stores honour tombstones so that the person does not come back:

* the embedding cache (``cache_dir/tombstones.json``): :class:`~imm_analysis.faces.cache.EmbeddingCache`
  leaves tombstoned faces out when it loads, and ``embed_images`` / ``embed_crops`` leave them out
  of their results, also for files embedded again;
* a :class:`~imm_analysis.ClusterState` keeps its tombstones in its saved ``state.json``;
  :meth:`~imm_analysis.ClusterState.update` skips tombstoned faces.

A face matches a tombstone when it has the same ``file_id`` and frame and its box overlaps the
tombstone's with an intersection over union of at least :data:`MIN_IOU` (boxes of one face from two
runs differ by a few pixels with other decode scales). Other faces of the same photo do not match.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.io.atomic import atomic_write_bytes

__all__ = ["FILE_NAME", "MIN_IOU", "add_tombstones", "read_tombstones", "tombstone_rows", "tombstoned_mask"]

#: Name of the tombstone file in an embedding cache folder.
FILE_NAME = "tombstones.json"
#: Intersection over union from which a face's box matches a tombstone's box.
MIN_IOU = 0.5
_BOX = ("left", "top", "width", "height")


def _frame(value: Any) -> int:
    try:
        return -1 if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return -1


def _num(v: Any) -> float:
    try:
        return 0.0 if v is None or pd.isna(v) else float(v)
    except (TypeError, ValueError):
        return 0.0


def tombstone_rows(figures: pd.DataFrame | Sequence[Mapping[str, Any]], *, reason: str = "forget",
                   time: str | None = None) -> list[dict[str, Any]]:
    """Tombstones of the faces in ``figures`` (rows with ``file_id`` and a box).

    Parameters
    ----------
    figures : DataFrame or sequence of dict
        Face rows: ``file_id``, ``left``, ``top``, ``width``, ``height`` and optionally ``frame_index``.
    reason : str, default="forget"
        Why the faces went (``"forget"`` or ``"expire"``).
    time : str, optional
        ISO time of the erasure (now by default).

    Returns
    -------
    list of dict
        ``file_id``, ``frame_index`` (None for images), ``box``, ``reason``, ``time``.

    Examples
    --------
    >>> rows = tombstone_rows([{"file_id": "ab", "left": 1, "top": 2, "width": 3, "height": 4}], time="t")
    >>> rows[0]["box"], rows[0]["frame_index"]
    ([1.0, 2.0, 3.0, 4.0], None)
    """
    recs: list[Any] = figures.to_dict("records") if isinstance(figures, pd.DataFrame) else list(figures)
    when = time or pd.Timestamp.now(tz="UTC").isoformat()
    out = []
    for r in recs:
        if r.get("file_id") is None or pd.isna(r.get("file_id")):
            continue
        box = [_num(r.get(k)) for k in _BOX]
        fi = _frame(r.get("frame_index"))
        out.append({"file_id": str(r["file_id"]), "frame_index": None if fi < 0 else fi, "box": box,
                    "reason": reason, "time": when})
    return out


def read_tombstones(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The tombstones kept in ``folder/tombstones.json`` (none when the file is absent).

    Examples
    --------
    >>> import tempfile
    >>> read_tombstones(tempfile.mkdtemp())
    []
    """
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a tombstone file ({exc})") from None
    rows = doc.get("tombstones") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: no 'tombstones' list")
    for i, row in enumerate(rows):
        problem = _row_problem(row)
        if problem is not None:
            raise ValueError(f"{path}: tombstone {i}: {problem}")
    return rows


def _row_problem(row: Any) -> str | None:
    """What is wrong with one stored tombstone (None when it can be matched against faces)."""
    if not isinstance(row, dict):
        return f"expected an object, got {type(row).__name__}"
    if not isinstance(row.get("file_id"), str):
        return f"field 'file_id': expected text, got {_short(row.get('file_id'))}"
    box = row.get("box")
    if not (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        return f"field 'box': expected [left, top, width, height] numbers, got {_short(box)}"
    frame = row.get("frame_index")
    if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool)):
        return f"field 'frame_index': expected an integer or null, got {_short(frame)}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def add_tombstones(folder: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                   *, write: Any = atomic_write_bytes) -> Path:
    """Add ``rows`` to ``folder/tombstones.json`` (written atomically; duplicates kept once).

    ``write`` is the writer used (``atomic_write_bytes``; replaced by fault-injection tests).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> row = tombstone_rows([{"file_id": "ab", "left": 0, "top": 0, "width": 2, "height": 2}], time="t")
    >>> _ = add_tombstones(d, row); _ = add_tombstones(d, row)
    >>> len(read_tombstones(d))
    1
    """
    folder = Path(folder)
    old = read_tombstones(folder)
    seen = {_identity(r) for r in old}
    merged = list(old)
    for r in rows:
        if _identity(r) not in seen:
            seen.add(_identity(r))
            merged.append(dict(r))
    path = folder / FILE_NAME
    write(path, json.dumps({"format": 1, "tombstones": merged}, indent=1).encode())
    return path


def _identity(r: Mapping[str, Any]) -> tuple:
    return (str(r["file_id"]), _frame(r.get("frame_index")), tuple(round(float(v), 1) for v in r["box"]))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) against boxes ``b`` (k, 4), boxes as left, top, width, height."""
    x1 = np.maximum(a[0], b[:, 0])
    y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[0] + a[2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[1] + a[3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def tombstoned_mask(figures: pd.DataFrame | Sequence[Mapping[str, Any]],
                    tombstones: Sequence[Mapping[str, Any]], *, min_iou: float = MIN_IOU) -> np.ndarray:
    """Which faces of ``figures`` match a tombstone (same file and frame, box IoU >= ``min_iou``).

    Examples
    --------
    >>> t = tombstone_rows([{"file_id": "ab", "left": 0, "top": 0, "width": 10, "height": 10}], time="t")
    >>> faces = [{"file_id": "ab", "left": 1, "top": 1, "width": 10, "height": 10},
    ...          {"file_id": "ab", "left": 50, "top": 0, "width": 10, "height": 10}]
    >>> tombstoned_mask(faces, t).tolist()
    [True, False]
    """
    n = len(figures)
    out = np.zeros(n, dtype=bool)
    if not tombstones or not n:
        return out
    by_file: dict[str, list[Mapping[str, Any]]] = {}
    for t in tombstones:
        by_file.setdefault(str(t["file_id"]), []).append(t)
    if isinstance(figures, pd.DataFrame):  # only the rows of tombstoned files become dicts
        if "file_id" not in figures.columns:
            return out
        rows = np.flatnonzero(figures["file_id"].astype("string").isin(list(by_file)).fillna(False).to_numpy(bool))
        recs: list[Any] = figures.iloc[rows].to_dict("records")
    else:
        recs = list(figures)
        rows = np.arange(n)
    for i, r in zip(rows, recs, strict=True):
        fid = r.get("file_id")
        if fid is None or (not isinstance(fid, str) and pd.isna(fid)) or str(fid) not in by_file:
            continue
        frame = _frame(r.get("frame_index"))
        cands = [t for t in by_file[str(fid)] if _frame(t.get("frame_index")) == frame]
        if not cands:
            continue
        try:
            box = np.array([float(r.get(k)) for k in _BOX])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if np.isnan(box).any():
            continue
        boxes = np.array([t["box"] for t in cands], dtype=np.float64)
        out[i] = bool((_iou(box, boxes) >= min_iou).any())
    return out
