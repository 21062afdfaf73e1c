"""Fuzzing the IMM JSON loaders (hypothesis, derandomised, bounded) on both read paths.

Every loader (load_clusters, load_files, load_figures, load_files_and_figures) gets documents with
random field values (numbers far beyond int64, deep nesting, odd unicode, nulls, wrong types),
then random damage to their bytes (truncation, a BOM, invalid UTF-8, a byte flip). The contract:

* ``errors="raise"`` returns a frame or raises :class:`IMMFormatError`, nothing else (no
  RecursionError, OverflowError, crash or hang);
* ``errors="collect"`` always returns frames, the bad records in ``attrs["errors"]``;
* the ``.jsonl`` pyarrow fast path and the general path agree: the same frame, or the same errors.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from imm_analysis import load_clusters, load_figures, load_files  # noqa: E402
from imm_analysis.io import limits  # noqa: E402
from imm_analysis.io.errors import IMMFormatError, IMMLoadWarning  # noqa: E402
from imm_analysis.io.fast_jsonl import read_figures  # noqa: E402
from imm_analysis.io.imm_json import load_files_and_figures  # noqa: E402

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LOADERS = {
    "clusters": load_clusters,
    "files": load_files,
    "figures": load_figures,
    "both": load_files_and_figures,
}

# ----------------------------------------------------------------- values and documents

_huge = st.sampled_from([2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30, 1e300, -1e300, 1e17])
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    _huge,
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=8),
)


@st.composite
def _nested(draw) -> object:
    """A list or object nested 1 to 150 deep around a scalar (the limit is 64)."""
    depth = draw(st.integers(1, 150))
    value = draw(_scalar)
    for _ in range(depth):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


_value = st.one_of(_scalar, _scalar, _nested(), st.lists(_scalar, max_size=3), st.dictionaries(st.text(max_size=4), _scalar, max_size=3))
_int_field = st.one_of(st.integers(0, 10_000), st.none(), _huge, st.text(max_size=3))
_float_field = st.one_of(st.floats(0, 1), st.none(), _huge, st.text(max_size=3))


@st.composite
def _face(draw, i: int) -> dict:
    rec: dict = {"FigureId": f"fig-{i}", "FaceQuality": draw(_float_field)}
    if draw(st.booleans()):
        rec["Boundary"] = {
            "Left": draw(_int_field),
            "Top": draw(st.integers(0, 500)),
            "Width": draw(_int_field),
            "Height": 100,
        }
        if draw(st.booleans()):
            rec["Boundary"]["Extra"] = draw(st.one_of(st.none(), st.integers(0, 9)))
    if draw(st.booleans()):
        rec[draw(st.sampled_from(["Foo", "Bar", "FaceQuality", "Age", "HeadPose"]))] = draw(_value)
    return rec


@st.composite
def _page(draw, start: int = 0) -> dict:
    files = []
    for j in range(draw(st.integers(0, 3))):
        faces = [draw(_face(start * 10 + j * 3 + k)) for k in range(draw(st.integers(0, 3)))]
        rec: dict = {"ObjectId": f"f{start}-{j}", "URI": f"oss://b/{start}-{j}.jpg", "Figures": faces}
        if draw(st.booleans()):
            rec["Size"] = draw(_int_field)
        files.append(rec)
    page: dict = {"Files": files, "NextToken": ""}
    if draw(st.booleans()):
        page = {"FigureClusters": [{"ObjectId": f"Cluster-{start}", "FaceCount": draw(_int_field), "Cover": files[0] if files else None}]}
    return page


_pages = st.integers(1, 3).flatmap(lambda n: st.tuples(*[_page(k) for k in range(n)]))

# well-typed pages (what the fast path takes), with unknown fields of one JSON type per draw
_unknown = st.sampled_from(
    [
        st.integers(-(2**40), 2**40),
        st.floats(-1e6, 1e6),
        st.text(max_size=6),
        st.lists(st.integers(0, 9), max_size=3),
        st.fixed_dictionaries({"a": st.integers(0, 9)}, optional={"b": st.none() | st.text(max_size=3)}),
    ]
)


@st.composite
def _clean_pages(draw) -> list[dict]:
    unknown = draw(_unknown)
    ints = st.none() | st.integers(0, 2**53 - 1)  # from 2**53 on, ints take the general path
    out = []
    for p in range(draw(st.integers(1, 3))):
        files = []
        for j in range(draw(st.integers(0, 3))):
            faces = []
            for k in range(draw(st.integers(0, 3))):
                rec: dict = {"FigureId": f"fig-{p}-{j}-{k}", "FaceQuality": draw(st.none() | st.floats(0, 1))}
                rec["Boundary"] = {"Left": draw(ints), "Width": draw(ints), "Extra": draw(st.none() | st.integers(0, 9))}
                if draw(st.booleans()):
                    rec["Foo"] = draw(unknown)
                faces.append(rec)
            files.append({"ObjectId": f"f{p}-{j}", "URI": f"oss://b/{p}/{j}.jpg", "Figures": faces})
        out.append({"Files": files, "NextToken": "", "TotalHits": draw(st.integers(0, 5))})
    return out


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def _damaged(draw) -> bytes:
    """JSON Lines bytes of random pages, maybe damaged."""
    data = b"".join(_dumps(p) + b"\n" for p in draw(_pages))
    damage = draw(st.sampled_from(["none", "none", "truncate", "bom", "bad utf-8", "flip", "duplicate key"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "bad utf-8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff\xc3" + data[at:]
    elif damage == "flip":
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        data = data[:at] + bytes([draw(st.sampled_from(b'[]{}",:0e\\'))]) + data[at + 1 :]
    elif damage == "duplicate key" and data.startswith(b'{"Files": '):
        data = b'{"Files": [], ' + data[1:]
    return data


# ----------------------------------------------------------------- checks


def _run(loader, source, errors: str):
    """The loader's outcome: ("ok", frames) or ("error", IMMFormatError). Anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IMMLoadWarning)
        try:
            out = loader(source, errors=errors)
        except IMMFormatError as exc:
            assert errors == "raise", f"collect mode raised {exc!r}"
            return "error", exc
    return "ok", out if isinstance(out, tuple) else (out,)


def _errors(frames) -> list[tuple]:
    """Errors without the record label (``document`` on one path is ``line 1`` on the other)."""
    return [(e["field"], e["reason"]) for e in frames[0].attrs["errors"]]


def _same(a, b) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert type(a[1]) is type(b[1]) and (a[1].field, a[1].reason) == (b[1].field, b[1].reason)
        return
    for x, y in zip(a[1], b[1], strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert _errors(a[1]) == _errors(b[1])


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@FUZZ
@given(data=_damaged(), name=st.sampled_from(sorted(LOADERS)))
def test_every_loader_returns_a_frame_or_an_imm_format_error(workdir, data, name):
    loader = LOADERS[name]
    for suffix in (".json", ".jsonl"):
        path = workdir / f"doc{suffix}"
        path.write_bytes(data)
        _run(loader, path, "raise")
        outcome, frames = _run(loader, path, "collect")
        assert outcome == "ok"
    _run(loader, data, "raise")  # bytes source


@FUZZ
@given(data=_damaged())
def test_jsonl_fast_path_and_general_path_agree(workdir, data):
    """The same ``.jsonl`` file by path (fast path when clean) and inside a list (general path only)."""
    path = workdir / "same.jsonl"
    path.write_bytes(data)
    for loader in (load_figures, load_files_and_figures):
        for errors in ("raise", "collect"):
            _same(_run(loader, path, errors), _run(loader, [path], errors))


@FUZZ
@given(pages=_clean_pages())
def test_fast_path_frames_equal_the_general_loader_of_the_parsed_documents(workdir, pages):
    """...and give the frame (extra included) that the general loader makes of the parsed pages."""
    path = workdir / "clean.jsonl"
    path.write_bytes(b"".join(_dumps(p) + b"\n" for p in pages))
    assert read_figures(path) is not None  # well-typed pages take the fast path...
    _same(_run(load_figures, path, "collect"), _run(load_figures, list(pages), "collect"))


@settings(derandomize=True, database=None, deadline=None, max_examples=25)
@given(depth=st.integers(limits.MAX_DEPTH - 8, limits.MAX_DEPTH + 8), wrap=st.sampled_from("[{"))
def test_the_depth_limit_is_the_same_on_both_paths(workdir, depth, wrap):
    inner = "1"
    for _ in range(depth - 5):  # the page around Foo is 5 deep
        inner = f"[{inner}]" if wrap == "[" else f'{{"k":{inner}}}'
    text = '{"Files":[{"ObjectId":"f","URI":"u","Figures":[{"FigureId":"a","Foo":' + inner + "}]}]}"
    path = workdir / "depth.jsonl"
    path.write_text(text + "\n")
    fast = read_figures(path)
    outcome = _run(load_figures, path, "collect")
    assert (fast is not None) == (depth <= limits.MAX_DEPTH)
    assert len(outcome[1][0]) == (1 if depth <= limits.MAX_DEPTH else 0)
    _same(outcome, _run(load_figures, text, "collect"))


_json = st.recursive(
    st.none() | st.integers() | st.text(alphabet=st.sampled_from('ab"\\[]{}\n\t\x01é'), max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='k"\\]{', max_size=3), inner, max_size=3),
    max_leaves=20,
)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(values=st.lists(_json, min_size=1, max_size=3), ascii_only=st.booleans())
def test_the_byte_scanner_measures_the_parsed_depth(values, ascii_only):
    """The fast path's byte-level depth equals the depth of the parsed values (quotes, escapes, brackets in strings)."""
    text = b"\n".join(json.dumps(v, ensure_ascii=ascii_only).encode() for v in values)
    assert limits.byte_depth(text) == max(map(_depth, values))
    broken = text.replace(b'"', b"", 1)  # the first quote gone: a line with an unterminated string
    if broken != text:
        assert limits.byte_depth(broken) > limits.MAX_DEPTH  # never a number that could pass the limit
