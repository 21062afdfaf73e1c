"""The shared Parquet writer/reader: JSON columns, dtypes, legacy layouts, atomic replacement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from imm_analysis import schema
from imm_analysis.io.atomic import atomic_open
from imm_analysis.io.parquet import category_dtypes, read_frame, write_frame


def _mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "figure_id": pd.array(["a", "b", None, "d"], dtype="string"),
            "label": pd.Series(["x", "y", "x", None], dtype="string").astype("category"),
            "state": pd.Categorical(["clustered", "independent", "clustered", "unavailable"],
                                    categories=["clustered", "independent", "unavailable"]),
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "score": [0.5, np.nan, 1.25, -0.0],
            "when": pd.to_datetime(["2026-01-05T10:00:00.123456789Z", None, "2026-01-06T00:00:00Z", "2026-01-07T08:00:00Z"],
                                   utc=True, format="ISO8601").astype("datetime64[ns, UTC]"),
            "extra": pd.Series([{"Key": "v", "n": [1, 2.5, None], "deep": {"a": True}}, None, np.nan, {}], dtype=object),
        }
    )


@pytest.mark.parametrize("suffix", ["__json", ""])
def test_round_trip_keeps_values_and_dtypes(tmp_path, suffix):
    frame = _mixed_frame()
    path = write_frame(frame, tmp_path / "f.parquet", json_suffix=suffix)
    stored = pq.read_schema(path).names
    assert f"extra{suffix}" in stored and (suffix == "" or "extra" not in stored)
    back = read_frame(path)
    expected = frame.copy()
    expected["extra"] = pd.Series([frame["extra"][0], None, None, {}], dtype=object)  # NaN in a dict column -> None
    pd.testing.assert_frame_equal(back, expected)
    assert back["label"].cat.categories.dtype == frame["label"].cat.categories.dtype  # "string", not "str"
    assert str(back["when"].dtype) == "datetime64[ns, UTC]" and back["when"][0].nanosecond == 789
    assert list(back.columns) == list(frame.columns)  # the JSON column is back in its place


def test_schema_frames_round_trip_through_coerce(tmp_path):
    from imm_analysis.synth import make_dataset

    figures = make_dataset(6, seed=2).figures
    figures = figures.assign(extra=[{"Raw": i, "arr": np.arange(2) + i} if i % 3 else None for i in range(len(figures))])
    back = read_frame(write_frame(figures, tmp_path / "figs.parquet"), kind="figures")
    assert back["extra"][1] == {"Raw": 1, "arr": [1, 2]}  # numpy values written as JSON numbers/lists
    expected = figures.copy()
    expected["extra"] = pd.Series([json.loads(json.dumps(v, default=lambda a: a.tolist())) for v in figures["extra"]],
                                  dtype=object)
    pd.testing.assert_frame_equal(back, schema.coerce_frame(expected, "figures"))


def test_reads_files_without_metadata(tmp_path):
    """Layouts of the first release: ``extra__json`` columns (states) and plain ``extra`` JSON text (caches)."""
    state_like = pd.DataFrame({"a": [1, 2], "extra__json": pd.array(['{"k": 1}', None], dtype="string"),
                               "g": pd.Series(["m", "f"], dtype="string").astype("category")})
    state_like.to_parquet(tmp_path / "s.parquet", index=False)
    back = read_frame(tmp_path / "s.parquet", categories={"g": "string"})
    assert list(back.columns) == ["a", "extra", "g"] and back["extra"].tolist() == [{"k": 1}, None]
    assert back["g"].cat.categories.dtype == "string"
    cache_like = pd.DataFrame({"extra": ['{"k": [1]}', None], "custom_labels": ['{"x": "y"}', None], "note": ['"q"', None]})
    cache_like.to_parquet(tmp_path / "c.parquet", index=False)
    back = read_frame(tmp_path / "c.parquet", json_columns=["extra", "custom_labels", "missing"])
    assert back["extra"].tolist() == [{"k": [1]}, None] and back["custom_labels"].tolist() == [{"x": "y"}, None]
    assert back["note"][0] == '"q"'  # not named, not decoded


def test_bad_json_names_file_row_and_column(tmp_path):
    pd.DataFrame({"extra__json": ['{"ok": 1}', "{broken"]}).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(ValueError, match=r"bad\.parquet: row 1, column 'extra'"):
        read_frame(tmp_path / "bad.parquet")


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "f.parquet"
    write_frame(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half a file")
        raise RuntimeError("killed mid-write")
    assert read_frame(target)["a"].tolist() == [1]  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["f.parquet"]
    write_frame(pd.DataFrame({"a": [2, 3]}), target)  # replacing works too
    assert read_frame(target)["a"].tolist() == [2, 3] and len(list(tmp_path.iterdir())) == 1


def test_category_dtypes_and_name_clash(tmp_path):
    frame = _mixed_frame()
    assert category_dtypes(frame) == {"label": "string", "state": "str"}
    with pytest.raises(ValueError, match="already has"):
        write_frame(frame.assign(extra__json=1), tmp_path / "x.parquet")
