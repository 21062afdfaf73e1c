"""Clustering speed: FigureClusterer on synthetic 512-d faces against scikit-learn baselines.

Targets (issue 4, 2 cores): 100,000 faces full clustering <= 30 s; 1,000,000 faces <= 10 min
and <= 8 GB peak memory; an incremental run adding 1% new faces <= 5% of a full run;
re-cutting at a new threshold or min_faces <= 100 ms at 100,000 faces. scikit-learn's
AgglomerativeClustering (average, cosine) and DBSCAN (cosine) run at ``--baseline-n`` faces
(they need O(n^2) memory / time), and the ratios are printed against our run at that size.

    python benchmarks/bench_cluster.py                 # 100k, baselines at 20k, then 1M
    python benchmarks/bench_cluster.py --n 20000 --skip-1m --baseline-n 5000
    python benchmarks/bench_cluster.py --only-1m     # the 1M run alone: its ru_maxrss is its own peak
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import numpy as np

from imm_analysis.cluster.clusterer import FigureClusterer
from imm_analysis.evaluate import evaluate_clustering
from imm_analysis.synth import make_embeddings

THRESHOLD = 0.45


def people_labels(n: int, seed: int = 0) -> np.ndarray:
    """True person per face: people with 1-20 faces (about 10 on average), shuffled."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 21, size=n // 5)
    labels = np.repeat(np.arange(len(sizes)), sizes)[:n]
    if len(labels) < n:
        labels = np.concatenate([labels, -np.arange(1, n - len(labels) + 1)])
    return rng.permutation(labels)


class PeakMemory:
    """Peak resident memory of this process (sampled every 50 ms, plus ru_maxrss)."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process(os.getpid())
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def gb(self) -> float:
        return self.peak / 2**30


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 embeddings (generated in blocks straight into one n x 512 array) and true labels."""
    labels = people_labels(n, seed)
    x = make_embeddings(labels, dim=512, seed=seed)
    assert x.dtype == np.float32 and x.flags.c_contiguous
    return x, labels


def cpu_seconds() -> float:
    """User + system CPU time of this process (both cores count)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def max_rss_gb() -> float:
    """``ru_maxrss`` of this process so far (Linux: KiB) in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench_full(n: int, *, recut: bool = True, incremental: bool = True) -> dict:
    x, labels = data(n)
    print(f"\n== {n:,} faces, 512-d ({len(np.unique(labels)):,} people) ==", flush=True)
    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), cpu_seconds()
        est = FigureClusterer(THRESHOLD, min_faces=3).fit(x)
        full, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    q = evaluate_clustering(labels, est.labels_)
    # the sampled peak and ru_maxrss both include the benchmark's own embeddings (n x 512 float32)
    print(f"full clustering: {full:8.2f} s (CPU {cpu:.0f} s)  peak RSS {mem.gb:.2f} GB "
          f"(ru_maxrss so far {max_rss_gb():.2f} GB, embeddings {x.nbytes / 2**30:.2f} GB)  "
          f"clusters {est.n_clusters_:,}  BCubed F {q['bcubed_f']:.3f} "
          f"(target <= {'30 s' if n <= 100_000 else '600 s, 8 GB'})", flush=True)
    out = {"full": full, "peak_gb": mem.gb, "est": est}
    if recut:
        times = []
        for t, mf in [(0.5, 3), (0.4, 3), (0.45, 1), (0.55, 2), (0.45, 5)]:
            t0 = time.perf_counter()
            est.recut(t, min_faces=mf)
            times.append(time.perf_counter() - t0)
        print(f"recut: median {1000 * np.median(times):.1f} ms, max {1000 * max(times):.1f} ms over 5 cuts "
              f"(target <= 100 ms); ratio to full fit 1:{full / np.median(times):,.0f}", flush=True)
        out["recut"] = float(np.median(times))
    if incremental:
        m = max(n // 100, 1)
        est2 = FigureClusterer(THRESHOLD, min_faces=3).fit(x[: n - m])
        t0 = time.perf_counter()
        est2.partial_fit(x[n - m :])
        inc = time.perf_counter() - t0
        print(f"incremental +1% ({m:,} faces): {inc:.2f} s = {100 * inc / full:.1f}% of a full run (target <= 5%)", flush=True)
        out["incremental"] = inc
    return out


def bench_baselines(n: int) -> None:
    from sklearn.cluster import DBSCAN, AgglomerativeClustering
    from sklearn.neighbors import NearestNeighbors

    x, labels = data(n, seed=1)
    print(f"\n== baselines at {n:,} faces ==", flush=True)
    t0 = time.perf_counter()
    ours = FigureClusterer(THRESHOLD, min_faces=1).fit(x)
    t_ours = time.perf_counter() - t0
    f_ours = evaluate_clustering(labels, ours.labels_)["bcubed_f"]
    print(f"FigureClusterer (min_faces=1): {t_ours:7.2f} s  BCubed F {f_ours:.3f}", flush=True)
    # DBSCAN on a precomputed sparse radius graph (float32, blockwise inside scikit-learn)
    t0 = time.perf_counter()
    nn = NearestNeighbors(radius=1 - THRESHOLD, metric="cosine", algorithm="brute").fit(x)
    graph = nn.radius_neighbors_graph(x, mode="distance")
    db = DBSCAN(eps=1 - THRESHOLD, min_samples=1, metric="precomputed").fit(graph)
    t_db = time.perf_counter() - t0
    f_db = evaluate_clustering(labels, db.labels_)["bcubed_f"]
    print(f"DBSCAN (cosine, precomputed radius graph): {t_db:7.2f} s  BCubed F {f_db:.3f}  "
          f"ratio DBSCAN/ours {t_db / t_ours:.1f}x", flush=True)
    t0 = time.perf_counter()
    try:
        agg = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=1 - THRESHOLD
        ).fit(x)
        t_agg = time.perf_counter() - t0
        f_agg = evaluate_clustering(labels, agg.labels_)["bcubed_f"]
        print(f"AgglomerativeClustering (average, cosine): {t_agg:7.2f} s  BCubed F {f_agg:.3f}  "
              f"ratio agglomerative/ours {t_agg / t_ours:.1f}x", flush=True)
    except MemoryError:
        print("AgglomerativeClustering: MemoryError (O(n^2) memory)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="faces for the main run (default 100,000)")
    p.add_argument("--baseline-n", type=int, default=20_000, help="faces for the scikit-learn baselines (0 = skip)")
    p.add_argument("--skip-1m", action="store_true", help="skip the 1,000,000-face run")
    p.add_argument("--only-1m", action="store_true", help="only the 1,000,000-face run")
    p.add_argument("--big-n", type=int, default=1_000_000, help="faces for the large run")
    args = p.parse_args()
    if not args.only_1m:
        bench_full(args.n)
        if args.baseline_n:
            bench_baselines(args.baseline_n)
    if not args.skip_1m:
        bench_full(args.big_n, recut=True, incremental=False)
    print(f"\nmax RSS of the process (ru_maxrss: embeddings, fits, evaluation and baselines): {max_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
