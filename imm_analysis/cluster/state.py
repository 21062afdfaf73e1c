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

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis import schema
from imm_analysis.cluster.clusterer import FigureClusterer
from imm_analysis.cluster.constraints import check_figures, image_keys
from imm_analysis.cluster.edits import _isin
from imm_analysis.cluster.erase import EraseMixin
from imm_analysis.cluster.knn import KNNGraph, prepare_embeddings
from imm_analysis.cluster.stats import labelled_frames
from imm_analysis.cluster.store import frame_categories, load_parts, save_parts
from imm_analysis.cluster.tasks import FILE_NAME as TASKS_FILE
from imm_analysis.cluster.tasks import TaskLog
from imm_analysis.io.tombstones import tombstoned_mask
from imm_analysis.quality.hd import HDRule

__all__ = ["ClusterState"]

_ARRAYS = ("embeddings", "knn_indices", "knn_similarities", "hd", "locked")
_PARAM_KEYS = ("threshold", "min_faces", "hd_rule", "n_neighbors", "backend", "linkage_floor")


class ClusterState(EraseMixin):
    """An editable, incrementally updatable, persistent face clustering.

    Build one with :meth:`from_figures` (or :meth:`load`); read ``figures`` and ``clusters``;
    edit with :meth:`merge`, :meth:`move`, :meth:`eject`, :meth:`rename`, :meth:`set_cover`,
    :meth:`not_same_person` and :meth:`remove_files`; add faces with :meth:`update`; erase faces
    for good with :meth:`remove_figures` and :meth:`expire` (tombstoned, see :mod:`imm_analysis.cluster.erase`).

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
        tombstones: Iterable[dict] = (),
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
        self._tombstones = list(tombstones)  # erased faces (imm_analysis.io.tombstones): updates skip them
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._estimator: FigureClusterer | None = None
        self._cannot_sent = 0  # "not the same person" pairs the estimator has been given
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

        The state keeps the fitted estimator: :meth:`update` calls its
        :meth:`~FigureClusterer.partial_fit`.

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
            :class:`FigureClusterer` parameters (``hd_rule`` may be an :class:`~imm_analysis.quality.HDRule`).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> x = np.repeat(np.eye(2, 8), 3, axis=0)
        >>> figs = pd.DataFrame({"figure_id": list("abcdef"), "file_id": list("abcdef")})
        >>> s = ClusterState.from_figures(figs, x, threshold=0.5, hd_rule=lambda f: np.ones(len(f), bool), seed=0)
        >>> s.clusters["face_count"].tolist()
        [3, 3]
        """
        started = pd.Timestamp.now(tz="UTC")
        x = prepare_embeddings(embeddings)
        figures = check_figures(figures, len(x))
        est = FigureClusterer(**clusterer_params).fit(x, figures=figures)
        params = {k: getattr(est, k) for k in _PARAM_KEYS}
        params["threshold"] = est.threshold_
        params["project_name"], params["dataset_name"] = project_name, dataset_name
        state = cls(figures, schema.empty_frame("clusters"), x, knn=est.knn_, hd=est.hd_, params=params, seed=seed)
        state.figures, state.clusters = labelled_frames(
            figures, est.labels_, est.hd_, rng=state._rng, now=state._now(),
            project_name=project_name, dataset_name=dataset_name,
        )
        state._estimator = est
        state.task_log.record_run(state, started, {"new_faces": len(x), "new_clusters": len(state.clusters)})
        return state

    def _fitted_estimator(self) -> FigureClusterer:
        """The state's estimator, rebuilt from the state's arrays after a load or a removal."""
        if self._estimator is None:
            self._estimator = FigureClusterer._restore(
                self.params, self.embeddings, knn=self.knn, hd=self._hd,
                image_keys=image_keys(self.figures, len(self.figures)), labels=self._labels(),
                cannot_link=self._cannot_pairs(self.figures),
            )
            self._cannot_sent = len(self._cannot)
        return self._estimator

    def _labels(self) -> np.ndarray:
        """Integer label per face: position in :attr:`clusters`, -1 independent or unavailable."""
        ids = self.figures["figure_cluster_id"].astype("string").fillna("")
        return pd.Index(self.clusters["cluster_id"].astype(str)).get_indexer(pd.Index(ids)).astype(np.int64)

    def _cannot_pairs(self, figures: pd.DataFrame, start: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """The "not the same person" pairs from ``start`` on, as row indices of ``figures``."""
        part = self._cannot.iloc[start:]
        if not len(part):
            return None
        pos = pd.Index(figures["figure_id"].astype(str))
        return pos.get_indexer(pd.Index(part["a"].astype(str))), pos.get_indexer(pd.Index(part["b"].astype(str)))

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
        new_figures = check_figures(new_figures, len(x_new), name="new_figures")
        fid = new_figures["figure_id"].astype(str)
        known = set(self.figures["figure_id"].astype(str)) | self._removed
        fresh = ~_isin(fid, known)
        if self._tombstones:  # forgotten or expired faces never come back
            fresh &= ~tombstoned_mask(new_figures, self._tombstones)
        skipped = int((~fresh).sum())
        new_figures = new_figures.loc[fresh].reset_index(drop=True)
        x_new = x_new[fresh]
        m = len(x_new)
        self.last_update = {"new_faces": m, "skipped": skipped, "joined": 0, "new_clusters": 0, "independent": 0}
        if m == 0:
            return self.task_log.record_run(self, started, self.last_update)
        n_old = len(self.figures)
        est = self._fitted_estimator()
        if self.params.get("hd_rule") is not est.hd_rule:  # a rule given again to load()
            est.set_params(hd_rule=self.params.get("hd_rule"))
        figures = schema.coerce_frame(pd.concat([self.figures, new_figures], ignore_index=True), "figures")
        cluster_ids = self.clusters["cluster_id"].astype(str).tolist()
        old_labels = self._labels()
        est.partial_fit(
            x_new, figures=new_figures, locked=self._locked, earlier_labels=old_labels,
            cannot_link=self._cannot_pairs(figures, self._cannot_sent),
        )
        self._cannot_sent = len(self._cannot)
        labels, knn, hd = est.labels_, est.knn_, est.hd_
        self.figures = figures
        self.embeddings = est._index.embeddings
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
        """Write the state to folder ``path`` as a new version; ``path`` always holds a loadable state.

        Frames go to Parquet, arrays to ``.npy``, the rest to JSON, in a new version folder
        ``path/v-<n>``; the pointer file ``path/CURRENT`` is then replaced atomically, and only
        then are older versions removed (see :mod:`imm_analysis.cluster.store`). A crash at
        any moment leaves the previous or the new state loadable. Returns the path.

        Examples
        --------
        >>> import tempfile, numpy as np, pandas as pd
        >>> figs = pd.DataFrame({"figure_id": list("abc"), "file_id": list("abc")})
        >>> s = ClusterState.from_figures(figs, np.eye(3, 4), threshold=0.5, min_faces=1, seed=0)
        >>> path = s.save(tempfile.mkdtemp() + "/state")
        >>> loaded = ClusterState.load(path)
        >>> len(loaded.figures), sorted(p.name for p in path.iterdir())
        (3, ['CURRENT', 'v-1'])
        """
        params = dict(self.params)
        rule = params.get("hd_rule")
        if isinstance(rule, HDRule):
            params["hd_rule"] = rule.as_dict()
        elif callable(rule):
            params["hd_rule"] = "<callable>"
        frames = {"figures": self.figures, "clusters": self.clusters, "cannot_link": self._cannot}
        arrays = {
            "embeddings": self.embeddings,
            "knn_indices": self.knn.indices,
            "knn_similarities": self.knn.similarities,
            "hd": self._hd,
            "locked": self._locked,
        }
        meta = {
            "params": params,
            "removed": sorted(self._removed),
            "cover_locked": self._cover_locked,
            "edits": self.edits,
            "tombstones": self._tombstones,
            # also in the Parquet files' metadata; kept here for readers of the first release
            "categories": frame_categories({"figures": self.figures, "clusters": self.clusters}),
        }
        return save_parts(path, frames, arrays, meta, files={TASKS_FILE: self.task_log.to_bytes()})

    @classmethod
    def load(cls, path: str | os.PathLike, *, hd_rule: Any = None, seed: int | None = None) -> ClusterState:
        """Read a state written by :meth:`save` (either layout); removes leftovers of a crashed save.

        ``hd_rule`` must be given again when the state was built with a callable rule (it
        cannot be saved); it applies to faces added by later updates.

        Examples
        --------
        >>> import tempfile, pytest
        >>> with pytest.raises(FileNotFoundError):
        ...     ClusterState.load(tempfile.mkdtemp())
        """
        frames, arrays, meta, where = load_parts(
            path, {"figures": "figures", "clusters": "clusters", "cannot_link": None}, _ARRAYS
        )
        params = meta["params"]
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
        elif isinstance(params.get("hd_rule"), dict):
            params["hd_rule"] = HDRule.coerce(params["hd_rule"])
        state = cls(
            frames["figures"],
            frames["clusters"],
            arrays["embeddings"],
            knn=KNNGraph(arrays["knn_indices"], arrays["knn_similarities"]),
            hd=arrays["hd"],
            params=params,
            locked=arrays["locked"],
            cannot_link=frames["cannot_link"].astype("string"),
            removed=meta["removed"],
            cover_locked=meta["cover_locked"],
            edits=meta["edits"],
            seed=seed,
            tombstones=meta.get("tombstones", []),
        )
        state.task_log = TaskLog.load(where)
        return state

    def __repr__(self) -> str:
        n_ind = int((self.figures["cluster_state"] == "independent").sum()) if len(self.figures) else 0
        return (
            f"ClusterState({len(self.figures)} faces, {len(self.clusters)} clusters, {n_ind} independent, "
            f"threshold={self.params.get('threshold'):.3f}, min_faces={self.params.get('min_faces')}, "
            f"{len(self.edits)} edits)"
        )
