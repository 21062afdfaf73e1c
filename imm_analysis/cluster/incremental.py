"""Incremental clustering: place new faces without touching earlier assignments.

Used by :meth:`FigureClusterer.partial_fit` and :meth:`ClusterState.update`.

1. **Join.** A new face joins the existing cluster it belongs together with: the mean
   similarity to its ``max(min_faces, 3)`` most similar members of that cluster (among its
   kNN) must reach the threshold, the best such cluster wins, and the cluster may hold no
   face of the same image (nor a "not the same person" partner). Using the closest members
   rather than the whole cluster keeps a cluster that was merged by hand (two groups the
   model saw apart) open to new faces of either group. High-definition or not: joining is
   open to every face.
2. **Found.** The new faces that joined nothing, together with the earlier *independent*
   faces among their neighbours, are agglomerated with the same constrained average
   linkage as a full fit; a component becomes a new cluster when it holds at least
   ``min_faces`` HD faces (in as many images) and at least one new face.

Earlier faces never change cluster, so cluster ids stay stable, and a run with no new
faces changes nothing.
"""

from __future__ import annotations

import numpy as np

from imm_analysis.cluster.constraints import same_image_pairs
from imm_analysis.cluster.knn import KNNGraph, NeighborIndex
from imm_analysis.cluster.linkage import average_linkage, cut, found_clusters

__all__ = ["extend_graph", "incremental_labels", "merge_reverse_neighbors"]


def extend_graph(index: NeighborIndex, knn: KNNGraph, new: np.ndarray, *, progress: bool = False) -> KNNGraph:
    """Add ``new`` rows to ``index`` and return ``knn`` grown by them.

    The new rows are searched against everything (old and new), and old rows gain the new
    rows that found them (:func:`merge_reverse_neighbors`). No old row is searched again.
    """
    n_old = len(index.embeddings)
    index.add(new)
    found = index.search(new, knn.n_neighbors, query_offset=n_old, progress=progress)
    return merge_reverse_neighbors(knn.append(found), n_old, copy=False)  # append made new arrays


def merge_reverse_neighbors(knn: KNNGraph, n_old: int, *, copy: bool = True) -> KNNGraph:
    """Insert new rows (``>= n_old``) into the neighbour lists of the old rows that they found.

    ``knn`` covers all rows, the new rows' lists already searched against everything. An
    old row ``i`` gains new row ``j`` when ``j`` listed ``i`` with a similarity above ``i``'s
    current ``k``-th neighbour. With ``copy=False`` the arrays of ``knn`` are updated in
    place (for a graph the caller has just built, e.g. by :meth:`KNNGraph.append`).
    """
    n, k = knn.indices.shape
    if n == n_old or n_old == 0:
        return knn
    new_rows = np.repeat(np.arange(n_old, n, dtype=np.int64), k)
    cols = knn.indices[n_old:].ravel()
    sims = knn.similarities[n_old:].ravel()
    ok = (cols >= 0) & (cols < n_old)
    tgt, src, s = cols[ok], new_rows[ok], sims[ok]
    floor = knn.similarities[tgt, k - 1]
    better = s > floor
    tgt, src, s = tgt[better], src[better], s[better]
    if len(tgt) == 0:
        return knn
    rows, pos = np.unique(tgt, return_inverse=True)
    idx = knn.indices.copy() if copy else knn.indices
    sim = knn.similarities.copy() if copy else knn.similarities
    # one block row per affected old row: its k current neighbours, then its new candidates
    order = np.argsort(pos, kind="stable")
    pos, src, s = pos[order], src[order], s[order]
    counts = np.bincount(pos, minlength=len(rows))
    slot = np.arange(len(pos)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = k + int(counts.max())
    block_i = np.full((len(rows), width), -1, dtype=idx.dtype)
    block_s = np.full((len(rows), width), -np.inf, dtype=sim.dtype)
    block_i[:, :k] = idx[rows]
    block_s[:, :k] = sim[rows]
    block_i[pos, k + slot] = src
    block_s[pos, k + slot] = s
    # stable descending sort per row keeps current neighbours ahead of equally similar new ones
    top = np.argsort(-block_s, axis=1, kind="stable")[:, :k]
    idx[rows] = np.take_along_axis(block_i, top, axis=1)
    sim[rows] = np.take_along_axis(block_s, top, axis=1)
    return KNNGraph(idx, sim)


def incremental_labels(
    labels_old: np.ndarray,
    knn: KNNGraph,
    embeddings: np.ndarray,
    hd: np.ndarray,
    image_codes: np.ndarray,
    threshold: float,
    min_faces: int,
    *,
    locked: np.ndarray | None = None,
    cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Labels for all rows after placing rows ``len(labels_old)..`` (see module docstring).

    Parameters
    ----------
    labels_old : ndarray of int64
        Labels of the earlier rows (-1 independent); kept as they are.
    knn : KNNGraph
        Graph over all rows (old lists updated with :func:`merge_reverse_neighbors`).
    embeddings : ndarray of float32, shape (n, dim)
        Unit-length embeddings of all rows.
    hd, image_codes : ndarray, shape (n,)
        HD flag and integer image key of every row.
    threshold, min_faces
        As in :class:`~imm_analysis.cluster.clusterer.FigureClusterer`.
    locked : ndarray of bool, shape (n_old,), optional
        Earlier independent faces that must stay independent (ejected by hand).
    cannot_link : (i, j), optional
        Extra pairs that may never share a cluster.

    Notes
    -----
    Time O(m k) for the join step and an agglomeration of at most ``m (k + 1)`` faces for the
    found step, m = number of new faces; nothing is proportional to the earlier faces except
    O(n) bookkeeping arrays.
    """
    labels_old = np.asarray(labels_old, dtype=np.int64)
    n_old = len(labels_old)
    n, k = knn.indices.shape
    labels = np.concatenate([labels_old, np.full(n - n_old, -1, dtype=np.int64)])
    if n == n_old:
        return labels
    new = np.arange(n_old, n)
    image_codes = np.asarray(image_codes)

    # forbidden (face, cluster) pairs: the cluster holds a face of the same image / a cannot-link partner
    forbid_keys: list[np.ndarray] = []
    n_clusters = int(labels_old.max()) + 1 if n_old else 0
    clustered_old = np.flatnonzero(labels_old >= 0)
    if n_clusters:
        img_old = image_codes[clustered_old]
        img_new = image_codes[new]
        # faces of new rows whose image already appears among clustered old rows
        order = np.argsort(img_old, kind="stable")
        so = img_old[order]
        lo = np.searchsorted(so, img_new, "left")
        hi = np.searchsorted(so, img_new, "right")
        cnt = hi - lo
        if cnt.any():
            face = np.repeat(new, cnt)
            pos = np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
            forbid_keys.append(face * n_clusters + labels_old[clustered_old[order[pos]]])
        if cannot_link is not None and len(cannot_link[0]):
            ci, cj = (np.asarray(a, dtype=np.int64) for a in cannot_link)
            for u, v in ((ci, cj), (cj, ci)):
                sel = (u >= n_old) & (v < n_old)
                sel &= labels_old[np.where(v < n_old, v, 0)] >= 0
                forbid_keys.append(u[sel] * n_clusters + labels_old[v[sel]])
    forbid = np.unique(np.concatenate(forbid_keys)) if forbid_keys else np.empty(0, np.int64)

    # 1. join: mean kNN similarity of each new face to each candidate cluster
    if n_clusters:
        nb = knn.indices[new]
        ns = knn.similarities[new]
        valid = (nb >= 0) & (nb < n_old)
        lab = np.where(valid, labels_old[np.where(valid, nb, 0)], -1)
        ok = lab >= 0
        face = np.repeat(new, k).reshape(-1, k)[ok]
        key = face * n_clusters + lab[ok]
        s = ns[ok].astype(np.float64)
        if len(forbid):
            allowed = ~np.isin(key, forbid)
            key, s = key[allowed], s[allowed]
        if len(key):
            # the face's most similar members of each cluster (kNN rows are sorted descending)
            order = np.argsort(key, kind="stable")
            key, s = key[order], s[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            rank = np.arange(len(key)) - np.repeat(starts, np.diff(np.r_[starts, len(key)]))
            top = rank < max(int(min_faces), 3)
            key, s = key[top], s[top]
            ukey, inv = np.unique(key, return_inverse=True)
            mean = np.bincount(inv, weights=s) / np.bincount(inv)
            good = mean >= threshold
            ukey, mean = ukey[good], mean[good]
            # best cluster per face
            order = np.lexsort((-mean, ukey // n_clusters))
            ukey, mean = ukey[order], mean[order]
            f = ukey // n_clusters
            first = np.r_[True, f[1:] != f[:-1]] if len(f) else np.zeros(0, dtype=bool)
            f, c, m = f[first], ukey[first] % n_clusters, mean[first]
            # two new faces of one image may not join the same cluster: the most similar wins
            pair = image_codes[f].astype(np.int64)
            order = np.lexsort((-m, c, pair))
            f, c, pair = f[order], c[order], pair[order]
            dup = np.r_[False, (pair[1:] == pair[:-1]) & (c[1:] == c[:-1])] if len(f) else np.zeros(0, dtype=bool)
            labels[f[~dup]] = c[~dup]

    # 2. found: unjoined new faces + earlier unlocked independent neighbours
    unjoined = new[labels[new] < 0]
    if len(unjoined) == 0:
        return labels
    free_old = labels_old < 0
    if locked is not None:
        free_old &= ~np.asarray(locked, dtype=bool)
    nb = knn.indices[unjoined].ravel()
    nb = nb[(nb >= 0) & (nb < n_old)]
    nb = nb[free_old[nb]]
    pool = np.unique(np.concatenate([unjoined, nb]))
    pos = np.full(n, -1, dtype=np.int64)
    pos[pool] = np.arange(len(pool))
    rows = np.repeat(pool, k)
    cols = knn.indices[pool].ravel()
    sims = knn.similarities[pool].ravel()
    ok = cols >= 0
    rows, cols, sims = rows[ok], cols[ok], sims[ok]
    ok = pos[cols] >= 0
    a, b, s = pos[rows[ok]], pos[cols[ok]], sims[ok]
    lo_, hi_ = np.minimum(a, b), np.maximum(a, b)
    _, first = np.unique(lo_ * len(pool) + hi_, return_index=True)
    edges = (lo_[first], hi_[first], s[first])
    ci, cj = same_image_pairs(image_codes[pool])
    if cannot_link is not None and len(cannot_link[0]):
        u, v = (np.asarray(x, dtype=np.int64) for x in cannot_link)
        sel = (pos[u] >= 0) & (pos[v] >= 0)
        ci, cj = np.concatenate([ci, pos[u[sel]]]), np.concatenate([cj, pos[v[sel]]])
    dendro = average_linkage(
        len(pool), edges, embeddings=embeddings[pool], cannot_link=(ci, cj), min_similarity=threshold
    )
    comp = cut(dendro, threshold)
    sub = found_clusters(comp, hd[pool], min_faces)
    has_new = np.zeros(int(sub.max()) + 2 if len(sub) else 1, dtype=bool)
    is_new = pool >= n_old
    has_new[sub[is_new & (sub >= 0)]] = True
    keep = (sub >= 0) & has_new[np.where(sub >= 0, sub, 0)]
    if keep.any():
        _, compact = np.unique(sub[keep], return_inverse=True)
        labels[pool[keep]] = n_clusters + compact
    return labels
