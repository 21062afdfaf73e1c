"""Benchmark: ``make_embeddings`` at 1,000,000 x 512, ``make_dataset`` at 100,000 faces, and its IMM pages.

``make_embeddings`` is timed on ``--n`` labels (about 10 faces per person) and compared with
a straightforward float64 implementation of the same model (one big array per step, no
blocks) run on the first ``--baseline-n`` labels in the same process; both are also timed
on that subset so the ratio compares like with like. Peak memory is measured with
``tracemalloc`` (numpy reports its buffers to it) and printed next to the size of the output.

Targets (2 cores): 1,000,000 x 512 well under a minute, peak memory a few times the output.

Usage::

    python benchmarks/bench_synth.py                   # 1,000,000 x 512
    python benchmarks/bench_synth.py --n 200000 --dim 128
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from imm_analysis.synth import make_dataset, make_embeddings
from imm_analysis.synth.embeddings import _embedding_params


def baseline(labels: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """The same generative model written the obvious way (float64, whole arrays)."""
    rng = np.random.default_rng(seed)
    rank, mean_s, sd_s = _embedding_params(dim)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0].T
    _, inv = np.unique(labels, return_inverse=True)
    centres = rng.standard_normal((inv.max() + 1, rank)) @ basis
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    s = np.clip(mean_s + sd_s * rng.standard_normal(len(labels)), 0.05, 0.995)
    noise = rng.standard_normal((len(labels), dim))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    x = centres[inv] * s[:, None] + noise * np.sqrt(1 - s * s)[:, None]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="faces for make_embeddings")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--baseline-n", type=int, default=100_000, help="faces for the baseline comparison")
    parser.add_argument(
        "--dataset-people", type=int, default=10_000, help="people for make_dataset (about 10 faces each)"
    )
    args = parser.parse_args()

    labels = np.random.default_rng(0).integers(0, max(args.n // 10, 1), args.n)
    tracemalloc.start()
    x, t_full = _timed(make_embeddings, labels, dim=args.dim, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out_gb = x.nbytes / 1e9
    print(f"make_embeddings {args.n:,} x {args.dim}: {t_full:.2f} s ({args.n / t_full:,.0f} faces/s)")
    print(f"  peak traced memory {peak / 1e9:.2f} GB = {peak / x.nbytes:.2f} x the output ({out_gb:.2f} GB)")
    del x

    sub = labels[: args.baseline_n]
    _, t_ours = _timed(make_embeddings, sub, dim=args.dim, seed=0)
    _, t_base = _timed(baseline, sub, args.dim)
    print(
        f"on {len(sub):,} faces: make_embeddings {t_ours:.2f} s, float64 baseline {t_base:.2f} s, "
        f"ratio {t_base / t_ours:.2f}x"
    )

    ds, t_ds = _timed(make_dataset, args.dataset_people, faces_per_person=(3, 17), dim=128, seed=0)
    print(
        f"make_dataset({args.dataset_people:,} people): {len(ds.figures):,} faces, {len(ds.files):,} files in {t_ds:.2f} s"
    )
    # IMM pages: converted once and cut into pages, so the cost is that of one whole-frame conversion
    from imm_analysis.io.imm_json import to_imm_files

    pages, t_pages = _timed(ds.to_imm_pages, False, page_size=100)
    _, t_one = _timed(to_imm_files, ds.files, ds.figures)
    print(f"to_imm_pages(clustered=False, page_size=100): {len(pages['files']):,} pages in {t_pages:.2f} s; "
          f"one to_imm_files of everything (baseline) {t_one:.2f} s; ratio {t_pages / t_one:.2f}")


if __name__ == "__main__":
    main()
