"""Synthetic retail visit schedule with known visits, for the visitor report.

:func:`make_visits` draws shoppers and staff, their visits to stores over a number of days
(day, store, arrival, dwell), and the camera detections of each visit. It returns the
IMM-shaped ``files`` and ``figures`` frames (faces clustered by the true person) together with
the true visits, so a report built on them can be checked exactly.

Guarantees that make the truth exact for a report run with the same ``session_gap``:

* consecutive detections inside one visit are never more than ``session_gap`` apart;
* two visits of one person (at any store) are more than ``session_gap`` apart;
* every time is a whole second; the URI carries the local capture time
  (``oss://BUCKET/store-NN/cam-N/YYYYmmddTHHMMSS-NNNNNNN.jpg``), so the time can be recovered
  from the URI (:attr:`VisitSchedule.time_pattern`) when a file has neither ``produce_time``
  nor ``file_create_time``;
* video visits are one video file whose faces carry ``timestamp`` offsets in seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from imm_analysis.schema import CLUSTER_INDEPENDENT, coerce_frame

__all__ = ["VisitSchedule", "make_visits"]

_NS = 1_000_000_000


@dataclass
class VisitSchedule:
    """A synthetic retail dataset with its true visits.

    Attributes
    ----------
    visits : DataFrame
        The true visits, one row each: ``visitor_id, location, start, end, dwell, detections,
        is_staff`` (times tz-aware UTC).
    figures : DataFrame
        Figures frame (one face per detection), ``figure_cluster_id`` = the true cluster.
    files : DataFrame
        Files frame (one image per detection, one video per video visit).
    clusters : DataFrame
        Clusters frame, one row per true person with at least one clustered face.
    labels : ndarray of int64
        True person index per figures row.
    staff_ids : list of str
        Cluster ids of the staff.
    tz : str
        Time zone of the stores (opening hours and the local time written in URIs).
    session_gap : Timedelta
        The gap the schedule was built for.

    Examples
    --------
    >>> s = make_visits(10, stores=2, days=2, seed=1)
    >>> len(s.figures) == len(s.labels) == int(s.visits["detections"].sum())
    True
    """

    visits: pd.DataFrame
    figures: pd.DataFrame
    files: pd.DataFrame
    clusters: pd.DataFrame
    labels: np.ndarray
    staff_ids: list[str]
    tz: str
    session_gap: pd.Timedelta
    stores: list[str] = field(default_factory=list)

    #: Regular expression whose one group is the store in a synthetic URI.
    location_pattern: str = r"oss://[^/]+/([^/]+)/"
    #: Regular expression whose one group is the local capture time in a synthetic URI.
    time_pattern: str = r"/(\d{8}T\d{6})-\d+\.\w+$"

    def true_daily(self, *, exclude_staff: bool = True, returning_scope: str = "location") -> pd.DataFrame:
        """True ``date, location, unique_visitors, new_visitors, returning_visitors, visits, detections``.

        Computed with plain Python sets from :attr:`visits` (independently of the report code).
        A visit belongs to the local date (in :attr:`tz`) of its start. ``returning_scope``
        ``"location"``: returning = seen at that store on an earlier date; ``"any"``: at any store.

        Examples
        --------
        >>> s = make_visits(10, stores=2, days=2, seed=1)
        >>> daily = s.true_daily()
        >>> bool((daily["unique_visitors"] == daily["new_visitors"] + daily["returning_visitors"]).all())
        True
        """
        v = self.visits
        if exclude_staff:
            v = v[~v["is_staff"]]
        dates = v["start"].dt.tz_convert(self.tz).dt.date
        rows: dict[tuple, dict] = {}
        seen_before: dict[object, set] = {}
        for date in sorted(set(dates)):
            day = v[(dates == date).to_numpy()]
            for loc in sorted(set(day["location"])):
                at = day[day["location"] == loc]
                who = set(at["visitor_id"])
                key = loc if returning_scope == "location" else None
                earlier = seen_before.get(key, set())
                rows[(date, loc)] = {
                    "date": date,
                    "location": loc,
                    "unique_visitors": len(who),
                    "new_visitors": len(who - earlier),
                    "returning_visitors": len(who & earlier),
                    "visits": len(at),
                    "detections": int(at["detections"].sum()),
                }
            for loc in set(day["location"]):
                key = loc if returning_scope == "location" else None
                seen_before.setdefault(key, set()).update(day.loc[day["location"] == loc, "visitor_id"])
        return pd.DataFrame(list(rows.values()))

    def to_imm_pages(self, page_size: int = 100) -> dict[str, list[dict]]:
        """The dataset as IMM JSON pages: ``{"clusters": [QueryFigureClusters...], "files": [SimpleQuery...]}``.

        Examples
        --------
        >>> s = make_visits(10, stores=2, days=2, seed=1)
        >>> pages = s.to_imm_pages(page_size=1000)
        >>> len(pages["files"][0]["Files"]) == len(s.files)
        True
        """
        from imm_analysis.io.imm_json import to_imm_clusters, to_imm_files

        pages: dict[str, list[dict]] = {"clusters": [], "files": []}
        cl = self.clusters
        for i in range(0, max(len(cl), 1), page_size):
            page = to_imm_clusters(cl.iloc[i : i + page_size])
            page["NextToken"] = "" if i + page_size >= len(cl) else f"clusters-{i + page_size}"
            pages["clusters"].append(page)
        fi = self.files
        for i in range(0, max(len(fi), 1), page_size):
            part = fi.iloc[i : i + page_size]
            figs = self.figures[self.figures["file_id"].isin(part["file_id"])]
            page = to_imm_files(part, figs)
            page["NextToken"] = "" if i + page_size >= len(fi) else f"files-{i + page_size}"
            pages["files"].append(page)
        return pages

    def write_imm(self, directory: str | os.PathLike[str], page_size: int = 100) -> dict[str, Path]:
        """Write :meth:`to_imm_pages` under ``directory/clusters/`` and ``directory/files/``.

        Returns ``{"clusters": Path, "files": Path}``.

        Examples
        --------
        >>> import tempfile
        >>> from imm_analysis import load_figures
        >>> s = make_visits(10, stores=2, days=2, seed=1)
        >>> out = s.write_imm(tempfile.mkdtemp())
        >>> len(load_figures(out["files"])) == len(s.figures)
        True
        """
        from imm_analysis.io.atomic import atomic_write_bytes

        root = Path(directory)
        out: dict[str, Path] = {}
        for kind, pages in self.to_imm_pages(page_size=page_size).items():
            d = root / kind
            d.mkdir(parents=True, exist_ok=True)
            for k, page in enumerate(pages):
                text = json.dumps(page, ensure_ascii=False, default=str)
                atomic_write_bytes(d / f"page_{k:04d}.json", text.encode("utf-8"))
            out[kind] = d
        return out


def _local_midnights_ns(start: str, days: int, tz: str) -> np.ndarray:
    """UTC nanoseconds of local midnight for each day (DST-safe)."""
    idx = pd.date_range(pd.Timestamp(start).normalize(), periods=days, freq="D").tz_localize(tz)
    return idx.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)


def _cluster_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    raw = rng.integers(0, 2**63 - 1, size=(n, 2), dtype=np.int64)
    hexes = [f"{a:016x}{b:016x}" for a, b in raw.tolist()]
    return np.array([f"Cluster-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}" for h in hexes], dtype=object)


def _zero_pad(values: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(values.astype(np.int64).astype("U20"), width)


def make_visits(
    n_visitors: int = 200,
    *,
    stores: int = 3,
    days: int = 7,
    start: str = "2026-01-05",
    tz: str = "Asia/Shanghai",
    staff_per_store: int = 1,
    visits_per_visitor: tuple[int, int] = (1, 3),
    dwell_minutes: tuple[float, float] = (2, 90),
    detection_interval: tuple[float, float] = (30, 600),
    session_gap: str | pd.Timedelta = "30min",
    opening_hours: tuple[int, int] = (10, 21),
    cameras_per_store: int = 2,
    home_store_share: float = 0.8,
    video_share: float = 0.1,
    no_produce_time_share: float = 0.05,
    uri_time_only_share: float = 0.05,
    independent_share: float = 0.0,
    hd_share: float = 0.8,
    bucket: str = "imm-retail",
    seed: int = 0,
) -> VisitSchedule:
    """Draw a retail visit schedule and the camera detections it produces.

    Parameters
    ----------
    n_visitors : int, default=200
        Number of shoppers (staff come on top).
    stores, days : int
        Number of stores and consecutive days from ``start``.
    start : str, default="2026-01-05"
        First day (local date in ``tz``).
    tz : str, default="Asia/Shanghai"
        The stores' time zone: opening hours and URI times are local.
    staff_per_store : int, default=1
        Staff work at one store every day except one day a week, about ten hours a day.
    visits_per_visitor : (int, int), default=(1, 3)
        Range of visits drawn per shopper (visits too close to another of the same person are
        dropped, so some get fewer). Keep the maximum below half of ``days`` so no shopper looks
        like staff under the report's default rule.
    dwell_minutes : (float, float), default=(2, 90)
        Range of a visit's dwell (first to last detection).
    detection_interval : (float, float), default=(30, 600)
        Range of the mean seconds between detections in a visit; ``1.5 * max + 1`` must not
        exceed ``session_gap``.
    session_gap : str or Timedelta, default="30min"
        Visits of one person are separated by more than this.
    opening_hours : (int, int), default=(10, 21)
        Local opening and closing hour of the stores.
    cameras_per_store : int, default=2
    home_store_share : float, default=0.8
        Probability that a shopper's visit is to their home store.
    video_share : float, default=0.1
        Share of shoppers' visits recorded as one video file (faces with ``timestamp`` offsets).
    no_produce_time_share, uri_time_only_share : float, default=0.05
        Share of files without ``produce_time`` (``file_create_time`` kept), and of files with
        neither (the time is only in the URI).
    independent_share : float, default=0.0
        Share of shoppers' faces marked ``figure-cluster-id-independent`` (missed by clustering).
    hd_share : float, default=0.8
        Share of faces passing IMM's high-definition rule.
    bucket : str, default="imm-retail"
    seed : int, default=0

    Returns
    -------
    VisitSchedule

    Examples
    --------
    >>> s = make_visits(20, stores=2, days=3, seed=1)
    >>> len(s.figures) == int(s.visits["detections"].sum())
    True
    """
    gap_s = pd.Timedelta(session_gap).total_seconds()
    if 1.5 * detection_interval[1] + 1 > gap_s:
        raise ValueError(
            f"detection_interval max {detection_interval[1]} s is too long for session_gap {session_gap!r}: "
            f"1.5 * max + 1 must be <= {gap_s:g} s"
        )
    if n_visitors < 0 or stores < 1 or days < 1 or cameras_per_store < 1:
        raise ValueError("n_visitors must be >= 0 and stores, days, cameras_per_store >= 1")
    rng = np.random.default_rng(seed)
    midnights = _local_midnights_ns(start, days, tz)
    open_s, close_s = opening_hours[0] * 3600, opening_hours[1] * 3600

    # shoppers' visits
    n_vis = rng.integers(visits_per_visitor[0], visits_per_visitor[1] + 1, size=n_visitors)
    person = np.repeat(np.arange(n_visitors), n_vis)
    m = len(person)
    home = rng.integers(0, stores, size=n_visitors)
    store = np.where(rng.random(m) < home_store_share, home[person], rng.integers(0, stores, size=m))
    day = rng.integers(0, days, size=m)
    dwell = rng.integers(int(dwell_minutes[0] * 60), int(dwell_minutes[1] * 60) + 1, size=m)
    dwell = np.minimum(dwell, close_s - open_s)
    arrive = open_s + (rng.random(m) * (close_s - open_s - dwell + 1)).astype(np.int64)
    staff_flag = np.zeros(m, bool)

    # staff: one day off per week, a ~10 hour shift at their store
    n_staff = staff_per_store * stores
    s_person = np.repeat(n_visitors + np.arange(n_staff), days)
    s_day = np.tile(np.arange(days), n_staff)
    s_idx = np.repeat(np.arange(n_staff), days)
    works = (s_day + s_idx) % 7 != 6
    s_person, s_day, s_idx = s_person[works], s_day[works], s_idx[works]
    s_store = s_idx % stores
    s_arrive = open_s - 1800 + rng.integers(0, 1800, size=len(s_person))
    s_dwell = rng.integers(9 * 3600, 11 * 3600, size=len(s_person))

    person = np.concatenate([person, s_person])
    store = np.concatenate([store, s_store])
    day = np.concatenate([day, s_day])
    dwell = np.concatenate([dwell, s_dwell]).astype(np.int64)
    staff_flag = np.concatenate([staff_flag, np.ones(len(s_person), bool)])
    start_ns = midnights[day] + np.concatenate([arrive, s_arrive]).astype(np.int64) * _NS
    end_ns = start_ns + dwell * _NS

    # drop visits that come within session_gap of an earlier visit of the same person
    order = np.lexsort((start_ns, person))
    person, store, day, dwell, staff_flag, start_ns, end_ns = (
        a[order] for a in (person, store, day, dwell, staff_flag, start_ns, end_ns)
    )
    prev_end = pd.Series(end_ns).groupby(person).cummax().groupby(person).shift(1)
    keep = prev_end.isna().to_numpy() | (start_ns > prev_end.fillna(0).to_numpy(np.int64) + int(gap_s) * _NS)
    person, store, day, dwell, staff_flag, start_ns, end_ns = (
        a[keep] for a in (person, store, day, dwell, staff_flag, start_ns, end_ns)
    )
    n_visits = len(person)

    # detections: evenly spaced with jitter, first at arrival and last at departure
    lo, hi = detection_interval
    interval = rng.uniform(lo, hi, size=n_visits)
    interval = np.where(staff_flag, rng.uniform(hi / 2, hi, size=n_visits), interval)
    n_det = np.where(dwell == 0, 1, 1 + np.ceil(dwell / interval).astype(np.int64))
    visit_of = np.repeat(np.arange(n_visits), n_det)
    first = np.repeat(np.cumsum(n_det) - n_det, n_det)
    j = np.arange(len(visit_of)) - first
    last = n_det[visit_of] - 1
    spacing = dwell[visit_of] / np.maximum(last, 1)
    offset = j * spacing + rng.uniform(-0.25, 0.25, size=len(j)) * spacing
    offset = np.where(j == 0, 0, np.where(j == last, dwell[visit_of], np.rint(offset))).astype(np.int64)
    det_ns = start_ns[visit_of] + offset * _NS
    n_faces = len(det_ns)

    # files: one image per detection, or one video per video visit
    is_video_visit = (~staff_flag) & (rng.random(n_visits) < video_share)
    face_video = is_video_visit[visit_of]
    cam_visit = rng.integers(0, cameras_per_store, size=n_visits)
    camera = np.where(face_video, cam_visit[visit_of], rng.integers(0, cameras_per_store, size=n_faces))
    # file key: a video visit -> one file; an image detection -> its own file
    file_key = np.where(face_video, -1 - visit_of, np.arange(n_faces))
    uniq_keys, face_file = np.unique(file_key, return_inverse=True)
    n_files = len(uniq_keys)
    first_face = np.full(n_files, n_faces, dtype=np.int64)
    np.minimum.at(first_face, face_file, np.arange(n_faces))
    file_time = np.where(face_video[first_face], start_ns[visit_of[first_face]], det_ns[first_face])
    file_video = face_video[first_face]
    file_store = store[visit_of[first_face]]
    file_cam = camera[first_face]
    timestamp = np.where(face_video, (det_ns - file_time[face_file]) / _NS, np.nan)

    local = pd.DatetimeIndex(file_time.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None).to_numpy("datetime64[s]")
    stamp = np.char.replace(np.char.replace(np.datetime_as_string(local), "-", ""), ":", "")
    store_names = np.array([f"store-{k + 1:02d}" for k in range(stores)], dtype=object)
    file_num = _zero_pad(np.arange(n_files), 7)
    ext = np.where(file_video, ".mp4", ".jpg")
    uri = (
        f"oss://{bucket}/"
        + store_names[file_store]
        + "/cam-"
        + (file_cam + 1).astype("U4").astype(object)
        + "/"
        + stamp.astype(object)
        + "-"
        + file_num.astype(object)
        + ext.astype(object)
    )
    u = rng.random(n_files)
    produce = np.where(u < no_produce_time_share + uri_time_only_share, np.iinfo(np.int64).min, file_time)
    created = np.where(
        (u >= no_produce_time_share) & (u < no_produce_time_share + uri_time_only_share),
        np.iinfo(np.int64).min,
        file_time,
    )
    produce_t = pd.DatetimeIndex(produce.view("datetime64[ns]"), tz="UTC") if n_files else pd.DatetimeIndex([], tz="UTC")
    created_t = pd.DatetimeIndex(created.view("datetime64[ns]"), tz="UTC") if n_files else pd.DatetimeIndex([], tz="UTC")
    file_ids = ("file-" + file_num.astype(object)).astype(object)
    media = np.where(file_video, "video", "image")

    # people: ids, names, age and gender
    n_people = n_visitors + n_staff
    cids = _cluster_ids(n_people, rng)
    age = rng.uniform(16, 70, size=n_people).round(0)
    gender = np.where(rng.random(n_people) < 0.5, "female", "male")
    names = np.full(n_people, None, dtype=object)
    for k in range(n_staff):
        names[n_visitors + k] = f"staff {store_names[k % stores]} #{k // stores + 1}"

    face_person = person[visit_of]
    cluster_of_face = cids[face_person].copy()
    if independent_share > 0:
        indep = (~staff_flag[visit_of]) & (rng.random(n_faces) < independent_share)
        cluster_of_face[indep] = CLUSTER_INDEPENDENT

    hd = rng.random(n_faces) < hd_share
    width = np.where(hd, rng.integers(80, 220, size=n_faces), rng.integers(30, 76, size=n_faces))
    pose_lim = np.where(hd, 25.0, 45.0)
    fig = {
        "file_id": file_ids[face_file],
        "uri": uri[face_file],
        "media_type": media[face_file],
        "produce_time": produce_t[face_file],
        "figure_id": ("figure-" + _zero_pad(np.arange(n_faces), 8).astype(object)),
        "figure_cluster_id": cluster_of_face,
        "figure_confidence": rng.uniform(0.9, 1.0, size=n_faces),
        "figure_type": np.full(n_faces, "face", dtype=object),
        "face_quality": np.where(hd, rng.uniform(0.81, 0.99, size=n_faces), rng.uniform(0.3, 0.95, size=n_faces)),
        "left": rng.integers(0, 1500, size=n_faces),
        "top": rng.integers(0, 800, size=n_faces),
        "width": width,
        "height": (width * rng.uniform(1.05, 1.3, size=n_faces)).astype(np.int64),
        "pitch": rng.uniform(-1, 1, size=n_faces) * pose_lim,
        "roll": rng.uniform(-1, 1, size=n_faces) * pose_lim / 2,
        "yaw": rng.uniform(-1, 1, size=n_faces) * pose_lim,
        "age": age[face_person] + rng.integers(-3, 4, size=n_faces),
        "gender": gender[face_person],
        "timestamp": timestamp,
    }
    figures = pd.DataFrame(fig)
    figures = coerce_frame(figures, "figures")

    counts = np.bincount(face_file, minlength=n_files)
    labels_files = [
        {"store": s, "camera": f"cam-{c + 1}"} for s, c in zip(store_names[file_store].tolist(), file_cam.tolist(), strict=True)
    ]
    files = coerce_frame(
        pd.DataFrame(
            {
                "file_id": file_ids,
                "uri": uri,
                "filename": [p.rsplit("/", 1)[-1] for p in uri.tolist()],
                "media_type": media,
                "content_type": np.where(file_video, "video/mp4", "image/jpeg"),
                "image_width": np.where(file_video, np.nan, 1920),
                "image_height": np.where(file_video, np.nan, 1080),
                "video_width": np.where(file_video, 1920, np.nan),
                "video_height": np.where(file_video, 1080, np.nan),
                "produce_time": produce_t,
                "file_create_time": created_t,
                "figure_count": counts,
                "custom_labels": labels_files,
            }
        ),
        "files",
    )

    clustered = cluster_of_face != CLUSTER_INDEPENDENT
    cp = face_person[clustered]
    present = np.unique(cp)
    face_count = np.bincount(cp, minlength=n_people)
    video_faces = np.bincount(cp, weights=face_video[clustered], minlength=n_people)
    clusters = coerce_frame(
        pd.DataFrame(
            {
                "cluster_id": cids[present],
                "name": names[present],
                "gender": gender[present],
                "face_count": face_count[present],
                "image_count": (face_count - video_faces)[present].astype(np.int64),
                "video_count": np.minimum(video_faces[present], 1).astype(np.int64),
                "average_age": age[present],
                "min_age": age[present] - 3,
                "max_age": age[present] + 3,
                "create_time": pd.Timestamp(start, tz=tz).tz_convert("UTC"),
                "update_time": pd.Timestamp(start, tz=tz).tz_convert("UTC") + pd.Timedelta(days=days),
                "object_type": "figure-cluster",
            }
        ),
        "clusters",
    )

    det_per_visit = n_det
    visits = pd.DataFrame(
        {
            "visitor_id": pd.array(cids[person], dtype="string"),
            "location": pd.array(store_names[store], dtype="string"),
            "start": pd.DatetimeIndex(start_ns.view("datetime64[ns]"), tz="UTC"),
            "end": pd.DatetimeIndex(end_ns.view("datetime64[ns]"), tz="UTC"),
            "dwell": pd.to_timedelta(dwell, unit="s"),
            "detections": det_per_visit.astype(np.int64),
            "is_staff": staff_flag,
        }
    ).sort_values(["start", "visitor_id"], ignore_index=True)
    return VisitSchedule(
        visits=visits,
        figures=figures,
        files=files,
        clusters=clusters,
        labels=face_person.astype(np.int64),
        staff_ids=cids[n_visitors:].tolist(),
        tz=tz,
        session_gap=pd.Timedelta(session_gap),
        stores=store_names.tolist(),
    )
