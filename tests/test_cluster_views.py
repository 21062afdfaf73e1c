"""IMM-shaped views of a ClusterState read back by the loaders."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from imm_analysis import load_clusters, load_figures, load_files
from imm_analysis.cluster.state import ClusterState
from imm_analysis.cluster.views import get_figure_cluster, query_figure_clusters, simple_query


@pytest.fixture(scope="module")
def state():
    from imm_analysis.synth import make_dataset

    ds = make_dataset(20, seed=5)
    return ClusterState.from_figures(ds.figures, ds.embeddings, threshold=0.4, seed=2, project_name="p", dataset_name="d")


def test_query_figure_clusters_pages_round_trip(state):
    pages, token = [], None
    while True:
        page = query_figure_clusters(state, sort="FaceCount", order="desc", max_results=7, next_token=token)
        assert page["TotalCount"] == len(state.clusters)
        pages.append(page)
        token = page["NextToken"]
        if not token:
            break
    assert len(pages) == -(-len(state.clusters) // 7)
    back = load_clusters(pages)
    assert back["face_count"].is_monotonic_decreasing
    ours = state.clusters.set_index("cluster_id").sort_index()
    theirs = back.set_index("cluster_id").sort_index()
    for col in ("face_count", "image_count", "video_count", "average_age", "gender", "cover_file_id", "create_time", "project_name"):
        pd.testing.assert_series_equal(theirs[col], ours[col], check_names=False, check_categorical=False)
    asc = query_figure_clusters(state, sort="create_time", order="asc", max_results=100)
    assert len(asc["FigureClusters"]) == len(state.clusters)
    with pytest.raises(ValueError, match="sort"):
        query_figure_clusters(state, sort="Nope")


def test_get_figure_cluster(state):
    cid = state.clusters["cluster_id"].iloc[0]
    answer = get_figure_cluster(state, cid)
    assert answer["FigureCluster"]["ObjectId"] == cid
    assert answer["FigureCluster"]["FaceCount"] == state.clusters["face_count"].iloc[0]
    assert load_clusters(answer)["cluster_id"].tolist() == [cid]
    with pytest.raises(KeyError):
        get_figure_cluster(state, "Cluster-unknown")


def test_simple_query_lists_the_files_of_a_cluster(state):
    cid = state.clusters["cluster_id"].iloc[0]
    query = {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": cid}
    answer = simple_query(state, json.dumps(query), max_results=100)
    figures = load_figures(answer)
    files = load_files(answer)
    mine = state.figures[state.figures["figure_cluster_id"] == cid]
    assert set(files["file_id"]) == set(mine["file_id"])
    # as in IMM, files come with all their faces, including other clusters' faces
    assert set(mine["figure_id"]) <= set(figures["figure_id"])
    everything = state.figures[state.figures["file_id"].isin(set(mine["file_id"]))]
    assert set(figures["figure_id"]) == set(everything["figure_id"])
    back = figures.set_index("figure_id").loc[mine["figure_id"], "figure_cluster_id"]
    assert (back == cid).all()
    # paging
    first = simple_query(state, query, max_results=2)
    if len(files) > 2:
        assert first["NextToken"] and len(first["Files"]) == 2
    with pytest.raises(ValueError, match="not supported"):
        simple_query(state, {"Field": "Labels.LabelName", "Operation": "eq", "Value": "x"})
