"""kNN graph and the constrained average-linkage dendrogram."""

from __future__ import annotations

import numpy as np
import pytest
from cluster_data import people
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.metrics import adjusted_rand_score

from imm_analysis.cluster.knn import KNNGraph, build_knn
from imm_analysis.cluster.linkage import average_linkage, cut, found_clusters


def brute(x, k):
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, 1)


def test_numpy_knn_is_exact_sorted_and_excludes_self():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    g = build_knn(x, 7, backend="numpy", block_size=37, progress=False)
    idx, sims = brute(x, 7)
    assert g.indices.dtype == np.int64 and g.similarities.dtype == np.float32
    np.testing.assert_allclose(g.similarities, sims, atol=1e-5)
    assert (g.indices != np.arange(300)[:, None]).all()
    assert (np.diff(g.similarities, axis=1) <= 1e-7).all()
    assert (g.indices == idx).mean() > 0.99  # ties aside


def test_knn_pads_missing_slots_and_normalises():
    x = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    g = build_knn(x, 4, progress=False)
    assert g.indices.shape == (3, 4)
    assert (g.indices[:, 2:] == -1).all() and np.isneginf(g.similarities[:, 2:]).all()
    assert g.indices[2, 0] in (0, 1) and g.similarities[2, 0] == pytest.approx(np.sqrt(0.5), abs=1e-6)


def test_knn_rejects_bad_input():
    with pytest.raises(ValueError, match="2-d"):
        build_knn(np.zeros(5), 2)
    with pytest.raises(ValueError, match="row 1"):
        build_knn(np.array([[1.0, 0], [np.nan, 1]]), 1, progress=False)


def test_faiss_backend_recall():
    pytest.importorskip("faiss")
    x, _ = people([10] * 500, dim=64, noise=0.08, seed=2)
    exact = build_knn(x, 10, backend="numpy", progress=False)
    approx = build_knn(x, 10, backend="faiss", progress=False)
    hits = [len(set(a) & set(b)) for a, b in zip(exact.indices, approx.indices, strict=True)]
    assert np.mean(hits) / 10 > 0.9


def test_edges_and_subset():
    x, _ = people([4, 4], seed=3)
    g = build_knn(x, 3, progress=False)
    i, j, s = g.edges()
    assert (i < j).all() and len(set(zip(i.tolist(), j.tolist(), strict=True))) == len(i)
    sub = g.subset(np.arange(4))
    assert sub.indices.max() < 4 and ((sub.indices >= 0) | np.isneginf(sub.similarities)).all()


@pytest.mark.parametrize("exact", [False, True])
def test_linkage_on_complete_graph_equals_scipy_average(exact):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 32))
    lab = rng.integers(0, 12, 150)
    x = centres[lab] + 0.6 * rng.normal(size=(150, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    g = build_knn(x, 149, progress=False)
    d = average_linkage(150, g.edges(), embeddings=x if exact else None, min_similarity=-1.0)
    z = linkage(pdist(x.astype(np.float64), "cosine"), "average")
    for t in (0.1, 0.3, 0.5, 0.7):
        # well-posed on any machine: no merge lies within float32 rounding of the cut
        assert np.abs(z[:, 2] - (1 - t)).min() > 1e-4, t
        ours = cut(d, t)
        ref = fcluster(z, 1 - t, "distance")
        assert adjusted_rand_score(ours, ref) == pytest.approx(1.0), t


def test_exact_linkage_on_sparse_graph_keeps_strangers_apart():
    # 300 people with 2 faces: each face's 10 neighbours are mostly strangers; the exact
    # mean keeps them apart where the mean of observed kNN edges would chain them.
    x, lab = people([2] * 300, dim=512, noise=1.2, seed=4)
    g = build_knn(x, 10, progress=False)
    d = average_linkage(len(x), g.edges(0.0), embeddings=x, min_similarity=0.0)
    labels = found_clusters(cut(d, 0.3), np.ones(len(x), bool), 1)
    assert np.bincount(labels).max() <= 2


def test_cannot_link_is_never_violated():
    x, _ = people([6], seed=5)
    g = build_knn(x, 5, progress=False)
    d = average_linkage(6, g.edges(), embeddings=x, cannot_link=(np.array([0]), np.array([1])), min_similarity=-1)
    comp = cut(d, -1.0)
    assert comp[0] != comp[1]
    assert len(set(comp.tolist())) == 2


def test_found_clusters_counts_hd_faces():
    comp = np.array([5, 5, 5, 7, 7, 7, 9])
    hd = np.array([1, 1, 1, 1, 1, 0, 1], bool)
    assert found_clusters(comp, hd, 3).tolist() == [0, 0, 0, -1, -1, -1, -1]
    assert found_clusters(comp, hd, 2).tolist() == [0, 0, 0, 1, 1, 1, -1]


def test_knn_graph_coerces_dtypes_and_checks_shapes():
    g = KNNGraph(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]], dtype=np.float64))
    assert g.indices.dtype == np.int64 and g.similarities.dtype == np.float32
    assert g.indices[:, 0].tolist() == [1, 0] and (g.n_samples, g.n_neighbors) == (2, 1)
    with pytest.raises(ValueError, match="same shape"):
        KNNGraph(np.zeros((2, 1)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        KNNGraph(np.zeros(2), np.zeros(2))


@pytest.mark.parametrize("copy", [True, False])
def test_incremental_graph_merges_reverse_neighbours(copy):
    """Two incremental adds (index growth + reverse-neighbour merge) match a plain reference.

    An old row keeps its exact list plus every new row that listed it with a similarity above
    its current k-th neighbour (reverse neighbours only: kNN is not symmetric), top k kept.
    """
    from imm_analysis.cluster.incremental import merge_reverse_neighbors
    from imm_analysis.cluster.knn import NeighborIndex

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    k, n0 = 6, 300
    index = NeighborIndex(x[:n0].copy(), backend="numpy")
    graph = index.search(x[:n0], k)
    # the reference starts from the index's own lists (their exactness is tested above), so
    # every similarity compared below comes from one computation: no BLAS rounding in play
    ref = [dict(zip(r.tolist(), v.tolist(), strict=True)) for r, v in zip(graph.indices, graph.similarities, strict=True)]
    for a, b in ((n0, 340), (340, 400)):  # the second add fits in the buffer's headroom
        index.add(x[a:b])
        new = index.search(x[a:b], k, query_offset=a)
        graph = merge_reverse_neighbors(graph.append(new), a, copy=copy)
        floors = [min(d.values()) for d in ref]
        for j, (cols, sims) in enumerate(zip(new.indices, new.similarities, strict=True), start=a):
            for i, s_ in zip(cols.tolist(), sims.tolist(), strict=True):
                if i < a and s_ > floors[i]:
                    ref[i][j] = s_
        ref = [dict(sorted(d.items(), key=lambda t: -t[1])[:k]) for d in ref]
        ref += [dict(zip(r.tolist(), v.tolist(), strict=True)) for r, v in zip(new.indices, new.similarities, strict=True)]
    np.testing.assert_array_equal(index.embeddings, x)
    expected = np.array([sorted(d.values(), reverse=True) for d in ref], dtype=np.float32)
    np.testing.assert_allclose(graph.similarities, expected, atol=1e-6)
    assert all(set(row.tolist()) == set(d) for row, d in zip(graph.indices, ref, strict=True))
