"""Plots of face clusterings (compatibility module): the names live in modules by job.

* :mod:`imm_analysis.viz.projection_plots`: :func:`plot_projection`, :func:`plot_projections`.
* :mod:`imm_analysis.viz.montage`: :func:`plot_face_montage`, :func:`plot_cluster_montage`,
  :func:`load_face_crop`, :data:`ImageSource`.
* :mod:`imm_analysis.viz.sweep_plots`: :func:`plot_threshold_sweep`, :func:`plot_cluster_sizes`.

``from imm_analysis.viz.plots import X`` keeps working for each of them.
"""

from __future__ import annotations

from imm_analysis.viz._common import INDEPENDENT_COLOR, SCATTER_MAX
from imm_analysis.viz.montage import ImageSource, load_face_crop, plot_cluster_montage, plot_face_montage
from imm_analysis.viz.projection_plots import plot_projection, plot_projections
from imm_analysis.viz.sweep_plots import plot_cluster_sizes, plot_threshold_sweep

__all__ = [
    "INDEPENDENT_COLOR",
    "SCATTER_MAX",
    "ImageSource",
    "plot_projection",
    "plot_projections",
    "plot_face_montage",
    "plot_cluster_montage",
    "plot_threshold_sweep",
    "plot_cluster_sizes",
    "load_face_crop",
]
