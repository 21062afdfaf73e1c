"""Scoring faces and building the rows of the ``files`` and ``figures`` frames.

:func:`score_faces` adds ``sharpness`` and ``face_quality`` (:mod:`imm_analysis.faces.quality`) to
the :class:`~imm_analysis.faces.analyse.FaceRecords` of one image; :func:`face_rows` and
:func:`file_row` turn them into plain dict rows (frames are built once per chunk and per run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from imm_analysis.faces.analyse import FaceRecords
from imm_analysis.faces.prefetch import _Loaded
from imm_analysis.io.media import content_type
from imm_analysis.schema import CLUSTER_UNAVAILABLE

__all__ = ["score_faces", "face_rows", "file_row"]


@dataclass
class _Pending:
    """A file whose faces are detected and aligned, waiting for recognition."""

    loaded: _Loaded
    file_row: dict
    face_rows: list[dict]
    crops: list[np.ndarray]


def file_row(ld: _Loaded, n_faces: int, crop: bool) -> dict:
    item, info = ld.item, ld.info
    row: dict[str, Any] = {
        "file_id": (ld.sha or "")[:32],
        "uri": item.uri,
        "filename": item.path.name,
        "media_type": ld.kind,
        "content_type": getattr(info, "content_type", None) or content_type(item.path),
        "size": ld.size,
        "file_hash": ld.sha,
        "figure_count": n_faces,
        "file_modified_time": datetime.fromtimestamp(ld.mtime, UTC) if ld.mtime is not None else None,
        "extra": {"path": str(item.path), "mode": "crop" if crop else "detect"},
    }
    if ld.kind == "image":
        row.update(image_width=info.width, image_height=info.height, orientation=info.orientation,
                   produce_time=info.produce_time)
    else:
        row.update(video_width=info.width, video_height=info.height, duration=info.duration)
    return row



@dataclass
class Scores:
    """What :func:`score_faces` adds to an image's face records, one value per face."""

    det: np.ndarray  # detector score
    sharpness: np.ndarray
    quality: np.ndarray
    box: np.ndarray  # (n, 4) x1, y1, x2, y2 clipped to the image, original pixels


def score_faces(faces: FaceRecords, image_size: tuple[int, int]) -> Scores:
    """Sharpness, ``face_quality`` and the clipped box of each face.

    Parameters
    ----------
    faces : FaceRecords
        :meth:`FaceModel.analyse` of one image.
    image_size : (int, int)
        The original image's ``(width, height)``.

    Examples
    --------
    >>> f = FaceRecords(np.array([[-5, 10, 60, 90, 0.9]], np.float32), np.zeros((1, 5, 2), np.float32),
    ...                 np.zeros((1, 112, 112, 3), np.uint8), np.zeros((1, 3)), None)
    >>> s = score_faces(f, (50, 100))
    >>> s.box.tolist(), s.sharpness.tolist()
    ([[0.0, 10.0, 50.0, 90.0]], [0.0])
    """
    from imm_analysis.faces.quality import face_quality, sharpness

    w, h = image_size
    boxes = faces.boxes
    sharp = sharpness(faces.crops)
    box = np.stack([np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 1], 0, h),
                    np.clip(boxes[:, 2], 0, w), np.clip(boxes[:, 3], 0, h)], axis=1)
    det = boxes[:, 4].astype(np.float64)
    size = np.minimum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    quality = face_quality(det, sharp, size, faces.pose[:, 0], faces.pose[:, 2])
    return Scores(det, sharp, quality, box)


def face_rows(ld: _Loaded, faces: FaceRecords, scores: Scores, frame_index: int | None = None,
              timestamp: float | None = None) -> list[dict]:
    """Figure rows of one image (or video frame) from its records and scores."""
    attrs = faces.attributes
    return [
        _row(ld, i, frame_index, timestamp, scores.det[i], scores.quality[i], scores.sharpness[i], scores.box[i],
             faces.pose[i], faces.kps[i], attrs[i] if attrs is not None else None)
        for i in range(len(faces))
    ]


def _row(
    ld: _Loaded, i: int, frame_index: int | None, timestamp: float | None, det: float, quality: float, sharp: float,
    box: Sequence[float], pose: np.ndarray, kps: np.ndarray | None, attrs: np.ndarray | None,
) -> dict:
    """One figure row (``box`` = clipped ``x1, y1, x2, y2`` in original pixels)."""
    fid = (ld.sha or "")[:32]
    x1, y1, x2, y2 = box
    row = {
        "file_id": fid,
        "uri": ld.item.uri,
        "media_type": ld.kind,
        "figure_id": f"{fid}-{frame_index or 0}-{i}",
        "figure_cluster_id": CLUSTER_UNAVAILABLE,
        "figure_type": "face",
        "figure_confidence": det,
        "face_quality": quality,
        "sharpness": sharp,
        "left": int(round(x1)),
        "top": int(round(y1)),
        "width": int(round(x2 - x1)),
        "height": int(round(y2 - y1)),
        "pitch": pose[0],
        "roll": pose[1],
        "yaw": pose[2],
        "det_score": det,
        "timestamp": timestamp if timestamp is not None else np.nan,
        "frame_index": frame_index,
        "extra": {"kps": np.round(kps, 2).tolist()} if kps is not None else {},
    }
    if attrs is not None:
        row["age"] = float(attrs[0])
        row["gender"] = "male" if attrs[1] >= 0.5 else "female"
    if ld.info is not None and getattr(ld.info, "produce_time", None) is not None:
        row["produce_time"] = ld.info.produce_time
    return row

