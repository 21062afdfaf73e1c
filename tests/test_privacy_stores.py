"""``forget`` on synthetic stores: exact figure and file targets, a duck-typed search library, dry runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_privacy_crash import DIM, MODEL_ID, _load_all, _synthetic

from imm_analysis import forget


class FakeLibrary:
    """The search-library protocol forget relies on: ``faces``, ``face_embeddings``, ``remove(media_ids)``."""

    def __init__(self, figures: pd.DataFrame, embeddings: np.ndarray) -> None:
        self.faces = figures[["figure_id", "file_id", "left", "top", "width", "height"]].rename(
            columns={"file_id": "media_id"}).reset_index(drop=True)
        self.face_embeddings = embeddings.copy()
        self.removed: list[str] = []

    def remove(self, media_ids):
        ids = set(media_ids)
        self.removed += sorted(ids)
        keep = ~self.faces["media_id"].isin(ids).to_numpy()
        self.faces = self.faces.loc[keep].reset_index(drop=True)
        self.face_embeddings = self.face_embeddings[keep]
        return self


@pytest.fixture
def stores(tmp_path):
    person, members = _synthetic(tmp_path)
    return tmp_path, person, members, _load_all(tmp_path)


def test_library_is_erased_and_whole_media_noted(stores):
    root, person, members, old = stores
    st = old["state"]
    lib = FakeLibrary(st.figures, st.embeddings)
    receipt = forget([person], state=root / "state", libraries=[lib], threshold=0.5)
    assert receipt.verified
    assert not lib.faces["figure_id"].isin(members).any()
    person_files = set(st.figures.loc[st.figures["figure_id"].isin(members), "file_id"])
    assert set(lib.removed) == person_files
    entry = next(e for e in receipt.stores if e.store == "search_library")
    assert entry.faces == len(st.figures) - len(lib.faces)
    assert any("other people" in n for n in entry.notes)  # photos shared with others went whole
    # the state kept the others of those shared photos
    after = _load_all(root)["state"]
    shared = st.figures["file_id"].isin(person_files) & ~st.figures["figure_id"].isin(members)
    assert shared.any() and set(st.figures.loc[shared, "figure_id"]) <= set(after.figures["figure_id"])


def test_file_and_figure_targets_are_exact(stores):
    root, person, members, old = stores
    st = old["state"]
    shared_file = st.figures.loc[st.figures.duplicated("file_id", keep=False), "file_id"].iloc[0]
    one_face = sorted(members - set(st.figures.loc[st.figures["file_id"] == shared_file, "figure_id"]))[0]
    receipt = forget([shared_file, one_face], state=root / "state", cache_dir=root / "cache", threshold=0.5)
    assert receipt.verified and receipt.targets == {"file": 1, "figure": 1}
    gone = set(st.figures.loc[st.figures["file_id"] == shared_file, "figure_id"]) | {one_face}
    new = _load_all(root)
    assert set(new["state"].figures["figure_id"]) == set(st.figures["figure_id"]) - gone
    assert set(new["cache"]) == set(old["cache"]) - gone
    from imm_analysis.faces.cache import EmbeddingCache

    entries = EmbeddingCache(root / "cache", MODEL_ID, DIM, {"mode": "detect"}).load()
    assert not any(f["file_id"] == shared_file for e in entries.values() for f in e.file)  # the file's record went
    for fid in set(old["cache"]) - gone:
        np.testing.assert_array_equal(new["cache"][fid], old["cache"][fid])


def test_exact_targets_need_no_threshold(stores, monkeypatch):
    """Figure and file ids erase exactly those faces: no threshold is calibrated, none is needed."""
    import imm_analysis.cluster.calibrate as calibrate

    def refuse(*args, **kwargs):
        raise AssertionError("forget calibrated a threshold for exact targets")

    monkeypatch.setattr(calibrate, "calibrate_threshold", refuse)
    root, person, members, old = stores
    one_face = sorted(members)[0]
    receipt = forget([one_face], state=root / "state", cache_dir=root / "cache")
    assert receipt.verified and receipt.threshold is None and receipt.threshold_source == "not needed"
    assert one_face not in set(_load_all(root)["state"].figures["figure_id"])
    assert "threshold=None" in repr(receipt)
    with pytest.raises(AssertionError, match="calibrated"):  # a person target still needs one
        forget([person], state=root / "state")


def test_dry_run_changes_nothing_and_plans_what_the_real_run_does(stores):
    root, person, members, old = stores
    from imm_analysis.privacy.cache_store import cache_folders

    (folder,) = cache_folders(root / "cache")  # a chunk part a dead process left: a dry run leaves it too
    (folder / "part-00000000000000000001-99999999-abcdef.npy").write_bytes(b"partial")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    plan = forget([person], state=root / "state", cache_dir=root / "cache", outputs=[root / "report"],
                  threshold=0.5, dry_run=True)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    real = forget([person], state=root / "state", cache_dir=root / "cache", outputs=[root / "report"], threshold=0.5)
    for a, b in zip(plan.stores, real.stores, strict=True):
        assert (a.store, a.figure_ids, a.files_removed, sorted(a.files_rewritten)) == (
            b.store, b.figure_ids, b.files_removed, sorted(b.files_rewritten))
    assert set(next(e for e in real.stores if e.store == "cluster_state").figure_ids) == members


def test_query_embedding_without_sweep_takes_only_faces_above_threshold(stores):
    root, person, members, old = stores
    st = old["state"]
    q = st.embeddings[st.figures["figure_id"].isin(members).to_numpy()].mean(axis=0)
    sims = (st.embeddings / np.linalg.norm(st.embeddings, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    thr = float(np.sort(sims[st.figures["figure_id"].isin(members).to_numpy()])[1])  # leaves the least similar out
    r = forget(q, state=root / "state", threshold=thr, sweep=False, dry_run=True)
    planned = set(next(e for e in r.stores if e.store == "cluster_state").figure_ids)
    assert planned == set(st.figures.loc[sims >= thr, "figure_id"])
    assert r.targets == {"face": 1}


def test_erase_outputs_reads_upper_case_csv_as_csv(tmp_path):
    """A table named ``.CSV`` is a CSV table (the suffix decides case-blind), not Parquet."""
    from imm_analysis.privacy.outputs import erase_outputs

    table = tmp_path / "VISITORS.CSV"
    table.write_text("visitor_id,visits\nCluster-a,3\nCluster-b,1\n")
    assert erase_outputs(tmp_path, ["Cluster-a"])["rewritten"] == {"VISITORS.CSV": 1}
    assert pd.read_csv(table)["visitor_id"].tolist() == ["Cluster-b"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"frame_index": None, "box": [0, 0, 2, 2]}, "file_id"),
        ({"file_id": "ab", "box": [0, 0, 2]}, "box"),
        ({"file_id": "ab", "box": [0, 0, "2", 2]}, "box"),
        ({"file_id": "ab", "box": [0, 0, 2, 2], "frame_index": 1.5}, "frame_index"),
        ("ab", None),
    ],
)
def test_a_damaged_tombstone_file_names_file_row_and_field(tmp_path, bad, field):
    """A hand-edited ``tombstones.json`` fails when read, naming the file, the row and the field."""
    import json
    import re

    from imm_analysis.io.tombstones import FILE_NAME, add_tombstones, read_tombstones, tombstone_rows

    good = tombstone_rows([{"file_id": "ab", "left": 0, "top": 0, "width": 2, "height": 2, "frame_index": 3}])
    add_tombstones(tmp_path, good)
    assert read_tombstones(tmp_path)[0]["frame_index"] == 3  # what the writer writes reads back
    doc = json.loads((tmp_path / FILE_NAME).read_text())
    (tmp_path / FILE_NAME).write_text(json.dumps({**doc, "tombstones": [*doc["tombstones"], bad]}))
    where = re.escape(f"{tmp_path / FILE_NAME}: tombstone 1: ") + (f"field '{field}'" if field else "expected an object")
    with pytest.raises(ValueError, match=where):
        read_tombstones(tmp_path)


def test_erase_outputs_keeps_a_parquet_dataset_readable(sample_dir, tmp_path):
    """A dataset part rewritten by erase_outputs keeps its metadata: the dataset reads with the same columns."""
    from imm_analysis.io import exports_to_parquet, load_figures
    from imm_analysis.privacy.outputs import erase_outputs

    out = exports_to_parquet(sorted((sample_dir / "files").glob("*.json"))[:2], tmp_path / "ds", workers=1)
    before = load_figures(out)
    gone = before["figure_id"].iloc[0]
    assert erase_outputs(tmp_path, [gone])["rewritten"] == {"ds/figures/part-00000.parquet": 1}
    after = load_figures(out)
    assert list(after.columns) == list(before.columns) and (after.dtypes == before.dtypes).all()
    kept = before[before["figure_id"] != gone].reset_index(drop=True)
    pd.testing.assert_frame_equal(after, kept, check_categorical=False)
