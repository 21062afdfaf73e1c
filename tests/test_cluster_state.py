"""ClusterState: edits, incremental updates honouring them, file removal, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cluster_data import figures_for, people

from imm_analysis import schema
from imm_analysis.cluster.state import ClusterState


@pytest.fixture()
def data():
    """Three people of 6 faces; the first 4 of each are clustered first, the rest arrive later."""
    x, lab = people([6, 6, 6], seed=7)
    figs = figures_for(18)
    first = np.concatenate([np.arange(0, 4), np.arange(6, 10), np.arange(12, 16)])
    later = np.setdiff1d(np.arange(18), first)
    return x, figs, first, later


def make(x, figs, rows, **kw):
    return ClusterState.from_figures(figs.iloc[rows], x[rows], threshold=0.5, seed=0, **kw)


def cid(state, figure_id):
    f = state.figures
    return f.loc[f["figure_id"] == figure_id, "figure_cluster_id"].iloc[0]


def test_from_figures_and_update_keep_ids(data):
    x, figs, first, later = data
    state = make(x, figs, first)
    assert len(state.clusters) == 3 and set(state.figures["cluster_state"]) == {"clustered"}
    ids_before = state.figures.set_index("figure_id")["figure_cluster_id"].copy()
    created = state.clusters.set_index("cluster_id")["create_time"].copy()
    state.update(figs.iloc[later], x[later])
    after = state.figures.set_index("figure_id")["figure_cluster_id"]
    assert (after[ids_before.index] == ids_before).all()
    assert len(state.clusters) == 3 and state.clusters["face_count"].tolist() == [6, 6, 6]
    assert state.last_update["joined"] == 6
    assert (state.clusters.set_index("cluster_id")["create_time"][created.index] == created).all()
    # the same faces again: nothing new, nothing changes
    snapshot = state.figures.copy()
    state.update(figs.iloc[later], x[later])
    assert state.last_update["new_faces"] == 0 and state.last_update["skipped"] == 6
    pd.testing.assert_frame_equal(state.figures, snapshot)


def test_merge_and_rename_persist(data):
    x, figs, first, later = data
    state = make(x, figs, first)
    a, b = cid(state, "face-0"), cid(state, "face-6")
    state.rename(b, "Bob")
    state.merge([a, b], into=a)
    assert len(state.clusters) == 2
    merged = state.clusters.set_index("cluster_id").loc[a]
    assert merged["face_count"] == 8 and merged["name"] == "Bob"
    state.update(figs.iloc[later], x[later])
    # the new faces of both people join the merged cluster, named Bob
    assert cid(state, "face-5") == a and cid(state, "face-11") == a
    assert state.clusters.set_index("cluster_id").loc[a, "face_count"] == 12
    assert state.clusters.set_index("cluster_id").loc[a, "name"] == "Bob"
    assert [e["op"] for e in state.edits] == ["rename", "merge"]


def test_eject_and_move_persist(data):
    x, figs, first, later = data
    state = make(x, figs, first)
    a, b = cid(state, "face-0"), cid(state, "face-6")
    state.eject(["face-1"])
    state.move(["face-2"], b)
    assert cid(state, "face-1") == schema.CLUSTER_INDEPENDENT and cid(state, "face-2") == b
    assert state.clusters.set_index("cluster_id").loc[a, "face_count"] == 2
    state.update(figs.iloc[later], x[later])
    # the ejected face does not come back, the moved face stays moved
    assert cid(state, "face-1") == schema.CLUSTER_INDEPENDENT and cid(state, "face-2") == b
    assert cid(state, "face-4") == a
    with pytest.raises(KeyError):
        state.move(["face-1"], "Cluster-nope")


def test_not_same_person_splits_and_blocks(data):
    x, figs, first, later = data
    state = make(x, figs, first, min_faces=1)
    a = cid(state, "face-0")
    state.not_same_person(["face-0", "face-3"])
    assert cid(state, "face-0") == a and cid(state, "face-3") == schema.CLUSTER_INDEPENDENT
    with pytest.raises(ValueError, match="not the same person"):
        state.move(["face-3"], a)
    state.update(figs.iloc[later], x[later])
    assert cid(state, "face-3") != a


def test_set_cover_and_same_image_checks(data):
    x, figs, first, later = data
    state = make(x, figs, first)
    a = cid(state, "face-0")
    state.set_cover(a, "file-3")
    assert state.clusters.set_index("cluster_id").loc[a, "cover_file_id"] == "file-3"
    state.update(figs.iloc[later], x[later])
    assert state.clusters.set_index("cluster_id").loc[a, "cover_file_id"] == "file-3"
    with pytest.raises(ValueError, match="holds no face"):
        state.set_cover(a, "file-7")


def test_remove_files_updates_stats_and_deletes_empty_clusters(data):
    x, figs, first, later = data
    state = make(x, figs, first)
    a, b = cid(state, "face-0"), cid(state, "face-6")
    state.remove_files(["file-6", "file-7", "file-8", "file-9"])
    assert b not in set(state.clusters["cluster_id"]) and len(state.clusters) == 2
    state.remove_files(["file-0"])
    assert state.clusters.set_index("cluster_id").loc[a, "face_count"] == 3
    assert len(state.figures) == len(state.embeddings) == state.knn.n_samples == 7
    # removed faces do not come back when offered again
    state.update(figs.iloc[[0, 6]], x[[0, 6]])
    assert state.last_update["skipped"] == 2 and "face-0" not in set(state.figures["figure_id"])


def test_save_load_round_trip(tmp_path, data):
    x, figs, first, later = data
    state = make(x, figs, first, project_name="p", dataset_name="d")
    a = cid(state, "face-0")
    state.rename(a, "Alice")
    state.clusters.loc[state.clusters["cluster_id"] == a, "custom_labels"] = [{"role": "staff"}]
    state.eject(["face-1"])
    state.not_same_person(["face-6", "face-12"])
    path = state.save(tmp_path / "state")
    state.save(path)  # overwriting is atomic too
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    loaded = ClusterState.load(path)
    pd.testing.assert_frame_equal(loaded.figures, state.figures)
    pd.testing.assert_frame_equal(loaded.clusters, state.clusters)
    np.testing.assert_array_equal(loaded.embeddings, state.embeddings)
    np.testing.assert_array_equal(loaded.knn.indices, state.knn.indices)
    assert loaded.edits == state.edits and loaded.params == state.params
    # the loaded state keeps honouring the edits
    loaded.update(figs.iloc[later], x[later])
    assert cid(loaded, "face-1") == schema.CLUSTER_INDEPENDENT
    assert loaded.clusters.set_index("cluster_id").loc[a, "name"] == "Alice"
    assert loaded.clusters.set_index("cluster_id").loc[a, "custom_labels"] == {"role": "staff"}
    with pytest.raises(FileNotFoundError):
        ClusterState.load(tmp_path / "missing")


def test_synthetic_update_matches_semantics():
    from imm_analysis.synth import make_dataset

    ds = make_dataset(25, seed=3)
    n = len(ds.figures)
    cut = int(n * 0.8)
    state = ClusterState.from_figures(ds.figures.iloc[:cut], ds.embeddings[:cut], threshold=0.4, seed=1)
    before = state.figures["figure_cluster_id"].copy()
    state.update(ds.figures.iloc[cut:], ds.embeddings[cut:])
    clustered_before = (before != schema.CLUSTER_INDEPENDENT).to_numpy()
    assert (state.figures["figure_cluster_id"][:cut][clustered_before] == before[clustered_before]).all()
    assert state.clusters["face_count"].sum() == (state.figures["cluster_state"] == "clustered").sum()
    images = state.figures[(state.figures["cluster_state"] == "clustered") & (state.figures["media_type"] == "image")]
    assert not images.duplicated(["figure_cluster_id", "file_id"]).any()


def _full_refresh(state):
    """The refresh as it was before edits became incremental: ``cluster_table`` over every face."""
    from imm_analysis.cluster.stats import cluster_table

    def refresh(changed, touched=()):
        state.clusters = cluster_table(state.figures, state.hd, previous=state.clusters, changed=changed,
                                       cover_locked=state._cover_locked, now=state._now(),
                                       project_name=state.params.get("project_name"),
                                       dataset_name=state.params.get("dataset_name"))
        alive = set(state.clusters["cluster_id"].astype(str))
        state._cover_locked = {k: v for k, v in state._cover_locked.items() if k in alive}

    return refresh


def test_incremental_edits_equal_a_full_rebuild(monkeypatch):
    """Random edits (and updates): the clusters table always equals the one a full rebuild gives."""
    from imm_analysis.cluster.stats import cluster_table
    from imm_analysis.synth import make_dataset

    ds = make_dataset(20, seed=5)
    cut = int(len(ds.figures) * 0.8)
    later = np.array_split(np.arange(cut, len(ds.figures)), 3)
    build = dict(threshold=0.45, seed=4, project_name="p")
    monkeypatch.setattr(ClusterState, "_now", lambda self: pd.Timestamp("2026-02-01", tz="UTC"))  # one clock for both
    state = ClusterState.from_figures(ds.figures.iloc[:cut], ds.embeddings[:cut], **build)
    twin = ClusterState.from_figures(ds.figures.iloc[:cut], ds.embeddings[:cut], **build)
    twin._refresh = _full_refresh(twin)
    rng = np.random.default_rng(11)
    ops = ["merge", "move", "move_new", "eject", "rename", "set_cover", "not_same_person", "remove_files", "update"]
    done = {op: 0 for op in ops}
    for step in range(30):
        now = pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(seconds=step)
        state._now = twin._now = lambda now=now: now
        clusters = state.clusters["cluster_id"].astype(str).to_numpy()
        faces = state.figures
        op = ops[rng.integers(len(ops))]
        if op == "update":
            if not later:
                continue
            rows = later.pop(0)
            args = (ds.figures.iloc[rows], ds.embeddings[rows])
        elif op in ("merge", "rename", "set_cover"):
            picked = rng.choice(clusters, size=min(len(clusters), 1 + (op == "merge") + rng.integers(2)), replace=False)
            if op == "merge":
                args = (list(picked),)
            elif op == "rename":
                args = (picked[0], None if rng.random() < 0.3 else f"person {step}")
            else:
                members = faces.loc[faces["figure_cluster_id"] == picked[0], "file_id"].astype(str)
                args = (picked[0], members.iloc[rng.integers(len(members))])
        elif op == "remove_files":
            args = (list(rng.choice(faces["file_id"].astype(str).unique(), size=2, replace=False)),)
        else:
            fids = list(rng.choice(faces["figure_id"].astype(str), size=int(rng.integers(1, 4)), replace=False))
            if op == "move":
                args = (fids, rng.choice(clusters))
            elif op == "move_new":
                op, args = "move", (fids[:1], None)
            else:
                args = (fids,)
        outcomes = []
        for s in (state, twin):
            try:
                getattr(s, op)(*args)
                outcomes.append("ok")
            except ValueError as exc:  # e.g. two faces of one image in one cluster: refused by both
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], (step, op)
        done[op] += outcomes[0] == "ok"
        pd.testing.assert_frame_equal(state.clusters, twin.clusters, obj=f"clusters after step {step} ({op})")
        assert state._cover_locked == twin._cover_locked
        fresh = cluster_table(state.figures, state.hd, previous=state.clusters, cover_locked=state._cover_locked,
                              now=now, project_name="p")
        pd.testing.assert_frame_equal(state.clusters, fresh)
    pd.testing.assert_frame_equal(state.figures, twin.figures)
    assert all(done[op] for op in ops if op != "move_new"), done  # every kind of edit really ran


def test_update_is_the_estimators_partial_fit(data, monkeypatch):
    """One incremental path: ClusterState.update calls its fitted FigureClusterer's partial_fit."""
    from imm_analysis.cluster import FigureClusterer

    x, figs, first, later = data
    state = make(x, figs, first)
    est = FigureClusterer(0.5).fit(x[first], figures=figs.iloc[first])
    expected = est.partial_fit(x[later], figures=figs.iloc[later]).labels_
    calls = []
    real = FigureClusterer.partial_fit

    def spy(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FigureClusterer, "partial_fit", spy)
    state.update(figs.iloc[later], x[later])
    assert len(calls) == 1 and isinstance(calls[0], FigureClusterer)
    # same partition as the estimator's own partial fit (state ids <-> estimator labels)
    got = pd.factorize(state.figures["figure_cluster_id"])[0]
    assert pd.crosstab(got, expected).gt(0).sum(axis=1).eq(1).all()
    assert len(set(expected.tolist()) - {-1}) == len(state.clusters)


def test_update_after_load_and_removal_rebuilds_the_estimator(tmp_path, data):
    from imm_analysis.quality import HDRule

    x, figs, first, later = data
    rule = HDRule(min_size=10)
    state = make(x, figs, first, hd_rule=rule)
    assert state.params["hd_rule"] == rule
    loaded = ClusterState.load(state.save(tmp_path / "s"))
    assert loaded.params["hd_rule"] == rule  # the rule round-trips as an HDRule
    loaded.remove_files([figs["file_id"].iloc[first[0]]])
    state.remove_files([figs["file_id"].iloc[first[0]]])
    loaded.update(figs.iloc[later], x[later])
    state.update(figs.iloc[later], x[later])
    pd.testing.assert_series_equal(loaded.figures["cluster_state"], state.figures["cluster_state"])
    assert loaded.last_update == state.last_update and loaded.last_update["joined"] == len(later)
