"""Forget one person from a real run on ``../shared/faces/photos``: cache, saved state, UMAP cache, report folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imm_analysis.io.tombstones import read_tombstones
from imm_analysis.privacy.cache_store import cache_folders, read_chunks


@pytest.fixture(scope="module")
def model(pack_dir):
    from imm_analysis import FaceModel

    return FaceModel(pack_dir)


@pytest.fixture(scope="module")
def run(model, faces_dir, tmp_path_factory):
    """Embedded photos (cached), a saved state, a report folder with tables, page, thumbnails and a UMAP cache."""
    from imm_analysis import ClusterState, embed_images, project_umap, visitor_report

    root = tmp_path_factory.mktemp("forget")
    photos = faces_dir / "photos"
    res = embed_images(photos, model, cache_dir=root / "cache", progress=False)
    with pytest.warns(UserWarning):  # few identities: the calibration says so
        state = ClusterState.from_figures(res.figures, res.embeddings, seed=0)
    state.save(root / "state")
    out = root / "report"
    report = visitor_report(state.figures, files=res.files, clusters=state, faces=True,
                            time_source=["produce_time", "file_modified_time"])
    report.to_html(out / "report.html")
    report.to_csv(out / "tables")
    report.to_parquet(out / "parquet")
    for cid in state.clusters["cluster_id"].astype(str):  # a thumbnail per visitor, named by its id
        (out / "thumbs").mkdir(exist_ok=True)
        (out / "thumbs" / f"{cid}.png").write_bytes(b"\x89PNG not really")
    project_umap(res.embeddings, cache_dir=out / "umap", random_state=0)
    # the person: the largest cluster with a face in a photo shared with other people
    f = state.figures
    shared = f.groupby("file_id")["figure_id"].transform("size") > 1
    cands = f.loc[shared & f["cluster_state"].astype(str).eq("clustered"), "figure_cluster_id"].astype(str)
    sizes = state.clusters.set_index("cluster_id")["face_count"]
    person = max(set(cands), key=lambda c: (int(sizes[c]), c)) if len(cands) else str(sizes.idxmax())
    return {"root": root, "photos": photos, "res": res, "state": state, "person": person}


def _copy(run, tmp_path: Path) -> dict[str, Path]:
    paths = {k: tmp_path / k for k in ("cache", "state", "report")}
    for k, p in paths.items():
        shutil.copytree(run["root"] / k, p)
    return paths


def _float_vectors(doc) -> list:
    """Lists of 8 or more floats anywhere in a JSON document (an embedding would be one)."""
    if isinstance(doc, dict):
        return [v for x in doc.values() for v in _float_vectors(x)]
    if isinstance(doc, list):
        if len(doc) >= 8 and all(isinstance(v, float) for v in doc):
            return [doc]
        return [v for x in doc for v in _float_vectors(x)]
    return []


def _max_sim(x: np.ndarray, q: np.ndarray) -> float:
    if not len(x) or not len(q):
        return -1.0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return float((xn @ qn.T).max())


def test_forget_one_person_everywhere(run, model, tmp_path):
    from imm_analysis import ClusterState, embed_images, forget

    paths = _copy(run, tmp_path)
    before = run["state"]
    person = run["person"]
    receipt = forget([person], state=paths["state"], cache_dir=paths["cache"], outputs=[paths["report"]])
    assert receipt.verified, receipt.to_json()
    thr = receipt.threshold
    state_entry = next(e for e in receipt.stores if e.store == "cluster_state")
    gone = set(state_entry.figure_ids)
    members = set(before.figures.loc[before.figures["figure_cluster_id"].astype(str) == person, "figure_id"].astype(str))
    assert members <= gone and person in state_entry.clusters_removed
    gone_rows = before.figures["figure_id"].astype(str).isin(gone).to_numpy()
    person_emb = before.embeddings[gone_rows]

    # the receipt: JSON, no embedding (no long list of floats), the ids it removed
    doc = json.loads(receipt.to_json())
    assert not _float_vectors(doc) and len(receipt.to_json()) < 20_000
    assert doc["stores"][0]["store"] == "embedding_cache" and doc["stores"][0]["faces"] >= len(members)

    # the saved state: nothing of the person, everyone else unchanged
    after = ClusterState.load(paths["state"])
    ids_after = after.figures["figure_id"].astype(str)
    assert not ids_after.isin(gone).any()
    assert set(ids_after) == set(before.figures["figure_id"].astype(str)) - gone
    old = before.figures.set_index(before.figures["figure_id"].astype(str))
    new = after.figures.set_index(ids_after)
    pd.testing.assert_series_equal(new["figure_cluster_id"].astype(str),
                                   old.loc[new.index, "figure_cluster_id"].astype(str), check_names=False)
    np.testing.assert_array_equal(after.embeddings, before.embeddings[~gone_rows])
    assert person not in set(after.clusters["cluster_id"].astype(str))
    assert _max_sim(after.embeddings, person_emb) < thr
    assert not any("figure_ids" in e and set(e["figure_ids"]) & gone for e in after.edits)
    # other people in the person's photos stay
    their_files = set(before.figures.loc[gone_rows, "file_id"].astype(str))
    others_there = old.index[old["file_id"].astype(str).isin(their_files) & ~old.index.isin(gone)]
    assert len(others_there) and set(others_there) <= set(ids_after)

    # the cache on disk: no row, no embedding of the person
    for folder in cache_folders(paths["cache"]):
        for ch in read_chunks(folder):
            assert not ch.figures["figure_id"].astype(str).isin(gone).any()
            assert _max_sim(ch.embeddings, person_emb) < thr
    assert len(read_tombstones(paths["cache"])) >= len(gone)
    assert not _float_vectors(json.loads((paths["cache"] / "tombstones.json").read_text()))

    # the report folder: no file names the person; UMAP cache gone; other thumbnails kept
    for p in paths["report"].rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert person.encode() not in data, p
            assert not any(g.encode() in data for g in gone), p
            assert person not in p.name
    assert not list(paths["report"].rglob("umap-*.npy"))
    assert len(list((paths["report"] / "thumbs").iterdir())) == len(before.clusters) - len(state_entry.clusters_removed)
    visitors = pd.read_csv(paths["report"] / "tables" / "visitors.csv")
    assert len(visitors) >= 1

    # nothing comes back: embed_images over the same folder (cached), then update
    res2 = embed_images(run["photos"], model, cache_dir=paths["cache"], progress=False)
    assert not res2.figures["figure_id"].astype(str).isin(gone).any()
    assert len(res2.figures) == len(before.figures) - len(gone)
    assert _max_sim(res2.embeddings, person_emb) < thr
    after.update(res2.figures, res2.embeddings)
    assert after.last_update["new_faces"] == 0
    # ... also when the files are embedded afresh (another decoding: new cache folder, boxes differ slightly)
    files = sorted(set(before.figures.loc[gone_rows, "uri"].astype(str)))
    res3 = embed_images(files, model, cache_dir=paths["cache"], decode_scale=1, progress=False)
    assert res3.stats["new_files"] == len(files)
    assert _max_sim(res3.embeddings, person_emb) < thr
    after.update(res3.figures, res3.embeddings)
    assert not after.figures["figure_id"].astype(str).isin(gone).any()
    assert _max_sim(after.embeddings, person_emb) < thr


def test_forget_by_query_face_and_dry_run(run, model, tmp_path):
    from imm_analysis import forget

    paths = _copy(run, tmp_path)
    before = run["state"]
    person = run["person"]
    rows = np.flatnonzero(before.figures["figure_cluster_id"].astype(str).to_numpy() == person)
    query_uri = before.figures["uri"].iloc[rows[0]]
    dry = forget([query_uri], model=model, state=paths["state"], cache_dir=paths["cache"], dry_run=True)
    assert dry.dry_run and dry.verified is None and dry.targets == {"face": 1}
    assert (paths["state"] / "CURRENT").read_text() == (run["root"] / "state" / "CURRENT").read_text()
    assert not (paths["cache"] / "tombstones.json").exists()
    planned = set(next(e for e in dry.stores if e.store == "cluster_state").figure_ids)
    # the query finds at least the cluster's faces; an embedding as query plans the same
    assert set(before.figures["figure_id"].iloc[rows].astype(str)) <= planned
    emb_dry = forget(before.embeddings[rows[0]], state=paths["state"], threshold=dry.threshold, dry_run=True)
    assert set(before.figures["figure_id"].iloc[rows].astype(str)) <= set(
        next(e for e in emb_dry.stores if e.store == "cluster_state").figure_ids)
    real = forget([query_uri], model=model, state=paths["state"], cache_dir=paths["cache"])
    assert real.verified
    assert set(next(e for e in real.stores if e.store == "cluster_state").figure_ids) == planned


def test_unknown_target_raises(run, tmp_path):
    from imm_analysis import forget

    paths = _copy(run, tmp_path)
    with pytest.raises(KeyError, match="no cluster, figure or file id"):
        forget(["Cluster-no-such-person"], state=paths["state"], threshold=0.5)


def test_forget_from_a_search_library_folder(run, model, tmp_path):
    search = pytest.importorskip("imm_analysis.search")
    paths = _copy(run, tmp_path)
    before = run["state"]
    lib = search.build_search_library(run["photos"], model, path=tmp_path / "lib", progress=False)
    n_faces = len(lib.faces)
    from imm_analysis import forget

    receipt = forget([run["person"]], state=paths["state"], libraries=[tmp_path / "lib"])
    assert receipt.verified, receipt.to_json()
    gone = set(next(e for e in receipt.stores if e.store == "cluster_state").figure_ids)
    person_emb = before.embeddings[before.figures["figure_id"].astype(str).isin(gone).to_numpy()]
    entry = next(e for e in receipt.stores if e.store == "search_library")
    loaded = search.SearchLibrary.load(tmp_path / "lib", model=model)
    assert entry.faces == n_faces - len(loaded.faces) and entry.faces >= len(gone)
    assert not loaded.faces["figure_id"].astype(str).isin(gone).any()
    assert _max_sim(loaded.face_embeddings, person_emb) < receipt.threshold
    # the library's own embedding cache was erased as well, so adding the photos again brings back
    # the other people of the removed photos, but not the person
    loaded.add(run["photos"], progress=False)
    assert not loaded.faces["figure_id"].astype(str).isin(gone).any()
    assert _max_sim(loaded.face_embeddings, person_emb) < receipt.threshold
    assert len(loaded.faces) == n_faces - len(gone)
