"""Constrained sparse average-linkage agglomeration over a kNN graph, and cutting its dendrogram.

The agglomeration runs once per fit and records every merge with its similarity; cutting
at a threshold (:func:`cut`) is then a few vectorised passes, so an interactive tuner can
re-cut 100,000 faces in milliseconds.

Linkage
-------
The similarity of two clusters A and B is their exact mean pairwise cosine similarity. For
unit vectors the mean of all ``|A| |B|`` dot products is the dot product of the mean vectors,
``dot(sum_A, sum_B) / (|A| |B|)``, so true average linkage needs only one sum vector per
cluster, never an n x n matrix. The kNN graph only says *which* clusters are compared
(those joined by at least one kNN edge). Average linkage obeys the reducibility property,
so all *reciprocal* best pairs can be merged at once (the "reciprocal nearest neighbour"
scheme): each round is a handful of numpy passes over the edge list instead of one Python
step per merge.

Why not the mean of the observed kNN edges only? When a person has fewer faces than
``k``, a face's list is filled with the most similar strangers (the top tail, e.g. 0.35
while strangers average 0); the observed mean between two people is then that tail, and
different people merge. Counting unobserved pairs as 0 (graph average linkage) fails the
other way: a person with more faces than ``k`` falls apart. The exact mean has neither bias.

Cannot-link pairs (two faces of one image, "not the same person" edits) enter as edges of
similarity -inf; a mean containing -inf stays -inf, so any two clusters that hold such a
pair never merge, however large they grow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imm_analysis.cluster._kernels import pair_dots

__all__ = ["Dendrogram", "average_linkage", "cut", "found_clusters"]


@dataclass
class Dendrogram:
    """Merges of an agglomeration over ``n`` leaves.

    Leaves are nodes ``0 .. n-1``; merge ``m`` creates node ``n + m`` from ``left[m]`` and
    ``right[m]`` at similarity ``similarity[m]``. ``height[m]`` is the monotone similarity used
    for cutting (``min`` of the merge's own similarity and its children's heights).
    """

    n: int
    left: np.ndarray
    right: np.ndarray
    similarity: np.ndarray
    height: np.ndarray
    size: np.ndarray
    min_similarity: float

    @property
    def parent(self) -> np.ndarray:
        """Parent node of each node (-1 for roots), shape ``(n + n_merges,)``."""
        m = len(self.left)
        parent = np.full(self.n + m, -1, dtype=np.int64)
        new = np.arange(self.n, self.n + m, dtype=np.int64)
        parent[self.left] = new
        parent[self.right] = new
        return parent

    def to_scipy(self) -> np.ndarray:
        """SciPy linkage matrix ``(n_merges, 4)`` with distance ``1 - height`` (a forest stays a forest)."""
        return np.column_stack([self.left, self.right, 1.0 - self.height, self.size]).astype(np.float64)


def _aggregate(src, dst, cols, n):
    """Sort directed edges by (src, dst) and sum the columns of parallel ones."""
    key = src.astype(np.int64) * n + dst
    order = np.argsort(key, kind="stable")
    key = key[order]
    if len(key) == 0:
        return src[:0], dst[:0], [c[:0] for c in cols]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    cols = [np.add.reduceat(c[order], starts) for c in cols]
    key = key[starts]
    return key // n, key % n, cols


def _centroid_sims(sums, size, src, dst, n):
    """Exact average-linkage similarity of each pair: mean dot product = dot of the mean vectors."""
    out = np.empty(len(src), dtype=np.float64)
    half = np.flatnonzero(src < dst)
    hs, hd = src[half], dst[half]
    out[half] = pair_dots(sums, hs, hd) / (size[hs] * size[hd])
    other = np.flatnonzero(src > dst)
    if len(other):
        key = src * n + dst
        mirror = np.searchsorted(key, dst[other] * n + src[other])
        out[other] = out[mirror]
    return out


def average_linkage(
    n: int,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    embeddings: np.ndarray | None = None,
    cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
    min_similarity: float = 0.0,
    progress: bool = False,
) -> Dendrogram:
    """Average-linkage agglomeration over sparse candidate edges, with cannot-link pairs.

    Parameters
    ----------
    n : int
        Number of leaves (faces).
    edges : (i, j, sim)
        Undirected candidate edges, each pair once (``KNNGraph.edges()``). Only clusters
        joined by at least one edge are ever compared.
    embeddings : ndarray of float32, shape (n, dim), optional
        Unit-length embeddings. Given: the similarity of two clusters is their *exact* mean
        pairwise cosine similarity, ``dot(sum_A, sum_B) / (|A| |B|)`` (average linkage, every
        pair counted, no n x n matrix). None: the mean of the edge similarities observed between
        them (average linkage restricted to the graph's pairs; exact when the graph is complete).
    cannot_link : (i, j), optional
        Pairs that may never end up in one cluster.
    min_similarity : float, default=0.0
        Stop merging below this similarity (cuts at lower thresholds are not available).
    progress : bool, default=False
        Show a progress bar over merges.

    Returns
    -------
    Dendrogram

    Notes
    -----
    Each round computes every cluster's best neighbour (ties broken by a total order on
    edges, so the globally best pair is always reciprocal and every round makes progress),
    merges all reciprocal pairs, and re-aggregates and re-scores only the edges that touch
    a merged cluster. Time O(E log E) per round over the remaining edges (E <= n k) plus
    O(d) per re-scored edge with ``embeddings``; memory O(E + n d).
    """
    from tqdm.auto import tqdm

    i, j, s = edges
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    keep = s >= min_similarity
    i, j, s = i[keep], j[keep], s[keep]
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    w = np.concatenate([s, s])
    bad = np.zeros(len(src), dtype=np.int64)
    if cannot_link is not None and len(cannot_link[0]):
        ci = np.asarray(cannot_link[0], dtype=np.int64)
        cj = np.asarray(cannot_link[1], dtype=np.int64)
        ok = ci != cj
        ci, cj = ci[ok], cj[ok]
        src = np.concatenate([src, ci, cj])
        dst = np.concatenate([dst, cj, ci])
        w = np.concatenate([w, np.zeros(2 * len(ci))])
        bad = np.concatenate([bad, np.ones(2 * len(ci), dtype=np.int64)])
    c = (bad == 0).astype(np.int64)
    src, dst, (w, c, bad) = _aggregate(src, dst, [w, c, bad], max(n, 1))
    exact = embeddings is not None
    if exact:
        sums = np.array(embeddings, dtype=np.float32, copy=True)
        if sums.shape[0] != n:
            raise ValueError(f"embeddings have {sums.shape[0]} rows, expected {n}")

    def score(w, c, bad):
        with np.errstate(invalid="ignore", divide="ignore"):
            m = w / c
        m[bad > 0] = -np.inf
        return m

    m = score(w, c, bad)  # singletons: the edge similarity is exact in both modes

    node_of = np.arange(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    size_prev = np.ones(n, dtype=np.int64)  # sizes before the current round's merges
    height_of = np.full(n, np.inf)
    best = np.full(n, -1, dtype=np.int64)
    remap = np.arange(n, dtype=np.int64)
    touched_node = np.zeros(n, dtype=bool)
    is_merged = np.zeros(n, dtype=bool)
    lefts, rights, sims, heights, sizes = [], [], [], [], []
    n_nodes = n
    bar = tqdm(total=max(n - 1, 0), desc="agglomerating", unit="merge", disable=not progress, leave=False)
    big = np.iinfo(np.int64).max
    while len(src):
        starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
        seg_src = src[starts]
        seg_max = np.maximum.reduceat(m, starts)
        lo, hi = np.minimum(src, dst), np.maximum(src, dst)
        tie = np.where(m == np.repeat(seg_max, np.diff(np.r_[starts, len(src)])), lo * n + hi, big)
        best_key = np.minimum.reduceat(tie, starts)
        blo, bhi = best_key // n, best_key % n
        bdst = np.where(blo == seg_src, bhi, blo)
        best[seg_src] = bdst
        mutual = (best[bdst] == seg_src) & (seg_src < bdst) & (seg_max >= min_similarity)
        a = seg_src[mutual]
        b = bdst[mutual]
        best[seg_src] = -1
        if len(a) == 0:
            break
        ms = seg_max[mutual]
        h = np.minimum(ms, np.minimum(height_of[a], height_of[b]))
        new_nodes = np.arange(n_nodes, n_nodes + len(a), dtype=np.int64)
        n_nodes += len(a)
        lefts.append(node_of[a])
        rights.append(node_of[b])
        sims.append(ms)
        heights.append(h)
        sizes.append(size[a] + size[b])
        node_of[a] = new_nodes
        size_prev[a] = size[a]
        size[a] += size[b]
        height_of[a] = h
        if exact:
            sums[a] += sums[b]
        bar.update(len(a))
        # re-aggregate and re-score only the edges that touch a merged cluster
        remap[b] = a
        touched_node[a] = True
        touched_node[b] = True
        touched = np.flatnonzero(touched_node[src] | touched_node[dst])
        touched_node[a] = False
        touched_node[b] = False
        keep = np.ones(len(src), dtype=bool)
        keep[touched] = False
        o_src, o_dst = src[touched], dst[touched]
        t_src, t_dst = remap[o_src], remap[o_dst]
        nl = t_src != t_dst
        o_src, o_dst, t_src, t_dst, touched = o_src[nl], o_dst[nl], t_src[nl], t_dst[nl], touched[nl]
        # Lance-Williams: the new similarity is the size-weighted mean of the constituent pairs
        weight = (size_prev[o_src] * size_prev[o_dst]).astype(np.float64)
        mw = np.where(bad[touched] > 0, 0.0, m[touched] * weight)
        t_src, t_dst, (t_w, t_c, t_bad, t_mw, t_parts) = _aggregate(
            t_src, t_dst, [w[touched], c[touched], bad[touched], mw, np.ones(len(touched), dtype=np.int64)], n
        )
        remap[b] = b
        size_prev[a] = size[a]
        if exact:
            is_merged[a] = True
            expected = np.where(is_merged[t_src], 2, 1) * np.where(is_merged[t_dst], 2, 1)
            is_merged[a] = False
            t_m = t_mw / (size[t_src] * size[t_dst])
            partial = np.flatnonzero((t_parts < expected) & (t_bad == 0))
            if len(partial):
                t_m[partial] = _centroid_sims(sums, size, t_src[partial], t_dst[partial], n)
            t_m[t_bad > 0] = -np.inf
        else:
            t_m = score(t_w, t_c, t_bad)
        # edges that fell below the floor are no longer merge candidates (cannot-links stay)
        good = (t_m >= min_similarity) | (t_bad > 0)
        t_src, t_dst, t_w, t_c, t_bad, t_m = t_src[good], t_dst[good], t_w[good], t_c[good], t_bad[good], t_m[good]
        src = np.concatenate([src[keep], t_src])
        dst = np.concatenate([dst[keep], t_dst])
        order = np.argsort(src * n + dst, kind="stable")  # two sorted runs: a linear merge
        src, dst = src[order], dst[order]
        w = np.concatenate([w[keep], t_w])[order]
        c = np.concatenate([c[keep], t_c])[order]
        bad = np.concatenate([bad[keep], t_bad])[order]
        m = np.concatenate([m[keep], t_m])[order]
    bar.close()

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

    return Dendrogram(
        n=n,
        left=cat(lefts, np.int64),
        right=cat(rights, np.int64),
        similarity=cat(sims, np.float64),
        height=cat(heights, np.float64),
        size=cat(sizes, np.int64),
        min_similarity=float(min_similarity),
    )


def cut(dendrogram: Dendrogram, threshold: float, parent: np.ndarray | None = None) -> np.ndarray:
    """Component of every leaf when only merges with ``height >= threshold`` are kept.

    Returns, per leaf, the id of the highest kept node above it (the leaf itself when none).
    Vectorised pointer jumping: O((n + merges) log depth).
    """
    n = dendrogram.n
    if parent is None:
        parent = dendrogram.parent
    heights = np.r_[np.full(n, np.inf), dendrogram.height]
    safe = np.where(parent >= 0, parent, 0)
    kept = (parent >= 0) & (heights[safe] >= threshold)
    up = np.where(kept, parent, np.arange(len(parent)))
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    return up[:n]


def found_clusters(component: np.ndarray, hd: np.ndarray, min_faces: int) -> np.ndarray:
    """Labels 0.. for components holding at least ``min_faces`` HD faces (-1 elsewhere).

    Labels are numbered in order of each cluster's first row. With cannot-links between faces
    of one image, a component's HD faces lie in distinct images, so counting HD faces counts
    distinct images.
    """
    n = len(component)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    hd_count = np.bincount(component, weights=np.asarray(hd, dtype=np.float64), minlength=int(component.max()) + 1)
    ok = hd_count[component] >= max(int(min_faces), 1)
    labels = np.full(n, -1, dtype=np.int64)
    if ok.any():
        roots, first, inv = np.unique(component[ok], return_index=True, return_inverse=True)
        rank = np.empty(len(roots), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(roots))
        labels[ok] = rank[inv]
    return labels
