"""embed_crops on real aligned LFW faces (a subset of ../shared/faces/lfw_dev, for time)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imm_analysis.faces.embed import embed_crops
from imm_analysis.faces.model import FaceModel
from imm_analysis.schema import CLUSTER_UNAVAILABLE, FIGURE_COLUMNS, FILE_COLUMNS


@pytest.fixture(scope="module")
def model(pack_dir):
    return FaceModel(pack_dir)


@pytest.fixture(scope="module")
def lfw_subset(faces_dir):
    root = faces_dir / "lfw_dev"
    people = sorted(p for p in root.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 4)[:60]
    paths = [f for p in people for f in sorted(p.glob("*.jpg"))[:4]]
    return paths


@pytest.fixture(scope="module")
def crops_result(model, lfw_subset):
    return embed_crops(lfw_subset, model, progress=False)


def test_crops_frames_and_embeddings(crops_result, lfw_subset):
    res = crops_result
    assert len(res.files) == len(res.figures) == len(lfw_subset) and res.errors.empty
    assert list(res.figures.columns[: len(FIGURE_COLUMNS)]) == list(FIGURE_COLUMNS)
    assert list(res.files.columns[: len(FILE_COLUMNS)]) == list(FILE_COLUMNS)
    assert res.embeddings.dtype == np.float32 and res.embeddings.shape == (len(lfw_subset), 128)
    np.testing.assert_allclose(np.linalg.norm(res.embeddings, axis=1), 1.0, atol=1e-5)
    figs = res.figures
    assert (figs["figure_cluster_id"] == CLUSTER_UNAVAILABLE).all()
    assert figs["figure_id"].is_unique
    assert (figs["width"] == 112).all() and (figs["left"] == 0).all()
    assert figs["face_quality"].between(0, 1).all() and figs["sharpness"].between(0, 1).all()
    # the detector finds the face in (nearly) every aligned crop, and aligned faces are near frontal
    assert (figs["det_score"] > 0.5).mean() > 0.95
    assert figs["roll"].abs().median() < 5 and figs["yaw"].abs().median() < 15


def test_same_person_similarity_matches_reference(crops_result):
    # ../shared/README: same person 0.64 mean, different people 0.02, for this pack on lfw_dev
    labels = np.array([u.split("/")[-2] for u in crops_result.figures["uri"]])
    S = crops_result.embeddings @ crops_result.embeddings.T
    same = labels[:, None] == labels[None]
    np.fill_diagonal(same, False)
    diff = labels[:, None] != labels[None]
    assert 0.55 < S[same].mean() < 0.72
    assert abs(S[diff].mean()) < 0.06
    # a 1-nearest-neighbour check: most faces' best match is the same person
    np.fill_diagonal(S, -2)
    assert (labels[S.argmax(axis=1)] == labels).mean() > 0.85


def test_crops_without_detection_give_same_embeddings(model, lfw_subset, crops_result):
    res = embed_crops(lfw_subset[:12], model, detect=False, progress=False)
    np.testing.assert_allclose(res.embeddings, crops_result.embeddings[:12], atol=1e-6)
    assert res.figures["det_score"].isna().all() and res.figures["face_quality"].isna().all()


def test_quality_tracks_same_person_similarity(crops_result):
    """Faces over IMM's 0.8 cut agree better with the same person's other faces than those under it."""
    labels = np.array([u.split("/")[-2] for u in crops_result.figures["uri"]])
    S = crops_result.embeddings @ crops_result.embeddings.T
    same = labels[:, None] == labels[None]
    np.fill_diagonal(same, False)
    mean_same = (S * same).sum(axis=1) / same.sum(axis=1)
    q = crops_result.figures["face_quality"].to_numpy()
    low, high = q <= 0.8, q > 0.8
    assert low.sum() >= 8 and high.sum() >= 100
    assert mean_same[high].mean() > mean_same[low].mean() + 0.02


def test_fully_cached_second_run_gives_the_same_result(model, lfw_subset, tmp_path):
    """A re-run where every crop is already cached (an empty last batch) returns the first run's faces."""
    paths = lfw_subset[:20]
    first = embed_crops(paths, model, cache_dir=tmp_path, progress=False)
    again = embed_crops(paths, model, cache_dir=tmp_path, progress=False)
    assert len(again.figures) == len(first.figures) == 20
    assert again.stats["cached_files"] == 20 and again.stats["new_files"] == 0
    pd.testing.assert_frame_equal(again.figures, first.figures)
    pd.testing.assert_frame_equal(again.files, first.files)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
