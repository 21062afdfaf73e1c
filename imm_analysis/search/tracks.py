"""Link the faces sampled from a video into face tracks (one person, one continuous appearance).

A video embedded at ``fps`` samples per second gives faces at discrete timestamps. A track
follows one person from sample to sample:

* At each sample, the faces found are assigned to the tracks still open with the Hungarian
  method (:func:`scipy.optimize.linear_sum_assignment`), maximising ``similarity + iou_weight x IoU``
  (cosine similarity of the embeddings, overlap of the boxes).
* A face may join a track only when its cosine similarity to the track passes ``threshold``
  (or, when the boxes overlap by at least ``min_iou``, the looser ``link_threshold``): a
  different person is never appended to a track, whatever the boxes do. Two faces of one
  sample never join the same track.
* A track ends when no face joined it for longer than ``gap`` seconds (default: one second,
  and never less than two sample intervals, see :func:`default_gap`). A person who leaves and
  comes back after the gap starts a new track.
* A track is compared through the mean of its faces so far (unit length), which follows slow
  changes of pose and light better than its first face.

Everything here is numpy and pandas; no model is run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_GAP_S", "box_iou", "default_gap", "link_faces", "track_embeddings"]

#: Default longest absence (seconds) inside one track, before the two-sample-interval floor.
DEFAULT_GAP_S = 1.0
_IOU_WEIGHT = 0.5


def default_gap(fps: float, gap: float | None = None) -> float:
    """The gap (seconds) that ends a track: ``gap`` (default 1 s), never below two sample intervals.

    Examples
    --------
    >>> default_gap(2.0), default_gap(0.5), default_gap(4.0, gap=0.1)
    (1.0, 4.0, 0.5)
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    g = DEFAULT_GAP_S if gap is None else float(gap)
    return max(g, 2.0 / float(fps))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``(left, top, width, height)``: an ``(len(a), len(b))`` matrix.

    Examples
    --------
    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10], [20, 20, 5, 5]])).round(3).tolist()
    [[0.333, 0.0]]
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0][:, None], b[:, 0][None]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1][:, None], b[:, 1][None]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _grow(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Boxes ``(left, top, width, height)`` scaled by ``factor`` about their centres."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if factor == 1.0:
        return b
    w, h = b[:, 2] * factor, b[:, 3] * factor
    return np.stack([b[:, 0] + b[:, 2] / 2 - w / 2, b[:, 1] + b[:, 3] / 2 - h / 2, w, h], axis=1)


def link_faces(
    timestamps: np.ndarray,
    boxes: np.ndarray,
    embeddings: np.ndarray,
    *,
    threshold: float,
    gap: float,
    link_threshold: float | None = None,
    min_iou: float = 0.3,
    grow: float = 2.0,
) -> np.ndarray:
    """Track number (0, 1, ...) of each face of ONE video.

    Parameters
    ----------
    timestamps : ndarray of shape (n,)
        Time of each face's sample, in seconds (faces of one sample share it).
    boxes : ndarray of shape (n, 4)
        ``left, top, width, height`` of each face.
    embeddings : ndarray of float32, shape (n, dim)
        Unit-length embeddings, row-aligned.
    threshold : float
        Cosine similarity a face needs to join a track (the person's identity check). Pass
        ``-inf`` to link by overlap alone (then ``min_iou`` decides).
    gap : float
        Longest absence (seconds) inside a track.
    link_threshold : float, optional
        A looser similarity accepted when the boxes overlap by at least ``min_iou`` (the face
        barely moved). Default: ``threshold``.
    min_iou : float, default=0.3
        Box overlap needed for ``link_threshold``.
    grow : float, default=2.0
        Boxes are compared enlarged this many times about their centres, so a face that moved
        by up to about half its size between two samples still overlaps its track.

    Returns
    -------
    ndarray of int64, shape (n,)
        Tracks are numbered in order of their first face.

    Notes
    -----
    Time O(sum over samples of open tracks x faces), memory O(open tracks x dim).

    Examples
    --------
    >>> e = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]], np.float32)
    >>> t = np.array([0.0, 0.0, 0.5, 0.5, 3.0])
    >>> b = np.array([[0, 0, 10, 10], [50, 0, 10, 10]] * 2 + [[0, 0, 10, 10]])
    >>> link_faces(t, b, e, threshold=0.5, gap=1.0).tolist()
    [0, 1, 0, 1, 2]
    """
    from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

    t = np.asarray(timestamps, np.float64)
    bx = np.asarray(boxes, np.float64).reshape(-1, 4)
    x = np.asarray(embeddings, np.float32)
    n = len(t)
    if not (len(bx) == len(x) == n):
        raise ValueError(f"timestamps ({n}), boxes ({len(bx)}) and embeddings ({len(x)}) must have the same length")
    loose = threshold if link_threshold is None else min(float(link_threshold), float(threshold))
    labels = np.full(n, -1, np.int64)
    if n == 0:
        return labels
    sums: list[np.ndarray] = []  # running sum of each track's embeddings
    last_box: list[np.ndarray] = []
    last_t: list[float] = []
    order = np.argsort(t, kind="stable")
    times, starts = np.unique(t[order], return_index=True)
    bounds = [*starts.tolist(), n]
    eps = 1e-6
    for k, now in enumerate(times):
        rows = order[bounds[k] : bounds[k + 1]]
        open_ = [i for i in range(len(sums)) if now - last_t[i] <= gap + eps and last_t[i] < now]
        assigned = np.full(len(rows), -1, np.int64)
        if open_:
            means = np.stack([sums[i] for i in open_])
            means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
            sim = means @ x[rows].T
            iou = box_iou(_grow(np.stack([last_box[i] for i in open_]), grow), _grow(bx[rows], grow))
            ok = (sim >= threshold) | ((iou >= min_iou) & (sim >= loose))
            if ok.any():
                gain = np.where(ok, sim + _IOU_WEIGHT * iou, -1e6)
                r, c = linear_sum_assignment(-gain)
                for ti, fj in zip(r, c, strict=True):
                    if ok[ti, fj]:
                        assigned[fj] = open_[ti]
        for j, row in enumerate(rows):
            tr = int(assigned[j])
            if tr < 0:
                tr = len(sums)
                sums.append(np.zeros(x.shape[1], np.float64))
                last_box.append(bx[row])
                last_t.append(float(now))
            sums[tr] += x[row]
            last_box[tr] = bx[row]
            last_t[tr] = float(now)
            labels[row] = tr
    return labels


def track_embeddings(
    labels: np.ndarray, embeddings: np.ndarray, quality: np.ndarray | None = None, *, best: int = 5
) -> np.ndarray:
    """One unit-length float32 embedding per track: the mean of its ``best`` highest-quality faces.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
        Track number of each face, ``0 .. n_tracks - 1``.
    embeddings : ndarray of float32, shape (n, dim)
    quality : ndarray of shape (n,), optional
        Face quality (higher is better; NaN counts as lowest). Default: every face equal.
    best : int, default=5
        Faces averaged per track.

    Examples
    --------
    >>> e = np.array([[1, 0], [0.8, 0.6], [0, 1]], np.float32)
    >>> track_embeddings(np.array([0, 0, 1]), e, np.array([0.9, 0.1, 0.5]), best=1).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    labels = np.asarray(labels, np.int64)
    x = np.asarray(embeddings, np.float32)
    n_tracks = int(labels.max()) + 1 if len(labels) else 0
    q = np.zeros(len(labels)) if quality is None else np.nan_to_num(np.asarray(quality, np.float64), nan=-1.0)
    out = np.zeros((n_tracks, x.shape[1]), np.float32)
    order = np.lexsort((-q, labels))  # by track, best quality first
    rank = np.empty(len(labels), np.int64)
    if len(labels):
        sorted_labels = labels[order]
        first = np.r_[0, np.flatnonzero(np.diff(sorted_labels)) + 1]
        counts = np.diff(np.r_[first, len(labels)])
        rank[order] = np.arange(len(labels)) - np.repeat(first, counts)
    keep = rank < best
    np.add.at(out, labels[keep], x[keep])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, 1e-12)).astype(np.float32)
