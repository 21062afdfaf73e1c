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
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE, coerce_frame, empty_frame
from imm_analysis.synth.embeddings import make_embeddings
from imm_analysis.synth.imm_pages import (
    LOCAL_TZ,
    _cluster_pages,
    _cover_files,
    _file_pages,
    _file_records,
    _hex_ids,
    _uuid4s,
)

__all__ = ["SynthDataset", "make_dataset", "OPENING_HOURS", "IMAGE_SIZE"]

OPENING_HOURS = (10.0, 22.0)
IMAGE_SIZE = (1920, 1080)
_FAIL_KINDS = ("too_small", "extreme_pose", "low_quality", "missing")
_FAIL_P = (0.45, 0.3, 0.22, 0.03)


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


def _make_people(rng, n_people, n_strangers, lo, hi, hd_share, stores) -> dict[str, np.ndarray]:
    p = n_people + n_strangers
    counts = np.concatenate([rng.integers(lo, hi + 1, n_people), np.ones(n_strangers, np.int64)])
    return {
        "counts": counts,
        "stranger": np.arange(p) >= n_people,
        "gender": np.where(rng.random(p) < 0.55, "female", "male"),
        "age": rng.uniform(16, 72, p).round(1),
        "home": rng.integers(0, stores, p),
        # each person's own chance of a high-definition capture (exact at hd_share 0 or 1)
        "hd_p": np.clip(hd_share + rng.normal(0, 0.15 * min(1.0, 4 * hd_share * (1 - hd_share)), p), 0.0, 1.0),
        "visits": np.minimum(counts, 1 + rng.poisson(1.5, p)),
    }


def _make_faces(rng, people, days, stores, cameras) -> pd.DataFrame:
    counts, n_visits = people["counts"], people["visits"]
    person = np.repeat(np.arange(len(counts)), counts)
    n = len(person)
    first_visit = np.concatenate([[0], np.cumsum(n_visits)[:-1]])
    visit = first_visit[person] + (rng.random(n) * n_visits[person]).astype(np.int64)
    nv = int(n_visits.sum())
    visit_person = np.repeat(np.arange(len(counts)), n_visits)
    v_store = np.where(rng.random(nv) < 0.8, people["home"][visit_person], rng.integers(0, stores, nv))
    v_day = rng.integers(0, days, nv)
    # two busy periods (lunch, evening) over a flat background, inside opening hours
    kind = rng.choice(3, nv, p=[0.4, 0.25, 0.35])
    hour = np.where(
        kind == 0,
        rng.uniform(*OPENING_HOURS, nv),
        np.where(kind == 1, rng.normal(12.8, 1.0, nv), rng.normal(18.8, 1.3, nv)),
    )
    v_dur = np.clip(rng.lognormal(np.log(25), 0.6, nv), 4, 120)  # minutes
    v_start = np.clip(hour, OPENING_HOURS[0], OPENING_HOURS[1] - v_dur / 60)
    minute = v_start[visit] * 60 + rng.random(n) * v_dur[visit]
    return pd.DataFrame(
        {
            "person": person,
            "store": v_store[visit],
            "camera": rng.integers(0, cameras, n),
            "day": v_day[visit],
            "second": np.floor(minute * 60).astype(np.int64),
        }
    )


def _face_quality(rng, faces: pd.DataFrame, people) -> None:
    """Size, pose, quality and sharpness consistent with each face's HD verdict (in place)."""
    n = len(faces)
    hd = rng.random(n) < people["hd_p"][faces["person"].to_numpy()]
    fail = np.where(hd, -1, rng.choice(len(_FAIL_KINDS), n, p=_FAIL_P))
    small, pose_bad, low, missing = (fail == k for k in range(4))

    width = np.clip(np.exp(rng.normal(np.log(125), 0.35, n)), 76, 420)
    width = np.where(small, rng.integers(22, 76, n), np.round(width)).astype(np.int64)
    height = np.round(width * rng.uniform(1.12, 1.38, n)).astype(np.int64)
    squat = small & (rng.random(n) < 0.3)  # some small faces are only too short
    width = np.where(squat, rng.integers(76, 90, n), width)
    height = np.where(squat, rng.integers(40, 76, n), height)

    pose = np.column_stack([rng.normal(0, 9, n), rng.normal(0, 6, n), rng.normal(0, 12, n)])
    wild = np.abs(pose) > 29.5  # keep the bell shape inside the HD range: redraw the tails
    pose[wild] = rng.uniform(-29.5, 29.5, int(wild.sum()))
    which = rng.choice(3, n, p=[0.3, 0.1, 0.6])  # pitch, roll, yaw
    extreme = rng.uniform(30.0, 75.0, n) * rng.choice([-1.0, 1.0], n)
    pose[pose_bad, which[pose_bad]] = extreme[pose_bad]
    loose = small & (rng.random(n) < 0.3)  # small faces may also be turned away
    pose[loose, which[loose]] = extreme[loose]
    pose = pose.round(3)
    pose[missing] = np.nan  # IMM returned no HeadPose

    quality = np.where(hd, 0.801 + 0.199 * rng.beta(2.0, 1.3, n), rng.uniform(0.55, 0.99, n))
    quality = np.where(small, 0.15 + 0.8 * rng.beta(3.0, 2.0, n), quality)
    quality = np.where(low, rng.uniform(0.12, 0.8, n), quality).round(3)
    sharp = np.clip(quality * rng.uniform(0.85, 1.1, n) + rng.normal(0, 0.04, n), 0.02, 1.0)
    sharp = np.where(low, np.minimum(sharp, rng.uniform(0.1, 0.7, n)), sharp).round(3)

    size_factor = np.sqrt(np.minimum(1.0, np.minimum(width, height) / 90.0))
    angle = np.nan_to_num(np.abs(pose).max(axis=1), nan=20.0)
    pose_factor = 1.0 - np.clip(angle - 25.0, 0, None) / 100.0
    faces["is_hd"] = hd
    faces["width"], faces["height"] = width, height
    faces["pitch"], faces["roll"], faces["yaw"] = pose[:, 0], pose[:, 1], pose[:, 2]
    faces["face_quality"], faces["sharpness"] = quality, sharp
    faces["embed_quality"] = quality * size_factor * pose_factor


def _make_files(rng, faces: pd.DataFrame, video_share, multi_face_share, start) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group faces into images and videos at one store and day; returns (files, faces in file order)."""
    # people photographed together were at the same store on the same day; the file takes the
    # capture time of its first face
    n = len(faces)
    faces = faces.assign(_mix=rng.permutation(n)).sort_values(["store", "day", "_mix"], kind="stable")
    faces = faces.drop(columns="_mix").reset_index(drop=True)
    sizes = np.where(rng.random(n) < multi_face_share, rng.integers(2, 5, n), 1)
    starts = np.zeros(n, bool)
    starts[np.minimum(np.cumsum(sizes) - sizes, n - 1)] = True
    key = faces["store"].to_numpy() * 10_000 + faces["day"].to_numpy()
    starts[1:] |= key[1:] != key[:-1]
    starts[0] = True
    group = np.cumsum(starts) - 1
    dup = pd.DataFrame({"g": group, "p": faces["person"].to_numpy()}).duplicated().to_numpy()
    group[dup] = group.max() + 1 + np.arange(int(dup.sum()))  # a person appears once per file
    faces["group"] = group
    first = faces.groupby("group", sort=False).head(1).set_index("group").sort_index()

    n_files = len(first)
    is_video = rng.random(n_files) < video_share
    duration = np.where(is_video, rng.uniform(8, 60, n_files).round(3), np.nan)
    day0 = pd.Timestamp(start, tz=LOCAL_TZ)
    produce = (
        day0
        + pd.to_timedelta(first["day"].to_numpy(), unit="D")
        + pd.to_timedelta(first["second"].to_numpy(), unit="s")
    )
    order = np.lexsort((first.index.to_numpy(), produce.asi8))
    rank = np.empty(n_files, np.int64)
    rank[order] = np.arange(n_files)

    file_ids = _hex_ids(rng, n_files, 32)
    local = produce.tz_convert(LOCAL_TZ)
    stamp = local.strftime("%H%M%S")
    date = local.strftime("%Y-%m-%d")
    store = first["store"].to_numpy() + 1
    cam = first["camera"].to_numpy() + 1
    ext = np.where(is_video, "mp4", "jpg")
    uri = [
        f"oss://retail-bucket/store-{s}/cam-{c}/{d}/{t}-{f[:8]}.{e}"
        for s, c, d, t, f, e in zip(store, cam, date, stamp, file_ids, ext, strict=True)
    ]
    upload = pd.to_timedelta(rng.integers(2, 40, n_files), unit="s")
    indexed = pd.to_timedelta(rng.integers(60_000_000_000, 600_000_000_000, n_files), unit="ns")
    nfig = np.bincount(group, minlength=n_files)
    w, h = IMAGE_SIZE
    files = (
        pd.DataFrame(
            {
                "file_id": file_ids,
                "uri": uri,
                "filename": [u.rsplit("/", 1)[1] for u in uri],
                "media_type": np.where(is_video, "video", "image"),
                "content_type": np.where(is_video, "video/mp4", "image/jpeg"),
                "size": np.where(
                    is_video,
                    (np.nan_to_num(duration) * rng.uniform(4e5, 7e5, n_files)),
                    rng.integers(150_000, 650_000, n_files),
                ).astype(np.int64),
                "image_width": np.where(is_video, np.nan, w),
                "image_height": np.where(is_video, np.nan, h),
                "video_width": np.where(is_video, w, np.nan),
                "video_height": np.where(is_video, h, np.nan),
                "duration": duration,
                "orientation": 1,
                "produce_time": produce,
                "file_create_time": produce + upload,
                "file_modified_time": produce + upload,
                "create_time": produce + upload + indexed,
                "update_time": produce + upload + indexed,
                "figure_count": nfig,
                "project_name": "retail-project",
                "dataset_name": "store-cameras",
                "custom_labels": [
                    {"store": f"store-{s}", "camera": f"cam-{c}"} for s, c in zip(store, cam, strict=True)
                ],
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    faces["file"] = rank[group]
    faces = faces.sort_values(["file", "second"], kind="stable").reset_index(drop=True)
    return coerce_frame(files, "files"), faces


def _make_figures(rng, faces: pd.DataFrame, files: pd.DataFrame, people) -> pd.DataFrame:
    n = len(faces)
    fi = faces["file"].to_numpy()
    person = faces["person"].to_numpy()
    hd = faces["is_hd"].to_numpy()
    q = faces["face_quality"].to_numpy()
    w, h = IMAGE_SIZE
    video = files["media_type"].astype(str).to_numpy()[fi] == "video"
    duration = files["duration"].to_numpy(dtype=float, na_value=np.nan)[fi]
    female = people["gender"][person] == "female"
    flip = rng.random(n) < np.where(hd, 0.03, 0.12)
    gender = np.where(female ^ flip, "female", "male")
    beard = np.where((gender == "male") & (rng.random(n) < 0.25), "have", "none")
    figures = pd.DataFrame(
        {
            "file_id": files["file_id"].to_numpy()[fi],
            "uri": files["uri"].to_numpy()[fi],
            "media_type": files["media_type"].astype(str).to_numpy()[fi],
            "produce_time": files["produce_time"].to_numpy()[fi],
            "figure_id": _uuid4s(rng, n),
            "figure_cluster_id": CLUSTER_UNAVAILABLE,
            "figure_confidence": np.where(hd, rng.uniform(0.95, 1.0, n), rng.uniform(0.6, 1.0, n)).round(3),
            "figure_cluster_confidence": np.nan,
            "figure_type": "face",
            "face_quality": q,
            "sharpness": faces["sharpness"].to_numpy(),
            "left": rng.integers(0, w - faces["width"].to_numpy()),
            "top": rng.integers(0, h - faces["height"].to_numpy()),
            "width": faces["width"].to_numpy(),
            "height": faces["height"].to_numpy(),
            "pitch": faces["pitch"].to_numpy(),
            "roll": faces["roll"].to_numpy(),
            "yaw": faces["yaw"].to_numpy(),
            "age": np.clip(np.round(people["age"][person] + rng.normal(0, 2.5 + 4 * (1 - q))), 3, 90),
            "age_sd": np.round(2 + 6 * (1 - q) + rng.uniform(0, 2, n)),
            "gender": gender,
            "gender_confidence": np.where(hd, rng.uniform(0.9, 1.0, n), rng.uniform(0.55, 1.0, n)).round(3),
            "emotion": rng.choice(
                ["neutral", "happiness", "surprise", "sadness", "anger"], n, p=[0.55, 0.3, 0.06, 0.06, 0.03]
            ),
            "emotion_confidence": rng.uniform(0.5, 1.0, n).round(3),
            "mask": np.where(rng.random(n) < 0.06, "wear", "none"),
            "mask_confidence": rng.uniform(0.7, 1.0, n).round(3),
            "glasses": rng.choice(["none", "glasses", "sunglass"], n, p=[0.72, 0.23, 0.05]),
            "glasses_confidence": rng.uniform(0.8, 1.0, n).round(3),
            "hat": np.where(rng.random(n) < 0.12, "wear", "none"),
            "hat_confidence": rng.uniform(0.8, 1.0, n).round(3),
            "beard": beard,
            "beard_confidence": rng.uniform(0.7, 1.0, n).round(3),
            "mouth": np.where(rng.random(n) < 0.35, "open", "close"),
            "mouth_confidence": rng.uniform(0.6, 1.0, n).round(3),
            "attractive": rng.uniform(0.3, 1.0, n).round(3),
            "timestamp": np.where(video, (rng.random(n) * np.nan_to_num(duration)).round(3), np.nan),
        }
    )
    return _finish_figures(figures)


def _finish_figures(figures: pd.DataFrame) -> pd.DataFrame:
    return coerce_frame(figures, "figures")
