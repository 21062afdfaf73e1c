"""The tuner's computations: checked parameters, a summary at one cut, the merges nearest a threshold."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.quality import HDRule

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.clusterer import FigureClusterer

__all__ = ["HD_DEFAULTS", "PARAMS", "check_params", "closest_merges", "face_quality", "summarize"]

#: IMM's high-definition rule (see :func:`imm_analysis.quality.hd_mask`).
HD_DEFAULTS: dict[str, float] = HDRule().as_dict()
#: The parameters a tuner takes.
PARAMS = ("threshold", "min_faces", *HD_DEFAULTS)


def check_params(
    params: Mapping[str, Any], base: Mapping[str, Any], floor: float, caller: str
) -> dict[str, Any]:
    """``base`` updated with ``params``, validated (threshold in ``[floor, 1]``, ``min_faces >= 1``).

    Examples
    --------
    >>> base = {"threshold": 0.5, "min_faces": 3, **HD_DEFAULTS}
    >>> check_params({"min_faces": "2"}, base, 0.1, "set")["min_faces"]
    2
    >>> check_params({"threshold": 0.05}, base, 0.1, "set")
    Traceback (most recent call last):
    ValueError: threshold 0.05 is outside [0.1, 1]; fit with a lower linkage_floor
    """
    unknown = set(params) - set(PARAMS)
    if unknown:
        raise TypeError(f"ThresholdTuner.{caller}: unknown parameter(s) {sorted(unknown)}; expected {list(PARAMS)}")
    new = dict(base)
    for k, v in params.items():
        new[k] = int(v) if k == "min_faces" else float(v)
    if new["threshold"] < floor - 1e-12 or new["threshold"] > 1.0:
        raise ValueError(f"threshold {new['threshold']} is outside [{floor}, 1]; fit with a lower linkage_floor")
    if new["min_faces"] < 1:
        raise ValueError(f"min_faces must be >= 1, got {new['min_faces']}")
    return new


def summarize(
    clusterer: FigureClusterer, p: Mapping[str, Any], hd: np.ndarray, true_labels: np.ndarray | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Labels and summary of ``clusterer`` re-cut at parameters ``p`` with HD flags ``hd``.

    Examples
    --------
    >>> import numpy as np
    >>> from imm_analysis.synth import make_dataset
    >>> from imm_analysis.cluster.clusterer import FigureClusterer
    >>> ds = make_dataset(4, seed=1)
    >>> est = FigureClusterer(0.5, min_faces=2).fit(ds.embeddings)
    >>> hd = np.ones(len(ds.embeddings), bool)
    >>> labels, s = summarize(est, {"threshold": 0.5, "min_faces": 2}, hd, ds.labels)
    >>> s["n_clustered"] + s["n_independent"] == len(labels), 0 <= s["bcubed_f"] <= 1
    (True, True)
    """
    t0 = time.perf_counter()
    labels = clusterer.recut(p["threshold"], min_faces=p["min_faces"], hd=hd)
    recut_ms = (time.perf_counter() - t0) * 1e3
    clustered = int((labels >= 0).sum())
    summary: dict[str, Any] = {
        **p,
        "n_clusters": int(len(np.unique(labels[labels >= 0]))),
        "n_clustered": clustered,
        "n_independent": int(len(labels) - clustered),
        "n_hd": int(hd.sum()),
        "recut_ms": recut_ms,
    }
    if true_labels is not None:
        from imm_analysis.evaluate import evaluate_clustering

        metrics = evaluate_clustering(true_labels, labels)
        summary.update({k: v for k, v in metrics.items() if k not in ("n_clusters", "n_independent")})
    return labels, summary


def face_quality(figures: pd.DataFrame | None, n: int) -> np.ndarray:
    """``face_quality`` per row, -1 where missing (0 for every row without the column).

    Examples
    --------
    >>> import pandas as pd
    >>> face_quality(pd.DataFrame({"face_quality": [0.5, None]}), 2).tolist()
    [0.5, -1.0]
    """
    if figures is None or "face_quality" not in figures.columns:
        return np.zeros(n)
    q = pd.to_numeric(figures["face_quality"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.nan_to_num(q, nan=-1.0)


def _leaves(d: Any, node: int) -> np.ndarray:
    """Sorted leaf rows under dendrogram node ``node``."""
    out, stack = [], [node]
    while stack:
        v = stack.pop()
        if v < d.n:
            out.append(v)
        else:
            stack.extend((int(d.left[v - d.n]), int(d.right[v - d.n])))
    return np.asarray(sorted(out), dtype=np.int64)


def closest_merges(d: Any, threshold: float, quality: np.ndarray, n: int, faces_per_side: int) -> pd.DataFrame:
    """The ``n`` merges of dendrogram ``d`` nearest ``threshold`` on each side (see ``ThresholdTuner``).

    Examples
    --------
    >>> import numpy as np
    >>> from imm_analysis.cluster.clusterer import FigureClusterer
    >>> x = np.repeat(np.eye(2, 8, dtype=np.float32), 3, axis=0)
    >>> est = FigureClusterer(0.5, min_faces=2).fit(x)
    >>> m = closest_merges(est.dendrogram_, 0.5, np.zeros(6), 1, 2)
    >>> m["joined"].tolist(), m["rows_a"].map(len).tolist()  # the weakest join above 0.5, the best one below
    ([True, False], [1, 2])
    """
    sim = np.asarray(d.height, dtype=float)
    ok = np.isfinite(sim)
    above = np.flatnonzero(ok & (sim >= threshold))
    below = np.flatnonzero(ok & (sim < threshold))
    pick = np.r_[above[np.argsort(sim[above], kind="stable")][:n], below[np.argsort(-sim[below], kind="stable")][:n]]
    rows = []
    for m in pick.astype(np.int64):
        a = _leaves(d, int(d.left[m]))
        b = _leaves(d, int(d.right[m]))
        rows.append(
            {
                "similarity": float(sim[m]),
                "joined": bool(sim[m] >= threshold),
                "size_a": len(a),
                "size_b": len(b),
                "rows_a": a[np.argsort(-quality[a], kind="stable")][:faces_per_side],
                "rows_b": b[np.argsort(-quality[b], kind="stable")][:faces_per_side],
            }
        )
    return pd.DataFrame(rows, columns=["similarity", "joined", "size_a", "size_b", "rows_a", "rows_b"])
