"""imm_analysis.quality: the high-definition rule, quality_summary, diagnose_clustering, the quality plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imm_analysis import diagnose_clustering, hd_faces, quality_summary
from imm_analysis.quality import hd_mask
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE
from imm_analysis.synth import make_dataset

GOOD = {"width": 100, "height": 100, "pitch": 0.0, "roll": 0.0, "yaw": 0.0, "face_quality": 0.9}


def _faces(*changes: dict) -> pd.DataFrame:
    return pd.DataFrame([{**GOOD, **c} for c in changes])


def _verdicts(frame: pd.DataFrame, **kwargs) -> list:
    out = hd_faces(frame, **kwargs)
    return [None if ok else str(r) for ok, r in zip(out["is_hd"], out["hd_fail"], strict=True)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, None),
        ({"width": 75}, "too_small"),
        ({"width": 76}, None),
        ({"height": 75}, "too_small"),
        ({"height": 76}, None),
        ({"pitch": 30.0}, "extreme_pose"),
        ({"pitch": 29.99}, None),
        ({"roll": -30.0}, "extreme_pose"),
        ({"roll": -29.99}, None),
        ({"yaw": 30.0}, "extreme_pose"),
        ({"yaw": -29.99}, None),
        ({"face_quality": 0.8}, "low_quality"),
        ({"face_quality": 0.81}, None),
        ({"width": np.nan}, "missing"),
        ({"yaw": np.nan}, "missing"),
        ({"face_quality": np.nan}, "missing"),
        ({"width": 40, "yaw": 50.0, "face_quality": 0.1}, "too_small"),  # first failed criterion
        ({"yaw": 50.0, "face_quality": 0.1}, "extreme_pose"),
    ],
)
def test_hd_rule_strict_boundaries(change, expected):
    assert _verdicts(_faces(change)) == [expected]


def test_hd_thresholds_are_parameters_and_absent_columns_are_missing():
    f = _faces({"width": 60}, {"yaw": 40.0}, {"face_quality": 0.6})
    assert _verdicts(f) == ["too_small", "extreme_pose", "low_quality"]
    assert _verdicts(f, min_size=59, max_pose=41, min_quality=0.59) == [None, None, None]
    assert _verdicts(f, min_size=60, max_pose=40, min_quality=0.6) == ["too_small", "extreme_pose", "low_quality"]
    assert _verdicts(f.drop(columns="roll")) == ["missing"] * 3
    out = hd_faces(f)
    assert out["is_hd"].dtype == bool and list(out["hd_fail"].cat.categories) == [
        "missing",
        "too_small",
        "extreme_pose",
        "low_quality",
    ]
    assert "is_hd" not in f.columns  # a copy


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """Five faces in three files (one a video) of two clusters, values chosen for hand computation."""
    return pd.DataFrame(
        {
            "file_id": ["a", "a", "b", "c", "c"],
            "media_type": ["image", "image", "image", "video", "video"],
            "figure_cluster_id": ["K1", "K1", "K2", "K2", "K2"],
            "width": [100, 60, 80, 200, np.nan],
            "height": [120, 90, 70, 150, 100],
            "pitch": [0.0, 10.0, 5.0, 45.0, 0.0],
            "roll": [1.0, 2.0, 3.0, 4.0, 5.0],
            "yaw": [-10.0, 0.0, 10.0, 20.0, 30.0],
            "face_quality": [0.9, 0.95, 0.85, 0.99, 0.5],
            "sharpness": [1.0, 0.5, 0.75, 0.25, np.nan],
        }
    )


def test_quality_summary_whole_frame_by_hand(small):
    s = quality_summary(small)
    assert list(s.index) == ["all"]
    row = s.iloc[0]
    # face 0 HD; 1 too small (60); 2 too small (height 70); 3 extreme pitch; 4 missing width
    assert (row["faces"], row["images"], row["videos"], row["hd_faces"]) == (5, 2, 1, 1)
    assert row["hd_share"] == pytest.approx(0.2)
    assert (row["fail_too_small"], row["fail_extreme_pose"], row["fail_low_quality"], row["fail_missing"]) == (
        2,
        1,
        0,
        1,
    )
    # face sizes min(w, h): 100, 60, 70, 150 (NaN ignored) -> p50 = 85, p25 = 67.5
    assert row["face_size_p50"] == pytest.approx(85.0)
    assert row["face_size_p25"] == pytest.approx(67.5)
    # quality 0.5, 0.85, 0.9, 0.95, 0.99: p5 = 0.5 + 0.2 * 0.35 = 0.57
    assert row["face_quality_p5"] == pytest.approx(0.57)
    assert row["face_quality_p95"] == pytest.approx(0.95 + 0.8 * 0.04)
    assert row["sharpness_p50"] == pytest.approx(0.625)
    assert row["yaw_p75"] == pytest.approx(20.0) and row["pitch_p50"] == pytest.approx(5.0)
    for m in ("face_quality", "sharpness", "face_size", "pitch", "roll", "yaw"):
        assert [f"{m}_p{p}" for p in (5, 25, 50, 75, 95)] == [c for c in s.columns if c.startswith(m + "_p")]


def test_quality_summary_by_group(small):
    s = quality_summary(small, by="figure_cluster_id", percentiles=[50])
    assert list(s.index) == ["K1", "K2"]
    assert s.loc["K1", ["faces", "images", "videos", "hd_faces", "fail_too_small"]].tolist() == [2, 1, 0, 1, 1]
    assert s.loc["K2", ["faces", "images", "videos", "hd_faces", "fail_missing"]].tolist() == [3, 1, 1, 0, 1]
    assert s.loc["K2", "face_quality_p50"] == pytest.approx(0.85)
    assert s.loc["K1", "roll_p50"] == pytest.approx(1.5)
    assert s["faces"].dtype == np.int64
    multi = quality_summary(small, by=["figure_cluster_id", "media_type"])
    assert multi.loc[("K2", "video"), "faces"] == 2
    with pytest.raises(KeyError, match="nope"):
        quality_summary(small, by="nope")


def test_quality_summary_thresholds_and_empty(small):
    loose = quality_summary(small, min_size=50, max_pose=50, min_quality=0.1).iloc[0]
    assert loose["hd_faces"] == 4 and loose["fail_missing"] == 1
    empty = quality_summary(small.iloc[:0])
    assert len(empty) == 0 and "face_quality_p50" in empty.columns


def test_quality_summary_on_synthetic_data_matches_numpy():
    ds = make_dataset(10, seed=2)
    s = quality_summary(ds.figures).iloc[0]
    q = ds.figures["face_quality"].to_numpy(dtype=float)
    assert s["face_quality_p25"] == pytest.approx(np.nanpercentile(q, 25))
    assert s["hd_faces"] == hd_mask(ds.figures)[0].sum()
    assert (
        s["faces"]
        == s["hd_faces"] + s[["fail_missing", "fail_too_small", "fail_extreme_pose", "fail_low_quality"]].sum()
    )


# ----------------------------------------------------------------------------- diagnosis


@pytest.fixture(scope="module")
def ds():
    return make_dataset(30, seed=5)


def _eligible_people(figures, labels):
    is_hd = hd_mask(figures)[0]
    frame = pd.DataFrame({"p": labels[is_hd], "f": figures["file_id"][is_hd].to_numpy()}).drop_duplicates()
    return int((frame.groupby("p").size() >= 3).sum())


def test_quality_summary_of_a_dask_frame_without_file_id_counts_each_face():
    dd = pytest.importorskip("dask.dataframe")
    import dask

    f = pd.DataFrame({"width": [80, 60, 100, 90] * 5, "height": [90, 90, 120, 90] * 5,
                      "face_quality": [0.9] * 20, "media_type": ["image"] * 18 + ["video"] * 2})
    local = quality_summary(f)
    assert local[["faces", "images", "videos"]].iloc[0].tolist() == [20, 18, 2]
    with dask.config.set(scheduler="synchronous"):
        dist = quality_summary(dd.from_pandas(f, npartitions=4))
    pd.testing.assert_frame_equal(dist, local)  # was 5 images: row numbers restarted in each partition


def test_diagnosis_before_clustering(ds):
    d = diagnose_clustering(ds.figures)
    assert d.verdict == "not_run"
    assert d.counts["unavailable"] == len(ds.figures) and d.counts["clusters"] == 0
    assert d.counts["candidate_hd_faces"] == hd_mask(ds.figures)[0].sum()
    assert "CreateFigureClusteringTask" in d.text and "not run" in d.headline
    with_truth = diagnose_clustering(ds.figures, labels=ds.labels)
    assert with_truth.counts["possible_clusters"] == _eligible_people(ds.figures, ds.labels)
    assert f"about {with_truth.counts['possible_clusters']} new clusters" in with_truth.text
    # embeddings at a sensible threshold find about the same groups
    by_emb = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=0.5)
    assert abs(by_emb.counts["possible_clusters"] - with_truth.counts["possible_clusters"]) <= 3


def test_diagnosis_after_clustering(ds):
    figs, clusters = ds.clustered()
    d = diagnose_clustering(figs, labels=ds.labels)
    assert d.verdict == "clustered"
    assert d.counts["clusters"] == len(clusters)
    assert d.counts["independent"] == (figs["figure_cluster_id"] == CLUSTER_INDEPENDENT).sum()
    assert d.counts["possible_clusters"] == 0  # IMM's rule already made every possible cluster
    assert f"{len(clusters)} clusters" in d.headline


def _independent(n_files, quality=0.9, same_person=True):
    f = _faces(*[{"face_quality": quality} for _ in range(n_files)])
    f["file_id"] = [f"f{i}" for i in range(n_files)]
    f["figure_cluster_id"] = CLUSTER_INDEPENDENT
    labels = np.zeros(n_files, int) if same_person else np.arange(n_files)
    return f, labels


def test_diagnosis_verdicts():
    f, _ = _independent(5, quality=0.7)
    d = diagnose_clustering(f)
    assert d.verdict == "no_hd_faces" and d.counts["fail_low_quality"] == 5
    assert diagnose_clustering(f, min_quality=0.6).verdict != "no_hd_faces"  # HD rule as parameters

    f, _ = _independent(2)
    d = diagnose_clustering(f)
    assert d.verdict == "too_few_images" and "only 2 distinct images" in d.text
    same_file = _independent(4)[0].assign(file_id="one")
    assert diagnose_clustering(same_file).verdict == "too_few_images"  # distinct images, not faces
    assert diagnose_clustering(same_file, min_faces=1).verdict == "no_same_person"

    f, strangers = _independent(6, same_person=False)
    assert diagnose_clustering(f, labels=strangers).verdict == "no_same_person"

    f, same = _independent(4)
    f.loc[[0, 1], "figure_cluster_id"] = CLUSTER_UNAVAILABLE
    d = diagnose_clustering(f, labels=same)
    assert d.verdict == "could_form" and d.counts["possible_clusters"] == 1
    assert "2 faces are figure-cluster-id-unavailable" in d.text

    empty = diagnose_clustering(f.iloc[:0])
    assert empty.verdict == "no_faces" and empty.counts["faces"] == 0


def test_diagnosis_rendering_and_errors():
    f, _ = _independent(3)
    f.loc[0, "figure_cluster_id"] = "Cluster-<b>"
    d = diagnose_clustering(f)
    assert d.verdict == "clustered"
    assert str(d).startswith("Clustering diagnosis: clustered") and d.text.count("\n- ") == len(d.findings) - 1
    assert d._repr_markdown_().startswith("**Clustering diagnosis")
    assert "<li>" in d._repr_html_()
    with pytest.raises(TypeError, match="min_sise"):
        diagnose_clustering(f, min_sise=10)
    with pytest.raises(ValueError, match="embeddings"):
        diagnose_clustering(f, embeddings=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="labels"):
        diagnose_clustering(f, labels=[1])



def _brute_force_groups(figures, embeddings, threshold, k, min_faces=3):
    """Reference for diagnose_clustering(embeddings=...): the full m x m similarity matrix (small m only).

    Each candidate HD face links to those of its ``k`` most similar other candidate HD faces at
    similarity >= ``threshold`` (k >= m - 1: every pair); groups are connected components
    that reach ``min_faces`` distinct files (every face of the frames used here is a candidate:
    none is clustered). Returns sorted row tuples and the matrix.
    """
    from scipy.sparse.csgraph import connected_components

    rows = np.flatnonzero(hd_mask(figures)[0])
    x = embeddings[rows].astype(np.float64)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, : min(k, len(rows) - 1)]
    link = np.zeros(sim.shape, bool)
    np.put_along_axis(link, nearest, True, axis=1)
    link &= sim >= threshold
    comp = connected_components(link | link.T, directed=False)[1]
    files = figures["file_id"].to_numpy()[rows]
    groups = [rows[comp == c] for c in np.unique(comp)]
    groups = [tuple(g) for g in groups if len(set(files[np.isin(rows, g)])) >= min_faces]
    return sorted(groups), sim


@pytest.mark.parametrize("n_neighbors", [2, 5, 30, 10_000])
def test_diagnosis_embeddings_match_brute_force(ds, n_neighbors):
    from imm_analysis.cluster.diagnose.facts import possible_groups as _possible_groups

    t = 0.5
    expected, sim = _brute_force_groups(ds.figures, ds.embeddings, t, n_neighbors)
    finite = np.isfinite(sim)
    assert np.abs(sim[finite] - t).min() > 1e-5  # no pair so close to the threshold that rounding could flip it
    d = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=t, n_neighbors=n_neighbors)
    assert d.counts["possible_clusters"] == len(expected)
    assert d.counts["possible_cluster_sizes"] == sorted((len(g) for g in expected), reverse=True)
    assert f"about {len(expected)} new clusters" in d.text
    is_hd = hd_mask(ds.figures)[0]
    file_id = ds.figures["file_id"].astype("string").to_numpy(dtype=object)
    got = _possible_groups(is_hd, file_id, None, ds.embeddings, t, 3, 4096, n_neighbors)
    assert sorted(tuple(g) for g in got) == expected


def test_diagnosis_knn_equals_all_pairs_unless_saturated(ds):
    t = 0.5
    all_pairs, sim = _brute_force_groups(ds.figures, ds.embeddings, t, k=len(ds.figures))
    above = (sim >= t).sum(axis=1)
    # nobody here has 30 candidates above the threshold, so the default kNN misses no link
    assert above.max() < 30
    default = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=t)
    assert default.counts["possible_clusters"] == len(all_pairs) > 0
    assert default.counts["possible_cluster_sizes"] == sorted((len(g) for g in all_pairs), reverse=True)


def test_diagnosis_knn_can_split_a_saturated_person():
    # one person in two poses: two tight modes of 4 faces (similarity ~1.0 within, ~0.6 across)
    f, _ = _independent(8)
    x = np.zeros((8, 10), np.float32)
    x[:4, 0] = 1.0
    x[4:, :2] = [0.6, 0.8]
    x[np.arange(8), np.arange(2, 10)] = 0.05
    assert diagnose_clustering(f, embeddings=x, threshold=0.5).counts["possible_cluster_sizes"] == [8]  # k=30
    # each face's 3 nearest are its own mode (all above the threshold): the cross links are missed
    split = diagnose_clustering(f, embeddings=x, threshold=0.5, n_neighbors=3)
    assert split.counts["possible_cluster_sizes"] == [4, 4]
    assert sorted(_brute_force_groups(f, x, 0.5, k=3)[0]) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert diagnose_clustering(f, embeddings=x, threshold=0.5, n_neighbors=4).counts["possible_cluster_sizes"] == [8]


def test_diagnosis_embedding_errors(ds):
    x = ds.embeddings.copy()
    row = int(np.flatnonzero(hd_mask(ds.figures)[0])[3])
    x[row, 0] = np.nan
    with pytest.raises(ValueError, match=f"embeddings row {row} contains NaN"):
        diagnose_clustering(ds.figures, embeddings=x)
    with pytest.raises(ValueError, match="n_neighbors"):
        diagnose_clustering(ds.figures, embeddings=ds.embeddings, n_neighbors=0)
    # one candidate HD face: nothing to search, no group
    f, _ = _independent(1)
    d = diagnose_clustering(f, embeddings=np.ones((1, 4), np.float32), min_faces=1)
    assert d.counts["possible_clusters"] == 1 and d.counts["possible_cluster_sizes"] == [1]


# ----------------------------------------------------------------------------- plot


def test_plot_quality_distributions_draws_thresholds(ds):
    from matplotlib.figure import Figure

    from imm_analysis.viz.quality_plots import plot_quality_distributions

    fig = plot_quality_distributions(ds.figures, min_size=80, max_pose=25, min_quality=0.7)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    lines = [sorted(float(ln.get_xdata()[0]) for ln in ax.lines) for ax in fig.axes]
    assert lines == [[0.7], [], [80.0], [-25.0, 25.0], [-25.0, 25.0], [-25.0, 25.0]]
    n_hd = int(hd_mask(ds.figures, min_size=80, max_pose=25, min_quality=0.7)[0].sum())
    assert f"{n_hd:,} high-definition" in fig._suptitle.get_text()
    # stacked bars hold every face with a value
    heights = sum(p.get_height() for p in fig.axes[0].patches)
    assert heights == ds.figures["face_quality"].notna().sum()


# ----------------------------------------------------------------------------- HDRule and the checks


def test_hd_rule_is_immutable_and_the_one_rule():
    import dataclasses

    from imm_analysis.quality import HD_RULE, HDRule

    rule = HDRule()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.min_size = 10  # type: ignore[misc]
    assert dict(HD_RULE) == rule.as_dict() == {"min_size": 75, "max_pose": 30, "min_quality": 0.8}
    assert HDRule.coerce(None) == rule and HDRule.coerce(rule) is rule
    assert HDRule.coerce({"min_quality": 0.6}) == HDRule(min_quality=0.6)
    assert HDRule.coerce(rule, max_pose=10, min_size=None) == HDRule(max_pose=10)
    with pytest.raises(TypeError, match="min_sise"):
        HDRule.coerce({"min_sise": 3})
    with pytest.raises(TypeError, match="HDRule"):
        HDRule.coerce(0.8)
    with pytest.raises(TypeError, match="min_size"):
        HDRule(min_size="big")  # type: ignore[arg-type]


def test_hd_rule_mask_reasons_describe_agree_with_the_functions():
    from imm_analysis.quality import HDRule, describe_hd_rule

    f = _faces({}, {"width": 60}, {"yaw": 40.0}, {"face_quality": 0.6}, {"roll": np.nan})
    f.index = [10, 11, 12, 13, 14]
    rule = HDRule(max_pose=35)
    assert rule.mask(f).tolist() == [True, False, False, False, False]
    reasons = rule.reasons(f)
    assert reasons.index.tolist() == [10, 11, 12, 13, 14]
    assert reasons.astype(object).where(reasons.notna(), None).tolist() == [
        None, "too_small", "extreme_pose", "low_quality", "missing"
    ]
    assert HDRule(max_pose=45).mask(f).tolist() == [True, False, True, False, False]
    # every entry point takes the rule and gives the same answer as its keyword form
    assert hd_faces(f, rule)["is_hd"].tolist() == hd_faces(f, max_pose=35)["is_hd"].tolist() == rule.mask(f).tolist()
    assert hd_mask(f, {"max_pose": 35})[1].tolist() == rule.evaluate(f)[1].tolist()
    assert quality_summary(f, rule=HDRule(max_pose=45))["hd_faces"].iloc[0] == 2
    assert quality_summary(f, rule=HDRule(max_pose=45), max_pose=20)["hd_faces"].iloc[0] == 1
    assert rule.describe() == describe_hd_rule({"max_pose": 35}) and "< 35" in rule.describe()
    strict = diagnose_clustering(f.assign(figure_cluster_id=CLUSTER_INDEPENDENT), rule=HDRule(min_quality=0.95))
    assert strict.verdict == "no_hd_faces" and "face_quality > 0.95" in strict.text


def test_each_check_has_a_name_and_description_and_the_verdicts_are_theirs():
    from imm_analysis.cluster.diagnose import CHECKS

    names = [c.name for c in CHECKS]
    assert len(set(names)) == len(names) == 7
    assert all(c.description and c.description.endswith(".") for c in CHECKS)
    f, same = _independent(4)
    assert diagnose_clustering(f.iloc[:0]).verdict in names
    assert diagnose_clustering(f, labels=same).verdict in names


def test_diagnosis_on_local_faces_advises_cluster_faces(ds):
    local = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=0.5)
    assert local.verdict == "not_run"
    assert "cluster_faces" in local.headline and "CreateFigureClusteringTask" not in local.text
    imm = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=0.5, source="imm")
    assert "CreateFigureClusteringTask" in imm.headline and "cluster_faces" not in imm.text
    assert "cluster_faces" in diagnose_clustering(ds.figures, source="local").headline
    with pytest.raises(ValueError, match="source"):
        diagnose_clustering(ds.figures, source="cloud")  # type: ignore[arg-type]


def test_diagnosis_threshold_none_is_the_clusterers_calibration(ds):
    from imm_analysis.cluster import FigureClusterer
    from imm_analysis.cluster.calibrate import calibrate_threshold
    from imm_analysis.cluster.diagnose.facts import gather_facts
    from imm_analysis.quality import HDRule

    rows = hd_mask(ds.figures)[0]
    t = calibrate_threshold(ds.embeddings[rows].astype(np.float32))
    facts = gather_facts(ds.figures, HDRule(), min_faces=3, labels=None, embeddings=ds.embeddings, knn=None,
                         threshold=None, block_size=4096, n_neighbors=30, progress=False, local=True)
    assert facts.threshold == pytest.approx(t, abs=1e-6)
    calibrated = diagnose_clustering(ds.figures, embeddings=ds.embeddings)
    explicit = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=facts.threshold)
    assert calibrated.counts["possible_cluster_sizes"] == explicit.counts["possible_cluster_sizes"]
    # the same calibration as the clusterer's (threshold=None) on these faces
    est = FigureClusterer(min_faces=3).fit(ds.embeddings[rows], figures=ds.figures[rows])
    assert est.threshold_ == pytest.approx(facts.threshold, abs=1e-6)


def test_diagnosis_takes_a_precomputed_knn_graph(ds):
    from imm_analysis.cluster import build_knn

    t = 0.5
    rows = np.flatnonzero(hd_mask(ds.figures)[0])
    # a graph over all faces, with room for every candidate: it gives the all-pairs groups
    graph = build_knn(ds.embeddings, len(ds.figures) - 1, progress=False)
    by_graph = diagnose_clustering(ds.figures, knn=graph, threshold=t)
    expected, _ = _brute_force_groups(ds.figures, ds.embeddings, t, k=len(rows))
    assert by_graph.counts["possible_cluster_sizes"] == sorted((len(g) for g in expected), reverse=True)
    with pytest.raises(ValueError, match="knn has"):
        diagnose_clustering(ds.figures.iloc[:5], knn=graph, threshold=t)
    with pytest.raises(ValueError, match="threshold"):
        diagnose_clustering(ds.figures, knn=graph)


def test_quality_and_cluster_do_not_import_each_other():
    """quality imports nothing from cluster; no two modules of cluster/ or quality/ import each other."""
    import ast
    from pathlib import Path

    import imm_analysis

    root = Path(imm_analysis.__file__).parent
    files = [*root.joinpath("quality").rglob("*.py"), *root.joinpath("cluster").rglob("*.py")]
    graph: dict[str, set[str]] = {}
    for path in files:
        mod = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        tree = ast.parse(path.read_text())
        typing_only = {  # names listed for type checkers (the export table) are not imports
            id(n) for blk in tree.body if isinstance(blk, ast.If) and getattr(blk.test, "id", "") == "TYPE_CHECKING"
            for n in ast.walk(blk)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imm_analysis"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("imm_analysis"))
        graph[mod] = deps
    assert not [m for m, d in graph.items() if m.startswith("imm_analysis.quality") and
                any(x.startswith("imm_analysis.cluster") for x in d)]
    pairs = [(a, b) for a, d in graph.items() for b in d if b in graph and a in graph[b] and a < b]
    assert pairs == []


def test_outside_entry_points_take_an_hd_rule(ds):
    """The plots, the tuner and the visitor report accept an HDRule as they accept its dict."""
    from imm_analysis.quality import HDRule
    from imm_analysis.viz.montage import _hd_flags
    from imm_analysis.viz.quality_plots import plot_quality_distributions

    rule = HDRule(min_size=80, max_pose=25, min_quality=0.7)
    fig = plot_quality_distributions(ds.figures, rule=rule)
    assert sorted(float(ln.get_xdata()[0]) for ln in fig.axes[0].lines) == [0.7]
    assert sorted(float(ln.get_xdata()[0]) for ln in fig.axes[2].lines) == [80.0]
    by_rule, by_dict = _hd_flags(ds.figures, rule), _hd_flags(ds.figures, rule.as_dict())
    assert by_rule[0].tolist() == by_dict[0].tolist() == rule.mask(ds.figures).tolist()
    pytest.importorskip("ipywidgets")
    from imm_analysis.widgets.tuner import ThresholdTuner

    tuner = ThresholdTuner(ds.figures, ds.embeddings, threshold=0.5, hd_rule=rule)
    assert tuner.hd_mask().tolist() == rule.mask(ds.figures).tolist()
