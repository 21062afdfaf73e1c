"""forget(): erasing one person from a saved ClusterState and an embedding cache, against a load + save.

A synthetic collection (``make_dataset``, 128-d) is clustered and saved, and its faces are written
as an embedding cache in chunks of ``--chunk`` faces. Each repetition copies both stores and
forgets the largest cluster (with the sweep, the calibrated threshold is computed once and given).
The baseline, run in the same process on the same copies, is what any erasure of these two stores
must at least do: ``ClusterState.load`` then ``save``, and read every cache chunk once. The ratio
is the cost of the rest: target resolution, the sweep, tombstones, the chunk rewrites and the
verification (every store read back from disk).

    python benchmarks/bench_forget.py               # 20,000 faces
    python benchmarks/bench_forget.py --n 5000 --repeat 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from imm_analysis import ClusterState, calibrate_threshold, forget
from imm_analysis.faces.cache import EmbeddingCache
from imm_analysis.faces.result import ERROR_COLUMNS
from imm_analysis.privacy.cache_store import cache_folders, read_chunks
from imm_analysis.schema import coerce_frame
from imm_analysis.synth import make_dataset


def _cache(root: Path, figures: pd.DataFrame, x: np.ndarray, chunk: int) -> None:
    cache = EmbeddingCache(root, "pack:bench@1", x.shape[1], {"mode": "detect"})
    f = figures.assign(cache_key=figures["file_id"].astype(str), frame_index=pd.NA)
    keys = f["cache_key"].drop_duplicates().tolist()
    for s in range(0, len(keys), chunk):
        part_keys = set(keys[s : s + chunk])
        m = f["cache_key"].isin(part_keys).to_numpy()
        part = f.loc[m].reset_index(drop=True)
        files = part.groupby("cache_key", as_index=False).agg(file_id=("file_id", "first"),
                                                               figure_count=("figure_id", "size"))
        errors = pd.DataFrame(columns=[*ERROR_COLUMNS, "cache_key"]).astype("string")
        cache.write_chunk(sorted(part_keys), coerce_frame(files, "files"), coerce_frame(part, "figures"), x[m], errors)


def _baseline(work: Path) -> None:
    ClusterState.load(work / "state").save(work / "state")
    for folder in cache_folders(work / "cache"):
        for _chunk in read_chunks(folder):
            pass


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="faces (about; the synthetic dataset rounds)")
    ap.add_argument("--chunk", type=int, default=500, help="files per cache chunk")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best and median printed)")
    args = ap.parse_args()
    ds = make_dataset(max(args.n // 10, 2), seed=0)
    x = ds.embeddings[: args.n]
    figs = ds.figures.iloc[: args.n].reset_index(drop=True)
    state = ClusterState.from_figures(figs, x, threshold=0.5, seed=0)
    person = str(state.clusters.sort_values("face_count", ascending=False)["cluster_id"].iloc[0])
    thr = float(calibrate_threshold(x))
    print(f"state: {len(state.figures):,} faces, {len(state.clusters):,} clusters, dim {x.shape[1]}; "
          f"forgetting {person} ({int(state.clusters.set_index('cluster_id').loc[person, 'face_count'])} faces)")
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state.save(root / "base" / "state")
        _cache(root / "base" / "cache", figs, x, args.chunk)
        for i in range(args.repeat):
            work = root / f"w{i}"
            shutil.copytree(root / "base", work)
            base.append(_timed(lambda w=work: _baseline(w)))
            receipt = None

            def run(w: Path = work) -> None:
                nonlocal receipt
                receipt = forget([person], state=w / "state", cache_dir=w / "cache", threshold=thr)

            ours.append(_timed(run))
            assert receipt is not None and receipt.verified
            shutil.rmtree(work)
    print(f"faces erased   : {receipt.faces:,} over {len(receipt.stores)} stores; verified {receipt.verified}")
    print(f"forget         : best {min(ours):7.2f} s  median {statistics.median(ours):7.2f} s")
    print(f"load+save+read : best {min(base):7.2f} s  median {statistics.median(base):7.2f} s  (baseline)")
    print(f"ratio (best)   : {min(ours) / min(base):.2f}x the baseline")


if __name__ == "__main__":
    main()
