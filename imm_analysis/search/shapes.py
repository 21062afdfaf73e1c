"""Face search answered in the shapes of the cloud services, so local and cloud results compare.

* IMS ``SearchMediaByFace`` (:func:`search_media_by_face`): the media in which a face appears;
  its ``FaceSearchToken`` (chosen by the caller) remembers the query for
* IMS ``SearchMediaClipByFace`` (:func:`search_media_clip_by_face`): the clips of one media
  where that face appears, with start and end times and the face's box at each sample.
* IMM ``SearchImageFigureCluster`` (:func:`search_image_figure_cluster`): the cluster of each
  face of an image.
* IMM ``CompareImageFaces`` (:func:`compare_image_faces`): the similarity of two images' faces.

Field names, nesting and value types follow the services' documents (``Success`` and ``Code``
are strings in IMS, ``BoxPosition`` values integers). :func:`imm_analysis.load_media_clips`
and the other loaders of :mod:`imm_analysis.io.media_clips` read every shape back.

Values
------
* ``Score`` (IMS) is the library's score (:meth:`SearchLibrary.score`, in [0, 1], 0.5 at its
  threshold). ``Similarity`` (IMM, "0 to 1") is the cosine similarity clipped to [0, 1].
* A ``MediaClipList`` entry is one person (an *entity*): the named cluster of the matched
  tracks when a :class:`ClusterState` named them (``Category`` ``"custom"``), otherwise one
  entity for the query (``Category`` ``"unknown"``, ``EntityId`` derived from the token).
  ``Total`` counts the entries before paging. ``Expression`` is null (no expression model).
  A photo is one occurrence at time 0.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from imm_analysis.search.query import image_faces, largest_face

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.faces.model import FaceModel
    from imm_analysis.search.library import SearchLibrary

__all__ = [
    "MAX_CLIP_PAGE_SIZE", "compare_image_faces", "search_image_figure_cluster",
    "search_media_by_face", "search_media_clip_by_face",
]

#: Largest ``PageSize`` IMS ``SearchMediaClipByFace`` accepts.
MAX_CLIP_PAGE_SIZE = 50


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _page(page_no: int, page_size: int, limit: int | None = None) -> tuple[int, int]:
    if isinstance(page_no, bool) or int(page_no) != page_no or page_no < 1:
        raise ValueError(f"page_no must be an integer >= 1, got {page_no!r}")
    if isinstance(page_size, bool) or int(page_size) != page_size or page_size < 1:
        raise ValueError(f"page_size must be an integer >= 1, got {page_size!r}")
    if limit is not None and page_size > limit:
        raise ValueError(f"page_size {page_size} is above the maximum of {limit} (as IMS refuses it)")
    start = (int(page_no) - 1) * int(page_size)
    return start, start + int(page_size)


def _matches(library: SearchLibrary, q: np.ndarray, threshold: float, media_type: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Every item row whose similarity to ``q`` passes ``threshold`` (growing k until one falls below)."""
    n = len(library.items)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    k = min(64, n)
    while True:
        rows, sims = library.neighbors(q[None], k, media_type=media_type)
        rows, sims = rows[0], sims[0]
        ok = (rows >= 0) & (sims >= threshold)
        if not ok.all() or k >= n:
            return rows[ok], sims[ok]
        k = min(4 * k, n)


def search_media_by_face(
    library: SearchLibrary,
    person_image: Any,
    *,
    face_search_token: str,
    page_no: int = 1,
    page_size: int = 10,
    media_type: str | None = None,
) -> dict[str, Any]:
    """IMS ``SearchMediaByFace``: the media in which the person of ``person_image`` appears.

    Parameters
    ----------
    library : SearchLibrary
    person_image : path, RGB array, 1-d embedding or str
        The query, as :meth:`SearchLibrary.search` takes it (an image's largest face).
    face_search_token : str
        Chosen by the caller; the library remembers the query under it (in memory) for
        :func:`search_media_clip_by_face`.
    page_no, page_size : int
        The page of ``MediaInfoList`` (media ordered by their best match).
    media_type : {"image", "video"}, optional

    Returns
    -------
    dict
        ``{"RequestId", "Success": "true", "Code": "200", "MediaInfoList": [{"MediaId"}], "Total"}``.

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> r = search_media_by_face(lib, "portrait.png", face_search_token="t1")  # doctest: +SKIP
    >>> [m["MediaId"] for m in r["MediaInfoList"]]  # doctest: +SKIP
    """
    if not isinstance(face_search_token, str) or not face_search_token:
        raise ValueError("face_search_token must be a non-empty string")
    start, stop = _page(page_no, page_size)
    q = library.query_embedding(person_image)
    threshold = library.threshold
    rows, sims = _matches(library, q, threshold, media_type)
    media = library.items["media_id"].to_numpy(object)[rows]
    order: list[str] = []
    seen: set[str] = set()
    for m in media:  # rows come best first: a media's first row is its best match
        if m not in seen:
            seen.add(m)
            order.append(str(m))
    library._tokens[face_search_token] = {"embedding": q, "threshold": threshold, "media_type": media_type}
    return {
        "RequestId": _request_id(),
        "Success": "true",
        "Code": "200",
        "MediaInfoList": [{"MediaId": m} for m in order[start:stop]],
        "Total": len(order),
    }


def _box(left: Any, top: Any, width: Any, height: Any) -> dict[str, int]:
    return {"X": int(left), "Y": int(top), "W": int(width), "H": int(height)}


def search_media_clip_by_face(
    library: SearchLibrary,
    *,
    face_search_token: str,
    media_id: str,
    page_no: int = 1,
    page_size: int = 10,
) -> dict[str, Any]:
    """IMS ``SearchMediaClipByFace``: the clips of ``media_id`` where the token's person appears.

    Parameters
    ----------
    library : SearchLibrary
    face_search_token : str
        A token given to :func:`search_media_by_face` on this library.
    media_id : str
    page_no : int, default=1
    page_size : int, default=10
        At most :data:`MAX_CLIP_PAGE_SIZE` (50), as IMS.

    Returns
    -------
    dict
        ``RequestId``, ``Success``, ``Code``, ``MediaClipList[{Score, EntityId, LabelName,
        Category, OccurrencesInfos[{StartTime, EndTime, Expression, TrackData[{Timestamp,
        BoxPosition{X, Y, W, H}}]}]}]`` and ``Total`` (see the module docstring).

    Raises
    ------
    ValueError
        For an unknown token or media id, or a page size above 50.

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> r = search_media_clip_by_face(lib, face_search_token="t1", media_id=mid)  # doctest: +SKIP
    >>> [(o["StartTime"], o["EndTime"]) for o in r["MediaClipList"][0]["OccurrencesInfos"]]  # doctest: +SKIP
    """
    start, stop = _page(page_no, page_size, MAX_CLIP_PAGE_SIZE)
    token = library._tokens.get(face_search_token)
    if token is None:
        raise ValueError(f"unknown face_search_token {face_search_token!r}: run search_media_by_face with it first "
                         "(tokens live in this library object, not on disk)")
    in_media = (library.items["media_id"] == media_id).fillna(False).to_numpy(bool)
    if not (library.media["media_id"] == media_id).any():
        raise ValueError(f"unknown media_id {media_id!r}: not in this library")
    rows = np.flatnonzero(in_media)
    if token["media_type"] is not None:
        rows = rows[(library.items["media_type"].to_numpy(object)[rows] == token["media_type"])]
    sims = library.item_embeddings[rows] @ token["embedding"]
    ok = sims >= token["threshold"]
    rows, sims = rows[ok], sims[ok]
    scores = library.score(sims)
    query_entity = "face-" + hashlib.sha256(face_search_token.encode()).hexdigest()[:24]
    entities: dict[str, dict[str, Any]] = {}
    items = library.items
    for row, score in zip(rows, scores, strict=True):
        it = items.iloc[int(row)]
        cid = it["figure_cluster_id"]
        key = query_entity if _isna(cid) else str(cid)
        label = None if _isna(it["label_name"]) else str(it["label_name"])
        ent = entities.setdefault(key, {"Score": 0.0, "EntityId": key, "LabelName": label,
                                        "Category": "custom" if label else "unknown", "OccurrencesInfos": []})
        ent["Score"] = max(ent["Score"], float(score))
        if it["media_type"] == "video" and not _isna(it["track_id"]):
            pts = library.track_points(str(it["track_id"]))
            track = [{"Timestamp": _float(p.timestamp), "BoxPosition": _box(p.left, p.top, p.width, p.height)}
                     for p in pts.itertuples(index=False)]
            occ = {"StartTime": _float(it["start_time"]), "EndTime": _float(it["end_time"]), "Expression": None,
                   "TrackData": track}
        else:
            occ = {"StartTime": 0.0, "EndTime": 0.0, "Expression": None,
                   "TrackData": [{"Timestamp": 0.0, "BoxPosition": _box(it["left"], it["top"], it["width"], it["height"])}]}
        ent["OccurrencesInfos"].append(occ)
    clips = sorted(entities.values(), key=lambda e: -e["Score"])
    for e in clips:
        e["OccurrencesInfos"].sort(key=lambda o: (o["StartTime"], o["EndTime"]))
    return {
        "RequestId": _request_id(),
        "Success": "true",
        "Code": "200",
        "MediaClipList": clips[start:stop],
        "Total": len(clips),
    }


def _float(v: Any) -> float:
    return float(v)


def _isna(v: Any) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _boundary(box: np.ndarray) -> dict[str, int]:
    return {"Left": int(round(box[0])), "Top": int(round(box[1])), "Width": int(round(box[2])),
            "Height": int(round(box[3]))}


def search_image_figure_cluster(state: ClusterState, image: Any, model: FaceModel) -> dict[str, Any]:
    """IMM ``SearchImageFigureCluster``: the cluster of ``state`` each face of ``image`` belongs to.

    Parameters
    ----------
    state : ClusterState
        The clustering to search (its ``figures``, ``embeddings`` and ``params["threshold"]``).
    image : path or RGB array
    model : FaceModel
        The model that made ``state``'s embeddings.

    Returns
    -------
    dict
        ``{"RequestId", "Clusters": [{"Boundary": {Left, Top, Width, Height}, "ClusterId", "Similarity"}]}``,
        one entry per face of the image, largest first. ``ClusterId`` is the cluster of the
        face's most similar clustered face when that similarity passes the state's threshold,
        else ``figure-cluster-id-independent`` (IMM's id for a face in no cluster).
        ``Similarity`` is that cosine similarity clipped to [0, 1]. An image without a face
        gives an empty list.

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> search_image_figure_cluster(state, "../shared/faces/group/t1.jpg", model)  # doctest: +SKIP
    """
    from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE
    from imm_analysis.search.index import ItemIndex
    from imm_analysis.search.query import NoFaceError

    try:
        faces = image_faces(image, model)
    except NoFaceError:
        return {"RequestId": _request_id(), "Clusters": []}
    x = np.asarray(state.embeddings, np.float32)
    if x.shape[1] != faces.embeddings.shape[1]:
        raise ValueError(f"the state's embeddings have dim {x.shape[1]}, the model's {faces.embeddings.shape[1]}")
    cids = state.figures["figure_cluster_id"].astype("string").fillna(CLUSTER_UNAVAILABLE).to_numpy(object)
    clustered = ~np.isin(cids, [CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE])
    threshold = float(state.params.get("threshold", np.nan))
    out = []
    if clustered.any():
        members = np.flatnonzero(clustered)
        from imm_analysis.cluster.knn import prepare_embeddings

        idx, top = ItemIndex(prepare_embeddings(x[members])).search(faces.embeddings, 1)
        best, sims = np.where(idx[:, 0] >= 0, members[np.clip(idx[:, 0], 0, None)], -1), top[:, 0]
    else:
        best, sims = np.full(len(faces.boxes), -1), np.full(len(faces.boxes), -np.inf)
    for i, box in enumerate(faces.boxes):
        ok = best[i] >= 0 and np.isfinite(sims[i]) and (not np.isfinite(threshold) or sims[i] >= threshold)
        out.append({
            "Boundary": _boundary(box),
            "ClusterId": str(cids[best[i]]) if ok else CLUSTER_INDEPENDENT,
            "Similarity": float(np.clip(sims[i], 0.0, 1.0)) if np.isfinite(sims[i]) else 0.0,
        })
    return {"RequestId": _request_id(), "Clusters": out}


def compare_image_faces(image1: Any, image2: Any, model: FaceModel) -> dict[str, Any]:
    """IMM ``CompareImageFaces``: the similarity of the largest face of each image.

    Returns
    -------
    dict
        ``{"RequestId", "Similarity"}``, the cosine similarity of the two faces' embeddings
        clipped to [0, 1] (negative cosines, clearly different people, become 0).

    Raises
    ------
    imm_analysis.search.query.NoFaceError
        When either image has no face (the message names it).

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> compare_image_faces("a.jpg", "b.jpg", model)["Similarity"]  # doctest: +SKIP
    """
    a = largest_face(image1, model)
    b = largest_face(image2, model)
    sim = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
    return {"RequestId": _request_id(), "Similarity": float(np.clip(sim, 0.0, 1.0))}
