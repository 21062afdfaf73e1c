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
    both = pd.concat([imm, local_like], ignore_index=True)
    assert both["cluster_state"].dtype == "category"  # fixed categories survive a plain concat
    # other enumerations take their categories from the data: coerce after concatenating
    both = schema.coerce_frame(both, "figures")
    expected = schema.empty_frame("figures").dtypes.astype(str)
    assert (both[expected.index].dtypes.astype(str) == expected).all()
    assert both["cluster_state"].value_counts()["unavailable"] >= 1
