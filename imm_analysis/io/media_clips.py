"""Read face-search responses (IMS and IMM, saved from the cloud or made locally) into frames.

* :func:`load_media_clips`: IMS ``SearchMediaClipByFace`` (``MediaClipList``), one row per
  occurrence (clip); with ``points=True`` also the ``TrackData`` samples, one row each.
* :func:`load_media_infos`: IMS ``SearchMediaByFace`` (``MediaInfoList``), one row per media.
* :func:`load_figure_cluster_matches`: IMM ``SearchImageFigureCluster`` (``Clusters``), one row per face.
* :func:`load_face_comparisons`: IMM ``CompareImageFaces`` (``Similarity``), one row per response.

Sources are what the other loaders take (:func:`imm_analysis.io.sources.iter_documents`):
files, folders, globs, JSON Lines, dicts, lists of responses, strings, bytes, file objects,
and SDK ``to_map()`` wrappers (``{"headers", "statusCode", "body": {...}}``). With
``errors="collect"`` bad records are skipped and listed in ``frame.attrs["errors"]`` (dicts
with ``source``, ``record``, ``field``, ``reason``); ``errors="raise"`` (the default) raises
:class:`~imm_analysis.io.errors.IMMFormatError` naming the file, record and field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.io.errors import ErrorLog
from imm_analysis.io.sources import iter_documents

__all__ = [
    "CLIP_COLUMNS", "POINT_COLUMNS", "load_media_clips", "load_media_infos",
    "load_figure_cluster_matches", "load_face_comparisons",
]

logger = logging.getLogger(__name__)

#: Columns of :func:`load_media_clips` (one row per occurrence).
CLIP_COLUMNS = {
    "occurrence": "Int64", "source": "string", "record": "string", "request_id": "string",
    "clip_index": "Int64", "occurrence_index": "Int64", "entity_id": "string", "label_name": "string",
    "category": "string", "score": "float64", "start_time": "float64", "end_time": "float64",
    "duration": "float64", "expression": "string", "point_count": "Int64", "total": "Int64",
}
#: Columns of the ``TrackData`` frame (``points=True``).
POINT_COLUMNS = {
    "occurrence": "Int64", "point_index": "Int64", "timestamp": "float64",
    "x": "Int64", "y": "Int64", "w": "Int64", "h": "Int64",
}
_MEDIA_COLUMNS = {"source": "string", "record": "string", "request_id": "string", "rank": "Int64",
                  "media_id": "string", "total": "Int64"}
_CLUSTER_COLUMNS = {"source": "string", "record": "string", "request_id": "string", "face_index": "Int64",
                    "cluster_id": "string", "similarity": "float64", "left": "Int64", "top": "Int64",
                    "width": "Int64", "height": "Int64"}
_COMPARE_COLUMNS = {"source": "string", "record": "string", "request_id": "string", "similarity": "float64"}


def _responses(source: Any, log: ErrorLog, key: str, what: str, progress: bool) -> Iterator[tuple[str, str, dict]]:
    """``(source, record label, response)`` for every response holding ``key``; others are reported."""

    def walk(name: str, label: str, value: Any) -> Iterator[tuple[str, str, dict]]:
        if isinstance(value, list):
            for i, v in enumerate(value):
                yield from walk(name, f"{label}, item {i}", v)
            return
        if isinstance(value, dict) and isinstance(value.get("body"), dict) and "statusCode" in value:
            yield from walk(name, label, value["body"])
            return
        if isinstance(value, dict) and key in value:
            yield name, label, value
            return
        keys = ", ".join(sorted(map(str, value))[:12]) if isinstance(value, dict) else f"a JSON {type(value).__name__}"
        log.add(name, label, None, f"not a {what} response (keys: {keys or 'none'}); expected {{'{key}': ...}}")

    for name, label, value in iter_documents(source, log, progress=progress):
        yield from walk(name, label, value)


def _num(v: Any, log: ErrorLog, src: str, rec: str, field: str, *, integer: bool = False,
         required: bool = True) -> float | int | None:
    if v is None:
        if required:
            log.add(src, rec, field, "missing")
            raise _Skip
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not np.isfinite(v)):
        if isinstance(v, str):
            try:
                parsed = int(v) if integer else float(v)
            except ValueError:
                pass
            else:
                if np.isfinite(parsed):  # "nan" and "inf" are no more numbers as text than as floats
                    return parsed
        log.add(src, rec, field, f"expected a {'whole ' if integer else ''}number, got {v!r}")
        raise _Skip
    if integer:
        if float(v) != int(v):
            log.add(src, rec, field, f"expected a whole number, got {v!r}")
            raise _Skip
        return int(v)
    return float(v)


def _str(v: Any, log: ErrorLog, src: str, rec: str, field: str) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    log.add(src, rec, field, f"expected a string, got {type(v).__name__}")
    raise _Skip


class _Skip(Exception):
    """The current record is bad (already reported to the log)."""


def _list(v: Any, log: ErrorLog, src: str, rec: str, field: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        log.add(src, rec, field, f"expected a list, got {type(v).__name__}")
        raise _Skip
    return v


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    return df.astype(columns) if len(df) else pd.DataFrame({c: pd.Series([], dtype=d) for c, d in columns.items()})


def _finish(frame: pd.DataFrame, log: ErrorLog) -> pd.DataFrame:
    frame.attrs["errors"] = log.errors
    if log.errors:
        logger.warning("skipped %d bad records (see frame.attrs['errors'])", len(log.errors))
    return frame


def load_media_clips(
    source: Any, *, errors: str = "raise", points: bool = False, progress: bool = False
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Load IMS ``SearchMediaClipByFace`` responses: one row per occurrence (clip of a person).

    Parameters
    ----------
    source
        Files, folders, globs, dicts, lists of responses... (see the module docstring).
    errors : {"raise", "collect"}, default="raise"
    points : bool, default=False
        Also return the ``TrackData`` samples as a second frame (columns :data:`POINT_COLUMNS`),
        joined to the first by ``occurrence``.
    progress : bool, default=False

    Returns
    -------
    DataFrame, or (DataFrame, DataFrame) with ``points=True``
        Columns :data:`CLIP_COLUMNS`: ``occurrence`` (a running number over the whole load),
        the ``source`` and ``record`` it came from, ``request_id``, ``clip_index`` (position in
        ``MediaClipList``), ``occurrence_index`` (in ``OccurrencesInfos``), ``entity_id``,
        ``label_name``, ``category``, ``score``, ``start_time``, ``end_time``, ``duration``
        (seconds), ``expression``, ``point_count`` and the response's ``total``.

    Examples
    --------
    >>> doc = {"RequestId": "r1", "Success": "true", "Code": "200", "Total": 1, "MediaClipList": [
    ...     {"Score": 0.99, "EntityId": "e1", "LabelName": "Zhang San", "Category": "celebrity",
    ...      "OccurrencesInfos": [{"StartTime": 61.07, "EndTime": 69.07, "Expression": "Calm",
    ...          "TrackData": [{"Timestamp": 62.03, "BoxPosition": {"X": 517, "Y": 409, "W": 128, "H": 168}}]}]}]}
    >>> clips, pts = load_media_clips(doc, points=True)
    >>> clips[["entity_id", "start_time", "end_time", "point_count"]].values.tolist()
    [['e1', 61.07, 69.07, 1]]
    >>> pts[["timestamp", "x", "w"]].values.tolist()
    [[62.03, 517, 128]]
    """
    log = ErrorLog(errors)
    rows: list[dict] = []
    pts: list[dict] = []
    n_occ = 0
    for src, label, doc in _responses(source, log, "MediaClipList", "SearchMediaClipByFace", progress):
        try:
            clips = _list(doc.get("MediaClipList"), log, src, label, "MediaClipList")
            total = _num(doc.get("Total"), log, src, label, "Total", integer=True, required=False)
            request_id = _str(doc.get("RequestId"), log, src, label, "RequestId")
        except _Skip:
            continue
        for ci, clip in enumerate(clips):
            rec = f"{label}, MediaClipList[{ci}]"
            if not isinstance(clip, dict):
                log.add(src, rec, None, f"expected an object, got {type(clip).__name__}")
                continue
            try:
                base = {
                    "source": src, "record": rec, "request_id": request_id, "clip_index": ci,
                    "entity_id": _str(clip.get("EntityId"), log, src, rec, "EntityId"),
                    "label_name": _str(clip.get("LabelName"), log, src, rec, "LabelName"),
                    "category": _str(clip.get("Category"), log, src, rec, "Category"),
                    "score": _num(clip.get("Score"), log, src, rec, "Score", required=False),
                    "total": total,
                }
                occs = _list(clip.get("OccurrencesInfos"), log, src, rec, "OccurrencesInfos")
            except _Skip:
                continue
            for oi, occ in enumerate(occs):
                orec = f"{rec}.OccurrencesInfos[{oi}]"
                try:
                    if not isinstance(occ, dict):
                        log.add(src, orec, None, f"expected an object, got {type(occ).__name__}")
                        raise _Skip
                    start = _num(occ.get("StartTime"), log, src, orec, "StartTime")
                    end = _num(occ.get("EndTime"), log, src, orec, "EndTime")
                    if start is None or end is None:  # pragma: no cover - required fields raise _Skip
                        raise _Skip
                    if end < start:
                        log.add(src, orec, "EndTime", f"ends ({end}) before it starts ({start})")
                        raise _Skip
                    track = _list(occ.get("TrackData"), log, src, orec, "TrackData")
                    new_pts = []
                    for pi, p in enumerate(track):
                        prec = f"{orec}.TrackData[{pi}]"
                        if not isinstance(p, dict) or not isinstance(p.get("BoxPosition"), dict):
                            log.add(src, prec, "BoxPosition", "expected {'Timestamp': ..., 'BoxPosition': {X, Y, W, H}}")
                            raise _Skip
                        b = p["BoxPosition"]
                        new_pts.append({
                            "occurrence": n_occ, "point_index": pi,
                            "timestamp": _num(p.get("Timestamp"), log, src, prec, "Timestamp"),
                            **{k.lower(): _num(b.get(k), log, src, prec, f"BoxPosition.{k}", integer=True)
                               for k in ("X", "Y", "W", "H")},
                        })
                    row = dict(base, occurrence=n_occ, occurrence_index=oi, start_time=start, end_time=end,
                               duration=end - start, point_count=len(track),
                               expression=_str(occ.get("Expression"), log, src, orec, "Expression"))
                except _Skip:
                    continue
                rows.append(row)
                pts += new_pts
                n_occ += 1
    clips_df = _finish(_frame(rows, CLIP_COLUMNS), log)
    if not points:
        return clips_df
    return clips_df, _finish(_frame(pts, POINT_COLUMNS), log)


def _simple_loader(
    source: Any, errors: str, progress: bool, key: str, what: str, columns: dict[str, str],
    rows_of: Callable[[str, str, dict, ErrorLog], list[dict]],
) -> pd.DataFrame:
    log = ErrorLog(errors)
    rows: list[dict] = []
    for src, label, doc in _responses(source, log, key, what, progress):
        try:
            rows += rows_of(src, label, doc, log)
        except _Skip:
            continue
    return _finish(_frame(rows, columns), log)


def load_media_infos(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load IMS ``SearchMediaByFace`` responses: one row per media (``rank`` = position in the list).

    Examples
    --------
    >>> load_media_infos({"RequestId": "r", "MediaInfoList": [{"MediaId": "m1"}, {"MediaId": "m2"}], "Total": 2})[
    ...     ["rank", "media_id", "total"]].values.tolist()
    [[0, 'm1', 2], [1, 'm2', 2]]
    """

    def rows_of(src: str, label: str, doc: dict, log: ErrorLog) -> list[dict]:
        total = _num(doc.get("Total"), log, src, label, "Total", integer=True, required=False)
        rid = _str(doc.get("RequestId"), log, src, label, "RequestId")
        out = []
        for i, m in enumerate(_list(doc.get("MediaInfoList"), log, src, label, "MediaInfoList")):
            rec = f"{label}, MediaInfoList[{i}]"
            if not isinstance(m, dict) or not isinstance(m.get("MediaId"), str):
                log.add(src, rec, "MediaId", "expected {'MediaId': '...'}")
                continue
            out.append({"source": src, "record": rec, "request_id": rid, "rank": i, "media_id": m["MediaId"],
                        "total": total})
        return out

    return _simple_loader(source, errors, progress, "MediaInfoList", "SearchMediaByFace", _MEDIA_COLUMNS, rows_of)


def load_figure_cluster_matches(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load IMM ``SearchImageFigureCluster`` responses: one row per face (``Boundary``, ``ClusterId``, ``Similarity``).

    Examples
    --------
    >>> doc = {"RequestId": "r", "Clusters": [{"Boundary": {"Left": 1, "Top": 2, "Width": 30, "Height": 40},
    ...                                        "ClusterId": "Cluster-1", "Similarity": 0.8}]}
    >>> load_figure_cluster_matches(doc)[["cluster_id", "similarity", "width"]].values.tolist()
    [['Cluster-1', 0.8, 30]]
    """

    def rows_of(src: str, label: str, doc: dict, log: ErrorLog) -> list[dict]:
        rid = _str(doc.get("RequestId"), log, src, label, "RequestId")
        out = []
        for i, c in enumerate(_list(doc.get("Clusters"), log, src, label, "Clusters")):
            rec = f"{label}, Clusters[{i}]"
            try:
                if not isinstance(c, dict):
                    log.add(src, rec, None, f"expected an object, got {type(c).__name__}")
                    raise _Skip
                b = c.get("Boundary") or {}
                if not isinstance(b, dict):
                    log.add(src, rec, "Boundary", f"expected an object, got {type(b).__name__}")
                    raise _Skip
                out.append({
                    "source": src, "record": rec, "request_id": rid, "face_index": i,
                    "cluster_id": _str(c.get("ClusterId"), log, src, rec, "ClusterId"),
                    "similarity": _num(c.get("Similarity"), log, src, rec, "Similarity", required=False),
                    **{k.lower(): _num(b.get(k), log, src, rec, f"Boundary.{k}", integer=True, required=False)
                       for k in ("Left", "Top", "Width", "Height")},
                })
            except _Skip:
                continue
        return out

    return _simple_loader(source, errors, progress, "Clusters", "SearchImageFigureCluster", _CLUSTER_COLUMNS, rows_of)


def load_face_comparisons(source: Any, *, errors: str = "raise", progress: bool = False) -> pd.DataFrame:
    """Load IMM ``CompareImageFaces`` responses: one row each (``similarity``).

    Examples
    --------
    >>> load_face_comparisons([{"RequestId": "a", "Similarity": 0.91}, {"RequestId": "b", "Similarity": 0.02}])[
    ...     "similarity"].tolist()
    [0.91, 0.02]
    """

    def rows_of(src: str, label: str, doc: dict, log: ErrorLog) -> list[dict]:
        return [{"source": src, "record": label, "request_id": _str(doc.get("RequestId"), log, src, label, "RequestId"),
                 "similarity": _num(doc.get("Similarity"), log, src, label, "Similarity")}]

    return _simple_loader(source, errors, progress, "Similarity", "CompareImageFaces", _COMPARE_COLUMNS, rows_of)
