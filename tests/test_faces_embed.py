"""embed_images on real photos, a group photo, a video and broken files (../shared)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from imm_analysis.faces.embed import EmbedResult, embed_images, resolve_sources
from imm_analysis.faces.model import FaceModel
from imm_analysis.quality import hd_faces
from imm_analysis.schema import CLUSTER_UNAVAILABLE, FIGURE_COLUMNS


@pytest.fixture(scope="module")
def model(pack_dir):
    return FaceModel(pack_dir)


@pytest.fixture(scope="module")
def photos(model, faces_dir):
    return embed_images(faces_dir / "photos", model, progress=False)


def test_every_labelled_photo_yields_its_face(photos, faces_dir):
    labels = pd.read_csv(faces_dir / "photos" / "labels.csv")
    figs = photos.figures
    assert photos.errors.empty
    assert list(figs.columns[: len(FIGURE_COLUMNS)]) == list(FIGURE_COLUMNS)
    assert (figs["figure_cluster_id"] == CLUSTER_UNAVAILABLE).all() and figs["figure_id"].is_unique
    assert photos.embeddings.shape == (len(figs), 128) and photos.embeddings.dtype == np.float32
    key = figs["uri"].str.split("/").str[-2:].str.join("/")
    # the largest face of each labelled photo
    largest = figs.assign(key=key, area=figs["width"] * figs["height"]).sort_values("area").groupby("key").tail(1)
    wanted = labels["identity"] + "/" + labels["file"]
    assert set(wanted) <= set(largest["key"])
    rows = largest.reset_index().set_index("key").loc[wanted, "index"].to_numpy()
    sel = figs.loc[rows]
    emb = photos.embeddings[rows]
    ident = labels["identity"].to_numpy()
    S = emb @ emb.T
    same = ident[:, None] == ident[None]
    np.fill_diagonal(same, False)
    diff = ident[:, None] != ident[None]
    assert S[same].mean() > 0.6 and S[diff].mean() < 0.1
    assert np.percentile(S[same], 10) > np.percentile(S[diff], 99)
    # portraits: near-frontal, good quality, and most pass IMM's rule
    assert sel["face_quality"].median() > 0.9 and sel["yaw"].abs().median() < 15 and sel["pitch"].abs().median() < 15
    assert hd_faces(sel.reset_index(drop=True))["is_hd"].mean() > 0.75
    files = photos.files
    assert files["file_id"].is_unique and (files["media_type"] == "image").all()
    assert (files.set_index("file_id").loc[figs["file_id"], "image_width"].to_numpy() >= figs["width"].to_numpy()).all()


def test_group_photo_six_faces(model, faces_dir):
    res = embed_images([faces_dir / "group" / "t1.jpg"], model, progress=False)
    f = res.figures
    assert len(f) == 6 and len(res.files) == 1 and int(res.files["figure_count"].iloc[0]) == 6
    w, h = int(res.files["image_width"].iloc[0]), int(res.files["image_height"].iloc[0])
    assert (f["left"] >= 0).all() and (f["top"] >= 0).all()
    assert ((f["left"] + f["width"]) <= w).all() and ((f["top"] + f["height"]) <= h).all()
    assert f["width"].between(60, 200).all() and (f["height"] / f["width"]).between(1.0, 1.6).all()
    assert (f[["pitch", "roll", "yaw"]].abs() < 70).all().all() and (f["yaw"].abs() < 20).sum() >= 3
    # sign conventions: the man top right turns toward the image's left (yaw < 0) and is the most
    # turned; the woman at the far left tilts her head counter-clockwise (roll < 0)
    turned = f.loc[f["yaw"].abs().idxmax()]
    assert turned["left"] > 0.6 * w and turned["top"] < 0.2 * h and turned["yaw"] < -30
    far_left = f.loc[f["left"].idxmin()]
    assert far_left["roll"] < -15
    assert (f["det_score"] > 0.5).all() and f["face_quality"].between(0, 1).all()
    # the six people are different: no pair looks like the same person
    S = res.embeddings @ res.embeddings.T
    assert S[~np.eye(6, dtype=bool)].max() < 0.45


def test_video_faces_have_timestamps_inside_clip(model, faces_dir):
    clip = faces_dir / "video" / "short_hamilton_clip.mp4"
    res = embed_images([clip], model, video_fps=0.5, progress=False)
    assert res.errors.empty and len(res.files) == 1
    file = res.files.iloc[0]
    assert file["media_type"] == "video" and file["duration"] == pytest.approx(275 / 29.97, abs=0.1)
    f = res.figures
    assert len(f) >= 3
    assert (f["media_type"] == "video").all()
    assert f["timestamp"].between(0, file["duration"]).all() and f["frame_index"].between(0, 274).all()
    assert set(f["frame_index"].unique()) <= {0, 60, 120, 180, 240}
    from imm_analysis.io.media import video_info

    fps = video_info(clip).fps  # 29.97
    np.testing.assert_allclose(f["timestamp"], f["frame_index"].astype(float) / fps, atol=1e-6)
    assert f["figure_id"].is_unique
    # the portrait of Lin-Manuel Miranda (in the clip) matches a face better than Alex Lacamoire's
    ref = embed_images([faces_dir / "video" / "lin-manuel-miranda.png", faces_dir / "video" / "alex-lacamoire.png"],
                       model, progress=False)
    assert len(ref.figures) == 2
    best = (res.embeddings @ ref.embeddings.T).max(axis=0)
    assert best[0] > 0.35 and best[0] > best[1] + 0.1


def test_broken_files_become_errors(model, faces_dir, tmp_path):
    src = sorted((faces_dir / "photos" / "person_00").glob("*.jpg"))[:3]
    shutil.copy(src[0], tmp_path / "a.jpg")
    (tmp_path / "b.jpg").symlink_to(src[1])
    shutil.copy(src[2], tmp_path / "c.png")  # a JPEG with the wrong extension still decodes
    data = src[0].read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.webp").write_text("not an image at all")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    (tmp_path / "notes.txt").write_text("ignored: not a media extension")
    (tmp_path / "dup.jpg").write_bytes(data)
    res = embed_images(tmp_path, model, progress=False, workers=1)
    ok = set(res.files["filename"])
    assert ok == {"a.jpg", "b.jpg", "c.png"}
    errs = res.errors.set_index(res.errors["path"].str.split("/").str[-1])
    assert set(errs.index) == {"truncated.jpg", "zero.jpg", "text.webp", "broken.mp4", "dup.jpg"}
    assert "empty" in errs.loc["zero.jpg", "reason"]
    assert errs.loc["dup.jpg", "error"] == "DuplicateFile"
    assert len(res.figures) >= 3 and res.figures["file_id"].isin(res.files["file_id"]).all()
    # an explicit list with an unsupported file also reports it
    res2 = embed_images([tmp_path / "notes.txt", tmp_path / "a.jpg"], model, progress=False)
    assert list(res2.errors["reason"].str.contains("unsupported file type")) == [True] and len(res2.files) == 1


def test_pixel_limit_refuses_big_images(model, faces_dir):
    res = embed_images([faces_dir / "group" / "t1.jpg"], model, progress=False, max_pixels=100_000)
    assert res.files.empty and "over the limit" in res.errors["reason"].iloc[0]


def test_files_frame_source_with_uri_root(model, faces_dir, tmp_path):
    bucket = tmp_path / "oss" / "bucket" / "shop1"
    bucket.mkdir(parents=True)
    shutil.copy(faces_dir / "group" / "t1.jpg", bucket / "t1.jpg")
    frame = pd.DataFrame({"uri": ["oss://bucket/shop1/t1.jpg"]})
    res = embed_images(frame, model, uri_root=tmp_path / "oss", progress=False)
    assert list(res.files["uri"]) == ["oss://bucket/shop1/t1.jpg"] and len(res.figures) == 6
    assert (res.figures["uri"] == "oss://bucket/shop1/t1.jpg").all()
    mapped = resolve_sources(frame, uri_root={"oss://bucket/": bucket.parent})
    assert mapped[0].path == bucket / "t1.jpg"
    # a URI that leaves its root, or a remote one without a root, is one error item (never an abort)
    (bad,) = resolve_sources(pd.DataFrame({"uri": ["oss://bucket/../../etc/passwd"]}), uri_root=tmp_path / "oss")
    assert bad.error.startswith("leaves its root")
    (remote,) = resolve_sources(frame)
    assert "needs a uri_root" in remote.error


def test_concat_refuses_two_models(photos):
    other = EmbedResult(photos.files, photos.figures, photos.embeddings, photos.errors, "another:model@123")
    with pytest.raises(ValueError, match="different models"):
        EmbedResult.concat([photos, other])
    both = EmbedResult.concat([photos, photos])
    assert len(both) == 2 * len(photos)


def test_read_image_reduced_decoding_keeps_original_geometry(tmp_path):
    from PIL import Image

    from imm_analysis.io.media import from_original, read_image, to_original

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (1200, 1700, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the upright image is 1200 wide, 1700 high
    img.save(tmp_path / "big.jpg", exif=exif)
    img.save(tmp_path / "big.png")
    full, info_full = read_image(tmp_path / "big.jpg")
    assert full.shape == (1700, 1200, 3) and info_full.scale == 1
    small, info = read_image(tmp_path / "big.jpg", reduce=8, fit=(640, 640))
    # 1700 / 640 = 2.7: halving keeps the image larger than the detector's input, quartering would not
    assert info.scale == 2 and small.shape == (850, 600, 3)
    assert (info.width, info.height) == (1200, 1700) == (info_full.width, info_full.height)
    assert read_image(tmp_path / "big.jpg", reduce=8)[1].scale == 8
    assert read_image(tmp_path / "big.png", reduce=8, fit=(640, 640))[1].scale == 1  # PNG: always full size
    pts = np.array([[0.0, 0.0], [599.0, 849.0]])
    assert np.allclose(to_original(pts, 2), [[0.5, 0.5], [1198.5, 1698.5]])
    assert np.allclose(from_original(to_original(pts, 4), 4), pts)


def test_reduced_decoding_matches_full_decoding(model, faces_dir):
    # the largest photos (reduced decoding applies) and the group photo (small faces: aligned from a finer decode)
    from PIL import Image

    files = sorted((faces_dir / "photos").rglob("*.jpg"), key=lambda p: -np.prod(Image.open(p).size))[:6]
    files.append(faces_dir / "group" / "t1.jpg")
    auto = embed_images(files, model, progress=False)
    full = embed_images(files, model, progress=False, decode_scale=1)
    extra = auto.files.set_index("filename")["extra"]
    assert all(extra[p.name]["decode_scale"] >= 2 for p in files)  # every one of them was decoded reduced
    assert extra["t1.jpg"]["align_scale"] < extra["t1.jpg"]["decode_scale"]  # its small faces forced a finer decode
    assert "decode_scale" not in full.files["extra"].iloc[0]
    cols = ["image_width", "image_height"]
    assert (auto.files[cols].to_numpy() == full.files[cols].to_numpy()).all()
    a, f = auto.figures.set_index("figure_id"), full.figures.set_index("figure_id")
    assert list(a.index) == list(f.index)  # same faces, same order
    for col in ("left", "top", "width", "height"):
        assert (a[col] - f[col]).abs().max() <= max(4, 0.03 * f["width"].max())
    for col, tol in (("yaw", 3.0), ("pitch", 4.0), ("roll", 2.0), ("sharpness", 0.05), ("face_quality", 0.05)):
        assert (a[col] - f[col]).abs().max() < tol, col
    cos = (auto.embeddings * full.embeddings).sum(axis=1)
    assert cos.mean() > 0.98 and cos.min() > 0.9
    with pytest.raises(ValueError, match="decode_scale"):
        embed_images(files[:1], model, progress=False, decode_scale=3)


def test_background_frames_close_their_source_when_the_consumer_stops():
    from imm_analysis.faces.prefetch import _background

    closed = []

    def frames():
        try:
            yield from range(100)
        finally:
            closed.append(True)  # sample_video releases its VideoCapture here

    source = frames()  # held here, so only an explicit close runs its finally
    it = _background(source, maxsize=2)
    assert [next(it), next(it)] == [0, 1]
    it.close()  # returns once the reading thread has ended
    assert closed == [True]
    assert list(_background(iter([1, 2]))) == [1, 2]  # plain iterators (no close) still work
