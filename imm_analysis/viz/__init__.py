"""Visualisation layer: UMAP projection and matplotlib plots of face clusterings.

Every plot returns a Figure or Axes and never calls ``show()``. matplotlib and umap are
imported only when a name is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "project_umap": "imm_analysis.viz.projection",
    "plot_projection": "imm_analysis.viz.plots",
    "plot_projections": "imm_analysis.viz.plots",
    "plot_face_montage": "imm_analysis.viz.plots",
    "plot_cluster_montage": "imm_analysis.viz.plots",
    "plot_threshold_sweep": "imm_analysis.viz.plots",
    "plot_cluster_sizes": "imm_analysis.viz.plots",
    "load_face_crop": "imm_analysis.viz.plots",
    "plot_quality_distributions": "imm_analysis.viz.quality_plots",
}

__all__ = [
    "load_face_crop",
    "plot_cluster_montage",
    "plot_cluster_sizes",
    "plot_face_montage",
    "plot_projection",
    "plot_projections",
    "plot_quality_distributions",
    "plot_threshold_sweep",
    "project_umap",
]

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.viz.plots import (
        load_face_crop,
        plot_cluster_montage,
        plot_cluster_sizes,
        plot_face_montage,
        plot_projection,
        plot_projections,
        plot_threshold_sweep,
    )
    from imm_analysis.viz.projection import project_umap
    from imm_analysis.viz.quality_plots import plot_quality_distributions


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        try:
            module = importlib.import_module(_EXPORTS[name])
        except ModuleNotFoundError as exc:
            if exc.name != _EXPORTS[name]:
                raise
            raise AttributeError(f"imm_analysis.viz.{name} is not available: {exc.name} is missing") from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'imm_analysis.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
