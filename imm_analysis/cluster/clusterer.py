"""FigureClusterer: IMM-style face clustering as a scikit-learn estimator, and its function twin."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from imm_analysis.cluster.constraints import check_figures, image_keys, resolve_hd, same_image_pairs
from imm_analysis.cluster.incremental import extend_graph, incremental_labels
from imm_analysis.cluster.join import Pairs, as_pairs, concat_pairs, join_leftovers
from imm_analysis.cluster.knn import (
    KNNGraph,
    NeighborIndex,
    build_knn,
    prepare_embeddings,
    resolve_backend,
)
from imm_analysis.cluster.linkage import Dendrogram, average_linkage, cut, found_clusters
from imm_analysis.cluster.stats import labelled_frames
from imm_analysis.quality.hd import HDRule

__all__ = ["FigureClusterer", "cluster_faces"]


class FigureClusterer(ClusterMixin, BaseEstimator):
    """Cluster faces by person with the semantics of IMM's CreateFigureClusteringTask.

    A cluster forms only from at least ``min_faces`` high-definition faces, in at least
    ``min_faces`` distinct images, that belong together at ``threshold``. Faces that are not
    high-definition may join a cluster but never found one; a face that joins nothing is
    independent (label -1). Two faces of one image (for videos: one frame) never share a
    cluster. :meth:`partial_fit` places new faces without moving earlier ones.

    "Belong together" is constrained exact average linkage over a cosine kNN graph: two
    groups merge when the mean similarity of all pairs between them is at least ``threshold``.

    With ``min_faces > 1`` a second, looser level ``join_threshold_`` lets what the founding
    rule left over join (see Notes): a fragment of independent faces that belongs together
    with exactly one founded cluster at that level joins it, and a group with no founded
    cluster founds one if it holds ``min_faces`` HD faces.

    Parameters
    ----------
    threshold : float or None, default=None
        Cosine similarity at which faces belong together. None: calibrated from the data by
        :func:`imm_analysis.cluster.calibrate.calibrate_threshold` (no labels needed).
    min_faces : int, default=3
        High-definition faces (in as many images) needed to found a cluster. IMM uses 3;
        1 gives free agglomerative clustering.
    hd_rule : HDRule, dict, callable or None, default=None
        Which faces are high-definition. None: IMM's rule (:class:`imm_analysis.quality.HDRule`)
        when ``figures`` are given, every face when they are not; an :class:`HDRule`; a dict
        of its thresholds; or a callable ``figures -> bool array``.
    join_fmr_factor : float, default=10
        The join level is the similarity whose false-match rate (under the impostor model
        fitted by ``calibrate_threshold``) is this many times that of ``threshold_``: one
        decade looser. 1 disables the join level (a plain cut at ``threshold_``).
    n_neighbors : int, default=30
        Neighbours per face in the kNN graph.
    backend : {"auto", "numpy", "faiss", "faiss-flat"}, default="auto"
        Neighbour search (see :func:`imm_analysis.cluster.knn.build_knn`).
    linkage_floor : float, default=0.0
        The dendrogram is recorded down to ``min(linkage_floor, threshold_)``, so
        :meth:`recut` can go that low without a refit.
    progress : bool, default=False
        Show progress bars.
    client : dask.distributed.Client or str, optional
        Search the kNN graph on a Dask cluster (``build_knn(..., client=)``); the agglomeration
        runs here. ``X`` may be a memory-mapped ``.npy`` of unit-length float32 rows: it is not
        copied (see Notes).

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_faces,)
        Cluster per face, -1 for independent faces.
    threshold_ : float
        The threshold actually used.
    join_threshold_ : float
        The join level at ``threshold_`` (``<= threshold_``; equal when there is none).
    impostor_ : dict
        ``centre`` and ``scale_upper`` of the impostor fit used for the join level (``None``
        values when the faces are too few to fit it).
    knn_ : KNNGraph
        The neighbour graph (reuse it for UMAP or calibration).
    dendrogram_ : Dendrogram
        Every merge with its similarity; :meth:`recut` cuts it.
    hd_ : ndarray of bool
        High-definition flag per face.
    n_clusters_ : int
        Number of clusters.

    Notes
    -----
    Time: the kNN graph costs O(n^2 d) exactly (numpy, n <= 10,000) or about
    O(n^1.5 d) with FAISS IVF; the agglomeration O(E log E) per round over E <= n k edges;
    :meth:`recut` O(n log depth) with no neighbour search. Memory O(n k) besides the
    embeddings: no n x n matrix is ever built, unlike scikit-learn's agglomerative
    clustering, whose worst case is O(n^2).

    Scale (128-d float32, k=30; measured with ``benchmarks/bench_scale.py`` at 1M, projected
    beyond, see the README's Dask section). Per face: the embeddings 512 B (a memory-mapped
    ``.npy`` is not copied, also with ``client=``), the FAISS IVF-SQ8 index 136 B (on each Dask
    worker with ``client=``; IVF-PQ, 40 B, above 20M faces), the kNN graph and the agglomeration's edges about 360 B each. So
    1M faces need about 1.3 GB, 10M about 13 GB and 100M about 130 GB on the client besides the
    mapped embeddings; the kNN search, the largest cost (time grows as n^1.5), is what
    ``client=`` spreads over workers. Measured on 2 shared cores: the 1M x 128 kNN graph in
    184 s on one Dask worker, 115 s on two (148 s in one process); projected search time on 100
    one-core workers: about 1 minute at 10M faces and 30 minutes at 100M (the index is built on
    the client, not spread).

    Founding and joining. IMM lets a face that did not found a cluster join one later; the
    join level applies that to a single fit. Both levels cut the same dendrogram:

    1. at ``threshold_`` every component with ``min_faces`` HD faces founds a cluster;
    2. at ``join_threshold_`` each larger component is looked at once: holding exactly one
       founded cluster, its independent faces join that cluster; holding none, it founds a
       cluster when it has ``min_faces`` HD faces; holding two or more, nothing changes
       (two founded people are never merged at the looser level).

    Why a looser level is sound: at the founding level a false link creates a person out of
    strangers, so it needs the strict per-pair rate; at the join level a link only counts
    when it attaches leftovers to one well-founded cluster, or when it gathers ``min_faces``
    HD faces that all belong together, so it can afford a higher per-pair rate. The level is
    derived from the same impostor fit as the calibrated threshold (no per-model constant):
    the similarity with ``join_fmr_factor`` times the false-match rate of ``threshold_``
    (:func:`~imm_analysis.cluster.calibrate.looser_threshold`), which follows a threshold
    set by hand as well. The default factor, one decade, is the smallest step a rate is
    usually quoted in; on LFW (128-d) it moves 1e-5 (0.450) to 1e-4 (0.394). Constraints
    hold at both levels because a component of the constrained dendrogram never holds two
    faces of one image or a "not the same person" pair. With ``min_faces=1`` every
    component with an HD face founds at ``threshold_``, so the join level only lets
    components of non-HD faces join. :meth:`partial_fit` joins and founds at ``threshold_``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(2, 64))
    >>> x = np.repeat(centers, 4, axis=0) + 0.1 * rng.normal(size=(8, 64))
    >>> FigureClusterer(0.5, min_faces=3).fit(x).labels_.tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """

    threshold_: float
    join_threshold_: float

    _parameter_constraints: dict = {
        "threshold": [Interval(Real, -1, 1, closed="both"), None],
        "min_faces": [Interval(Integral, 1, None, closed="left")],
        "hd_rule": [HDRule, dict, callable, None],
        "join_fmr_factor": [Interval(Real, 1, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"auto", "numpy", "faiss", "faiss-flat"})],
        "linkage_floor": [Interval(Real, -1, 1, closed="both")],
        "progress": ["boolean"],
        "client": "no_validation",
    }

    def __init__(
        self,
        threshold: float | None = None,
        *,
        min_faces: int = 3,
        hd_rule: Any = None,
        join_fmr_factor: float = 10.0,
        n_neighbors: int = 30,
        backend: str = "auto",
        linkage_floor: float = 0.0,
        progress: bool = False,
        client: Any = None,
    ) -> None:
        self.threshold = threshold
        self.min_faces = min_faces
        self.hd_rule = hd_rule
        self.join_fmr_factor = join_fmr_factor
        self.n_neighbors = n_neighbors
        self.backend = backend
        self.linkage_floor = linkage_floor
        self.progress = progress
        self.client = client

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        figures: pd.DataFrame | None = None,
        knn: KNNGraph | None = None,
        cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> FigureClusterer:
        """Cluster all faces.

        Parameters
        ----------
        X : array-like of shape (n_faces, dim)
            One embedding per face (L2-normalised here if needed).
        y : None
            Ignored, as in scikit-learn's clusterers. For compatibility a DataFrame passed
            here is taken as ``figures``.
        figures : DataFrame, optional
            Figures frame row-aligned with ``X``: gives the HD flags (``width``, ``height``,
            pose, ``face_quality``) and images (``file_id``, ``frame_index`` / ``timestamp``
            for videos). None: every face HD and its own image.
        knn : KNNGraph, optional
            A precomputed graph of these embeddings (skips the neighbour search).
        cannot_link : (i, j), optional
            Extra row pairs that may never share a cluster.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> x = np.repeat(np.eye(2, 8), 3, axis=0) + 0.01 * np.arange(6)[:, None]
        >>> figs = pd.DataFrame({"file_id": list("abcdef")})
        >>> FigureClusterer(0.5, hd_rule=lambda f: np.ones(len(f), bool)).fit(x, figures=figs).labels_.tolist()
        [0, 0, 0, 1, 1, 1]
        """
        figures = _figures_from_y(y, figures)
        self._validate_params()
        # finiteness is checked by prepare_embeddings, in blocks, naming the first bad row
        x = prepare_embeddings(
            validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=1, ensure_all_finite=False)
        )
        n = len(x)
        if self.threshold is None and n < 3:
            raise ValueError(f"threshold=None calibrates on the faces, but n_samples = {n} (at least 3 needed); "
                             "pass a threshold")
        if x.shape[1] == 1:
            raise ValueError("n_features = 1: every cosine similarity of 1-d embeddings is +1 or -1; "
                             "pass face embeddings (many features)")
        self._check_figures(figures, n)
        if knn is None:
            knn, index = cast(
                "tuple[KNNGraph, NeighborIndex]",
                build_knn(x, self.n_neighbors, backend=self.backend, progress=self.progress, return_index=True,
                          client=self.client),
            )
        else:
            if knn.n_samples != n:
                raise ValueError(f"knn has {knn.n_samples} rows but embeddings have {n}")
            index = NeighborIndex(x, backend=resolve_backend(self.backend, n))
        self._calibrate(x, knn)
        self.knn_ = knn
        self._index = index
        self.hd_ = resolve_hd(figures, n, self.hd_rule)
        self._image_keys = pd.Index(image_keys(figures, n) if figures is not None else np.arange(n))
        self._image_codes = np.arange(n, dtype=np.int64) if figures is None else self._codes(self._image_keys)
        self._cannot_link = as_pairs(cannot_link)
        self._min_sim = min(float(self.linkage_floor), self.join_threshold_)
        self._rebuild_dendrogram()
        self.labels_ = self._cut(self.threshold_, self.min_faces, self.hd_)
        self.n_clusters_ = int(self.labels_.max()) + 1 if n else 0
        self._stale = False
        return self

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit and return ``labels_`` (``y`` is ignored, as in scikit-learn; ``figures=`` etc. as :meth:`fit`).

        Examples
        --------
        >>> import numpy as np
        >>> x = np.repeat(np.eye(2, 8), 3, axis=0)
        >>> FigureClusterer(0.5).fit_predict(x).tolist()
        [0, 0, 0, 1, 1, 1]
        """
        return self.fit(X, y, **kwargs).labels_

    def partial_fit(
        self,
        X: Any,
        y: Any = None,
        *,
        figures: pd.DataFrame | None = None,
        locked: np.ndarray | None = None,
        cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
        earlier_labels: np.ndarray | None = None,
    ) -> FigureClusterer:
        """Place faces added since the last run, keeping every earlier assignment.

        New faces join an existing cluster (any face may join) or found a new one together
        with earlier independent faces (HD founding rule); earlier faces never move, so
        labels of earlier clustered rows are unchanged and new clusters get new labels (in
        the example the two earlier independent faces found cluster 1 with two new ones). A call with
        no new faces changes nothing. The first call on an unfitted estimator is :meth:`fit`.
        This is the one incremental path: :meth:`ClusterState.update
        <imm_analysis.cluster.ClusterState.update>` calls it on the state's estimator.

        Parameters
        ----------
        X : array-like of shape (m, dim)
            Embeddings of the new faces.
        y : None
            Ignored (a DataFrame here is taken as ``figures``, for compatibility).
        figures : DataFrame, optional
            Figures of the new faces (same role as in :meth:`fit`). Pass figures on every call
            or on none.
        locked : ndarray of bool, shape (n_earlier,), optional
            Earlier independent faces that must stay independent (used by manual edits).
        cannot_link : (i, j), optional
            Extra row pairs (indices over all rows) that may never share a cluster; they are
            remembered for later calls.
        earlier_labels : ndarray of int, shape (n_earlier,), optional
            The earlier faces' labels as they stand now (after manual edits: -1 independent or
            unavailable, ``0..``: clusters); default ``labels_``.

        Returns
        -------
        self

        Notes
        -----
        Cost: a neighbour search of the m new faces against all n faces (O(m n d) exact, far
        less with FAISS) and an agglomeration of at most m (k + 1) faces; about 1-3% of a full
        fit for m = 1% of n. After a partial fit, :meth:`recut` rebuilds the dendrogram from
        ``knn_`` once (a fresh clustering of all faces, no neighbour search).

        Examples
        --------
        >>> import numpy as np
        >>> x = np.repeat(np.eye(2, 8), 4, axis=0) + 0.01 * np.arange(8)[:, None]
        >>> est = FigureClusterer(0.5).fit(x[[0, 1, 2, 4, 5]])
        >>> est.labels_.tolist()
        [0, 0, 0, -1, -1]
        >>> est.partial_fit(x[[3, 6, 7]]).labels_.tolist()
        [0, 0, 0, 1, 1, 0, 1, 1]
        """
        figures = _figures_from_y(y, figures)
        if not hasattr(self, "labels_"):
            return self.fit(X, figures=figures, cannot_link=cannot_link)
        q = prepare_embeddings(
            validate_data(
                self, X, reset=False, dtype=[np.float32, np.float64], ensure_min_samples=0, ensure_all_finite=False
            ),
            name="new_embeddings",
        )
        m = len(q)
        n_old = len(self.labels_)
        if earlier_labels is not None:
            earlier = np.asarray(earlier_labels, dtype=np.int64)
            if earlier.shape != (n_old,):
                raise ValueError(f"earlier_labels has shape {earlier.shape}, expected ({n_old},)")
            self.labels_ = earlier
        if cannot_link is not None:
            self._cannot_link = concat_pairs(self._cannot_link, as_pairs(cannot_link))
        if m == 0:
            return self
        if q.shape[1] != self._index.embeddings.shape[1]:
            raise ValueError(f"new_embeddings have dim {q.shape[1]}, the fitted faces {self._index.embeddings.shape[1]}")
        self._check_figures(figures, m, name="new_figures")
        self.knn_ = extend_graph(self._index, self.knn_, q, progress=self.progress)
        self.hd_ = np.concatenate([self.hd_, resolve_hd(figures, m, self.hd_rule)])
        keys = image_keys(figures, m) if figures is not None else None
        if keys is None:
            keys = np.array([f"#row{i}" for i in range(n_old, n_old + m)], dtype=object)
        self._image_keys = self._image_keys.append(pd.Index(keys))
        self._image_codes = self._codes(self._image_keys)
        self.labels_ = incremental_labels(
            self.labels_,
            self.knn_,
            self._index.embeddings,
            self.hd_,
            self._image_codes,
            self.threshold_,
            self.min_faces,
            locked=locked,
            cannot_link=self._cannot_link,
        )
        self.n_clusters_ = int(self.labels_.max()) + 1 if len(self.labels_) else 0
        self._stale = True
        return self

    @classmethod
    def _restore(
        cls,
        params: dict[str, Any],
        embeddings: np.ndarray,
        *,
        knn: KNNGraph,
        hd: np.ndarray,
        image_keys: np.ndarray,
        labels: np.ndarray,
        cannot_link: Pairs | None = None,
    ) -> FigureClusterer:
        """A fitted estimator from saved parts (a loaded :class:`ClusterState`), ready for :meth:`partial_fit`.

        ``params`` are the estimator's parameters, ``threshold`` the one used. No search and
        no agglomeration run; the join level is not restored (``join_threshold_ == threshold_``).
        """
        est = cls(**{k: v for k, v in params.items() if k in cls._parameter_constraints})
        x = prepare_embeddings(embeddings)
        est.n_features_in_ = x.shape[1]
        est.threshold_ = float(params["threshold"])
        est.impostor_ = {"centre": None, "scale_upper": None}
        est.join_threshold_ = est.threshold_
        est._min_sim = min(float(est.linkage_floor), est.threshold_)
        est.knn_ = knn
        est._index = NeighborIndex(x, backend=resolve_backend(est.backend, len(x)))
        est.hd_ = np.asarray(hd, dtype=bool)
        est._image_keys = pd.Index(image_keys)
        est._image_codes = est._codes(est._image_keys)
        est._cannot_link = cannot_link
        est.labels_ = np.asarray(labels, dtype=np.int64)
        est.n_clusters_ = int(est.labels_.max()) + 1 if len(est.labels_) else 0
        est._stale = True
        return est

    # ------------------------------------------------------------------ re-cutting
    def recut(self, threshold: float | None = None, *, min_faces: int | None = None, hd: np.ndarray | None = None) -> np.ndarray:
        """Labels of the fitted faces at another threshold, ``min_faces`` or HD mask.

        No neighbour search and no agglomeration: the recorded dendrogram is cut again, so
        this takes milliseconds (under 100 ms at 100,000 faces) and gives the labels a fresh
        :meth:`fit` with those parameters would give. The fitted attributes are not changed.

        Parameters
        ----------
        threshold : float, optional
            Default ``threshold_``. Must be >= the dendrogram's floor
            (``min(linkage_floor, join_threshold_)`` at fit time). The join level follows it
            (:meth:`join_level`); below the floor it is clipped to the floor.
        min_faces : int, optional
            Default ``min_faces``.
        hd : ndarray of bool, shape (n_faces,), optional
            High-definition flags; default ``hd_``.

        Returns
        -------
        labels : ndarray of int64
        """
        check_is_fitted(self, "labels_")
        t = self.threshold_ if threshold is None else float(threshold)
        mf = self.min_faces if min_faces is None else int(min_faces)
        if mf < 1:
            raise ValueError(f"min_faces must be >= 1, got {min_faces}")
        if t < self._min_sim - 1e-12:
            raise ValueError(
                f"threshold {t} is below the dendrogram floor {self._min_sim}; refit with linkage_floor <= {t}"
            )
        h = self.hd_ if hd is None else np.asarray(hd, dtype=bool)
        if h.shape != self.hd_.shape:
            raise ValueError(f"hd has shape {h.shape}, expected {self.hd_.shape}")
        if self._stale:
            self._rebuild_dendrogram()
            self._stale = False
        return self._cut(t, mf, h)

    # ------------------------------------------------------------------ internals
    @property
    def dendrogram_(self) -> Dendrogram:
        check_is_fitted(self, "labels_")
        if self._stale:
            self._rebuild_dendrogram()
            self._stale = False
        return self._dendrogram

    @staticmethod
    def _codes(keys: pd.Index) -> np.ndarray:
        return pd.factorize(keys)[0].astype(np.int64)

    @staticmethod
    def _check_figures(figures: pd.DataFrame | None, n: int, name: str = "figures") -> None:
        if figures is None:
            return
        if not isinstance(figures, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame or None, got {type(figures).__name__}")
        if len(figures) != n:
            raise ValueError(f"{name} has {len(figures)} rows but the embeddings have {n}; they must be row-aligned")

    def _rebuild_dendrogram(self) -> None:
        n = self.knn_.n_samples
        ci, cj = same_image_pairs(self._image_codes)
        extra = self._cannot_link
        if extra is not None:
            ci, cj = np.concatenate([ci, extra[0]]), np.concatenate([cj, extra[1]])
        self._dendrogram = average_linkage(
            n,
            self.knn_.edges(self._min_sim),
            embeddings=self._index.embeddings,
            cannot_link=(ci, cj),
            min_similarity=self._min_sim,
            progress=self.progress,
        )
        self._parent = self._dendrogram.parent

    def join_level(self, threshold: float | None = None) -> float:
        """The join level used with ``threshold`` (default ``threshold_``); see Notes."""
        check_is_fitted(self, "labels_")
        return self._join_level(self.threshold_ if threshold is None else float(threshold))

    def _join_level(self, t: float) -> float:
        centre, scale = self.impostor_["centre"], self.impostor_["scale_upper"]
        if centre is None or scale is None or self.join_fmr_factor == 1:
            return t
        from imm_analysis.cluster.calibrate import looser_threshold

        return max(looser_threshold(t, centre, float(scale), self.join_fmr_factor), min(self._min_sim, t))

    def _calibrate(self, x: np.ndarray, knn: KNNGraph) -> None:
        """Set ``threshold_``, the impostor fit and ``join_threshold_``."""
        from imm_analysis.cluster.calibrate import calibrate_threshold

        details: dict[str, Any] | None = None
        if self.threshold is None:
            self.threshold_, details = calibrate_threshold(x, knn=knn, return_details=True)
            self.threshold_ = float(self.threshold_)
        else:
            self.threshold_ = float(self.threshold)
            if self.join_fmr_factor > 1:
                try:
                    with warnings.catch_warnings():  # the user chose the threshold: no advice on it
                        warnings.simplefilter("ignore", UserWarning)
                        _, details = calibrate_threshold(x, return_details=True)
                except ValueError:  # too few faces or no spread: no impostor model, no join level
                    details = None
        self.impostor_ = {
            "centre": None if details is None else float(details["centre"]),
            "scale_upper": None if details is None else float(details["scale_upper"]),
        }
        self._min_sim = -np.inf  # no floor yet: the dendrogram is built down to the join level
        self.join_threshold_ = self._join_level(self.threshold_)

    def _cut(self, threshold: float, min_faces: int, hd: np.ndarray) -> np.ndarray:
        comp = cut(self._dendrogram, threshold, self._parent)
        labels = found_clusters(comp, hd, min_faces)
        join = self._join_level(threshold)
        if min_faces > 1 and join < threshold:
            labels = join_leftovers(labels, cut(self._dendrogram, join, self._parent), hd, min_faces)
        return labels

    def __sklearn_tags__(self):  # pragma: no cover - scikit-learn metadata
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _figures_from_y(y: Any, figures: pd.DataFrame | None) -> pd.DataFrame | None:
    """``figures``, or ``y`` when it is a DataFrame (the figures were passed positionally)."""
    if isinstance(y, pd.DataFrame):
        if figures is not None:
            raise TypeError("figures given twice (as y and as figures=)")
        return y
    return figures


def cluster_faces(
    figures: pd.DataFrame,
    embeddings: np.ndarray,
    *,
    seed: int | None = None,
    **params: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster faces and return IMM-shaped frames (function twin of :class:`FigureClusterer`).

    Parameters
    ----------
    figures : DataFrame
        Figures frame (``load_figures``, ``embed_images(...).figures``), row-aligned with
        ``embeddings``.
    embeddings : array-like of shape (n_faces, dim)
    seed : int, optional
        Seed for the ``Cluster-<uuid4>`` ids (random when None).
    **params
        :class:`FigureClusterer` parameters (``threshold``, ``min_faces``, ``hd_rule``, ...).
        For edits and incremental updates use :meth:`ClusterState.from_figures
        <imm_analysis.cluster.ClusterState.from_figures>`, which gives the same frames.

    Returns
    -------
    figures : DataFrame
        A copy with ``figure_cluster_id`` (``Cluster-<uuid4>`` or
        ``figure-cluster-id-independent``) and ``cluster_state`` filled in.
    clusters : DataFrame
        One row per cluster with the columns of ``load_clusters`` (counts, ages, gender,
        cover, times).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(rng.normal(size=(2, 32)), 3, axis=0) + 0.05 * rng.normal(size=(6, 32))
    >>> figs = pd.DataFrame({"figure_id": [f"f{i}" for i in range(6)], "file_id": [f"img{i}" for i in range(6)]})
    >>> out, clusters = cluster_faces(figs, x, threshold=0.5, hd_rule=lambda f: np.ones(len(f), bool), seed=0)
    >>> len(clusters), clusters["face_count"].tolist()
    (2, [3, 3])
    """
    x = prepare_embeddings(embeddings)
    figures = check_figures(figures, len(x))
    est = FigureClusterer(**params).fit(x, figures=figures)
    rng = np.random.default_rng(seed) if seed is not None else None
    return labelled_frames(figures, est.labels_, est.hd_, rng=rng)
