"""Linking video faces into tracks, and the library's threshold and score, on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imm_analysis.search.score import calibrate_library, similarity_score
from imm_analysis.search.tracks import box_iou, default_gap, link_faces, track_embeddings


def _identities(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _noisy(c: np.ndarray, rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    x = c + noise * rng.normal(size=c.shape).astype(np.float32) / np.sqrt(c.shape[-1])
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_default_gap_floor_is_two_sample_intervals():
    assert default_gap(2.0) == 1.0
    assert default_gap(0.25) == 8.0  # 2 intervals of 4 s
    assert default_gap(10.0, gap=3.0) == 3.0
    with pytest.raises(ValueError, match="fps"):
        default_gap(0)


def test_box_iou_matches_hand_computed_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 4, 4]])
    b = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [100, 100, 1, 1]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 25 / 175, 0.0], atol=1e-12)
    np.testing.assert_allclose(iou[1], [16 / 100, 0.0, 0.0], atol=1e-12)


def test_two_people_crossing_keep_their_own_tracks():
    """A and B swap places between samples: boxes say 'swap', identities say 'stay'."""
    rng = np.random.default_rng(1)
    ident = _identities(2)
    t, boxes, emb, who = [], [], [], []
    for k in range(6):
        xa = 10 + 20 * k  # A walks right, B walks left; they cross at k ~ 2.5
        xb = 110 - 20 * k
        for person, x in ((0, xa), (1, xb)):
            t.append(0.5 * k)
            boxes.append([x, 50, 40, 40])
            emb.append(_noisy(ident[person], rng))
            who.append(person)
    labels = link_faces(np.array(t), np.array(boxes), np.array(emb), threshold=0.5, link_threshold=0.3, gap=1.0)
    who = np.array(who)
    for lab in np.unique(labels):
        assert len(set(who[labels == lab])) == 1  # never two people in a track
    assert len(np.unique(labels)) == 2  # each walked through as one track


def test_absence_longer_than_gap_starts_a_new_track():
    rng = np.random.default_rng(2)
    a = _identities(1)[0]
    t = np.array([0.0, 0.5, 1.0, 3.0, 3.5])  # away for 2 s
    boxes = np.tile([[10, 10, 50, 50]], (5, 1))
    emb = np.stack([_noisy(a, rng) for _ in t])
    labels = link_faces(t, boxes, emb, threshold=0.5, gap=1.0)
    assert labels.tolist() == [0, 0, 0, 1, 1]
    # a gap of 2.5 s bridges it
    assert link_faces(t, boxes, emb, threshold=0.5, gap=2.5).tolist() == [0] * 5


def test_overlap_alone_links_when_identity_check_is_off():
    t = np.array([0.0, 0.5, 1.0])
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [60, 60, 10, 10]])
    emb = _identities(3)
    labels = link_faces(t, boxes, emb, threshold=np.inf, link_threshold=-np.inf, min_iou=0.5, gap=1.0, grow=1.0)
    assert labels.tolist() == [0, 0, 1]


def test_link_faces_checks_lengths():
    with pytest.raises(ValueError, match="same length"):
        link_faces(np.zeros(2), np.zeros((3, 4)), np.zeros((2, 8), np.float32), threshold=0.5, gap=1.0)


@settings(max_examples=40, deadline=None)
@given(
    n_people=st.integers(1, 4),
    n_samples=st.integers(1, 8),
    seed=st.integers(0, 10_000),
    present=st.lists(st.booleans(), min_size=32, max_size=32),
)
def test_property_a_track_never_holds_two_people(n_people, n_samples, seed, present):
    rng = np.random.default_rng(seed)
    ident = _identities(n_people, seed=seed)
    t, boxes, emb, who = [], [], [], []
    for k in range(n_samples):
        for p in range(n_people):
            if not present[(k * n_people + p) % 32]:
                continue
            t.append(0.5 * k)
            boxes.append(rng.uniform(0, 200, 2).tolist() + [40.0, 40.0])  # boxes jump around at random
            emb.append(_noisy(ident[p], rng))
            who.append(p)
    if not t:
        return
    labels = link_faces(np.array(t), np.array(boxes), np.array(emb, np.float32), threshold=0.6,
                        link_threshold=0.4, gap=1.0)
    who = np.array(who)
    for lab in np.unique(labels):
        members = labels == lab
        assert len(set(who[members])) == 1
        assert len(set(np.array(t)[members])) == members.sum()  # one face per sample in a track


def test_track_embedding_is_the_mean_of_the_best_faces():
    e = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], np.float32)
    q = np.array([0.9, 0.8, 0.1, 0.5])
    out = track_embeddings(np.array([0, 0, 0, 1]), e, q, best=2)
    np.testing.assert_allclose(out[0], [2**-0.5, 2**-0.5, 0], atol=1e-6)
    np.testing.assert_allclose(out[1], [1, 0, 0], atol=1e-6)
    assert out.dtype == np.float32


def test_library_threshold_separates_synthetic_people_and_states_its_uncertainty():
    rng = np.random.default_rng(33)
    ident = _identities(150, dim=128, seed=3)
    x = _noisy(np.repeat(ident, 2, axis=0), rng, noise=1.0)
    cal = calibrate_library(x)
    same = np.einsum("ij,ij->i", x[0::2], x[1::2])
    assert np.median(same) > cal.threshold  # most same-person pairs pass
    one = x[0::2]
    strangers = (one @ one.T)[np.triu_indices(len(one), 1)]
    assert np.mean(strangers >= cal.threshold) < 1e-3  # nearly no stranger pair does
    small = calibrate_library(x[::12])
    assert small.threshold_se > cal.threshold_se
    assert any("uncertain" in w for w in small.warnings)
    with pytest.raises(ValueError, match="threshold="):
        calibrate_library(x[:2])


def test_score_is_monotonic_in_unit_interval_and_half_at_threshold():
    s = np.linspace(-1, 1, 201)
    sc = similarity_score(s, 0.4, 0.1)
    assert np.all(np.diff(sc) > 0) or np.all(np.diff(sc) >= 0)
    assert sc.min() >= 0 and sc.max() <= 1
    assert similarity_score(0.4, 0.4, 0.1) == pytest.approx(0.5)
    np.testing.assert_array_equal(similarity_score(s, 0.4, 0.1), sc)  # same similarity, same score
