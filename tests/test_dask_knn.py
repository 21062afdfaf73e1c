"""build_knn / FigureClusterer with client=: the graph found without a client, memory-mapped input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

from imm_analysis.cluster.clusterer import FigureClusterer  # noqa: E402
from imm_analysis.cluster.knn import build_knn, prepare_embeddings  # noqa: E402
from imm_analysis.cluster.knn_dask import _mapped_file  # noqa: E402


@pytest.fixture(scope="module")
def people():
    """Unit vectors of 450 synthetic people, 20 noisy faces each (float32): enough for FAISS IVF."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(450, 32))
    x = np.repeat(centres, 20, axis=0) + 0.35 * rng.normal(size=(9000, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_sharded_graph_equals_local(dask_client, people, backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    local = build_knn(people, 8, backend=backend, progress=False)
    dist = build_knn(people, 8, backend=backend, progress=False, client=dask_client)
    # same search split in blocks: the same neighbours (ties may swap), similarities within float rounding
    assert (local.indices == dist.indices).mean() > 0.999
    np.testing.assert_allclose(local.similarities, dist.similarities, atol=1e-5)


def test_queries_sharded(dask_client, people):
    q = people[100:400]
    local = build_knn(people, 5, queries=q, exclude_self=True, query_offset=100, backend="numpy", progress=False)
    dist = build_knn(people, 5, queries=q, exclude_self=True, query_offset=100, backend="numpy", progress=False,
                     client=dask_client)
    # the same blocks of products on other processes: ties and last-bit rounding may swap a neighbour
    assert (local.indices == dist.indices).mean() > 0.999
    np.testing.assert_allclose(local.similarities, dist.similarities, atol=1e-5)
    assert not (dist.indices == np.arange(100, 400)[:, None]).any()


def test_memory_mapped_embeddings_are_mapped_not_shipped(dask_client, people, tmp_path):
    path = tmp_path / "emb.npy"
    np.save(path, people)
    mapped = np.load(path, mmap_mode="r")
    assert _mapped_file(prepare_embeddings(mapped)) == str(path)  # no copy: the workers map the file
    assert _mapped_file(people) is None
    assert _mapped_file(mapped[:]) == str(path)  # a view of all rows in order is still the file
    assert _mapped_file(mapped[::-1]) is None  # reversed rows: the workers' map would answer for other faces
    assert _mapped_file(mapped[1:]) is None
    x = mapped[:2000]
    labels = FigureClusterer(0.5, min_faces=1, backend="numpy").fit(np.asarray(x)).labels_
    got = FigureClusterer(0.5, min_faces=1, backend="numpy", client=dask_client).fit(x).labels_
    from sklearn.metrics import adjusted_rand_score  # a pair within float rounding of 0.5 may link on one side only

    assert adjusted_rand_score(labels, got) > 0.99


def test_product_quantised_index_above_pq_min_n(dask_client, monkeypatch):
    pytest.importorskip("faiss")
    from imm_analysis.cluster import knn_dask

    monkeypatch.setattr(knn_dask, "PQ_MIN_N", 5000)  # these 9,000 faces take the PQ route
    rng = np.random.default_rng(3)  # 128-d, as the test pack: 32 bytes per face is 2 bits per dimension
    x = np.repeat(rng.normal(size=(450, 128)), 20, axis=0) + 0.35 * rng.normal(size=(9000, 128))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    exact = build_knn(x, 8, backend="numpy", progress=False)
    pq = build_knn(x, 8, backend="faiss", progress=False, client=dask_client)
    found = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(exact.indices, pq.indices, strict=True)])
    assert found > 0.9  # approximate, re-scored exactly: most true neighbours found
    same = pq.indices == exact.indices
    np.testing.assert_allclose(pq.similarities[same], exact.similarities[same], atol=1e-5)
    assert (np.diff(pq.similarities, axis=1) <= 1e-6).all()  # sorted, most similar first


def _cached_indexes() -> int:
    from imm_analysis.cluster import knn_dask

    return len(knn_dask._CACHE)


def test_workers_drop_the_index_after_the_search(dask_client, people):
    g = build_knn(people[:3000], 5, backend="numpy", progress=False, client=dask_client)
    assert g.indices.shape == (3000, 5)
    held = dask_client.run(_cached_indexes)
    assert len(held) == 2 and set(held.values()) == {0}  # nothing (GBs at scale) held past the search
