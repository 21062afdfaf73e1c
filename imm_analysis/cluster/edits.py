"""Manual edits of a :class:`~imm_analysis.cluster.state.ClusterState`: merge, move, eject, rename, covers.

The edits and the bookkeeping they share with :meth:`ClusterState.update
<imm_analysis.cluster.state.ClusterState.update>` (assigning ids, refreshing the statistics
of the clusters touched) live here as a mixin of ``ClusterState``; the state itself keeps
construction, updates and persistence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis import schema
from imm_analysis.cluster.constraints import image_keys
from imm_analysis.cluster.stats import cluster_table, new_cluster_ids, ordered_clusters

if TYPE_CHECKING:  # pragma: no cover
    from typing import Self

    from imm_analysis.cluster.clusterer import FigureClusterer
    from imm_analysis.cluster.knn import KNNGraph

__all__ = ["EditsMixin"]

_RESERVED = frozenset({None, schema.CLUSTER_INDEPENDENT, schema.CLUSTER_UNAVAILABLE})


class EditsMixin:
    """Edits of a clustering by hand; each takes effect at once and persists across updates."""

    figures: pd.DataFrame
    clusters: pd.DataFrame
    embeddings: np.ndarray
    knn: KNNGraph
    params: dict[str, Any]
    edits: list[dict]
    _hd: np.ndarray
    _locked: np.ndarray
    _cannot: pd.DataFrame
    _removed: set[str]
    _cover_locked: dict[str, str]
    _rng: np.random.Generator | None
    _estimator: FigureClusterer | None

    # ------------------------------------------------------------------ helpers
    def _now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def _ids(self) -> np.ndarray:
        return self.figures["figure_cluster_id"].astype("string").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid

    def _ids_at(self, rows: np.ndarray) -> np.ndarray:
        """``figure_cluster_id`` of the faces at ``rows`` (None where missing)."""
        return self.figures["figure_cluster_id"].iloc[rows].astype("string").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid

    def _rows(self, figure_ids: Iterable[str] | str) -> np.ndarray:
        if isinstance(figure_ids, str):
            figure_ids = [figure_ids]
        wanted = list(figure_ids)
        index = pd.Index(self.figures["figure_id"].astype(str))
        pos = index.get_indexer(wanted)  # type: ignore[arg-type]  # pandas-stubs: get_indexer takes any array-like
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
        left = ids.iloc[rows].to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
        ids = ids.copy()
        ids.iloc[rows] = pd.array(values, dtype="string")  # type: ignore[call-overload]  # pandas-stubs: iloc takes int arrays
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
    def merge(self, cluster_ids: Iterable[str], *, into: str | None = None) -> Self:
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
        name = prev["name"]
        if pd.isna(name.loc[into]):
            names = [name.loc[c] for c in cluster_ids if not pd.isna(name.loc[c])]
            if names:
                self.clusters.loc[self.clusters["cluster_id"] == into, "name"] = names[0]
        labels: dict[str, Any] = {}
        for c in cluster_ids:
            v = prev.loc[c, "custom_labels"]
            if isinstance(v, dict):
                labels = {**v, **labels} if c != into else {**labels, **v}
        if labels:
            idx = np.flatnonzero((self.clusters["cluster_id"] == into).to_numpy(bool))[0]
            self.clusters.at[self.clusters.index[idx], "custom_labels"] = labels  # type: ignore[assignment]  # pandas-stubs: a cell may hold a dict
        self._log("merge", cluster_ids=cluster_ids, into=into)
        self._set_ids(rows, np.full(len(rows), into, dtype=object), {into})
        return self

    def move(self, figure_ids: Iterable[str] | str, cluster_id: str | None) -> Self:
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

    def eject(self, figure_ids: Iterable[str] | str) -> Self:
        """Make faces independent for good: later updates never put them back in a cluster."""
        rows = self._rows(figure_ids)
        changed = {i for i in self._ids_at(rows) if i not in _RESERVED}
        self._locked[rows] = True
        self._log("eject", figure_ids=self.figures["figure_id"].iloc[rows].astype(str).tolist())
        self._set_ids(rows, np.full(len(rows), schema.CLUSTER_INDEPENDENT, dtype=object), changed)
        return self

    def rename(self, cluster_id: str, name: str | None) -> Self:
        """Set a cluster's ``name`` (IMM's FigureCluster.Name); kept across updates."""
        self._check_cluster(cluster_id)
        hit = self.clusters["cluster_id"] == cluster_id
        clusters = self.clusters.copy()
        clusters.loc[hit, "name"] = name
        clusters.loc[hit, "update_time"] = self._now()
        self.clusters = schema.coerce_frame(clusters, "clusters")
        self._log("rename", cluster_id=cluster_id, name=name)
        return self

    def set_cover(self, cluster_id: str, file_id: str) -> Self:
        """Use ``file_id`` (a file holding one of the cluster's faces) as the cluster's cover."""
        self._check_cluster(cluster_id)
        files = set(self.figures["file_id"].iloc[self._members([cluster_id])].astype(str))
        if str(file_id) not in files:
            raise ValueError(f"set_cover: file {file_id!r} holds no face of cluster {cluster_id}")
        self._cover_locked[cluster_id] = str(file_id)
        self._log("set_cover", cluster_id=cluster_id, file_id=str(file_id))
        self._refresh({cluster_id})
        return self

    def not_same_person(self, figure_ids: Iterable[str]) -> Self:
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

    def remove_files(self, file_ids: Iterable[str] | str) -> Self:
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
        self._estimator = None  # rows changed: rebuilt from the state on the next update
        if len(self._cannot):
            ok = ~(_isin(self._cannot["a"], removed) | _isin(self._cannot["b"], removed))
            self._cannot = self._cannot[ok].reset_index(drop=True)
        self._log("remove_files", file_ids=sorted(wanted))
        self._refresh(changed)
        return self



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
