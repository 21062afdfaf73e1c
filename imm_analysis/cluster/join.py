"""The join level of :class:`~imm_analysis.cluster.clusterer.FigureClusterer` and pair helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

from imm_analysis.cluster.linkage import first_seen_ranks

__all__ = ["join_leftovers", "as_pairs", "concat_pairs"]

Pairs = tuple[np.ndarray, np.ndarray]


def join_leftovers(labels: np.ndarray, comp: np.ndarray, hd: np.ndarray, min_faces: int) -> np.ndarray:
    """Apply the join level: ``labels`` founded at the strict cut, ``comp`` the looser cut's components.

    A looser component holding exactly one founded cluster gives its independent faces to that
    cluster; one holding none founds when it has ``min_faces`` HD faces; one holding two or more
    is left as it is. Labels are renumbered in order of each cluster's first row, as
    :func:`~imm_analysis.cluster.linkage.found_clusters` numbers them. Vectorised, O(n).

    Examples
    --------
    >>> import numpy as np
    >>> join_leftovers(np.array([0, 0, -1, -1]), np.array([0, 0, 0, 1]), np.ones(4, bool), 3).tolist()
    [0, 0, 0, -1]
    """
    n = len(labels)
    if n == 0:
        return labels
    size = int(comp.max()) + 1
    founded = labels >= 0
    # the founded clusters are whole strict components, so each lies in one looser component
    n_lab = int(labels.max()) + 1 if founded.any() else 0
    lab_comp = np.full(n_lab, -1, dtype=np.int64)
    lab_comp[labels[founded]] = comp[founded]
    n_founded = np.bincount(lab_comp, minlength=size)
    owner = np.full(size, -1, dtype=np.int64)
    owner[lab_comp] = np.arange(n_lab)
    out = labels.copy()
    free = ~founded
    one = free & (n_founded[comp] == 1)
    out[one] = owner[comp[one]]
    none = free & (n_founded[comp] == 0)
    if none.any():
        hd_count = np.bincount(comp[none], weights=np.asarray(hd, dtype=np.float64)[none], minlength=size)
        new = none & (hd_count[comp] >= max(int(min_faces), 1))
        out[new] = n_lab + comp[new]  # temporary ids, renumbered below
    ok = out >= 0
    out[ok] = first_seen_ranks(out[ok])
    return out


def as_pairs(pairs: Any) -> Pairs | None:
    """``(i, j)`` as two int64 arrays (None stays None).

    >>> as_pairs(([0], [1]))[1].dtype
    dtype('int64')
    """
    if pairs is None:
        return None
    a, b = pairs
    return np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)


def concat_pairs(a: Pairs | None, b: Pairs | None) -> Pairs | None:
    """Both pair lists in one (either may be None).

    >>> concat_pairs(None, None) is None
    True
    """
    if a is None:
        return b
    if b is None:
        return a
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
