"""Visualisation layer: UMAP projection and matplotlib plots of face clusterings.

Every plot returns a Figure or Axes and never calls ``show()``. matplotlib and umap are
imported only when a name is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS: dict[str, str] = {
    "project_umap": "imm_analysis.viz.projection",
    "plot_projection": "imm_analysis.viz.projection_plots",
    "plot_projections": "imm_analysis.viz.projection_plots",
    "plot_face_montage": "imm_analysis.viz.montage",
    "plot_cluster_montage": "imm_analysis.viz.montage",
    "plot_threshold_sweep": "imm_analysis.viz.sweep_plots",
    "plot_cluster_sizes": "imm_analysis.viz.sweep_plots",
    "load_face_crop": "imm_analysis.viz.montage",
    "plot_quality_distributions": "imm_analysis.viz.quality_plots",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.viz.montage import load_face_crop, plot_cluster_montage, plot_face_montage
    from imm_analysis.viz.projection import project_umap
    from imm_analysis.viz.projection_plots import plot_projection, plot_projections
    from imm_analysis.viz.quality_plots import plot_quality_distributions
    from imm_analysis.viz.sweep_plots import plot_cluster_sizes, plot_threshold_sweep


__getattr__, __dir__ = attach(__name__, _EXPORTS)
