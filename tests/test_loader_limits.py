"""Hostile IMM JSON (issue 11): deep nesting, huge integers, encodings, silent empties, special files.

Each case failed on the code before the fix (a crash, a wrong number, a silent empty frame or a
hang); the limits are those of :mod:`imm_analysis.io.limits`.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
from imm_pages import face, file, simple_query

from imm_analysis import load_clusters, load_figures, load_files
from imm_analysis.io import limits
from imm_analysis.io.errors import IMMFormatError
from imm_analysis.io.fast_jsonl import read_figures
from imm_analysis.io.imm_json import load_files_and_figures

DEEP = '{"Files":[{"ObjectId":"f1","URI":"u","Figures":[{"FigureId":"a","Foo":%s}]}]}'


def _deep(depth: int, inner: str = "") -> str:
    return DEEP % ("[" * depth + inner + "]" * depth)


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# --------------------------------------------------------------------------- 1-2: nesting


@pytest.mark.parametrize("depth", [70, 496, 996, 1010, 12_000, 20_000])
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_deep_nesting_is_a_named_error_on_every_path(tmp_path, depth, suffix):
    path = _write(tmp_path / f"deep{suffix}", _deep(depth) + "\n")
    assert read_figures(path) is None  # the fast path never sees it
    for loader in (load_files, load_figures):
        with pytest.raises(IMMFormatError, match="nested deeper than 64 levels") as info:
            loader(path)
        assert info.value.source == str(path)
        frame = loader(path, errors="collect")
        assert len(frame) == 0
        [err] = frame.attrs["errors"]
        assert err["source"] == str(path) and err["record"] in ("line 1", "document")
        if depth < 1000:  # within the parser's own depth: the field is named
            assert err["field"].startswith("Files[0].Figures[0].Foo")


def test_deep_nesting_as_a_string_and_python_objects_collects_without_recursion_error():
    text = _deep(496)
    assert load_figures(text, errors="collect").attrs["errors"][0]["field"].startswith("Files[0].Figures[0].Foo")
    bare: list = []
    for _ in range(996):  # a bare nested list (records._pages recursed into it)
        bare = [bare]
    assert "nested deeper" in load_clusters(bare, errors="collect").attrs["errors"][0]["reason"]
    quality: list = []
    for _ in range(1010):  # FaceQuality's repr while building the error recursed
        quality = [quality]
    doc = {"Files": [{"ObjectId": "f1", "URI": "u", "Figures": [{"FigureId": "a", "FaceQuality": quality}]}]}
    [err] = load_figures(doc, errors="collect").attrs["errors"]
    assert err["field"].startswith("Files[0].Figures[0].FaceQuality")


def test_depth_within_the_limit_still_loads_on_both_paths(tmp_path):
    inner = limits.MAX_DEPTH - 5  # the page itself is 5 deep around Foo: exactly at the limit
    path = _write(tmp_path / "ok.jsonl", _deep(inner, "1") + "\n")
    fast = read_figures(path)
    assert fast is not None and fast.n == 1
    assert limits.too_deep(json.loads(_deep(inner, "1"))) is None
    assert len(load_figures(path)) == 1 and len(load_figures(_deep(inner, "1"))) == 1


def test_line_and_document_size_limits(tmp_path, monkeypatch):
    doc = json.dumps(simple_query([file(0, [face(0)])]))
    monkeypatch.setattr(limits, "MAX_LINE_BYTES", len(doc) - 1)
    lines = _write(tmp_path / "big.jsonl", doc + "\n" + json.dumps(simple_query([file(1, [])])) + "\n")
    assert read_figures(lines) is None
    frame = load_figures(lines, errors="collect")
    assert frame.attrs["errors"][0]["record"] == "line 1" and "MAX_LINE_BYTES" in frame.attrs["errors"][0]["reason"]
    monkeypatch.setattr(limits, "MAX_DOCUMENT_BYTES", len(doc) - 1)
    for source in (_write(tmp_path / "big.json", doc), _write(tmp_path / "big.json.gz", gzip.compress(doc.encode())), doc):
        with pytest.raises(IMMFormatError, match="MAX_DOCUMENT_BYTES"):
            load_files(source)


# --------------------------------------------------------------------------- 3: integers


@pytest.mark.parametrize("value", ["1e300", "18446744073709551616", "9223372036854775808", "-1e19"])
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_integers_beyond_int64_are_errors_naming_the_field(tmp_path, value, suffix):
    text = '{"Files":[{"ObjectId":"f1","URI":"u","Size":%s,"Figures":[{"FigureId":"a","Boundary":{"Left":%s}}]}]}'
    path = _write(tmp_path / f"big{suffix}", text % (value, value) + "\n")
    with pytest.raises(IMMFormatError, match="out of the int64 range") as info:
        load_files(path)
    assert info.value.field == "Size"
    with pytest.raises(IMMFormatError, match="out of the int64 range") as info:
        load_figures(path)
    assert info.value.field == "Boundary.Left"


@pytest.mark.parametrize("value", [2**53 + 1, 2**63 - 1, -(2**63), -(2**53) - 3])
def test_integers_above_2_53_keep_their_precision_on_both_paths(tmp_path, value):
    text = '{"Files":[{"ObjectId":"f1","URI":"u","Size":%d,"Figures":[{"FigureId":"a","Boundary":{"Width":%d}}]}]}'
    doc = text % (value, value)
    assert int(load_files(doc)["size"].iloc[0]) == value
    path = _write(tmp_path / "p.jsonl", doc + "\n")
    assert int(load_figures(path)["width"].iloc[0]) == value
    assert int(load_figures(doc)["width"].iloc[0]) == value


# --------------------------------------------------------------------------- 4: encodings


def test_invalid_utf8_is_refused_by_json_and_jsonl_alike(tmp_path):
    raw = b'{"Files":[{"ObjectId":"f1","URI":"\xff\xfe","Figures":[{"FigureId":"a"}]}]}\n'
    for suffix in (".json", ".jsonl"):
        path = _write(tmp_path / f"bad{suffix}", raw)
        with pytest.raises(IMMFormatError, match="UTF-8"):
            load_figures(path)
        with pytest.raises(IMMFormatError, match="UTF-8"):
            load_files(path)


def test_a_byte_order_mark_is_accepted_on_both_paths(tmp_path):
    doc = json.dumps(simple_query([file(0, [face(0), face(1)])]))
    expected = load_figures(doc)
    for suffix in (".json", ".jsonl"):
        path = _write(tmp_path / f"bom{suffix}", b"\xef\xbb\xbf" + doc.encode() + b"\n")
        frame = load_figures(path)
        assert frame.equals(expected)
        assert len(load_files(path)) == 1


# --------------------------------------------------------------------------- 5: silent empty results


def test_a_glob_that_matches_nothing_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="matches no file"):
        load_files(str(tmp_path / "*.json"))


@pytest.mark.parametrize("text", ["", "  \n"])
def test_an_empty_json_file_or_string_is_an_error(tmp_path, text):
    path = _write(tmp_path / "empty.json", text)
    with pytest.raises(IMMFormatError, match="empty file"):
        load_files(path)
    assert load_figures(path, errors="collect").attrs["errors"][0]["source"] == str(path)
    with pytest.raises(IMMFormatError, match="empty document"):
        load_clusters(text)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_duplicate_files_keys_are_an_error_naming_the_key(tmp_path, suffix):
    one, two = (json.dumps([file(j, [face(j)])]) for j in (0, 1))
    path = _write(tmp_path / f"dup{suffix}", '{"Files": ' + one + ', "Files": ' + two + "}\n")
    assert read_figures(path) is None
    for loader in (load_files, load_figures):
        with pytest.raises(IMMFormatError, match="duplicate key") as info:
            loader(path)
        assert info.value.field == "Files"


def test_a_list_of_pages_in_one_document_is_not_a_duplicate():
    doc = json.dumps([simple_query([file(0, [face(0)])]), simple_query([file(1, [face(1)])])])
    assert len(load_files(doc)) == 2


def test_a_relative_path_starting_with_a_bracket_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = simple_query([file(0, [face(0)])])
    _write(tmp_path / "[2024] export.json", json.dumps(page))
    assert load_files("[2024] export.json")["file_id"].tolist() == [page["Files"][0]["ObjectId"]]
    assert len(load_files('[{"Files": []}]')) == 0  # JSON text when no such file exists


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    link = tmp_path / "link.jsonl"
    link.symlink_to(fifo)
    results: dict = {}

    def run() -> None:
        for name, path in (("fifo", fifo), ("link", link)):
            try:
                load_figures(path)
            except IMMFormatError as exc:
                results[name] = exc.reason
            results[f"{name}-collect"] = load_files(path, errors="collect").attrs["errors"]

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)  # a hang is a failure, not a stuck suite
    assert not worker.is_alive(), "loading a FIFO blocked"
    assert "not a regular file (FIFO)" in results["fifo"] and "not a regular file (FIFO)" in results["link"]
    assert results["fifo-collect"][0]["source"] == str(fifo)


# --------------------------------------------------------------------------- 10: pickling


def test_imm_format_error_survives_pickle_and_a_worker_process():
    err = IMMFormatError("a.json", "line 3, Files[2]", "Size", "expected a number")
    back = pickle.loads(pickle.dumps(err))
    assert (back.source, back.record, back.field, back.reason, str(back)) == (
        err.source, err.record, err.field, err.reason, str(err))
    bad = {"Files": [{"ObjectId": "f1", "URI": "u", "Size": "big"}]}
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        with pytest.raises(IMMFormatError) as info:
            pool.submit(load_files, bad).result(timeout=120)
    assert info.value.field == "Size" and info.value.record == "document, Files[0]"


# --------------------------------------------------------------------------- 11: Boundary sub-field


@pytest.mark.parametrize("boundary", [{"Left": 1, "Foo": None}, {"Foo": None}, {"Left": 1, "Foo": 2, "Bar": None}])
def test_a_null_unknown_boundary_subfield_is_the_same_on_both_paths(tmp_path, boundary):
    doc = {"Files": [{"ObjectId": "f1", "URI": "u", "Figures": [{"FigureId": "a", "Boundary": boundary}]}]}
    path = _write(tmp_path / "b.jsonl", json.dumps(doc) + "\n")
    assert read_figures(path) is not None
    fast = load_figures(path)["extra"].iloc[0]
    general = load_figures(doc)["extra"].iloc[0]
    assert fast == general
    unknown = {k: v for k, v in boundary.items() if k != "Left" and v is not None}
    assert general == ({"Boundary": unknown} if unknown else None)


def test_load_files_and_figures_reports_a_deep_file_once_per_frame(tmp_path):
    path = _write(tmp_path / "deep.jsonl", _deep(100) + "\n" + json.dumps(simple_query([file(1, [face(1)])])) + "\n")
    files, figures = load_files_and_figures(path, errors="collect")
    assert len(files) == 1 and len(figures) == 1
    assert [e["record"] for e in files.attrs["errors"]] == ["line 1"]


def _raise_imm_error(kind: str) -> None:
    """Raise one of imm's errors in a worker process."""
    from imm_analysis import imm

    if kind == "api":
        raise imm.ImmApiError("SimpleQuery", 3, "tok-2", "HTTP 503 ServiceUnavailable", status_code=503,
                              code="ServiceUnavailable", request_id="req-1", attempts=6)
    if kind == "response":
        raise imm.ImmResponseError("QueryFigureClusters", 2, "tok", "NextToken must be a string")
    raise imm.ImmCredentialsError("SimpleQuery", 1, "", "no usable Alibaba Cloud credentials")


def test_imm_fetch_errors_survive_pickle_and_a_worker_process():
    from imm_analysis import imm

    fields = ("operation", "page", "next_token", "reason", "status_code", "code", "request_id", "attempts")
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        for kind, cls in (("api", imm.ImmApiError), ("response", imm.ImmResponseError),
                          ("credentials", imm.ImmCredentialsError)):
            try:
                _raise_imm_error(kind)
            except imm.ImmFetchError as exc:
                local = exc
            with pytest.raises(cls) as info:
                pool.submit(_raise_imm_error, kind).result(timeout=120)
            for err in (info.value, pickle.loads(pickle.dumps(local))):
                assert type(err) is cls and str(err) == str(local)
                assert [getattr(err, f, None) for f in fields] == [getattr(local, f, None) for f in fields]
                assert err.as_dict() == local.as_dict()
    assert info.value.operation == "SimpleQuery"


def test_a_fifo_in_a_folder_or_glob_is_an_error_row_not_a_gap(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(simple_query([file(0, [face(0)])])))
    os.mkfifo(tmp_path / "b.json")
    results: dict = {}

    def run() -> None:
        results["dir"] = load_figures(tmp_path, errors="collect")
        results["glob"] = load_files(str(tmp_path / "*.json"), errors="collect")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "a FIFO in a folder blocked the load"
    for frame in results.values():
        assert len(frame) == 1
        assert [(e["source"], e["reason"]) for e in frame.attrs["errors"]] == [
            (str(tmp_path / "b.json"), "not a regular file (FIFO)")]


@pytest.mark.parametrize("loader", [load_figures, load_files_and_figures])
def test_an_error_in_a_jsonl_export_leaves_no_reading_thread(tmp_path, loader):
    """The thread that reads the next .jsonl file ahead ends with the call, also when the call raises
    (a kept traceback, as Jupyter keeps the last one, must not keep the thread and its file alive)."""
    (tmp_path / "a.jsonl").write_text("{not json\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(simple_query([file(1, [face(1)])])) + "\n")
    (tmp_path / "c.jsonl").write_text(json.dumps(simple_query([file(2, [face(2)])])) + "\n")
    with pytest.raises(IMMFormatError, match="a.jsonl") as info:
        loader(tmp_path)
    assert info.traceback  # the traceback (and the frames it holds) is still alive here
    assert not [t.name for t in threading.enumerate() if t.name.startswith("imm-jsonl-check")]
