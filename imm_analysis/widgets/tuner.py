"""ThresholdTuner: see what a similarity threshold, ``min_faces`` or the HD rule would do, live.

The clusterer is fitted once (kNN graph + dendrogram); every change only re-cuts the
recorded dendrogram (:meth:`FigureClusterer.recut`), so an update takes milliseconds even at
100,000 faces. The tuner is usable without a display: :meth:`ThresholdTuner.set` applies a
change and returns a summary dict; :attr:`ThresholdTuner.widget` builds the ipywidgets UI
(:mod:`imm_analysis.widgets._tuner_view`); the computations are in
:mod:`imm_analysis.widgets._tuner_calc`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from imm_analysis.quality import HDRule, hd_mask
from imm_analysis.widgets import _tuner_calc as calc
from imm_analysis.widgets._tuner_calc import HD_DEFAULTS
from imm_analysis.widgets._view import ViewOwner

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from imm_analysis.cluster.clusterer import FigureClusterer
    from imm_analysis.viz.montage import ImageSource
    from imm_analysis.widgets._tuner_view import TunerView

__all__ = ["ThresholdTuner", "HD_DEFAULTS"]


class ThresholdTuner(ViewOwner["TunerView"]):
    """Interactive threshold, ``min_faces`` and HD-rule tuning over one fitted clustering.

    Parameters
    ----------
    figures : DataFrame or None
        Figures frame row-aligned with ``embeddings`` (size, pose, ``face_quality`` drive the
        HD rule; ``file_id`` the one-image constraint). None: every face HD, its own image.
    embeddings : array-like of shape (n, d)
        Face embeddings.
    labels : array-like, optional
        True person per face; when given every update also reports
        :func:`imm_analysis.evaluate_clustering` metrics.
    images : ImageSource, optional
        Where the face images are (mapping or callable ``file_id``/``uri`` -> local path, or
        a folder), for the montages. Without it montages are drawn only when ``uri`` is a
        local path.
    clusterer : FigureClusterer, optional
        An already fitted clusterer of these faces to reuse (no refit).
    threshold : float, optional
        Starting threshold; default the clusterer's (calibrated when None).
    min_faces : int, default=3
        Starting ``min_faces``.
    hd_rule : dict, optional
        Starting HD criteria (``min_size``, ``max_pose``, ``min_quality``); IMM's by default.
    coords : ndarray of shape (n, 2), optional
        A projection to draw; default :func:`~imm_analysis.viz.projection.project_umap` on the
        clusterer's kNN graph, computed the first time the widget draws it.
    cache_dir : path, optional
        Passed to ``project_umap``.
    n_montage : int, default=3
        Largest clusters shown as montages, and merges shown on each side of the threshold.
    **clusterer_params
        Other :class:`FigureClusterer` parameters (``n_neighbors``, ``backend``,
        ``linkage_floor``: the lowest threshold the slider offers).

    Attributes
    ----------
    clusterer : FigureClusterer
        The fitted clusterer (its ``knn_`` and dendrogram are reused by every update).
    labels_ : ndarray of int64
        Cluster labels at the current parameters (-1 independent).
    summary : dict
        The last summary returned by :meth:`set`.

    Examples
    --------
    >>> from imm_analysis.synth import make_dataset
    >>> ds = make_dataset(30, seed=1)
    >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels)
    >>> summary = tuner.set(threshold=0.5)
    >>> summary["n_clusters"] == len(tuner.largest_clusters(10_000)), summary["bcubed_f"] > 0.5
    (True, True)
    """

    def __init__(
        self,
        figures: pd.DataFrame | None,
        embeddings: np.ndarray,
        labels: Any = None,
        *,
        images: ImageSource = None,
        clusterer: FigureClusterer | None = None,
        threshold: float | None = None,
        min_faces: int = 3,
        hd_rule: HDRule | Mapping[str, float] | None = None,
        coords: np.ndarray | None = None,
        cache_dir: Any = None,
        n_montage: int = 3,
        **clusterer_params: Any,
    ) -> None:
        from imm_analysis.cluster.clusterer import FigureClusterer

        if isinstance(hd_rule, HDRule):
            hd_rule = hd_rule.as_dict()
        if hd_rule is not None and not isinstance(hd_rule, Mapping):
            raise TypeError("ThresholdTuner: hd_rule must be a dict of hd_mask criteria (min_size, max_pose, min_quality)")
        unknown = set(hd_rule or {}) - set(HD_DEFAULTS)
        if unknown:
            raise TypeError(f"ThresholdTuner: unknown hd_rule keys {sorted(unknown)}; expected {list(HD_DEFAULTS)}")
        self.figures = figures
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        n = len(self.embeddings)
        if figures is not None and len(figures) != n:
            raise ValueError(f"figures has {len(figures)} rows but embeddings have {n}; they must be row-aligned")
        self.true_labels = None if labels is None else np.asarray(labels)
        if self.true_labels is not None and len(self.true_labels) != n:
            raise ValueError(f"labels has {len(self.true_labels)} entries but embeddings have {n} rows")
        self.images = images
        self.cache_dir = cache_dir
        self.n_montage = int(n_montage)
        hd = {**HD_DEFAULTS, **dict(hd_rule or {})}
        if clusterer is None:
            clusterer = FigureClusterer(
                threshold, min_faces=min_faces, hd_rule=hd if figures is not None else None, **clusterer_params
            ).fit(self.embeddings, figures)
        elif not hasattr(clusterer, "labels_"):
            clusterer = clusterer.fit(self.embeddings, figures)
        if len(clusterer.labels_) != n:
            raise ValueError(f"clusterer was fitted on {len(clusterer.labels_)} faces, embeddings have {n}")
        self.clusterer = clusterer
        #: lowest threshold the fitted dendrogram can be cut at
        self.threshold_floor = float(min(clusterer.linkage_floor, clusterer.threshold_))
        self._coords = None if coords is None else np.asarray(coords, dtype=np.float32)
        self._params: dict[str, Any] = {
            "threshold": float(clusterer.threshold_ if threshold is None else threshold),
            "min_faces": int(min_faces),
            **{k: float(v) for k, v in hd.items()},
        }
        self._hd_key: tuple | None = None
        self._hd: np.ndarray | None = None
        self._view: TunerView | None = None
        self.summary: dict[str, Any] = {}
        self.labels_ = np.empty(0, dtype=np.int64)
        self._apply()


    # ------------------------------------------------------------------ headless API
    @property
    def params(self) -> dict[str, Any]:
        """Current parameters: ``threshold``, ``min_faces``, ``min_size``, ``max_pose``, ``min_quality``.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> tuner.params
        {'threshold': 0.45, 'min_faces': 3, 'min_size': 75.0, 'max_pose': 30.0, 'min_quality': 0.8}
        """
        return dict(self._params)

    def set(self, **params: Any) -> dict[str, Any]:
        """Apply a change and return the summary.

        Parameters
        ----------
        **params
            Any of ``threshold`` (>= :attr:`threshold_floor`), ``min_faces`` (>= 1),
            ``min_size``, ``max_pose``, ``min_quality``.

        Returns
        -------
        dict
            The parameters, ``n_clusters``, ``n_clustered``, ``n_independent``, ``n_hd``,
            ``recut_ms`` (time of the re-cut itself), and with true labels the
            :func:`~imm_analysis.evaluate_clustering` metrics (``bcubed_f``, ``pairwise_f``, ...).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> s = tuner.set(threshold=0.5, min_faces=2)
        >>> s["threshold"], s["min_faces"], s["n_clustered"] + s["n_independent"] == len(ds.figures)
        (0.5, 2, True)
        """
        self._params = self._checked(params, "set")
        summary = self._apply()
        if self._view is not None:
            self._view.sync_controls()
            self.refresh()
        return summary

    def sweep(self, thresholds: Any, **params: Any) -> pd.DataFrame:
        """Summaries at several thresholds (other parameters from ``params`` or the current ones).

        Each row is what :meth:`set` would return at that threshold, computed by re-cutting the
        fitted clusterer directly: the tuner's parameters, labels, summary and display are not
        touched (the HD mask is computed once for the whole sweep).

        Returns
        -------
        DataFrame
            One row per threshold with the columns of the :meth:`set` summary.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> rows = tuner.sweep([0.4, 0.5, 0.6])
        >>> rows["threshold"].tolist(), tuner.params["threshold"]  # the tuner is unchanged
        ([0.4, 0.5, 0.6], 0.45)
        """
        if "threshold" in params:
            raise TypeError("ThresholdTuner.sweep: pass the thresholds as the first argument, not threshold=")
        base = self._checked(params, "sweep")
        hd = self._hd_for(base)
        rows = [self._evaluate(self._checked({"threshold": t}, "sweep", base=base), hd)[1] for t in thresholds]
        return pd.DataFrame(rows, columns=None if rows else list(self.summary))


    def _checked(self, params: Mapping[str, Any], caller: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``base`` (default the current parameters) updated with ``params``, validated."""
        return calc.check_params(params, self._params if base is None else base, self.threshold_floor, caller)

    def to_clusterer(self) -> FigureClusterer:
        """An unfitted :class:`FigureClusterer` with the current parameters.

        ``tuner.to_clusterer().fit(embeddings, figures).labels_`` equals :attr:`labels_`
        (cluster numbering aside). ``hd_rule`` is the current criteria when figures were given.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> est = tuner.to_clusterer()
        >>> est.get_params()["threshold"], hasattr(est, "labels_")
        (0.45, False)
        """
        from sklearn.base import clone

        est = clone(self.clusterer)
        hd = {k: self._params[k] for k in HD_DEFAULTS} if self.figures is not None else None
        return est.set_params(threshold=self._params["threshold"], min_faces=self._params["min_faces"], hd_rule=hd)

    def hd_mask(self) -> np.ndarray:
        """High-definition flags at the current criteria (all True without figures).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> hd = tuner.hd_mask()
        >>> hd.dtype, int(hd.sum()) == tuner.summary["n_hd"]
        (dtype('bool'), True)
        """
        self._hd = self._hd_for(self._params)
        self._hd_key = tuple(self._params[k] for k in HD_DEFAULTS)
        return self._hd

    def _hd_for(self, p: Mapping[str, Any]) -> np.ndarray:
        """High-definition flags at the criteria of ``p`` (the cached mask when they are the current ones)."""
        key = tuple(p[k] for k in HD_DEFAULTS)
        if self._hd is not None and key == self._hd_key:
            return self._hd
        if self.figures is None:
            return np.ones(len(self.embeddings), dtype=bool)
        return hd_mask(self.figures, **{k: p[k] for k in HD_DEFAULTS})[0]

    def _apply(self) -> dict[str, Any]:
        self.labels_, self.summary = self._evaluate(self._params, self.hd_mask())
        return dict(self.summary)

    def _evaluate(self, p: Mapping[str, Any], hd: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Labels and summary at parameters ``p`` with HD flags ``hd``; changes nothing on the tuner."""
        return calc.summarize(self.clusterer, p, hd, self.true_labels)
    # ------------------------------------------------------------------ inspection
    def largest_clusters(self, n: int | None = None) -> list[int]:
        """Labels of the ``n`` largest clusters at the current parameters, largest first.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> top = tuner.largest_clusters(2)
        >>> sizes = [int((tuner.labels_ == c).sum()) for c in top]
        >>> sizes == sorted(sizes, reverse=True)
        True
        """
        lab = self.labels_[self.labels_ >= 0]
        if not len(lab):
            return []
        counts = np.bincount(lab)
        order = np.argsort(-counts, kind="stable")
        return [int(c) for c in order[: n or self.n_montage] if counts[c] > 0]

    def closest_merges(self, n: int | None = None, *, faces_per_side: int = 3) -> pd.DataFrame:
        """The dendrogram merges nearest the threshold, on each side.

        A merge joins two groups of faces at an average-linkage similarity. Those just above
        the threshold are the weakest joins made (raising the threshold a little undoes
        them); those just below are the next joins a lower threshold would make.

        Parameters
        ----------
        n : int, optional
            Merges per side (default ``n_montage``).
        faces_per_side : int, default=3
            Face rows listed for each of the two groups (best ``face_quality`` first).

        Returns
        -------
        DataFrame
            One row per merge: ``similarity``, ``joined`` (similarity >= threshold),
            ``size_a``, ``size_b`` and ``rows_a``, ``rows_b`` (row positions of example faces).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> m = tuner.closest_merges(2)
        >>> bool((m.loc[m["joined"], "similarity"] >= 0.45).all() and (m.loc[~m["joined"], "similarity"] < 0.45).all())
        True
        """
        q = calc.face_quality(self.figures, len(self.embeddings))
        return calc.closest_merges(self.clusterer.dendrogram_, self._params["threshold"], q, n or self.n_montage, faces_per_side)

    # ------------------------------------------------------------------ figures
    @property
    def coords(self) -> np.ndarray:
        """The 2-D projection (computed on first use from the clusterer's kNN graph).

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> t2, ds = demo_tuner(flat=True)  # zero coordinates: no UMAP run
        >>> t2.coords.shape == (len(ds.figures), 2)
        True
        """
        if self._coords is None:
            from imm_analysis.viz.projection import project_umap

            self._coords = project_umap(self.embeddings, knn=self.clusterer.knn_, cache_dir=self.cache_dir)
        return self._coords

    def projection_figure(self) -> Figure:
        """The projection coloured by the current clusters.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> t2, ds = demo_tuner(flat=True)  # zero coordinates: no UMAP run
        >>> t2.projection_figure().axes[0].get_title()
        'clusters at threshold 0.450, min_faces 3'
        """
        from imm_analysis.viz.projection_plots import plot_projection

        p = self._params
        ax = plot_projection(
            self.coords,
            values=self.labels_,
            by="cluster",
            title=f"clusters at threshold {p['threshold']:.3f}, min_faces {p['min_faces']}",
        )
        return cast("Figure", ax.figure)

    def montage_figures(self) -> list[Figure]:
        """Montages of the largest clusters, then one of the merges closest to the threshold.

        Examples
        --------
        >>> from imm_analysis.widgets._demo import demo_tuner
        >>> tuner, ds = demo_tuner()
        >>> figs = tuner.montage_figures()  # without images= the faces are grey "no image" tiles
        >>> len(figs) >= 1
        True
        """
        from imm_analysis.viz.montage import plot_cluster_montage

        if self.figures is None:
            return []
        rule = {k: self._params[k] for k in HD_DEFAULTS}
        figs = [
            plot_cluster_montage(
                self.figures, c, self.images, labels=self.labels_, hd_rule=rule, max_faces=12,
                title=f"cluster {c}: {int((self.labels_ == c).sum())} faces",
            )
            for c in self.largest_clusters()
        ]
        per_side = 3
        merges = self.closest_merges(faces_per_side=per_side)
        if len(merges):
            from imm_analysis.widgets._tuner_view import merge_montage

            figs.append(merge_montage(self.figures, merges, self.images, rule, per_side))
        return figs

    # ------------------------------------------------------------------ widget (see ViewOwner)
    def _make_view(self) -> TunerView:
        from imm_analysis.widgets._tuner_view import TunerView

        return TunerView(self)
