"""ClusterState.save with versions and an atomic pointer, against writing the same files plainly.

The versioned save (issue 11, item 8) writes the state into ``path/v-<n>/``, renames the
folder in, replaces ``path/CURRENT`` and removes the old version. The baseline, run in the
same process on the same state, writes the same Parquet and ``.npy`` files with the same
atomic writers straight into a folder (no version, no pointer, no clean-up). The ratio is
the cost of never leaving a window without a loadable state. ``load`` is timed too.

    python benchmarks/bench_cluster_save.py              # 20,000 faces, 128-d
    python benchmarks/bench_cluster_save.py --n 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from imm_analysis.cluster.state import ClusterState
from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes
from imm_analysis.io.parquet import write_frame
from imm_analysis.synth import make_dataset


def _plain_save(state: ClusterState, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_frame(state.figures, folder / "figures.parquet")
    write_frame(state.clusters, folder / "clusters.parquet")
    write_frame(state._cannot, folder / "cannot_link.parquet")
    for name, arr in (("embeddings", state.embeddings), ("knn_indices", state.knn.indices),
                      ("knn_similarities", state.knn.similarities), ("hd", state.hd), ("locked", state._locked)):
        atomic_save_npy(folder / f"{name}.npy", arr)
    atomic_write_bytes(folder / "state.json", json.dumps({"edits": state.edits}, default=str).encode())


def _best(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="faces (about; the synthetic dataset rounds)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions (best and median printed)")
    args = ap.parse_args()
    ds = make_dataset(max(args.n // 10, 2), seed=0)
    x = ds.embeddings[: args.n]
    state = ClusterState.from_figures(ds.figures.iloc[: args.n], x, threshold=0.5, seed=0)
    print(f"state: {len(state.figures):,} faces, {len(state.clusters):,} clusters, dim {x.shape[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state.save(root / "versioned")  # warm-up, and a previous version to replace
        ours = _best(lambda: state.save(root / "versioned"), args.repeat)
        base = _best(lambda: _plain_save(state, root / "plain"), args.repeat)
        load = _best(lambda: ClusterState.load(root / "versioned"), args.repeat)
        left = sorted(p.name for p in (root / "versioned").iterdir())
    print(f"versioned save : best {ours[0] * 1e3:8.1f} ms  median {ours[1] * 1e3:8.1f} ms")
    print(f"plain writes   : best {base[0] * 1e3:8.1f} ms  median {base[1] * 1e3:8.1f} ms  (baseline)")
    print(f"ratio (best)   : {ours[0] / base[0]:.2f}x the plain writes")
    print(f"load           : best {load[0] * 1e3:8.1f} ms")
    print(f"folder after {args.repeat + 1} saves: {left}")


if __name__ == "__main__":
    main()
