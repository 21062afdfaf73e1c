"""Tests for imm_analysis.viz: UMAP projection on a given kNN graph, and the plots (Agg backend)."""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", str(__import__("pathlib").Path(__file__).parents[1] / ".venv" / "numba-cache"))

from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from imm_analysis.quality import hd_mask  # noqa: E402
from imm_analysis.viz import plots as P  # noqa: E402
from imm_analysis.viz.projection import place_by_neighbours, project_umap, umap_knn  # noqa: E402


# --------------------------------------------------------------------------- data
def _blobs(n_per: int = 60, n_blobs: int = 5, dim: int = 32, noise: float = 0.35, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_blobs, dim))
    y = np.repeat(np.arange(n_blobs), n_per)
    x = centers[y] + noise * rng.normal(size=(len(y), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def blobs():
    return _blobs()


@pytest.fixture(scope="module")
def blob_knn(blobs):
    from imm_analysis.cluster.knn import build_knn

    return build_knn(blobs[0], 20, backend="numpy", progress=False)


def _separation(coords: np.ndarray, y: np.ndarray) -> float:
    """Mean distance to the own blob's centre over the mean distance between blob centres."""
    centres = np.stack([coords[y == c].mean(axis=0) for c in np.unique(y)])
    within = np.mean([np.linalg.norm(coords[y == c] - centres[c], axis=1).mean() for c in np.unique(y)])
    between = np.mean([np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1 :]])
    return within / between


def _figures(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "figure_id": [f"fig-{i}" for i in range(n)],
            "file_id": [f"file-{i}" for i in range(n)],
            "width": rng.integers(40, 200, n),
            "height": rng.integers(40, 200, n),
            "pitch": rng.normal(0, 20, n),
            "roll": rng.normal(0, 10, n),
            "yaw": rng.normal(0, 25, n),
            "face_quality": rng.uniform(0.3, 1.0, n),
        }
    )


def _points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


# --------------------------------------------------------------------------- projection
def test_umap_knn_puts_self_first_and_converts_similarity():
    from imm_analysis.cluster.knn import KNNGraph

    g = KNNGraph(np.array([[1, 2, -1], [0, 2, -1], [1, 0, -1]]), np.array([[0.9, 0.5, -np.inf]] * 3))
    idx, dist = umap_knn(g, 3)
    assert idx.tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0]]
    np.testing.assert_allclose(dist, [[0.0, 0.1, 0.5]] * 3, atol=1e-6)
    idx, dist = umap_knn(g, 4)  # the missing slot stays missing
    assert (idx[:, 3] == -1).all() and np.isinf(dist[:, 3]).all()
    with pytest.raises(ValueError, match="at least 4 neighbours"):
        umap_knn(g, 5)


class _Searched(Exception):
    """Raised by the spies below when umap starts a neighbour search."""


class _ForbiddenNNDescent:
    def __init__(self, *args, **kwargs):
        raise _Searched("pynndescent.NNDescent")


def _forbid_search(monkeypatch):
    import pynndescent
    import umap.umap_

    def nearest_neighbors(*args, **kwargs):
        raise _Searched("umap.umap_.nearest_neighbors")

    monkeypatch.setattr(umap.umap_, "nearest_neighbors", nearest_neighbors)
    monkeypatch.setattr(umap.umap_, "NNDescent", _ForbiddenNNDescent)
    monkeypatch.setattr(pynndescent, "NNDescent", _ForbiddenNNDescent)


def test_project_umap_reuses_the_given_knn_without_searching(blobs, blob_knn, monkeypatch):
    _forbid_search(monkeypatch)
    x, y = blobs
    coords = project_umap(x, knn=blob_knn, n_neighbors=10, n_epochs=100)
    assert coords.shape == (len(x), 2) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    assert _separation(coords, y) < 0.3  # the five people come out as five islands


def test_project_umap_without_knn_searches_itself(blobs, monkeypatch):
    # the spies do catch a search when no graph is given, so the test above can fail
    _forbid_search(monkeypatch)
    with pytest.raises(_Searched):
        project_umap(blobs[0], n_neighbors=10, n_epochs=10)


def test_project_umap_cache_hit_skips_umap(blobs, blob_knn, tmp_path, monkeypatch):
    import umap

    x, _ = blobs
    first = project_umap(x, knn=blob_knn, n_neighbors=8, n_epochs=30, cache_dir=tmp_path)
    files = list(tmp_path.glob("umap-*.npy"))
    assert len(files) == 1

    def forbidden(*args, **kwargs):
        raise AssertionError("umap ran although the result was cached")

    monkeypatch.setattr(umap, "UMAP", forbidden)
    again = project_umap(x, knn=blob_knn, n_neighbors=8, n_epochs=30, cache_dir=tmp_path)
    np.testing.assert_array_equal(first, again)
    # other parameters or other embeddings are other keys: umap would run
    with pytest.raises(AssertionError, match="cached"):
        project_umap(x, knn=blob_knn, n_neighbors=9, n_epochs=30, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="cached"):
        project_umap(x[::-1].copy(), n_neighbors=8, n_epochs=30, cache_dir=tmp_path)


def test_project_umap_above_max_points_fits_a_sample_and_places_the_rest(blobs, blob_knn, monkeypatch):
    _forbid_search(monkeypatch)  # the sample's graph comes from build_knn, the rest from the given graph
    x, y = blobs
    with pytest.warns(UserWarning, match="sample of 120"):
        coords = project_umap(x, knn=blob_knn, n_neighbors=10, n_epochs=60, max_points=200, sample_size=120)
    assert coords.shape == (len(x), 2) and np.isfinite(coords).all()
    assert _separation(coords, y) < 0.3
    with pytest.warns(UserWarning, match="sampled neighbours"):
        coords = project_umap(x, n_neighbors=10, n_epochs=60, max_points=200, sample_size=120)
    assert np.isfinite(coords).all() and _separation(coords, y) < 0.3


def test_project_umap_auto_init_switches_to_pca_for_large_n(blobs, blob_knn, monkeypatch):
    from imm_analysis.viz import projection

    seen = []
    real = projection._umap

    def spy(*args, **kwargs):
        seen.append(kwargs["init"])
        return real(*args, **kwargs)

    monkeypatch.setattr(projection, "_umap", spy)
    x, _ = blobs
    project_umap(x, knn=blob_knn, n_neighbors=8, n_epochs=5)
    monkeypatch.setattr(projection, "SPECTRAL_MAX_N", 100)
    project_umap(x, knn=blob_knn, n_neighbors=8, n_epochs=5)
    assert seen == ["spectral", "pca"]


def test_place_by_neighbours_uses_graph_and_propagates():
    from imm_analysis.cluster.knn import KNNGraph

    # a chain 0-1-2-3: only 0 placed; 3 is two hops beyond 1
    g = KNNGraph(np.array([[1, -1], [0, 2], [1, 3], [2, -1]]), np.array([[0.9, -np.inf], [0.9, 0.8], [0.8, 0.7], [0.7, -np.inf]]))
    coords = np.zeros((4, 2), np.float32)
    coords[0] = [5, -2]
    placed = np.array([True, False, False, False])
    out, ok = place_by_neighbours(g, placed, coords, rounds=1)
    assert ok.tolist() == [True, True, False, False]
    out, ok = place_by_neighbours(g, placed, coords, rounds=3)
    assert ok.all()
    np.testing.assert_allclose(out, [[5, -2]] * 4)


def test_project_umap_rejects_bad_input(blobs, blob_knn):
    x, _ = blobs
    with pytest.raises(ValueError, match="rows"):
        project_umap(x[:10], knn=blob_knn)
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        project_umap(bad)
    assert project_umap(x[:2]).shape == (2, 2)
    with pytest.raises(ValueError, match="init"):
        project_umap(x, init="umap")


# --------------------------------------------------------------------------- projection plots
def test_plot_projection_by_cluster_draws_every_face_and_independents_apart():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(500, 2))
    labels = rng.integers(-1, 8, 500)
    ax = P.plot_projection(xy, values=labels)
    assert _points(ax) == 500
    crosses = [c for c in ax.collections if c.get_label().startswith("independent")]
    assert len(crosses) == 1 and len(crosses[0].get_offsets()) == int((labels == -1).sum())
    assert ax.get_xlabel() == "UMAP 1" and ax.get_ylabel() == "UMAP 2"
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"independent ({(labels == -1).sum()})" in texts
    assert len(texts) == 9  # eight clusters and the independents


def test_plot_projection_by_figure_cluster_id_and_identity():
    n = 120
    f = _figures(n)
    f["figure_cluster_id"] = ["figure-cluster-id-independent" if i % 4 == 0 else f"Cluster-{i % 3}" for i in range(n)]
    ax = P.plot_projection(np.random.default_rng(0).normal(size=(n, 2)), f)
    assert _points(ax) == n
    assert "independent (30)" in [t.get_text() for t in ax.get_legend().get_texts()]
    truth = np.arange(n) % 5
    ax = P.plot_projection(np.zeros((n, 2)), f, by="identity", values=truth)
    assert _points(ax) == n and len(ax.get_legend().get_texts()) == 5


def test_plot_projection_numeric_and_hd_colourings():
    n = 300
    f = _figures(n)
    f.loc[[3, 8], "face_quality"] = np.nan
    xy = np.random.default_rng(0).normal(size=(n, 2))
    ax = P.plot_projection(xy, f, by="face_quality")
    assert _points(ax) == n
    assert len(ax.figure.axes) == 2 and ax.figure.axes[1].get_ylabel() == "face_quality"  # the colour bar
    assert "missing (2)" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = P.plot_projection(xy, f, by="yaw")
    clim = [c for c in ax.collections if c.get_array() is not None][0].get_clim()
    assert clim[0] == pytest.approx(-clim[1])  # pose angles centred on 0
    ax = P.plot_projection(xy, f, by="is_hd")
    hd = hd_mask(f)[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"HD ({hd.sum()})" in texts and f"not HD ({(~hd).sum()})" in texts
    with pytest.raises(ValueError, match="no column 'age'"):
        P.plot_projection(xy, f, by="age")


def test_plot_projection_bins_a_million_points_into_an_image():
    rng = np.random.default_rng(0)
    n = 1_000_000
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    labels = rng.integers(-1, 2000, n)
    ax = P.plot_projection(xy, values=labels)
    assert not [c for c in ax.collections if isinstance(c, PathCollection)]
    (img,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    rgba = img.get_array()
    assert rgba.shape == (400, 400, 4) and (rgba[..., 3] > 0).sum() > 10_000
    assert "1,000,000 faces" in ax.get_title()
    ax = P.plot_projection(xy, by="face_quality", values=rng.uniform(size=n), scatter_max=1000)
    assert len(ax.images) == 1 and len(ax.figure.axes) == 2


def test_plot_projections_grid_skips_unavailable_panels():
    n = 80
    f = _figures(n)
    xy = np.random.default_rng(0).normal(size=(n, 2))
    fig = P.plot_projections(xy, f, labels=np.arange(n) % 4)
    titles = [a.get_title() for a in fig.axes if a.get_visible() and a.get_title()]
    assert [t.split(":")[0] for t in titles] == ["cluster", "face_quality", "is_hd", "pitch", "roll", "yaw"]
    fig = P.plot_projections(xy, f, labels=np.arange(n) % 4, true_labels=np.arange(n) % 3, by=("identity",))
    assert fig.axes[0].get_title().startswith("identity")


# --------------------------------------------------------------------------- montages
@pytest.fixture()
def face_images(tmp_path):
    """Two images with coloured 'faces' at known boxes, and the matching figures frame."""
    from PIL import Image, ImageDraw

    boxes = {"img-a": [(10, 20, 100, 110, "red"), (150, 30, 60, 60, "blue")], "img-b": [(40, 40, 90, 90, "green")]}
    paths, rows = {}, []
    for fid, faces in boxes.items():
        im = Image.new("RGB", (260, 200), "white")
        draw = ImageDraw.Draw(im)
        for i, (left, top, w, h, colour) in enumerate(faces):
            draw.rectangle([left, top, left + w - 1, top + h - 1], fill=colour)
            rows.append({"figure_id": f"{fid}-{i}", "file_id": fid, "uri": f"oss://bucket/{fid}.jpg",
                         "left": left, "top": top, "width": w, "height": h, "pitch": 0.0, "roll": 0.0,
                         "yaw": 0.0, "face_quality": 0.9, "colour": colour, "figure_cluster_id": "Cluster-1"})
        paths[fid] = tmp_path / f"{fid}.png"
        im.save(paths[fid])
    return pd.DataFrame(rows), paths


def test_load_face_crop_cuts_the_boundary_box(face_images):
    figures, paths = face_images
    expect = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 128, 0)}
    for _, row in figures.iterrows():
        crop = P.load_face_crop(row, paths, size=64)
        assert crop.shape == (64, 64, 3)
        assert tuple(crop[32, 32]) == expect[row["colour"]]
    # a callable keyed by uri works too; an unknown image gives None
    by_uri = {f"oss://bucket/{k}.jpg": v for k, v in paths.items()}
    assert P.load_face_crop(figures.iloc[2], by_uri.get, size=32)[16, 16].tolist() == [0, 128, 0]
    assert P.load_face_crop(figures.iloc[0], {}, size=32) is None


def test_cluster_montage_marks_cover_and_flags_non_hd(face_images):
    figures, paths = face_images
    clusters = pd.DataFrame({"cluster_id": ["Cluster-1"], "cover_file_id": ["img-b"]})
    fig = P.plot_cluster_montage(figures, "Cluster-1", paths, clusters=clusters, ncols=3)
    tiles = [a for a in fig.axes if a.get_visible()]
    assert len(tiles) == 3 and all(len(a.images) == 1 for a in tiles)
    titles = [a.get_title() for a in tiles]
    cover = [a for a in tiles if a.get_title().startswith("cover")]
    assert len(cover) == 1 and cover[0].spines["left"].get_edgecolor()[:3] == pytest.approx((1.0, 0.843, 0.0), abs=0.01)
    assert cover[0].images[0].get_array()[48, 48].tolist() == [0, 128, 0]  # img-b's green face
    # the blue face is 60 px wide: not high-definition, flagged with the reason
    assert sum("not HD: too_small" in t for t in titles) == 1
    assert "Cluster-1: 3 faces" in fig._suptitle.get_text()


def test_face_montage_without_images_draws_placeholders(face_images):
    figures, _ = face_images
    fig = P.plot_face_montage(figures, {}, rows=[0, 2], captions=["a", "b"], flag_non_hd=False)
    tiles = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in tiles] == ["a", "b"]
    assert all(any(t.get_text() == "no image" for t in a.texts) for a in tiles)
    fig = P.plot_face_montage(figures, {}, rows=[0, -1, 2], ncols=3)  # -1: an empty slot keeps columns aligned
    assert [a.get_visible() for a in fig.axes] == [True, False, True]
    with pytest.raises(KeyError, match="Cluster-9"):
        P.plot_cluster_montage(figures, "Cluster-9", {})


def test_montage_of_real_photos(faces_dir):
    photos = sorted((faces_dir / "photos" / "person_00").glob("*.jpg"))[:4]
    figures = pd.DataFrame({"file_id": [p.name for p in photos], "uri": [str(p) for p in photos]})
    fig = P.plot_face_montage(figures, None, flag_non_hd=False, crop_size=48)
    tiles = [a for a in fig.axes if a.get_visible()]
    assert len(tiles) == len(photos)
    assert all(a.images[0].get_array().shape == (48, 48, 3) and not a.texts for a in tiles)


# --------------------------------------------------------------------------- sweep and sizes
def test_threshold_sweep_plot_marks_calibrated_and_chosen():
    from imm_analysis.evaluate import sweep_thresholds

    x, y = _blobs(n_per=12, n_blobs=8, noise=0.6, seed=3)
    ts = np.round(np.linspace(0.1, 0.9, 9), 2)
    sweep = sweep_thresholds(x, y, ts, min_faces=1)
    ax = P.plot_threshold_sweep(sweep, calibrated=0.42, chosen=0.5)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert {"bcubed precision", "bcubed recall", "bcubed F", "calibrated 0.420", "chosen 0.500"} <= set(lines)
    assert list(lines["calibrated 0.420"].get_xdata()) == [0.42, 0.42]
    np.testing.assert_allclose(lines["bcubed F"].get_ydata(), sweep.sort_values("threshold")["bcubed_f"])
    twin = ax.figure.axes[-1]
    assert twin.get_ylabel() == "clusters" and list(twin.get_lines()[0].get_ydata()) == sweep["n_clusters"].tolist()
    assert ax.get_xlabel().startswith("similarity threshold")
    ax = P.plot_threshold_sweep(sweep, metric="pairwise")
    assert not [ln for ln in ax.get_lines() if ln.get_label().startswith(("calibrated", "chosen"))]
    with pytest.raises(ValueError, match="none of"):
        P.plot_threshold_sweep(sweep, metric="nope")


def test_cluster_sizes_from_labels_frames_and_clusters():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 3 + [-1] * 4)
    ax = P.plot_cluster_sizes(labels)
    assert ax.get_title() == "3 clusters, 11 faces clustered, 4 independent"
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == 3 and heights[2] == 2 and heights[4] == 1  # two clusters of 3, one of 5
    assert ax.get_xlabel() == "faces per cluster" and ax.get_ylabel() == "clusters"
    figures = pd.DataFrame({"figure_cluster_id": ["figure-cluster-id-independent" if v < 0 else f"C{v}" for v in labels]})
    assert P.plot_cluster_sizes(figures).get_title() == ax.get_title()
    clusters = pd.DataFrame({"cluster_id": ["a", "b"], "face_count": pd.array([400, 3], dtype="Int64")})
    ax = P.plot_cluster_sizes(clusters)
    assert ax.get_xscale() == "log" and ax.get_title().startswith("2 clusters, 403 faces")


def test_viz_package_exports():
    import imm_analysis
    import imm_analysis.viz as viz

    assert viz.plot_projection is P.plot_projection
    assert imm_analysis.project_umap is project_umap
    from imm_analysis.viz import quality_plots

    assert viz.plot_quality_distributions is quality_plots.plot_quality_distributions


# --------------------------------------------------------------------------- images read safely
def test_load_face_crop_never_reads_outside_the_images_folder(face_images, tmp_path, monkeypatch):
    """A data-controlled file_id (``../x``, absolute, a symlink out) is refused under ``images=``; nothing outside is read."""
    import shutil

    from imm_analysis.io import media
    from imm_analysis.viz import montage

    figures, paths = face_images
    root = tmp_path / "images"
    root.mkdir()
    shutil.copy(paths["img-a"], root / "img-a.png")
    secret = tmp_path / "secret.png"
    shutil.copy(paths["img-a"], secret)
    (root / "link.png").symlink_to(secret)
    read = []
    original = media.read_image
    monkeypatch.setattr(media, "read_image", lambda path, **kw: (read.append(os.path.realpath(path)), original(path, **kw))[1])
    montage._open_image.cache_clear()
    row = figures.iloc[0].copy()
    for hostile in ("../secret.png", str(secret), "link.png", "sub/../../secret.png"):
        row["file_id"], row["uri"] = hostile, None
        assert P.load_face_crop(row, root, size=32) is None, hostile
    assert read == []
    # the same row with an inside name is read, through io.media.read_image
    row["file_id"] = "img-a.png"
    assert P.load_face_crop(row, root, size=32)[16, 16].tolist() == [255, 0, 0]
    assert read == [os.path.realpath(root / "img-a.png")]
    # a uri is matched by its base name inside the folder
    row["file_id"], row["uri"] = None, "oss://bucket/store-1/img-a.png"
    assert P.load_face_crop(row, root, size=32) is not None
    fig = P.plot_face_montage(figures.assign(file_id="../secret.png", uri=None), root, flag_non_hd=False)
    assert all(any(t.get_text() == "no image" for t in a.texts) for a in fig.axes if a.get_visible())
    montage._open_image.cache_clear()


def test_montage_images_go_through_the_pixel_limit_and_refuse_special_files(face_images, tmp_path, monkeypatch):
    from imm_analysis.io import media
    from imm_analysis.io.paths import PathError
    from imm_analysis.viz import montage

    figures, paths = face_images
    original = media.read_image
    monkeypatch.setattr(media, "read_image", lambda path, **kw: original(path, **{**kw, "max_pixels": 1000}))
    montage._open_image.cache_clear()
    with pytest.raises(media.MediaError, match="over the limit of 1,000"):
        P.load_face_crop(figures.iloc[0], paths, size=32)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(PathError, match="not a regular file"):  # refused at once, never opened (no hang)
        P.load_face_crop(figures.iloc[0], {"img-a": fifo}, size=32)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "folder" / "img-a")
    assert P.load_face_crop(figures.iloc[0], tmp_path / "folder", size=32) is None
    montage._open_image.cache_clear()


# --------------------------------------------------------------------------- missing extras
@pytest.mark.parametrize(
    ("module", "extra", "call"),
    [
        ("umap", "umap", lambda: project_umap(np.eye(12, 4, dtype=np.float32), n_neighbors=3, n_epochs=5)),
        ("matplotlib.figure", "viz", lambda: P.plot_face_montage(_figures(2), {})),
        ("matplotlib.figure", "viz", lambda: P.plot_cluster_sizes(np.array([0, 0, 1]))),
    ],
)
def test_a_missing_extra_is_named(module, extra, call, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import raises ImportError
    with pytest.raises(ImportError, match=re.escape(f'pip install "imm_analysis[{extra}]"')):
        call()


def test_widgets_without_ipywidgets_name_the_extra(monkeypatch):
    from imm_analysis.widgets import ThresholdTuner

    x = _blobs(n_per=6, n_blobs=3, seed=1)[0]
    tuner = ThresholdTuner(None, x, threshold=0.5, min_faces=1, coords=np.zeros((len(x), 2), np.float32))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match=re.escape('pip install "imm_analysis[widgets]"')):
        tuner.widget  # noqa: B018


# --------------------------------------------------------------------------- image comparison
# Baselines in tests/baseline (make them with: pytest --mpl-generate-path=tests/baseline tests/test_viz.py -k image);
# compared only with --mpl, as make test runs it. Inputs are integers or numpy's portable random streams,
# never BLAS results, so the same pixels are drawn on every machine; the tolerance absorbs antialiasing.
_IMAGE = {"baseline_dir": "baseline", "tolerance": 3, "style": "default", "savefig_kwargs": {"dpi": 50}}


@pytest.mark.mpl_image_compare(filename="cluster_sizes.png", **_IMAGE)
def test_image_cluster_sizes():
    labels = np.repeat(np.arange(12), [1, 1, 2, 2, 2, 3, 3, 4, 5, 7, 9, 14])
    ax = P.plot_cluster_sizes(np.r_[labels, [-1] * 6])
    assert ax.get_title() == "12 clusters, 53 faces clustered, 6 independent"
    return ax.figure


@pytest.mark.mpl_image_compare(filename="threshold_sweep.png", **_IMAGE)
def test_image_threshold_sweep():
    t = np.round(np.linspace(0.2, 0.8, 13), 2)
    sweep = pd.DataFrame({
        "threshold": t,
        "bcubed_precision": np.clip(0.5 + t * 0.6, 0, 1),
        "bcubed_recall": np.clip(1.2 - t, 0, 1),
        "n_clusters": (10 + 60 * t).astype(int),
    })
    sweep["bcubed_f"] = 2 * sweep["bcubed_precision"] * sweep["bcubed_recall"] / (sweep["bcubed_precision"] + sweep["bcubed_recall"])
    ax = P.plot_threshold_sweep(sweep, calibrated=0.45, chosen=0.5)
    assert {"calibrated 0.450", "chosen 0.500"} <= {ln.get_label() for ln in ax.get_lines()}
    return ax.figure


@pytest.mark.mpl_image_compare(filename="projection_by_cluster.png", **_IMAGE)
def test_image_projection_by_cluster():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(-1, 5), 25)
    centres = np.array([[0, 0], [3, 0], [0, 3], [-3, 0], [0, -3], [3, 3]], dtype=float)
    xy = rng.normal(size=(len(labels), 2)) * 0.5 + centres[labels + 1]
    ax = P.plot_projection(xy, values=labels)
    assert _points(ax) == len(labels)
    return ax.figure
