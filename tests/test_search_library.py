"""Face search on real faces: the hamilton clip and its portraits, a video made from shared photos
(person A, nobody, person B, A again), the labelled photos, IMS/IMM round trips, bad input, the CLI.

Everything here needs ``../shared`` (model pack, faces) and skips without it. One library is
built per module (the clip, the made video, ``faces/photos`` and a corrupt video) and reused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imm_analysis import (
    ClusterState,
    FaceModel,
    SearchLibrary,
    build_search_library,
    compare_image_faces,
    load_media_clips,
    search_image_figure_cluster,
    search_media_by_face,
    search_media_clip_by_face,
)
from imm_analysis.cli import main as cli_main
from imm_analysis.io.media_clips import load_face_comparisons, load_figure_cluster_matches, load_media_infos
from imm_analysis.search import library as library_module
from imm_analysis.search.query import NoFaceError

FPS = 2.0
INTERVAL = 1.0 / FPS
VIDEO_FPS = 10
# the made video: (person, start s, end s); "nobody" in between is longer than the 1 s gap
A_PHOTO, B_PHOTO = "person_00/img10.jpg", "person_01/img44.jpg"
A_QUERY, B_QUERY = "person_00/img5.jpg", "person_01/img45.jpg"
SEGMENTS = [("A", 0.0, 3.0), (None, 3.0, 5.5), ("B", 5.5, 8.5), ("A", 8.5, 11.5)]


def make_video(path: Path, photos: Path) -> Path:
    """640x360 mp4v at 10 fps: A for 3 s, nobody for 2.5 s, B for 3 s, A for 3 s (faces drift slowly)."""
    import cv2

    faces = {}
    for key, rel in (("A", A_PHOTO), ("B", B_PHOTO)):
        img = cv2.imread(str(photos / rel))
        h, w = img.shape[:2]
        faces[key] = cv2.resize(img, (int(round(w * 320 / h)), 320), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (640, 360))
    assert writer.isOpened()
    try:
        for who, start, end in SEGMENTS:
            for k in range(int(round((end - start) * VIDEO_FPS))):
                frame = np.full((360, 640, 3), 90, np.uint8)
                if who is not None:
                    f = faces[who]
                    x = 60 + 3 * k  # 3 px per frame to the right
                    frame[20 : 20 + f.shape[0], x : x + f.shape[1]] = f[:, : 640 - x]
                writer.write(frame)
    finally:
        writer.release()
    return path


@pytest.fixture(scope="module")
def model(pack_dir):
    return FaceModel(pack_dir)


@pytest.fixture(scope="module")
def setup(model, faces_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    video = make_video(tmp / "a_nobody_b_a.mp4", faces_dir / "photos")
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    clip = faces_dir / "video" / "short_hamilton_clip.mp4"
    lib = build_search_library([clip, video, faces_dir / "photos", corrupt], model, fps=FPS,
                               path=tmp / "lib", progress=False)
    ids = {name: lib.media.loc[lib.media["uri"].str.endswith(name), "media_id"].iloc[0]
           for name in ("short_hamilton_clip.mp4", "a_nobody_b_a.mp4")}
    return lib, ids, tmp


def test_corrupt_video_lands_in_errors_and_the_rest_is_indexed(setup):
    lib, ids, _ = setup
    assert lib.errors["uri"].str.endswith("corrupt.mp4").tolist() == [True]
    assert lib.errors["reason"].iloc[0]
    assert len(lib.media) == 2 + 64  # two videos, 64 photos (labelled, unlabelled, group photos)
    assert (lib.media["media_type"] == "video").sum() == 2
    assert lib.calibration is not None and 0 < lib.threshold < 1
    assert len(lib.item_embeddings) == len(lib.items) and lib.item_embeddings.dtype == np.float32


def test_hamilton_portrait_in_the_clip_finds_clips_inside_the_video(setup, faces_dir):
    lib, ids, _ = setup
    clip = ids["short_hamilton_clip.mp4"]
    duration = float(lib.media.loc[lib.media["media_id"] == clip, "duration"].iloc[0])
    hits = lib.search(faces_dir / "video" / "lin-manuel-miranda.png", media_type="video")
    hits = hits.loc[hits["media_id"] == clip]
    assert len(hits) >= 1
    assert (hits["start_time"] >= 0).all() and (hits["end_time"] <= duration).all()
    assert (hits["start_time"] <= hits["end_time"]).all()
    assert hits["score"].iloc[0] > 0.5  # above the library's threshold
    # he is the clear face of the middle of the clip: several samples, not one
    best = hits.iloc[0]
    assert best["end_time"] - best["start_time"] >= 2 * INTERVAL
    other = lib.search(faces_dir / "video" / "alex-lacamoire.png", media_type="video")
    assert not (other["media_id"] == clip).any()
    # the same portrait as an RGB array, and its embedding, find the same clips
    from imm_analysis.io.media import read_image

    rgb, _ = read_image(faces_dir / "video" / "lin-manuel-miranda.png")
    as_array = lib.search(rgb, media_type="video")
    pd.testing.assert_series_equal(as_array["track_id"], lib.search(
        faces_dir / "video" / "lin-manuel-miranda.png", media_type="video")["track_id"])
    emb = lib.query_embedding(rgb)
    assert emb.shape == (lib.item_embeddings.shape[1],) and emb.dtype == np.float32
    assert lib.search(emb, media_type="video")["track_id"].iloc[0] == best["track_id"]


def _spans(hits: pd.DataFrame) -> list[tuple[float, float]]:
    return sorted(zip(hits["start_time"], hits["end_time"], strict=True))


def test_made_video_a_twice_b_once_with_times_within_one_sample(setup, faces_dir):
    lib, ids, _ = setup
    vid = ids["a_nobody_b_a.mp4"]
    last_frame = 1.0 / VIDEO_FPS
    for who, query in (("A", A_QUERY), ("B", B_QUERY)):
        hits = lib.search(faces_dir / "photos" / query, media_type="video", max_results=20)
        spans = _spans(hits.loc[hits["media_id"] == vid])
        truth = [(s, e - last_frame) for w, s, e in SEGMENTS if w == who]  # last frame shown at e - 0.1 s
        assert len(spans) == len(truth), (who, spans)
        for (s, e), (ts, te) in zip(spans, truth, strict=True):
            assert abs(s - ts) <= INTERVAL + 1e-6 and abs(e - te) <= INTERVAL + 1e-6, (who, spans, truth)
    # no track holds both people: each track of the video matches only one of the two queries
    a = set(lib.search(faces_dir / "photos" / A_QUERY, media_type="video", max_results=50)["track_id"])
    b = set(lib.search(faces_dir / "photos" / B_QUERY, media_type="video", max_results=50)["track_id"])
    assert not (a & b)


def test_each_labelled_person_finds_their_own_photos_first(setup, faces_dir):
    lib, _, _ = setup
    labels = pd.read_csv(faces_dir / "photos" / "labels.csv")
    uri = lib.items["uri"].astype(str)
    rel = uri.str.split("/").str[-2] + "/" + uri.str.split("/").str[-1]
    single = lib.items["media_id"].map(lib.media.set_index("media_id")["face_count"]) == 1
    labelled = rel.isin(labels["identity"] + "/" + labels["file"]) & single & (lib.items["media_type"] == "image")
    who = rel.str.split("/").str[0]
    failures = []
    for person in sorted(labels["identity"].unique()):
        rows = lib.items.index[labelled & (who == person)]
        for r in rows:
            hits = lib.search(lib.items.at[r, "figure_id"], threshold=-1.0, media_type="image", max_results=60)
            hits = hits.loc[hits["figure_id"].isin(lib.items.loc[labelled, "figure_id"])]
            hits = hits.loc[hits["figure_id"] != lib.items.at[r, "figure_id"]]
            own = hits["uri"].str.contains(f"/{person}/").to_numpy()
            n_own = len(rows) - 1
            if not own[:n_own].all():
                failures.append((person, rel[r], own[: n_own + 2].astype(int).tolist()))
    assert not failures, failures


def test_ims_round_trip_on_the_clip(setup, faces_dir):
    lib, ids, _ = setup
    clip = ids["short_hamilton_clip.mp4"]
    r = search_media_by_face(lib, faces_dir / "video" / "lin-manuel-miranda.png", face_search_token="lmm")
    assert clip in [m["MediaId"] for m in r["MediaInfoList"]]
    assert load_media_infos(r)["media_id"].tolist() == [m["MediaId"] for m in r["MediaInfoList"]]
    resp = search_media_clip_by_face(lib, face_search_token="lmm", media_id=clip)
    clips, pts = load_media_clips(resp, points=True)
    hits = lib.search(faces_dir / "video" / "lin-manuel-miranda.png", max_results=50)
    hits = hits.loc[hits["media_id"] == clip]
    assert _spans(clips) == _spans(hits)
    np.testing.assert_allclose(sorted(clips["score"].unique()), [hits["score"].max()], rtol=1e-6)  # float32 products: BLAS order
    track = lib.track_points(hits["track_id"].iloc[0])
    occ = clips.loc[(clips["start_time"] == hits["start_time"].iloc[0])]
    got = pts.loc[pts["occurrence"] == occ["occurrence"].iloc[0]]
    np.testing.assert_allclose(got["timestamp"], track["timestamp"])
    assert got["x"].tolist() == track["left"].tolist() and got["h"].tolist() == track["height"].tolist()
    with pytest.raises(ValueError, match="maximum of 50"):
        search_media_clip_by_face(lib, face_search_token="lmm", media_id=clip, page_size=51)
    with pytest.raises(ValueError, match="unknown face_search_token"):
        search_media_clip_by_face(lib, face_search_token="not-given", media_id=clip)


def test_imm_shapes_round_trip(setup, model, faces_dir):
    lib, ids, _ = setup
    figs = lib.faces[["figure_id"]].assign(file_id=lib.faces["media_id"])
    state = ClusterState.from_figures(figs, lib.face_embeddings, threshold=lib.threshold, seed=0,
                                      hd_rule=lambda f: np.ones(len(f), bool))
    resp = search_image_figure_cluster(state, faces_dir / "video" / "lin-manuel-miranda.png", model)
    got = load_figure_cluster_matches(resp)
    assert len(got) == 1 and got["similarity"].between(0, 1).all()
    # his cluster holds the clip's faces of him
    hits = lib.search(faces_dir / "video" / "lin-manuel-miranda.png", media_type="video")
    best_face = hits["figure_id"].iloc[0]
    cid = state.figures.loc[state.figures["figure_id"] == best_face, "figure_cluster_id"].iloc[0]
    assert got["cluster_id"].iloc[0] == cid
    group = search_image_figure_cluster(state, faces_dir / "group" / "t1.jpg", model)
    assert len(group["Clusters"]) == 6
    same = compare_image_faces(faces_dir / "photos" / A_QUERY, faces_dir / "photos" / A_PHOTO, model)
    diff = compare_image_faces(faces_dir / "photos" / A_QUERY, faces_dir / "photos" / B_PHOTO, model)
    sims = load_face_comparisons([same, diff])["similarity"].tolist()
    assert 0 <= sims[1] < lib.threshold <= sims[0] <= 1


def test_bad_queries_are_clear_errors(setup, model, tmp_path):
    import cv2

    lib, _, _ = setup
    blank = tmp_path / "no_face.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="no_face.png: no face found"):
        lib.search(blank)
    with pytest.raises(NoFaceError, match="no_face.png"):
        compare_image_faces(blank, blank, model)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="broken.mp4"):
        build_search_library(bad, model, progress=False)


def test_add_and_remove_without_re_embedding(model, faces_dir, tmp_path, monkeypatch):
    calls: list[list[str]] = []
    real = library_module._embed

    def counting(source, *args, **kwargs):
        calls.append([str(s) for s in (source if isinstance(source, list) else [source])])
        return real(source, *args, **kwargs)

    monkeypatch.setattr(library_module, "_embed", counting)
    person = faces_dir / "photos" / "person_09"
    lib = build_search_library(faces_dir / "video" / "short_hamilton_clip.mp4", model, path=tmp_path / "lib",
                               progress=False)
    n_items = len(lib)
    lib.add(person, progress=False)
    assert len(calls) == 2 and len(calls[1]) == 3  # the three photos of person_09
    assert (lib.media["media_type"] == "image").sum() == 3
    lib.add([person, faces_dir / "video" / "short_hamilton_clip.mp4"], progress=False)
    assert len(calls) == 2  # nothing new: nothing embedded
    reopened = SearchLibrary.load(tmp_path / "lib", model=model)
    assert len(reopened) == n_items + 3
    np.testing.assert_array_equal(reopened.item_embeddings, lib.item_embeddings)
    hits = reopened.search(person / "img18.jpg", threshold=-1.0, max_results=3, media_type="image")
    assert hits["uri"].str.contains("person_09").all()
    photos = reopened.media.loc[reopened.media["media_type"] == "image", "media_id"].tolist()
    reopened.remove(photos)
    assert len(SearchLibrary.load(tmp_path / "lib")) == n_items
    assert len(calls) == 2


def test_index_and_search_commands(model, pack_dir, faces_dir, tmp_path, capsys):
    def run(*argv: str) -> int:  # the real entry point: its error rules apply
        return cli_main(list(argv))

    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((faces_dir / "photos" / "person_02").glob("*.jpg"))[:4] + sorted(
            (faces_dir / "photos" / "person_04").glob("*.jpg"))[:3]:
        (images / f"{p.parent.name}_{p.name}").symlink_to(p)
    lib_dir = tmp_path / "lib"
    assert run("index", "--images", str(images), "--models", str(pack_dir), "--library", str(lib_dir), "-q") == 0
    assert "7 photos" in capsys.readouterr().out
    # a second run over the same folder finds the library and adds nothing
    assert run("index", "--images", str(images), "--models", str(pack_dir), "--library", str(lib_dir), "-q") == 0
    assert "0 file(s) added" in capsys.readouterr().out
    out = tmp_path / "hits.csv"
    query = sorted((faces_dir / "photos" / "person_04").glob("*.jpg"))[-1]
    assert run("search", "--library", str(lib_dir), "--image", str(query), "--out", str(out),
               "--threshold", "-1", "--max-results", "3", "-q") == 0
    hits = pd.read_csv(out)
    assert len(hits) == 3 and hits["uri"].str.contains("person_04").all()
    assert run("search", "--library", str(lib_dir), "--image", str(query), "-q") == 0
    assert "person_04" in capsys.readouterr().out
    # errors: one line, exit 1
    assert run("search", "--library", str(tmp_path / "none"), "--image", str(query)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.zeros((64, 64, 3), np.uint8))
    assert run("search", "--library", str(lib_dir), "--image", str(blank)) == 1
    err = capsys.readouterr().err
    assert "no face found" in err and "Traceback" not in err and err.count("\n") == 1
    assert run("index", "--images", str(tmp_path / "missing"), "--models", str(pack_dir),
               "--library", str(lib_dir)) == 1
    assert "no such folder" in capsys.readouterr().err
    # an unreadable file is a warning of the CLI's kind, shown with -q too
    (images / "broken.jpg").write_bytes(b"not an image")
    assert run("index", "--images", str(images), "--models", str(pack_dir), "--library", str(lib_dir), "-q") == 0
    err = capsys.readouterr().err
    assert err.startswith("imm-analysis: warning: 1 file(s) could not be read") and "broken.jpg" in err, err
