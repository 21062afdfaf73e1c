"""match_faces and audit_against_local: a local run of ../shared/faces/photos against an "IMM export" of the
same photos built with known differences (shifted boxes, a missed and an extra face, two clusters merged, one
split, one quality verdict changed): every difference is found, and nothing else."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from imm_analysis import audit_against_local, match_faces
from imm_analysis.schema import CLUSTER_INDEPENDENT, coerce_frame


@pytest.fixture(scope="module")
def local(pack_dir, faces_dir):
    from imm_analysis import ClusterState, FaceModel, embed_images

    res = embed_images(faces_dir / "photos", FaceModel(pack_dir), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the calibration's "few identities" note
        state = ClusterState.from_figures(res.figures, res.embeddings, seed=0)
    assert len(state.clusters) >= 4, "the photos should give several local clusters"
    return state


def imm_export(state):
    """IMM's view of the same photos, with known differences from the local run."""
    figs = state.figures.reset_index(drop=True)
    clusters = state.clusters["cluster_id"].astype(str).tolist()
    merged_a, merged_b, split = clusters[0], clusters[1], clusters[2]
    ids = {c: f"Cluster-imm-{k:04d}" for k, c in enumerate(clusters)}
    ids[merged_b] = ids[merged_a]  # IMM put two local people in one cluster
    imm = figs.copy()
    local_ids = figs["figure_cluster_id"].astype(str).to_numpy()
    imm_ids = np.array([ids.get(c, CLUSTER_INDEPENDENT) for c in local_ids], dtype=object)
    split_rows = np.flatnonzero(local_ids == split)
    imm_ids[split_rows[: len(split_rows) // 2]] = "Cluster-imm-split"  # IMM split one local person in two
    imm["figure_cluster_id"] = imm_ids
    imm["figure_id"] = [f"imm-face-{i:04d}" for i in range(len(imm))]
    imm["file_id"] = "imm-" + imm["file_id"].astype(str)
    imm["left"] = imm["left"] + 3  # IMM's boxes are a few pixels off
    imm["top"] = imm["top"] - 2
    # a face IMM missed: an independent one, so no cluster changes size
    missed = int(np.flatnonzero(local_ids == CLUSTER_INDEPENDENT)[0])
    # an HD face IMM judged low quality
    hd_row = int(np.flatnonzero(local_ids == clusters[3])[0])
    imm.loc[hd_row, "face_quality"] = 0.5
    keep = np.ones(len(imm), dtype=bool)
    keep[missed] = False
    # a face only IMM found: in the corner of a one-face photo, far from the face there
    single = figs.groupby("uri")["figure_id"].transform("size") == 1
    row = figs.loc[single & (figs["left"] > 150)].iloc[0]
    extra = row.to_frame().T.assign(figure_id="imm-extra", file_id="imm-" + row["file_id"], left=0, top=0, width=40,
                                    height=40, figure_cluster_id=CLUSTER_INDEPENDENT)
    imm = coerce_frame(pd.concat([imm[keep], extra], ignore_index=True), "figures")
    truth = {"missed": figs["figure_id"].iloc[missed], "extra": "imm-extra", "merged": ids[merged_a],
             "split": split, "hd_row_local": figs["figure_id"].iloc[hd_row]}
    return imm, truth


def test_match_faces_pairs_every_face_but_the_missed_and_the_extra(local):
    imm, truth = imm_export(local)
    m = match_faces(imm, local.figures)
    assert m.only_a["figure_id"].tolist() == [truth["extra"]]
    assert m.only_b["figure_id"].tolist() == [truth["missed"]]
    assert len(m.pairs) == len(local.figures) - 1
    # pairs are the faces we shifted: the same row of the local run
    local_rows = dict(zip(local.figures["figure_id"].astype(str), range(len(local.figures)), strict=True))
    expected = [f"imm-face-{local_rows[b]:04d}" for b in m.pairs["figure_id_b"]]
    assert m.pairs["figure_id_a"].tolist() == expected
    assert (m.pairs["iou"] > 0.8).all() and (m.pairs["iou"] < 1).all()
    assert m.pairs["figure_id_a"].is_unique and m.pairs["figure_id_b"].is_unique


def test_match_faces_one_to_one_in_crowded_files():
    # two faces side by side on each side; a greedy pairing by file order would cross them
    a = pd.DataFrame({"uri": ["g.jpg"] * 3, "figure_id": ["a0", "a1", "a2"], "left": [0, 60, 500],
                      "top": [0, 0, 0], "width": [100, 100, 50], "height": [100, 100, 50]})
    b = pd.DataFrame({"uri": ["g.jpg"] * 2 + ["h.jpg"], "figure_id": ["b0", "b1", "b2"], "left": [58, 2, 0],
                      "top": [0, 0, 0], "width": [100, 100, 50], "height": [100, 100, 50]})
    m = match_faces(a, b, min_iou=0.3)
    assert sorted(zip(m.pairs["figure_id_a"], m.pairs["figure_id_b"], strict=True)) == [("a0", "b1"), ("a1", "b0")]
    assert m.only_a["figure_id"].tolist() == ["a2"] and m.only_b["figure_id"].tolist() == ["b2"]
    with pytest.raises(KeyError, match="file-key column 'path'"):
        match_faces(a, b, on="path")


def test_audit_finds_every_difference_and_nothing_else(local):
    imm, truth = imm_export(local)
    audit = audit_against_local((None, imm), local)
    s = audit.summary
    assert (s["matched"], s["only_imm"], s["only_local"]) == (len(local.figures) - 1, 1, 1)
    assert audit.unmatched.set_index("side")["figure_id"].to_dict() == {"imm": truth["extra"],
                                                                       "local": truth["missed"]}
    assert audit.detection[["both", "only_imm", "only_local"]].sum().tolist() == [s["matched"], 1, 1]
    # the extra face is 40 px: it lands in the 0-40 / 40-75 size bins, not with the photos' faces
    assert audit.detection.set_index("size_bin").loc["40-75px", "only_imm"] == 1
    # quality and pose: one HD verdict differs, on the face we changed; poses identical
    q = audit.quality
    differs = q[q["hd_imm"] != q["hd_local"]]
    assert differs["figure_id_local"].tolist() == [truth["hd_row_local"]] and s["hd_disagree"] == 1
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in s["pose_mae"].values())
    # clustering: one IMM cluster split by the local run (IMM's merge), one local cluster made of two IMM
    # clusters (IMM's split), everything else the same
    cmp = audit.comparison
    assert (s["splits"], s["merges"]) == (1, 1)
    statuses = cmp.table.set_index("cluster_a")["status"]
    assert statuses[truth["merged"]] == "split"
    assert set(statuses[statuses == "merged"].index) == {"Cluster-imm-split", _imm_id(imm, local, truth["split"])}
    assert (statuses.drop([truth["merged"], "Cluster-imm-split", _imm_id(imm, local, truth["split"])]) == "same").all()
    assert audit.disagreements["cluster_a"].iloc[0] in {truth["merged"], "Cluster-imm-split"}
    assert s["agreement"]["pairwise_f"] < 1


def _imm_id(imm, local, local_cluster):
    """The IMM id the other half of the split local cluster kept."""
    m = match_faces(imm, local.figures)
    pairs = m.pairs.assign(ca=imm["figure_cluster_id"].to_numpy()[m.pairs["row_a"]],
                           cb=local.figures["figure_cluster_id"].astype(str).to_numpy()[m.pairs["row_b"]])
    return sorted(set(pairs.loc[pairs["cb"] == local_cluster, "ca"]) - {"Cluster-imm-split"})[0]


def test_audit_plot_montages_and_html(local, tmp_path):
    imm, _ = imm_export(local)
    audit = audit_against_local((None, imm), local, images=lambda uri: uri)
    fig = audit.plot()
    assert len(fig.axes) == 3
    montages = audit.montages(max_clusters=1)
    assert len(montages) == 1
    out = tmp_path / "audit.html"
    html = audit.to_html(out)
    assert out.read_text() == html and "IMM against a local run" in html and "data:image/png;base64," in html
    assert "<!DOCTYPE html>" not in audit._repr_html_()


# ------------------------------------------------------------------ one-to-one assignment against brute force

import itertools  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from imm_analysis.audit.match import box_iou  # noqa: E402

_BOX = st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(20, 60), st.integers(20, 60))


def _best_total(a: list, b: list, min_iou: float) -> float:
    """The largest total IoU of a one-to-one pairing (pairs under min_iou not allowed), by brute force."""
    iou = box_iou(np.array([x for x in a for _ in b], float).reshape(-1, 4),
                  np.array([y for _ in a for y in b], float).reshape(-1, 4)).reshape(len(a), len(b)) if a and b else None
    best = 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    for perm in itertools.permutations(range(len(large)), len(small)):
        total = 0.0
        for i, j in enumerate(perm):
            v = iou[i, j] if small is a else iou[j, i]
            total += v if v >= min_iou else 0.0
        best = max(best, total)
    return best


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_BOX, max_size=4), min_size=1, max_size=3),
       st.lists(st.lists(_BOX, max_size=4), min_size=1, max_size=3))
def test_match_is_one_to_one_and_optimal_per_file(files_a, files_b):
    def frame(files, side):
        rows = [(f"img{f}.jpg", f"{side}{f}-{i}", *box) for f, boxes in enumerate(files) for i, box in enumerate(boxes)]
        return pd.DataFrame(rows, columns=["uri", "figure_id", "left", "top", "width", "height"])

    a, b = frame(files_a, "a"), frame(files_b, "b")
    m = match_faces(a, b, min_iou=0.3)
    assert m.pairs["figure_id_a"].is_unique and m.pairs["figure_id_b"].is_unique
    assert (m.pairs["iou"] >= 0.3).all()
    assert len(m.pairs) + len(m.only_a) == len(a) and len(m.pairs) + len(m.only_b) == len(b)
    for f in range(min(len(files_a), len(files_b))):
        got = m.pairs.loc[m.pairs["uri"] == f"img{f}.jpg", "iou"].sum()
        assert got == pytest.approx(_best_total(files_a[f], files_b[f], 0.3), abs=1e-9)


def test_a_field_that_is_not_a_number_is_named():
    face = {"figure_id": ["f1", "f2"], "uri": ["p.jpg", "q.jpg"], "left": [0, 0], "top": [0, 0],
            "width": [90, 90], "height": [90, 90], "face_quality": [0.9, 0.9], "pitch": [0, 0], "roll": [0, 0],
            "yaw": [0, 0], "figure_cluster_id": ["C", "C"]}
    good = pd.DataFrame(face)
    assert audit_against_local(good, good).summary["matched"] == 2
    bad = good.astype({"face_quality": object, "yaw": object})
    bad.loc[1, "face_quality"] = "high"
    with pytest.raises(ValueError, match=r"local: field 'face_quality' of face 'f2' is not a number: 'high'"):
        audit_against_local(good, bad)
    bad.loc[1, "face_quality"], bad.loc[0, "yaw"] = None, "n/a"  # a missing value is not an error
    with pytest.raises(ValueError, match=r"imm: field 'yaw' of face 'f1'"):
        audit_against_local(bad, good)
    shifted = good.astype({"left": object})
    shifted.loc[0, "left"] = "x"
    with pytest.raises(ValueError, match=r"field 'left' of face 'f1'"):
        match_faces(shifted, good)
