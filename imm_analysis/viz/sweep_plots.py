"""Sweep plots: clustering quality against the similarity threshold, and cluster sizes.

Every function returns a matplotlib Axes and never calls ``show()``; pass ``ax=`` to draw
into an existing Axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE
from imm_analysis.viz._common import new_ax as _new_ax

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_threshold_sweep", "plot_cluster_sizes"]


def plot_threshold_sweep(
    sweep: pd.DataFrame,
    *,
    calibrated: float | None = None,
    chosen: float | None = None,
    metric: str = "bcubed",
    ax: Axes | None = None,
) -> Axes:
    """Precision, recall, F and the number of clusters against the similarity threshold.

    Parameters
    ----------
    sweep : DataFrame
        :func:`~imm_analysis.evaluate.sweep_thresholds` output: a ``threshold`` column (or
        index) and ``{metric}_precision``, ``{metric}_recall``, ``{metric}_f``, ``n_clusters``.
    calibrated : float, optional
        The label-free threshold (:func:`~imm_analysis.cluster.calibrate.calibrate_threshold`),
        drawn as a dashed vertical line.
    chosen : float, optional
        The threshold in use, drawn as a solid vertical line.
    metric : {"bcubed", "pairwise"}, default="bcubed"
        Which precision/recall/F family to draw.
    ax : Axes, optional

    Returns
    -------
    Axes
        The metrics Axes; ``n_clusters`` is on its twin (right axis, ``ax.figure.axes[-1]``).

    Examples
    --------
    >>> import pandas as pd
    >>> sweep = pd.DataFrame({"threshold": [0.3, 0.4, 0.5], "bcubed_precision": [0.6, 0.8, 0.95],
    ...                       "bcubed_recall": [0.95, 0.9, 0.7], "bcubed_f": [0.74, 0.85, 0.81], "n_clusters": [20, 35, 50]})
    >>> ax = plot_threshold_sweep(sweep, calibrated=0.42, chosen=0.4)
    >>> [ln.get_label() for ln in ax.get_lines()]  # doctest: +NORMALIZE_WHITESPACE
    ['bcubed precision', 'bcubed recall', 'bcubed F', 'best F 0.850 at 0.400', 'calibrated 0.420', 'chosen 0.400']
    """
    df = sweep.reset_index() if "threshold" not in sweep.columns else sweep
    if "threshold" not in df.columns:
        raise ValueError("sweep needs a 'threshold' column or index")
    df = df.sort_values("threshold")
    t = df["threshold"].to_numpy(dtype=float)
    ax = _new_ax(ax, (7.0, 4.5))
    styles = {"precision": ("tab:blue", "-"), "recall": ("tab:orange", "-"), "f": ("tab:green", "-")}
    drawn = 0
    for name, (color, ls) in styles.items():
        col = f"{metric}_{name}"
        if col in df.columns:
            ax.plot(t, df[col].to_numpy(dtype=float), color=color, ls=ls, lw=2 if name == "f" else 1.5,
                    label=f"{metric} {'F' if name == 'f' else name}")
            drawn += 1
    if not drawn:
        raise ValueError(f"sweep has none of {metric}_precision/_recall/_f; columns: {list(df.columns)}")
    f_col = f"{metric}_f"
    if f_col in df.columns and df[f_col].notna().any():
        best = int(np.nanargmax(df[f_col].to_numpy(dtype=float)))
        ax.plot([t[best]], [df[f_col].iloc[best]], marker="*", ms=12, color="tab:green", ls="",
                label=f"best F {df[f_col].iloc[best]:.3f} at {t[best]:.3f}")
    ax.set_xlabel("similarity threshold (cosine)")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    lines = []
    if calibrated is not None:
        lines.append(ax.axvline(calibrated, color="tab:purple", ls="--", lw=1.5, label=f"calibrated {calibrated:.3f}"))
    if chosen is not None:
        lines.append(ax.axvline(chosen, color="black", ls="-", lw=1.2, label=f"chosen {chosen:.3f}"))
    handles, labels = ax.get_legend_handles_labels()
    top = ax
    if "n_clusters" in df.columns:
        top = ax.twinx()
        top.plot(t, df["n_clusters"].to_numpy(dtype=float), color="tab:gray", ls=":", lw=1.5, label="clusters")
        top.set_ylabel("clusters")
        h2, l2 = top.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    # the legend goes on the top-most Axes so the twin's line does not hide it
    top.legend(handles, labels, loc="best", fontsize="small", framealpha=0.85)
    ax.set_title(f"threshold sweep ({metric})", fontsize="medium")
    return ax


def _cluster_sizes(data: Any) -> tuple[np.ndarray, int]:
    if isinstance(data, pd.DataFrame):
        if "face_count" in data.columns and "figure_cluster_id" not in data.columns:
            sizes = pd.to_numeric(data["face_count"], errors="coerce").dropna().to_numpy(dtype=np.int64)
            return sizes, 0
        if "figure_cluster_id" in data.columns:
            ids = data["figure_cluster_id"].astype("string")
            free = ids.isin([CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE]).fillna(True).to_numpy(bool) | ids.isna().to_numpy()
            sizes = ids[~free].value_counts().to_numpy(dtype=np.int64)
            return sizes, int(free.sum())
        raise ValueError("a frame needs face_count (clusters) or figure_cluster_id (figures)")
    lab = np.asarray(data)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (-1 = independent); got dtype {lab.dtype}")
    free = lab < 0
    sizes = np.bincount(lab[~free]) if (~free).any() else np.zeros(0, dtype=np.int64)
    return sizes[sizes > 0], int(free.sum())


def plot_cluster_sizes(data: Any, *, ax: Axes | None = None, log: bool | None = None) -> Axes:
    """Distribution of cluster sizes (faces per cluster).

    Parameters
    ----------
    data : ndarray of int, or DataFrame
        Integer labels (-1 = independent), a clusters frame (``face_count``) or a figures
        frame (``figure_cluster_id``).
    ax : Axes, optional
    log : bool, optional
        Logarithmic size bins and count axis; default when the largest cluster exceeds 50.

    Returns
    -------
    Axes
        Bars count the clusters of each size (bin); the title gives the number of
        clusters, clustered faces and independent faces.

    Examples
    --------
    >>> ax = plot_cluster_sizes(np.array([0, 0, 0, 1, 1, 1, 1, -1]))
    >>> ax.get_title()
    '2 clusters, 7 faces clustered, 1 independent'
    """
    sizes, n_free = _cluster_sizes(data)
    ax = _new_ax(ax, (6.0, 4.0))
    biggest = int(sizes.max()) if len(sizes) else 1
    log = biggest > 50 if log is None else log
    if log:
        edges = np.unique(np.round(np.logspace(0, np.log10(biggest + 1), 30)).astype(int))
        edges = np.r_[edges, edges[-1] + 1] if edges[-1] <= biggest else edges
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        edges = np.arange(0.5, biggest + 1.5)  # one bar per integer size
    ax.hist(sizes, bins=np.asarray(edges).tolist(), color="tab:blue", edgecolor="white")
    ax.set_xlabel("faces per cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"{len(sizes):,} clusters, {int(sizes.sum()):,} faces clustered, {n_free:,} independent",
                 fontsize="medium")
    return ax
