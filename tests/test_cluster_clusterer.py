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


def _join_scene(seed=0, dim=64):
    """Strangers (for the impostor fit), a person A of 3 core faces, a fragment of A, and probes.

    Rows: 0-2 A's core (cos ~0.985 to A), 3-4 a fragment of A (close to each other, cos 0.59 to A,
    so about 0.58 to A's core: between the join level and the threshold), 5 a face of A at cos 0.3 (below both), 6-8 three faces of person B
    linked only at the join level, 9-208 strangers (one face each).
    """
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    a_dir, b_dir = q[0], q[1]

    def around(centre, cos, k, shared=0.0):
        noise = rng.normal(size=(k, dim)) + shared * rng.normal(size=dim)  # shared: faces close to each other
        noise -= np.outer(noise @ centre, centre)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        return cos * centre + np.sqrt(1 - cos**2) * noise

    strangers = rng.normal(size=(200, dim))
    x = np.vstack([around(a_dir, 0.985, 3), around(a_dir, 0.59, 2, shared=3.0), around(a_dir, 0.3, 1), around(b_dir, 0.78, 3), strangers])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_join_level_lets_a_fragment_join_and_keeps_strangers_out():
    x = _join_scene()
    est = FigureClusterer(0.6).fit(x)
    # the join level comes from the impostor fit: one decade looser than 0.6, well above the strangers
    assert 0.45 < est.join_threshold_ < 0.6
    assert est.impostor_["centre"] is not None
    labels = est.labels_
    a = labels[0]
    assert a >= 0 and (labels[:3] == a).all()
    assert (labels[3:5] == a).all()  # the fragment joins A
    assert labels[5] == -1  # too far from A even at the join level
    b = labels[6]
    assert b >= 0 and b != a and (labels[6:9] == b).all()  # 3 faces linked at the join level found
    assert (labels[9:] == -1).all()  # lone strangers join nothing
    # without the join level only A's core founds
    plain = FigureClusterer(0.6, join_fmr_factor=1).fit(x).labels_
    assert (plain[:3] >= 0).all() and (plain[3:] == -1).all()
    np.testing.assert_array_equal(est.recut(0.6), labels)
    # free mode is a plain cut: every component founds at the threshold
    free = FigureClusterer(0.6, min_faces=1).fit(x)
    assert free.labels_[3] != free.labels_[0]


def test_join_level_keeps_the_constraints():
    x = _join_scene()
    n = len(x)
    hd = np.ones(n, bool)
    hd[4] = False  # a non-HD face of the fragment
    hd[6] = False  # B keeps only 2 HD faces: it may not found, even at the join level
    labels = FigureClusterer(0.6).fit(x, figures_for(n, hd=hd)).labels_
    a = labels[0]
    assert (labels[3:5] == a).all()  # a non-HD face may join
    assert (labels[6:9] == -1).all()  # non-HD faces never found
    # the fragment holds a face of an image of A's core: it never shares A's cluster
    files = [f"file-{i}" for i in range(n)]
    files[3] = "file-0"
    labels = FigureClusterer(0.6).fit(x, figures_for(n, files=files)).labels_
    assert labels[0] >= 0 and labels[3] != labels[0]


def test_join_level_with_too_few_faces_for_an_impostor_fit():
    x, _ = people([2])
    est = FigureClusterer(0.5, min_faces=1).fit(x)
    assert est.join_threshold_ == 0.5 and est.impostor_["centre"] is None
    assert est.labels_.tolist() == [0, 0]
