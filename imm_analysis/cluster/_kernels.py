"""Compiled inner loops (numba, cached on disk), with numpy fallbacks when numba is missing."""

from __future__ import annotations

import numpy as np

__all__ = ["pair_dots", "row_dots"]

_CACHE: dict[str, object] = {}


def _numba():
    if "numba" not in _CACHE:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba comes with umap-learn
            numba = None
        _CACHE["numba"] = numba
    return _CACHE["numba"]


def _compiled(name: str):
    if name not in _CACHE:
        numba = _numba()
        if numba is None:  # pragma: no cover
            _CACHE[name] = None
        elif name == "pair":

            @numba.njit(parallel=True, cache=True, fastmath=True)
            def pair(x, a, b):  # pragma: no cover - compiled
                out = np.empty(len(a), dtype=np.float64)
                d = x.shape[1]
                for e in numba.prange(len(a)):
                    ra = x[a[e]]
                    rb = x[b[e]]
                    acc = 0.0
                    for t in range(d):
                        acc += ra[t] * rb[t]
                    out[e] = acc
                return out

            _CACHE[name] = pair
        else:

            @numba.njit(parallel=True, cache=True, fastmath=True)
            def rows(q, x, idx):  # pragma: no cover - compiled
                m, k = idx.shape
                d = x.shape[1]
                out = np.full((m, k), -np.inf, dtype=np.float32)
                for i in numba.prange(m):
                    for j in range(k):
                        c = idx[i, j]
                        if c >= 0:
                            acc = 0.0
                            for t in range(d):
                                acc += q[i, t] * x[c, t]
                            out[i, j] = acc
                return out

            _CACHE[name] = rows
    return _CACHE[name]


def pair_dots(x: np.ndarray, a: np.ndarray, b: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """``dot(x[a[e]], x[b[e]])`` for every ``e`` (float64)."""
    kernel = _compiled("pair")
    if kernel is not None:
        return kernel(x, a, b)
    out = np.empty(len(a), dtype=np.float64)
    for i in range(0, len(a), block):
        out[i : i + block] = np.einsum("ij,ij->i", x[a[i : i + block]], x[b[i : i + block]], dtype=np.float64)
    return out


def row_dots(q: np.ndarray, x: np.ndarray, idx: np.ndarray, block: int = 4096) -> np.ndarray:
    """``dot(q[i], x[idx[i, j]])`` (float32), -inf where ``idx`` is -1."""
    kernel = _compiled("rows")
    if kernel is not None:
        return kernel(q, x, idx)
    out = np.full(idx.shape, -np.inf, dtype=np.float32)
    for i in range(0, len(idx), block):
        sub = idx[i : i + block]
        vals = np.einsum("ij,ikj->ik", q[i : i + block], x[np.where(sub >= 0, sub, 0)])
        out[i : i + block] = np.where(sub >= 0, vals, -np.inf)
    return out
