"""Benchmark: ``diff_clusterings`` and ``match_faces`` on a million faces.

``diff_clusterings`` is timed on two snapshots of ``--n`` faces (the later one has 10 % new faces,
1 % of the earlier faces removed, 1 % moved, a few thousand newly clustered) and compared with a plain
``pandas.merge`` (outer, on ``figure_id``) of the two figures frames in the same process: the floor
any diff has to pay to line the faces up. ``match_faces`` is timed on ``--n`` faces in ``--n / 2``
files per side (boxes shifted by a few pixels, 1 % of the faces missing on one side).

Targets (2 cores): diff at 1,000,000 faces <= 10 s; match at 1,000,000 faces in 500,000 files <= 30 s.

Usage::

    python benchmarks/bench_diff.py                 # 1,000,000 faces
    python benchmarks/bench_diff.py --n 200000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from imm_analysis.audit.diff import diff_clusterings
from imm_analysis.audit.match import match_faces


def _ids(prefix: str, values: np.ndarray) -> pd.arrays.ArrowStringArray:
    return pd.array(np.char.add(prefix, values.astype("U12")), dtype="string[pyarrow]")


def snapshots(n: int, seed: int = 0) -> tuple[tuple[None, pd.DataFrame], tuple[None, pd.DataFrame]]:
    """Two figures frames of one dataset before and after a run."""
    rng = np.random.default_rng(seed)
    n_before = int(n / 1.1)
    n_clusters = max(n // 20, 1)
    face = np.arange(n)
    cluster = rng.integers(-1, n_clusters, n)  # -1: independent
    files = face // 2
    before_rows = np.arange(n_before)
    removed = rng.choice(n_before, n_before // 100, replace=False)
    after_rows = np.setdiff1d(face, removed)
    cluster_after = cluster.copy()
    moved = rng.choice(n_before, n_before // 100, replace=False)
    cluster_after[moved] = rng.integers(0, n_clusters, len(moved))
    cluster_before = cluster.copy()
    cluster_before[rng.choice(n_before, n_before // 200, replace=False)] = -1  # newly clustered later

    def frame(rows: np.ndarray, clusters: np.ndarray) -> pd.DataFrame:
        cid = np.where(clusters[rows] >= 0, np.char.add("Cluster-", clusters[rows].astype("U12")),
                       "figure-cluster-id-independent")
        return pd.DataFrame({"figure_id": _ids("face-", rows), "file_id": _ids("file-", files[rows]),
                             "figure_cluster_id": pd.array(cid, dtype="string[pyarrow]")})

    return (None, frame(before_rows, cluster_before)), (None, frame(after_rows, cluster_after))


def faces_in_files(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two detectors' faces of the same ``n / 2`` files (two faces side by side per file)."""
    rng = np.random.default_rng(seed)
    files = np.arange(n) // 2
    left = np.where(np.arange(n) % 2 == 0, 10, 300) + rng.integers(0, 50, n)
    a = pd.DataFrame({"uri": _ids("oss://bucket/", files), "figure_id": _ids("imm-", np.arange(n)),
                      "left": left, "top": rng.integers(0, 100, n), "width": 120, "height": 140})
    keep = np.sort(rng.choice(n, n - n // 100, replace=False))
    b = a.iloc[keep].reset_index(drop=True).assign(figure_id=_ids("local-", keep))
    b["left"] += rng.integers(-4, 5, len(b))
    b["top"] += rng.integers(-4, 5, len(b))
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="faces per snapshot / per side")
    args = parser.parse_args()

    before, after = snapshots(args.n)
    t0 = time.perf_counter()
    merged = pd.merge(before[1], after[1], on="figure_id", how="outer", suffixes=("_b", "_a"))
    t_merge = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = diff_clusterings(before, after)
    t_diff = time.perf_counter() - t0
    print(f"diff_clusterings: {len(before[1]):,} -> {len(after[1]):,} faces in {t_diff:.2f} s "
          f"(plain pandas outer merge of the figures: {t_merge:.2f} s, {len(merged):,} rows; "
          f"ratio {t_diff / t_merge:.2f}x); target <= 10 s")
    print(f"  faces: {d.summary['faces']}; broken {d.summary['broken']:,}")

    a, b = faces_in_files(args.n)
    t0 = time.perf_counter()
    m = match_faces(a, b)
    t_match = time.perf_counter() - t0
    t0 = time.perf_counter()
    pd.merge(a[["uri"]], b[["uri"]], on="uri")
    t_join = time.perf_counter() - t0
    print(f"match_faces: {len(a):,} and {len(b):,} faces in {args.n // 2:,} files in {t_match:.2f} s "
          f"(plain pandas join of the two sides on uri: {t_join:.2f} s; ratio {t_match / t_join:.2f}x); "
          f"target <= 30 s")
    print(f"  {len(m.pairs):,} pairs, {len(m.only_a):,} only in a, {len(m.only_b):,} only in b")


if __name__ == "__main__":
    main()
