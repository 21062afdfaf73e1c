"""ItemIndex: exact blockwise search for small libraries, FAISS lists (one by one, or list by list for batches)."""

from __future__ import annotations

import numpy as np
import pytest

from imm_analysis.search.index import BATCH_MIN, ItemIndex


def _faces(n: int, dim: int = 64, per_id: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(-(-n // per_id), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[np.arange(n) // per_id] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = centres[rng.integers(0, len(centres), 80)] + 0.7 * rng.normal(size=(80, dim)).astype(np.float32) / np.sqrt(dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x.astype(np.float32), q.astype(np.float32)


def _exact(x, q, k):
    s = q @ x.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k], -np.sort(-s, axis=1)[:, :k]


def test_small_library_is_exact():
    x, q = _faces(500)
    index = ItemIndex(x)
    assert index.backend == "numpy"
    rows, sims = index.search(q, 5)
    want_rows, want_sims = _exact(x, q, 5)
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)  # float32 products: BLAS order may differ
    assert (rows == want_rows).mean() > 0.99  # ties aside, the same rows


def test_faiss_lists_single_and_batched_agree_with_exact():
    pytest.importorskip("faiss")
    x, q = _faces(6000)
    index = ItemIndex(x, backend="faiss")
    assert index.backend == "faiss" and len(q) >= BATCH_MIN
    k = 5  # a person's 5 faces (beyond them, strangers at near-equal similarity: not a fair recall)
    want, _ = _exact(x, q, k)
    batch_rows, batch_sims = index.search(q, k)  # list by list, exact products
    single = [index.search(q[i : i + 1], k) for i in range(len(q))]  # FAISS 8-bit scan, re-ranked
    single_rows = np.vstack([r for r, _ in single])
    for rows in (batch_rows, single_rows):
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(rows, want, strict=True)])
        assert recall >= 0.95
    assert np.all(np.diff(batch_sims, axis=1) <= 0)
    # the similarities reported are the exact cosines of the rows reported
    np.testing.assert_allclose(batch_sims, np.einsum("mkd,md->mk", x[batch_rows], q), atol=1e-5)
    assert np.mean(batch_rows == single_rows) > 0.9


def test_empty_and_padded_answers():
    x, q = _faces(3)
    rows, sims = ItemIndex(x).search(q[:2], 5)
    assert rows.shape == (2, 5) and (rows[:, 3:] == -1).all() and np.isneginf(sims[:, 3:]).all()
    rows, sims = ItemIndex(np.zeros((0, 64), np.float32)).search(q[:2], 3)
    assert (rows == -1).all()
