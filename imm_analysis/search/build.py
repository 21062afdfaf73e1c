"""Frames and embeddings of a search library from an ``embed_images`` result (see :mod:`imm_analysis.search.library`).

* :func:`new_media`: media, faces and search items (photo faces, video tracks) of new files,
  the video faces linked into tracks with an identity check calibrated on the new media;
* :func:`known_item_pairs`: pairs of items known to be different people, for the calibration.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.search.score import calibrate_library
from imm_analysis.search.tracks import link_faces, track_embeddings

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.faces.embed import EmbedResult

__all__ = ["BOX", "ERROR_DTYPES", "FACE_DTYPES", "ITEM_DTYPES", "MEDIA_DTYPES", "empty", "known_item_pairs",
           "new_media", "pair_dots", "typed"]

BOX = ["left", "top", "width", "height"]
MEDIA_DTYPES = {"media_id": "string", "uri": "string", "media_type": "string", "duration": "float64",
                 "width": "Int64", "height": "Int64", "face_count": "Int64", "item_count": "Int64"}
FACE_DTYPES = {"figure_id": "string", "media_id": "string", "uri": "string", "media_type": "string",
                "timestamp": "float64", "frame_index": "Int64", "left": "Int64", "top": "Int64",
                "width": "Int64", "height": "Int64", "face_quality": "float64", "track_id": "string",
                "item_id": "string"}
ITEM_DTYPES = {"item_id": "string", "media_id": "string", "uri": "string", "media_type": "string",
                "track_id": "string", "figure_id": "string", "start_time": "float64", "end_time": "float64",
                "left": "Int64", "top": "Int64", "width": "Int64", "height": "Int64", "face_count": "Int64",
                "face_quality": "float64", "figure_cluster_id": "string", "label_name": "string"}
ERROR_DTYPES = {"uri": "string", "path": "string", "file_id": "string", "error": "string", "reason": "string"}
#: False-match rate of the looser identity check for a face whose box overlaps its track's last box.
_LINK_LOOSE_FMR = 1e-2


def typed(frame: pd.DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    out = pd.DataFrame({c: (frame[c] if c in frame else pd.Series(pd.NA, index=frame.index)).astype(d)
                        for c, d in dtypes.items()}, index=frame.index)
    return out.reset_index(drop=True)


def empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in dtypes.items()})


# ---------------------------------------------------------------------------------------------- building
def _chains(faces: pd.DataFrame, emb: np.ndarray, fps: float) -> np.ndarray:
    """Provisional tracks linked by box overlap alone over one sample interval (for calibration)."""
    labels = np.full(len(faces), -1, np.int64)
    nxt = 0
    for _, rows in faces.groupby("media_id", sort=False).indices.items():
        f = faces.iloc[rows]
        lab = link_faces(f["timestamp"].to_numpy(np.float64), f[BOX].to_numpy(np.float64), emb[rows],
                         threshold=np.inf, link_threshold=-np.inf, min_iou=0.5, gap=1.5 / fps)
        labels[rows] = lab + nxt
        nxt += int(lab.max()) + 1 if len(lab) else 0
    return labels


_MAX_KNOWN = 50_000


def _pairs_within(groups: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of rows inside each group (at most ``_MAX_KNOWN`` in all, the first groups first)."""
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    total = 0
    for rows in groups:
        if len(rows) < 2 or total >= _MAX_KNOWN:
            continue
        # the largest m with m (m - 1) / 2 <= pairs still wanted: a photo of thousands of faces never
        # allocates its n^2 / 2 pairs
        m = min(len(rows), int((1 + math.isqrt(1 + 8 * (_MAX_KNOWN - total))) // 2))
        rows = np.asarray(rows)[:m]
        i, j = np.triu_indices(len(rows), 1)
        a.append(np.asarray(rows)[i])
        b.append(np.asarray(rows)[j])
        total += len(i)
    if not a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a)[:_MAX_KNOWN], np.concatenate(b)[:_MAX_KNOWN]


def pair_dots(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x[i], x[j]).astype(np.float64) if len(i) else np.zeros(0)


def _known_face_pairs(faces: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of faces known to be different people: two faces of one photo or one video sample."""
    key = faces["media_id"].astype(str) + "@" + faces["timestamp"].astype("float64").round(4).astype(str)
    return _pairs_within(np.asarray(v) for v in key.groupby(key, sort=False).indices.values())


def known_item_pairs(items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of items known to be different people: faces of one photo, tracks of one video overlapping in time."""
    is_video = (items["media_type"] == "video").fillna(False).to_numpy(bool)
    photo_groups = items.loc[~is_video].groupby("media_id", sort=False).indices
    pi, pj = _pairs_within(np.flatnonzero(~is_video)[g] for g in photo_groups.values())
    a, b = [pi], [pj]
    vid = np.flatnonzero(is_video)
    start = items["start_time"].to_numpy(np.float64)
    end = items["end_time"].to_numpy(np.float64)
    total = len(pi)
    for g in items.iloc[vid].groupby("media_id", sort=False).indices.values():
        rows = vid[g][:2000]
        if len(rows) < 2 or total >= _MAX_KNOWN:
            continue
        s, e = start[rows], end[rows]
        i, j = np.triu_indices(len(rows), 1)
        overlap = (s[i] <= e[j]) & (s[j] <= e[i])
        a.append(rows[i[overlap]])
        b.append(rows[j[overlap]])
        total += int(overlap.sum())
    return np.concatenate(a)[:_MAX_KNOWN], np.concatenate(b)[:_MAX_KNOWN]


def _link_thresholds(reference: np.ndarray, known: np.ndarray, target_fmr: float) -> tuple[float, float]:
    """Identity check for linking (strict, and loose for overlapping boxes) from ``reference`` items."""
    strict = calibrate_library(reference, target_fmr=target_fmr, known=known)
    loose = calibrate_library(reference, target_fmr=max(target_fmr, _LINK_LOOSE_FMR), known=known)
    return strict.threshold, loose.threshold


def new_media(
    res: EmbedResult, fps: float, gap: float, target_fmr: float, known_items: np.ndarray | None,
    link: tuple[float, float] | None,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """media, faces, face embeddings, items, item embeddings of a fresh ``embed_images`` result."""
    files, figs, emb = res.files, res.figures, res.embeddings
    faces = pd.DataFrame({
        "figure_id": figs["figure_id"].astype("string"),
        "media_id": figs["file_id"].astype("string"),
        "uri": figs["uri"].astype("string"),
        "media_type": figs["media_type"].astype("string"),
        "timestamp": figs["timestamp"].astype("float64"),
        "frame_index": figs["frame_index"],
        **{c: figs[c] for c in BOX},
        "face_quality": figs["face_quality"].astype("float64"),
    })
    faces = typed(faces, FACE_DTYPES)
    is_video = (faces["media_type"] == "video").fillna(False).to_numpy(bool)
    vrows = np.flatnonzero(is_video)
    prow = np.flatnonzero(~is_video)
    if link is None and len(vrows):
        chains = _chains(faces.iloc[vrows], emb[vrows], fps)
        ref = [track_embeddings(chains, emb[vrows], faces["face_quality"].to_numpy()[vrows]), emb[prow]]
        if known_items is not None:
            ref.append(known_items)
        try:
            ki, kj = _known_face_pairs(faces)
            link = _link_thresholds(np.concatenate(ref), pair_dots(emb, ki, kj), target_fmr)
        except ValueError as exc:  # too few faces to calibrate: link by box overlap alone
            warnings.warn(f"search library: tracks linked by box overlap only ({exc})", UserWarning, stacklevel=4)
            link = (np.inf, -np.inf)
    track = np.full(len(faces), -1, np.int64)
    track_ids: list[str] = []
    for media_id, rows in faces.iloc[vrows].groupby("media_id", sort=False).indices.items():
        rows = vrows[rows]
        f = faces.iloc[rows]
        assert link is not None
        lab = link_faces(f["timestamp"].to_numpy(np.float64), f[BOX].to_numpy(np.float64), emb[rows],
                         threshold=link[0], link_threshold=link[1], gap=gap)
        track[rows] = lab + len(track_ids)
        track_ids += [f"{media_id}-track-{k}" for k in range(int(lab.max()) + 1)]
    faces["track_id"] = pd.array([track_ids[t] if t >= 0 else None for t in track], dtype="string")
    faces["item_id"] = faces["track_id"].fillna(faces["figure_id"])
    items, item_emb = _items(faces, emb, track, len(track_ids))
    media = typed(pd.DataFrame({
        "media_id": files["file_id"], "uri": files["uri"], "media_type": files["media_type"],
        "duration": files["duration"] if "duration" in files else np.nan,
        "width": files["video_width"].fillna(files["image_width"]) if "video_width" in files else files.get("image_width"),
        "height": files["video_height"].fillna(files["image_height"]) if "video_height" in files else files.get("image_height"),
        "face_count": files["figure_count"],
    }), MEDIA_DTYPES)
    counts = items.groupby("media_id").size()
    media["item_count"] = media["media_id"].map(counts).fillna(0).astype("Int64")
    return media, faces, emb, items, item_emb


def _items(faces: pd.DataFrame, emb: np.ndarray, track: np.ndarray, n_tracks: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Search items: every photo face, and every track (times, best face, mean embedding)."""
    photo = faces.loc[track < 0]
    p_items = pd.DataFrame({
        "item_id": photo["figure_id"], "media_id": photo["media_id"], "uri": photo["uri"],
        "media_type": photo["media_type"], "track_id": pd.NA, "figure_id": photo["figure_id"],
        "start_time": np.nan, "end_time": np.nan, **{c: photo[c] for c in BOX}, "face_count": 1,
        "face_quality": photo["face_quality"],
    })
    parts = [typed(p_items, ITEM_DTYPES)]
    embs = [emb[np.flatnonzero(track < 0)]]
    if n_tracks:
        vrows = np.flatnonzero(track >= 0)
        v = faces.iloc[vrows].assign(_t=track[vrows], _q=faces["face_quality"].iloc[vrows].fillna(-1.0).to_numpy())
        best = v.sort_values(["_t", "_q"], ascending=[True, False], kind="stable").drop_duplicates("_t").set_index("_t")
        g = v.groupby("_t")["timestamp"]
        t_items = pd.DataFrame({
            "item_id": best["track_id"], "media_id": best["media_id"], "uri": best["uri"],
            "media_type": best["media_type"], "track_id": best["track_id"], "figure_id": best["figure_id"],
            "start_time": g.min(), "end_time": g.max(), **{c: best[c] for c in BOX},
            "face_count": g.size(), "face_quality": best["face_quality"],
        }).sort_index()
        parts.append(typed(t_items, ITEM_DTYPES))
        embs.append(track_embeddings(track[vrows], emb[vrows], faces["face_quality"].to_numpy()[vrows]))
    items = pd.concat(parts, ignore_index=True)
    items["figure_cluster_id"] = pd.array([pd.NA] * len(items), dtype="string")
    items["label_name"] = pd.array([pd.NA] * len(items), dtype="string")
    return items, np.concatenate(embs).astype(np.float32, copy=False)
