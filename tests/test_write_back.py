"""to_imm_clusters / to_imm_files write IMM-shaped responses that load back to equal frames."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imm_pages import cluster, face, file, pages, query_figure_clusters, simple_query

from imm_analysis import load_clusters, load_figures, load_files, schema, to_imm_clusters, to_imm_files
from imm_analysis.io.errors import IMMLoadWarning

DATA = Path(__file__).parent / "data" / "imm"
SEEDS = [DATA / "get_figure_cluster.json", DATA / "query_figure_clusters.json", DATA / "simple_query.json"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IMMLoadWarning)
        return fn(*args)


def _check_round_trip(files: pd.DataFrame, figures: pd.DataFrame) -> dict:
    doc = to_imm_files(files, figures)
    text = json.dumps(doc, allow_nan=False)  # plain JSON: no NaN, no numpy scalars
    pd.testing.assert_frame_equal(load_files(text), files)
    pd.testing.assert_frame_equal(load_figures(doc), figures)
    return doc


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_seed_responses_round_trip(path):
    clusters = _quiet(load_clusters, path)
    back = to_imm_clusters(clusters)
    assert set(back) == {"FigureClusters", "NextToken", "TotalCount"} and back["TotalCount"] == len(clusters)
    pd.testing.assert_frame_equal(load_clusters(back), clusters)
    _check_round_trip(load_files(path), load_figures(path))


def test_written_records_are_imm_shaped():
    clusters = load_clusters(DATA / "get_figure_cluster.json")
    rec = to_imm_clusters(clusters)["FigureClusters"][0]
    assert rec["ObjectId"] == "Cluster-ae6e3472-999e-410b-b54e-cd5dba****"
    assert rec["Cover"] == {"ObjectId": "75d5de2c50754e3dadd5c35dbca5f9949369e37eb342a73821f690c94c36c7f7",
                            "URI": "oss://test-bucket/test-object.jpg"}
    # 2022-01-14T10:10:52.83948013+08:00 written in UTC, nanoseconds kept
    assert rec["CreateTime"] == "2022-01-14T02:10:52.83948013Z"
    assert rec["FaceCount"] == 3 and isinstance(rec["FaceCount"], int)
    assert rec["CustomLabels"] == {"Bucket": "examplebucket"}

    doc = to_imm_files(load_files(DATA / "simple_query.json"), load_figures(DATA / "simple_query.json"))
    assert set(doc) == {"Files", "Aggregations", "NextToken"}
    f = doc["Files"][0]
    assert f["ProduceTime"] == "2014-02-20T16:03:36Z"
    assert f["UpdateTime"] == "2022-07-12T08:41:19.336736388Z"
    assert f["ImageScore"] == {"OverallQualityScore": 0.7490000128746033}  # from extra
    g = f["Figures"][0]
    assert g["HeadPose"] == {"Pitch": -0.8999999761581421, "Roll": 1.1660000085830688, "Yaw": 7.932000160217285}
    assert "Boundary" not in g and "Age" not in g  # missing values are left out, never null
    assert "cluster_state" not in g and "ClusterState" not in g
    assert all(RFC3339_UTC.match(v) for v in (f["ProduceTime"], f["CreateTime"], f["FileModifiedTime"]))


def test_nested_fields_and_extra_are_merged_back():
    doc = simple_query([file(1, [face(1, HeadPose={"Pitch": 1.5, "Tilt": 3}, Boundary={"Left": 1, "Top": 2, "Width": 90,
                                                                                         "Height": 95, "Polygon": [{"X": 1}]},
                                       Smile=0.5)])])
    files, figures = load_files(doc), load_figures(doc)
    back = _check_round_trip(files, figures)
    g = back["Files"][0]["Figures"][0]
    assert g["Boundary"] == {"Left": 1, "Top": 2, "Width": 90, "Height": 95, "Polygon": [{"X": 1}]}
    assert g["HeadPose"] == {"Pitch": 1.5, "Tilt": 3} and g["Smile"] == 0.5


def test_editing_the_written_document_leaves_the_frames_alone():
    """The ``extra`` values go into the document as copies: editing it does not edit the frames."""
    doc = simple_query([file(1, [face(1, Boundary={"Left": 1, "Top": 2, "Width": 90, "Height": 95,
                                                   "Polygon": [{"X": 1}]})], Labels=[{"LabelName": "a"}])])
    files, figures = load_files(doc), load_figures(doc)
    before = (repr(files["extra"].tolist()), repr(figures["extra"].tolist()))
    out = to_imm_files(files, figures)
    out["Files"][0]["Labels"].append({"LabelName": "b"})
    out["Files"][0]["Figures"][0]["Boundary"]["Polygon"][0]["X"] = 99
    assert (repr(files["extra"].tolist()), repr(figures["extra"].tolist())) == before
    clusters = load_clusters(query_figure_clusters([cluster(1, Labels=[{"LabelName": "a"}])]))
    before = repr(clusters["extra"].tolist())
    to_imm_clusters(clusters)["FigureClusters"][0]["Labels"].clear()
    assert repr(clusters["extra"].tolist()) == before


def test_synthetic_pages_round_trip_with_reserved_ids(tmp_path):
    docs = pages(4, 5)
    docs[0]["Files"][1]["Figures"] = []  # a file without faces
    files, figures = load_files(docs), load_figures(docs)
    assert set(figures["cluster_state"]) == {"clustered", "independent", "unavailable"}
    doc = _check_round_trip(files, figures)
    path = tmp_path / "out.jsonl"
    path.write_bytes(orjson.dumps(doc) + b"\n")
    pd.testing.assert_frame_equal(load_figures(path), figures)  # through the pyarrow fast path too
    clusters = load_clusters(query_figure_clusters([cluster(k, file(k, [face(k)])) for k in range(5)], TotalCount=5))
    pd.testing.assert_frame_equal(load_clusters(to_imm_clusters(clusters)), clusters)


def test_figures_without_their_files_get_minimal_files():
    docs = pages(2, 3)
    figures = load_figures(docs)
    doc = to_imm_files(None, figures)
    assert set(doc["Files"][0]) == {"ObjectId", "URI", "MediaType", "ProduceTime", "Figures"}
    pd.testing.assert_frame_equal(load_figures(doc), figures)
    some_files = load_files(docs).iloc[:2]
    pd.testing.assert_frame_equal(load_figures(to_imm_files(some_files, figures)), figures)
    assert to_imm_files(load_files(docs))["Files"][0].get("Figures") is None


def test_empty_frames_write_empty_responses():
    assert to_imm_clusters(schema.empty_frame("clusters")) == {"FigureClusters": [], "NextToken": "", "TotalCount": 0}
    doc = to_imm_files(schema.empty_frame("files"), schema.empty_frame("figures"))
    assert doc["Files"] == []
    pd.testing.assert_frame_equal(load_figures(doc), schema.empty_frame("figures"))


def test_committed_sample_round_trips(sample_dir):
    clusters = load_clusters(sample_dir / "clusters")
    files, figures = load_files(sample_dir / "files"), load_figures(sample_dir / "files")
    assert len(clusters) and len(figures)
    pd.testing.assert_frame_equal(load_clusters(to_imm_clusters(clusters)), clusters)
    _check_round_trip(files, figures)


# --------------------------------------------------------------------------- property test

_times = st.datetimes(
    min_value=pd.Timestamp("1990-01-01").to_pydatetime(), max_value=pd.Timestamp("2100-01-01").to_pydatetime()
)
_offsets = st.sampled_from(["Z", "+08:00", "-05:30", "+00:00"])


@st.composite
def _time_text(draw) -> str:
    t = draw(_times)
    nanos = draw(st.integers(0, 999_999_999))
    digits = draw(st.sampled_from([0, 3, 6, 8, 9]))
    frac = "" if digits == 0 else "." + f"{nanos:09d}"[:digits]
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + draw(_offsets)


_number = st.one_of(st.integers(-10_000, 10_000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_json = st.recursive(st.one_of(st.none(), st.booleans(), _number, _text),
                     lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
                     max_leaves=6)


@st.composite
def _face(draw, i: int) -> dict:
    rec: dict = {"FigureId": f"fig-{i}"}
    optional = {
        "FigureClusterId": st.sampled_from(["Cluster-1", "Cluster-2", schema.CLUSTER_INDEPENDENT, schema.CLUSTER_UNAVAILABLE]),
        "FaceQuality": _number, "Sharpness": _number, "Age": _number, "Attractive": _number,
        "Gender": st.sampled_from(["male", "female"]), "Emotion": _text, "Mask": st.sampled_from(["none", "wear"]),
        "Boundary": st.fixed_dictionaries({}, optional={"Left": st.integers(0, 4000), "Top": st.integers(0, 4000),
                                                         "Width": st.integers(0, 4000), "Height": st.integers(0, 4000)}),
        "HeadPose": st.fixed_dictionaries({}, optional={"Pitch": _number, "Roll": _number, "Yaw": _number}),
        "Unmodelled": _json,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            rec[key] = draw(strategy)
    return rec


@st.composite
def _page(draw) -> dict:
    files, n = [], 0
    for j in range(draw(st.integers(0, 4))):
        faces = [draw(_face(n + k)) for k in range(draw(st.integers(0, 3)))]
        n += len(faces)
        rec = {"ObjectId": f"file-{j}", "URI": f"oss://b/{j}.jpg", "Figures": faces}
        for key, strategy in {"ProduceTime": _time_text(), "CreateTime": _time_text(), "Size": st.integers(0, 2**40),
                              "MediaType": st.sampled_from(["image", "video"]), "Filename": _text, "Extra": _json}.items():
            if draw(st.booleans()):
                rec[key] = draw(strategy)
        files.append(rec)
    return {"Files": files}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_page())
def test_round_trip_property(page):
    files, figures = load_files(page), load_figures(page)
    assert len(figures) == sum(len(f["Figures"]) for f in page["Files"])
    _check_round_trip(files, figures)
