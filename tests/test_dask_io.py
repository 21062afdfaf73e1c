"""IMM JSON exports -> Parquet dataset -> pandas / Dask, equal to the JSON loaders."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")

from imm_analysis.io import IMMFormatError, load_clusters, load_figures, load_files  # noqa: E402
from imm_analysis.io.dataset import DATASET_RECORD, exports_to_parquet, is_dataset, read_figures_dask  # noqa: E402
from imm_analysis.quality import hd_faces, quality_summary  # noqa: E402


@pytest.fixture(scope="module")
def dataset(sample_dir, tmp_path_factory):
    """The sample's file pages and cluster page, converted in this process."""
    src = [*sorted((sample_dir / "files").glob("*.json")), sample_dir / "clusters" / "page-000.json"]
    return exports_to_parquet(src, tmp_path_factory.mktemp("ds") / "sample", workers=1)


def _eq(a: pd.DataFrame, b: pd.DataFrame, *, part: bool = False) -> None:
    """Equal frames; ``part``: ``a`` is a slice of a larger frame, whose categories are a superset."""
    if part:
        cats = [c for c in a if isinstance(a[c].dtype, pd.CategoricalDtype)]
        a = a.astype({c: b[c].dtype for c in cats})
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_round_trip_equals_json(dataset, sample_dir):
    figures_json = load_figures(sample_dir / "files")
    figures = load_figures(dataset)
    # the cluster page's covers come last (its own partition), as load_figures of that page gives them
    _eq(figures.iloc[: len(figures_json)], figures_json, part=True)
    _eq(figures.iloc[len(figures_json):], load_figures(sample_dir / "clusters"), part=True)
    files_json = load_files(sample_dir / "files")
    _eq(load_files(dataset).iloc[: len(files_json)], files_json, part=True)
    _eq(load_clusters(dataset), load_clusters(sample_dir / "clusters"))
    record = json.loads((dataset / DATASET_RECORD).read_text())
    assert record["tables"]["figures"] == len(figures) and record["partitions"] == 5
    assert is_dataset(dataset) and not is_dataset(sample_dir / "files")


def test_columns_and_filters(dataset, sample_dir):
    full = load_figures(sample_dir / "files")
    got = load_figures(dataset, columns=["figure_id", "face_quality", "extra"],
                       filters=[("face_quality", ">=", 0.8), ("media_type", "==", "image")])
    want = full[(full["face_quality"] >= 0.8) & (full["media_type"] == "image")]
    assert list(got.columns) == ["figure_id", "face_quality", "extra"]
    assert set(got["figure_id"]) >= set(want["figure_id"]) and len(got) > 0
    assert (got["face_quality"] >= 0.8).all() and str(got["figure_id"].dtype) == "string"
    with pytest.raises(KeyError, match="no column"):
        load_figures(dataset, columns=["nope"])
    with pytest.raises(KeyError, match=r"figures.*no column\(s\) \['nope'\]"):
        read_figures_dask(dataset, columns=["figure_id", "nope"])
    with pytest.raises(ValueError, match="exports_to_parquet"):
        load_figures(sample_dir / "files", columns=["figure_id"])


def test_collect_lists_bad_record_and_converts_rest(sample_dir, tmp_path, dask_client):
    pages = sorted((sample_dir / "files").glob("*.json"))
    src = tmp_path / "src"
    src.mkdir()
    for p in pages[1:]:
        shutil.copy(p, src / p.name)
    doc = json.loads(pages[0].read_text())
    doc["Files"][2]["Figures"][0]["FaceQuality"] = "very good"
    (src / pages[0].name).write_text(json.dumps(doc))
    with pytest.raises(IMMFormatError, match="FaceQuality"):
        exports_to_parquet(src, tmp_path / "raise", client=dask_client)
    assert not is_dataset(tmp_path / "raise")  # an unfinished conversion is never read as a dataset
    out = exports_to_parquet(src, tmp_path / "ds", client=dask_client, errors="collect")
    errors = pd.read_parquet(out / "errors.parquet")
    assert len(errors) == 1 and "FaceQuality" in errors.loc[0, "field"] and pages[0].name in errors.loc[0, "source"]
    json_collect = load_figures(src, errors="collect")
    _eq(load_figures(out), json_collect)
    assert load_figures(out).attrs["errors"][0]["field"] == errors.loc[0, "field"]
    with pytest.raises(FileExistsError):
        exports_to_parquet(src, out)


def test_dask_quality_equals_pandas(dataset):
    ddf = read_figures_dask(dataset)
    pdf = load_figures(dataset)
    assert ddf.npartitions == 5
    assert list(ddf.dtypes.index) == list(pdf.dtypes.index)
    assert [str(t) for t in ddf.dtypes] == [str(t) for t in pdf.dtypes]
    _eq(ddf.compute(), pdf)
    for by in (None, "cluster_state", ["media_type", "gender"]):
        pd.testing.assert_frame_equal(quality_summary(ddf, by), quality_summary(pdf, by))
    _eq(hd_faces(ddf).compute(), hd_faces(pdf))
    sub = read_figures_dask(dataset, columns=["figure_id", "width"])
    assert list(sub.compute().columns) == ["figure_id", "width"]


def test_cli_convert(sample_dir, tmp_path, capsys):
    from imm_analysis.cli import main

    assert main(["convert", str(sample_dir / "files"), str(tmp_path / "ds"), "--workers", "1", "-q"]) == 0
    assert "420 figures" in capsys.readouterr().out
    _eq(load_figures(tmp_path / "ds"), load_figures(sample_dir / "files"))
    assert main(["convert", str(sample_dir / "files"), str(tmp_path / "ds"), "-q"]) == 1
    assert "already holds a dataset" in capsys.readouterr().err


def test_files_pages_convert_without_a_no_clusters_log_line(sample_dir, tmp_path, caplog):
    """A files page has no clusters: neither a warning nor a log record per converted file says so."""
    import logging
    import warnings

    page = sorted((sample_dir / "files").glob("*.json"))[0]
    with caplog.at_level(logging.WARNING, logger="imm_analysis.io.imm_json"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = exports_to_parquet([page], tmp_path / "ds", workers=1)
    tables = json.loads((out / DATASET_RECORD).read_text())["tables"]
    assert tables["clusters"] == 0 and tables["figures"] > 0
    assert not [r for r in caplog.records if "no clusters" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="imm_analysis.io.imm_json"), pytest.warns(Warning, match="no clusters"):
        load_clusters(page)  # outside a conversion the loader still says it
    assert [r for r in caplog.records if "no clusters" in r.getMessage()]
