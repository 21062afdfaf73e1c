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

from imm_analysis.cluster._kernels import gather_rows, merge_order, mutual_best, pair_dots, sorted_edges

__all__ = ["Dendrogram", "average_linkage", "cut", "first_seen_ranks", "found_clusters"]


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
    """Sort directed edges by (src, dst) and sum the columns of parallel ones (ids keep their dtype)."""
    if len(src) == 0:
        return src[:0], dst[:0], [c[:0] for c in cols]
    key = src.astype(np.int64)
    key *= n
    key += dst
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    key = key[starts]
    cols = [np.add.reduceat(c[order], starts) for c in cols]
    return (key // n).astype(src.dtype), (key % n).astype(dst.dtype), cols


class _ClusterSums:
    """The sum vector of every cluster, without a copy of the embeddings.

    A singleton's sum is its own row of ``x`` (read only); a merged cluster owns a row
    (``slot``) of a float32 buffer that grows on demand and reuses the rows of clusters merged
    away. At most half the faces are in live merged clusters at any time, and usually far
    fewer, so this costs a fraction of the ``n x d`` copy it replaces.
    """

    def __init__(self, x: np.ndarray) -> None:
        n, d = x.shape
        self.x = x
        self.slot = np.full(n, -1, dtype=np.int64)
        self.buf = np.empty((max(64, n // 16), d), dtype=np.float32)
        self.free = np.arange(len(self.buf) - 1, -1, -1, dtype=np.int64)  # a stack: pop from the end
        self.n_free = len(self.free)

    def _take(self, count: int) -> np.ndarray:
        if count > self.n_free:
            old = len(self.buf)
            new = max(old + count - self.n_free, old + old // 2)
            buf = np.empty((new, self.buf.shape[1]), dtype=np.float32)
            buf[:old] = self.buf
            self.buf = buf
            free = np.empty(new, dtype=np.int64)
            free[: self.n_free] = self.free[: self.n_free]
            free[self.n_free : self.n_free + new - old] = np.arange(new - 1, old - 1, -1)
            self.free, self.n_free = free, self.n_free + new - old
        self.n_free -= count
        return self.free[self.n_free : self.n_free + count].copy()

    def _give(self, slots: np.ndarray) -> None:
        self.free[self.n_free : self.n_free + len(slots)] = slots
        self.n_free += len(slots)

    def merge(self, a: np.ndarray, b: np.ndarray, block: int = 1 << 15) -> None:
        """``sum[a] += sum[b]`` for disjoint ``a`` and ``b``; ``b``'s row is released."""
        sa, sb = self.slot[a], self.slot[b]
        # a without a row takes b's row when b has one, else a fresh row
        steal = (sa < 0) & (sb >= 0)
        fresh = (sa < 0) & (sb < 0)
        sa[steal] = sb[steal]
        sa[fresh] = self._take(int(fresh.sum()))
        for i in range(0, len(a), block):
            ia, ib = a[i : i + block], b[i : i + block]
            ra, st, fr = sa[i : i + block], steal[i : i + block], fresh[i : i + block]
            plain = ~(st | fr)  # both rows in the buffer, or a's only
            self.buf[ra[plain]] += gather_rows(self.x, ib[plain], self.buf, self.slot)
            self.buf[ra[st]] += self.x[ia[st]]
            self.buf[ra[fr]] = self.x[ia[fr]] + self.x[ib[fr]]
        self._give(sb[(sb >= 0) & ~steal])
        self.slot[a] = sa
        self.slot[b] = -1

    def dots(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``dot(sum[u], sum[v])`` (float64)."""
        return pair_dots(self.x, u, v, buf=self.buf, slot=self.slot)


def _centroid_sims(sums, size, src, dst, n):
    """Exact average-linkage similarity of each pair: mean dot product = dot of the mean vectors."""
    out = np.empty(len(src), dtype=np.float64)
    half = np.flatnonzero(src < dst)
    hs, hd = src[half], dst[half]
    out[half] = sums.dots(hs, hd) / (size[hs] * size[hd])
    other = np.flatnonzero(src > dst)
    if len(other):
        key = src.astype(np.int64) * n + dst
        mirror = np.searchsorted(key, dst[other].astype(np.int64) * n + src[other])
        out[other] = out[mirror]
    return out


def _initial_edges(n, edges, cannot_link, min_similarity, itype, *, counts):
    """Directed edge list ``(src, dst, m, w, c)`` sorted by ``(src, dst)``, parallel edges summed.

    ``m`` is the mean similarity (-inf for a cannot-link pair); ``w`` (sum) and ``c`` (count)
    are only kept when ``counts`` (the approximate mode needs them), else None.
    """
    i, j, s = edges
    if cannot_link is not None and len(cannot_link[0]):
        ci, cj = np.asarray(cannot_link[0], dtype=itype), np.asarray(cannot_link[1], dtype=itype)
    else:
        ci = cj = np.empty(0, dtype=itype)
    s = np.asarray(s)
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    # compare at the similarities' own precision, as ``s >= min_similarity`` does in numpy
    floor = float(s.dtype.type(min_similarity))
    src, dst, w, c, bad = sorted_edges(
        n, np.asarray(i, dtype=itype), np.asarray(j, dtype=itype), s, ci, cj, floor, itype
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        m = w / c
    m[bad] = -np.inf
    return (src, dst, m, w, c) if counts else (src, dst, m, None, None)


def _splice(col, keep, new, is_new):
    """``col[keep]`` and ``new`` interleaved as ``is_new`` says (see :func:`merge_order`)."""
    out = np.empty(len(is_new), dtype=col.dtype)
    out[is_new] = new
    out[~is_new] = col[keep]
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
    a merged cluster. Time O(E) per round over the remaining edges (E <= 2 n k directed
    edges: compiled linear passes and one linear merge of the re-scored edges into the
    untouched ones, no sort) plus O(d) per re-scored edge with ``embeddings``. Memory: about
    17 bytes per directed edge (int32 ids below 2**31 faces, float64 similarity) and one
    float32 sum vector per live merged cluster; the embeddings are read, never copied.
    """
    from tqdm.auto import tqdm

    exact = embeddings is not None
    if exact:
        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        if x.shape[0] != n:
            raise ValueError(f"embeddings have {x.shape[0]} rows, expected {n}")
        sums = _ClusterSums(x)
    itype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    src, dst, m, w, c = _initial_edges(n, edges, cannot_link, min_similarity, itype, counts=not exact)

    node_of = np.arange(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    size_prev = np.ones(n, dtype=np.int64)  # sizes before the current round's merges
    height_of = np.full(n, np.inf)
    best = np.full(n, -1, dtype=np.int64)
    best_sim = np.empty(n, dtype=np.float64)
    remap = np.arange(n, dtype=itype)
    touched_node = np.zeros(n, dtype=bool)
    is_merged = np.zeros(n, dtype=bool)
    lefts, rights, sims, heights, sizes = [], [], [], [], []
    n_nodes = n
    bar = tqdm(total=max(n - 1, 0), desc="agglomerating", unit="merge", disable=not progress, leave=False)
    while len(src):
        a, b, ms = mutual_best(src, dst, m, best, best_sim, min_similarity)
        if len(a) == 0:
            break
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
            sums.merge(a, b)
        bar.update(len(a))
        # re-aggregate and re-score only the edges that touch a merged cluster
        remap[b] = a
        touched_node[a] = True
        touched_node[b] = True
        hit = touched_node[src]
        hit |= touched_node[dst]
        touched = np.flatnonzero(hit)
        touched_node[a] = False
        touched_node[b] = False
        # (lean dtypes, temporaries freed early: the first rounds touch most edges)
        t_src, t_dst = remap[src[touched]], remap[dst[touched]]
        nl = t_src != t_dst
        touched, t_src, t_dst = touched[nl], t_src[nl], t_dst[nl]
        del nl
        o_m = m[touched]
        o_bad = np.isneginf(o_m)
        if exact:
            # Lance-Williams: the new similarity is the size-weighted mean of the constituent pairs
            weight = size_prev[src[touched]] * size_prev[dst[touched]]
            col_a = np.where(o_bad, 0.0, o_m * weight)
            del weight
            col_b = np.ones(len(touched), dtype=np.int32)
        else:
            col_a, col_b = w[touched], c[touched]
        del o_m, touched
        t_src, t_dst, (t_a, t_b, t_bad) = _aggregate(t_src, t_dst, [col_a, col_b, o_bad], n)
        del col_a, col_b, o_bad
        t_bad = t_bad > 0
        remap[b] = b
        size_prev[a] = size[a]
        if exact:
            is_merged[a] = True
            expected = np.where(is_merged[t_src], 2, 1) * np.where(is_merged[t_dst], 2, 1)
            is_merged[a] = False
            t_m = t_a / (size[t_src] * size[t_dst])
            partial = np.flatnonzero((t_b < expected) & ~t_bad)
            if len(partial):
                t_m[partial] = _centroid_sims(sums, size, t_src[partial], t_dst[partial], n)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                t_m = t_a / t_b
        t_m[t_bad] = -np.inf
        # edges that fell below the floor are no longer merge candidates (cannot-links stay)
        good = (t_m >= min_similarity) | t_bad
        t_src, t_dst, t_m = t_src[good], t_dst[good], t_m[good]
        # splice the re-scored edges into the untouched ones: one linear merge, no sort
        keep = ~hit
        del hit
        is_new = merge_order(src, dst, keep, t_src, t_dst)
        src = _splice(src, keep, t_src, is_new)
        dst = _splice(dst, keep, t_dst, is_new)
        m = _splice(m, keep, t_m, is_new)
        if not exact:
            w = _splice(w, keep, t_a[good], is_new)
            c = _splice(c, keep, t_b[good].astype(c.dtype), is_new)
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
    labels[ok] = first_seen_ranks(component[ok])
    return labels


def first_seen_ranks(values: np.ndarray) -> np.ndarray:
    """Each value's number 0, 1, ... in order of first appearance (equal values, equal numbers).

    Examples
    --------
    >>> first_seen_ranks(np.array([7, 3, 7, 9, 3]))
    array([0, 1, 0, 2, 1])
    """
    roots, first, inv = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(roots), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(roots))
    return rank[inv.reshape(-1)]
