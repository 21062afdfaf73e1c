"""imm_analysis.synth.core: embeddings statistics, determinism, ground truth, IMM pages, the committed sample."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from imm_analysis import load_clusters, load_figures, load_files
from imm_analysis.quality import hd_mask
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE
from imm_analysis.synth import SynthDataset, make_dataset, make_embeddings, write_sample

HEX64 = re.compile(r"^[0-9a-f]{64}$")
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
URI = re.compile(r"^oss://retail-bucket/store-(\d)/cam-(\d)/(\d{4}-\d{2}-\d{2})/(\d{6})-[0-9a-f]{8}\.(jpg|mp4)$")
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?\+08:00$")


@pytest.fixture(scope="module")
def ds() -> SynthDataset:
    return make_dataset(40, seed=3)


def _pair_stats(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = x @ x.T
    iu = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None, :])[iu]
    return sim[iu][same], sim[iu][~same]


@pytest.mark.parametrize("dim", [128, 512])
def test_embedding_similarities_resemble_a_real_model(dim):
    labels = np.repeat(np.arange(150), 8)
    x = make_embeddings(labels, dim=dim, seed=5)
    assert x.dtype == np.float32 and x.shape == (1200, dim)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    same, diff = _pair_stats(x, labels)
    assert abs(same.mean() - 0.6) < 0.03
    assert 0.095 < same.std() < 0.145
    assert abs(diff.mean()) < 0.01
    assert 0.085 < diff.std() < 0.115  # structure keeps sd ~0.1 at 512-d too (random vectors: 0.044)
    lo, hi = np.percentile(same, [5, 95])
    assert 0.35 < lo < 0.48 and 0.74 < hi < 0.85


def test_lower_quality_gives_lower_same_person_similarity():
    labels = np.repeat(np.arange(200), 6)
    quality = np.tile([0.95, 0.9, 0.6, 0.5, 0.2, 0.1], 200)
    x = make_embeddings(labels, dim=128, quality=quality, seed=1)
    sims = x.reshape(200, 6, 128) @ x.reshape(200, 6, 128).transpose(0, 2, 1)
    good, mid, poor = sims[:, 0, 1].mean(), sims[:, 2, 3].mean(), sims[:, 4, 5].mean()
    assert good > mid + 0.1 > poor + 0.2
    assert abs(good - 0.6) < 0.04
    # with quality=None every face is at full quality
    full = make_embeddings(labels, dim=128, seed=1)
    assert abs(_pair_stats(full, labels)[0].mean() - 0.6) < 0.03


def test_embeddings_are_deterministic_and_strangers_are_singletons():
    labels = np.array([0, 0, 1, -1, -1, 2])
    a, b = make_embeddings(labels, seed=9), make_embeddings(labels, seed=9)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, make_embeddings(labels, seed=10))
    assert a[3] @ a[4] < 0.4  # two strangers are not one person
    assert a[0] @ a[1] > 0.3
    many = make_embeddings(np.arange(70_000) % 1000, dim=64, seed=2)  # more rows than one block
    assert many.shape == (70_000, 64) and np.isfinite(many).all()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"labels": np.zeros((2, 2), int)}, ValueError),
        ({"labels": np.array([0.5, 1.0])}, TypeError),
        ({"labels": np.array([0, 1]), "dim": 1}, ValueError),
        ({"labels": np.array([0, 1]), "quality": np.ones(3)}, ValueError),
    ],
)
def test_make_embeddings_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        make_embeddings(**kwargs)


def test_make_dataset_is_deterministic(ds):
    again = make_dataset(40, seed=3)
    pd.testing.assert_frame_equal(ds.figures, again.figures)
    pd.testing.assert_frame_equal(ds.files, again.files)
    np.testing.assert_array_equal(ds.embeddings, again.embeddings)
    np.testing.assert_array_equal(ds.labels, again.labels)
    other = make_dataset(40, seed=4)
    assert set(other.figures["figure_id"]).isdisjoint(ds.figures["figure_id"])


def test_dataset_structure(ds):
    f, files, labels = ds.figures, ds.files, ds.labels
    assert len(f) == len(labels) == ds.embeddings.shape[0]
    assert labels.dtype == np.int64 and ds.embeddings.dtype == np.float32
    assert (f["figure_cluster_id"] == CLUSTER_UNAVAILABLE).all()
    assert (f["cluster_state"] == "unavailable").all()
    # identifiers
    assert files["file_id"].map(lambda s: bool(HEX64.match(s))).all() and files["file_id"].is_unique
    assert f["figure_id"].str.fullmatch(UUID4).all() and f["figure_id"].is_unique
    # faces grouped by file in the order of files; figure_count agrees
    order = pd.Series(np.arange(len(files)), index=files["file_id"])[f["file_id"]].to_numpy()
    assert (np.diff(order) >= 0).all()
    np.testing.assert_array_equal(
        f.groupby("file_id", sort=False).size()[files["file_id"]].to_numpy(), files["figure_count"]
    )
    # people: regulars several faces, strangers exactly one; a person appears once per file
    per_person = np.bincount(labels)
    regular = ~ds.people["stranger"].to_numpy()
    assert ((per_person[regular] >= 3) & (per_person[regular] <= 15)).all()
    assert (per_person[~regular] == 1).all() and (~regular).sum() == 40
    assert not pd.DataFrame({"f": f["file_id"], "p": labels}).duplicated().any()
    assert (files["figure_count"] > 1).mean() > 0.1  # multi-face images
    # a realistic HD mix, every failure reason present
    is_hd, reason = hd_mask(f)
    assert 0.55 < is_hd.mean() < 0.85
    assert set(np.unique(reason[~is_hd])) == {0, 1, 2, 3}


def test_times_uris_and_videos(ds):
    files, f = ds.files, ds.figures
    local = files["produce_time"].dt.tz_convert("Asia/Shanghai")
    hours = local.dt.hour + local.dt.minute / 60
    assert ((hours >= 10) & (hours < 22)).all()
    assert local.dt.date.nunique() == 7 and str(local.min().date()) == "2026-01-05"
    parts = files["uri"].str.extract(URI.pattern)
    assert parts.notna().all().all(), files["uri"][parts.isna().any(axis=1)].tolist()
    assert parts[0].nunique() == 3 and parts[1].isin(["1", "2"]).all()
    assert (parts[2] == local.dt.strftime("%Y-%m-%d")).all()
    assert (files["custom_labels"].map(lambda d: d["store"]) == "store-" + parts[0]).all()
    video = files["media_type"] == "video"
    assert 0.03 < video.mean() < 0.2
    assert (parts[4][video] == "mp4").all() and files.loc[video, "duration"].gt(0).all()
    vf = f["media_type"] == "video"
    dur = f["file_id"].map(files.set_index("file_id")["duration"])
    assert f.loc[vf, "timestamp"].between(0, dur[vf].max()).all() and (f.loc[vf, "timestamp"] <= dur[vf]).all()
    assert f.loc[~vf, "timestamp"].isna().all()


def test_quality_fields_agree_with_the_failure_reason(ds):
    f = ds.figures
    is_hd, reason = hd_mask(f)
    q, sharp = f["face_quality"].to_numpy(), f["sharpness"].to_numpy()
    low = reason == 3
    assert np.median(sharp[low]) < np.median(sharp[is_hd]) - 0.2
    assert q[is_hd].min() > 0.8 and np.nanmax(q[low]) <= 0.8
    # a person keeps a gender and an age
    per = pd.DataFrame({"p": ds.labels, "g": f["gender"].astype(str), "age": f["age"]}).groupby("p")
    assert per["g"].agg(lambda s: s.value_counts(normalize=True).iloc[0]).mean() > 0.85
    assert per["age"].std().dropna().median() < 8


def test_clustered_follows_imms_three_image_rule(ds):
    figs, clusters = ds.clustered()
    labels = ds.labels
    is_hd = hd_mask(ds.figures)[0]
    hd_files = pd.DataFrame({"p": labels[is_hd], "f": ds.figures["file_id"][is_hd].to_numpy()}).drop_duplicates()
    eligible = set(hd_files.groupby("p").size().loc[lambda s: s >= 3].index)
    cid = figs["figure_cluster_id"].to_numpy()
    for person in np.unique(labels):
        ids = set(cid[labels == person])
        if person in eligible:
            assert len(ids) == 1 and next(iter(ids)).startswith("Cluster-")
        else:
            assert ids == {CLUSTER_INDEPENDENT}
    # one person per cluster, ids unique and IMM-shaped
    clustered = figs["cluster_state"] == "clustered"
    assert pd.Series(labels[clustered]).groupby(cid[clustered]).nunique().max() == 1
    assert clusters["cluster_id"].str.fullmatch("Cluster-" + UUID4).all() and clusters["cluster_id"].is_unique
    assert len(clusters) == len(eligible)
    # cluster counts agree with the faces
    g = figs[clustered].groupby("figure_cluster_id")
    c = clusters.set_index("cluster_id")
    np.testing.assert_array_equal(g.size()[c.index], c["face_count"])
    video = figs["media_type"] == "video"
    images = figs[clustered & ~video].groupby("figure_cluster_id")["file_id"].nunique().reindex(c.index, fill_value=0)
    np.testing.assert_array_equal(images, c["image_count"])
    np.testing.assert_allclose(g["age"].mean()[c.index], c["average_age"], atol=1e-3)
    assert all(cover in set(figs.loc[cid == k, "file_id"]) for k, cover in c["cover_file_id"].items())
    assert figs.loc[clustered, "figure_cluster_confidence"].between(0, 1).all()
    assert figs.loc[~clustered, "figure_cluster_confidence"].isna().all()


def test_clustered_with_given_labels(ds):
    pred = np.where(ds.labels % 2 == 0, ds.labels // 2, -1)
    figs, clusters = ds.clustered(pred)
    assert (figs["cluster_state"] == "independent").sum() == (pred < 0).sum()
    assert len(clusters) == len(np.unique(pred[pred >= 0]))
    with pytest.raises(ValueError, match="one entry per face"):
        ds.clustered(pred[:-1])


def test_pages_load_back_with_the_loaders(ds):
    pages = ds.to_imm_pages(page_size=30)
    figs, clusters = ds.clustered()
    assert len(pages["files"]) == -(-len(ds.files) // 30) and len(pages["clusters"]) == -(-len(clusters) // 30)
    assert [bool(p["NextToken"]) for p in pages["files"]] == [True] * (len(pages["files"]) - 1) + [False]
    assert all(p["TotalCount"] == len(clusters) for p in pages["clusters"])
    loaded = load_figures(pages["files"])
    pd.testing.assert_frame_equal(loaded[figs.columns].reset_index(drop=True), figs.reset_index(drop=True))
    pd.testing.assert_frame_equal(load_files(pages["files"])[ds.files.columns], ds.files)
    pd.testing.assert_frame_equal(load_clusters(pages["clusters"])[clusters.columns], clusters)
    text = json.dumps(pages)
    times = re.findall(r'"(?:Produce|Create|Update|FileCreate|FileModified)Time": "([^"]+)"', text)
    assert times and all(LOCAL_TIME.match(t) for t in times)
    video_faces = [fig for p in pages["files"] for d in p["Files"] if d["MediaType"] == "video" for fig in d["Figures"]]
    assert video_faces and all(isinstance(fig.get("Timestamp"), float) for fig in video_faces)
    cover = pages["clusters"][0]["FigureClusters"][0]["Cover"]
    assert len(cover["Figures"]) == 1 and "FigureClusterId" not in cover["Figures"][0]


def test_pages_before_clustering(ds):
    pages = ds.to_imm_pages(clustered=False)
    assert pages["clusters"][0]["FigureClusters"] == [] and pages["clusters"][0]["TotalCount"] == 0
    before = load_figures(pages["files"])
    assert (before["figure_cluster_id"] == CLUSTER_UNAVAILABLE).all()
    np.testing.assert_array_equal(before["figure_id"], ds.figures["figure_id"])


def test_committed_sample_is_reproducible_and_aligned(sample_dir, tmp_path):
    from imm_analysis.synth.__main__ import SAMPLE_PARAMS, main

    size = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
    assert size < 1.5e6
    figures = load_figures(sample_dir / "files")
    emb = np.load(sample_dir / "embeddings.npy")
    truth = pd.read_csv(sample_dir / "truth.csv")
    assert emb.dtype == np.float32 and emb.shape == (len(figures), 128)
    np.testing.assert_array_equal(truth["figure_id"], figures["figure_id"])
    assert 400 <= len(figures) <= 600
    # python -m imm_analysis.synth regenerates it: what is exact by construction (ids, JSON,
    # CSV, counts: integers and numpy's portable random streams) byte for byte; the
    # embeddings pass through LAPACK (QR) and BLAS (matmul), whose last bits depend on the
    # CPU and the BLAS build, so they are compared within a stated tolerance.
    assert main(["--out", str(tmp_path)]) == 0
    for name in (
        "truth.csv",
        "README.md",
        "files/page-000.json",
        "clusters/page-000.json",
        "before/page-000.json",
    ):
        assert (tmp_path / name).read_bytes() == (sample_dir / name).read_bytes(), name
    again = np.load(tmp_path / "embeddings.npy")
    assert again.dtype == emb.dtype and again.shape == emb.shape
    # float32 unit vectors: a few ulps (~1e-7) of rounding between machines; 1e-5 is far
    # below any similarity the sample is used for (same person ~0.6, different ~0)
    np.testing.assert_allclose(again, emb, rtol=0, atol=1e-5)
    ds = make_dataset(**SAMPLE_PARAMS)
    np.testing.assert_allclose(ds.embeddings, emb, rtol=0, atol=1e-5)


def test_write_sample_layout(tmp_path):
    out = write_sample(tmp_path / "s", n_people=4, n_strangers=2, seed=1, page_size=5)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"README.md", "embeddings.npy", "truth.csv", "files/page-000.json", "before/page-000.json"} <= names
    assert load_figures(out / "before")["cluster_state"].eq("unavailable").all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"faces_per_person": (0, 3)},
        {"hd_share": 1.5},
        {"days": 0},
        {"n_strangers": -1},
        {"n_people": 0, "n_strangers": 0},
    ],
)
def test_make_dataset_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_dataset(**kwargs)


@pytest.mark.parametrize(("hd_share", "expected"), [(0.0, 0.0), (1.0, 1.0)])
def test_hd_share_extremes_are_exact(hd_share, expected):
    ds = make_dataset(12, hd_share=hd_share, seed=8)
    assert hd_mask(ds.figures)[0].mean() == expected
    clusters = ds.clustered()[1]
    assert len(clusters) == (0 if hd_share == 0 else 12)


@pytest.mark.parametrize("clustered", [True, False])
def test_page_size_only_changes_how_records_are_split(ds, clustered):
    def records(pages):
        return [r for p in pages["clusters"] for r in p["FigureClusters"]], [r for p in pages["files"] for r in p["Files"]]

    n_clusters = len(ds.clustered()[1]) if clustered else 0
    reference = records(ds.to_imm_pages(clustered, page_size=10_000))
    assert len(reference[0]) == n_clusters and len(reference[1]) == len(ds.files)
    for size in (1, 7, 100):
        pages = ds.to_imm_pages(clustered, page_size=size)
        assert records(pages) == reference, size
        assert [len(p["Files"]) for p in pages["files"]][:-1] == [size] * (len(pages["files"]) - 1)
        if n_clusters:
            assert len(pages["clusters"]) == -(-n_clusters // size)
            assert all(p["TotalCount"] == n_clusters for p in pages["clusters"])
    # a Cover is a copy: editing it leaves the file's own record alone
    if clustered:
        pages = ds.to_imm_pages(clustered, page_size=7)
        cover = pages["clusters"][0]["FigureClusters"][0]["Cover"]
        file_record = next(r for r in records(pages)[1] if r["ObjectId"] == cover["ObjectId"])
        cover["Figures"][0]["Boundary"]["Left"] = -1
        cover["CustomLabels"]["store"] = "edited"
        assert all(f["Boundary"]["Left"] >= 0 for f in file_record["Figures"])
        assert file_record["CustomLabels"]["store"] != "edited"
