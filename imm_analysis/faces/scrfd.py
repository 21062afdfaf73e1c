"""SCRFD detector decoding: per-stride scores, box distances and keypoints to boxes, with NMS.

Follows insightface's ``SCRFD.detect``: for each stride (8, 16, 32, or five strides for the
larger exports) the anchor centres of the feature map, the scores above the threshold, the
box and keypoint distances scaled by the stride, then non-maximum suppression over all strides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["decode_scrfd", "group_outputs", "strides_for"]


def strides_for(n_outputs: int) -> tuple[tuple[int, ...], int]:
    """``(strides, anchors per location)`` of an SCRFD export with keypoints, from its output count.

    Examples
    --------
    >>> strides_for(9)
    ((8, 16, 32), 2)
    """
    fmc = n_outputs // 3
    return ((8, 16, 32), 2) if fmc == 3 else ((8, 16, 32, 64, 128), 1)


def group_outputs(outs: Sequence[np.ndarray]) -> tuple[list[int], list[int], list[int]]:
    """Output indices of scores, boxes and keypoints (last dimension 1, 4, 10), largest map (stride 8) first.

    Examples
    --------
    >>> outs = [np.zeros((8, 4)), np.zeros((32, 1)), np.zeros((8, 1)), np.zeros((32, 4)),
    ...         np.zeros((32, 10)), np.zeros((8, 10))]
    >>> group_outputs(outs)
    ([1, 2], [3, 0], [4, 5])
    """
    groups: dict[int, list[int]] = {1: [], 4: [], 10: []}
    for i, o in enumerate(outs):
        groups.setdefault(o.shape[-1], []).append(i)
    s, b, k = (sorted(groups[key], key=lambda i: -outs[i].size) for key in (1, 4, 10))
    return s, b, k


def decode_scrfd(
    outs: Sequence[np.ndarray],
    groups: tuple[list[int], list[int], list[int]],
    strides: Sequence[int],
    anchors: int,
    *,
    scale: float,
    size: tuple[int, int],
    det_thresh: float,
    nms_thresh: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes, scores and keypoints of one image from the detector's per-stride outputs.

    Parameters
    ----------
    outs : sequence of ndarray
        The detector's outputs for one image.
    groups : (list, list, list)
        :func:`group_outputs` of such outputs.
    strides, anchors
        :func:`strides_for` the detector.
    scale : float
        Detector input pixels per image pixel.
    size : (int, int)
        The detector canvas ``(w, h)``.
    det_thresh, nms_thresh : float
        Minimum score; IoU above which a lower-scored box is dropped.

    Returns
    -------
    boxes : ndarray of float32, shape (n, 5)
        ``x1, y1, x2, y2, score`` in image pixels, by descending score.
    kps : ndarray of float32, shape (n, 5, 2)

    Examples
    --------
    >>> outs = [np.zeros((2 * 4 * 4, 1)), np.zeros((2 * 4 * 4, 4)), np.zeros((2 * 4 * 4, 10))]
    >>> boxes, kps = decode_scrfd(outs, ([0], [1], [2]), [8], 2, scale=1.0, size=(32, 32),
    ...                           det_thresh=0.5, nms_thresh=0.4)
    >>> boxes.shape, kps.shape
    ((0, 5), (0, 5, 2))
    """
    s_idx, b_idx, k_idx = groups
    w, h = size
    boxes, points, scores = [], [], []
    for si, bi, ki, stride in zip(s_idx, b_idx, k_idx, strides, strict=True):
        sc = outs[si].reshape(-1)
        keep = np.where(sc >= det_thresh)[0]
        if not len(keep):
            continue
        centers = _anchor_centers(h // stride, w // stride, stride, anchors)[keep]
        d = outs[bi].reshape(-1, 4)[keep] * stride
        boxes.append(np.stack([centers[:, 0] - d[:, 0], centers[:, 1] - d[:, 1],
                               centers[:, 0] + d[:, 2], centers[:, 1] + d[:, 3]], axis=1))
        k = outs[ki].reshape(-1, 10)[keep] * stride
        points.append(k.reshape(-1, 5, 2) + centers[:, None, :])
        scores.append(sc[keep])
    if not boxes:
        return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    b = np.concatenate(boxes) / scale
    k = np.concatenate(points) / scale
    s = np.concatenate(scores)
    order = _nms(b, s, nms_thresh)
    dets = np.hstack([b[order], s[order, None]]).astype(np.float32)
    return dets, k[order].astype(np.float32)


_CENTER_CACHE: dict[tuple[int, int, int, int], np.ndarray] = {}


def _anchor_centers(fh: int, fw: int, stride: int, anchors: int) -> np.ndarray:
    key = (fh, fw, stride, anchors)
    c = _CENTER_CACHE.get(key)
    if c is None:
        ys, xs = np.mgrid[:fh, :fw]
        c = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
        if anchors > 1:
            c = np.repeat(c, anchors, axis=0)
        _CENTER_CACHE[key] = c
    return c


def _nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= thresh]
    return np.asarray(keep, dtype=np.int64)
