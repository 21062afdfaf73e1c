"""Erasure and retention for a :class:`~imm_analysis.cluster.state.ClusterState`: forget faces, expire old ones.

Unlike :meth:`~imm_analysis.ClusterState.remove_files` (which remembers the removed faces' ids so
that updates skip them), an erasure keeps no id of the faces it removes: each leaves a tombstone
(file content id, frame and box, :mod:`imm_analysis.io.tombstones`) that
:meth:`~imm_analysis.ClusterState.update` honours, and their ids are scrubbed from the edit log
and the "not the same person" pairs. Cluster statistics and covers are recomputed for the
clusters that lose faces, and clusters left empty are deleted, as IMM does for removed files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.cluster.edits import _RESERVED, EditsMixin, _isin
from imm_analysis.io.tombstones import _identity, tombstone_rows

if TYPE_CHECKING:  # pragma: no cover
    from typing import Self

__all__ = ["EraseMixin", "cutoff_time"]


def cutoff_time(older_than: Any, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The UTC cut-off meant by ``older_than``: a time, or an age (Timedelta or text like ``"30D"``).

    Examples
    --------
    >>> cutoff_time("7D", now=pd.Timestamp("2024-01-08", tz="UTC")).isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> cutoff_time("2024-01-01").isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> cutoff_time("1h", now=pd.Timestamp("2024-01-08 12:00")).isoformat()  # a naive now is UTC
    '2024-01-08T11:00:00+00:00'
    """
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    if isinstance(older_than, pd.Timedelta | np.timedelta64) or (
        hasattr(older_than, "total_seconds") and not hasattr(older_than, "year")
    ):
        return now - pd.Timedelta(older_than)
    if isinstance(older_than, str):
        try:
            return now - pd.Timedelta(older_than)
        except ValueError:
            pass
    try:
        ts = pd.Timestamp(older_than)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"older_than must be a time or an age (e.g. '30D'), got {older_than!r}") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class EraseMixin(EditsMixin):
    """Forgetting faces and expiring old ones, for :class:`~imm_analysis.ClusterState` (on top of its edits)."""

    _tombstones: list[dict]

    def remove_figures(self, figure_ids: Iterable[str] | str, *, reason: str = "forget") -> Self:
        """Erase faces by ``figure_id``: rows, embeddings and graph edges go, a tombstone stays.

        Other faces of the same files stay. Statistics and covers of the clusters that lose
        faces are recomputed and emptied clusters deleted; the edit log keeps only a count.
        Unknown ids are ignored. Returns ``self``.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from imm_analysis import ClusterState
        >>> figs = pd.DataFrame({"figure_id": list("abcd"), "file_id": list("abcd"), "left": 0, "top": 0,
        ...                      "width": 50, "height": 50})
        >>> x = np.repeat(np.eye(2, 8), 2, axis=0)
        >>> s = ClusterState.from_figures(figs, x, threshold=0.5, min_faces=2, hd_rule=lambda f: np.ones(len(f), bool), seed=0)
        >>> s.remove_figures(["a", "b"]).figures["figure_id"].tolist(), len(s.clusters)
        (['c', 'd'], 1)
        """
        if isinstance(figure_ids, str):
            figure_ids = [figure_ids]
        gone = _isin(self.figures["figure_id"], figure_ids)
        return self._erase_rows(gone, reason=reason)

    def expire(self, older_than: Any, *, now: pd.Timestamp | None = None) -> Self:
        """Erase faces captured before a cut-off (``produce_time``), as :meth:`remove_figures` does.

        Parameters
        ----------
        older_than : Timestamp, str or Timedelta
            A cut-off time, or an age such as ``"30D"`` (cut-off = ``now`` minus it).
        now : Timestamp, optional
            The present (default: now), for ages.

        Notes
        -----
        Faces without a capture time are kept; ``last_expire`` counts them (``unknown_time``)
        beside the faces removed (``faces``) and clusters deleted (``clusters``).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from imm_analysis import ClusterState
        >>> figs = pd.DataFrame({"figure_id": list("abcd"), "file_id": list("abcd"),
        ...     "produce_time": pd.to_datetime(["2020-01-01", "2020-01-02", "2024-01-01", "2024-01-02"], utc=True)})
        >>> s = ClusterState.from_figures(figs, np.repeat(np.eye(2, 8), 2, axis=0), threshold=0.5, min_faces=2,
        ...                               hd_rule=lambda f: np.ones(len(f), bool), seed=0)
        >>> s.expire("2023-01-01").last_expire
        {'faces': 2, 'clusters': 1, 'unknown_time': 0}
        """
        cut = cutoff_time(older_than, now)
        if "produce_time" in self.figures.columns:
            t = pd.to_datetime(self.figures["produce_time"], utc=True, errors="coerce")
        else:
            t = pd.Series(pd.NaT, index=self.figures.index, dtype="datetime64[ns, UTC]")
        old = (t < cut).fillna(False).to_numpy(bool)
        before = len(self.clusters)
        self._erase_rows(old, reason="expire")
        self.last_expire = {"faces": int(old.sum()), "clusters": before - len(self.clusters),
                            "unknown_time": int(t.isna().sum())}
        return self

    def _erase_rows(self, gone: np.ndarray, *, reason: str) -> Self:
        gone = np.asarray(gone, dtype=bool)
        if not gone.any():
            self.last_erase = {"faces": 0, "clusters": 0}
            return self
        rows = np.flatnonzero(gone)
        changed = {i for i in self._ids_at(rows) if i not in _RESERVED}  # type: ignore[attr-defined]
        erased = set(self.figures["figure_id"].iloc[rows].astype(str))
        seen = {_identity(t) for t in self._tombstones}
        new = [t for t in tombstone_rows(self.figures.iloc[rows], reason=reason) if _identity(t) not in seen]
        self._tombstones = [*self._tombstones, *new]
        keep = ~gone
        before = set(self.clusters["cluster_id"].astype(str))
        self.figures = self.figures.loc[keep].reset_index(drop=True)
        self.embeddings = self.embeddings[keep]
        self.knn = self.knn.subset(np.flatnonzero(keep))  # type: ignore[attr-defined,has-type]
        self._hd = self._hd[keep]  # type: ignore[has-type]
        self._locked = self._locked[keep]  # type: ignore[has-type]
        self._estimator = None  # rows changed: rebuilt from the state on the next update
        cannot = self._cannot  # type: ignore[has-type]
        if len(cannot):
            ok = ~(_isin(cannot["a"], erased) | _isin(cannot["b"], erased))
            self._cannot = cannot[ok].reset_index(drop=True)
        self._refresh(changed)  # type: ignore[attr-defined]
        lost = before - set(self.clusters["cluster_id"].astype(str))
        self.edits = _scrub_edits(self.edits, erased, lost)
        self._log(reason, faces=int(gone.sum()), clusters=len(lost))  # type: ignore[attr-defined]
        self.last_erase = {"faces": int(gone.sum()), "clusters": len(lost)}
        return self


def _scrub_edits(edits: list[dict], figure_ids: set[str], clusters: set[str]) -> list[dict]:
    """The edit log without the erased faces' ids and without edits of the deleted clusters."""
    out = []
    for e in edits:
        e = dict(e)
        if "figure_ids" in e:
            e["figure_ids"] = [f for f in e["figure_ids"] if f not in figure_ids]
            if not e["figure_ids"]:
                continue
        if "cluster_ids" in e:
            e["cluster_ids"] = [c for c in e["cluster_ids"] if c not in clusters]
        if any(e.get(k) in clusters for k in ("cluster_id", "into")):
            continue
        out.append(e)
    return out
