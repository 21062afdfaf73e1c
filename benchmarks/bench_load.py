"""Benchmark: load a SimpleQuery export of 1,000,000 faces (JSON Lines pages) with ``load_figures``.

Builds the export in a temporary directory (one SimpleQuery page of 100 files per line,
1 to 9 faces per file, the fields IMM really returns), loads it with
:func:`imm_analysis.load_figures`, and compares with a ``pandas.json_normalize``
baseline on the same input in the same run.

Prints faces per second, the peak memory of the process (``resource`` ``ru_maxrss``,
read right after ``load_figures`` and before the baseline runs; it includes the
interpreter and pandas), and the speed ratio against the baseline. The baseline runs on
the first ``--baseline-n`` faces (it is slow); ``load_figures`` is timed on that same
subset too, so the ratio compares like with like, and the full-size baseline time is
extrapolated linearly (said so in the output).

It also times the input-limit checks that the ``.jsonl`` fast path runs before pyarrow sees a
byte (:func:`imm_analysis.io.limits.fast_path_ok`: depth, line size, UTF-8, duplicate ``Files``)
on the whole export, and prints their share of the load.

Targets (2 cores): >= 5x the baseline, 1,000,000 faces in < 10 s, peak < 3 GB.

Usage::

    python benchmarks/bench_load.py            # 1,000,000 faces
    python benchmarks/bench_load.py --n 100000 --baseline-n 20000
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pandas as pd

from imm_analysis import load_figures
from imm_analysis.io.limits import fast_path_ok

FILES_PER_PAGE = 100
TEMPLATES = 16
EMOTIONS = ["happiness", "calm", "surprise", "sadness", "anger", "none"]


def _face(rng: random.Random, cluster: str) -> dict:
    hd = rng.random() < 0.7
    size = rng.randint(80, 400) if hd else rng.randint(20, 90)
    return {
        "FigureId": str(uuid.UUID(int=rng.getrandbits(128))) + "-{P}",
        "FigureConfidence": round(rng.uniform(0.9, 1.0), 6),
        "FigureClusterId": cluster,
        "FigureClusterConfidence": round(rng.uniform(0.5, 1.0), 6),
        "FigureType": "face",
        "Age": rng.randint(5, 80),
        "AgeSD": rng.randint(1, 8),
        "Gender": rng.choice(["male", "female"]),
        "GenderConfidence": round(rng.uniform(0.6, 1.0), 6),
        "Emotion": rng.choice(EMOTIONS),
        "EmotionConfidence": rng.uniform(0.3, 1.0),
        "FaceQuality": rng.uniform(0.8, 1.0) if hd else rng.uniform(0.1, 0.9),
        "Boundary": {"Width": size, "Height": int(size * 1.3), "Left": rng.randint(0, 1500), "Top": rng.randint(0, 900)},
        "Mouth": rng.choice(["open", "close"]),
        "MouthConfidence": rng.uniform(0.5, 1.0),
        "Beard": rng.choice(["none", "have"]),
        "BeardConfidence": rng.uniform(0.5, 1.0),
        "Hat": rng.choice(["none", "wear"]),
        "HatConfidence": rng.uniform(0.5, 1.0),
        "Mask": rng.choice(["none", "wear"]),
        "MaskConfidence": rng.uniform(0.5, 1.0),
        "Glasses": rng.choice(["none", "glasses", "sunglasses"]),
        "GlassesConfidence": rng.uniform(0.5, 1.0),
        "Sharpness": rng.uniform(0.2, 1.0),
        "Attractive": rng.uniform(0.2, 1.0),
        "HeadPose": {"Pitch": rng.gauss(0, 15), "Roll": rng.gauss(0, 10), "Yaw": rng.gauss(0, 20)},
    }


def _file(rng: random.Random, j: int, n_faces: int) -> dict:
    store, cam = rng.randint(1, 3), rng.randint(1, 2)
    day, hour = rng.randint(5, 11), rng.randint(8, 21)
    t = f"2026-01-{day:02d}T{hour:02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 10**9 - 1):09d}+08:00"
    clusters = [f"Cluster-{uuid.UUID(int=rng.getrandbits(128))}", "figure-cluster-id-independent"]
    return {
        "Addresses": [],
        "ContentType": "image/jpeg",
        "CreateTime": t,
        "DatasetName": "retail",
        "ETag": '"56201B0811C0660354E33BECE4C****"',
        "Figures": [_face(rng, rng.choice(clusters)) for _ in range(n_faces)],
        "FileHash": '"56201B0811C0660354E33BECE****"',
        "FileModifiedTime": t,
        "Filename": f"{j}.jpg",
        "ImageHeight": 1080,
        "ImageScore": {"OverallQualityScore": round(rng.random(), 3)},
        "ImageWidth": 1920,
        "Labels": [],
        "MediaType": "image",
        "OCRContents": [],
        "OSSObjectType": "Normal",
        "OSSStorageClass": "Standard",
        "ObjectId": f"{uuid.UUID(int=rng.getrandbits(128)).hex}-{{P}}-{j}",
        "ObjectType": "file",
        "Orientation": 1,
        "OwnerId": "****",
        "ProduceTime": t,
        "ProjectName": "shop",
        "Size": rng.randint(50_000, 900_000),
        "URI": f"oss://bucket/store-{store}/cam-{cam}/{{P}}-{j}.jpg",
        "UpdateTime": t,
    }


def build_export(n_faces: int, out: Path, n_files: int = 10, seed: int = 0) -> tuple[list[Path], int]:
    """Write about ``n_faces`` faces as SimpleQuery pages, one per line, over ``n_files`` JSONL files.

    Distinct ids on every page come from a few page templates whose ``{P}`` is replaced by
    the page number, so building 1M faces takes seconds. Returns the paths and the exact face count.
    """
    rng = random.Random(seed)
    templates = []
    for _ in range(TEMPLATES):
        counts = [rng.randint(1, 9) for _ in range(FILES_PER_PAGE)]
        page = {"Files": [_file(rng, j, c) for j, c in enumerate(counts)], "Aggregations": [], "NextToken": "x"}
        templates.append((orjson.dumps(page).decode(), sum(counts)))
    paths = [out / f"simple_query_{i:03d}.jsonl" for i in range(n_files)]
    handles = [open(p, "w", encoding="utf-8") for p in paths]
    per_page = sum(c for _, c in templates) / TEMPLATES
    est_pages = max(1, round(n_faces / per_page))
    written, page_no = 0, 0
    try:
        while written < n_faces:
            text, count = templates[page_no % TEMPLATES]
            handle = handles[min(page_no * n_files // est_pages, n_files - 1)]
            handle.write(text.replace("{P}", str(page_no)) + "\n")
            written += count
            page_no += 1
    finally:
        for h in handles:
            h.close()
    return [p for p in paths if p.stat().st_size], written


def baseline(paths: list[Path], limit: int) -> tuple[pd.DataFrame, float]:
    """``pandas.json_normalize`` of the first ``limit`` faces (pages parsed with orjson, as in the loader)."""
    t0 = time.perf_counter()
    frames, n = [], 0
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                page = orjson.loads(line)
                frames.append(
                    pd.json_normalize(page["Files"], record_path="Figures", meta=["ObjectId", "URI", "MediaType", "ProduceTime"])
                )
                n += len(frames[-1])
                if n >= limit:
                    break
        if n >= limit:
            break
    frame = pd.concat(frames, ignore_index=True)
    return frame, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="faces in the export (default 1,000,000)")
    ap.add_argument("--baseline-n", type=int, default=100_000, help="faces the json_normalize baseline reads")
    ap.add_argument("--files", type=int, default=10, help="JSONL files the export is split into")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        t0 = time.perf_counter()
        paths, n = build_export(args.n, Path(tmp), args.files)
        size = sum(p.stat().st_size for p in paths)
        print(f"export: {n:,} faces, {len(paths)} JSONL files, {size / 1e6:,.0f} MB, built in {time.perf_counter() - t0:.1f} s")

        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        figures = load_figures(tmp)
        t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        assert len(figures) == n, (len(figures), n)
        print(f"load_figures: {n:,} faces in {t_load:.2f} s = {n / t_load:,.0f} faces/s "
              f"(CPU time of the process, all threads: {c_load:.2f} s; load average {os.getloadavg()[0]:.1f})")
        print(f"peak memory: {peak / 2**30:.2f} GiB (ru_maxrss of this process after load_figures, before the baseline)")
        del figures
        gc.collect()

        # the input-limit checks the fast path runs before pyarrow (io.limits.fast_path_ok): their share
        t0 = time.perf_counter()
        for path in paths:
            assert fast_path_ok(path.read_bytes())
        t_check = time.perf_counter() - t0
        print(f"input-limit checks (size, depth, UTF-8, duplicate keys) on the whole export: {t_check:.2f} s "
              f"= {t_check / t_load:.0%} of load_figures")

        sub_n = min(args.baseline_n, n)
        base, t_base = baseline(paths, sub_n)
        sub_n = len(base)
        del base
        # load_figures on exactly the same subset (the pages the baseline read) for a like-for-like ratio
        sub_dir = Path(tmp) / "subset"
        sub_dir.mkdir()
        with open(sub_dir / "subset.jsonl", "wb") as out:
            copied = 0
            for path in paths:
                with open(path, "rb") as fh:
                    for line in fh:
                        out.write(line)
                        copied += sum(len(f["Figures"]) for f in orjson.loads(line)["Files"])
                        if copied >= sub_n:
                            break
                if copied >= sub_n:
                    break
        t0 = time.perf_counter()
        sub = load_figures(sub_dir)
        t_sub = time.perf_counter() - t0
        assert len(sub) == sub_n, (len(sub), sub_n)
        extrapolated = t_base * n / sub_n
        print(f"baseline pandas.json_normalize: {sub_n:,} faces in {t_base:.2f} s = {sub_n / t_base:,.0f} faces/s"
              + (f" (subset; {n:,} faces extrapolated linearly: {extrapolated:.1f} s)" if sub_n < n else ""))
        print(f"load_figures on the same {sub_n:,} faces: {t_sub:.2f} s; ratio {t_base / t_sub:.1f}x the baseline")
        print(f"ratio at {n:,} faces (baseline extrapolated): {extrapolated / t_load:.1f}x")
        ok = t_base / t_sub >= 5 and (n < 1_000_000 or t_load < 10) and peak < 3e9
        print(f"targets (>= 5x, 1M < 10 s, peak < 3 GB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
