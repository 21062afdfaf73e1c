"""2-D UMAP projection of face embeddings, reusing the clustering engine's kNN graph.

:func:`project_umap` is the one entry point. It hands umap-learn the neighbour graph the
clusterer already built (``knn=``, a :class:`~imm_analysis.cluster.knn.KNNGraph`), so no
second neighbour search runs; it caches results on disk; and above ``max_points`` rows it
fits on a random sample and places the rest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.knn import KNNGraph

__all__ = ["SPECTRAL_MAX_N", "project_umap", "umap_knn", "place_by_neighbours"]

log = logging.getLogger(__name__)

#: Bump when the computation changes, so old cache entries are not reused.
_CACHE_VERSION = 2
#: ``init="auto"`` uses umap's spectral initialisation up to this many rows, PCA above.
SPECTRAL_MAX_N = 20_000


def umap_knn(knn: KNNGraph, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Convert a :class:`KNNGraph` to umap-learn's ``precomputed_knn`` arrays.

    ``KNNGraph`` excludes each point itself and stores cosine similarities; umap expects
    the point itself in column 0 (distance 0) and distances. The result keeps the first
    ``n_neighbors - 1`` neighbours after self, with cosine distance ``1 - similarity``;
    missing slots (index -1) stay -1 with an infinite distance, which umap skips.

    Parameters
    ----------
    knn : KNNGraph
        ``indices`` int [n, k], ``similarities`` float [n, k], sorted descending.
    n_neighbors : int
        Columns wanted, self included. At most ``k + 1``.

    Returns
    -------
    indices : ndarray of int64, shape (n, n_neighbors)
    distances : ndarray of float32, shape (n, n_neighbors)

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> g = SimpleNamespace(indices=np.array([[1], [0]]), similarities=np.array([[0.9], [0.9]], np.float32))
    >>> idx, dist = umap_knn(g, 2)
    >>> idx.tolist(), np.round(dist, 3).tolist()
    ([[0, 1], [1, 0]], [[0.0, 0.1], [0.0, 0.1]])
    """
    ind = np.asarray(knn.indices)
    sim = np.asarray(knn.similarities, dtype=np.float32)
    if ind.ndim != 2 or ind.shape != sim.shape:
        raise ValueError(f"knn.indices {ind.shape} and knn.similarities {sim.shape} must be 2-D and of one shape")
    n, k = ind.shape
    if n_neighbors > k + 1:
        raise ValueError(f"n_neighbors={n_neighbors} needs a graph with at least {n_neighbors - 1} neighbours; got {k}")
    m = n_neighbors - 1
    indices = np.empty((n, n_neighbors), dtype=np.int64)
    indices[:, 0] = np.arange(n)
    indices[:, 1:] = ind[:, :m]
    dist = np.empty((n, n_neighbors), dtype=np.float32)
    dist[:, 0] = 0.0
    with np.errstate(invalid="ignore"):
        d = 1.0 - sim[:, :m]
    missing = (ind[:, :m] < 0) | ~np.isfinite(d)
    # cosine distance lies in [0, 2]; float error can push it a hair below 0
    dist[:, 1:] = np.where(missing, np.inf, np.clip(d, 0.0, 2.0))
    indices[:, 1:][missing] = -1
    return indices, dist


def place_by_neighbours(
    knn: KNNGraph, placed: np.ndarray, coords: np.ndarray, *, rounds: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Place points that were not fitted at the similarity-weighted mean of their placed neighbours.

    This is the initialisation umap-learn's ``transform`` uses, but on the given graph, so
    it needs no neighbour search. Points with no placed neighbour are retried in later
    rounds, once their neighbours have been placed.

    Parameters
    ----------
    knn : KNNGraph
        The graph over all ``n`` points.
    placed : ndarray of bool, shape (n,)
        Rows whose ``coords`` are already known.
    coords : ndarray of float32, shape (n, 2)
        Coordinates; rows not ``placed`` are filled in.
    rounds : int, default=4
        Propagation rounds.

    Returns
    -------
    coords : ndarray of float32, shape (n, 2)
    placed : ndarray of bool, shape (n,)
        Rows still unplaced after ``rounds`` have no placed point within ``rounds`` hops.

    Examples
    --------
    >>> from imm_analysis.cluster.knn import build_knn
    >>> x = np.array([[1, 0], [0.96, 0.28], [0, 1], [0.28, 0.96]], np.float32)
    >>> knn = build_knn(x, 1, backend="numpy", progress=False)  # each point's one nearest neighbour
    >>> coords = np.array([[0, 0], [9, 9], [5, 5], [9, 9]], np.float32)
    >>> out, placed = place_by_neighbours(knn, np.array([True, False, True, False]), coords)
    >>> out.tolist(), bool(placed.all())
    ([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0]], True)
    """
    ind = np.asarray(knn.indices)
    sim = np.asarray(knn.similarities, dtype=np.float32)
    coords = np.array(coords, dtype=np.float32, copy=True)
    placed = np.array(placed, dtype=bool, copy=True)
    for _ in range(rounds):
        todo = np.flatnonzero(~placed)
        if not len(todo):
            break
        nb = ind[todo]
        ok = (nb >= 0) & placed[np.where(nb >= 0, nb, 0)] & np.isfinite(sim[todo])
        # weights: similarity shifted to be positive, so even weak neighbours count a little
        w = np.where(ok, np.clip(sim[todo], -1.0, 1.0) + 1.0 + 1e-3, 0.0).astype(np.float32)
        total = w.sum(axis=1)
        got = total > 0
        if not got.any():
            break
        xy = coords[np.where(nb >= 0, nb, 0)]  # [t, k, 2]
        mean = (xy * w[:, :, None]).sum(axis=1) / np.where(got, total, 1.0)[:, None]
        coords[todo[got]] = mean[got]
        placed[todo[got]] = True
    return coords, placed


def _digest(embeddings: np.ndarray, knn: KNNGraph | None, params: dict[str, Any]) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(sorted(params.items())).encode())
    h.update(repr((embeddings.shape, str(embeddings.dtype))).encode())
    h.update(np.ascontiguousarray(embeddings).tobytes())
    if knn is not None:
        for arr in (np.ascontiguousarray(knn.indices), np.ascontiguousarray(knn.similarities)):
            h.update(repr((arr.shape, str(arr.dtype))).encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def _umap(
    n_neighbors: int, random_state: int | None, *, precomputed: tuple | None, n_epochs: int | None, init: str
) -> Any:
    from imm_analysis._optional import require

    umap = require("umap", purpose="project_umap")
    kwargs: dict[str, Any] = {
        "n_neighbors": n_neighbors,
        "n_components": 2,
        "metric": "cosine",
        "random_state": random_state,
        "n_epochs": n_epochs,
        "init": init,
    }
    if random_state is not None:
        kwargs["n_jobs"] = 1  # umap forces this with a random_state; say it to avoid its warning
    if precomputed is not None:
        kwargs["precomputed_knn"] = precomputed
    return umap.UMAP(**kwargs)


def _fit(
    x: np.ndarray, n_neighbors: int, random_state: int | None, knn: KNNGraph | None, n_epochs: int | None, init: str
) -> tuple[np.ndarray, Any]:
    n = len(x)
    if init == "auto":
        init = "spectral" if n <= SPECTRAL_MAX_N else "pca"
    k_eff = min(n_neighbors, n - 1)
    pre = None
    if knn is not None:
        k_eff = min(k_eff, np.asarray(knn.indices).shape[1] + 1)
        pre = umap_knn(knn, k_eff)
    model = _umap(k_eff, random_state, precomputed=pre, n_epochs=n_epochs, init=init)
    from threadpoolctl import threadpool_limits

    # umap's spectral initialisation runs ARPACK, whose many tiny BLAS calls are several times
    # slower with a multi-threaded OpenBLAS than with one thread (35.5 s against 9.5 s for the
    # whole fit at 20,000 faces on 2 cores); umap's own parallel code is numba, not BLAS.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # a KNNGraph carries no pynndescent index, so umap warns that transform is unavailable: expected
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*n_jobs value.*", category=UserWarning)
        coords = model.fit_transform(x)
    return np.asarray(coords, dtype=np.float32), model


def project_umap(
    embeddings: np.ndarray,
    *,
    n_neighbors: int = 15,
    knn: KNNGraph | None = None,
    random_state: int | None = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    max_points: int = 200_000,
    sample_size: int = 100_000,
    n_epochs: int | None = None,
    init: str = "auto",
) -> np.ndarray:
    """Project face embeddings to 2-D with UMAP (cosine metric).

    Parameters
    ----------
    embeddings : array-like of float, shape (n, d)
        Face embeddings, row-aligned with the figures frame. Converted once to float32.
    n_neighbors : int, default=15
        UMAP's neighbourhood size, the point itself included (umap-learn's convention).
    knn : KNNGraph, optional
        A neighbour graph already built for these rows (``FigureClusterer().fit(...).knn_``
        or :func:`imm_analysis.cluster.knn.build_knn`). Its first ``n_neighbors - 1``
        neighbours are given to umap as ``precomputed_knn``, so no second neighbour search
        runs. With fewer neighbours than that, ``n_neighbors`` is lowered to ``k + 1``.
    random_state : int or None, default=0
        Seed; ``None`` lets umap run its optimisation in parallel (faster, not reproducible).
    cache_dir : path, optional
        Directory for cached results (``umap-<hash>.npy``), keyed by a hash of the
        embeddings, the graph and every parameter. A hit returns without running umap.
    max_points : int, default=200_000
        Above this many rows the projection is fitted on a random sample of
        ``sample_size`` rows and the rest are placed without refitting (logged and warned)
        at the similarity-weighted mean of their placed neighbours (umap's ``transform``
        initialisation): with ``knn`` their neighbours in that graph (no search), otherwise
        (and for faces the graph does not reach) their nearest sampled faces.
    sample_size : int, default=100_000
        Rows fitted when ``n > max_points``.
    n_epochs : int, optional
        umap's optimisation epochs (default: umap's choice, 500 below 10,000 rows, else 200).
    init : {"auto", "spectral", "pca", "random"}, default="auto"
        Initial layout. ``"auto"``: umap's spectral layout up to :data:`SPECTRAL_MAX_N`
        rows, PCA above, where ARPACK's spectral step dominates (102 of 151 s at 100,000
        faces) and PCA gives as good a layout (silhouette by person 0.452 against 0.448).

    Returns
    -------
    ndarray of float32, shape (n, 2)

    Notes
    -----
    Time is umap's spectral initialisation plus its layout optimisation, roughly linear in
    ``n * n_neighbors * n_epochs``; BLAS runs single-threaded during the fit, which makes the
    spectral step several times faster (see ``bench_viz.py``). The first call in a fresh environment also compiles
    umap's numba code (about 15 s; set ``NUMBA_CACHE_DIR`` to keep it between sessions).
    Memory is O(n * (d + n_neighbors)); no n x n matrix is built. When sampling, the
    sample's own graph is built with :func:`~imm_analysis.cluster.knn.build_knn` (exact
    blockwise, or FAISS above 20,000 faces) on the sample only.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 8)).astype(np.float32)
    >>> project_umap(x, n_neighbors=5).shape  # doctest: +SKIP
    (60, 2)
    """
    x = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D [n, d]; got shape {x.shape}")
    n = len(x)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"embeddings row {bad} has a NaN or infinite value")
    if knn is not None and np.asarray(knn.indices).shape[0] != n:
        raise ValueError(f"knn has {np.asarray(knn.indices).shape[0]} rows but embeddings have {n}")
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be at least 2; got {n_neighbors}")
    if init not in ("auto", "spectral", "pca", "random", "tswspectral"):
        raise ValueError(f"init must be 'auto', 'spectral', 'pca', 'random' or 'tswspectral'; got {init!r}")
    if n <= 3:
        # too few points for a manifold: lay them on a line, deterministically
        out = np.zeros((n, 2), dtype=np.float32)
        out[:, 0] = np.arange(n, dtype=np.float32)
        return out

    params = {
        "v": _CACHE_VERSION,
        "n_neighbors": n_neighbors,
        "random_state": random_state,
        "max_points": max_points,
        "sample_size": sample_size,
        "n_epochs": n_epochs,
        "knn": knn is not None,
        "init": init,
    }
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"umap-{_digest(x, knn, params)}.npy"
        if path.exists():
            cached = np.load(path)
            if cached.shape == (n, 2):
                log.info("project_umap: cache hit %s", path)
                return cached.astype(np.float32, copy=False)

    if n <= max_points:
        coords, _ = _fit(x, n_neighbors, random_state, knn, n_epochs, init)
    else:
        coords = _fit_sample(x, n_neighbors, random_state, knn, n_epochs, sample_size, init)

    if path is not None:
        from imm_analysis.io.atomic import atomic_save_npy

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(path, coords)
    return coords


def _fit_sample(
    x: np.ndarray,
    n_neighbors: int,
    random_state: int | None,
    knn: KNNGraph | None,
    n_epochs: int | None,
    sample_size: int,
    init: str,
) -> np.ndarray:
    from imm_analysis.cluster.knn import build_knn

    n = len(x)
    m = max(min(sample_size, n), n_neighbors + 2)
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n, size=m, replace=False))
    how = "placed on their neighbours in the given graph" if knn is not None else "placed on their sampled neighbours"
    msg = f"project_umap: {n:,} points; fitting UMAP on a random sample of {m:,}, the other {n - m:,} are {how}"
    log.warning(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)
    xs = x[sample]
    sample_knn = cast("KNNGraph", build_knn(xs, n_neighbors - 1, progress=False))
    sample_coords, _ = _fit(xs, n_neighbors, random_state, sample_knn, n_epochs, init)
    coords = np.zeros((n, 2), dtype=np.float32)
    coords[sample] = sample_coords
    placed = np.zeros(n, dtype=bool)
    placed[sample] = True
    if knn is not None:
        coords, placed = place_by_neighbours(knn, placed, coords)
    rest = np.flatnonzero(~placed)
    if len(rest):
        # the rest's nearest sampled faces (one blockwise search against the sample only)
        g = cast("KNNGraph", build_knn(xs, min(n_neighbors - 1, m), queries=x[rest], exclude_self=False, progress=False))
        w = np.where(g.indices >= 0, np.clip(g.similarities, -1.0, 1.0) + 1.0 + 1e-3, 0.0).astype(np.float32)
        xy = sample_coords[np.where(g.indices >= 0, g.indices, 0)]
        coords[rest] = (xy * w[:, :, None]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)[:, None]
    return coords
