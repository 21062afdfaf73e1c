"""Cosine k-nearest-neighbour graphs, computed once and reused by clustering, calibration and UMAP.

Two backends:

* ``"numpy"``: exact, blockwise float32 matrix products (never an n x n matrix); no extra
  dependency. Used by ``backend="auto"`` up to :data:`EXACT_MAX_N` faces.
* ``"faiss"``: an inverted-file index (``IndexIVFFlat``, inner product) from ``faiss-cpu``
  (the ``fast`` extra), approximate but tens of times faster on 100,000+ faces. ``"faiss-flat"``
  is FAISS's exact search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["EXACT_MAX_N", "KNNGraph", "NeighborIndex", "build_knn", "prepare_embeddings"]

#: ``backend="auto"`` uses exact numpy search up to this many faces, FAISS IVF above.
EXACT_MAX_N = 10_000

_CHECK_BLOCK = 65_536
_FAISS_BLOCK = 16_384
#: k-means training points per inverted list (FAISS's own floor is 39)
_TRAIN_PER_LIST = 20
#: inverted lists probed per query (of about 4 sqrt(n))
_NPROBE = 12


@dataclass
class KNNGraph:
    """A cosine k-nearest-neighbour graph.

    Attributes
    ----------
    indices : ndarray of int64, shape (n, k)
        Row ``i`` lists the neighbours of face ``i``, most similar first; the face itself is
        excluded. Missing slots (fewer than ``k`` other faces) hold -1.
    similarities : ndarray of float32, shape (n, k)
        Cosine similarities matching ``indices``, sorted descending; missing slots hold -inf.

    Examples
    --------
    >>> g = KNNGraph([[1], [0], [1]], [[0.9], [0.9], [0.5]])
    >>> i, j, sim = g.edges()
    >>> g.n_samples, g.n_neighbors, i.tolist(), j.tolist(), sim.round(2).tolist()
    (3, 1, [0, 1], [1, 2], [0.9, 0.5])
    """

    indices: np.ndarray
    similarities: np.ndarray

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.similarities = np.asarray(self.similarities, dtype=np.float32)
        if self.indices.shape != self.similarities.shape or self.indices.ndim != 2:
            raise ValueError(
                f"KNNGraph: indices {self.indices.shape} and similarities {self.similarities.shape} "
                "must be two arrays of the same shape (n, k)"
            )

    @property
    def n_samples(self) -> int:
        """Number of faces (rows)."""
        return int(self.indices.shape[0])

    @property
    def n_neighbors(self) -> int:
        """Neighbours per face (columns)."""
        return int(self.indices.shape[1])

    def edges(self, min_similarity: float = -np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Undirected edges ``(i, j, sim)`` with ``i < j``, each pair once, ``sim >= min_similarity``."""
        n, k = self.indices.shape
        rows = np.repeat(np.arange(n, dtype=np.int64), k)
        cols = self.indices.ravel()
        sims = self.similarities.ravel()
        ok = (cols >= 0) & (cols != rows) & (sims >= min_similarity)
        rows, cols, sims = rows[ok], cols[ok], sims[ok]
        lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
        key = lo * max(n, 1) + hi
        key, first = np.unique(key, return_index=True)
        return lo[first], hi[first], sims[first]

    def append(self, other: KNNGraph) -> KNNGraph:
        """Rows of ``self`` followed by rows of ``other`` (same ``k`` required)."""
        if other.n_neighbors != self.n_neighbors:
            raise ValueError(f"KNNGraph.append: k differs ({self.n_neighbors} vs {other.n_neighbors})")
        return KNNGraph(np.vstack([self.indices, other.indices]), np.vstack([self.similarities, other.similarities]))

    def subset(self, rows: np.ndarray) -> KNNGraph:
        """The graph restricted to ``rows`` (bool mask or indices), neighbour ids renumbered, dropped ones -1."""
        n = self.n_samples
        rows = np.asarray(rows)
        keep = np.zeros(n, dtype=bool)
        keep[rows] = True
        new_id = np.full(n + 1, -1, dtype=np.int64)
        new_id[:n][keep] = np.arange(int(keep.sum()))
        idx = self.indices[keep]
        sims = self.similarities[keep].copy()
        mapped = new_id[np.where(idx >= 0, idx, n)]
        sims[mapped < 0] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")
        return KNNGraph(np.take_along_axis(mapped, order, 1), np.take_along_axis(sims, order, 1))


def prepare_embeddings(embeddings: np.ndarray, *, name: str = "embeddings") -> np.ndarray:
    """Embeddings as C-contiguous float32 rows of unit length (zero rows stay zero)."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n_faces, dim), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    # checked in blocks: no temporary as large as the embeddings (2 GB at 1,000,000 x 512)
    norms = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), _CHECK_BLOCK):
        block = x[start : start + _CHECK_BLOCK]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            raise ValueError(f"{name} row {start + int(np.flatnonzero(~finite)[0])} contains NaN or infinity")
        norms[start : start + _CHECK_BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    if len(x) and not np.allclose(norms, 1.0, atol=1e-3):
        x = x / np.where(norms > 0, norms, 1.0)[:, None]
    return x


def build_knn(
    embeddings: np.ndarray,
    n_neighbors: int = 30,
    *,
    backend: str = "auto",
    block_size: int | None = None,
    progress: bool = True,
    queries: np.ndarray | None = None,
    exclude_self: bool = True,
    query_offset: int = 0,
    return_index: bool = False,
    client: Any = None,
) -> KNNGraph | tuple[KNNGraph, NeighborIndex]:
    """Cosine k-nearest-neighbour graph of face embeddings.

    Parameters
    ----------
    embeddings : array-like of shape (n, dim)
        Face embeddings; rows are L2-normalised here if they are not already (float32).
    n_neighbors : int, default=30
        Neighbours kept per face (the face itself excluded).
    backend : {"auto", "numpy", "faiss", "faiss-flat"}, default="auto"
        ``"numpy"`` is exact blockwise search; ``"faiss"`` an IVF index (approximate, fast);
        ``"faiss-flat"`` FAISS exact search. ``"auto"``: numpy up to :data:`EXACT_MAX_N` faces,
        FAISS IVF above when ``faiss`` is installed (numpy otherwise).
    block_size : int, optional
        Query rows per block (numpy backend). Default keeps a block's similarity matrix near 128 MB.
    progress : bool, default=True
        Show a ``tqdm`` progress bar.
    queries : array-like of shape (m, dim), optional
        Search the neighbours of these rows instead of ``embeddings``' own rows (then
        ``exclude_self`` must be False unless the queries are the first rows of ``embeddings``).
    exclude_self : bool, default=True
        Drop query ``i``'s match with database row ``query_offset + i``.
    query_offset : int, default=0
        Database row of the first query (``queries`` are rows ``query_offset ..`` of ``embeddings``).
    return_index : bool, default=False
        Also return a :class:`NeighborIndex` that can search new faces later without rebuilding.
    client : dask.distributed.Client or str, optional
        Shard the queries over the workers of a Dask cluster: the index is built once here and
        shipped to each worker once (a memory-mapped ``.npy`` is mapped by the workers instead);
        the graph is the one found without a client (see :mod:`imm_analysis.cluster.knn_dask`).

    Returns
    -------
    KNNGraph

    Notes
    -----
    Time O(n^2 d) for the exact backends (done in blocks of ``block_size`` rows, memory
    O(block_size * n)); the IVF backend (8-bit scalar-quantised lists, candidates re-scored exactly) costs about
    O(n d (nlist + nprobe n / nlist)) with ``nlist ~ 4 sqrt(n)`` and ``nprobe = 12``; the coarse
    assignment is computed once for adding and searching, and queries are scanned in list
    order so the lists they share stay in cache. It finds about 99% of a face's same-person
    neighbours (the far, stranger part of a list is approximate). Memory of the result is
    12 bytes per face and neighbour; the index holds 1 byte per dimension and face.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]] + 0.01 * np.arange(4)[:, None]
    >>> g = build_knn(x, n_neighbors=1, progress=False)
    >>> g.indices.ravel().tolist()
    [1, 0, 3, 2]
    """
    x = prepare_embeddings(embeddings)
    q = x if queries is None else prepare_embeddings(queries, name="queries")
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]} but embeddings have dim {x.shape[1]}")
    if int(n_neighbors) < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    k = int(n_neighbors)
    n = len(x)
    backend = resolve_backend(backend, n)
    if backend not in ("numpy", "faiss", "faiss-flat"):
        raise ValueError(f"backend must be 'auto', 'numpy', 'faiss' or 'faiss-flat', got {backend!r}")
    index = NeighborIndex(x, backend=backend, block_size=block_size)
    if client is not None:  # scale-out: query blocks on the workers of a Dask cluster
        from imm_analysis.cluster.knn_dask import search_on_cluster

        kernels = {"graph": KNNGraph, "faiss_index": _faiss_index, "search_numpy": _search_numpy,
                   "search_faiss": _search_faiss, "rescore": _rescore, "drop_self": _drop_self, "pad": _pad}
        graph = search_on_cluster(client, kernels, x, None if queries is None else q, k, backend=backend,
                                  block_size=block_size, exclude_self=exclude_self,
                                  query_offset=query_offset, progress=progress)
        return (graph, index) if return_index else graph
    graph = index.search(q, k, exclude_self=exclude_self, query_offset=query_offset, progress=progress)
    return (graph, index) if return_index else graph


def resolve_backend(backend: str, n: int) -> str:
    """The search method ``"auto"`` means for ``n`` faces: exact numpy up to ``EXACT_MAX_N``, else FAISS if installed."""
    if backend != "auto":
        return backend
    return "numpy" if n <= EXACT_MAX_N or not _has_faiss() else "faiss"


class NeighborIndex:
    """The searchable embeddings behind a :class:`KNNGraph`, kept to search new faces incrementally.

    Parameters
    ----------
    embeddings : ndarray of float32, shape (n, dim)
        Unit-length rows (see :func:`prepare_embeddings`).
    backend : {"numpy", "faiss", "faiss-flat"}
        Search method (see :func:`build_knn`). The FAISS index is built on first search.
    """

    def __init__(self, embeddings: np.ndarray, *, backend: str = "numpy", block_size: int | None = None) -> None:
        self.embeddings = embeddings
        self.backend = backend
        self.block_size = block_size
        self._faiss = None
        self._buffer: np.ndarray | None = None  # rows with headroom for incremental adds (see add)

    def add(self, embeddings: np.ndarray) -> None:
        """Append rows (unit-length float32).

        Rows go into a buffer with headroom (a quarter of the current size), so a series of
        small incremental additions copies the stored embeddings once, not on every call.
        ``self.embeddings`` stays a contiguous view of the rows added so far.
        """
        n, m = len(self.embeddings), len(embeddings)
        if n == 0:
            self.embeddings = embeddings
        else:
            buf = self._buffer
            if buf is None or len(buf) < n + m or not np.shares_memory(buf, self.embeddings):
                buf = np.empty((n + m + max(m, n // 4), self.embeddings.shape[1]), dtype=self.embeddings.dtype)
                buf[:n] = self.embeddings
                self._buffer = buf
            buf[n : n + m] = embeddings
            self.embeddings = buf[: n + m]
        if self._faiss is not None:
            self._faiss.add(embeddings)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude_self: bool = True,
        query_offset: int = 0,
        progress: bool = False,
    ) -> KNNGraph:
        """The ``k`` most similar rows for each query (a :class:`KNNGraph` over query rows)."""
        x = self.embeddings
        n = len(x)
        kk = min(k + int(exclude_self), n)
        if len(queries) == 0 or kk == 0:
            idx = np.full((len(queries), kk), -1, dtype=np.int64)
            sims = np.full((len(queries), kk), -np.inf, dtype=np.float32)
        elif self.backend == "numpy" or (len(queries) * n <= 5e7 and self._faiss is None):
            idx, sims = _search_numpy(x, queries, kk, self.block_size, progress)
        else:
            probes = None
            if self._faiss is None:
                self._faiss, probes = _faiss_index(x, exact=self.backend == "faiss-flat")
            if queries is not x:
                probes = None  # the coarse lists of the indexed rows serve only a self-search
            idx = _search_faiss(self._faiss, queries, kk, probes=probes, progress=progress)
            del probes
            idx, sims = _rescore(queries, x, idx)
        if exclude_self:
            idx, sims = _drop_self(idx, sims, int(query_offset))
        return _pad(idx, sims, k)


def _has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _search_numpy(
    x: np.ndarray, q: np.ndarray, kk: int, block_size: int | None, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm

    n, m = len(x), len(q)
    bs = int(block_size) if block_size else max(16, min(4096, (32 << 20) // max(n, 1)))
    idx = np.empty((m, kk), dtype=np.int64)
    sims = np.empty((m, kk), dtype=np.float32)
    xt = np.ascontiguousarray(x.T)
    for start in tqdm(range(0, m, bs), desc="kNN (exact)", disable=not progress, unit="block"):
        s = q[start : start + bs] @ xt
        if kk < n:
            part = np.argpartition(s, n - kk, axis=1)[:, n - kk :]
            ps = np.take_along_axis(s, part, 1)
        else:
            part = np.broadcast_to(np.arange(n), s.shape)
            ps = s
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[start : start + bs] = np.take_along_axis(part, order, 1)
        sims[start : start + bs] = np.take_along_axis(ps, order, 1)
    return idx, sims


def _faiss_index(x: np.ndarray, *, exact: bool):
    """A FAISS index of ``x``, and for an IVF index the coarse lists probed by each row of ``x``.

    The coarse assignment (an n x nlist matrix product, the largest cost after the list scan)
    is computed once and serves both adding the rows and searching them.
    """
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("backend='faiss' needs faiss-cpu: pip install 'imm_analysis[fast]'") from err

    n, d = x.shape
    if exact or n < 4096:
        flat = faiss.IndexFlatIP(d)
        flat.add(x)
        return flat, None
    # inverted lists of 8-bit scalar-quantised vectors (the vectors themselves, not residuals:
    # same recall, faster scan); the candidates are re-scored exactly afterwards
    nlist = int(min(65536, max(64, 4 * np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
    )
    rng = np.random.default_rng(0)
    n_train = min(n, nlist * _TRAIN_PER_LIST)
    train = x[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else x
    index.cp.seed = 0
    index.cp.niter = 8
    index.cp.min_points_per_centroid = 1
    index.train(train)
    del train
    # a person's faces fall in a few neighbouring lists: a fixed probe count keeps the
    # same-person recall while the search cost grows as n^1.5 instead of n^2
    index.nprobe = int(min(nlist, _NPROBE))
    probes = _coarse(quantizer, x, index.nprobe)
    assign = np.ascontiguousarray(probes[1][:, 0])
    for start in range(0, n, _FAISS_BLOCK):
        stop = min(start + _FAISS_BLOCK, n)
        index.add_core(stop - start, faiss.swig_ptr(x[start:stop]), None, faiss.swig_ptr(assign[start:stop]))
    return index, probes


def _coarse(quantizer, x: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """Similarities (float32) and ids (int64) of the ``nprobe`` nearest coarse centroids of each row."""
    n = len(x)
    dist = np.empty((n, nprobe), dtype=np.float32)
    ids = np.empty((n, nprobe), dtype=np.int64)
    for start in range(0, n, _FAISS_BLOCK):
        dist[start : start + _FAISS_BLOCK], ids[start : start + _FAISS_BLOCK] = quantizer.search(
            x[start : start + _FAISS_BLOCK], nprobe
        )
    return dist, ids


def _search_faiss(index, q: np.ndarray, kk: int, *, probes=None, progress: bool) -> np.ndarray:
    """Candidate ids (int64, -1 where missing) of the ``kk`` best matches per query."""
    from tqdm.auto import tqdm

    m = len(q)
    idx = np.empty((m, kk), dtype=np.int64)
    # queries in order of their nearest list: neighbouring queries scan the same lists, which
    # then come from the CPU cache instead of memory (several times faster at 1,000,000 faces)
    order = np.argsort(probes[1][:, 0], kind="stable") if probes is not None else None
    if order is not None and hasattr(index, "parallel_mode"):
        # search_preassigned only runs in parallel (over queries) in this mode; search() splits
        # the queries itself
        index.parallel_mode = 3
    for start in tqdm(range(0, m, _FAISS_BLOCK), desc="kNN (faiss)", disable=not progress, unit="block"):
        stop = start + _FAISS_BLOCK
        if order is None:
            _, idx[start:stop] = index.search(q[start:stop], kk)
        else:
            rows = order[start:stop]
            _, idx[rows] = index.search_preassigned(q[rows], kk, probes[1][rows], probes[0][rows])
    if order is not None and hasattr(index, "parallel_mode"):
        index.parallel_mode = 0
    return idx


def _rescore(q: np.ndarray, x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact similarities of approximate candidates, re-sorted descending."""
    from imm_analysis.cluster._kernels import row_dots

    sims = row_dots(q, x, np.ascontiguousarray(idx))
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(sims, order, 1)


def _drop_self(idx: np.ndarray, sims: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (or its last column when the row does not contain itself)."""
    m, kk = idx.shape
    if kk == 0:
        return idx, sims
    rows = np.arange(offset, offset + m)[:, None]
    is_self = idx == rows
    # rows that do not contain themselves lose their last (least similar) entry instead
    no_self = ~is_self.any(axis=1)
    is_self[no_self, kk - 1] = True
    # keep exactly kk - 1 entries per row: drop the first self hit only
    first = np.argmax(is_self, axis=1)
    drop = np.zeros_like(is_self)
    drop[np.arange(m), first] = True
    keep = ~drop
    return idx[keep].reshape(m, kk - 1), sims[keep].reshape(m, kk - 1)


def _pad(idx: np.ndarray, sims: np.ndarray, k: int) -> KNNGraph:
    m, have = idx.shape
    if have < k:
        idx = np.hstack([idx, np.full((m, k - have), -1, dtype=np.int64)])
        sims = np.hstack([sims, np.full((m, k - have), -np.inf, dtype=np.float32)])
    sims = sims.astype(np.float32, copy=False)
    sims[idx < 0] = -np.inf
    return KNNGraph(idx[:, :k], sims[:, :k])
