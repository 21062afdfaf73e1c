"""The random draws behind :func:`imm_analysis.synth.datasets.make_dataset`: people, faces, files, figures.

Each function takes the dataset's ``numpy.random.Generator`` and draws in a fixed order, so a
``seed`` gives the same dataset on every machine (integers and numpy's portable streams only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imm_analysis.schema import CLUSTER_UNAVAILABLE, coerce_frame
from imm_analysis.synth.imm_pages import LOCAL_TZ, _hex_ids, _uuid4s

OPENING_HOURS = (10.0, 22.0)
IMAGE_SIZE = (1920, 1080)
_FAIL_KINDS = ("too_small", "extreme_pose", "low_quality", "missing")
_FAIL_P = (0.45, 0.3, 0.22, 0.03)


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
