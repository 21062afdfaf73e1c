"""Speed of the interactive views: ThresholdTuner updates and project_umap on a given kNN graph.

Measured on synthetic 512-d faces (``imm_analysis.synth.make_embeddings``), each against a
baseline in the same run:

* ``ThresholdTuner.set`` (re-cut of the fitted dendrogram + counts + metrics) at 10,000 and
  100,000 faces, against a full re-clustering with the same parameters (``FigureClusterer.fit``).
  Issue target: the re-cut under 100 ms at 100,000 faces.
* ``project_umap(knn=...)`` at 20,000 and 100,000 faces, reusing the clustering engine's kNN
  graph, against umap-learn from scratch (its own pynndescent neighbour search), same
  ``n_neighbors``, metric and seed: once as users run it (spectral init, threaded BLAS), once
  with single-threaded BLAS and the init project_umap picks (PCA above 20,000 faces), which
  isolates what reusing the graph saves. Numba
  compilation is warmed up first for both.
* ``plot_projection`` of 1,000,000 points (binned rendering).

    python benchmarks/bench_viz.py                               # the issue's sizes
    python benchmarks/bench_viz.py --tuner-n 10000 --umap-n 20000  # a quicker run
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".venv" / "numba-cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from imm_analysis.cluster.clusterer import FigureClusterer  # noqa: E402
from imm_analysis.cluster.knn import build_knn  # noqa: E402
from imm_analysis.synth import make_embeddings  # noqa: E402

THRESHOLD = 0.45


def people_labels(n: int, seed: int = 0) -> np.ndarray:
    """True person per face: people with 1-20 faces (about 10 on average), shuffled."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 21, size=n // 5)
    labels = np.repeat(np.arange(len(sizes)), sizes)[:n]
    return rng.permutation(labels)


def faces(n: int, dim: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A figures frame (one image per face; size, pose, quality for the HD rule), embeddings, labels."""
    rng = np.random.default_rng(seed)
    labels = people_labels(n, seed)
    quality = np.clip(rng.beta(6, 1.5, n), 0, 1)
    figures = pd.DataFrame(
        {
            "figure_id": [f"fig-{i}" for i in range(n)],
            "file_id": [f"file-{i}" for i in range(n)],
            "width": rng.integers(40, 240, n),
            "height": rng.integers(40, 240, n),
            "pitch": rng.normal(0, 12, n),
            "roll": rng.normal(0, 8, n),
            "yaw": rng.normal(0, 18, n),
            "face_quality": quality,
        }
    )
    return figures, make_embeddings(labels, dim=dim, quality=quality, seed=seed), labels


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_tuner(n: int, dim: int) -> None:
    from imm_analysis.widgets import ThresholdTuner

    figures, x, labels = faces(n, dim)
    tuner, t_init = timed(ThresholdTuner, figures, x, labels, threshold=THRESHOLD, linkage_floor=0.2)
    changes = [
        {"threshold": 0.40}, {"threshold": 0.55}, {"min_faces": 1}, {"min_faces": 3},
        {"min_quality": 0.6}, {"max_pose": 20}, {"min_size": 100}, {"threshold": 0.50},
    ]
    set_s, recut_ms = [], []
    for change in changes:
        summary, dt = timed(tuner.set, **change)
        set_s.append(dt)
        recut_ms.append(summary["recut_ms"])
    thr_only = [s for s, c in zip(set_s, changes, strict=True) if set(c) == {"threshold"}]
    p = tuner.params
    rule = {k: p[k] for k in ("min_size", "max_pose", "min_quality")}
    est = FigureClusterer(p["threshold"], min_faces=p["min_faces"], hd_rule=rule, linkage_floor=0.2)
    _, t_full = timed(est.fit, x, figures)
    assert est.n_clusters_ == tuner.summary["n_clusters"], "tuner and a fresh fit disagree"
    # without true labels: the update is the re-cut plus counts only
    plain = ThresholdTuner(figures, x, clusterer=tuner.clusterer, threshold=THRESHOLD)
    plain_s = [timed(plain.set, threshold=t)[1] for t in (0.4, 0.5, 0.6)]
    print(f"\n== ThresholdTuner, {n:,} faces, dim {dim}")
    print(f"   tuner construction (one full fit)       {t_init:8.2f} s")
    print(f"   full re-clustering (FigureClusterer.fit) {t_full:8.2f} s   (baseline)")
    print(f"   re-cut alone, median of {len(recut_ms)}             {np.median(recut_ms):8.2f} ms   (max {max(recut_ms):.2f} ms)")
    print(f"   tuner.set, threshold change, median     {1e3 * np.median(thr_only):8.2f} ms   with metrics")
    print(f"   tuner.set, any change, median / max     {1e3 * np.median(set_s):8.2f} ms / {1e3 * max(set_s):.2f} ms")
    print(f"   tuner.set without labels, median        {1e3 * np.median(plain_s):8.2f} ms")
    print(f"   ratio full re-clustering / tuner.set    {t_full / np.median(set_s):8.0f} x")
    print(f"   ratio full re-clustering / re-cut       {t_full / (np.median(recut_ms) / 1e3):8.0f} x")


def warm_up_umap() -> None:
    """Compile (or load from NUMBA_CACHE_DIR) umap's and pynndescent's numba code once for both paths."""
    import umap

    from imm_analysis.viz.projection import project_umap

    x = make_embeddings(people_labels(5000, 1), dim=32, seed=1)
    project_umap(x, knn=build_knn(x, 30, progress=False), n_epochs=5)
    umap.UMAP(n_neighbors=15, metric="cosine", random_state=0, n_jobs=1, n_epochs=5).fit_transform(x)


def bench_umap(n: int, dim: int, baseline: bool) -> None:
    import umap

    from imm_analysis.viz.projection import project_umap

    _, x, labels = faces(n, dim, seed=2)
    knn, t_knn = timed(build_knn, x, 30, progress=False)
    coords, t_ours = timed(project_umap, x, knn=knn)
    print(f"\n== project_umap, {n:,} faces, dim {dim}, n_neighbors 15, random_state 0")
    print(f"   kNN graph (built once by the clusterer)  {t_knn:8.2f} s   (not counted: reused)")
    print(f"   project_umap(knn=graph)                  {t_ours:8.2f} s")
    if baseline:
        from threadpoolctl import threadpool_limits

        model = umap.UMAP(n_neighbors=15, metric="cosine", random_state=0, n_jobs=1)
        base, t_base = timed(model.fit_transform, x)
        print(f"   umap-learn from scratch (own search)     {t_base:8.2f} s   (baseline, as users run it)")
        print(f"   ratio umap-learn / project_umap          {t_base / t_ours:8.2f} x")
        print(f"   ratio umap-learn / (kNN + project_umap)  {t_base / (t_ours + t_knn):8.2f} x")
        # the same baseline with single-threaded BLAS, as project_umap runs: isolates the graph reuse
        from imm_analysis.viz.projection import SPECTRAL_MAX_N

        init = "spectral" if n <= SPECTRAL_MAX_N else "pca"
        model = umap.UMAP(n_neighbors=15, metric="cosine", random_state=0, n_jobs=1, init=init)
        with threadpool_limits(limits=1, user_api="blas"):
            _, t_base1 = timed(model.fit_transform, x)
        print(f"   umap-learn from scratch, 1 BLAS thread, init={init!r} {t_base1:8.2f} s   (baseline 2)")
        print(f"   ratio baseline 2 / project_umap          {t_base1 / t_ours:8.2f} x")
        from sklearn.metrics import silhouette_score

        keep = np.random.default_rng(0).choice(n, min(n, 5000), replace=False)
        big = np.isin(labels[keep], np.flatnonzero(np.bincount(labels) >= 5))
        s_ours = silhouette_score(coords[keep][big], labels[keep][big])
        s_base = silhouette_score(np.asarray(base)[keep][big], labels[keep][big])
        print(f"   layout quality (silhouette by person)    ours {s_ours:.3f}, umap-learn {s_base:.3f}")


def bench_render(n: int) -> None:
    from imm_analysis.viz.plots import plot_projection

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    labels = rng.integers(-1, 5000, n)
    t0 = time.perf_counter()
    ax = plot_projection(xy, values=labels)
    ax.figure.savefig(os.devnull, format="png")
    print(f"\n== plot_projection of {n:,} points (binned image, drawn to PNG): {time.perf_counter() - t0:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tuner-n", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--umap-n", type=int, nargs="*", default=[20_000, 100_000])
    ap.add_argument("--render-n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--no-baseline", action="store_true", help="skip umap-learn from scratch")
    args = ap.parse_args()
    print(f"bench_viz: {os.cpu_count()} CPUs; NUMBA_CACHE_DIR={os.environ['NUMBA_CACHE_DIR']}")
    for n in args.tuner_n:
        bench_tuner(n, args.dim)
    if args.umap_n:
        warm_up_umap()
    for n in args.umap_n:
        bench_umap(n, args.dim, not args.no_baseline)
    if args.render_n:
        bench_render(args.render_n)


if __name__ == "__main__":
    main()
