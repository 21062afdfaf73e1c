"""Neighbour search sharded over the workers of a Dask cluster: ``build_knn(..., client=)``.

The index is built once, in the calling process (FAISS IVF with 8-bit scalar quantisation above
:data:`imm_analysis.cluster.knn.EXACT_MAX_N` faces, as without a cluster, and IVF with product
quantisation above :data:`PQ_MIN_N` faces, a quarter of the size at 128-d; plain embeddings for
the exact numpy search), and shipped once to every worker (``Client.scatter(broadcast=True)``);
each worker deserialises it once (a per-process cache) and searches contiguous blocks of query
rows. The answer is the graph ``build_knn`` gives without a client: the same search, only split.

Embeddings that are a memory-mapped ``.npy`` (:func:`numpy.load` with ``mmap_mode``, the
project's array store) are not shipped: workers map the same file (it must be on storage they
see), so 10,000,000 x 128 float32 faces (4.9 GiB) are held once per machine, by the page cache,
never copied per worker. Other arrays are shipped once per worker.

Memory per worker: the index (1 byte per dimension and face for IVF-SQ8, plus the embeddings
mapped or shipped for exact re-scoring) and one block of results (12 bytes per query and
neighbour).

The search kernels come from :mod:`imm_analysis.cluster.knn` as an argument (``kernels``), so
this module imports nothing from it (no import cycle); workers unpickle them by reference.
"""

from __future__ import annotations

import contextlib
import math
import threading
import uuid
from typing import Any

import numpy as np

__all__ = ["search_on_cluster"]

#: With ``client=``, an approximate (FAISS) search of more faces than this ships an IVF-PQ index
#: (:data:`PQ_BYTES` bytes per face) instead of IVF-SQ8 (1 byte per dimension: 128 B at 128-d,
#: 13.6 GB per worker at 100M faces with the ids); candidates are re-scored exactly either way.
PQ_MIN_N = 20_000_000
#: bytes per face of the product-quantised codes (sub-quantisers of 8 bits)
PQ_BYTES = 32
#: candidates fetched per neighbour from the PQ index before exact re-scoring
_PQ_FETCH = 2

_CACHE: dict[str, tuple[Any, np.ndarray]] = {}  # per worker process: payload token -> (faiss index, x)
_LOCK = threading.Lock()


def _mapped_file(x: np.ndarray) -> str | None:
    """The ``.npy`` file behind ``x`` when it is the whole file's rows, in order, read through a memory map."""
    root: Any = None
    base: Any = x
    while isinstance(base, np.ndarray):  # the outermost memmap: the one that owns the mapping
        if isinstance(base, np.memmap):
            root = base
        base = base.base
    name = getattr(root, "filename", None)
    if name is None or not str(name).endswith(".npy"):
        return None
    try:
        on_disk = np.load(name, mmap_mode="r")
    except (OSError, ValueError):
        return None
    # the same bytes in the same order: a reversed, strided or shifted view of the map is not the file
    if (on_disk.shape != x.shape or on_disk.dtype != x.dtype or not x.flags.c_contiguous
            or getattr(root, "offset", None) != on_disk.offset
            or x.__array_interface__["data"][0] != root.__array_interface__["data"][0]):
        return None
    return str(name)


def _pq_index(x: np.ndarray) -> Any:
    """An IVF-PQ index of ``x`` (inner product): ``PQ_BYTES`` sub-quantisers of 8 bits per face."""
    import faiss

    n, d = x.shape
    m = max(b for b in range(1, min(PQ_BYTES, d) + 1) if d % b == 0)
    nlist = int(min(65536, max(64, 4 * np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    n_train = min(n, max(nlist * 20, 256 * 40))
    train = x[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else np.asarray(x)
    index.cp.seed = 0
    index.cp.niter = 8
    index.train(np.ascontiguousarray(train, dtype=np.float32))
    del train
    for start in range(0, n, 65_536):
        index.add(np.ascontiguousarray(x[start : start + 65_536], dtype=np.float32))
    index.nprobe = int(min(nlist, 12))
    return index


def _payload_parts(payload: dict) -> tuple[Any, np.ndarray]:
    """``(faiss index or None, embeddings)`` of a scattered payload, made once per process."""
    token = payload["token"]
    with _LOCK:
        hit = _CACHE.get(token)
        if hit is None:
            x = np.load(payload["path"], mmap_mode="r") if payload["path"] else payload["x"]
            index: Any = None
            if payload["faiss"] is not None:
                import faiss

                index = faiss.deserialize_index(payload["faiss"])
                if payload["nprobe"] is not None:
                    index.nprobe = payload["nprobe"]
            for old in list(_CACHE):  # one index at a time per worker
                del _CACHE[old]
            hit = _CACHE[token] = (index, x)
    return hit


def _release(token: str) -> int:
    """Drop this worker's cached index of ``token`` (run on every worker when a search ends); 1 if held."""
    with _LOCK:
        return int(_CACHE.pop(token, None) is not None)


def _search_shard(payload: dict, kernels: dict[str, Any], start: int, stop: int, queries: np.ndarray | None, k: int,
                  exclude_self: bool, query_offset: int, block_size: int | None,
                  probes: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    _search_numpy, _search_faiss, _rescore = kernels["search_numpy"], kernels["search_faiss"], kernels["rescore"]
    _drop_self, _pad = kernels["drop_self"], kernels["pad"]
    index, x = _payload_parts(payload)
    q = np.ascontiguousarray(x[start:stop]) if queries is None else queries
    n = len(x)
    kk = min(k + int(exclude_self), n)
    if index is None:
        idx, sims = _search_numpy(x, q, kk, block_size, False)
    else:
        # the coarse lists of the shard's rows (computed once with the index) let the queries be
        # scanned in list order, as in one process; PQ distances are coarser: fetch more candidates
        fetch = min(n, kk * _PQ_FETCH) if payload.get("pq") else kk
        idx = _search_faiss(index, q, fetch, probes=probes, progress=False)
        idx, sims = _rescore(q, np.asarray(x), idx)
        idx, sims = idx[:, :kk], sims[:, :kk]
    if exclude_self:
        idx, sims = _drop_self(idx, sims, int(query_offset) + start)
    g = _pad(idx, sims, k)
    return g.indices, g.similarities


def search_on_cluster(
    client: Any,
    kernels: dict[str, Any],
    x: np.ndarray,
    queries: np.ndarray | None,
    k: int,
    *,
    backend: str,
    block_size: int | None = None,
    exclude_self: bool = True,
    query_offset: int = 0,
    progress: bool = False,
    shards: int | None = None,
) -> Any:
    """The kNN graph of ``queries`` (None: the rows of ``x``) against ``x``, searched on the workers.

    Parameters
    ----------
    client : dask.distributed.Client or str
    kernels : dict
        ``graph`` (:class:`~imm_analysis.cluster.knn.KNNGraph`), ``faiss_index``, ``search_numpy``,
        ``search_faiss``, ``rescore``, ``drop_self`` and ``pad`` of :mod:`imm_analysis.cluster.knn`.
    x : ndarray of float32, shape (n, dim)
        Unit-length rows (:func:`imm_analysis.cluster.knn.prepare_embeddings`); a memory-mapped
        ``.npy`` is mapped by the workers instead of shipped.
    queries : ndarray or None
        Query rows; None searches every row of ``x`` (a self-search).
    k : int
    backend : {"numpy", "faiss", "faiss-flat"}
        A resolved backend (see :func:`~imm_analysis.cluster.knn.build_knn`).
    shards : int, optional
        Query blocks; default four per worker.

    Returns
    -------
    KNNGraph

    Examples
    --------
    >>> g = build_knn(x, 30, client=client)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from imm_analysis.faces.distributed import connect

    client, created = connect(client)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        m = len(x) if queries is None else len(queries)
        index_bytes, nprobe, probes, pq = None, None, None, False
        if m * len(x) <= 5e7:  # as NeighborIndex.search: small searches are exact
            backend = "numpy"
        if backend in ("faiss", "faiss-flat") and len(x) and m:
            import faiss

            pq = backend == "faiss" and len(x) > PQ_MIN_N
            if pq:  # a smaller index to ship to every worker
                index, probes = _pq_index(x), None
            else:
                index, probes = kernels["faiss_index"](x, exact=backend == "faiss-flat")
            nprobe = getattr(index, "nprobe", None)
            index_bytes = faiss.serialize_index(index)
            del index
        path = _mapped_file(x)
        payload = {"token": uuid.uuid4().hex, "faiss": index_bytes, "nprobe": nprobe, "path": path, "pq": pq,
                   "x": None if path else x}
        [shipped] = client.scatter([payload], broadcast=True, hash=False)
        n_shards = max(1, min(m, shards or 4 * n_workers))
        size = max(1, math.ceil(m / n_shards)) if m else 1
        futures = []
        for start in range(0, m, size):
            stop = min(start + size, m)
            q = None if queries is None else queries[start:stop]
            shard_probes = None
            if probes is not None and queries is None:  # shipped as data, not in the task graph
                [shard_probes] = client.scatter([(probes[0][start:stop], probes[1][start:stop])], hash=False)
            futures.append(client.submit(_search_shard, shipped, kernels, start, stop, q, k, exclude_self, query_offset,
                                         block_size, shard_probes, pure=False))
        bar = tqdm(total=len(futures), desc=f"kNN on {n_workers} workers", unit="block", disable=not progress)
        try:
            for f in futures:
                f.add_done_callback(lambda _f: bar.update(1))
            parts = client.gather(futures)
        finally:
            bar.close()
            client.cancel([shipped])
            # the workers' deserialised index (GBs at scale) is not held past the search
            with contextlib.suppress(Exception):  # a lost connection must not hide the search's own error
                client.run(_release, payload["token"])
        if not parts:
            return kernels["pad"](np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float32), k)
        return kernels["graph"](np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    finally:
        if created:
            client.close()

