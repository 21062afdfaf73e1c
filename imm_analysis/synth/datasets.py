"""Synthetic retail IMM datasets with ground truth: people, faces, files, figures.

The generator imitates what a store-camera dataset indexed by Alibaba Cloud IMM looks like:

* regular customers seen several times (several visits, several cameras), strangers seen once;
* still images from 1920x1080 cameras, some with several faces, and some short videos whose
  faces carry a ``timestamp`` (seconds from the start of the clip);
* a mix of high-definition and poor faces whose size, head pose, ``face_quality`` and
  ``sharpness`` agree with the reason they fail IMM's high-definition rule;
* capture times inside store opening hours (10:00-22:00, ``+08:00``) over several days, URIs
  like ``oss://retail-bucket/store-3/cam-1/2026-01-05/103512-1a2b3c4d.jpg``;
* IMM-style identifiers (:mod:`imm_analysis.synth.imm_pages`) and embeddings
  (:mod:`imm_analysis.synth.embeddings`).

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imm_analysis.cluster.stats import cluster_table
from imm_analysis.quality import hd_mask
from imm_analysis.schema import CLUSTER_INDEPENDENT, coerce_frame, empty_frame
from imm_analysis.synth.draws import (
    IMAGE_SIZE,
    OPENING_HOURS,
    _face_quality,
    _finish_figures,
    _make_faces,
    _make_figures,
    _make_files,
    _make_people,
)
from imm_analysis.synth.embeddings import make_embeddings
from imm_analysis.synth.imm_pages import (
    _cluster_pages,
    _cover_files,
    _file_pages,
    _file_records,
    _uuid4s,
)

__all__ = ["SynthDataset", "make_dataset", "OPENING_HOURS", "IMAGE_SIZE"]



@dataclass
class SynthDataset:
    """A synthetic IMM dataset with its ground truth (made by :func:`make_dataset`).

    Attributes
    ----------
    files : DataFrame
        The files frame (``load_files`` columns), one row per image or video, by capture time.
    figures : DataFrame
        The figures frame before clustering: every ``figure_cluster_id`` is
        ``figure-cluster-id-unavailable``. Rows are grouped by file in the order of ``files``,
        which is also the row order ``load_figures`` gives on the pages written by
        :meth:`to_imm_pages`. Video faces have a ``timestamp`` (seconds into the clip).
    embeddings : ndarray of float32, shape (n_faces, dim)
        L2-normalised, row-aligned with ``figures``.
    labels : ndarray of int64, shape (n_faces,)
        The true person of each face (strangers have their own ids too).
    people : DataFrame
        One row per person: ``person_id, stranger, gender, age, home_store, faces``.
    seed : int

    Examples
    --------
    >>> ds = make_dataset(6, seed=2)
    >>> len(ds) == len(ds.figures) == len(ds.embeddings), ds.embeddings.dtype
    (True, dtype('float32'))
    """

    files: pd.DataFrame
    figures: pd.DataFrame
    embeddings: np.ndarray
    labels: np.ndarray
    people: pd.DataFrame
    seed: int = 0
    project_name: str = "retail-project"
    dataset_name: str = "store-cameras"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.figures)

    def truth(self) -> pd.DataFrame:
        """``figure_id, person_id`` for every face, row-aligned with ``figures``.

        Examples
        --------
        >>> ds = make_dataset(6, seed=2)
        >>> t = ds.truth()
        >>> list(t.columns), t["figure_id"].tolist() == ds.figures["figure_id"].tolist()
        (['figure_id', 'person_id'], True)
        """
        return pd.DataFrame({"figure_id": self.figures["figure_id"].to_numpy(), "person_id": self.labels})

    def clustered(self, labels: np.ndarray | None = None, *, min_faces: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The IMM view after a clustering run: figures with cluster ids, and the clusters frame.

        Parameters
        ----------
        labels : array-like of int, optional
            None: cluster by the true identities with IMM's rule: a person becomes a cluster
            when they have at least ``min_faces`` high-definition faces in distinct files; then
            all their faces (high-definition or not) join it; everyone else is independent.
            Given (for example a clusterer's ``labels_``, row-aligned with ``figures``): each
            label >= 0 becomes one cluster as given, -1 is independent.
        min_faces : int, default=3
            Only used when ``labels`` is None.

        Returns
        -------
        figures : DataFrame
            ``figure_cluster_id``, ``cluster_state`` and ``figure_cluster_confidence`` filled.
        clusters : DataFrame
            One row per cluster (``load_clusters`` columns), largest first.

        Examples
        --------
        >>> ds = make_dataset(6, seed=2)
        >>> figures, clusters = ds.clustered()
        >>> set(figures["figure_cluster_id"].dropna()) - {"figure-cluster-id-independent"} == set(clusters["cluster_id"])
        True
        """
        key = ("clustered", None if labels is None else np.asarray(labels).tobytes(), min_faces)
        if key not in self._cache:
            self._cache[key] = self._cluster(labels, min_faces)
        figures, clusters, _ = self._cache[key]
        return figures.copy(), clusters.copy()

    def _cluster(self, labels: np.ndarray | None, min_faces: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        figs = self.figures.copy()
        n = len(figs)
        if labels is None:
            lab = self.labels.astype(np.int64)
            is_hd = hd_mask(figs)[0]
            hd_files = pd.DataFrame({"p": lab[is_hd], "f": figs["file_id"].to_numpy()[is_hd]})
            n_files = hd_files.drop_duplicates().groupby("p").size()
            keep = n_files.index[n_files >= min_faces].to_numpy()
            lab = np.where(np.isin(lab, keep), lab, -1)
        else:
            lab = np.asarray(labels).astype(np.int64)
            if lab.shape != (n,):
                raise ValueError(f"labels must have one entry per face ({n}), got shape {lab.shape}")
        groups = np.unique(lab[lab >= 0])
        rng = np.random.default_rng([self.seed, 7])
        ids = np.array(_uuid4s(rng, len(groups)), dtype=object)
        ids = np.array([f"Cluster-{u}" for u in ids], dtype=object)
        cid = np.full(n, CLUSTER_INDEPENDENT, dtype=object)
        pos = np.searchsorted(groups, lab)
        member = lab >= 0
        cid[member] = ids[pos[member]]
        is_hd = hd_mask(figs)[0]
        conf = np.where(is_hd, rng.uniform(0.9, 1.0, n), rng.uniform(0.55, 0.9, n)).round(3)
        figs["figure_cluster_id"] = cid
        figs["figure_cluster_confidence"] = np.where(member, conf, np.nan)
        figs = _finish_figures(figs)

        if not len(groups):
            return figs, empty_frame("clusters"), {}
        run_time = self.files["create_time"].max() + pd.Timedelta(minutes=3, microseconds=rng.integers(0, 10**6))
        # counts, ages and gender as the local clusterer reports them; the cover and the times are synth's own
        stats = cluster_table(figs, is_hd, now=run_time, project_name=self.project_name, dataset_name=self.dataset_name)
        m = figs.loc[member, ["file_id", "uri", "figure_id", "produce_time"]]
        m = m.assign(_cid=cid[member], _hd=is_hd[member], _q=figs["face_quality"].to_numpy()[member])
        # the first high-definition face of the best face_quality, in file order (no area tie-break)
        cover = m.sort_values(["_hd", "_q"], ascending=False, kind="stable").drop_duplicates("_cid").set_index("_cid")
        cover = cover.reindex(stats["cluster_id"].to_numpy())
        first_seen = m.groupby("_cid")["produce_time"].min().reindex(stats["cluster_id"].to_numpy())
        clusters = stats.assign(
            name=np.full(len(stats), None, dtype=object),
            average_age=stats["average_age"].round(3),
            cover_file_id=cover["file_id"].to_numpy(),
            cover_uri=cover["uri"].to_numpy(),
            create_time=np.minimum(first_seen + pd.Timedelta(hours=1), run_time).to_numpy(),
            owner_id="synthetic",
        )
        covers = dict(zip(stats["cluster_id"], cover["figure_id"], strict=True))
        return figs, coerce_frame(clusters, "clusters"), covers

    def to_imm_pages(self, clustered: bool = True, page_size: int = 100) -> dict[str, list[dict]]:
        """IMM JSON responses, paginated like the API returns them.

        Parameters
        ----------
        clustered : bool, default=True
            True: after a clustering run (:meth:`clustered` with the true identities).
            False: before any run: every ``FigureClusterId`` is
            ``figure-cluster-id-unavailable`` and QueryFigureClusters returns no cluster.
        page_size : int, default=100
            Clusters per QueryFigureClusters page and files per SimpleQuery page.

        Returns
        -------
        dict
            ``{"clusters": [QueryFigureClusters pages], "files": [SimpleQuery pages]}``, each
            page with a ``NextToken`` (empty on the last). Loading the ``files`` pages with
            ``load_figures`` gives the faces in the row order of ``figures``/``embeddings``.
            The records do not depend on ``page_size``: only how they are split does.

        Notes
        -----
        Every file, face and cluster is converted to JSON once, then the records are sliced
        into pages: time is linear in the number of faces whatever the page size (about 1 s
        for 20,000 faces on 2 cores). Each cluster's ``Cover`` is its own copy.

        Examples
        --------
        >>> ds = make_dataset(6, seed=2)
        >>> pages = ds.to_imm_pages(page_size=50)
        >>> sorted(pages), sum(len(p["Files"]) for p in pages["files"]) == len(ds.files)
        (['clusters', 'files'], True)
        """
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        if clustered:
            figures, clusters = self.clustered()
            covers = self._cache[("clustered", None, 3)][2]
        else:
            figures, clusters, covers = self.figures, empty_frame("clusters"), {}
        rng = np.random.default_rng([self.seed, 11, int(clustered)])
        records = _file_records(self.files, figures)  # every file and face converted once
        cluster_pages = _cluster_pages(clusters, _cover_files(clusters, covers, records), page_size, rng)
        return {"clusters": cluster_pages, "files": _file_pages(records, page_size, rng)}


def make_dataset(
    n_people: int = 40,
    *,
    faces_per_person: tuple[int, int] = (3, 15),
    dim: int = 128,
    hd_share: float = 0.7,
    video_share: float = 0.1,
    multi_face_share: float = 0.2,
    n_strangers: int | None = None,
    start: str = "2026-01-05",
    days: int = 7,
    stores: int = 3,
    cameras_per_store: int = 2,
    seed: int = 0,
) -> SynthDataset:
    """A synthetic retail IMM dataset with ground truth.

    Parameters
    ----------
    n_people : int, default=40
        Regular customers, each seen ``faces_per_person`` times over one or more visits.
    faces_per_person : (int, int), default=(3, 15)
        Inclusive range of faces per regular customer (uniform).
    dim : int, default=128
        Embedding dimension.
    hd_share : float, default=0.7
        Expected share of high-definition faces (IMM's rule). Each person has their own
        propensity around it, so some regulars never get 3 high-definition faces.
    video_share : float, default=0.1
        Share of files that are short videos (faces with a ``timestamp``).
    multi_face_share : float, default=0.2
        Share of files that show 2-4 people.
    n_strangers : int, optional
        People seen exactly once. Default: ``n_people``.
    start : str, default="2026-01-05"
        First day (store local time, +08:00).
    days, stores, cameras_per_store : int
        Captures spread over ``days`` days, ``stores`` stores with ``cameras_per_store``
        cameras each, inside opening hours 10:00-22:00.
    seed : int, default=0
        Same arguments and seed, same dataset.

    Returns
    -------
    SynthDataset

    Notes
    -----
    Vectorised: 100,000 faces take a few seconds; the embeddings dominate at large sizes.

    Examples
    --------
    >>> ds = make_dataset(10, seed=1)
    >>> ds.embeddings.shape[0] == len(ds.figures) == len(ds.labels)
    True
    >>> figures, clusters = ds.clustered()
    """
    lo, hi = faces_per_person
    n_strangers = n_people if n_strangers is None else n_strangers
    for name, value in (("n_people", n_people), ("n_strangers", n_strangers)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not 1 <= lo <= hi:
        raise ValueError(f"faces_per_person must be (low, high) with 1 <= low <= high, got {faces_per_person}")
    for name, share in (("hd_share", hd_share), ("video_share", video_share), ("multi_face_share", multi_face_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    for name, value in (("days", days), ("stores", stores), ("cameras_per_store", cameras_per_store)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if n_people + n_strangers == 0:
        raise ValueError("n_people + n_strangers must be >= 1")

    rng = np.random.default_rng(seed)
    people = _make_people(rng, n_people, n_strangers, lo, hi, hd_share, stores)
    faces = _make_faces(rng, people, days, stores, cameras_per_store)
    _face_quality(rng, faces, people)
    files, faces = _make_files(rng, faces, video_share, multi_face_share, start)
    figures = _make_figures(rng, faces, files, people)
    labels = faces["person"].to_numpy(np.int64)
    embeddings = make_embeddings(labels, dim=dim, quality=faces["embed_quality"].to_numpy(), seed=seed + 1)
    people_frame = pd.DataFrame(
        {
            "person_id": np.arange(len(people["gender"]), dtype=np.int64),
            "stranger": people["stranger"],
            "gender": pd.Categorical(people["gender"]),
            "age": people["age"],
            "home_store": [f"store-{s + 1}" for s in people["home"]],
            "faces": np.bincount(labels, minlength=len(people["gender"])),
        }
    )
    return SynthDataset(files, figures, embeddings, labels, people_frame, seed)
