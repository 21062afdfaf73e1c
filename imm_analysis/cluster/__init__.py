"""Face clustering with IMM's semantics: kNN graph, constrained average linkage, state and views.

* :mod:`~imm_analysis.cluster.knn`: :class:`KNNGraph`, :func:`build_knn` (blockwise numpy or FAISS).
* :mod:`~imm_analysis.cluster.linkage`: the constrained average-linkage dendrogram and its cuts.
* :mod:`~imm_analysis.cluster.clusterer`: :class:`FigureClusterer` and :func:`cluster_faces`.
* :mod:`~imm_analysis.cluster.incremental`: placing new faces without moving earlier ones.
* :mod:`~imm_analysis.cluster.state`: :class:`ClusterState` (edits, updates, save/load).
* :mod:`~imm_analysis.cluster.views`: IMM-shaped QueryFigureClusters / GetFigureCluster / SimpleQuery.
* :mod:`~imm_analysis.cluster.calibrate`: threshold calibration without labels.

Names are loaded lazily.
"""

from __future__ import annotations

from imm_analysis._lazy import attach

_EXPORTS = {
    "KNNGraph": "imm_analysis.cluster.knn",
    "build_knn": "imm_analysis.cluster.knn",
    "FigureClusterer": "imm_analysis.cluster.clusterer",
    "cluster_faces": "imm_analysis.cluster.clusterer",
    "ClusterState": "imm_analysis.cluster.state",
    "query_figure_clusters": "imm_analysis.cluster.views",
    "get_figure_cluster": "imm_analysis.cluster.views",
    "simple_query": "imm_analysis.cluster.views",
    "calibrate_threshold": "imm_analysis.cluster.calibrate",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = attach(__name__, _EXPORTS)
