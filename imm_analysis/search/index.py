"""Nearest search items of query faces: exact blockwise for small libraries, FAISS above.

The backend is the one :func:`imm_analysis.cluster.knn.resolve_backend` picks for the
library's size (the rule every neighbour search of the project follows): exact blockwise
float32 products through :class:`imm_analysis.cluster.knn.NeighborIndex` up to
:data:`~imm_analysis.cluster.knn.EXACT_MAX_N` items (never an n x n matrix), FAISS's inverted
file index above it when ``faiss`` is installed (the ``fast`` extra).

The FAISS index is the clustering graph's kind (inverted lists of 8-bit scalar-quantised
vectors, about ``4 sqrt(n)`` lists, inner product), tuned for answering queries rather than
for building a graph of every face: a query probes more lists (:data:`PROBE_SHARE` of them,
at least :data:`MIN_PROBES`), asks for ``OVERSAMPLE x k`` candidates and re-ranks them with
exact float32 similarities. On 1,000,000 synthetic 512-d faces (100,000 people, same-person
cosine 0.64) probing 1/8 of the 4,000 lists gives recall@10 of about 0.96 against the exact
answer at about 20 ms per query on one core (1/32: 0.84 at 6 ms; 0.15: 0.97 at 22 ms), see
``benchmarks/bench_search.py``. Memory: one byte per dimension and item for the lists, on top
of the embeddings the library holds.

A batch of at least :data:`BATCH_MIN` queries is answered list by list instead: the queries
probing one list are multiplied with its members in one float32 matrix product (BLAS), so each
list is read once for all of them, and the similarities are exact (no quantisation, no
re-ranking needed). One query at a time scans its lists' 8-bit codes (FAISS), which is faster
alone. Both probe the same lists; their answers can differ only where the 8-bit codes mis-rank
a candidate beyond the re-ranked ones.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BATCH_MIN", "MIN_PROBES", "OVERSAMPLE", "PROBE_SHARE", "ItemIndex"]

#: Share of the inverted lists a query probes.
PROBE_SHARE = 1 / 8
#: Fewest lists a query probes.
MIN_PROBES = 32
#: Candidates fetched per wanted neighbour, re-ranked exactly.
OVERSAMPLE = 4
#: Queries from which a batch is answered list by list with matrix products.
BATCH_MIN = 32
_TRAIN_PER_LIST = 40
_LIST_CHUNK = 4096  # queries per list-by-list pass (bounds the candidate arrays)
_BLOCK = 16_384


class ItemIndex:
    """Search unit-length float32 rows ``x`` by cosine similarity (see the module docstring).

    Parameters
    ----------
    x : ndarray of float32, shape (n, dim)
        Unit-length rows (kept by reference, not copied).
    backend : {"auto", "numpy", "faiss"}, default="auto"

    Examples
    --------
    >>> x = np.eye(3, dtype=np.float32)
    >>> rows, sims = ItemIndex(x).search(np.array([[0, 1, 0]], np.float32), 2)
    >>> rows[0, 0], float(sims[0, 0])
    (np.int64(1), 1.0)
    """

    def __init__(self, x: np.ndarray, *, backend: str = "auto") -> None:
        from imm_analysis.cluster.knn import resolve_backend

        self.x = x
        self.backend = resolve_backend(backend, len(x))
        if self.backend not in ("numpy", "faiss"):
            raise ValueError(f"backend must be 'auto', 'numpy' or 'faiss', got {backend!r}")
        self._exact = None
        self._faiss = None
        self._lists: tuple[np.ndarray, np.ndarray] | None = None
        if self.backend == "faiss":
            self._faiss = _build_ivf(x)
            self._lists = _list_members(self._faiss)
        else:
            from imm_analysis.cluster.knn import NeighborIndex

            self._exact = NeighborIndex(x, backend="numpy")

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (int64, -1 where missing) and similarities (float32, -inf there) of the ``k`` best, best first."""
        n = len(self.x)
        if len(q) == 0 or n == 0:
            return np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        if self._exact is not None:
            g = self._exact.search(q, k, exclude_self=False)
            return g.indices, g.similarities
        index = self._faiss
        assert index is not None
        if len(q) >= BATCH_MIN and self._lists is not None:
            parts = [self._search_lists(q[s : s + _LIST_CHUNK], k) for s in range(0, len(q), _LIST_CHUNK)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        kk = min(n, max(OVERSAMPLE * k, k + 16))
        rows = np.empty((len(q), kk), np.int64)
        for s in range(0, len(q), _BLOCK):
            _, rows[s : s + _BLOCK] = index.search(q[s : s + _BLOCK], kk)
        sims = _rescore(q, self.x, rows)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        rows, sims = np.take_along_axis(rows, order, 1), np.take_along_axis(sims, order, 1)
        if rows.shape[1] < k:
            pad = k - rows.shape[1]
            rows = np.hstack([rows, np.full((len(q), pad), -1, np.int64)])
            sims = np.hstack([sims, np.full((len(q), pad), -np.inf, np.float32)])
        return rows, sims

    def _search_lists(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` among the members of each query's probed lists, one matrix product per list."""
        index, lists = self._faiss, self._lists
        assert index is not None and lists is not None
        offsets, ids = lists
        nprobe = int(index.nprobe)
        _, probes = index.quantizer.search(q, nprobe)
        m = len(q)
        cand_rows: np.ndarray = np.full((m, nprobe, k), -1, np.int64)
        cand_sims: np.ndarray = np.full((m, nprobe, k), -np.inf, np.float32)
        flat = probes.ravel()
        order = np.argsort(flat, kind="stable")
        list_ids, starts = np.unique(flat[order], return_index=True)
        ends = np.r_[starts[1:], len(order)]
        for lst, a, b in zip(list_ids.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if lst < 0:
                continue
            members = ids[offsets[lst] : offsets[lst + 1]]
            if not len(members):
                continue
            entry = order[a:b]
            qi, pj = entry // nprobe, entry % nprobe
            sims = q[qi] @ self.x[members].T  # (queries of this list, members)
            kk = min(k, len(members))
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if len(members) > kk else np.broadcast_to(
                np.arange(len(members)), (len(qi), len(members)))
            cand_rows[qi, pj, :kk] = members[top]
            cand_sims[qi, pj, :kk] = np.take_along_axis(sims, top, 1)
        cand_rows = cand_rows.reshape(m, -1)
        cand_sims = cand_sims.reshape(m, -1)
        best = np.argpartition(-cand_sims, k - 1, axis=1)[:, :k] if cand_sims.shape[1] > k else np.broadcast_to(
            np.arange(cand_sims.shape[1]), (m, cand_sims.shape[1]))
        rows, sims = np.take_along_axis(cand_rows, best, 1), np.take_along_axis(cand_sims, best, 1)
        order2 = np.argsort(-sims, axis=1, kind="stable")
        rows, sims = np.take_along_axis(rows, order2, 1), np.take_along_axis(sims, order2, 1)
        rows[~np.isfinite(sims)] = -1
        return rows, sims


def _list_members(index) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, ids)``: the rows in each inverted list of ``index`` (CSR layout)."""
    import faiss

    inv = index.invlists
    sizes = np.array([inv.list_size(i) for i in range(index.nlist)], np.int64)
    offsets = np.r_[0, np.cumsum(sizes)]
    ids = np.empty(int(offsets[-1]), np.int64)
    for i in np.flatnonzero(sizes):
        ids[offsets[i] : offsets[i + 1]] = faiss.rev_swig_ptr(inv.get_ids(int(i)), int(sizes[i]))
    return offsets, ids


def _rescore(q: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact similarities of candidate rows (float32), -inf where a row is -1; blockwise."""
    out = np.full(rows.shape, -np.inf, np.float32)
    step = max(1, (64 << 20) // max(1, rows.shape[1] * x.shape[1] * 4))
    for s in range(0, len(q), step):
        r = rows[s : s + step]
        ok = r >= 0
        cand = x[np.where(ok, r, 0)]  # (b, kk, dim)
        vals = np.einsum("bkd,bd->bk", cand, q[s : s + step])
        out[s : s + step] = np.where(ok, vals, -np.inf)
    return out


def _build_ivf(x: np.ndarray):
    from imm_analysis._optional import require

    faiss = require("faiss", purpose="searching a library above the exact-search size")
    n, d = x.shape
    nlist = int(min(65536, max(16, 4 * np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.cp.seed = 0
    index.cp.niter = 10
    index.cp.min_points_per_centroid = 1  # small libraries: fewer points than FAISS asks for is fine
    n_train = min(n, nlist * _TRAIN_PER_LIST)
    rng = np.random.default_rng(0)
    train = x[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else x
    index.train(np.ascontiguousarray(train))
    del train
    for s in range(0, n, _BLOCK * 4):
        index.add(np.ascontiguousarray(x[s : s + _BLOCK * 4]))
    index.nprobe = int(min(nlist, max(MIN_PROBES, round(nlist * PROBE_SHARE))))
    index.parallel_mode = 0
    return index
