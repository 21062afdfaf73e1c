"""FigureClusterer and cluster_faces: IMM's semantics, incremental runs, recut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cluster_data import figures_for, people

from imm_analysis import schema
from imm_analysis.cluster.clusterer import FigureClusterer, cluster_faces


@pytest.fixture(scope="module")
def synth():
    from imm_analysis.synth import make_dataset

    return make_dataset(30, seed=1)


def test_founding_needs_min_faces_hd_faces():
    x, lab = people([3, 2])
    labels = FigureClusterer(0.5).fit(x).labels_
    assert labels.tolist() == [0, 0, 0, -1, -1]
    assert FigureClusterer(0.5, min_faces=2).fit(x).labels_.tolist() == [0, 0, 0, 1, 1]


def test_non_hd_faces_join_but_never_found():
    x, lab = people([5, 5])
    hd = np.array([1, 1, 1, 0, 0, 1, 1, 0, 0, 0], bool)
    est = FigureClusterer(0.5).fit(x, figures_for(10, hd=hd))
    # person 0: 3 HD founders + 2 non-HD joiners; person 1: only 2 HD faces -> independent
    assert est.labels_.tolist() == [0] * 5 + [-1] * 5
    assert est.hd_.tolist() == hd.tolist()
    # a custom rule and a dict rule reach hd_mask / the callable
    assert FigureClusterer(0.5, hd_rule=lambda f: np.ones(len(f), bool)).fit(x, figures_for(10, hd=hd)).n_clusters_ == 2
    assert FigureClusterer(0.5, hd_rule={"min_size": 30, "min_quality": 0.4}).fit(x, figures_for(10, hd=hd)).n_clusters_ == 2


def test_faces_of_one_image_never_share_a_cluster():
    x, _ = people([4])
    figs = figures_for(4, files=["a", "a", "b", "c"])
    labels = FigureClusterer(0.5, min_faces=1).fit(x, figs).labels_
    assert labels[0] != labels[1]
    # 3 distinct images are needed to found: a, b, c
    labels = FigureClusterer(0.5, min_faces=3).fit(x, figs).labels_
    assert (labels >= 0).sum() == 3 and len(set(labels[labels >= 0])) == 1


def test_video_faces_of_one_frame_are_cannot_linked_but_frames_are_not():
    x, _ = people([4])
    figs = figures_for(4, files=["v", "v", "v", "img"])
    figs["media_type"] = ["video", "video", "video", "image"]
    figs["frame_index"] = pd.array([1, 1, 2, pd.NA], dtype="Int64")
    labels = FigureClusterer(0.5, min_faces=1).fit(x, figs).labels_
    assert labels[0] != labels[1]
    assert labels[2] in (labels[0], labels[1])


def test_recut_equals_fresh_fit(synth):
    est = FigureClusterer(0.35, min_faces=3).fit(synth.embeddings, synth.figures)
    for t, mf in [(0.5, 3), (0.45, 1), (0.35, 2), (0.6, 3)]:
        fresh = FigureClusterer(t, min_faces=mf).fit(synth.embeddings, synth.figures).labels_
        np.testing.assert_array_equal(est.recut(t, min_faces=mf), fresh)
    hd = np.ones(len(synth.figures), bool)
    np.testing.assert_array_equal(
        est.recut(0.5, hd=hd), FigureClusterer(0.5, hd_rule=lambda f: np.ones(len(f), bool)).fit(synth.embeddings, synth.figures).labels_
    )
    assert est.labels_.tolist() == est.recut().tolist()
    with pytest.raises(ValueError, match="floor"):
        est.recut(-0.5)


def test_quality_on_synthetic_people(synth):
    from sklearn.metrics import adjusted_rand_score

    labels = FigureClusterer(0.4, min_faces=1).fit_predict(synth.embeddings, synth.figures)
    assert adjusted_rand_score(synth.labels, labels) > 0.8


def test_partial_fit_keeps_earlier_assignments_and_joins():
    x, lab = people([6, 6, 2])
    est = FigureClusterer(0.5).fit(x[[0, 1, 2, 6, 7, 8, 12]])
    before = est.labels_.copy()
    assert before.tolist() == [0, 0, 0, 1, 1, 1, -1]
    est.partial_fit(x[[3, 9, 13]])
    np.testing.assert_array_equal(est.labels_[:7], before)
    # faces 3 and 9 join their people; 13 + earlier independent 12 are still only 2 faces
    assert est.labels_[7:].tolist() == [0, 1, -1]
    est.partial_fit(x[[4, 10]])
    assert est.labels_[10:].tolist() == [0, 1]
    # a no-op run changes nothing
    snapshot = est.labels_.copy()
    est.partial_fit(np.empty((0, x.shape[1]), np.float32))
    np.testing.assert_array_equal(est.labels_, snapshot)


def test_partial_fit_founds_with_earlier_independent_faces():
    x, _ = people([3, 3])
    est = FigureClusterer(0.5).fit(x[[0, 1, 2, 3, 4]])
    assert est.labels_.tolist() == [0, 0, 0, -1, -1]
    est.partial_fit(x[[5]])
    assert est.labels_.tolist() == [0, 0, 0, 1, 1, 1]


def test_partial_fit_respects_same_image():
    x, _ = people([5])
    est = FigureClusterer(0.5).fit(x[:3], figures_for(3))
    new = figures_for(2, files=["file-0", "file-9"], start=3)
    est.partial_fit(x[3:], new)
    assert est.labels_.tolist() == [0, 0, 0, -1, 0]


def test_parameter_validation():
    x, _ = people([3])
    with pytest.raises(ValueError, match="min_faces"):
        FigureClusterer(0.5, min_faces=0).fit(x)
    with pytest.raises(ValueError, match="threshold"):
        FigureClusterer(1.5).fit(x)
    with pytest.raises(ValueError, match="row-aligned"):
        FigureClusterer(0.5).fit(x, figures_for(2))
    est = FigureClusterer(0.4, min_faces=2, n_neighbors=5)
    assert est.get_params()["min_faces"] == 2 and est.get_params()["n_neighbors"] == 5


def test_cluster_faces_frames(synth):
    figures, clusters = cluster_faces(synth.figures, synth.embeddings, threshold=0.4, seed=3)
    assert list(clusters.columns) == list(schema.CLUSTER_COLUMNS)
    assert clusters["cluster_id"].str.match(r"^Cluster-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$").all()
    ids = figures["figure_cluster_id"]
    clustered = figures["cluster_state"] == "clustered"
    assert set(ids[clustered]) == set(clusters["cluster_id"])
    assert (ids[~clustered] == schema.CLUSTER_INDEPENDENT).all()
    counts = ids[clustered].value_counts()
    c = clusters.set_index("cluster_id")
    assert (c.loc[counts.index, "face_count"].to_numpy() == counts.to_numpy()).all()
    # cover is a file holding one of the cluster's faces, and counts split images and videos
    for cid, row in c.iterrows():
        members = figures[ids == cid]
        assert row["cover_file_id"] in set(members["file_id"])
        assert row["image_count"] + row["video_count"] == members["file_id"].nunique()
        assert row["min_age"] <= row["average_age"] <= row["max_age"]
    # two faces of one image never share a cluster
    images = figures.loc[clustered & (figures["media_type"] == "image"), ["figure_cluster_id", "file_id"]]
    assert not images.duplicated().any()
    # same seed, same ids
    again = cluster_faces(synth.figures, synth.embeddings, threshold=0.4, seed=3)[1]
    assert again["cluster_id"].tolist() == clusters["cluster_id"].tolist()
