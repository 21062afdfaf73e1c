"""ThresholdTuner: see what a similarity threshold, ``min_faces`` or the HD rule would do, live.

The clusterer is fitted once (kNN graph + dendrogram); every change only re-cuts the
recorded dendrogram (:meth:`FigureClusterer.recut`), so an update takes milliseconds even at
100,000 faces. The tuner is usable without a display: :meth:`ThresholdTuner.set` applies a
change and returns a summary dict; :attr:`ThresholdTuner.widget` builds the ipywidgets UI.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from imm_analysis._optional import require
from imm_analysis.quality import HDRule, hd_mask

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets
    from matplotlib.figure import Figure

    from imm_analysis.cluster.clusterer import FigureClusterer
    from imm_analysis.viz.montage import ImageSource

__all__ = ["ThresholdTuner", "HD_DEFAULTS"]

#: IMM's high-definition rule (see :func:`imm_analysis.quality.hd_mask`).
HD_DEFAULTS: dict[str, float] = HDRule().as_dict()
_PARAMS = ("threshold", "min_faces", *HD_DEFAULTS)


class ThresholdTuner:
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
        self._widget: ipywidgets.VBox | None = None
        self._controls: dict[str, Any] = {}
        self._syncing = False
        self.summary: dict[str, Any] = {}
        self.labels_ = np.empty(0, dtype=np.int64)
        self._apply()

    # ------------------------------------------------------------------ headless API
    @property
    def params(self) -> dict[str, Any]:
        """Current parameters: ``threshold``, ``min_faces``, ``min_size``, ``max_pose``, ``min_quality``.

        Examples
        --------
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
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
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> s = tuner.set(threshold=0.5, min_faces=2)
        >>> s["threshold"], s["min_faces"], s["n_clustered"] + s["n_independent"] == len(ds.figures)
        (0.5, 2, True)
        """
        self._params = self._checked(params, "set")
        summary = self._apply()
        if self._widget is not None:
            self._sync_controls()
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
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
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
        unknown = set(params) - set(_PARAMS)
        if unknown:
            raise TypeError(f"ThresholdTuner.{caller}: unknown parameter(s) {sorted(unknown)}; expected {list(_PARAMS)}")
        new = dict(self._params if base is None else base)
        for k, v in params.items():
            new[k] = int(v) if k == "min_faces" else float(v)
        if new["threshold"] < self.threshold_floor - 1e-12 or new["threshold"] > 1.0:
            raise ValueError(
                f"threshold {new['threshold']} is outside [{self.threshold_floor}, 1]; fit with a lower linkage_floor"
            )
        if new["min_faces"] < 1:
            raise ValueError(f"min_faces must be >= 1, got {new['min_faces']}")
        return new

    def to_clusterer(self) -> FigureClusterer:
        """An unfitted :class:`FigureClusterer` with the current parameters.

        ``tuner.to_clusterer().fit(embeddings, figures).labels_`` equals :attr:`labels_`
        (cluster numbering aside). ``hd_rule`` is the current criteria when figures were given.

        Examples
        --------
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
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
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
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
        t0 = time.perf_counter()
        labels = self.clusterer.recut(p["threshold"], min_faces=p["min_faces"], hd=hd)
        recut_ms = (time.perf_counter() - t0) * 1e3
        clustered = int((labels >= 0).sum())
        summary: dict[str, Any] = {
            **p,
            "n_clusters": int(len(np.unique(labels[labels >= 0]))),
            "n_clustered": clustered,
            "n_independent": int(len(labels) - clustered),
            "n_hd": int(hd.sum()),
            "recut_ms": recut_ms,
        }
        if self.true_labels is not None:
            from imm_analysis.evaluate import evaluate_clustering

            metrics = evaluate_clustering(self.true_labels, labels)
            summary.update({k: v for k, v in metrics.items() if k not in ("n_clusters", "n_independent")})
        return labels, summary

    # ------------------------------------------------------------------ inspection
    def largest_clusters(self, n: int | None = None) -> list[int]:
        """Labels of the ``n`` largest clusters at the current parameters, largest first.

        Examples
        --------
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
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
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> m = tuner.closest_merges(2)
        >>> bool((m.loc[m["joined"], "similarity"] >= 0.45).all() and (m.loc[~m["joined"], "similarity"] < 0.45).all())
        True
        """
        n = n or self.n_montage
        d = self.clusterer.dendrogram_
        t = self._params["threshold"]
        sim = np.asarray(d.height, dtype=float)
        ok = np.isfinite(sim)
        above = np.flatnonzero(ok & (sim >= t))
        below = np.flatnonzero(ok & (sim < t))
        pick = np.r_[above[np.argsort(sim[above], kind="stable")][:n], below[np.argsort(-sim[below], kind="stable")][:n]]
        q = self._quality()
        rows = []
        for m in pick.astype(np.int64):
            a = self._leaves(int(d.left[m]))
            b = self._leaves(int(d.right[m]))
            rows.append(
                {
                    "similarity": float(sim[m]),
                    "joined": bool(sim[m] >= t),
                    "size_a": len(a),
                    "size_b": len(b),
                    "rows_a": a[np.argsort(-q[a], kind="stable")][:faces_per_side],
                    "rows_b": b[np.argsort(-q[b], kind="stable")][:faces_per_side],
                }
            )
        return pd.DataFrame(rows, columns=["similarity", "joined", "size_a", "size_b", "rows_a", "rows_b"])

    def _quality(self) -> np.ndarray:
        if self.figures is None or "face_quality" not in self.figures.columns:
            return np.zeros(len(self.embeddings))
        q = pd.to_numeric(self.figures["face_quality"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.nan_to_num(q, nan=-1.0)

    def _leaves(self, node: int) -> np.ndarray:
        d = self.clusterer.dendrogram_
        out, stack = [], [node]
        while stack:
            v = stack.pop()
            if v < d.n:
                out.append(v)
            else:
                stack.extend((int(d.left[v - d.n]), int(d.right[v - d.n])))
        return np.asarray(sorted(out), dtype=np.int64)

    # ------------------------------------------------------------------ figures
    @property
    def coords(self) -> np.ndarray:
        """The 2-D projection (computed on first use from the clusterer's kNN graph).

        Examples
        --------
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> import numpy as np
        >>> t2 = ThresholdTuner(ds.figures, ds.embeddings, clusterer=tuner.clusterer, coords=np.zeros((len(ds.figures), 2)))
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
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> import numpy as np
        >>> t2 = ThresholdTuner(ds.figures, ds.embeddings, clusterer=tuner.clusterer, coords=np.zeros((len(ds.figures), 2)))
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
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> figs = tuner.montage_figures()  # without images= the faces are grey "no image" tiles
        >>> len(figs) >= 1
        True
        """
        from imm_analysis.viz.montage import plot_cluster_montage, plot_face_montage

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
            # one row per merge: up to three faces of group A, then up to three of group B
            rows, caps = [], []
            for r in merges.itertuples():
                tag = "joined" if r.joined else "apart"
                for side, ids, size in (("A", r.rows_a, r.size_a), ("B", r.rows_b, r.size_b)):
                    members = np.asarray(ids)
                    for j in range(per_side):
                        rows.append(int(members[j]) if j < len(members) else -1)
                        caps.append(f"{side} ({size}) {r.similarity:.3f} {tag}" if j == 0 else side)
            figs.append(
                plot_face_montage(
                    self.figures, self.images, rows=np.asarray(rows), captions=caps, hd_rule=rule,
                    ncols=2 * per_side, max_faces=len(rows),
                    title="merges closest to the threshold: group A | group B (size), linkage similarity",
                )
            )
        return figs

    def _images_available(self) -> bool:
        if self.figures is None or not len(self.figures):
            return False
        if self.images is not None:
            return True
        from imm_analysis.viz.montage import _lookup

        row = self.figures.iloc[0]
        return _lookup(None, [row.get("uri")]) is not None

    # ------------------------------------------------------------------ widget
    @property
    def widget(self) -> ipywidgets.VBox:
        """The ipywidgets UI (built on first access; works without a display).

        Examples
        --------
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> import numpy as np
        >>> t2 = ThresholdTuner(ds.figures, ds.embeddings, clusterer=tuner.clusterer, coords=np.zeros((len(ds.figures), 2)))
        >>> type(t2.widget).__name__
        'VBox'
        """
        if self._widget is None:
            self._widget = self._build()
            self.refresh()
        return self._widget

    def _build(self) -> ipywidgets.VBox:
        w = require("ipywidgets", purpose="ThresholdTuner.widget")

        p = self._params
        style = {"description_width": "9em"}
        layout = w.Layout(width="32em")
        c = {
            "threshold": w.FloatSlider(value=p["threshold"], min=round(max(self.threshold_floor, -1.0), 3), max=1.0,
                                       step=0.005, readout_format=".3f", description="similarity threshold"),
            "min_faces": w.IntSlider(value=p["min_faces"], min=1, max=max(10, p["min_faces"]), description="min_faces"),
            "min_size": w.IntSlider(value=int(p["min_size"]), min=0, max=max(300, int(p["min_size"])),
                                    description="HD min size (px)"),
            "max_pose": w.FloatSlider(value=p["max_pose"], min=0, max=90, step=1, description="HD max |pose| (deg)"),
            "min_quality": w.FloatSlider(value=p["min_quality"], min=0, max=1, step=0.01, description="HD min quality"),
        }
        for name, ctl in c.items():
            ctl.continuous_update = False
            ctl.style = style
            ctl.layout = layout
            ctl.observe(self._on_slider, names="value")
            ctl._tuner_param = name
        if self.figures is None:
            for k in HD_DEFAULTS:
                c[k].disabled = True
        self._controls = c
        self._summary_html = w.HTML()
        self._projection_img = w.Image(format="png", layout=w.Layout(max_width="560px"))
        self._montage_box = w.VBox()
        controls = w.VBox(list(c.values()) + [self._summary_html])
        return w.VBox([w.HBox([controls, self._projection_img]), self._montage_box])

    def _on_slider(self, change: dict) -> None:
        if self._syncing:
            return
        name = change["owner"]._tuner_param
        self.set(**{name: change["new"]})

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for k, ctl in self._controls.items():
                v = self._params[k]
                if ctl.value != v:
                    ctl.value = v
        finally:
            self._syncing = False

    def refresh(self) -> None:
        """Redraw the summary, the projection and the montages from the current state.

        Examples
        --------
        >>> from imm_analysis.synth import make_dataset
        >>> ds = make_dataset(8, seed=1)
        >>> tuner = ThresholdTuner(ds.figures, ds.embeddings, ds.labels, threshold=0.45)
        >>> tuner.refresh()  # headless, before the widget is built: nothing to redraw
        """
        if self._widget is None:
            return
        w = require("ipywidgets", purpose="ThresholdTuner.widget")

        from imm_analysis.widgets._render import figure_png, html_table

        s = self.summary
        rows: dict[str, Any] = {
            "clusters": s["n_clusters"],
            "clustered faces": s["n_clustered"],
            "independent faces": s["n_independent"],
            "high-definition faces": s["n_hd"],
            "re-cut (ms)": s["recut_ms"],
        }
        for k in ("bcubed_precision", "bcubed_recall", "bcubed_f", "pairwise_f", "nmi", "ari"):
            if k in s:
                rows[k] = float(s[k])
        self._summary_html.value = html_table(rows, title="at these settings")
        self._projection_img.value = figure_png(self.projection_figure())
        if self._images_available():
            self._montage_box.children = [
                w.Image(value=figure_png(f), format="png") for f in self.montage_figures()
            ]
        else:
            self._montage_box.children = [w.HTML("<i>pass images= to see the faces of clusters and merges</i>")]
