"""Comparing two clusterings of the same faces: which clusters split, merged or moved.

Built on the contingency table of :mod:`imm_analysis.evaluate.metrics`: O(n log n) time and
O(n) memory, no pair of faces enumerated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.evaluate.metrics import (
    _as_1d,
    _codes,
    _independent_mask,
    evaluate_clustering,
)

__all__ = ["ClusteringComparison", "compare_clusterings"]


# ---------------------------------------------------------------------------------------------
# comparing two clusterings of the same faces


@dataclass
class ClusteringComparison:
    """Result of :func:`compare_clusterings`: which cluster of A became which cluster of B.

    Attributes
    ----------
    table : DataFrame
        One row per cluster of A, then one row per new cluster of B. Columns: ``cluster_a``,
        ``size_a``, ``cluster_b`` (the B cluster holding most of its faces; NA when gone),
        ``size_b``, ``overlap`` (faces shared by the two), ``jaccard`` (overlap / union),
        ``n_targets`` (B clusters that received at least ``min_overlap`` of its faces),
        ``to_independent`` (its faces that are independent in B), ``split``, ``merged`` (bool)
        and ``status``: ``same`` (one-to-one), ``split`` (spread over 2+ B clusters),
        ``merged`` (its B cluster also holds 2+ A clusters), ``gone`` (all its faces
        independent in B) or ``new`` (a B cluster made of faces independent in A).
    pairs : DataFrame
        Every non-empty overlap: ``cluster_a``, ``cluster_b``, ``overlap``, ``jaccard``;
        an independent side is NA.
    summary : dict
        ``n_faces``, ``clusters_a``, ``clusters_b``, ``independent_a``, ``independent_b``,
        the count of each status, ``splits`` (A clusters split), ``merges`` (B clusters that
        join 2+ A clusters), ``extra_pieces`` (sum over split clusters of pieces - 1),
        ``faces_moved`` (clustered faces of A not in their A cluster's main B cluster), and
        ``agreement``: :func:`evaluate_clustering` of B against A taken as the truth.
    names : tuple of str
        Display names of A and B.

    Examples
    --------
    >>> cmp = compare_clusterings(["a", "a", "b", "b"], ["x", "x", "x", "x"])
    >>> cmp
    ClusteringComparison(a: 2 clusters -> b: 1 clusters; same=0 split=0 merged=2 new=0 gone=0)
    >>> cmp.table["status"].tolist()
    ['merged', 'merged']
    """

    table: pd.DataFrame
    pairs: pd.DataFrame
    summary: dict[str, Any]
    names: tuple[str, str] = ("a", "b")

    def __repr__(self) -> str:
        s = self.summary
        a, b = self.names
        return (
            f"ClusteringComparison({a}: {s['clusters_a']} clusters -> {b}: {s['clusters_b']} clusters; "
            f"same={s['same']} split={s['split']} merged={s['merged']} new={s['new']} gone={s['gone']})"
        )


def _cluster_ids(obj: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels (object array) and figure ids (or None) from an array or a figures frame."""
    if isinstance(obj, pd.DataFrame):
        if "figure_cluster_id" not in obj.columns:
            raise KeyError(f"{name}: a figures frame needs a 'figure_cluster_id' column")
        ids = obj["figure_id"].to_numpy(dtype=object) if "figure_id" in obj.columns else None
        return obj["figure_cluster_id"].to_numpy(dtype=object), ids
    return _as_1d(obj, name).astype(object), None


def _clean(labels: np.ndarray) -> np.ndarray:
    """Object array with every independent entry replaced by None."""
    out = labels.astype(object).copy()
    out[_independent_mask(out)] = None
    return out


def compare_clusterings(
    a: Any,
    b: Any,
    *,
    names: Sequence[str] = ("a", "b"),
    min_overlap: int = 1,
) -> ClusteringComparison:
    """Match two clusterings of the same faces: which cluster of A became which of B.

    Parameters
    ----------
    a, b : array-like of shape (n,) or figures DataFrame
        Cluster labels (``-1``, the reserved IMM ids or missing = independent), or figures
        frames with ``figure_cluster_id`` (e.g. IMM's result and a local run). When both are
        frames with ``figure_id``, faces are aligned on it (faces present in only one are left
        out and counted in ``summary['only_a']`` / ``['only_b']``); otherwise by position.
    names : pair of str, default=("a", "b")
        Names used in the repr and in ``summary['names']``.
    min_overlap : int, default=1
        An A cluster counts as having gone to a B cluster when they share at least this many
        faces. Raise it (e.g. to 2) to ignore single stray faces when labelling split/merged.

    Returns
    -------
    ClusteringComparison
        ``.table`` (one row per cluster with its status), ``.pairs`` (every overlap) and
        ``.summary`` (split and merge counts, agreement metrics).

    Notes
    -----
    O(n log n): the overlaps come from one contingency count.

    Examples
    --------
    >>> cmp = compare_clusterings([0, 0, 0, 0, 1, 1, -1, -1], [7, 7, 8, 8, 9, 9, 9, -1])
    >>> cmp.summary["splits"], cmp.table[["cluster_a", "cluster_b", "status"]].values.tolist()
    (1, [[0, 7, 'split'], [1, 9, 'same']])
    """
    la, ida = _cluster_ids(a, "a")
    lb, idb = _cluster_ids(b, "b")
    only_a = only_b = 0
    if ida is not None and idb is not None:
        sa = pd.Series(np.arange(len(ida)), index=pd.Index(ida, dtype=object))
        sb = pd.Series(np.arange(len(idb)), index=pd.Index(idb, dtype=object))
        for side, s_ in (("a", sa), ("b", sb)):
            if not s_.index.is_unique:
                dup = s_.index[s_.index.duplicated()][0]
                raise ValueError(f"{side}: figure_id {dup!r} appears more than once; faces are aligned on figure_id")
        common = sa.index.intersection(sb.index, sort=False)
        only_a, only_b = len(sa) - len(common), len(sb) - len(common)
        la, lb = la[sa[common].to_numpy()], lb[sb[common].to_numpy()]
    elif len(la) != len(lb):
        raise ValueError(f"a and b differ in length ({len(la)} != {len(lb)}); pass frames with figure_id to align")
    ca, cb = _clean(la), _clean(lb)
    n = len(ca)
    na, nb = (str(x) for x in names)

    codes_a, index_a = pd.factorize(pd.Series(ca, dtype=object))  # None -> -1
    codes_b, index_b = pd.factorize(pd.Series(cb, dtype=object))
    uniq_a, uniq_b = np.asarray(index_a, dtype=object), np.asarray(index_b, dtype=object)
    cnt_a = np.bincount(codes_a[codes_a >= 0], minlength=len(uniq_a))
    cnt_b = np.bincount(codes_b[codes_b >= 0], minlength=len(uniq_b))
    size_a = pd.Series(cnt_a, index=pd.Index(uniq_a, dtype=object)).sort_values(ascending=False, kind="stable")
    size_b = pd.Series(cnt_b, index=pd.Index(uniq_b, dtype=object)).sort_values(ascending=False, kind="stable")
    width = len(uniq_b) + 1
    cells, overlap = np.unique((codes_a + 1) * width + (codes_b + 1), return_counts=True)
    pa, pb = cells // width - 1, cells % width - 1
    both = (pa >= 0) & (pb >= 0)
    # index -1 (independent) hits the appended 0 / None
    union = np.append(cnt_a, 0)[pa] + np.append(cnt_b, 0)[pb] - overlap
    pairs = pd.DataFrame(
        {
            "cluster_a": pd.Series(np.append(uniq_a, [None])[pa], dtype=object),
            "cluster_b": pd.Series(np.append(uniq_b, [None])[pb], dtype=object),
            "overlap": overlap.astype(np.int64),
            "jaccard": np.where(both, overlap / np.maximum(union, 1), np.nan),
        }
    )
    pairs = pairs.sort_values(["overlap", "jaccard"], ascending=False, kind="stable").reset_index(drop=True)

    real = pairs[pairs["cluster_a"].notna() & pairs["cluster_b"].notna()]
    edges = real[real["overlap"] >= min_overlap]
    n_targets = edges.groupby("cluster_a").size()
    n_sources = edges.groupby("cluster_b").size()
    best = real.drop_duplicates("cluster_a", keep="first").set_index("cluster_a")  # sorted by overlap desc
    to_indep = pairs[pairs["cluster_a"].notna() & pairs["cluster_b"].isna()].set_index("cluster_a")["overlap"]

    ids_a = size_a.index
    tbl = pd.DataFrame({"cluster_a": pd.Series(ids_a, dtype=object), "size_a": size_a.to_numpy()})
    tbl["cluster_b"] = tbl["cluster_a"].map(best["cluster_b"])
    tbl["size_b"] = tbl["cluster_b"].map(size_b)
    tbl["overlap"] = tbl["cluster_a"].map(best["overlap"])
    tbl["jaccard"] = tbl["cluster_a"].map(best["jaccard"])
    tbl["n_targets"] = tbl["cluster_a"].map(n_targets).fillna(0).astype(np.int64)
    tbl["to_independent"] = tbl["cluster_a"].map(to_indep).fillna(0).astype(np.int64)
    tbl["split"] = tbl["n_targets"] >= 2
    # merged: a B cluster it went to also took faces from another A cluster
    merged_b = set(n_sources[n_sources >= 2].index)
    edges_merged = edges[edges["cluster_b"].isin(merged_b)]["cluster_a"]
    tbl["merged"] = tbl["cluster_a"].isin(set(edges_merged))
    status = np.where(
        tbl["n_targets"] == 0, "gone", np.where(tbl["split"], "split", np.where(tbl["merged"], "merged", "same"))
    )
    tbl["status"] = status

    src_b = set(edges["cluster_b"])
    new_b = [c for c in size_b.index if c not in src_b]
    if new_b:
        from_indep = pairs[pairs["cluster_a"].isna() & pairs["cluster_b"].notna()].set_index("cluster_b")["overlap"]
        new = pd.DataFrame(
            {
                "cluster_a": pd.Series([None] * len(new_b), dtype=object),
                "size_a": 0,
                "cluster_b": pd.Series(new_b, dtype=object),
                "size_b": size_b[new_b].to_numpy(),
                "overlap": 0,
                "jaccard": 0.0,
                "n_targets": 0,
                "to_independent": 0,
                "split": False,
                "merged": False,
                "status": "new",
            }
        )
        new["from_independent"] = new["cluster_b"].map(from_indep).fillna(0).astype(np.int64)
        tbl = pd.concat([tbl, new], ignore_index=True)
    if "from_independent" not in tbl.columns:
        tbl["from_independent"] = 0
    tbl["from_independent"] = tbl["from_independent"].fillna(0).astype(np.int64)
    for c in ("size_b", "overlap"):
        tbl[c] = tbl[c].astype("Int64")
    tbl["status"] = pd.Categorical(tbl["status"], categories=["same", "split", "merged", "new", "gone"])
    tbl = tbl.sort_values(["size_a", "size_b"], ascending=False, kind="stable").reset_index(drop=True)

    counts = tbl["status"].value_counts()
    clustered_a = int(size_a.sum())
    kept = int(tbl.loc[tbl["size_a"] > 0, "overlap"].fillna(0).sum())
    summary: dict[str, Any] = {
        "names": (na, nb),
        "n_faces": n,
        "only_a": only_a,
        "only_b": only_b,
        "clusters_a": len(size_a),
        "clusters_b": len(size_b),
        "independent_a": n - clustered_a,
        "independent_b": n - int(size_b.sum()),
        **{s: int(counts.get(s, 0)) for s in ("same", "split", "merged", "new", "gone")},
        "splits": int(tbl["split"].sum()),
        "merges": len(merged_b),
        "extra_pieces": int((tbl.loc[tbl["split"], "n_targets"] - 1).sum()),
        "faces_moved": clustered_a - kept,
        "agreement": evaluate_clustering(_truth_codes(ca), _pred_codes(cb)) if n else {},
    }
    return ClusteringComparison(table=tbl, pairs=pairs, summary=summary, names=(na, nb))


def _truth_codes(labels: np.ndarray) -> np.ndarray:
    """Labels of A used as truth: independent faces become singletons (distinct codes)."""
    return _codes(labels, independent_as_singletons=True)[0]


def _pred_codes(labels: np.ndarray) -> np.ndarray:
    codes, indep = _codes(labels, independent_as_singletons=True)
    codes = codes.copy()
    codes[indep] = -1
    return codes
