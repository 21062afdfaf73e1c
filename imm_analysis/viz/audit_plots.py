"""Plots of clustering audits: what a run changed, and IMM against a local run. Figures are returned, never shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from imm_analysis._optional import require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_diff", "plot_audit"]

_COLORS = {
    "created": "#2ca02c", "grown": "#98df8a", "deleted": "#d62728", "shrunk": "#ff9896", "renamed": "#9467bd",
    "unchanged": "#c7c7c7", "new": "#2ca02c", "newly_clustered": "#1f77b4", "removed": "#d62728",
    "left": "#ff7f0e", "moved": "#e377c2",
}


def _figure(ncols: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, Any]:
    require("matplotlib", purpose="audit plots")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _bars(ax: Any, counts: Mapping[str, float], title: str) -> None:
    labels = list(counts)
    values = np.array([counts[k] for k in labels])
    bars = ax.barh(labels, values, color=[_COLORS.get(k, "#7f7f7f") for k in labels])
    ax.bar_label(bars, labels=[f"{v:,}" if float(v).is_integer() else f"{v:.3f}" for v in values], padding=2,
                 fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlim(0, max(1, int(values.max()) if len(values) else 1) * 1.15)


def plot_diff(diff: Any, *, log: bool = False) -> Figure:
    """Cluster and face changes of a :class:`~imm_analysis.audit.diff.ClusteringDiff` as two bar charts.

    Parameters
    ----------
    diff : ClusteringDiff
    log : bool, default=False
        Logarithmic count axis (when ``unchanged`` dwarfs the rest).

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; display it in a notebook or save it.

    Examples
    --------
    >>> import pandas as pd
    >>> from imm_analysis import diff_clusterings
    >>> f = pd.DataFrame({"figure_id": ["a", "b"], "file_id": ["x", "y"], "figure_cluster_id": ["C1", "C1"]})
    >>> fig = plot_diff(diff_clusterings((None, f.iloc[:1]), (None, f)))
    >>> [ax.get_title() for ax in fig.axes]
    ['clusters (1 -> 1)', 'faces (1 -> 2), 0 broken']
    """
    s = diff.summary
    fig, (ax_c, ax_f) = _figure(2)
    _bars(ax_c, s["clusters"], f"clusters ({s['clusters_before']:,} -> {s['clusters_after']:,})")
    _bars(ax_f, s["faces"], f"faces ({s['faces_before']:,} -> {s['faces_after']:,}), {s['broken']:,} broken")
    for ax in (ax_c, ax_f):
        if log:
            ax.set_xscale("symlog")
    fig.suptitle(f"{diff.names[0]} -> {diff.names[1]}")
    return fig


def plot_audit(audit: Any) -> Figure:
    """Detection, high-definition and clustering agreement of a :class:`~imm_analysis.audit.local.LocalAudit`.

    Three panels: faces found by both / only one side by face size, the quality (IMM's
    ``face_quality`` against the local one) of the matched faces, and the clustering agreement
    scores.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    The audit needs a local run of real photos (see ``tests/test_audit.py``):

    >>> fig = plot_audit(audit)  # doctest: +SKIP
    """
    fig, (ax_d, ax_q, ax_c) = _figure(3, width=4.4)
    det = audit.detection
    sizes = det["size_bin"].cat.categories if len(det) else []
    x = np.arange(len(sizes))
    for i, col in enumerate(("both", "only_imm", "only_local")):
        vals = det.set_index("size_bin")[col].reindex(sizes).fillna(0).to_numpy() if len(det) else []
        ax_d.bar(x + (i - 1) * 0.27, vals, width=0.27, label=col.replace("_", " "))
    ax_d.set_xticks(x, [str(s) for s in sizes], rotation=30, fontsize=7)
    ax_d.set_title("detection by face size (px)")
    ax_d.legend(fontsize=7)
    q = audit.quality
    if len(q):
        ax_q.scatter(q["face_quality_imm"], q["face_quality_local"], s=8, alpha=0.6,
                     c=np.where(q["hd_imm"] == q["hd_local"], "#1f77b4", "#d62728"))
        ax_q.plot([0, 1], [0, 1], color="#999", lw=0.8)
    ax_q.set_xlabel("IMM face_quality")
    ax_q.set_ylabel("local face_quality")
    ax_q.set_title("quality (red: HD verdicts differ)")
    agree = audit.summary.get("agreement", {})
    keys = [k for k in ("pairwise_f", "bcubed_f", "ari", "nmi") if k in agree]
    _bars(ax_c, {k: round(float(agree[k]), 3) for k in keys}, "clustering agreement")
    ax_c.set_xlim(0, 1.15)
    return fig
