"""The schema is the contract between producers: frames from any producer concatenate cleanly."""

from __future__ import annotations

import pandas as pd

from imm_analysis import schema


def test_cluster_state_is_derived_with_fixed_categories():
    ids = [schema.CLUSTER_UNAVAILABLE, "Cluster-1", schema.CLUSTER_INDEPENDENT, None]
    frame = schema.coerce_frame(pd.DataFrame({"figure_id": list("abcd"), "figure_cluster_id": ids}), "figures")
    assert frame["cluster_state"].tolist() == ["unavailable", "clustered", "independent", "unavailable"]
    assert frame["cluster_state"].cat.categories.tolist() == list(schema.CLUSTER_STATES)


def test_frames_of_different_producers_concatenate_with_schema_dtypes(sample_dir):
    from imm_analysis import load_figures

    imm = load_figures(sample_dir / "files")
    local_like = schema.coerce_frame(
        pd.DataFrame({"figure_id": ["x"], "figure_cluster_id": [schema.CLUSTER_UNAVAILABLE], "width": [80.0]}), "figures"
    )
    expected_counts = imm["figure_cluster_id"].map(
        lambda c: "unavailable" if pd.isna(c) or c == schema.CLUSTER_UNAVAILABLE
        else "independent" if c == schema.CLUSTER_INDEPENDENT else "clustered"
    ).value_counts()
    expected_counts["unavailable"] = expected_counts.get("unavailable", 0) + 1  # the local row
    both = pd.concat([imm, local_like], ignore_index=True)
    assert both["cluster_state"].dtype == "category"  # fixed categories survive a plain concat
    # other enumerations take their categories from the data: coerce after concatenating
    both = schema.coerce_frame(both, "figures")
    expected = schema.empty_frame("figures").dtypes.astype(str)
    assert (both[expected.index].dtypes.astype(str) == expected).all()
    counts = both["cluster_state"].value_counts()
    assert {k: int(v) for k, v in counts.items() if v} == {k: int(v) for k, v in expected_counts.items()}
    last = both.iloc[-1]
    assert (last["figure_id"], last["cluster_state"], last["width"]) == ("x", "unavailable", 80)


def test_coerce_frame_casts_values_and_fills_missing_columns():
    raw = pd.DataFrame({
        "figure_id": ["a", "b"],
        "width": [80.6, None],  # float pixels round to nullable Int64
        "produce_time": ["2026-01-05T10:35:12+08:00", None],
        "my_note": [1, 2],
    })
    frame = schema.coerce_frame(raw, "figures")
    assert frame["width"].dtype == "Int64" and frame["width"].iloc[0] == 81 and pd.isna(frame["width"].iloc[1])
    assert str(frame["produce_time"].dtype) == "datetime64[ns, UTC]"
    assert frame["produce_time"].iloc[0] == pd.Timestamp("2026-01-05T02:35:12Z") and pd.isna(frame["produce_time"].iloc[1])
    # a schema column the producer did not have is all missing, with its dtype
    files = schema.coerce_frame(pd.DataFrame({"uri": ["oss://b/x.jpg"]}), "files")
    assert str(files["create_time"].dtype) == "datetime64[ns, UTC]" and files["create_time"].isna().all()
    assert frame["face_quality"].dtype == "float64" and frame["face_quality"].isna().all()
    # columns outside the schema are kept, after the schema's
    assert frame.columns[-1] == "my_note" and frame["my_note"].tolist() == [1, 2]
    assert list(frame.columns[:-1]) == list(schema.empty_frame("figures").columns)


def test_empty_frame_has_every_column_and_no_rows():
    for kind in ("clusters", "files", "figures"):
        empty = schema.empty_frame(kind)
        assert len(empty) == 0
        again = schema.coerce_frame(empty, kind)
        assert list(again.columns) == list(empty.columns)
        assert (again.dtypes.astype(str) == empty.dtypes.astype(str)).all(), kind
