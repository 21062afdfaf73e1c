"""ClusterState: a clustering you can edit by hand, update incrementally, save and load.

The state holds the figures (with ``figure_cluster_id``), the clusters frame (IMM's
FigureCluster statistics), the embeddings and the kNN graph. Manual edits (merge, move,
eject, rename, set cover, "not the same person", remove files) take effect at once and
persist across later :meth:`ClusterState.update` runs, because an update never moves a face
that was already placed, never lets an ejected face back into a cluster, keeps names,
custom labels and hand-picked covers, enforces "not the same person" as cannot-links, and
skips faces of removed files.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis import schema
from imm_analysis.cluster.constraints import image_keys, resolve_hd
from imm_analysis.cluster.incremental import extend_graph, incremental_labels
from imm_analysis.cluster.knn import KNNGraph, NeighborIndex, prepare_embeddings, resolve_backend
from imm_analysis.cluster.stats import cluster_table, new_cluster_ids, ordered_clusters
from imm_analysis.cluster.tasks import TaskLog
from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes, fsync_dir
from imm_analysis.io.parquet import category_dtypes, read_frame, write_frame

__all__ = ["ClusterState"]

_FORMAT = 1
_RESERVED = frozenset({None, schema.CLUSTER_INDEPENDENT, schema.CLUSTER_UNAVAILABLE})
_PARAM_KEYS = ("threshold", "min_faces", "hd_rule", "n_neighbors", "backend", "linkage_floor")


class ClusterState:
    """An editable, incrementally updatable, persistent face clustering.

    Build one with :meth:`from_figures` (or :meth:`load`); read ``figures`` and ``clusters``;
    edit with :meth:`merge`, :meth:`move`, :meth:`eject`, :meth:`rename`, :meth:`set_cover`,
    :meth:`not_same_person` and :meth:`remove_files`; add faces with :meth:`update`.

    Attributes
    ----------
    figures : DataFrame
        Every face (schema ``figures``), ``figure_cluster_id`` and ``cluster_state`` filled.
    clusters : DataFrame
        One row per cluster (schema ``clusters``), as ``load_clusters`` returns them.
    embeddings : ndarray of float32, shape (n_faces, dim)
        Row-aligned with ``figures``.
    knn : KNNGraph
        The neighbour graph over the faces.
    params : dict
        Clustering parameters (``threshold`` is the threshold actually used).
    edits : list of dict
        The log of manual edits (operation, arguments, time).

    Notes
    -----
    Memory is the embeddings (4 d bytes per face), the kNN graph (12 k bytes per face) and
    the frames. An edit recomputes the statistics of the clusters it touches only (the other
    rows of :attr:`clusters` are kept), plus a few vectorised passes over the ids (tens of
    milliseconds at 100,000 faces); :meth:`update` costs about what
    :meth:`FigureClusterer.partial_fit` costs.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(rng.normal(size=(2, 32)), 3, axis=0) + 0.05 * rng.normal(size=(6, 32))
    >>> figs = pd.DataFrame({"figure_id": [f"f{i}" for i in range(6)], "file_id": [f"i{i}" for i in range(6)]})
    >>> state = ClusterState.from_figures(figs, x, threshold=0.5, hd_rule=lambda f: np.ones(len(f), bool), seed=0)
    >>> a, b = state.clusters["cluster_id"]
    >>> state.merge([a, b]).clusters["face_count"].tolist()
    [6]
    """

    def __init__(
        self,
        figures: pd.DataFrame,
        clusters: pd.DataFrame,
        embeddings: np.ndarray,
        *,
        knn: KNNGraph,
        hd: np.ndarray,
        params: dict[str, Any],
        locked: np.ndarray | None = None,
        cannot_link: pd.DataFrame | None = None,
        removed: Iterable[str] = (),
        cover_locked: dict[str, str] | None = None,
        edits: list[dict] | None = None,
        seed: int | None = None,
    ) -> None:
        self.figures = figures
        self.clusters = clusters
        self.embeddings = embeddings
        self.knn = knn
        self.params = dict(params)
        self.edits = list(edits or [])
        self._hd = np.asarray(hd, dtype=bool)
        self._locked = np.zeros(len(figures), dtype=bool) if locked is None else np.asarray(locked, dtype=bool)
        self._cannot = cannot_link if cannot_link is not None else pd.DataFrame({"a": pd.Series([], dtype="string"), "b": pd.Series([], dtype="string")})
        self._removed = set(removed)
        self._cover_locked = dict(cover_locked or {})
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._hd_rule = params.get("hd_rule")
        self._index: NeighborIndex | None = None
        self.last_update: dict[str, int] = {}
        self.task_log = TaskLog()  # local runs as IMM task records (imm_analysis.cluster.tasks)

    # ------------------------------------------------------------------ construction
    @property
    def hd(self) -> np.ndarray:
        """The high-definition flag of each face (row-aligned with :attr:`figures`) the clustering used."""
        view = self._hd.view()
        view.flags.writeable = False
        return view

    @classmethod
    def from_figures(
        cls,
        figures: pd.DataFrame,
        embeddings: np.ndarray,
        *,
        seed: int | None = None,
        project_name: str | None = None,
        dataset_name: str | None = None,
        **clusterer_params: Any,
    ) -> ClusterState:
        """Cluster ``figures`` from scratch (a :class:`FigureClusterer` fit) and wrap the result.

        Parameters
        ----------
        figures : DataFrame
            Figures frame row-aligned with ``embeddings``; ``figure_id`` must be unique.
        embeddings : array-like of shape (n_faces, dim)
        seed : int, optional
            Seed for ``Cluster-<uuid4>`` ids (random when None).
        project_name, dataset_name : str, optional
            Written into the clusters frame (``ProjectName`` / ``DatasetName``).
        **clusterer_params
            :class:`FigureClusterer` parameters.
        """
        from imm_analysis.cluster.clusterer import FigureClusterer

        started = pd.Timestamp.now(tz="UTC")
        x = prepare_embeddings(embeddings)
        figures = _check_figures(figures, len(x))
        est = FigureClusterer(**clusterer_params).fit(x, figures)
        params = {k: getattr(est, k) for k in _PARAM_KEYS}
        params["threshold"] = est.threshold_
        params["project_name"], params["dataset_name"] = project_name, dataset_name
        state = cls(
            figures, schema.empty_frame("clusters"), x, knn=est.knn_, hd=est.hd_, params=params, seed=seed
        )
        state._index = est._index
        state._assign(est.labels_, np.arange(len(x)), n_old_clusters=0, cluster_ids=[])
        state.task_log.record_run(state, started, {"new_faces": len(x), "new_clusters": len(state.clusters)})
        return state

    # ------------------------------------------------------------------ helpers
    def _now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def _ids(self) -> np.ndarray:
        return self.figures["figure_cluster_id"].astype("string").to_numpy(dtype=object, na_value=None)

    def _ids_at(self, rows: np.ndarray) -> np.ndarray:
        """``figure_cluster_id`` of the faces at ``rows`` (None where missing)."""
        return self.figures["figure_cluster_id"].iloc[rows].astype("string").to_numpy(dtype=object, na_value=None)

    def _rows(self, figure_ids: Iterable[str] | str) -> np.ndarray:
        if isinstance(figure_ids, str):
            figure_ids = [figure_ids]
        wanted = list(figure_ids)
        index = pd.Index(self.figures["figure_id"].astype(str))
        pos = index.get_indexer(wanted)
        if (pos < 0).any():
            missing = [w for w, p in zip(wanted, pos, strict=True) if p < 0]
            raise KeyError(f"unknown figure_id(s): {missing[:5]}")
        return pos

    def _check_cluster(self, cluster_id: str) -> None:
        if cluster_id not in set(self.clusters["cluster_id"].astype(str)):
            raise KeyError(f"unknown cluster_id {cluster_id!r}")

    def _members(self, cluster_ids: Iterable[str]) -> np.ndarray:
        """Row positions of the faces of ``cluster_ids``."""
        return np.flatnonzero(_isin(self.figures["figure_cluster_id"], cluster_ids))

    def _set_ids(self, rows: np.ndarray, values: np.ndarray, changed: Iterable[str]) -> None:
        """Give the faces at ``rows`` the cluster ids ``values``; refresh the clusters they leave or join.

        ``changed`` are the clusters whose ``update_time`` becomes now.
        """
        rows = np.asarray(rows, dtype=np.int64)
        values = np.asarray(values, dtype=object)
        ids = self.figures["figure_cluster_id"].astype("string")
        left = ids.iloc[rows].to_numpy(dtype=object, na_value=None)
        ids = ids.copy()
        ids.iloc[rows] = pd.array(values, dtype="string")
        state = self.figures["cluster_state"].copy()
        state.iloc[rows] = schema.cluster_state(ids.iloc[rows]).to_numpy()
        figures = self.figures.copy(deep=False)  # copy-on-write: the old frame stays as it was
        figures["figure_cluster_id"] = ids
        figures["cluster_state"] = state
        self.figures = figures
        self._refresh(set(changed), touched=set(left.tolist()) | set(values.tolist()))

    def _refresh(self, changed: set[str], touched: Iterable[str] = ()) -> None:
        """Recompute the rows of the clusters in ``changed`` and ``touched``; drop those left empty.

        The result equals a full :func:`cluster_table` over every face with ``previous=self.clusters``
        (other clusters' statistics cannot have changed), at the cost of the touched clusters'
        faces plus a sort of the cluster rows, not of every face.
        """
        redo = sorted({c for c in set(changed) | set(touched) if isinstance(c, str) and c not in _RESERVED})
        if not redo:
            return
        was = _isin(self.clusters["cluster_id"], redo)
        member = _isin(self.figures["figure_cluster_id"], redo)
        part = cluster_table(
            self.figures.loc[member],
            self._hd[member],
            previous=self.clusters.loc[was],
            changed=changed,
            cover_locked={k: self._cover_locked[k] for k in redo if k in self._cover_locked},
            now=self._now(),
            project_name=self.params.get("project_name"),
            dataset_name=self.params.get("dataset_name"),
        )
        self.clusters = _splice(self.clusters.loc[~was], part)
        gone = set(redo) - set(part["cluster_id"].astype(str))
        self._cover_locked = {k: v for k, v in self._cover_locked.items() if k not in gone}

    def _log(self, op: str, **args: Any) -> None:
        self.edits.append({"op": op, "time": self._now().isoformat(), **args})

    def _image_codes(self, figures: pd.DataFrame) -> np.ndarray:
        return pd.factorize(pd.Index(image_keys(figures, len(figures))))[0].astype(np.int64)

    def _check_no_conflict(self, rows: np.ndarray, cluster_id: str, what: str) -> None:
        """Raise when ``rows`` would share ``cluster_id`` with a face of the same image or a cannot-link partner."""
        members = np.setdiff1d(self._members([cluster_id]), rows)
        group = np.concatenate([members, rows])
        codes = self._image_codes(self.figures.iloc[group])
        if len(np.unique(codes)) < len(codes):
            _, first = np.unique(codes, return_index=True)
            dup = np.setdiff1d(np.arange(len(codes)), first)[0]
            fid = self.figures["file_id"].iloc[group[dup]] if "file_id" in self.figures.columns else group[dup]
            raise ValueError(f"{what}: two faces of one image ({fid}) cannot share cluster {cluster_id}")
        fids = set(self.figures["figure_id"].iloc[group].astype(str))
        if len(self._cannot):
            a = self._cannot["a"].astype(str).to_numpy()
            b = self._cannot["b"].astype(str).to_numpy()
            clash = [(x, y) for x, y in zip(a, b, strict=True) if x in fids and y in fids]
            if clash:
                raise ValueError(f"{what}: faces {clash[0]} were marked as not the same person")

    def _assign(self, labels: np.ndarray, rows: np.ndarray, *, n_old_clusters: int, cluster_ids: list[str]) -> set[str]:
        """Give ``rows`` the ids of ``labels`` (label < n_old_clusters: existing id; above: new ids)."""
        n_new = int(labels.max()) + 1 - n_old_clusters if len(labels) and labels.max() >= n_old_clusters else 0
        new_ids = new_cluster_ids(n_new, self._rng)
        table = np.array(list(cluster_ids) + new_ids + [schema.CLUSTER_INDEPENDENT], dtype=object)
        lab = labels[rows]
        changed = set(table[np.unique(lab[lab >= 0])].tolist()) if (lab >= 0).any() else set()
        self._set_ids(rows, table[np.where(lab >= 0, lab, len(table) - 1)], changed)
        return changed

    # ------------------------------------------------------------------ edits
    def merge(self, cluster_ids: Iterable[str], *, into: str | None = None) -> ClusterState:
        """Merge clusters into one (``into``, default the largest of them); returns ``self``.

        Raises ValueError when the result would hold two faces of one image or two faces
        marked "not the same person".
        """
        cluster_ids = [str(c) for c in cluster_ids]
        for c in cluster_ids:
            self._check_cluster(c)
        if into is None:
            sizes = self.clusters.set_index(self.clusters["cluster_id"].astype(str))["face_count"]
            into = max(cluster_ids, key=lambda c: (int(sizes[c]), -cluster_ids.index(c)))
        else:
            self._check_cluster(into)
        rows = self._members(c for c in cluster_ids if c != into)
        self._check_no_conflict(rows, into, "merge")
        prev = self.clusters.set_index(self.clusters["cluster_id"].astype(str))
        if pd.isna(prev.loc[into, "name"]):
            names = [prev.loc[c, "name"] for c in cluster_ids if not pd.isna(prev.loc[c, "name"])]
            if names:
                self.clusters.loc[self.clusters["cluster_id"] == into, "name"] = names[0]
        labels = {}
        for c in cluster_ids:
            v = prev.loc[c, "custom_labels"]
            if isinstance(v, dict):
                labels = {**v, **labels} if c != into else {**labels, **v}
        if labels:
            idx = np.flatnonzero((self.clusters["cluster_id"] == into).to_numpy(bool))[0]
            self.clusters.at[self.clusters.index[idx], "custom_labels"] = labels
        self._log("merge", cluster_ids=cluster_ids, into=into)
        self._set_ids(rows, np.full(len(rows), into, dtype=object), {into})
        return self

    def move(self, figure_ids: Iterable[str] | str, cluster_id: str | None) -> ClusterState:
        """Move faces into ``cluster_id`` (None: a new cluster of their own); returns ``self``.

        Moving to ``figure-cluster-id-independent`` is :meth:`eject`.
        """
        if cluster_id == schema.CLUSTER_INDEPENDENT:
            return self.eject(figure_ids)
        rows = self._rows(figure_ids)
        changed = {i for i in self._ids_at(rows) if i not in _RESERVED}
        if cluster_id is None:
            cluster_id = new_cluster_ids(1, self._rng)[0]
            codes = self._image_codes(self.figures.iloc[rows])
            if len(np.unique(codes)) < len(codes):
                raise ValueError("move: two faces of one image cannot share a cluster")
        else:
            self._check_cluster(cluster_id)
            self._check_no_conflict(rows, cluster_id, "move")
        self._locked[rows] = False
        self._log("move", figure_ids=self.figures["figure_id"].iloc[rows].astype(str).tolist(), cluster_id=cluster_id)
        self._set_ids(rows, np.full(len(rows), cluster_id, dtype=object), changed | {cluster_id})
        return self

    def eject(self, figure_ids: Iterable[str] | str) -> ClusterState:
        """Make faces independent for good: later updates never put them back in a cluster."""
        rows = self._rows(figure_ids)
        changed = {i for i in self._ids_at(rows) if i not in _RESERVED}
        self._locked[rows] = True
        self._log("eject", figure_ids=self.figures["figure_id"].iloc[rows].astype(str).tolist())
        self._set_ids(rows, np.full(len(rows), schema.CLUSTER_INDEPENDENT, dtype=object), changed)
        return self

    def rename(self, cluster_id: str, name: str | None) -> ClusterState:
        """Set a cluster's ``name`` (IMM's FigureCluster.Name); kept across updates."""
        self._check_cluster(cluster_id)
        hit = self.clusters["cluster_id"] == cluster_id
        clusters = self.clusters.copy()
        clusters.loc[hit, "name"] = name
        clusters.loc[hit, "update_time"] = self._now()
        self.clusters = schema.coerce_frame(clusters, "clusters")
        self._log("rename", cluster_id=cluster_id, name=name)
        return self

    def set_cover(self, cluster_id: str, file_id: str) -> ClusterState:
        """Use ``file_id`` (a file holding one of the cluster's faces) as the cluster's cover."""
        self._check_cluster(cluster_id)
        files = set(self.figures["file_id"].iloc[self._members([cluster_id])].astype(str))
        if str(file_id) not in files:
            raise ValueError(f"set_cover: file {file_id!r} holds no face of cluster {cluster_id}")
        self._cover_locked[cluster_id] = str(file_id)
        self._log("set_cover", cluster_id=cluster_id, file_id=str(file_id))
        self._refresh({cluster_id})
        return self

    def not_same_person(self, figure_ids: Iterable[str]) -> ClusterState:
        """Mark faces as different people: they never share a cluster from now on.

        Where several of them share a cluster now, the first listed stays and the others are
        made independent (they may still found or join other clusters in later updates).
        """
        rows = self._rows(list(figure_ids))
        fids = self.figures["figure_id"].iloc[rows].astype(str).tolist()
        pairs = [(a, b) for i, a in enumerate(fids) for b in fids[i + 1 :] if a != b]
        if pairs:
            add = pd.DataFrame({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}, dtype="string")
            self._cannot = pd.concat([self._cannot, add], ignore_index=True).drop_duplicates(ignore_index=True)
        seen: set[str] = set()
        changed = set()
        split = []
        for r, c in zip(rows, self._ids_at(rows), strict=True):
            if c in _RESERVED:
                continue
            if c in seen:
                split.append(r)
                changed.add(c)
            seen.add(c)
        self._log("not_same_person", figure_ids=fids)
        self._set_ids(np.asarray(split, dtype=np.int64), np.full(len(split), schema.CLUSTER_INDEPENDENT, dtype=object),
                      changed)
        return self

    def remove_files(self, file_ids: Iterable[str] | str) -> ClusterState:
        """Remove files and their faces; statistics update and emptied clusters are deleted.

        The removed faces are remembered: :meth:`update` skips them if they are offered again.
        """
        if isinstance(file_ids, str):
            file_ids = [file_ids]
        wanted = set(map(str, file_ids))
        gone = _isin(self.figures["file_id"], wanted)
        if not gone.any():
            return self
        changed = {i for i in self._ids_at(np.flatnonzero(gone)) if i not in _RESERVED}
        removed = set(self.figures["figure_id"].iloc[np.flatnonzero(gone)].astype(str))
        self._removed |= removed
        keep = ~gone
        self.figures = self.figures.loc[keep].reset_index(drop=True)
        self.embeddings = self.embeddings[keep]
        self.knn = self.knn.subset(np.flatnonzero(keep))
        self._hd = self._hd[keep]
        self._locked = self._locked[keep]
        self._index = None
        if len(self._cannot):
            ok = ~(_isin(self._cannot["a"], removed) | _isin(self._cannot["b"], removed))
            self._cannot = self._cannot[ok].reset_index(drop=True)
        self._log("remove_files", file_ids=sorted(wanted))
        self._refresh(changed)
        return self

    # ------------------------------------------------------------------ incremental update
    def update(self, new_figures: pd.DataFrame, new_embeddings: np.ndarray, *, progress: bool = False) -> ClusterState:
        """Cluster faces added since the last run, honouring every manual edit; returns ``self``.

        Faces already in the state (same ``figure_id``) and faces of removed files are
        skipped. New faces join existing clusters or found new ones with earlier independent
        faces (see :mod:`imm_analysis.cluster.incremental`); nothing placed earlier moves.
        ``last_update`` reports the counts.
        """
        started = self._now()
        x_new = prepare_embeddings(new_embeddings, name="new_embeddings")
        new_figures = _check_figures(new_figures, len(x_new), name="new_figures")
        fid = new_figures["figure_id"].astype(str)
        known = set(self.figures["figure_id"].astype(str)) | self._removed
        fresh = ~_isin(fid, known)
        skipped = int((~fresh).sum())
        new_figures = new_figures.loc[fresh].reset_index(drop=True)
        x_new = x_new[fresh]
        m = len(x_new)
        self.last_update = {"new_faces": m, "skipped": skipped, "joined": 0, "new_clusters": 0, "independent": 0}
        if m == 0:
            return self.task_log.record_run(self, started, self.last_update)
        n_old = len(self.figures)
        if self._index is None:
            backend = resolve_backend(self.params.get("backend", "auto"), n_old + m)
            self._index = NeighborIndex(self.embeddings, backend=backend)
        knn = extend_graph(self._index, self.knn, x_new, progress=progress)
        hd_new = resolve_hd(new_figures, m, self._hd_rule)
        figures = schema.coerce_frame(pd.concat([self.figures, new_figures], ignore_index=True), "figures")
        hd = np.concatenate([self._hd, hd_new])
        codes = self._image_codes(figures)
        cluster_ids = self.clusters["cluster_id"].astype(str).tolist()
        ids = self.figures["figure_cluster_id"].astype("string").fillna("")
        old_labels = pd.Index(cluster_ids).get_indexer(ids).astype(np.int64)  # -1: independent or unavailable
        cannot = None
        if len(self._cannot):
            pos = pd.Index(figures["figure_id"].astype(str))
            cannot = (pos.get_indexer(self._cannot["a"].astype(str)), pos.get_indexer(self._cannot["b"].astype(str)))
        labels = incremental_labels(
            old_labels,
            knn,
            self._index.embeddings,
            hd,
            codes,
            float(self.params["threshold"]),
            int(self.params["min_faces"]),
            locked=self._locked,
            cannot_link=cannot,
        )
        self.figures = figures
        self.embeddings = self._index.embeddings
        self.knn = knn
        self._hd = hd
        self._locked = np.concatenate([self._locked, np.zeros(m, dtype=bool)])
        new_rows = np.arange(n_old, n_old + m)
        # old faces that founded a new cluster with new faces change too
        rows = np.flatnonzero(labels != np.concatenate([old_labels, np.full(m, -2)]))
        rows = np.union1d(rows, new_rows)
        self._assign(labels, rows, n_old_clusters=len(cluster_ids), cluster_ids=cluster_ids)
        lab_new = labels[new_rows]
        self.last_update.update(
            joined=int(((lab_new >= 0) & (lab_new < len(cluster_ids))).sum()),
            new_clusters=int(len(np.unique(labels[labels >= len(cluster_ids)]))),
            independent=int((lab_new < 0).sum()),
        )
        return self.task_log.record_run(self, started, self.last_update)

    @property
    def tasks(self) -> pd.DataFrame:
        """Local runs as IMM task records, kept ``task_log.retention`` (7 days; settable): see cluster/tasks.py."""
        return self.task_log.frame()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the state to directory ``path`` atomically (Parquet frames, ``.npy`` arrays, JSON).

        The directory is written beside ``path`` under a temporary name and swapped in at the
        end, so a crash never leaves a half-written state. Returns the path.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            # every file is fsynced before the folder is swapped in: no empty files after a power cut
            write_frame(self.figures, tmp / "figures.parquet")
            write_frame(self.clusters, tmp / "clusters.parquet")
            write_frame(self._cannot, tmp / "cannot_link.parquet")
            atomic_save_npy(tmp / "embeddings.npy", self.embeddings)
            atomic_save_npy(tmp / "knn_indices.npy", self.knn.indices)
            atomic_save_npy(tmp / "knn_similarities.npy", self.knn.similarities)
            atomic_save_npy(tmp / "hd.npy", self._hd)
            atomic_save_npy(tmp / "locked.npy", self._locked)
            params = dict(self.params)
            if callable(params.get("hd_rule")):
                params["hd_rule"] = "<callable>"
            meta = {
                "format": _FORMAT,
                "params": params,
                "removed": sorted(self._removed),
                "cover_locked": self._cover_locked,
                "edits": self.edits,
                # also in the Parquet files' metadata; kept here for readers of the first release
                "categories": {"figures": category_dtypes(self.figures), "clusters": category_dtypes(self.clusters)},
            }
            atomic_write_bytes(tmp / "state.json", json.dumps(meta, indent=1, default=str).encode())
            self.task_log.save(tmp)
            backup = None
            if path.exists():
                backup = path.parent / f".{path.name}.old-{uuid.uuid4().hex}"
                os.replace(path, backup)
            os.replace(tmp, path)
            fsync_dir(path.parent)
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, hd_rule: Any = None, seed: int | None = None) -> ClusterState:
        """Read a state written by :meth:`save`.

        ``hd_rule`` must be given again when the state was built with a callable rule (it
        cannot be saved); it applies to faces added by later updates.
        """
        path = Path(path)
        meta_file = path / "state.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{path} is not a saved ClusterState (no state.json)")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_file}: unsupported state format {meta.get('format')!r}")
        params = meta["params"]
        cats = meta.get("categories", {})
        if params.get("hd_rule") == "<callable>":
            if hd_rule is None:
                warnings.warn(
                    f"{path}: the state was built with a callable hd_rule; pass hd_rule= to load() "
                    "for updates (using IMM's default rule meanwhile)",
                    stacklevel=2,
                )
            params["hd_rule"] = hd_rule
        elif hd_rule is not None:
            params["hd_rule"] = hd_rule
        state = cls(
            read_frame(path / "figures.parquet", kind="figures", categories=cats.get("figures")),
            read_frame(path / "clusters.parquet", kind="clusters", categories=cats.get("clusters")),
            np.load(path / "embeddings.npy"),
            knn=KNNGraph(np.load(path / "knn_indices.npy"), np.load(path / "knn_similarities.npy")),
            hd=np.load(path / "hd.npy"),
            params=params,
            locked=np.load(path / "locked.npy"),
            cannot_link=read_frame(path / "cannot_link.parquet").astype("string"),
            removed=meta["removed"],
            cover_locked=meta["cover_locked"],
            edits=meta["edits"],
            seed=seed,
        )
        state.task_log = TaskLog.load(path)
        return state

    def __repr__(self) -> str:
        n_ind = int((self.figures["cluster_state"] == "independent").sum()) if len(self.figures) else 0
        return (
            f"ClusterState({len(self.figures)} faces, {len(self.clusters)} clusters, {n_ind} independent, "
            f"threshold={self.params.get('threshold'):.3f}, min_faces={self.params.get('min_faces')}, "
            f"{len(self.edits)} edits)"
        )


def _check_figures(figures: pd.DataFrame, n: int, name: str = "figures") -> pd.DataFrame:
    if not isinstance(figures, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame, got {type(figures).__name__}")
    if len(figures) != n:
        raise ValueError(f"{name} has {len(figures)} rows but the embeddings have {n}; they must be row-aligned")
    figures = figures.reset_index(drop=True)
    if "figure_id" not in figures.columns:
        figures = figures.assign(figure_id=[f"face-{uuid.uuid4()}" for _ in range(n)])
    fid = figures["figure_id"].astype("string")
    if fid.isna().any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(fid.isna().to_numpy(bool))[0])} has no figure_id")
    dup = fid.duplicated()
    if dup.any():
        raise ValueError(f"{name}: figure_id {fid[dup].iloc[0]!r} appears more than once")
    return schema.coerce_frame(figures, "figures")


def _isin(column: pd.Series, values: Iterable[Any]) -> np.ndarray:
    """Bool mask of the rows of ``column`` (text) whose value is one of ``values`` (missing: False).

    ``Series.isin`` on Arrow-backed strings converts each of ``values`` in Python (about 10 us
    each); pyarrow's ``is_in`` hashes the whole set at once (a few ms at 100,000 values).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(column.astype("string").array)
    wanted = pa.array([str(v) for v in values if v is not None], type=arr.type)
    return np.asarray(pc.is_in(arr, value_set=wanted).fill_null(False), dtype=bool)


def _splice(kept: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    """Clusters rows ``kept`` plus recomputed rows ``part``, ordered and typed as :func:`cluster_table` orders them."""
    frames = [
        f[list(part.columns)].astype({c: "string" for c in part.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})
        for f in (kept, part)
    ]
    return ordered_clusters(pd.concat(frames, ignore_index=True))
