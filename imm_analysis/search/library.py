"""A searchable library of faces in photos and video tracks: "where else is this person?".

:func:`build_search_library` embeds photos and videos with :func:`imm_analysis.embed_images`
(its cache included), links the faces of each video into tracks
(:mod:`imm_analysis.search.tracks`), and keeps one *search item* per photo face and per
video track, each with one embedding. :meth:`SearchLibrary.search` finds a person's items,
best first.

Layout
------
* ``media``: one row per file: ``media_id`` (the first 32 hex digits of the file's SHA-256,
  the ``file_id`` of ``embed_images``, so the same bytes get the same id anywhere), ``uri``,
  ``media_type`` (``image`` / ``video``), ``duration``, ``width``, ``height``, ``face_count``,
  ``item_count``.
* ``faces``: one row per detected face (photo faces and video samples): ``figure_id``,
  ``media_id``, ``timestamp`` (videos), the box, ``face_quality``, ``track_id`` (videos) and
  ``item_id``; row-aligned with ``face_embeddings``.
* ``items``: one row per search item: ``item_id``, ``media_id``, ``uri``, ``media_type``,
  ``track_id`` (videos), ``figure_id`` (a photo's face; for a track, its best face),
  ``start_time``/``end_time`` (videos), the box (of that face), ``face_count``,
  ``figure_cluster_id`` and ``label_name``; row-aligned with ``item_embeddings``.

A track's embedding is the mean of its (at most) five best-quality faces, normalised.

Neighbour search (:mod:`imm_analysis.search.index`) uses the backend that
:func:`imm_analysis.cluster.knn.resolve_backend` picks for the library's size: exact blockwise
float32 products (:class:`imm_analysis.cluster.knn.NeighborIndex`) up to
:data:`~imm_analysis.cluster.knn.EXACT_MAX_N` items (never an n x n matrix), FAISS's inverted
file index above when ``faiss`` is installed (the ``fast`` extra): candidates re-ranked exactly,
and batches of queries answered with exact matrix products over the lists they probe.

Persistence
-----------
With ``path``, the library is a folder: ``media.parquet``, ``faces.parquet``,
``items.parquet``, ``errors.parquet`` (:func:`imm_analysis.io.parquet.write_frame`),
``faces.npy`` and ``items.npy`` (:func:`imm_analysis.io.atomic.atomic_save_npy`), and
``library.json`` last (written atomically, with the row counts, so a folder whose writing
was interrupted is refused at load instead of read half-updated). ``cache/`` holds
``embed_images``' cache, so a rebuild re-embeds nothing it has seen.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.search.build import (
    BOX,
    ERROR_DTYPES,
    FACE_DTYPES,
    ITEM_DTYPES,
    MEDIA_DTYPES,
    empty,
    known_item_pairs,
    new_media,
    pair_dots,
    typed,
)
from imm_analysis.search.score import Calibration, calibrate_library, similarity_score
from imm_analysis.search.tracks import default_gap

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.faces.embed import EmbedResult
    from imm_analysis.faces.model import FaceModel
    from imm_analysis.search.index import ItemIndex

__all__ = ["SearchLibrary", "build_search_library", "RESULT_COLUMNS"]

_FORMAT = 1
#: Columns of :meth:`SearchLibrary.search`'s result, in order.
RESULT_COLUMNS = [
    "media_id", "uri", "media_type", "track_id", "figure_id", "start_time", "end_time",
    "similarity", "score", "label_name", "figure_cluster_id", *BOX,
]


# ---------------------------------------------------------------------------------------------- library
class SearchLibrary:
    """Faces of photos and video tracks, searchable by face (see the module docstring).

    Build one with :func:`build_search_library`, reopen a saved one with :meth:`load`.

    Attributes
    ----------
    media, faces, items : DataFrame
        See the module docstring.
    face_embeddings, item_embeddings : ndarray of float32
        Row-aligned with ``faces`` and ``items``.
    errors : DataFrame
        Files that could not be indexed (``uri, path, file_id, error, reason``).
    calibration : Calibration or None
        The library's threshold and score scale (None while it has fewer than 3 items).
    model_id : str
        The :attr:`FaceModel.model_id` of the embeddings.
    model_pack : str or None
        The folder of the model pack it was built with (recorded, never loaded by itself).
    fps, gap : float
        Video sampling rate and the longest absence inside a track (seconds).
    path : Path or None
        The folder it is saved in.

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> lib = build_search_library("../shared/faces/video", model)  # doctest: +SKIP
    >>> lib.search("../shared/faces/video/lin-manuel-miranda.png")  # doctest: +SKIP
    """

    def __init__(
        self,
        media: pd.DataFrame,
        faces: pd.DataFrame,
        face_embeddings: np.ndarray,
        items: pd.DataFrame,
        item_embeddings: np.ndarray,
        *,
        model_id: str,
        fps: float,
        gap: float,
        target_fmr: float = 1e-5,
        errors: pd.DataFrame | None = None,
        model: FaceModel | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if len(faces) != len(face_embeddings) or len(items) != len(item_embeddings):
            raise ValueError(f"faces ({len(faces)}) / items ({len(items)}) and their embeddings "
                             f"({len(face_embeddings)} / {len(item_embeddings)}) are not row-aligned")
        self.media, self.faces, self.items = media, faces, items
        self.face_embeddings = np.ascontiguousarray(face_embeddings, np.float32)
        self.item_embeddings = np.ascontiguousarray(item_embeddings, np.float32)
        self.model_id, self.fps, self.gap, self.target_fmr = model_id, float(fps), float(gap), float(target_fmr)
        self.errors = errors if errors is not None else empty(ERROR_DTYPES)
        self.model = model
        self.model_pack: str | None = str(model.pack) if model is not None else None
        self.path = Path(path) if path is not None else None
        self.calibration: Calibration | None = None
        self._indexes: dict[str | None, tuple[ItemIndex, np.ndarray]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._recalibrate()

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        n_img = int((self.media["media_type"] == "image").sum())
        t = f"{self.calibration.threshold:.3f}" if self.calibration else "none"
        return (f"SearchLibrary({n_img} photos, {len(self.media) - n_img} videos, {len(self.items)} items, "
                f"{len(self.faces)} faces, threshold={t}, model_id={self.model_id!r})")

    @classmethod
    def from_result(
        cls,
        result: EmbedResult,
        *,
        fps: float,
        gap: float | None = None,
        state: ClusterState | None = None,
        target_fmr: float = 1e-5,
        model: FaceModel | None = None,
    ) -> SearchLibrary:
        """A library from faces already embedded (an :class:`~imm_analysis.faces.embed.EmbedResult`).

        Parameters
        ----------
        result : EmbedResult
            What :func:`imm_analysis.embed_images` returned, videos sampled at ``fps``.
        fps : float
            The ``video_fps`` the videos were sampled at.
        gap, state, target_fmr
            As in :func:`build_search_library`.
        model : FaceModel, optional
            Kept for searches by image and :meth:`add`.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)
        >>> res = embed_images("../shared/faces/video", model, video_fps=2)  # doctest: +SKIP
        >>> lib = SearchLibrary.from_result(res, fps=2, model=model)  # doctest: +SKIP
        """
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        dim = result.embeddings.shape[1] if result.embeddings.ndim == 2 and result.embeddings.shape[1] else (
            model.embedding_dim if model is not None else 0)
        lib = cls(empty(MEDIA_DTYPES), empty(FACE_DTYPES), np.zeros((0, dim), np.float32),
                  empty(ITEM_DTYPES), np.zeros((0, dim), np.float32), model_id=result.model_id, fps=fps,
                  gap=default_gap(fps, gap), target_fmr=target_fmr, model=model)
        lib._merge(result, known_items=None)
        if state is not None:
            lib.apply_state(state)
        return lib

    # ------------------------------------------------------------------ calibration and index
    def _recalibrate(self) -> None:
        self._indexes.clear()
        if len(self.items) >= 3:
            try:
                ki, kj = known_item_pairs(self.items)
                self.calibration = calibrate_library(self.item_embeddings, target_fmr=self.target_fmr,
                                                     known=pair_dots(self.item_embeddings, ki, kj))
            except ValueError as exc:  # e.g. identical embeddings
                warnings.warn(f"search library: no threshold could be fitted ({exc})", UserWarning, stacklevel=3)
                self.calibration = None
        else:
            self.calibration = None

    @property
    def threshold(self) -> float:
        """The calibrated threshold; raises ``ValueError`` when the library is too small to have one."""
        if self.calibration is None:
            raise ValueError(f"this library has {len(self.items)} search item(s), too few to fit a threshold from "
                             "its own data: pass threshold= to search()")
        return self.calibration.threshold

    def score(self, similarity: np.ndarray | float) -> np.ndarray:
        """The library's score of cosine ``similarity`` (see :mod:`imm_analysis.search.score`).

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib.score([0.2, 0.9])  # doctest: +SKIP
        array([0.03, 0.99])
        """
        if self.calibration is None:  # no calibration: a fixed map of cosine [-1, 1] to [0, 1]
            return np.clip((np.asarray(similarity, np.float64) + 1.0) / 2.0, 0.0, 1.0)
        return similarity_score(similarity, self.calibration.threshold, self.calibration.scale)

    def _index(self, media_type: str | None) -> tuple[ItemIndex, np.ndarray]:
        from imm_analysis.search.index import ItemIndex

        if media_type not in self._indexes:
            if media_type is None:
                rows = np.arange(len(self.items))
            else:
                rows = np.flatnonzero((self.items["media_type"] == media_type).fillna(False).to_numpy(bool))
            x = self.item_embeddings if media_type is None else self.item_embeddings[rows]
            self._indexes[media_type] = (ItemIndex(x), rows)
        return self._indexes[media_type]

    def neighbors(
        self, queries: np.ndarray, k: int, *, media_type: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Item rows and cosine similarities of the ``k`` nearest items of each query.

        Parameters
        ----------
        queries : ndarray of shape (m, dim)
            Unit-length query embeddings (many queries in one call are much faster per query).
        k : int
        media_type : {"image", "video"}, optional
            Search only items of this type.

        Returns
        -------
        rows : ndarray of int64, shape (m, k)
            Rows of :attr:`items`, best first; -1 where fewer than ``k`` items exist.
        similarities : ndarray of float32, shape (m, k)

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> rows, sims = lib.neighbors(lib.item_embeddings[:2], 3)  # doctest: +SKIP
        """
        from imm_analysis.cluster.knn import prepare_embeddings

        if media_type not in (None, "image", "video"):
            raise ValueError(f"media_type must be None, 'image' or 'video', got {media_type!r}")
        q = prepare_embeddings(np.atleast_2d(queries), name="queries")
        if q.shape[1] != self.item_embeddings.shape[1]:
            raise ValueError(f"query embeddings have dim {q.shape[1]}, the library {self.item_embeddings.shape[1]}")
        index, rows = self._index(media_type)
        if len(rows) == 0:
            return np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        idx, sims = index.search(q, int(k))
        out = np.where(idx >= 0, rows[np.clip(idx, 0, None)], -1)
        return out, sims

    # ------------------------------------------------------------------ queries
    def query_embedding(self, query: Any) -> np.ndarray:
        """The embedding a query stands for (see :meth:`search`)."""
        dim = self.item_embeddings.shape[1] if self.item_embeddings.ndim == 2 else None
        if isinstance(query, str) and not os.path.exists(query):
            for frame, emb, col in ((self.items, self.item_embeddings, "item_id"),
                                    (self.faces, self.face_embeddings, "figure_id")):
                hit = np.flatnonzero((frame[col] == query).fillna(False).to_numpy(bool))
                if len(hit):
                    return emb[hit[0]]
            if "/" not in query and "\\" not in query and "." not in query:
                raise KeyError(f"{query!r} is neither a figure_id, a track_id of this library nor an image file")
        arr = np.asarray(query) if not isinstance(query, (str, os.PathLike)) else None
        if arr is not None and arr.ndim == 1:
            if dim is not None and arr.shape[0] != dim:
                raise ValueError(f"a query embedding must have dim {dim} (the library's), got {arr.shape[0]}")
            v = arr.astype(np.float32)
            norm = float(np.linalg.norm(v))
            if not np.isfinite(norm) or norm == 0:
                raise ValueError("a query embedding must be finite and non-zero")
            return v / norm
        if self.model is None:
            raise ValueError("searching by image needs the model pack: SearchLibrary.load(path, model=FaceModel(...))")
        from imm_analysis.search.query import largest_face

        return largest_face(query, self.model)

    def search(
        self,
        query: Any,
        *,
        max_results: int = 10,
        threshold: float | None = None,
        media_type: str | None = None,
    ) -> pd.DataFrame:
        """Find the photos and video clips of the person in ``query``, best first.

        Parameters
        ----------
        query : path, RGB array, 1-d embedding or str
            An image file or a uint8 RGB array (its largest face is the query, as IMM's
            ``CreateFacesSearchingTask`` does), a 1-d embedding of the library's model, or a
            ``figure_id`` / ``track_id`` of the library.
        max_results : int, default=10
            Most rows returned.
        threshold : float, optional
            Least cosine similarity. Default: the library's calibrated :attr:`threshold`.
        media_type : {"image", "video"}, optional
            Only photos or only video tracks.

        Returns
        -------
        DataFrame
            Columns :data:`RESULT_COLUMNS`: one row per matching photo face or video track;
            ``track_id`` is null for photos, ``figure_id`` is the photo's face or the track's
            best face, ``start_time``/``end_time`` (seconds) are the first and last sample of a
            track, ``score`` is :meth:`score` of ``similarity``; the box is the face's
            (a track's best face) in pixels.

        Raises
        ------
        imm_analysis.search.query.NoFaceError
            When a query image has no face (the message names it).

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> hits = lib.search("../shared/faces/video/lin-manuel-miranda.png")  # doctest: +SKIP
        >>> hits[["media_type", "start_time", "end_time", "score"]]  # doctest: +SKIP
        """
        if int(max_results) < 1:
            raise ValueError(f"max_results must be >= 1, got {max_results}")
        t = self.threshold if threshold is None else float(threshold)
        q = self.query_embedding(query)
        rows, sims = self.neighbors(q[None], int(max_results), media_type=media_type)
        keep = (rows[0] >= 0) & (sims[0] >= t)
        return self._result(rows[0][keep], sims[0][keep])

    def _result(self, rows: np.ndarray, sims: np.ndarray) -> pd.DataFrame:
        it = self.items.iloc[rows].reset_index(drop=True)
        out = it[["media_id", "uri", "media_type", "track_id", "figure_id", "start_time", "end_time"]].copy()
        out["similarity"] = sims.astype(np.float64)
        out["score"] = self.score(out["similarity"].to_numpy())
        out["label_name"] = it["label_name"]
        out["figure_cluster_id"] = it["figure_cluster_id"]
        for c in BOX:
            out[c] = it[c]
        return out[RESULT_COLUMNS]

    def track_points(self, track_id: str) -> pd.DataFrame:
        """The samples of one track: ``timestamp`` and the box of each, in time order.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib.track_points(lib.items["track_id"].dropna().iloc[0])  # doctest: +SKIP
        """
        f = self.faces.loc[(self.faces["track_id"] == track_id).fillna(False).to_numpy(bool)]
        if not len(f):
            raise KeyError(f"no track {track_id!r} in this library")
        return f[["figure_id", "timestamp", *BOX]].sort_values("timestamp", kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ names
    def apply_state(self, state: ClusterState) -> SearchLibrary:
        """Take cluster ids and names from ``state``: an item whose faces' cluster is named gets the name.

        A photo face takes its own cluster; a track takes the cluster most of its faces
        belong to. Faces the state does not know keep no cluster. Returns ``self``.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib.apply_state(state).items["label_name"].value_counts()  # doctest: +SKIP
        """
        from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE

        figs = state.figures[["figure_id", "figure_cluster_id"]].astype("string")
        cid = self.faces["figure_id"].map(figs.drop_duplicates("figure_id").set_index("figure_id")["figure_cluster_id"])
        cid = cid.astype("string").where(~cid.isin([CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE]), pd.NA)
        per_item = (pd.DataFrame({"item_id": self.faces["item_id"], "cid": cid}).dropna()
                    .groupby(["item_id", "cid"]).size().reset_index(name="n")
                    .sort_values(["item_id", "n"], ascending=[True, False], kind="stable")
                    .drop_duplicates("item_id").set_index("item_id")["cid"])
        names = state.clusters[["cluster_id", "name"]].astype("string").drop_duplicates("cluster_id").set_index("cluster_id")["name"]
        self.items["figure_cluster_id"] = self.items["item_id"].map(per_item).astype("string")
        self.items["label_name"] = self.items["figure_cluster_id"].map(names).astype("string")
        return self

    # ------------------------------------------------------------------ growing and shrinking
    def add(self, source: Any, model: FaceModel | None = None, *, progress: bool = True) -> SearchLibrary:
        """Index more photos and videos; files already in the library (same bytes) are skipped.

        Parameters
        ----------
        source
            What :func:`imm_analysis.embed_images` takes.
        model : FaceModel, optional
            Default: the library's model (the one it was built or loaded with).
        progress : bool, default=True

        Returns
        -------
        SearchLibrary
            ``self``, saved again when it has a ``path``.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib.add("../shared/faces/photos/person_01")  # doctest: +SKIP
        """
        from imm_analysis.faces.embed import resolve_sources
        from imm_analysis.io.media import file_sha256

        model = self._model(model)
        known = set(self.media["media_id"].astype(str))
        todo = []
        for item in resolve_sources(_expand(source)):
            try:
                sha = file_sha256(item.path)[:32]
            except (OSError, ValueError):
                sha = None  # embed_images reports it in errors
            if sha not in known:
                todo.append(item.uri)
        if todo:
            res = _embed(todo, model, self.fps, self.path, progress)
            self._merge(res, known_items=self.item_embeddings)
        if self.path is not None:
            self.save(self.path)
        return self

    def remove(self, media_ids: Iterable[str] | str) -> SearchLibrary:
        """Drop media (and their faces, tracks and errors) by ``media_id``; nothing is re-embedded.

        Unknown ids raise ``KeyError``. Returns ``self``, saved again when it has a ``path``.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib.remove(lib.media["media_id"].iloc[0])  # doctest: +SKIP
        """
        ids = {media_ids} if isinstance(media_ids, str) else set(map(str, media_ids))
        unknown = sorted(ids - set(self.media["media_id"].astype(str)))
        if unknown:
            raise KeyError(f"not in this library: {unknown[:5]}")
        keep_f = ~self.faces["media_id"].isin(ids).to_numpy(bool)
        keep_i = ~self.items["media_id"].isin(ids).to_numpy(bool)
        self.media = self.media.loc[~self.media["media_id"].isin(ids).to_numpy(bool)].reset_index(drop=True)
        self.faces = self.faces.loc[keep_f].reset_index(drop=True)
        self.items = self.items.loc[keep_i].reset_index(drop=True)
        self.face_embeddings = self.face_embeddings[keep_f]
        self.item_embeddings = self.item_embeddings[keep_i]
        self._recalibrate()
        if self.path is not None:
            self.save(self.path)
        return self

    def _model(self, model: FaceModel | None) -> FaceModel:
        model = model if model is not None else self.model
        if model is None:
            raise ValueError("this needs the library's model pack: pass model=FaceModel(...)")
        if model.model_id != self.model_id:
            raise ValueError(f"the library was built with {self.model_id!r}; this model is {model.model_id!r}")
        self.model = model
        self.model_pack = str(model.pack)
        return model

    def _merge(self, res: EmbedResult, known_items: np.ndarray | None) -> None:
        if len(res.files):
            media, faces, femb, items, iemb = new_media(res, self.fps, self.gap, self.target_fmr, known_items, None)
            self.media = pd.concat([self.media, media], ignore_index=True)
            self.faces = pd.concat([self.faces, faces], ignore_index=True)
            self.items = pd.concat([self.items, items], ignore_index=True)
            self.face_embeddings = np.concatenate([self.face_embeddings, femb]).astype(np.float32, copy=False)
            self.item_embeddings = np.concatenate([self.item_embeddings, iemb]).astype(np.float32, copy=False)
        if len(res.errors):
            self.errors = pd.concat([self.errors, typed(res.errors, ERROR_DTYPES)], ignore_index=True)
        self._recalibrate()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the library to folder ``path`` (see the module docstring); returns it.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib.save("outputs/library")  # doctest: +SKIP
        """
        from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes
        from imm_analysis.io.parquet import write_frame

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        # a re-save first withdraws the old description: a save interrupted half-way leaves a folder
        # that load refuses, never new frames read with old embeddings of the same row counts
        (folder / "library.json").unlink(missing_ok=True)
        for name, frame in (("media", self.media), ("faces", self.faces), ("items", self.items),
                            ("errors", self.errors)):
            write_frame(frame, folder / f"{name}.parquet")
        atomic_save_npy(folder / "faces.npy", self.face_embeddings)
        atomic_save_npy(folder / "items.npy", self.item_embeddings)
        meta = {"format": _FORMAT, "model_id": self.model_id, "model_pack": self.model_pack, "fps": self.fps, "gap": self.gap,
                "target_fmr": self.target_fmr, "counts": {"media": len(self.media), "faces": len(self.faces),
                                                          "items": len(self.items)}}
        atomic_write_bytes(folder / "library.json", json.dumps(meta, indent=1).encode())
        self.path = folder
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, model: FaceModel | None = None) -> SearchLibrary:
        """Open a library saved by :meth:`save` (or :func:`build_search_library` with ``path``).

        Parameters
        ----------
        path : path-like
            The library folder.
        model : FaceModel, optional
            Needed to search by image and to :meth:`add`; must be the model it was built with.

        Examples
        --------
        (These need a model pack or a built library, so they are not run as doctests.)

        >>> lib = SearchLibrary.load("outputs/library", model=model)  # doctest: +SKIP
        """
        from imm_analysis.io.parquet import read_frame

        folder = Path(path)
        meta_path = folder / "library.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{folder}: not a search library (no library.json; "
                                    "or its last save was interrupted: rebuild it)")
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise ValueError(f"{meta_path}: unreadable library description ({exc})") from None
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_path}: unknown library format {meta.get('format')!r} (expected {_FORMAT})")
        frames = {n: read_frame(folder / f"{n}.parquet") for n in ("media", "faces", "items", "errors")}
        femb = np.load(folder / "faces.npy", allow_pickle=False)
        iemb = np.load(folder / "items.npy", allow_pickle=False)
        for name, n in meta["counts"].items():
            if len(frames[name]) != n:
                raise ValueError(f"{folder / (name + '.parquet')}: {len(frames[name])} rows, library.json says {n} "
                                 "(the library was not written completely; rebuild it)")
        lib = cls(typed(frames["media"], MEDIA_DTYPES), typed(frames["faces"], FACE_DTYPES), femb,
                  typed(frames["items"], ITEM_DTYPES), iemb, model_id=meta["model_id"], fps=meta["fps"],
                  gap=meta["gap"], target_fmr=meta.get("target_fmr", 1e-5),
                  errors=typed(frames["errors"], ERROR_DTYPES), path=folder)
        lib.model_pack = meta.get("model_pack")
        if model is not None:
            lib._model(model)
        return lib


def _expand(source: Any) -> Any:
    """A list source with its folders expanded (``embed_images`` expands a folder given alone)."""
    from imm_analysis.faces.embed import resolve_sources

    if isinstance(source, (list, tuple)) and any(os.path.isdir(str(s)) for s in source if isinstance(s, (str, os.PathLike))):
        out: list[Any] = []
        for s in source:
            if isinstance(s, (str, os.PathLike)) and os.path.isdir(s):
                out += [it.uri for it in resolve_sources(s)]
            else:
                out.append(s)
        return out
    return source


def _embed(source: Any, model: FaceModel, fps: float, path: Path | None, progress: bool) -> EmbedResult:
    from imm_analysis.faces.embed import embed_images

    source = _expand(source)
    cache = None if path is None else Path(path) / "cache"
    return embed_images(source, model, video_fps=fps, cache_dir=cache, progress=progress)


def build_search_library(
    source: Any,
    model: FaceModel,
    *,
    fps: float = 2.0,
    path: str | os.PathLike[str] | None = None,
    state: ClusterState | None = None,
    progress: bool = True,
    gap: float | None = None,
    target_fmr: float = 1e-5,
) -> SearchLibrary:
    """Index the faces of photos and videos for search by face.

    Parameters
    ----------
    source
        What :func:`imm_analysis.embed_images` takes: folders of photos and videos, a file, a
        list of files or a files frame.
    model : FaceModel
    fps : float, default=2.0
        Video samples per second.
    path : path-like, optional
        Save the library in this folder (and keep the embedding cache in ``path/cache``).
    state : ClusterState, optional
        Names the people: see :meth:`SearchLibrary.apply_state`.
    progress : bool, default=True
    gap : float, optional
        Longest absence inside a track, seconds: default 1 s, never less than two sample
        intervals (:func:`imm_analysis.search.tracks.default_gap`).
    target_fmr : float, default=1e-5
        False-match rate per pair the calibrated threshold aims at.

    Returns
    -------
    SearchLibrary
        Files that could not be read are in its ``errors``; the rest is indexed.

    Notes
    -----
    Tracks are linked with an identity check calibrated on the new media before linking:
    provisional tracks joined by box overlap alone (one sample apart) and the photo faces
    give the impostor pairs (:mod:`imm_analysis.search.score`); a face joins a track when its
    similarity passes that threshold, or a looser one (false-match rate 1e-2) when its box
    overlaps the track's last box. Pairs known to be different people (two faces of one video
    sample) join the calibration (:func:`imm_analysis.search.score.calibrate_library`).

    Examples
    --------
    (These need a model pack or a built library, so they are not run as doctests.)

    >>> from imm_analysis import FaceModel, build_search_library
    >>> model = FaceModel("../shared/models/mbf128_det500m")  # doctest: +SKIP
    >>> lib = build_search_library("../shared/faces/video", model, fps=2)  # doctest: +SKIP
    >>> lib.search("../shared/faces/video/lin-manuel-miranda.png")  # doctest: +SKIP
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    res = _embed(source, model, fps, Path(path) if path is not None else None, progress)
    if len(res.files) == 0 and len(res.errors):
        first = res.errors.iloc[0]
        raise ValueError(f"nothing could be indexed: {len(res.errors)} file(s) failed, the first "
                         f"{first['uri']}: {first['reason']}")
    lib = SearchLibrary.from_result(res, fps=fps, gap=gap, state=state, target_fmr=target_fmr, model=model)
    if path is not None:
        lib.save(path)
    return lib
