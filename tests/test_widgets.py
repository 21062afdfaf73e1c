"""Tests for imm_analysis.widgets, driven headless: ThresholdTuner and ClusterBrowser."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).parents[1] / ".venv" / "numba-cache"))

from imm_analysis.cluster.clusterer import FigureClusterer  # noqa: E402
from imm_analysis.evaluate import evaluate_clustering  # noqa: E402
from imm_analysis.quality import hd_mask  # noqa: E402
from imm_analysis.schema import CLUSTER_INDEPENDENT  # noqa: E402
from imm_analysis.widgets import ThresholdTuner  # noqa: E402

HD = {"min_size": 75.0, "max_pose": 30.0, "min_quality": 0.8}


@pytest.fixture(scope="module")
def dataset():
    from imm_analysis.synth import make_dataset

    return make_dataset(40, seed=3)


@pytest.fixture(scope="module")
def coords(dataset):
    return np.random.default_rng(0).normal(size=(len(dataset.figures), 2)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(dataset):
    """One fitted clustering, shared: a tuner re-cuts it without changing it (recut leaves fitted attributes)."""
    return FigureClusterer(0.45, min_faces=3, hd_rule=HD).fit(dataset.embeddings, dataset.figures)


@pytest.fixture()
def tuner(dataset, coords, fitted):
    """A fresh tuner per test (cheap: it reuses the fitted clustering), so no test sees another's settings."""
    return ThresholdTuner(dataset.figures, dataset.embeddings, dataset.labels, clusterer=fitted, threshold=0.45,
                          coords=coords)


def _tuner_parts(ui):
    """The tuner UI as a user sees it: sliders by label, the summary, the projection image, the montages."""
    top, montages = ui.children
    controls, projection = top.children
    *sliders, summary = controls.children
    labels = {"similarity threshold": "threshold", "min_faces": "min_faces", "HD min size (px)": "min_size",
              "HD max |pose| (deg)": "max_pose", "HD min quality": "min_quality"}
    return {labels[s.description]: s for s in sliders}, summary, projection, montages


def _leaves(widget):
    kids = getattr(widget, "children", None)
    if kids is None:
        return [widget]
    return [leaf for k in kids for leaf in _leaves(k)]


def _browser_parts(ui):
    """The browser UI by what a user reads on it: controls by their label; page line, status line, montage."""
    import ipywidgets as w

    leaves = _leaves(ui)
    named = {leaf.description: leaf for leaf in leaves if getattr(leaf, "description", "")}
    html = [leaf for leaf in leaves if isinstance(leaf, w.HTML)]
    (image,) = [leaf for leaf in leaves if isinstance(leaf, w.Image)]
    return named, html[0], html[-1], image


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal clusterings up to renumbering (-1 stays -1)."""
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = set(zip(a[a >= 0].tolist(), b[b >= 0].tolist(), strict=True))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def _colour_images(figures: pd.DataFrame):
    """An image source: one plain 400x400 image per file, its colour from the file id."""
    from PIL import Image

    def load(key: str):
        if not str(key).startswith("oss://"):
            raise KeyError(key)
        h = abs(hash(key)) % 200
        return Image.new("RGB", (1920, 1080), (h, 255 - h, 128))

    return load


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": 0.3},
        {"threshold": 0.6, "min_faces": 2},
        {"threshold": 0.45, "min_faces": 1, "min_quality": 0.5},
        {"threshold": 0.4, "min_faces": 3, "min_size": 120, "max_pose": 15},
    ],
)
def test_tuner_summary_matches_a_fresh_clustering(tuner, dataset, fitted, change):
    assert tuner.params == {"threshold": 0.45, "min_faces": 3, **HD}  # each case starts from the same tuner
    fitted_labels = fitted.labels_.copy()
    summary = tuner.set(**change)
    np.testing.assert_array_equal(fitted.labels_, fitted_labels)  # the shared fit is re-cut, never changed
    p = tuner.params
    assert {k: p[k] for k in change} == pytest.approx(change)
    rule = {k: p[k] for k in HD}
    fresh = FigureClusterer(p["threshold"], min_faces=p["min_faces"], hd_rule=rule).fit(dataset.embeddings, dataset.figures)
    assert _same_partition(tuner.labels_, fresh.labels_)
    assert summary["n_clusters"] == fresh.n_clusters_
    assert summary["n_clustered"] == int((fresh.labels_ >= 0).sum())
    assert summary["n_independent"] == int((fresh.labels_ < 0).sum())
    assert summary["n_hd"] == int(hd_mask(dataset.figures, **rule)[0].sum())
    metrics = evaluate_clustering(dataset.labels, fresh.labels_)
    assert summary["bcubed_f"] == pytest.approx(metrics["bcubed_f"])
    assert summary["pairwise_precision"] == pytest.approx(metrics["pairwise_precision"])
    assert summary["recut_ms"] >= 0


def test_tuner_summary_matches_cluster_faces(tuner, dataset):
    from imm_analysis.cluster.clusterer import cluster_faces

    summary = tuner.set(threshold=0.5, min_faces=3, min_size=80, max_pose=30, min_quality=0.75)
    rule = {k: tuner.params[k] for k in HD}
    figures, clusters = cluster_faces(dataset.figures, dataset.embeddings, threshold=0.5, min_faces=3, hd_rule=rule, seed=0)
    independent = int((figures["figure_cluster_id"] == CLUSTER_INDEPENDENT).sum())
    assert summary["n_clusters"] == len(clusters)
    assert summary["n_independent"] == independent
    assert summary["n_clustered"] == len(figures) - independent


def test_tuner_to_clusterer_reproduces_the_labels(tuner, dataset):
    tuner.set(threshold=0.42, min_faces=2, min_size=75, max_pose=30, min_quality=0.7)
    est = tuner.to_clusterer()
    assert not hasattr(est, "labels_")
    assert est.get_params()["threshold"] == pytest.approx(0.42) and est.min_faces == 2
    assert est.hd_rule == {"min_size": 75.0, "max_pose": 30.0, "min_quality": 0.7}
    assert _same_partition(est.fit(dataset.embeddings, dataset.figures).labels_, tuner.labels_)


def test_tuner_rejects_bad_parameters(tuner):
    with pytest.raises(TypeError, match="unknown parameter"):
        tuner.set(thresh=0.5)
    with pytest.raises(ValueError, match="outside"):
        tuner.set(threshold=tuner.threshold_floor - 0.1)
    with pytest.raises(ValueError, match="min_faces"):
        tuner.set(min_faces=0)


def test_tuner_closest_merges_straddle_the_threshold(tuner):
    tuner.set(threshold=0.45, min_faces=1, min_size=0, max_pose=90, min_quality=0.0)
    merges = tuner.closest_merges(4)
    joined, apart = merges[merges["joined"]], merges[~merges["joined"]]
    assert len(joined) == 4 and len(apart) == 4
    assert (joined["similarity"] >= 0.45).all() and (apart["similarity"] < 0.45).all()
    heights = np.asarray(tuner.clusterer.dendrogram_.height)
    # the joins listed are the weakest made, the others the strongest not made
    assert joined["similarity"].max() <= np.sort(heights[heights >= 0.45])[3] + 1e-9
    assert apart["similarity"].min() >= np.sort(heights[heights < 0.45])[-4] - 1e-9
    lab = tuner.labels_
    for r in merges.itertuples():
        a, b = lab[r.rows_a[0]], lab[r.rows_b[0]]
        assert (a == b) == r.joined  # with everything HD and min_faces=1 a join is a shared cluster


def test_tuner_widget_updates_headless(dataset, coords, fitted):
    import ipywidgets as w

    tuner = ThresholdTuner(dataset.figures, dataset.embeddings, dataset.labels, images=_colour_images(dataset.figures),
                           clusterer=fitted, threshold=0.45, coords=coords, n_montage=2)
    ui = tuner.widget
    assert isinstance(ui, w.VBox)
    sliders, summary_html, projection, montages = _tuner_parts(ui)
    assert set(sliders) == {"threshold", "min_faces", "min_size", "max_pose", "min_quality"}
    assert {k: pytest.approx(s.value) for k, s in sliders.items()} == tuner.params
    png = projection.value
    assert png[:4] == b"\x89PNG"
    assert len(montages.children) == 3  # two largest clusters and the closest merges
    before = tuner.summary["n_clusters"]
    sliders["threshold"].value = 0.7  # as if the user dragged it
    assert tuner.params["threshold"] == pytest.approx(0.7)
    assert tuner.summary["n_clusters"] != before
    assert f"<td style='text-align:right'>{tuner.summary['n_clusters']:,}</td>" in summary_html.value
    assert projection.value != png
    out = tuner.set(min_faces=4)  # the headless call moves the slider too
    assert sliders["min_faces"].value == 4 and out["min_faces"] == 4


def test_tuner_sweep_leaves_the_tuner_as_it_was(tuner, dataset, coords, monkeypatch):
    """A sweep re-cuts the fitted clusterer without touching the tuner; each row is what set() gives."""
    t2 = ThresholdTuner(dataset.figures, dataset.embeddings, dataset.labels, clusterer=tuner.clusterer,
                        threshold=0.5, min_faces=2, coords=coords)
    sliders, summary_html, projection, _ = _tuner_parts(t2.widget)  # displayed
    params, labels, summary = t2.params, t2.labels_.copy(), dict(t2.summary)
    shown = (summary_html.value, projection.value, {k: c.value for k, c in sliders.items()})
    redraws = []
    monkeypatch.setattr(t2, "refresh", lambda: redraws.append(1))
    grid = [0.35, 0.45, 0.55, 0.7]
    rows = t2.sweep(grid, min_quality=0.6)
    assert not redraws and t2.params == params and t2.summary == summary  # same summary, recut_ms included
    np.testing.assert_array_equal(t2.labels_, labels)
    assert shown == (summary_html.value, projection.value, {k: c.value for k, c in sliders.items()})
    assert rows["threshold"].tolist() == grid and (rows["min_quality"] == 0.6).all() and (rows["min_faces"] == 2).all()
    assert rows["n_clusters"].nunique() > 1  # the thresholds really differ
    for t, row in zip(grid, rows.to_dict("records"), strict=True):
        expected = t2.set(threshold=t, min_quality=0.6)
        assert set(row) == set(expected)
        assert {k: v for k, v in row.items() if k != "recut_ms"} == {k: v for k, v in expected.items() if k != "recut_ms"}
    with pytest.raises(ValueError, match="outside"):
        t2.sweep([0.5, 2.0])
    with pytest.raises(TypeError, match="unknown parameter"):
        t2.sweep([0.5], thresh=0.4)


def test_tuner_without_figures_projects_on_the_clusterer_graph(dataset, monkeypatch):
    import umap.umap_

    def forbidden(*args, **kwargs):
        raise AssertionError("a second neighbour search ran")

    monkeypatch.setattr(umap.umap_, "nearest_neighbors", forbidden)
    x = dataset.embeddings[:200]
    tuner = ThresholdTuner(None, x, threshold=0.5, min_faces=1, n_neighbors=10)
    s = tuner.set(threshold=0.55)
    assert s["n_hd"] == 200 and s["n_clustered"] + s["n_independent"] == 200 and "bcubed_f" not in s
    fig = tuner.projection_figure()
    assert fig.axes[0].get_title().startswith("clusters at threshold 0.550")
    assert tuner.coords.shape == (200, 2)
    sliders = _tuner_parts(tuner.widget)[0]
    assert all(c.disabled for k, c in sliders.items() if k in HD) and not sliders["threshold"].disabled


# --------------------------------------------------------------------------- ClusterBrowser
@pytest.fixture()
def state(dataset):
    """A fresh clustering of the first 90% of the faces (the rest arrive later via update)."""
    from imm_analysis.cluster.state import ClusterState

    n = int(len(dataset.figures) * 0.9)
    return ClusterState.from_figures(dataset.figures.iloc[:n].reset_index(drop=True), dataset.embeddings[:n],
                                     threshold=0.45, seed=0)


def _sizes(state) -> dict[str, int]:
    c = state.clusters
    return dict(zip(c["cluster_id"].astype(str), c["face_count"].astype(int), strict=True))


def test_browser_pages_clusters_by_size(state):
    from imm_analysis.widgets import ClusterBrowser

    b = ClusterBrowser(state, page_size=5)
    sizes = _sizes(state)
    assert b.n_pages == -(-len(sizes) // 5)
    first = b.page_clusters
    assert [sizes[c] for c in first] == sorted(sizes.values(), reverse=True)[:5]
    assert b.selected == first[0]
    second = b.next_page()
    assert b.page == 1 and not set(first) & set(second) and b.selected == second[0]
    assert b.prev_page() == first
    assert b.go(10_000) == b.page_clusters and b.page == b.n_pages - 1
    faces = b.select(first[2])
    assert b.page == 0 and b.selected == first[2] and len(faces) == sizes[first[2]]
    assert faces["face_quality"].is_monotonic_decreasing
    with pytest.raises(KeyError, match="no cluster"):
        b.select("Cluster-nope")


def test_browser_edits_go_into_the_state_and_persist(state, dataset, tmp_path):
    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.widgets import ClusterBrowser

    b = ClusterBrowser(state)
    a, c = b.page_clusters[:2]
    sizes = _sizes(state)
    out = b.merge([a, c], into=a)
    assert out["selected"] == a and out["face_count"] == sizes[a] + sizes[c]
    assert c not in _sizes(state) and _sizes(state)[a] == sizes[a] + sizes[c]
    victim = b.faces(a)["figure_id"].iloc[-1]
    b.eject([victim])
    row = state.figures.loc[state.figures["figure_id"] == victim].iloc[0]
    assert row["figure_cluster_id"] == CLUSTER_INDEPENDENT
    b.rename(a, "regular 1")
    cover = b.faces(a)["file_id"].iloc[-1]
    summary = b.set_cover(a, cover)
    assert summary["name"] == "regular 1" and summary["cover_file_id"] == cover
    with pytest.raises(ValueError, match="set_cover"):
        b.set_cover(a, "not-a-file-of-this-cluster")
    # saved, loaded and updated with the remaining faces, the edits hold
    loaded = ClusterState.load(state.save(tmp_path / "state"))
    n = len(loaded.figures)
    loaded.update(dataset.figures.iloc[n:].reset_index(drop=True), dataset.embeddings[n:])
    c2 = loaded.clusters.set_index(loaded.clusters["cluster_id"].astype(str))
    assert c not in c2.index and c2.loc[a, "name"] == "regular 1" and c2.loc[a, "cover_file_id"] == cover
    assert (loaded.figures.loc[loaded.figures["figure_id"] == victim, "figure_cluster_id"] == CLUSTER_INDEPENDENT).all()
    browser2 = ClusterBrowser(loaded)
    assert a in browser2.clusters_by_size()["cluster_id"].tolist()


def test_browser_widget_buttons_edit_headless(state, dataset):
    from imm_analysis.widgets import ClusterBrowser

    b = ClusterBrowser(state, images=_colour_images(dataset.figures), page_size=4, max_faces=6)
    ui = b.widget
    assert ui is b.widget
    named, _, status, montage = _browser_parts(ui)
    w = {"clusters": named["clusters"], "faces": named["faces"], "eject": named["eject selected faces"],
         "name": named["name"], "rename": named["rename"], "cover": named["cover file"], "set_cover": named["set cover"],
         "others": named["merge in"], "merge": named["merge into this cluster"], "next": named["next >"],
         "status": status}
    assert [v for _, v in w["clusters"].options] == b.page_clusters
    assert montage.value[:4] == b"\x89PNG"
    sel = b.selected
    n_before = _sizes(state)[sel]
    w["faces"].value = (w["faces"].options[-1][1],)
    w["eject"].click()
    assert _sizes(state)[sel] == n_before - 1 and w["status"].value == "done: eject"
    w["name"].value = "Alice"
    w["rename"].click()
    assert _sizes(state)[sel] and state.clusters.set_index("cluster_id").loc[sel, "name"] == "Alice"
    other = b.page_clusters[1]
    w["others"].value = (other,)
    w["merge"].click()
    assert other not in _sizes(state) and b.selected == sel
    w["next"].click()
    assert b.page == 1 and w["clusters"].value == b.selected
    w["clusters"].value = w["clusters"].options[-1][1]  # picking a cluster in the list selects it
    assert b.selected == w["clusters"].options[-1][1]
    w["cover"].value = w["cover"].options[-1]
    w["set_cover"].click()
    assert b.summary["cover_file_id"] == w["cover"].options[-1]


def test_browser_flags_follow_the_rule_the_state_clustered_with(dataset):
    """With a custom HD rule (every face HD) the browser flags no face, whatever IMM's default rule says."""
    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.widgets import ClusterBrowser

    figures = dataset.figures.iloc[:200].reset_index(drop=True)
    assert not hd_mask(figures)[0].all()  # IMM's default rule would flag some of these faces
    state = ClusterState.from_figures(figures, dataset.embeddings[:200], threshold=0.45, seed=0,
                                      hd_rule=lambda f: np.ones(len(f), dtype=bool))
    browser = ClusterBrowser(state)
    faces = pd.concat([browser.faces(c) for c in state.clusters["cluster_id"].astype(str)])
    assert len(faces) and faces["is_hd"].all() and faces["hd_fail"].isna().all()
    np.testing.assert_array_equal(state.hd[faces["row"].to_numpy()], faces["is_hd"].to_numpy())
