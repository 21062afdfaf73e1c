"""SearchLibrary on synthetic embeddings (no model needed): search, persistence, names, IMS shapes and loaders."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from imm_analysis import (
    ClusterState,
    SearchLibrary,
    load_media_clips,
    search_media_by_face,
    search_media_clip_by_face,
)
from imm_analysis.faces.embed import EmbedResult
from imm_analysis.io.errors import IMMFormatError
from imm_analysis.io.media_clips import load_face_comparisons, load_figure_cluster_matches, load_media_infos
from imm_analysis.search.library import RESULT_COLUMNS

DIM = 64
N_PEOPLE = 30


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_result(seed: int = 0) -> tuple[EmbedResult, np.ndarray, dict]:
    """Photos of 30 people (2 each) and two videos: v0 = person 0 (0-3 s), person 1 (1-2 s), person 0 again
    (6-8 s); v1 = person 2 (0-4 s). Returns the result, the identities, and the truth of the videos."""
    rng = np.random.default_rng(seed)
    ident = _unit(rng.normal(size=(N_PEOPLE, DIM)))

    def face(p):
        return _unit(ident[p] + 0.6 * rng.normal(size=DIM) / np.sqrt(DIM))

    files, figs, emb = [], [], []
    for p in range(N_PEOPLE):
        for k in range(2):
            fid = f"{p:02d}{k}".ljust(32, "a")
            files.append({"file_id": fid, "uri": f"/photos/p{p}_{k}.jpg", "media_type": "image", "figure_count": 1,
                          "image_width": 400, "image_height": 500})
            figs.append({"file_id": fid, "uri": f"/photos/p{p}_{k}.jpg", "media_type": "image",
                         "figure_id": f"{fid}-0-0", "timestamp": np.nan, "frame_index": pd.NA, "left": 100,
                         "top": 100, "width": 150, "height": 200, "face_quality": 0.9})
            emb.append(face(p))
    truth = {"v0": {0: [(0.0, 3.0), (6.0, 8.0)], 1: [(1.0, 2.0)]}, "v1": {2: [(0.0, 4.0)]}}
    for v, people in truth.items():
        fid = v.ljust(32, "b")
        n = 0
        for t in np.arange(0, 8.01, 0.5):
            for slot, (p, spans) in enumerate(people.items()):
                if any(a <= t <= b for a, b in spans):
                    figs.append({"file_id": fid, "uri": f"/videos/{v}.mp4", "media_type": "video",
                                 "figure_id": f"{fid}-{int(t * 30)}-{slot}", "timestamp": t,
                                 "frame_index": int(t * 30), "left": 50 + 300 * slot + int(4 * t), "top": 60,
                                 "width": 80, "height": 100, "face_quality": 0.5 + 0.01 * n})
                    emb.append(face(p))
                    n += 1
        files.append({"file_id": fid, "uri": f"/videos/{v}.mp4", "media_type": "video", "figure_count": n,
                      "video_width": 640, "video_height": 360, "duration": 9.0})
    errors = pd.DataFrame(columns=["uri", "path", "file_id", "error", "reason"])
    res = EmbedResult(pd.DataFrame(files), pd.DataFrame(figs), np.stack(emb), errors, "synthetic:model")
    return res, ident, truth


@pytest.fixture(scope="module")
def synth():
    res, ident, truth = synthetic_result()
    return SearchLibrary.from_result(res, fps=2.0), ident, truth


def test_tracks_follow_the_truth(synth):
    lib, _, truth = synth
    tracks = lib.items.loc[lib.items["media_type"] == "video"]
    assert len(tracks) == 4  # v0: two of person 0, one of person 1; v1: one
    v0 = tracks.loc[tracks["uri"] == "/videos/v0.mp4"].sort_values(["start_time", "end_time"])
    spans = sorted(zip(v0["start_time"], v0["end_time"], strict=True))
    assert spans == [(0.0, 3.0), (1.0, 2.0), (6.0, 8.0)]
    assert (lib.media["item_count"].sum()) == len(lib.items)


def test_search_by_embedding_best_first_with_calibrated_threshold(synth):
    lib, ident, _ = synth
    hits = lib.search(ident[0], max_results=10)
    assert list(hits.columns) == RESULT_COLUMNS
    assert hits["similarity"].is_monotonic_decreasing
    assert hits["score"].is_monotonic_decreasing and hits["score"].between(0, 1).all()
    assert (hits["similarity"] >= lib.threshold).all()
    # person 0: two photos and two video tracks, nobody else
    assert sorted(hits["media_type"]) == ["image", "image", "video", "video"]
    assert set(hits.loc[hits["media_type"] == "image", "uri"]) == {"/photos/p0_0.jpg", "/photos/p0_1.jpg"}
    assert hits.loc[hits["media_type"] == "image", "track_id"].isna().all()
    assert sorted(hits.loc[hits["media_type"] == "video", "start_time"]) == [0.0, 6.0]
    only_video = lib.search(ident[0], media_type="video")
    assert (only_video["media_type"] == "video").all() and len(only_video) == 2


def test_score_depends_only_on_similarity(synth):
    lib, ident, _ = synth
    a = lib.search(ident[3], threshold=-1.0, max_results=50)
    b = lib.search(ident[3], max_results=50)
    merged = b.merge(a, on=["media_id", "figure_id"], suffixes=("", "_loose"))
    np.testing.assert_array_equal(merged["score"], merged["score_loose"])
    assert len(a) == 50 and len(b) < len(a)


def test_search_by_figure_id_and_track_id(synth):
    lib, _, _ = synth
    fid = lib.items.loc[lib.items["uri"] == "/photos/p5_0.jpg", "figure_id"].iloc[0]
    hits = lib.search(fid)
    assert hits["figure_id"].iloc[0] == fid and hits["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert "/photos/p5_1.jpg" in set(hits["uri"])
    tid = lib.items["track_id"].dropna().iloc[0]
    assert lib.search(tid)["track_id"].iloc[0] == tid
    with pytest.raises(KeyError, match="nope"):
        lib.search("nope")
    with pytest.raises(ValueError, match="dim"):
        lib.search(np.ones(DIM + 1))
    with pytest.raises(ValueError, match="model pack"):
        lib.search(np.zeros((20, 20, 3), np.uint8))  # an image query needs the model


def test_save_load_remove_round_trip(synth, tmp_path):
    lib, ident, _ = synth
    lib.save(tmp_path / "lib")
    back = SearchLibrary.load(tmp_path / "lib")
    pd.testing.assert_frame_equal(back.items, lib.items)
    np.testing.assert_array_equal(back.item_embeddings, lib.item_embeddings)
    assert back.threshold == pytest.approx(lib.threshold)
    pd.testing.assert_frame_equal(back.search(ident[2]), lib.search(ident[2]))
    v1 = back.media.loc[back.media["uri"] == "/videos/v1.mp4", "media_id"].iloc[0]
    back.remove([v1])
    assert v1 not in set(back.items["media_id"]) and v1 not in set(back.faces["media_id"])
    assert len(back.faces) == len(back.face_embeddings)
    again = SearchLibrary.load(tmp_path / "lib")  # remove() saved it
    assert len(again.items) == len(lib.items) - 1
    with pytest.raises(KeyError, match="not in this library"):
        back.remove("unknown-media")
    # a half-written folder is refused
    (tmp_path / "lib" / "items.npy").unlink()
    with pytest.raises(FileNotFoundError):
        SearchLibrary.load(tmp_path / "lib")
    meta = json.loads((tmp_path / "lib" / "library.json").read_text())
    meta["counts"]["items"] += 1
    again.save(tmp_path / "lib2")
    (tmp_path / "lib2" / "library.json").write_text(json.dumps(dict(meta, counts=dict(meta["counts"], items=999))))
    with pytest.raises(ValueError, match="not written completely"):
        SearchLibrary.load(tmp_path / "lib2")


def test_an_interrupted_re_save_is_refused_at_load(synth, tmp_path, monkeypatch):
    import imm_analysis.io.atomic as atomic

    lib, _, _ = synth
    folder = lib.save(tmp_path / "copy")
    assert len(SearchLibrary.load(folder)) == len(lib)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    # same row counts, new frames written, the embeddings not: must not load as a library
    monkeypatch.setattr(atomic, "atomic_save_npy", fail)
    with pytest.raises(OSError, match="disk full"):
        lib.save(folder)
    with pytest.raises(FileNotFoundError, match="not a search library"):
        SearchLibrary.load(folder)
    monkeypatch.undo()
    assert len(SearchLibrary.load(lib.save(folder))) == len(lib)


def test_cluster_names_become_labels():
    res, ident, _ = synthetic_result()
    lib = SearchLibrary.from_result(res, fps=2.0)  # its own library: names change it
    state = ClusterState.from_figures(lib.faces[["figure_id"]].assign(file_id=lib.faces["media_id"]),
                                      lib.face_embeddings, threshold=0.4, seed=0,
                                      hd_rule=lambda f: np.ones(len(f), bool))
    row = int(np.argmax(lib.face_embeddings @ ident[0]))
    cid = state.figures["figure_cluster_id"].iloc[row]
    state.rename(cid, "Person Zero")
    lib.apply_state(state)
    hits = lib.search(ident[0])
    assert (hits["label_name"] == "Person Zero").sum() >= 2
    tok = "tok-named"
    r = search_media_by_face(lib, ident[0], face_search_token=tok)
    vid = lib.media.loc[lib.media["uri"] == "/videos/v0.mp4", "media_id"].iloc[0]
    clips = search_media_clip_by_face(lib, face_search_token=tok, media_id=vid)
    named = [c for c in clips["MediaClipList"] if c["LabelName"] == "Person Zero"]
    assert named and named[0]["Category"] == "custom" and named[0]["EntityId"] == cid
    assert r["Total"] >= 2


def test_ims_shapes_paging_and_errors(synth):
    lib, ident, truth = synth
    r = search_media_by_face(lib, ident[0], face_search_token="t0", page_size=1)
    assert set(r) == {"RequestId", "Success", "Code", "MediaInfoList", "Total"}
    assert r["Success"] == "true" and r["Code"] == "200" and re.fullmatch(r"[0-9A-F-]{36}", r["RequestId"])
    assert r["Total"] == 3 and len(r["MediaInfoList"]) == 1  # v0 and the two photos
    ids = [m["MediaId"] for p in (1, 2, 3) for m in
           search_media_by_face(lib, ident[0], face_search_token="t0", page_no=p, page_size=1)["MediaInfoList"]]
    assert len(set(ids)) == 3
    vid = lib.media.loc[lib.media["uri"] == "/videos/v0.mp4", "media_id"].iloc[0]
    assert vid in ids
    c = search_media_clip_by_face(lib, face_search_token="t0", media_id=vid)
    assert set(c) == {"RequestId", "Success", "Code", "MediaClipList", "Total"}
    assert c["Total"] == 1
    clip = c["MediaClipList"][0]
    assert set(clip) == {"Score", "EntityId", "LabelName", "Category", "OccurrencesInfos"}
    assert 0 <= clip["Score"] <= 1 and clip["Category"] == "unknown" and clip["LabelName"] is None
    spans = [(o["StartTime"], o["EndTime"]) for o in clip["OccurrencesInfos"]]
    assert spans == truth["v0"][0]
    occ = clip["OccurrencesInfos"][0]
    assert set(occ) == {"StartTime", "EndTime", "Expression", "TrackData"}
    assert len(occ["TrackData"]) == 7 and set(occ["TrackData"][0]["BoxPosition"]) == {"X", "Y", "W", "H"}
    assert all(isinstance(v, int) for v in occ["TrackData"][0]["BoxPosition"].values())
    json.dumps(c)  # plain JSON types only
    with pytest.raises(ValueError, match="50"):
        search_media_clip_by_face(lib, face_search_token="t0", media_id=vid, page_size=51)
    with pytest.raises(ValueError, match="unknown face_search_token 'never-made'"):
        search_media_clip_by_face(lib, face_search_token="never-made", media_id=vid)
    with pytest.raises(ValueError, match="unknown media_id 'zzz'"):
        search_media_clip_by_face(lib, face_search_token="t0", media_id="zzz")
    with pytest.raises(ValueError, match="page_no"):
        search_media_by_face(lib, ident[0], face_search_token="t0", page_no=0)


def test_media_clips_round_trip_through_loaders(synth, tmp_path):
    lib, ident, truth = synth
    vid = lib.media.loc[lib.media["uri"] == "/videos/v0.mp4", "media_id"].iloc[0]
    docs = []
    for p in (0, 1):
        search_media_by_face(lib, ident[p], face_search_token=f"p{p}")
        docs.append(search_media_clip_by_face(lib, face_search_token=f"p{p}", media_id=vid))
    clips, pts = load_media_clips(docs, points=True)
    assert len(clips) == 3  # person 0 twice, person 1 once
    spans = sorted(zip(clips["start_time"], clips["end_time"], strict=True))
    assert spans == sorted(truth["v0"][0] + truth["v0"][1])
    assert clips["point_count"].sum() == len(pts)
    assert (pts.groupby("occurrence").size() == clips.set_index("occurrence")["point_count"]).all()
    # files, a folder, a glob and JSON Lines read the same
    folder = tmp_path / "clips"
    folder.mkdir()
    for i, d in enumerate(docs):
        (folder / f"r{i}.json").write_text(json.dumps(d))
    (tmp_path / "all.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    for src in (folder, str(folder / "*.json"), tmp_path / "all.jsonl"):
        again = load_media_clips(src)
        np.testing.assert_array_equal(again["start_time"], clips["start_time"])
        np.testing.assert_array_equal(again["score"], clips["score"])
    infos = load_media_infos(search_media_by_face(lib, ident[0], face_search_token="x"))
    assert vid in set(infos["media_id"]) and infos["total"].iloc[0] == len(infos)


def test_loader_errors_name_file_record_and_field(tmp_path):
    bad = {"MediaClipList": [{"Score": 0.5, "OccurrencesInfos": [{"StartTime": "soon", "EndTime": 2.0}]},
                             {"Score": 0.7, "OccurrencesInfos": [{"StartTime": 1.0, "EndTime": 2.0}]}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(IMMFormatError) as err:
        load_media_clips(path)
    assert str(path) in str(err.value) and "MediaClipList[0].OccurrencesInfos[0]" in str(err.value)
    assert err.value.field == "StartTime"
    got = load_media_clips(path, errors="collect")
    assert len(got) == 1 and got["score"].iloc[0] == 0.7
    assert got.attrs["errors"][0]["field"] == "StartTime"
    with pytest.raises(IMMFormatError, match="not a SearchMediaClipByFace response"):
        load_media_clips({"Files": []})
    (tmp_path / "cut.json").write_text('{"MediaClipList": [')
    assert len(load_media_clips(tmp_path / "cut.json", errors="collect").attrs["errors"]) == 1


def test_imm_shape_loaders_read_sdk_wrappers():
    body = {"RequestId": "r", "Clusters": [{"Boundary": {"Left": 1, "Top": 2, "Width": 3, "Height": 4},
                                            "ClusterId": "Cluster-a", "Similarity": 0.7}]}
    got = load_figure_cluster_matches({"headers": {}, "statusCode": 200, "body": body})
    assert got[["cluster_id", "similarity", "left", "height"]].values.tolist() == [["Cluster-a", 0.7, 1, 4]]
    assert load_face_comparisons({"RequestId": "q", "Similarity": 0.25})["similarity"].tolist() == [0.25]


def test_seed_document_example_loads(shared_dir):
    text = next((shared_dir / "seeds").glob("004_*.txt")).read_text()
    start = text.index("{", text.index("JSON format"))
    doc = json.loads(text[start : text.rindex("}") + 1])
    clips, pts = load_media_clips(doc, points=True)
    row = clips.iloc[0]
    assert (row["entity_id"], row["label_name"], row["category"], row["expression"]) == (
        "1031025****", "John Doe", "celebrity", "Calm")
    assert row["start_time"] == pytest.approx(61.066353) and row["end_time"] == pytest.approx(69.06635)
    assert row["total"] == 5
    assert pts[["x", "y", "w", "h"]].iloc[0].tolist() == [517, 409, 128, 168]


def test_search_package_exports_agree():
    import ast
    import importlib
    from pathlib import Path

    import imm_analysis
    import imm_analysis.search as pkg

    tree = ast.parse(Path(pkg.__file__).read_text())
    checked = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.If)
               for imp in ast.walk(node) if isinstance(imp, ast.ImportFrom) for alias in imp.names}
    assert checked == set(pkg._EXPORTS) == set(pkg.__all__)
    for name, module in pkg._EXPORTS.items():
        assert getattr(importlib.import_module(module), name) is getattr(pkg, name)
    for name in ("build_search_library", "SearchLibrary", "search_media_by_face", "search_media_clip_by_face",
                 "search_image_figure_cluster", "compare_image_faces", "load_media_clips"):
        assert name in imm_analysis.__all__ and getattr(imm_analysis, name) is not None
    assert "search" in imm_analysis.__all__


def test_numbers_as_text_must_be_finite():
    doc = {"MediaClipList": [{"Score": "0.5", "OccurrencesInfos": [{"StartTime": "1", "EndTime": "inf"}]},
                             {"Score": "nan", "OccurrencesInfos": [{"StartTime": 1.0, "EndTime": 2.0}]},
                             {"Score": "0.7", "OccurrencesInfos": [{"StartTime": "1.5", "EndTime": "2"}]}]}
    got = load_media_clips(doc, errors="collect")
    assert got[["score", "start_time", "end_time"]].values.tolist() == [[0.7, 1.5, 2.0]]
    assert [(e["record"].split(", ")[-1], e["field"]) for e in got.attrs["errors"]] == [
        ("MediaClipList[0].OccurrencesInfos[0]", "EndTime"), ("MediaClipList[1]", "Score")]


def test_known_pairs_of_a_huge_group_are_capped_before_they_are_built():
    """A photo with thousands of faces gives at most _MAX_KNOWN pairs, without building all n^2 / 2 first."""
    import tracemalloc

    from imm_analysis.search import build

    n = 20_000  # all pairs: 2e8 (3.2 GB of int64 indices)
    tracemalloc.start()
    a, b = build._pairs_within([np.arange(n), np.arange(n, n + 3)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(a) == len(b) and 0.99 * build._MAX_KNOWN <= len(a) <= build._MAX_KNOWN
    assert (a < b).all() and ((a < n) == (b < n)).all()  # every pair lies inside one group
    assert peak < 50 * build._MAX_KNOWN * 8  # a few arrays of the kept pairs, not of all pairs
