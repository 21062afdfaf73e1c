"""diff_clusterings against known truth: synthetic IMM exports of two runs (synth.make_runs), and two local
ClusterState runs (in memory and saved)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from imm_analysis import ClusterState, diff_clusterings, load_tasks
from imm_analysis.audit.diff import CLUSTER_CHANGES, FACE_CHANGES
from imm_analysis.synth import make_dataset, make_runs


@pytest.fixture(scope="module", params=[0, 3])
def runs(request):
    return make_runs(40, seed=request.param)


def test_every_face_change_matches_the_truth(runs):
    d = diff_clusterings(runs.before, runs.after)
    for change in FACE_CHANGES:
        got = set(d.faces.loc[d.faces["change"] == change, "figure_id"])
        assert got == runs.truth["faces"][change], change
        assert runs.truth["faces"][change], f"the synthetic runs should produce some {change!r} faces"
    assert d.faces["figure_id"].is_unique
    assert len(d.faces) == len(set(runs.before[1]["figure_id"]) | set(runs.after[1]["figure_id"]))


def test_every_cluster_change_matches_the_truth(runs):
    d = diff_clusterings(runs.before, runs.after)
    for change in CLUSTER_CHANGES:
        got = set(d.clusters.loc[d.clusters["change"] == change, "cluster_id"])
        assert got == runs.truth["clusters"][change], change
    assert set(d.clusters.loc[d.clusters["renamed"], "cluster_id"]) == runs.truth["renamed"]
    merged = d.clusters.dropna(subset=["merged_into"]).set_index("cluster_id")["merged_into"].to_dict()
    assert merged == runs.truth["merged"]
    assert set(d.broken["figure_id"]) == runs.truth["broken"]
    assert sorted(d.broken["reason"]) == ["left", "moved"]
    s = d.summary
    assert s["broken"] == 2 and s["merges"] == 1
    assert sum(s["faces"].values()) == len(d.faces) and sum(s["clusters"].values()) == len(d.clusters)


def test_counts_before_and_after(runs):
    d = diff_clusterings(runs.before, runs.after).clusters.set_index("cluster_id")
    for (clusters, _), side in ((runs.before, "before"), (runs.after, "after")):
        expected = clusters.set_index("cluster_id")["face_count"].astype(int)
        assert d.loc[expected.index, f"face_count_{side}"].tolist() == expected.tolist()
        images = clusters.set_index("cluster_id")["image_count"].astype(int)
        assert d.loc[images.index, f"image_count_{side}"].tolist() == images.tolist()
    joined = d["face_count_after"] - d["face_count_before"]
    assert (joined == d["faces_joined"] - d["faces_left"]).all()


def test_without_clusters_frames_counts_come_from_the_faces(runs):
    full = diff_clusterings(runs.before, runs.after)
    bare = diff_clusterings((None, runs.before[1]), (None, runs.after[1]))
    pd.testing.assert_frame_equal(bare.faces, full.faces)
    a = full.clusters.set_index("cluster_id").sort_index()
    b = bare.clusters.set_index("cluster_id").sort_index()
    assert a["face_count_after"].tolist() == b["face_count_after"].tolist()
    # without names, the renamed cluster reads as unchanged
    assert set(b.index[b["change"] == "unchanged"]) == runs.truth["clusters"]["unchanged"] | runs.truth["renamed"]


def test_identical_snapshots_change_nothing(runs):
    d = diff_clusterings(runs.after, runs.after)
    assert (d.faces["change"] == "unchanged").all() and (d.clusters["change"] == "unchanged").all()
    assert d.broken.empty


def test_plot_and_html(runs, tmp_path):
    d = diff_clusterings(runs.before, runs.after, names=("Monday", "Tuesday"))
    fig = d.plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("clusters (") and "2 broken" in titles[1]
    path = tmp_path / "diff.html"
    html = d.to_html(path)
    assert path.read_text() == html and "Monday -&gt; Tuesday" in html and "data:image/png;base64," in html
    assert "Monday" in d._repr_html_() and "ClusteringDiff(" in repr(d)


def test_bad_inputs(runs):
    clusters, figures = runs.before
    with pytest.raises(TypeError, match="pair"):
        diff_clusterings(42, runs.after)
    dup = pd.concat([figures, figures.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="appears more than once"):
        diff_clusterings((clusters, dup), runs.after)
    with pytest.raises(KeyError, match="figure_cluster_id"):
        diff_clusterings((None, figures.drop(columns="figure_cluster_id")), runs.after)
    with pytest.raises(FileNotFoundError, match="not a saved ClusterState"):
        diff_clusterings("/nonexistent/state", runs.after)


def _state_runs(tmp_path):
    ds = make_dataset(25, seed=5)
    figs, x = ds.figures, ds.embeddings
    first = figs["file_id"].isin(ds.files["file_id"].iloc[: int(len(ds.files) * 0.6)]).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        state = ClusterState.from_figures(figs[first], x[first], seed=0)
    saved = state.save(tmp_path / "run1")
    before = (state.clusters.copy(), state.figures.copy())
    state.update(figs[~first], x[~first])
    return ds, state, saved, before


def test_two_local_runs(tmp_path):
    ds, state, saved, before = _state_runs(tmp_path)
    upd = state.last_update
    for b in (before, saved):  # in memory, and the saved state's folder
        d = diff_clusterings(b, state)
        s = d.summary
        assert s["faces"]["new"] == upd["new_faces"] and s["faces"]["removed"] == 0
        assert s["faces"]["moved"] == s["faces"]["left"] == 0 and d.broken.empty  # the incremental promise
        assert s["clusters"]["deleted"] == s["clusters"]["shrunk"] == 0
        new_faces = d.faces[d.faces["change"] == "new"]
        joined_existing = new_faces["cluster_after"].isin(before[0]["cluster_id"]).sum()
        assert joined_existing == upd["joined"]
        assert (new_faces["cluster_after"].isna()).sum() == upd["independent"]
        created = set(d.clusters.loc[d.clusters["change"] == "created", "cluster_id"])
        assert created == set(state.clusters["cluster_id"]) - set(before[0]["cluster_id"])
        assert len(created) == upd["new_clusters"]
        grown = set(d.clusters.loc[d.clusters["change"] == "grown", "cluster_id"])
        assert grown == set(new_faces["cluster_after"].dropna()) - created | set(
            d.faces.loc[d.faces["change"] == "newly_clustered", "cluster_after"].dropna()) - created


def test_local_edits_show_as_merges_and_broken_promises(tmp_path):
    ds, state, saved, _ = _state_runs(tmp_path)
    before = (state.clusters.copy(), state.figures.copy())
    a, b = state.clusters["cluster_id"].iloc[:2]
    victim = state.figures.loc[state.figures["figure_cluster_id"] == state.clusters["cluster_id"].iloc[2],
                               "figure_id"].iloc[0]
    state.merge([a, b], into=a).eject(victim)
    d = diff_clusterings(before, state)
    assert d.clusters.set_index("cluster_id").loc[b, "merged_into"] == a
    assert d.broken["figure_id"].tolist() == [victim] and d.broken["reason"].tolist() == ["left"]
    assert d.summary["faces"]["moved"] == int((before[1]["figure_cluster_id"] == b).sum())


def test_local_runs_are_task_records(tmp_path):
    ds, state, saved, _ = _state_runs(tmp_path)
    tasks = state.tasks
    assert len(tasks) == 2 and (tasks["status"] == "Succeeded").all()
    assert tasks["task_id"].str.match(r"^CreateFigureClusteringTask-[0-9a-f-]{36}$").all()
    assert tasks["new_faces"].tolist() == [len(ds.figures) - state.last_update["new_faces"],
                                          state.last_update["new_faces"]]
    assert (tasks["duration"] >= pd.Timedelta(0)).all() and tasks["end_time"].dt.tz is not None
    path = state.save(tmp_path / "run2")
    again = ClusterState.load(path)
    pd.testing.assert_frame_equal(again.tasks, tasks)
    # the saved records read like IMM's
    from imm_analysis.cluster.store import current_version

    from_file = load_tasks(current_version(path) / "tasks.json")  # in the current version's folder
    assert from_file["task_id"].tolist() == tasks["task_id"].tolist()
    assert len(ClusterState.load(saved).tasks) == 1
    # retention: IMM keeps 7 days; records older than the retention are dropped
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=8)
    assert len(again.task_log.frame(now=later)) == 0
    again.task_log.retention = 30
    assert len(again.task_log.frame(now=later)) == 2
    with pytest.raises(ValueError, match="positive"):
        again.task_log.retention = "-1 days"
    assert np.array_equal(again.tasks["faces"].to_numpy(dtype=int), tasks["faces"].to_numpy(dtype=int))


# ------------------------------------------------------------------ against a plain per-face reference

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CLUSTER = st.sampled_from(["C1", "C2", "C3", "C4", "figure-cluster-id-independent", "figure-cluster-id-unavailable"])


def _reference(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """Face changes the slow obvious way: one face at a time."""
    def real(c):
        return None if c is None or c.startswith("figure-cluster-id-") else c

    out = {}
    for fid in set(before) | set(after):
        if fid not in before:
            out[fid] = "new"
        elif fid not in after:
            out[fid] = "removed"
        else:
            b, a = real(before[fid]), real(after[fid])
            out[fid] = ("newly_clustered" if b is None and a is not None else "left" if a is None and b is not None
                        else "moved" if a != b else "unchanged")
    return out


def test_task_retention_at_a_naive_time_is_utc():
    from imm_analysis.cluster.tasks import TaskLog

    log = TaskLog()
    t0 = pd.Timestamp("2026-01-05T10:00:00Z")
    log.record(t0, t0 + pd.Timedelta(seconds=1))
    assert len(log.kept(pd.Timestamp("2026-01-12T09:59:00"))) == 1  # was: cannot compare naive and aware
    assert len(log.kept(pd.Timestamp("2026-01-12T10:01:00"))) == 0
    assert len(log.frame(now=pd.Timestamp("2026-01-12T12:00:00+03:00"))) == 1  # 09:00 UTC


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from([f"f{i}" for i in range(12)]), _CLUSTER, max_size=12),
       st.dictionaries(st.sampled_from([f"f{i}" for i in range(12)]), _CLUSTER, max_size=12))
def test_matches_a_per_face_reference(before, after):
    def frame(d):
        return pd.DataFrame({"figure_id": list(d), "file_id": [f"file-{k[1:]}" for k in d],
                             "figure_cluster_id": list(d.values())}, dtype="string")

    d = diff_clusterings((None, frame(before)), (None, frame(after)))
    assert dict(zip(d.faces["figure_id"], d.faces["change"].astype(str), strict=True)) == _reference(before, after)
    c = d.clusters.set_index("cluster_id")
    for cid in c.index:
        nb = sum(v == cid for v in before.values())
        na = sum(v == cid for v in after.values())
        assert (c.loc[cid, "face_count_before"], c.loc[cid, "face_count_after"]) == (nb, na)
        expected = "created" if nb == 0 else "deleted" if na == 0 else "grown" if na > nb else (
            "shrunk" if na < nb else "unchanged")
        assert c.loc[cid, "change"] == expected
    assert set(c.index) == {v for v in [*before.values(), *after.values()] if v.startswith("C")}
