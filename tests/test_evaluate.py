"""Clustering metrics, threshold sweeps and clustering comparisons (imm_analysis.evaluate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from imm_analysis.evaluate import METRIC_KEYS, compare_clusterings, evaluate_clustering, sweep_thresholds
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE

labels = st.lists(st.integers(0, 6), min_size=1, max_size=60)


def _singletons(pred: np.ndarray) -> np.ndarray:
    """Relabel every -1 as a fresh singleton cluster (what evaluate_clustering does)."""
    out = np.asarray(pred).copy()
    idx = np.flatnonzero(out == -1)
    out[idx] = out.max(initial=0) + 1 + np.arange(len(idx))
    return out


# ------------------------------------------------------------------ hand-computed cases


def test_hand_computed_small_case():
    # truth: A A A B B ; pred: 1 1 2 2 -1
    m = evaluate_clustering(["A", "A", "A", "B", "B"], [1, 1, 2, 2, -1])
    # pairs: predicted same-cluster pairs {01, 23}; true pairs {01,02,12,34}; TP = {01}
    assert m["pairwise_precision"] == pytest.approx(1 / 2)
    assert m["pairwise_recall"] == pytest.approx(1 / 4)
    assert m["pairwise_f"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    # BCubed precision per face: 1, 1, 1/2, 1/2, 1 -> 4/5; recall: 2/3, 2/3, 1/3, 1/2, 1/2 -> 8/3/5
    assert m["bcubed_precision"] == pytest.approx(4 / 5)
    assert m["bcubed_recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    p, r = m["bcubed_precision"], m["bcubed_recall"]
    assert m["bcubed_f"] == pytest.approx(2 * p * r / (p + r))
    assert m["n_clusters"] == 2
    assert m["n_independent"] == 1
    assert list(m) == list(METRIC_KEYS)


def test_independent_faces_are_singletons_not_one_cluster():
    truth = [0, 0, 1, 1]
    # if -1 were one cluster, faces 1 and 2 (different people) would be merged
    m = evaluate_clustering(truth, [0, -1, 1, -1])
    assert m["bcubed_precision"] == 1.0
    assert m["pairwise_precision"] == 1.0
    assert m["pairwise_recall"] == 0.0
    assert m["bcubed_recall"] == pytest.approx(0.5)


def test_reserved_imm_ids_and_missing_count_as_independent():
    truth = [0, 0, 1, 1, 2]
    pred = ["c1", "c1", CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE, None]
    m = evaluate_clustering(truth, pred)
    ref = evaluate_clustering(truth, [7, 7, -1, -1, -1])
    assert m == ref
    assert m["n_clusters"] == 1 and m["n_independent"] == 3


def test_length_mismatch_and_bad_shapes_raise():
    with pytest.raises(ValueError, match="differ in length"):
        evaluate_clustering([0, 1], [0])
    with pytest.raises(ValueError, match="1-d"):
        evaluate_clustering(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="DataFrame"):
        evaluate_clustering(pd.DataFrame({"a": [1]}), [1])


def test_all_in_one_cluster():
    m = evaluate_clustering([0, 0, 1, 1], [3, 3, 3, 3])
    assert m["pairwise_recall"] == 1.0 and m["bcubed_recall"] == 1.0
    assert m["pairwise_precision"] == pytest.approx(2 / 6)
    assert m["bcubed_precision"] == pytest.approx(0.5)
    assert m["ari"] == pytest.approx(0.0)


# ------------------------------------------------------------------ against scikit-learn


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(-1, 8)), min_size=2, max_size=80))
def test_nmi_ari_match_sklearn_after_relabelling(pairs):
    t = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    m = evaluate_clustering(t, p)
    ref = _singletons(p)
    assert m["ari"] == pytest.approx(adjusted_rand_score(t, ref), abs=1e-10)
    assert m["nmi"] == pytest.approx(normalized_mutual_info_score(t, ref), abs=1e-10)


def test_large_random_case_matches_sklearn():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 400, 20_000)
    p = np.where(rng.random(20_000) < 0.2, -1, (t + rng.integers(0, 3, 20_000)) % 450)
    m = evaluate_clustering(t, p)
    ref = _singletons(p)
    assert m["ari"] == pytest.approx(adjusted_rand_score(t, ref), abs=1e-10)
    assert m["nmi"] == pytest.approx(normalized_mutual_info_score(t, ref), abs=1e-10)


# ------------------------------------------------------------------ properties


@settings(max_examples=100, deadline=None)
@given(labels)
def test_perfect_clustering_scores_one_everywhere(t):
    t = np.array(t)
    m = evaluate_clustering(t, t + 100)  # same partition, other names
    for k in METRIC_KEYS[:8]:
        assert m[k] == pytest.approx(1.0), k


@settings(max_examples=100, deadline=None)
@given(labels, st.randoms(use_true_random=False))
def test_permutation_invariance(t, rnd):
    t = np.array(t)
    p = np.array([rnd.randint(-1, 4) for _ in t])
    order = np.array(rnd.sample(range(len(t)), len(t)))
    rename = {v: (-1 if v == -1 else 1000 - v) for v in set(p.tolist())}
    a = evaluate_clustering(t, p)
    b = evaluate_clustering(t[order], np.array([rename[v] for v in p[order]]))
    for k in METRIC_KEYS:
        assert a[k] == pytest.approx(b[k]), k


@settings(max_examples=100, deadline=None)
@given(labels, st.booleans())
def test_all_singletons_have_precision_one(t, as_minus_one):
    t = np.array(t)
    p = np.full(len(t), -1) if as_minus_one else np.arange(len(t))
    m = evaluate_clustering(t, p)
    assert m["pairwise_precision"] == 1.0
    assert m["bcubed_precision"] == 1.0
    assert m["n_independent"] == (len(t) if as_minus_one else 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 5)), min_size=1, max_size=50))
def test_metrics_are_bounded(pairs):
    m = evaluate_clustering([a for a, _ in pairs], [b for _, b in pairs])
    for k in ("pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall", "nmi"):
        assert 0.0 <= m[k] <= 1.0 + 1e-12, k
    assert -1.0 <= m["ari"] <= 1.0 + 1e-12


# ------------------------------------------------------------------ compare_clusterings


def test_compare_statuses_split_merge_new_gone():
    a = [0, 0, 0, 0, 1, 1, 2, 2, -1, -1, 3, 3, 4, 4]
    b = [7, 7, 8, 8, 9, 9, 9, 9, 10, 10, -1, -1, 5, 5]
    cmp = compare_clusterings(a, b, names=("imm", "local"))
    status = dict(zip(cmp.table["cluster_a"].tolist(), cmp.table["status"].astype(str).tolist(), strict=True))
    assert status == {0: "split", 1: "merged", 2: "merged", 3: "gone", 4: "same", None: "new"}
    s = cmp.summary
    assert (s["split"], s["merged"], s["new"], s["gone"], s["same"]) == (1, 2, 1, 1, 1)
    assert s["splits"] == 1 and s["merges"] == 1 and s["extra_pieces"] == 1
    assert s["clusters_a"] == 5 and s["clusters_b"] == 5
    assert s["independent_a"] == 2 and s["independent_b"] == 2
    row = cmp.table.set_index(cmp.table["cluster_a"].astype(str)).loc["4"]
    assert (row["cluster_b"], row["overlap"], row["jaccard"]) == (5, 2, 1.0)
    new = cmp.table[cmp.table["status"] == "new"].iloc[0]
    assert new["cluster_b"] == 10 and new["from_independent"] == 2
    assert "imm" in repr(cmp) and "split=1" in repr(cmp)
    # every face is in exactly one overlap cell
    assert cmp.pairs["overlap"].sum() == len(a)


def test_compare_frames_with_a_repeated_figure_id_name_it():
    a = pd.DataFrame({"figure_id": ["f1", "f2"], "figure_cluster_id": ["x", "x"]})
    b = pd.DataFrame({"figure_id": ["f1", "f2", "f2"], "figure_cluster_id": ["y", "y", "z"]})
    assert compare_clusterings(a, b.iloc[:2]).summary["same"] == 1
    with pytest.raises(ValueError, match=r"b: figure_id 'f2' appears more than once"):
        compare_clusterings(a, b)


def test_compare_identical_clusterings_all_same():
    a = np.repeat(np.arange(20), 5)
    cmp = compare_clusterings(a, a + 50)
    assert (cmp.table["status"] == "same").all()
    assert (cmp.table["jaccard"] == 1.0).all()
    assert cmp.summary["faces_moved"] == 0
    assert cmp.summary["agreement"]["bcubed_f"] == 1.0


def test_compare_min_overlap_ignores_stray_faces():
    a = [0] * 10 + [1] * 5
    b = [5] * 9 + [6] + [6] * 5  # one face of cluster 0 strayed into 6
    assert compare_clusterings(a, b).table.set_index("cluster_a").loc[0, "status"] == "split"
    strict = compare_clusterings(a, b, min_overlap=2).table.set_index("cluster_a")
    assert strict.loc[0, "status"] == "same"
    assert strict.loc[1, "status"] == "same"


def test_compare_figures_frames_align_on_figure_id():
    fa = pd.DataFrame(
        {"figure_id": ["f1", "f2", "f3", "f4"], "figure_cluster_id": ["A", "A", "B", CLUSTER_INDEPENDENT]}
    )
    fb = pd.DataFrame(
        {"figure_id": ["f4", "f3", "f2", "f1", "f9"], "figure_cluster_id": ["X", "Y", "Z", "Z", "Y"]}
    )
    cmp = compare_clusterings(fa, fb)
    t = cmp.table.set_index(cmp.table["cluster_a"].astype(str))
    assert t.loc["A", "cluster_b"] == "Z" and t.loc["A", "status"] == "same"
    assert t.loc["B", "cluster_b"] == "Y"
    assert cmp.summary["only_b"] == 1 and cmp.summary["only_a"] == 0
    assert cmp.summary["new"] == 1  # X holds only the face that was independent in A


def test_compare_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        compare_clusterings([1, 2], [1])
    with pytest.raises(KeyError, match="figure_cluster_id"):
        compare_clusterings(pd.DataFrame({"x": [1]}), [1])


# ------------------------------------------------------------------ sweep_thresholds


def _blobs(n_people: int, per: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_people), per)
    c = rng.normal(size=(n_people, dim))
    x = c[y] / np.sqrt(dim) + noise * rng.normal(size=(len(y), dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_sweep_thresholds_rows_and_tradeoff():
    x, y = _blobs(60, 5, 64, 0.8, 0)
    ts = [0.1, 0.3, 0.5, 0.7, 0.95]
    df = sweep_thresholds(x, y, ts, min_faces=1)
    assert list(df.columns) == ["threshold", *METRIC_KEYS]
    assert df["threshold"].tolist() == ts
    # stricter threshold -> precision up, recall down (monotone for a fixed graph)
    assert df["bcubed_precision"].is_monotonic_increasing
    assert df["bcubed_recall"].is_monotonic_decreasing
    assert df["bcubed_f"].max() > 0.95  # well separated blobs are recoverable at some threshold
    # a sweep row equals fitting at that threshold
    from imm_analysis.cluster.clusterer import FigureClusterer

    direct = FigureClusterer(0.5, min_faces=1).fit(x).labels_
    row = df.set_index("threshold").loc[0.5]
    assert row["bcubed_f"] == pytest.approx(evaluate_clustering(y, direct)["bcubed_f"])


def test_sweep_thresholds_reuses_a_fitted_clusterer():
    from imm_analysis.cluster.clusterer import FigureClusterer

    x, y = _blobs(30, 4, 32, 0.6, 1)
    model = FigureClusterer(0.5, min_faces=1).fit(x)
    df = sweep_thresholds(x, y, [0.4, 0.6], clusterer=model).set_index("threshold")
    assert list(df.index) == [0.4, 0.6]
    for t in (0.4, 0.6):  # each row is the metrics of the fitted model re-cut at that threshold
        expected = evaluate_clustering(y, model.recut(t))
        assert df.loc[t, "bcubed_f"] == pytest.approx(expected["bcubed_f"])
        assert df.loc[t, "n_clusters"] == expected["n_clusters"]
    with pytest.raises(ValueError, match="not both"):
        sweep_thresholds(x, y, [0.4], clusterer=model, min_faces=2)
    with pytest.raises(ValueError, match="empty"):
        sweep_thresholds(x, y, [])
