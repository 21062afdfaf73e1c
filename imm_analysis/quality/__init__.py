"""Face quality and head pose: IMM's high-definition face rule, summaries and diagnosis.

Pure computation on figures frames (see :mod:`imm_analysis.schema`); nothing here plots
(the plots are in :mod:`imm_analysis.viz.quality_plots`).

* :mod:`~imm_analysis.quality.hd`: :class:`HDRule` (IMM's rule, its thresholds written once),
  :func:`hd_faces`, :func:`hd_mask`;
* :mod:`~imm_analysis.quality.summary`: :func:`quality_summary` (counts, HD share, failure
  reasons, percentiles, per group);
* :func:`diagnose_clustering`: IMM's FAQ "why does face clustering not generate any
  clusters"; it needs neighbour search and calibration, so it lives in
  :mod:`imm_analysis.cluster.diagnose` and is re-exported here by name only (this package
  imports nothing from :mod:`imm_analysis.cluster`).

Names are loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS = {
    "HDRule": "imm_analysis.quality.hd",
    "HD_RULE": "imm_analysis.quality.hd",
    "HD_FAIL_REASONS": "imm_analysis.quality.hd",
    "describe_hd_rule": "imm_analysis.quality.hd",
    "hd_faces": "imm_analysis.quality.hd",
    "hd_mask": "imm_analysis.quality.hd",
    "SUMMARY_MEASURES": "imm_analysis.quality.summary",
    "quality_summary": "imm_analysis.quality.summary",
    "Diagnosis": "imm_analysis.cluster.diagnose.core",
    "diagnose_clustering": "imm_analysis.cluster.diagnose.core",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.diagnose.core import Diagnosis, diagnose_clustering
    from imm_analysis.quality.hd import HD_FAIL_REASONS, HD_RULE, HDRule, describe_hd_rule, hd_faces, hd_mask
    from imm_analysis.quality.summary import SUMMARY_MEASURES, quality_summary

__getattr__, __dir__ = attach(__name__, _EXPORTS)
