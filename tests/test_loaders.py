"""load_clusters / load_files / load_figures on every source form, response shape and bad input."""

from __future__ import annotations

import gzip
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from imm_pages import CLUSTER_A, cluster, face, file, pages, query_figure_clusters, simple_query

from imm_analysis import load_clusters, load_figures, load_files, schema
from imm_analysis.io.errors import IMMFormatError, IMMLoadWarning
from imm_analysis.io.fast_jsonl import read_figures

DATA = Path(__file__).parent / "data" / "imm"
GET_CLUSTER = DATA / "get_figure_cluster.json"  # GetFigureCluster response from the API reference
QUERY_CLUSTERS = DATA / "query_figure_clusters.json"  # QueryFigureClusters example of the clustering guide
SIMPLE_QUERY = DATA / "simple_query.json"  # SimpleQuery example of the clustering guide
LOADERS = {"clusters": load_clusters, "files": load_files, "figures": load_figures}


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: "category" if isinstance(d, pd.CategoricalDtype) else str(d) for c, d in frame.dtypes.items()}


def _count_faces(doc) -> int:
    if isinstance(doc, dict):
        return len(doc.get("Figures") or []) + sum(_count_faces(v) for k, v in doc.items() if k != "Figures")
    if isinstance(doc, list):
        return sum(_count_faces(v) for v in doc)
    return 0


def _write_jsonl(path: Path, docs: list[dict]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc) + "\n")
    return path


# --------------------------------------------------------------------------- the API documents' examples


def test_get_figure_cluster_response():
    clusters = load_clusters(GET_CLUSTER)
    assert len(clusters) == 1
    row = clusters.iloc[0]
    assert row["cluster_id"] == "Cluster-ae6e3472-999e-410b-b54e-cd5dba****"
    assert (row["name"], row["gender"], row["face_count"], row["image_count"], row["video_count"]) == ("abc", "female", 3, 5, 3)
    assert (row["average_age"], row["min_age"], row["max_age"]) == (26.0, 12.0, 44.0)
    assert row["cover_file_id"] == "75d5de2c50754e3dadd5c35dbca5f9949369e37eb342a73821f690c94c36c7f7"
    assert row["cover_uri"] == "oss://test-bucket/test-object.jpg"
    # "2022-01-14T10:10:52.83948013+08:00": same instant in UTC, nanoseconds kept
    assert row["create_time"] == pd.Timestamp("2022-01-14T02:10:52.839480130Z")
    assert row["create_time"].nanosecond == 130
    assert row["custom_labels"] == {"Bucket": "examplebucket"}
    assert row["meta_lock_version"] == 0
    assert row["extra"] is None  # RequestId is response-level, Cover is read by load_files/load_figures


def test_cover_file_and_faces_of_a_cluster_response():
    files = load_files(GET_CLUSTER)
    figures = load_figures(GET_CLUSTER)
    assert files["file_id"].tolist() == ["75d5de2c50754e3dadd5c35dbca5f9949369e37eb342a73821f690c94c36c7f7"]
    f = files.iloc[0]
    assert (f["image_width"], f["image_height"], f["size"], f["orientation"]) == (270, 500, 1000, 0)
    assert f["produce_time"] == pd.Timestamp("2021-06-29T06:50:13.011643661Z")
    assert "Figures" not in f["extra"]
    assert f["extra"]["OSSUserMeta"] == {"key": "val"} and f["extra"]["Labels"][0]["LabelName"] == "椅子"
    assert len(figures) == 1
    g = figures.iloc[0]
    assert g["file_id"] == f["file_id"] and g["uri"] == "oss://test-bucket/test-object.jpg"
    assert g["figure_cluster_id"] == "Cluster-dbe72fec-b84c-4ab6-885b-3678e64****"
    assert g["cluster_state"] == "clustered"
    assert (g["left"], g["top"], g["width"], g["height"]) == (10, 30, 200, 300)
    assert g["pitch"] == pytest.approx(18.385589599609375) and g["yaw"] == pytest.approx(2.4945924282073975)
    assert g["face_quality"] == pytest.approx(0.960875928401947)
    assert (g["age"], g["age_sd"], g["emotion"], g["mouth"], g["glasses"]) == (29.0, 5.0, "happiness", "close", "none")
    # Boundary.Polygon is not modelled: kept, nested as in IMM
    assert g["extra"] == {"Boundary": {"Polygon": [{"X": 10, "Y": 10}]}}


def test_query_figure_clusters_response():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # TotalCount 2 matches: no warning
        clusters = load_clusters(QUERY_CLUSTERS)
        figures = load_figures(QUERY_CLUSTERS)
    assert clusters["cluster_id"].tolist() == [
        "Cluster-7bdbcedb-bd79-42e7-a1e2-b29a48532bd6",
        "Cluster-856be781-bf5a-46d7-8494-8d7c44f5e282",
    ]
    assert clusters["face_count"].tolist() == [16, 5]
    assert clusters["average_age"].tolist() == pytest.approx([27.125, 24.200000762939453])
    assert clusters["cover_uri"].tolist() == ["oss://bucket1/photos/2.jpg", "oss://bucket1/photos/11.jpg"]
    assert clusters["update_time"].iloc[0] == pd.Timestamp("2022-09-19T09:08:59.374781532Z")
    # cover faces carry no FigureClusterId in this example: unavailable
    assert figures["figure_id"].tolist() == ["d7365ab8-1378-4bec-83cb-eccad8d11e0b", "f58bbdce-f3d1-4674-be6b-43d4b47c08e1"]
    assert figures["cluster_state"].tolist() == ["unavailable", "unavailable"]
    assert figures["figure_cluster_id"].isna().all()


def test_simple_query_response():
    files = load_files(SIMPLE_QUERY)
    figures = load_figures(SIMPLE_QUERY)
    f = files.iloc[0]
    assert (f["uri"], f["filename"], f["media_type"], f["content_type"], f["size"]) == (
        "oss://bucket1/1.jpg", "3.jpg", "image", "image/jpeg", 187674
    )
    assert f["produce_time"] == pd.Timestamp("2014-02-20T16:03:36Z")  # "2014-02-21T00:03:36+08:00"
    assert f["file_modified_time"] == pd.Timestamp("2022-07-12T07:56:41Z")
    assert pd.isna(f["figure_count"])  # not in the response: not invented
    assert f["extra"]["ImageScore"] == {"OverallQualityScore": 0.7490000128746033}
    assert len(figures) == 1
    g = figures.iloc[0]
    assert g["figure_cluster_id"] == "Cluster-7bdbcedb-bd79-42e7-a1e2-b29a48532bd6"
    assert g["produce_time"] == f["produce_time"]
    assert g["face_quality"] == 1.0 and g["pitch"] == pytest.approx(-0.8999999761581421)
    assert pd.isna(g["width"]) and pd.isna(g["age"])  # fields absent from this record are missing, not zero


@pytest.mark.parametrize("kind", ["clusters", "files", "figures"])
@pytest.mark.parametrize("path", [GET_CLUSTER, QUERY_CLUSTERS, SIMPLE_QUERY], ids=lambda p: p.stem)
def test_columns_and_dtypes_follow_the_schema(kind, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IMMLoadWarning)
        frame = LOADERS[kind](path)
    assert list(frame.columns) == [c for c, _, _ in schema.SPECS[kind]]
    assert _dtypes(frame) == _dtypes(schema.empty_frame(kind))


# --------------------------------------------------------------------------- sources


@pytest.fixture(scope="module")
def two_pages() -> list[dict]:
    return pages(2, 3)


@pytest.fixture(scope="module")
def reference(two_pages) -> pd.DataFrame:
    return load_figures(two_pages)


def _sources(tmp: Path, docs: list[dict]):
    text = [json.dumps(d) for d in docs]
    lines = "\n".join(text) + "\n"
    pages_dir = tmp / "pages"
    pages_dir.mkdir()
    (pages_dir / "a.json").write_text(text[0])
    (pages_dir / "b.json").write_text(text[1])
    (pages_dir / "ignored.txt").write_text("not json")
    return {
        "jsonl": _write_jsonl(tmp / "p.jsonl", docs),
        "ndjson": _write_jsonl(tmp / "p.ndjson", docs),
        "jsonl.gz": _write_jsonl(tmp / "p.jsonl.gz", docs),
        "json list": (tmp / "list.json", (tmp / "list.json").write_text(json.dumps(docs)))[0],
        "json.gz": (tmp / "l.json.gz", (tmp / "l.json.gz").write_bytes(gzip.compress(json.dumps(docs).encode())))[0],
        "directory": pages_dir,
        "str path": str(tmp / "p.jsonl"),
        "glob": str(pages_dir / "[ab].json"),
        "list of dicts": docs,
        "list of paths": [pages_dir / "a.json", str(pages_dir / "b.json")],
        "JSON string": json.dumps(docs),
        "JSON lines string": lines,
        "bytes": lines.encode(),
        "binary file": io.BytesIO(lines.encode()),
        "text file": io.StringIO(json.dumps(docs)),
        "gzip file object": io.BytesIO(gzip.compress(lines.encode())),
    }


SOURCE_FORMS = [
    "jsonl", "ndjson", "jsonl.gz", "json list", "json.gz", "directory", "str path", "glob",
    "list of dicts", "list of paths", "JSON string", "JSON lines string", "bytes", "binary file", "text file",
    "gzip file object",
]


@pytest.mark.parametrize("form", SOURCE_FORMS)
def test_every_source_form_gives_the_same_frame(tmp_path, two_pages, reference, form):
    source = _sources(tmp_path, two_pages)[form]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = load_figures(source)
    pd.testing.assert_frame_equal(frame, reference)
    assert len(frame) == sum(len(f["Figures"]) for p in two_pages for f in p["Files"])


def test_directory_is_read_in_sorted_order_and_single_dict(tmp_path, two_pages):
    (tmp_path / "b.json").write_text(json.dumps(two_pages[1]))
    (tmp_path / "a.json").write_text(json.dumps(two_pages[0]))
    files = load_files(tmp_path)
    expected = [f["ObjectId"] for p in two_pages for f in p["Files"]]
    assert files["file_id"].tolist() == expected
    assert load_files(two_pages[0])["file_id"].tolist() == expected[:3]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_figures(tmp_path / "nope.json")
    with pytest.raises(TypeError, match="source must be"):
        load_figures(42)
    with pytest.raises(ValueError, match="errors must be one of"):
        load_figures({}, errors="ignore")


def test_fast_jsonl_path_agrees_with_the_general_loader(tmp_path):
    docs = pages(3, 5)
    odd = docs[1]["Files"][2]["Figures"][0]
    odd["NewField"] = {"Score": 3, "Tags": ["a", "b"]}
    odd["Boundary"]["Polygon"] = [{"X": 1, "Y": 2}]
    docs[2]["Files"][0]["Figures"][0]["HeadPose"] = None
    docs[2]["Files"][1]["Figures"] = []
    del docs[2]["Files"][3]["ProduceTime"]
    path = _write_jsonl(tmp_path / "x.jsonl", docs)
    assert read_figures(path) is not None  # the pyarrow fast path reads this file
    fast = load_figures(path)
    general = load_figures(json.dumps(docs))
    pd.testing.assert_frame_equal(fast, general)
    row = fast[fast["figure_id"] == odd["FigureId"]].iloc[0]
    assert row["extra"] == {"NewField": {"Score": 3, "Tags": ["a", "b"]}, "Boundary": {"Polygon": [{"X": 1, "Y": 2}]}}
    assert fast["extra"].isna().sum() == len(fast) - 1


# --------------------------------------------------------------------------- response shapes

COVER = file(7, [face(70)])


@pytest.mark.parametrize(
    ("doc", "kind", "n"),
    [
        (query_figure_clusters([cluster(1), cluster(2)], TotalCount=2), "clusters", 2),
        ({"FigureClusters": [cluster(1), cluster(2), cluster(3)], "RequestId": "x"}, "clusters", 3),  # BatchGet
        ({"FigureCluster": cluster(1), "RequestId": "x"}, "clusters", 1),  # GetFigureCluster
        (cluster(1), "clusters", 1),  # bare FigureCluster
        ({"ObjectId": "Cluster-9", "FaceCount": 3}, "clusters", 1),  # bare, no ObjectType
        ({"headers": {}, "statusCode": 200, "body": query_figure_clusters([cluster(1)])}, "clusters", 1),  # SDK to_map()
        (simple_query([file(1, [face(1)]), file(2, [])]), "files", 2),
        ({"Files": [file(1, [face(1)])], "RequestId": "x"}, "files", 1),  # BatchGetFileMeta
        ({"File": file(1, [face(1)]), "RequestId": "x"}, "files", 1),  # GetFileMeta
        (file(1, [face(1)]), "files", 1),  # bare File
        ({"URI": "oss://b/x.jpg", "Figures": [face(1)]}, "files", 1),  # bare, no ObjectType
    ],
)
def test_response_shapes(doc, kind, n):
    if kind == "clusters":
        assert len(load_clusters(doc)) == n
    else:
        assert len(load_files(doc)) == n
        assert len(load_figures(doc)) == _count_faces(doc)
        with pytest.warns(IMMLoadWarning, match="only file responses"):
            assert load_clusters(doc).empty


def test_cover_files_of_cluster_pages_are_loaded():
    doc = query_figure_clusters([cluster(1, COVER), cluster(2, file(8, [face(80), face(81)])), cluster(3)])
    assert load_files(doc)["file_id"].tolist() == ["file-0007", "file-0008"]
    figures = load_figures(doc)
    assert figures["figure_id"].tolist() == ["fig-70", "fig-80", "fig-81"]
    assert figures["file_id"].tolist() == ["file-0007", "file-0008", "file-0008"]


def test_file_response_wins_over_a_cluster_cover():
    cover = file(7, [face(70, cluster=None)])  # covers often lack FigureClusterId
    listed = file(7, [face(70, cluster="Cluster-0001")])
    for docs in ([query_figure_clusters([cluster(1, cover)]), simple_query([listed])],
                 [simple_query([listed]), query_figure_clusters([cluster(1, cover)])]):
        with pytest.warns(IMMLoadWarning, match="dropped 1 duplicate faces"):
            figures = load_figures(docs)
        assert figures["figure_cluster_id"].tolist() == ["Cluster-0001"]
        assert figures.attrs["duplicates_dropped"] == 1


# --------------------------------------------------------------------------- columns


def test_reserved_cluster_ids_and_cluster_state():
    doc = simple_query([file(1, [face(1, CLUSTER_A), face(2, schema.CLUSTER_INDEPENDENT),
                                 face(3, schema.CLUSTER_UNAVAILABLE), face(4, None)])])
    figures = load_figures(doc)
    assert figures["figure_cluster_id"].tolist()[:3] == [CLUSTER_A, schema.CLUSTER_INDEPENDENT, schema.CLUSTER_UNAVAILABLE]
    assert figures["figure_cluster_id"].isna().tolist() == [False, False, False, True]
    assert figures["cluster_state"].tolist() == ["clustered", "independent", "unavailable", "unavailable"]
    assert list(figures["cluster_state"].cat.categories) == list(schema.CLUSTER_STATES)


def test_unknown_fields_are_kept_in_extra():
    c = cluster(1, Mystery=[1, 2], Nothing=None)
    f = file(1, [face(1, Smile=0.9, HeadPose={"Pitch": 1.0, "Tilt": 2.0})], Labels=[{"LabelName": "chair"}])
    assert load_clusters(c)["extra"].iloc[0] == {"Mystery": [1, 2]}  # null members carry nothing: left out
    files = load_files(f)
    assert files["extra"].iloc[0] == {"Labels": [{"LabelName": "chair"}]}
    assert files["object_type"].iloc[0] == "file"  # a modelled field, not an extra
    g = load_figures(f).iloc[0]
    assert g["extra"] == {"Smile": 0.9, "HeadPose": {"Tilt": 2.0}}
    assert g["pitch"] == 1.0 and np.isnan(g["roll"])


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2022-01-14T10:10:52.83948013+08:00", "2022-01-14T02:10:52.839480130Z"),
        ("2021-06-29T14:50:13.011643661+08:00", "2021-06-29T06:50:13.011643661Z"),
        ("2014-02-21T00:03:36+08:00", "2014-02-20T16:03:36Z"),
        ("2022-07-12T15:56:41Z", "2022-07-12T15:56:41Z"),
        ("2022-07-12T15:56:41.5-05:30", "2022-07-12T21:26:41.5Z"),
    ],
)
def test_times_keep_offsets_and_nanoseconds(tmp_path, text, utc):
    doc = simple_query([file(1, [face(1)], ProduceTime=text)])
    expected = pd.Timestamp(utc)
    assert load_files(doc)["produce_time"].iloc[0] == expected
    assert load_figures(doc)["produce_time"].iloc[0] == expected
    fast = load_figures(_write_jsonl(tmp_path / "t.jsonl", [doc]))  # pyarrow fast path
    assert fast["produce_time"].iloc[0] == expected
    assert str(fast["produce_time"].dtype) == "datetime64[ns, UTC]"


# --------------------------------------------------------------------------- pages, duplicates, totals, empty


def test_pages_are_concatenated_and_duplicates_reported(tmp_path):
    docs = pages(3, 4)
    unique = load_figures(docs)
    again = [*docs, docs[1]]  # a page fetched twice
    with pytest.warns(IMMLoadWarning, match=r"dropped \d+ duplicate faces"):
        figures = load_figures(again)
    pd.testing.assert_frame_equal(figures, unique, check_like=False)
    n_dup = sum(len(f["Figures"]) for f in docs[1]["Files"])
    assert figures.attrs["duplicates_dropped"] == n_dup
    with pytest.warns(IMMLoadWarning, match="dropped 4 duplicate files"):
        assert load_files(again).attrs["duplicates_dropped"] == 4
    with pytest.warns(IMMLoadWarning, match=r"dropped \d+ duplicate faces"):
        fast = load_figures(_write_jsonl(tmp_path / "dup.jsonl", again))
    pd.testing.assert_frame_equal(fast, unique)
    with pytest.warns(IMMLoadWarning, match="dropped 1 duplicate clusters"):
        clusters = load_clusters([query_figure_clusters([cluster(1), cluster(2)]), query_figure_clusters([cluster(2)])])
    assert clusters["cluster_id"].tolist() == ["Cluster-0001", "Cluster-0002"]
    assert clusters.attrs["duplicates_dropped"] == 1
    assert unique.attrs["duplicates_dropped"] == 0


def test_total_count_disagreeing_with_rows_warns(tmp_path):
    good = [query_figure_clusters([cluster(1)], TotalCount=2), query_figure_clusters([cluster(2)], TotalCount=2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_clusters(good)) == 2
    short = [query_figure_clusters([cluster(1)], TotalCount=3), query_figure_clusters([cluster(2)], TotalCount=3)]
    with pytest.warns(IMMLoadWarning, match="TotalCount says 3 clusters but 2 were loaded"):
        load_clusters(short)
    files_pages = [simple_query([file(1, [face(1)])], TotalHits=5)]
    with pytest.warns(IMMLoadWarning, match="TotalHits says 5 files but 1 were loaded"):
        load_figures(files_pages)
    with pytest.warns(IMMLoadWarning, match="TotalHits says 5 files but 1 were loaded"):
        load_figures(_write_jsonl(tmp_path / "t.jsonl", files_pages))


@pytest.mark.parametrize("kind", ["clusters", "files", "figures"])
@pytest.mark.parametrize("form", ["empty dir", "empty list", "empty page", "empty cluster page", "blank jsonl"])
def test_empty_input_gives_every_column_and_dtype(tmp_path, kind, form):
    (tmp_path / "blank.jsonl").write_text("\n\n")
    source = {
        "empty dir": tmp_path / "nothing",
        "empty list": [],
        "empty page": simple_query([]),
        "empty cluster page": query_figure_clusters([], TotalCount=0),
        "blank jsonl": tmp_path / "blank.jsonl",
    }[form]
    if form == "empty dir":
        source.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IMMLoadWarning)
        frame = LOADERS[kind](source)
    assert frame.empty
    pd.testing.assert_frame_equal(frame, schema.empty_frame(kind))


# --------------------------------------------------------------------------- bad input


def test_unparseable_json_names_file_and_line(tmp_path):
    docs = pages(3, 2)
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(docs[0]) + "\n" + json.dumps(docs[1])[:-7] + "\n" + json.dumps(docs[2]) + "\n")
    with pytest.raises(IMMFormatError, match=r"broken\.jsonl, line 2: invalid JSON") as info:
        load_figures(path)
    assert (info.value.source, info.value.record, info.value.field) == (str(path), "line 2", None)
    pretty = tmp_path / "broken.json"
    pretty.write_text(json.dumps(docs[0], indent=2).replace('"Files"', '"Files" oops', 1))
    with pytest.raises(IMMFormatError, match=r"broken\.json, line 3: invalid JSON"):
        load_files(pretty)
    collected = load_figures(path, errors="collect")
    assert len(collected) == sum(len(f["Figures"]) for d in (docs[0], docs[2]) for f in d["Files"])
    assert [(e["record"], e["field"]) for e in collected.attrs["errors"]] == [("line 2", None)]


def test_unrecognised_document_lists_the_expected_shapes(tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"TaskId": "CreateFigureClusteringTask-ba57", "RequestId": "42F4", "EventId": "140"}))
    with pytest.raises(IMMFormatError) as info:
        load_clusters(path)
    message = str(info.value)
    assert str(path) in message and "EventId, RequestId, TaskId" in message
    for shape in ("QueryFigureClusters", "GetFigureCluster", "BatchGetFigureCluster", "SimpleQuery", "GetFileMeta",
                  "BatchGetFileMeta", "bare File", "bare FigureCluster"):
        assert shape in message
    with pytest.raises(IMMFormatError, match=r"<list>, item 1: not an IMM response \(a JSON int\)"):
        load_figures([simple_query([file(1, [face(1)])]), 5])


def test_wrong_field_type_names_file_record_and_field(tmp_path):
    docs = pages(2, 3)
    docs[1]["Files"][2]["Figures"][1]["FaceQuality"] = "high"
    path = _write_jsonl(tmp_path / "export.jsonl", docs)
    assert read_figures(path) is None  # the fast path refuses; the general loader names the culprit
    with pytest.raises(IMMFormatError) as info:
        load_figures(path)
    err = info.value
    assert (err.source, err.record, err.field) == (str(path), "line 2, Files[2].Figures[1]", "FaceQuality")
    assert "expected a number, got str 'high'" in str(err)
    assert isinstance(err, ValueError)
    figures = load_figures(path, errors="collect")
    assert len(figures) == len(load_figures(pages(2, 3))) - 1
    assert "fig-" in figures["figure_id"].iloc[0]
    assert figures.attrs["errors"] == [
        {"source": str(path), "record": "line 2, Files[2].Figures[1]", "field": "FaceQuality",
         "reason": "expected a number, got str 'high'"}
    ]


@pytest.mark.parametrize(
    ("loader", "doc", "record", "field"),
    [
        (load_clusters, query_figure_clusters([cluster(1), cluster(2, FaceCount="many")]), "document, FigureClusters[1]", "FaceCount"),
        (load_clusters, {"FigureCluster": cluster(1, CreateTime="yesterday")}, "document, FigureCluster", "CreateTime"),
        (load_files, simple_query([file(1, []), file(2, [], Size=[1])]), "document, Files[1]", "Size"),
        (load_files, simple_query([file(1, [], URI=7)]), "document, Files[0]", "URI"),
        (load_figures, simple_query([file(1, [face(1, Boundary={"Left": "x"})])]), "document, Files[0].Figures[0]", "Boundary.Left"),
        (load_figures, simple_query([file(1, [face(1, HeadPose=[1, 2, 3])])]), "document, Files[0].Figures[0]", "HeadPose"),
        (load_figures, simple_query([file(1, [face(1, Age=True)])]), "document, Files[0].Figures[0]", "Age"),
        (load_figures, simple_query([file(1, [face(1)], ProduceTime="soon")]), "document, Files[0]", "ProduceTime"),
        (load_figures, simple_query([file(1, [face(1)]), file(2, "none")]), "document, Files[1]", "Figures"),
        (load_figures, simple_query([file(1, [face(1), "face"])]), "document, Files[0].Figures[1]", None),
        (load_figures, query_figure_clusters([cluster(1, file(3, [face(1, Gender=1)]))]), "document, FigureClusters[0].Cover.Figures[0]", "Gender"),
        (load_clusters, {"FigureClusters": {"a": 1}}, "document", "FigureClusters"),
        (load_clusters, query_figure_clusters([cluster(1)], TotalCount="2"), "document", "TotalCount"),
        (load_files, simple_query([file(1, [])], TotalHits=1.5), "document", "TotalHits"),
    ],
)
def test_bad_fields_are_named(loader, doc, record, field):
    with pytest.raises(IMMFormatError) as info:
        loader(json.dumps(doc))
    assert (info.value.source, info.value.record, info.value.field) == ("<string>", record, field)
    collected = loader(json.dumps(doc), errors="collect")
    assert [(e["record"], e["field"]) for e in collected.attrs["errors"]] == [(record, field)]


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.json.gz"])
def test_truncated_gzip(tmp_path, name):
    docs = pages(40, 5)
    payload = ("\n".join(json.dumps(d) for d in docs) + "\n") if "jsonl" in name else json.dumps(docs)
    data = gzip.compress(payload.encode())
    path = tmp_path / name
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(IMMFormatError, match=r"cut\.json.*truncated or corrupt gzip") as info:
        load_figures(path)
    assert info.value.source == str(path)
    collected = load_figures(path, errors="collect")
    assert len(collected.attrs["errors"]) == 1 and "truncated" in collected.attrs["errors"][0]["reason"]
    if "jsonl" in name:  # the lines before the cut are kept
        assert 0 < len(collected) < sum(len(f["Figures"]) for d in docs for f in d["Files"])
        assert collected.attrs["errors"][0]["record"].startswith("line ")


def test_collect_goes_on_past_bad_files(tmp_path):
    good = pages(1, 3)
    (tmp_path / "1_good.json").write_text(json.dumps(good[0]))
    (tmp_path / "2_bad.json").write_text("{")
    (tmp_path / "3_other.json").write_text(json.dumps({"Hello": "world"}))
    (tmp_path / "4_good.json").write_text(json.dumps(pages(1, 3, start=10)[0]))
    figures = load_figures(tmp_path, errors="collect")
    assert len(figures) == len(load_figures(good)) + len(load_figures(pages(1, 3, start=10)))
    errs = pd.DataFrame(figures.attrs["errors"])
    assert errs["source"].map(lambda s: Path(s).name).tolist() == ["2_bad.json", "3_other.json"]
    assert list(errs.columns) == ["source", "record", "field", "reason"]


def test_directory_without_json_files_warns_about_its_folders(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "page.json").write_text(json.dumps(pages(1, 2)[0]))
    with pytest.warns(IMMLoadWarning, match=r"not read recursively\); its folders: files"):
        assert load_figures(tmp_path).empty
    assert len(load_figures(tmp_path / "files")) == len(load_figures(pages(1, 2)))


def test_files_and_figures_in_one_read_equal_the_two_loaders(tmp_path, sample_dir):
    """``load_files_and_figures`` = ``load_files`` + ``load_figures``: JSON pages, a JSON Lines export
    (the figures' fast path), duplicates, warnings and collected errors alike."""
    from imm_analysis import load_files_and_figures

    docs = pages(3, 5)
    _write_jsonl(tmp_path / "a.jsonl", docs[:2])
    (tmp_path / "b.json").write_text(json.dumps(docs[2]))
    (tmp_path / "c.json").write_text(json.dumps(docs[2]))  # every file and face again: dropped as duplicates
    (tmp_path / "d.json").write_text("{")
    for source in (sample_dir / "files", tmp_path):
        with warnings.catch_warnings(record=True) as both_warned:
            warnings.simplefilter("always")
            files, figures = load_files_and_figures(source, errors="collect")
        with warnings.catch_warnings(record=True) as apart_warned:
            warnings.simplefilter("always")
            want_files, want_figures = load_files(source, errors="collect"), load_figures(source, errors="collect")
        pd.testing.assert_frame_equal(files, want_files)
        pd.testing.assert_frame_equal(figures, want_figures)
        assert files.attrs == want_files.attrs and figures.attrs == want_figures.attrs
        assert sorted(str(w.message) for w in both_warned) == sorted(str(w.message) for w in apart_warned)
    assert figures.attrs["duplicates_dropped"] > 0 and files.attrs["duplicates_dropped"] > 0
    assert [Path(e["source"]).name for e in figures.attrs["errors"]] == ["d.json"]
    with pytest.raises(IMMFormatError, match="d.json"):
        load_files_and_figures(tmp_path)
