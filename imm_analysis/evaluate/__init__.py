"""How good is a clustering, and how do two clusterings differ.

* :mod:`~imm_analysis.evaluate.metrics`: :func:`evaluate_clustering` (pairwise and BCubed
  precision/recall, NMI, ARI), :func:`contingency`, :func:`sweep_thresholds`;
* :mod:`~imm_analysis.evaluate.compare`: :func:`compare_clusterings` and
  :class:`ClusteringComparison`.

Names are loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS = {
    "METRIC_KEYS": "imm_analysis.evaluate.metrics",
    "contingency": "imm_analysis.evaluate.metrics",
    "evaluate_clustering": "imm_analysis.evaluate.metrics",
    "sweep_thresholds": "imm_analysis.evaluate.metrics",
    "ClusteringComparison": "imm_analysis.evaluate.compare",
    "compare_clusterings": "imm_analysis.evaluate.compare",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.evaluate.compare import ClusteringComparison, compare_clusterings
    from imm_analysis.evaluate.metrics import METRIC_KEYS, contingency, evaluate_clustering, sweep_thresholds

__getattr__, __dir__ = attach(__name__, _EXPORTS)
