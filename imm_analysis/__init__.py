"""imm_analysis: look inside face clustering, from Alibaba Cloud IMM or a local insightface run.

The top-level names are loaded lazily, so ``import imm_analysis`` stays fast and does not
import onnxruntime, insightface, umap or matplotlib until they are used.

Layers (each imports only the ones below it):

* input/output: :mod:`imm_analysis.schema`, :mod:`imm_analysis.io`, :mod:`imm_analysis.imm`
* computation: :mod:`imm_analysis.quality`, :mod:`imm_analysis.synth`, :mod:`imm_analysis.faces`,
  :mod:`imm_analysis.cluster`, :mod:`imm_analysis.evaluate`
* visualisation: :mod:`imm_analysis.viz`
* widgets, report, privacy and command line: :mod:`imm_analysis.widgets`, :mod:`imm_analysis.report`,
  :mod:`imm_analysis.privacy`, :mod:`imm_analysis.cli`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # loading and writing IMM JSON
    "load_clusters": "imm_analysis.io.imm_json",
    "load_files": "imm_analysis.io.imm_json",
    "load_figures": "imm_analysis.io.imm_json",
    "load_files_and_figures": "imm_analysis.io.imm_json",
    "to_imm_clusters": "imm_analysis.io.imm_json",
    "to_imm_files": "imm_analysis.io.imm_json",
    "load_tasks": "imm_analysis.io.tasks",
    # quality and pose
    "hd_faces": "imm_analysis.quality",
    "quality_summary": "imm_analysis.quality",
    "diagnose_clustering": "imm_analysis.cluster.diagnose.core",
    # local face pipeline
    "FaceModel": "imm_analysis.faces.model",
    "embed_images": "imm_analysis.faces.embed",
    "embed_crops": "imm_analysis.faces.embed",
    # clustering
    "FigureClusterer": "imm_analysis.cluster.clusterer",
    "cluster_faces": "imm_analysis.cluster.clusterer",
    "ClusterState": "imm_analysis.cluster.state",
    "calibrate_threshold": "imm_analysis.cluster.calibrate",
    "query_figure_clusters": "imm_analysis.cluster.views",
    "get_figure_cluster": "imm_analysis.cluster.views",
    "simple_query": "imm_analysis.cluster.views",
    # evaluation
    "evaluate_clustering": "imm_analysis.evaluate.metrics",
    "sweep_thresholds": "imm_analysis.evaluate.metrics",
    "compare_clusterings": "imm_analysis.evaluate.compare",
    # clustering runs and audits
    "diff_clusterings": "imm_analysis.audit.diff",
    "match_faces": "imm_analysis.audit.match",
    "audit_against_local": "imm_analysis.audit.local",
    # projection
    "project_umap": "imm_analysis.viz.projection",
    # face search in photos and videos
    "build_search_library": "imm_analysis.search.library",
    "SearchLibrary": "imm_analysis.search.library",
    "search_media_by_face": "imm_analysis.search.shapes",
    "search_media_clip_by_face": "imm_analysis.search.shapes",
    "search_image_figure_cluster": "imm_analysis.search.shapes",
    "compare_image_faces": "imm_analysis.search.shapes",
    "load_media_clips": "imm_analysis.io.media_clips",
    # retail report
    "visitor_report": "imm_analysis.report.visitors",
    "VisitorReport": "imm_analysis.report.visitors",
    # privacy: erasure and retention
    "forget": "imm_analysis.privacy.forget",
    "ErasureReceipt": "imm_analysis.privacy.receipt",
}
_SUBMODULES = {"schema", "io", "imm", "audit", "quality", "synth", "faces", "cluster", "evaluate", "viz", "widgets", "report", "privacy", "cli", "search"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES])

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.audit.diff import diff_clusterings
    from imm_analysis.audit.local import audit_against_local
    from imm_analysis.audit.match import match_faces
    from imm_analysis.cluster.calibrate import calibrate_threshold
    from imm_analysis.cluster.clusterer import FigureClusterer, cluster_faces
    from imm_analysis.cluster.diagnose.core import diagnose_clustering
    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.cluster.views import get_figure_cluster, query_figure_clusters, simple_query
    from imm_analysis.evaluate import compare_clusterings, evaluate_clustering, sweep_thresholds
    from imm_analysis.faces.embed import embed_crops, embed_images
    from imm_analysis.faces.model import FaceModel
    from imm_analysis.io.imm_json import (
        load_clusters,
        load_figures,
        load_files,
        load_files_and_figures,
        to_imm_clusters,
        to_imm_files,
    )
    from imm_analysis.io.media_clips import load_media_clips
    from imm_analysis.io.tasks import load_tasks
    from imm_analysis.privacy.forget import forget
    from imm_analysis.privacy.receipt import ErasureReceipt
    from imm_analysis.quality import hd_faces, quality_summary
    from imm_analysis.report.visitors import VisitorReport, visitor_report
    from imm_analysis.search.library import SearchLibrary, build_search_library
    from imm_analysis.search.shapes import (
        compare_image_faces,
        search_image_figure_cluster,
        search_media_by_face,
        search_media_clip_by_face,
    )
    from imm_analysis.viz.projection import project_umap


__getattr__, __dir__ = attach(__name__, _EXPORTS, _SUBMODULES)
