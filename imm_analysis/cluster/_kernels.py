"""Compiled inner loops (numba, cached on disk), with numpy fallbacks when numba is missing."""

from __future__ import annotations

import numpy as np

__all__ = ["gather_rows", "merge_order", "mutual_best", "pair_dots", "row_dots", "sorted_edges"]

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
        elif name == "pair_slots":

            @numba.njit(parallel=True, cache=True, fastmath=True)
            def pair_slots(x, buf, slot, a, b):  # pragma: no cover - compiled
                out = np.empty(len(a), dtype=np.float64)
                d = x.shape[1]
                for e in numba.prange(len(a)):
                    sa = slot[a[e]]
                    sb = slot[b[e]]
                    ra = buf[sa] if sa >= 0 else x[a[e]]
                    rb = buf[sb] if sb >= 0 else x[b[e]]
                    acc = 0.0
                    for t in range(d):
                        acc += ra[t] * rb[t]
                    out[e] = acc
                return out

            _CACHE[name] = pair_slots
        elif name == "mutual":

            @numba.njit(cache=True)
            def mutual(src, dst, m, best, best_sim, min_sim):  # pragma: no cover - compiled
                e_total = len(src)
                n_heads = 0
                # pass 1: each source's best edge (ties: smallest (lo, hi) pair, a total order)
                e = 0
                while e < e_total:
                    s = src[e]
                    bd = dst[e]
                    bm = m[e]
                    e += 1
                    while e < e_total and src[e] == s:
                        d = dst[e]
                        v = m[e]
                        if v > bm:
                            bd, bm = d, v
                        elif v == bm:
                            lo, hi = min(s, d), max(s, d)
                            blo, bhi = min(s, bd), max(s, bd)
                            if lo < blo or (lo == blo and hi < bhi):
                                bd = d
                        e += 1
                    best[s] = bd
                    best_sim[s] = bm
                    n_heads += 1
                heads = np.empty(n_heads, dtype=np.int64)
                h = 0
                e = 0
                while e < e_total:
                    heads[h] = src[e]
                    h += 1
                    s = src[e]
                    while e < e_total and src[e] == s:
                        e += 1
                # pass 2: reciprocal pairs, each once (a < b)
                count = 0
                for h in range(n_heads):
                    s = heads[h]
                    d = best[s]
                    if s < d and best[d] == s and best_sim[s] >= min_sim:
                        count += 1
                a = np.empty(count, dtype=np.int64)
                b = np.empty(count, dtype=np.int64)
                sim = np.empty(count, dtype=np.float64)
                c = 0
                for h in range(n_heads):
                    s = heads[h]
                    d = best[s]
                    if s < d and best[d] == s and best_sim[s] >= min_sim:
                        a[c] = s
                        b[c] = d
                        sim[c] = best_sim[s]
                        c += 1
                for h in range(n_heads):
                    best[heads[h]] = -1
                return a, b, sim

            _CACHE[name] = mutual
        elif name == "csr":

            @numba.njit(cache=True)
            def csr(n, i, j, s, ci, cj, min_sim, itype_probe):  # pragma: no cover - compiled
                start = np.zeros(n + 1, dtype=np.int64)
                for e in range(len(i)):
                    if s[e] >= min_sim:
                        start[i[e] + 1] += 1
                        start[j[e] + 1] += 1
                for e in range(len(ci)):
                    if ci[e] != cj[e]:
                        start[ci[e] + 1] += 1
                        start[cj[e] + 1] += 1
                for v in range(n):
                    start[v + 1] += start[v]
                total = start[n]
                dst = np.empty(total, dtype=itype_probe.dtype)
                w = np.empty(total, dtype=np.float64)
                bad = np.zeros(total, dtype=np.bool_)
                pos = start[:n].copy()
                for e in range(len(i)):
                    if s[e] >= min_sim:
                        a, b = i[e], j[e]
                        dst[pos[a]] = b
                        w[pos[a]] = s[e]
                        pos[a] += 1
                        dst[pos[b]] = a
                        w[pos[b]] = s[e]
                        pos[b] += 1
                for e in range(len(ci)):
                    a, b = ci[e], cj[e]
                    if a != b:
                        dst[pos[a]] = b
                        w[pos[a]] = 0.0
                        bad[pos[a]] = True
                        pos[a] += 1
                        dst[pos[b]] = a
                        w[pos[b]] = 0.0
                        bad[pos[b]] = True
                        pos[b] += 1
                # sort each source's edges by destination, summing parallel edges, compacting in place
                src = np.empty(total, dtype=itype_probe.dtype)
                c = np.empty(total, dtype=np.int32)
                out = 0
                for v in range(n):
                    lo, hi = start[v], start[v + 1]
                    if hi == lo:
                        continue
                    order = np.argsort(dst[lo:hi], kind="mergesort") + lo
                    seg_d = dst[order]
                    seg_w = w[order]
                    seg_b = bad[order]
                    last = -1
                    for t in range(hi - lo):
                        if t > 0 and seg_d[t] == last:
                            w[out - 1] += seg_w[t]
                            c[out - 1] += 0 if seg_b[t] else 1
                            bad[out - 1] = bad[out - 1] or seg_b[t]
                        else:
                            src[out] = v
                            dst[out] = seg_d[t]
                            w[out] = seg_w[t]
                            c[out] = 0 if seg_b[t] else 1
                            bad[out] = seg_b[t]
                            last = seg_d[t]
                            out += 1
                return src[:out], dst[:out], w[:out], c[:out], bad[:out]

            _CACHE[name] = csr
        elif name == "merge":

            @numba.njit(cache=True)
            def merge(src, dst, keep, t_src, t_dst):  # pragma: no cover - compiled
                e_total = len(src)
                n_new = len(t_src)
                n_keep = 0
                for e in range(e_total):
                    if keep[e]:
                        n_keep += 1
                is_new = np.zeros(n_keep + n_new, dtype=np.bool_)
                i = 0
                j = 0
                o = 0
                while True:
                    while i < e_total and not keep[i]:
                        i += 1
                    if i >= e_total or j >= n_new:
                        break
                    if t_src[j] < src[i] or (t_src[j] == src[i] and t_dst[j] < dst[i]):
                        is_new[o] = True
                        j += 1
                    else:
                        i += 1
                    o += 1
                while j < n_new:
                    is_new[o] = True
                    j += 1
                    o += 1
                return is_new

            _CACHE[name] = merge
        elif name == "rows":

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
        else:
            raise ValueError(f"no compiled kernel named {name!r}")
    return _CACHE[name]


def pair_dots(
    x: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    block: int = 1 << 16,
    *,
    buf: np.ndarray | None = None,
    slot: np.ndarray | None = None,
) -> np.ndarray:
    """``dot(row(a[e]), row(b[e]))`` for every ``e`` (float64).

    ``row(v)`` is ``x[v]``, or ``buf[slot[v]]`` where ``slot[v] >= 0`` when ``buf`` and ``slot`` are given.
    """
    if buf is not None:
        kernel = _compiled("pair_slots")
        if kernel is not None:
            return kernel(x, buf, slot, a, b)
    out = np.empty(len(a), dtype=np.float64)
    for i in range(0, len(a), block):
        ra = gather_rows(x, a[i : i + block], buf, slot)
        rb = gather_rows(x, b[i : i + block], buf, slot)
        out[i : i + block] = np.einsum("ij,ij->i", ra, rb, dtype=np.float64)
    return out


def gather_rows(x: np.ndarray, v: np.ndarray, buf: np.ndarray | None, slot: np.ndarray | None) -> np.ndarray:
    """Rows ``x[v]``, taken from ``buf[slot[v]]`` where ``slot[v] >= 0`` (when ``buf`` is given)."""
    out = x[v]
    if buf is not None:
        assert slot is not None, "slot is required with buf"
        s = slot[v]
        has = s >= 0
        out[has] = buf[s[has]]
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


def mutual_best(
    src: np.ndarray, dst: np.ndarray, m: np.ndarray, best: np.ndarray, best_sim: np.ndarray, min_sim: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reciprocal best pairs ``(a, b, sim)`` (``a < b``, ``sim >= min_sim``) of directed edges sorted by ``src``.

    A node's best edge is its most similar one, ties going to the smallest ``(min, max)``
    node pair (a total order, so the globally best pair is always reciprocal). ``best`` (int,
    length n, all -1) and ``best_sim`` (float64, length n) are scratch arrays; ``best`` is
    left all -1 again.
    """
    kernel = _compiled("mutual")
    if kernel is not None:
        return kernel(src, dst, m, best, best_sim, float(min_sim))
    n = len(best)
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
    seg_src = src[starts].astype(np.int64)
    seg_max = np.maximum.reduceat(m, starts)
    lo = np.minimum(src, dst).astype(np.int64)
    hi = np.maximum(src, dst).astype(np.int64)
    tie = np.where(m == np.repeat(seg_max, np.diff(np.r_[starts, len(src)])), lo * n + hi, np.iinfo(np.int64).max)
    best_key = np.minimum.reduceat(tie, starts)
    blo, bhi = best_key // n, best_key % n
    bdst = np.where(blo == seg_src, bhi, blo)
    best[seg_src] = bdst
    mutual = (best[bdst] == seg_src) & (seg_src < bdst) & (seg_max >= min_sim)
    best[seg_src] = -1
    return seg_src[mutual], bdst[mutual], seg_max[mutual]


def merge_order(src: np.ndarray, dst: np.ndarray, keep: np.ndarray, t_src: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Merge the kept rows of a ``(src, dst)``-sorted edge list with sorted new edges (no equal pairs).

    Returns ``is_new``, a bool array over the merged list: True where a new edge goes.
    """
    kernel = _compiled("merge")
    if kernel is not None:
        return kernel(src, dst, keep, t_src, t_dst)
    n = int(max(src.max(initial=0), t_src.max(initial=0), dst.max(initial=0), t_dst.max(initial=0))) + 1
    old = src[keep].astype(np.int64) * n + dst[keep]
    new = t_src.astype(np.int64) * n + t_dst
    is_new = np.zeros(len(old) + len(new), dtype=bool)
    is_new[np.searchsorted(old, new) + np.arange(len(new))] = True
    return is_new


def sorted_edges(
    n: int, i: np.ndarray, j: np.ndarray, s: np.ndarray, ci: np.ndarray, cj: np.ndarray, min_sim: float, itype
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of the edges ``(i, j, s)`` with ``s >= min_sim`` and of the cannot-link pairs
    ``(ci, cj)``, sorted by ``(src, dst)`` with parallel edges summed.

    Returns ``src``, ``dst`` (``itype``), ``w`` (summed similarity of the kNN edges, float64),
    ``c`` (their count, int32) and ``bad`` (a cannot-link pair is among them).
    """
    kernel = _compiled("csr")
    if kernel is not None:
        return kernel(int(n), i, j, s, ci, cj, float(min_sim), np.empty(0, dtype=itype))
    ok = s >= min_sim
    i, j, s = i[ok].astype(itype), j[ok].astype(itype), s[ok].astype(np.float64)
    ok = ci != cj
    ci, cj = ci[ok].astype(itype), cj[ok].astype(itype)
    src = np.concatenate([i, j, ci, cj])
    dst = np.concatenate([j, i, cj, ci])
    w = np.concatenate([s, s, np.zeros(2 * len(ci))])
    order = np.argsort(src.astype(np.int64) * max(n, 1) + dst, kind="stable")
    bad = order >= 2 * len(i)
    src, dst, w = src[order], dst[order], w[order]
    c = (~bad).astype(np.int32)
    if len(src) > 1:
        starts = np.flatnonzero(np.r_[True, (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])])
        src, dst = src[starts], dst[starts]
        w, c, bad = np.add.reduceat(w, starts), np.add.reduceat(c, starts), np.logical_or.reduceat(bad, starts)
    return src, dst, w, c, bad
