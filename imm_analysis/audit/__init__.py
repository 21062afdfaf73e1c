"""Audit clustering runs: what a run changed, and IMM against a local run face by face.

* :mod:`~imm_analysis.audit.diff`: :func:`diff_clusterings` (two snapshots of one dataset)
* :mod:`~imm_analysis.audit.match`: :func:`match_faces` (the same files seen by two detectors)
* :mod:`~imm_analysis.audit.local`: :func:`audit_against_local` (detection, quality, pose, clustering)

Computation only: the results objects' ``plot`` methods import :mod:`imm_analysis.viz.audit_plots`
(matplotlib) and their ``to_html`` methods :mod:`imm_analysis.report.audit_html` when called.
"""

from __future__ import annotations

from imm_analysis._lazy import attach

_EXPORTS = {
    "diff_clusterings": "imm_analysis.audit.diff",
    "ClusteringDiff": "imm_analysis.audit.diff",
    "match_faces": "imm_analysis.audit.match",
    "FaceMatch": "imm_analysis.audit.match",
    "audit_against_local": "imm_analysis.audit.local",
    "LocalAudit": "imm_analysis.audit.local",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = attach(__name__, _EXPORTS)
