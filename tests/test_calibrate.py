"""Threshold calibration without labels (imm_analysis.cluster.calibrate)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from imm_analysis.cluster.calibrate import calibrate_threshold, pair_similarities


def _clustered(
    n_people: int, dim: int, *, seed: int, spread: float = 0.8, synth: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around identity centres, 1-12 faces per person (LFW-like skew).

    ``synth=True``: ``imm_analysis.synth.make_embeddings`` (real-model-like similarities at any
    dim). ``synth=False``: isotropic blobs, genuine cosine about 1 / (1 + spread**2) and
    impostor sd 1 / sqrt(dim), so the impostor spread depends on the dimension.
    """
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.geometric(0.35, n_people), 12)
    y = np.repeat(np.arange(n_people), sizes)
    if synth:
        from imm_analysis.synth import make_embeddings

        return np.asarray(make_embeddings(y, dim=dim, seed=seed), dtype=np.float32), y
    centres = rng.normal(size=(n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[y] + spread * rng.normal(size=(len(y), dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def _pair_stats(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = x @ x.T
    iu = np.triu_indices(len(x), 1)
    same = (y[:, None] == y[None, :])[iu]
    return s[iu][~same], s[iu][same]


@pytest.fixture(scope="module", params=[128, 512])
def data(request):
    x, y = _clustered(900, request.param, seed=request.param)
    impostor, genuine = _pair_stats(x, y)
    return request.param, x, y, impostor, genuine


def test_threshold_lies_between_impostor_and_genuine(data):
    dim, x, y, impostor, genuine = data
    t = calibrate_threshold(x)
    assert np.quantile(impostor, 1 - 1e-3) < t < np.median(genuine), dim
    # false matches at the threshold stay near the target (1e-5), far below 1e-3
    fmr = float(np.mean(impostor >= t))
    assert fmr < 1e-4, (dim, fmr)
    # and most same-person pairs still pass
    assert float(np.mean(genuine >= t)) > 0.8


def test_false_merge_rate_per_face(data):
    """Few faces meet any other person above the threshold: about n x target_fmr of them."""
    dim, x, y, _, _ = data
    t = calibrate_threshold(x)
    s = x @ x.T
    np.fill_diagonal(s, -1)
    other = y[:, None] != y[None, :]
    share = float(((s >= t) & other).any(axis=1).mean())
    assert share < 4 * len(x) * 1e-5, (dim, share)  # expected about n * fmr (2.7 %) when the tail is normal


def test_clusterer_at_the_calibrated_threshold_rarely_merges_people(data):
    from imm_analysis.cluster.clusterer import FigureClusterer
    from imm_analysis.evaluate import evaluate_clustering

    dim, x, y, _, _ = data
    model = FigureClusterer(calibrate_threshold(x), min_faces=1).fit(x)
    m = evaluate_clustering(y, model.labels_)
    assert m["bcubed_precision"] > 0.95, (dim, m)
    assert m["bcubed_f"] > 0.9, (dim, m)


def test_no_per_model_constant_thresholds_follow_the_data():
    x128, _ = _clustered(600, 128, seed=1, synth=False)
    x512, _ = _clustered(600, 512, seed=1, synth=False)
    t128, t512 = calibrate_threshold(x128), calibrate_threshold(x512)
    # isotropic 512-d impostors are twice as narrow (sd 1/sqrt(d)): the threshold halves
    assert t512 == pytest.approx(t128 / 2, rel=0.15)
    assert t128 == pytest.approx(4.26 / np.sqrt(128), rel=0.1)  # the normal-tail quantile at 1e-5
    # a stricter target gives a higher threshold
    assert calibrate_threshold(x128, target_fmr=1e-7) > calibrate_threshold(x128, target_fmr=1e-3)


def test_deterministic_and_stable_across_seeds():
    x, _ = _clustered(600, 128, seed=3)
    assert calibrate_threshold(x, random_state=5) == calibrate_threshold(x, random_state=5)
    ts = [calibrate_threshold(x, random_state=s) for s in range(4)]
    assert max(ts) - min(ts) < 0.02


def test_unnormalised_input_gives_the_same_threshold():
    x, _ = _clustered(500, 128, seed=4)
    scale = np.random.default_rng(0).uniform(0.5, 20, size=(len(x), 1)).astype(np.float32)
    assert calibrate_threshold(x * scale) == pytest.approx(calibrate_threshold(x), abs=1e-6)


def test_details_and_knn_diagnostics():
    x, _ = _clustered(500, 128, seed=5)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1)[:, :10]

    class Graph:  # the KNNGraph fields calibrate_threshold reads
        indices = idx
        similarities = np.take_along_axis(s, idx, axis=1).astype(np.float32)

    t, d = calibrate_threshold(x, knn=Graph(), return_details=True)
    assert d["threshold"] == t
    assert d["centre"] < t and d["scale_upper"] > 0
    assert d["observed_rate"] < 0.01 and not d["warnings"]  # random pairs: mostly different people
    assert 0 < d["matched_share"] < 1
    assert d["genuine_median"] > t


def test_some_frequent_people_do_not_move_the_threshold():
    """A shop's regulars: 40 people with 12 faces among 600 people seen once (2 % same-person pairs)."""
    from imm_analysis.synth import make_embeddings

    y = np.r_[np.repeat(np.arange(40), 12), np.arange(40, 640)]
    x = make_embeddings(y, seed=7)
    many = make_embeddings(np.arange(2000), seed=7)  # one face per person: no same-person pairs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = calibrate_threshold(x)
    assert t == pytest.approx(calibrate_threshold(many), abs=0.03)


def test_few_identities_warns():
    x, _ = _clustered(4, 128, seed=6)
    x = np.repeat(x, 20, axis=0) + 0.01 * np.random.default_rng(0).normal(size=(len(x) * 20, 128)).astype(np.float32)
    with pytest.warns(UserWarning, match="few identities"):
        calibrate_threshold(x)


def test_bad_input():
    with pytest.raises(ValueError, match="target_fmr"):
        calibrate_threshold(np.eye(5), target_fmr=0)
    with pytest.raises(ValueError, match="2-d"):
        calibrate_threshold(np.ones(5))
    bad = np.eye(6, dtype=np.float32)
    bad[2] = 0
    with pytest.raises(ValueError, match="zero, NaN"):
        calibrate_threshold(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(pair_similarities(np.eye(5), 1000)) == 10  # all pairs when there are few


def test_looser_threshold_is_the_calibration_at_a_looser_rate():
    from imm_analysis.cluster.calibrate import looser_threshold

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 128)).astype(np.float32)  # strangers only
    t5, d = calibrate_threshold(x, target_fmr=1e-5, return_details=True)
    t4 = calibrate_threshold(x, target_fmr=1e-4)
    # one decade looser from the 1e-5 threshold is the 1e-4 threshold of the same fit
    assert looser_threshold(t5, d["centre"], d["scale_upper"], 10.0) == pytest.approx(t4, abs=1e-9)
    assert looser_threshold(t5, d["centre"], d["scale_upper"], 1.0) == t5
    # far in the tail it stays finite and below the threshold; at or below the centre nothing changes
    far = looser_threshold(0.99, d["centre"], d["scale_upper"], 10.0)
    assert np.isfinite(far) and d["centre"] < far < 0.99
    assert looser_threshold(d["centre"] - 0.01, d["centre"], d["scale_upper"], 10.0) == d["centre"] - 0.01
    with pytest.raises(ValueError, match="fmr_factor"):
        looser_threshold(t5, d["centre"], d["scale_upper"], 0.5)
