"""The numbers a clustering diagnosis rests on, computed once for every check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.cluster.knn import KNNGraph, build_knn
from imm_analysis.quality.hd import HD_FAIL_REASONS, HDRule
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE

__all__ = ["Facts", "gather_facts", "possible_groups"]


@dataclass
class Facts:
    """What every check of :func:`~imm_analysis.cluster.diagnose.diagnose_clustering` reads.

    Attributes
    ----------
    counts : dict
        faces, unavailable, independent, clustered, clusters, hd_faces, candidate_faces,
        candidate_hd_faces, candidate_hd_images, fail_* and, with identities, embeddings or a
        graph, possible_clusters and possible_cluster_sizes.
    fails : dict
        Candidate faces per first failed HD criterion.
    groups : list of ndarray or None
        Row indices of each group of candidate HD faces reaching ``min_faces`` images (None
        when neither labels, embeddings nor a graph were given).
    min_faces : int
    rule : HDRule
    by_labels : bool
        Groups come from known identities (else from embeddings).
    local : bool
        The faces come from the local pipeline: advise :func:`cluster_faces`, not IMM's task.
    threshold : float or None
        The similarity used to group embeddings (calibrated when not given).

    Examples
    --------
    >>> f = Facts(counts={"faces": 0}, fails={}, groups=None, min_faces=3, rule=HDRule())
    >>> f.counts["faces"], f.local
    (0, False)
    """

    counts: dict[str, Any]
    fails: dict[str, int]
    groups: list[np.ndarray] | None
    min_faces: int
    rule: HDRule
    by_labels: bool = False
    local: bool = False
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def gather_facts(
    figures: pd.DataFrame,
    rule: HDRule,
    *,
    min_faces: int,
    labels: np.ndarray | None,
    embeddings: np.ndarray | None,
    knn: KNNGraph | None,
    threshold: float | None,
    block_size: int,
    n_neighbors: int,
    progress: bool,
    local: bool,
) -> Facts:
    """Count faces by cluster state and HD rule and, when possible, group the candidates.

    Examples
    --------
    >>> import pandas as pd
    >>> f = gather_facts(pd.DataFrame({"file_id": ["a"]}), HDRule(), min_faces=3, labels=None,
    ...                  embeddings=None, knn=None, threshold=None, block_size=64, n_neighbors=5,
    ...                  progress=False, local=False)
    >>> f.counts["unavailable"], f.counts["fail_missing"]
    (1, 1)
    """
    n = len(figures)
    is_hd, reason = rule.evaluate(figures)
    if "figure_cluster_id" in figures.columns:
        cid = figures["figure_cluster_id"].astype("string").fillna(CLUSTER_UNAVAILABLE).to_numpy(dtype=object)
    else:
        cid = np.full(n, CLUSTER_UNAVAILABLE, dtype=object)
    unavailable = cid == CLUSTER_UNAVAILABLE
    independent = cid == CLUSTER_INDEPENDENT
    clustered = ~(unavailable | independent)
    candidate = ~clustered
    file_id = (
        figures["file_id"].astype("string").to_numpy(dtype=object) if "file_id" in figures.columns else np.arange(n)
    )
    cand_hd = candidate & is_hd
    counts: dict[str, Any] = {
        "faces": n,
        "unavailable": int(unavailable.sum()),
        "independent": int(independent.sum()),
        "clustered": int(clustered.sum()),
        "clusters": int(len(set(cid[clustered]))),
        "hd_faces": int(is_hd.sum()),
        "candidate_faces": int(candidate.sum()),
        "candidate_hd_faces": int(cand_hd.sum()),
        "candidate_hd_images": int(len(set(file_id[cand_hd]))),
    }
    fails = {r: int(((reason == i) & candidate).sum()) for i, r in enumerate(HD_FAIL_REASONS)}
    counts.update({f"fail_{r}": v for r, v in fails.items()})
    groups = None
    used: list[float] = [] if threshold is None else [float(threshold)]
    if labels is not None or embeddings is not None or knn is not None:
        if labels is None and threshold is None and embeddings is None:
            raise ValueError("threshold=None (calibrated) needs embeddings; with only knn= pass a threshold")
        groups = possible_groups(
            cand_hd, file_id, labels, embeddings, threshold, min_faces, block_size, n_neighbors, progress,
            knn=knn, used=used,
        )
        counts["possible_clusters"] = len(groups)
        counts["possible_cluster_sizes"] = sorted((len(g) for g in groups), reverse=True)
    return Facts(
        counts, fails, groups, min_faces, rule, by_labels=labels is not None, local=local,
        threshold=used[0] if used else None,
    )


def possible_groups(
    cand_hd: np.ndarray,
    file_id: np.ndarray,
    labels: np.ndarray | None,
    embeddings: np.ndarray | None,
    threshold: float | None,
    min_faces: int,
    block_size: int,
    n_neighbors: int = 30,
    progress: bool = False,
    *,
    knn: KNNGraph | None = None,
    used: list[float] | None = None,
) -> list[np.ndarray]:
    """Groups of candidate HD faces (row indices) that reach ``min_faces`` distinct files.

    With embeddings and ``threshold=None`` the threshold is calibrated on the candidates'
    embeddings (:func:`~imm_analysis.cluster.calibrate.calibrate_threshold`, as
    ``FigureClusterer`` calibrates) and appended to ``used`` when given.

    Examples
    --------
    >>> import numpy as np
    >>> g = possible_groups(np.ones(3, bool), np.array(["a", "b", "c"]), np.array([0, 0, 0]),
    ...                     None, None, 3, 64)
    >>> [x.tolist() for x in g]
    [[0, 1, 2]]
    """
    rows = np.flatnonzero(cand_hd)
    if labels is not None:
        lab = np.asarray(labels)[rows]
        keep = lab >= 0
        rows, comp = rows[keep], lab[keep]
    else:
        x = None if embeddings is None else np.asarray(embeddings)[rows]
        sub = None if knn is None else knn.subset(rows)
        comp = _components(x, sub, rows, threshold, block_size, n_neighbors, progress, used)
    frame = pd.DataFrame({"g": comp, "row": rows, "file": file_id[rows]})
    n_files = frame.groupby("g")["file"].nunique()
    ok = n_files.index[n_files >= min_faces]
    return [grp["row"].to_numpy() for _, grp in frame[frame["g"].isin(ok)].groupby("g")]


def _components(
    x: np.ndarray | None, graph: KNNGraph | None, rows: np.ndarray, threshold: float | None,
    block_size: int, n_neighbors: int, progress: bool, used: list[float] | None = None,
) -> np.ndarray:
    """Component id per candidate: kNN links at similarity >= ``threshold``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if graph is None:
        assert x is not None
        if not np.issubdtype(x.dtype, np.number):
            raise TypeError(f"embeddings must be numeric, got dtype {x.dtype}")
        finite = np.isfinite(x).all(axis=1) if x.size else np.ones(len(x), bool)
        if not finite.all():
            raise ValueError(f"embeddings row {int(rows[np.flatnonzero(~finite)[0]])} contains NaN or infinity")
    m = len(rows)
    if m < 2:
        return np.arange(m)
    if graph is None:
        assert x is not None
        built = build_knn(x, min(int(n_neighbors), m - 1), block_size=block_size, progress=progress)
        assert isinstance(built, KNNGraph)
        graph = built
    if threshold is None:
        from imm_analysis.cluster.calibrate import calibrate_threshold

        if x is None:
            raise ValueError("threshold=None (calibrated) needs embeddings; with only knn= pass a threshold")
        try:
            threshold = float(calibrate_threshold(x, knn=graph))
        except ValueError as exc:
            raise ValueError(f"cannot calibrate a threshold on {m} candidate faces ({exc}); pass threshold=") from None
        if used is not None:
            used.append(threshold)
    i, j, _ = graph.edges(threshold)
    links = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(m, m))
    return connected_components(links, directed=False)[1]
