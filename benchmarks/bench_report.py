"""Benchmark: the retail visitor report over about 1,000,000 face rows.

Default sizes are the issue's: ~100,000 visitors, 30 days, 20 stores, ~1M faces (built with
``imm_analysis.synth.make_visits``). Prints the time and peak memory of ``visitor_report`` and,
in the same run, a naive baseline: a per-visitor ``groupby().apply`` sessionisation timed on a
subset of visitors and extrapolated linearly to all of them (it is too slow to run in full),
compared with the vectorised sessionisation on the full data.

    python benchmarks/bench_report.py                 # issue sizes (target: < 30 s, < 4 GB)
    python benchmarks/bench_report.py --visitors 10000 # smaller run
    python benchmarks/bench_report.py --visitors 10000 --gallery  # also the visitor gallery

``--gallery`` also times ``visitor_report(..., faces=True)``'s gallery table (a cover face and the
member files of every visitor, vectorised) against a naive per-visitor ``groupby().apply`` on a
subset, extrapolated, and the cutting of cover thumbnails from a 1920x1080 JPEG through
``io.media.read_image``.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import numpy as np
import pandas as pd
import psutil

from imm_analysis.report import tables as T
from imm_analysis.report.visitors import visitor_report
from imm_analysis.synth import make_visits


class PeakRSS:
    """Sample this process's resident memory every ``interval`` seconds while in the ``with`` block."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._proc = psutil.Process(os.getpid())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def naive_sessions(frame: pd.DataFrame, gap: pd.Timedelta) -> pd.DataFrame:
    """The obvious pandas way: per visitor, sort, mark gaps, aggregate (groupby-apply)."""

    def per_visitor(g: pd.DataFrame) -> pd.DataFrame:
        g = g.sort_values(["location", "time"])
        new = (g["location"] != g["location"].shift()) | (g["time"].diff() > gap)
        return g.groupby(new.cumsum()).agg(
            location=("location", "first"), start=("time", "min"), end=("time", "max"), detections=("time", "size")
        )

    return frame.groupby("visitor_id", group_keys=True)[["location", "time"]].apply(per_visitor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visitors", type=int, default=100_000, help="shoppers (default: %(default)s, ~1M faces)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--baseline-visitors", type=int, default=300, help="visitors the naive baseline runs on")
    ap.add_argument("--html", action="store_true", help="also time to_html (plots and tables)")
    ap.add_argument("--gallery", action="store_true", help="also time the visitor gallery (faces=True)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    s = make_visits(args.visitors, stores=args.stores, days=args.days, visits_per_visitor=(1, 5),
                    dwell_minutes=(2, 25), detection_interval=(120, 1000), staff_per_store=1, seed=args.seed)
    t_synth = time.perf_counter() - t0
    n_faces = len(s.figures)
    print(f"data: {n_faces:,} face rows, {len(s.files):,} files, {args.visitors:,} shoppers + {len(s.staff_ids)} staff, "
          f"{len(s.visits):,} true visits, {args.days} days, {args.stores} stores (built in {t_synth:.1f} s)")

    kwargs = dict(files=s.files, clusters=s.clusters, tz=s.tz, location=s.location_pattern, time_source=s.time_pattern)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        report = visitor_report(s.figures, **kwargs)
        t_report = time.perf_counter() - t0
    true_visits = int((~s.visits["is_staff"]).sum())
    assert len(report.visits) == true_visits, (len(report.visits), true_visits)
    print(f"visitor_report: {t_report:.2f} s, {n_faces / t_report:,.0f} faces/s; peak RSS during the report "
          f"{mem.peak / 2**30:.2f} GiB (+{(mem.peak - mem.start) / 2**30:.2f} GiB over the input); "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB "
          f"(target: < 30 s, < 4 GB) -> {report}")
    if args.html:
        t0 = time.perf_counter()
        size = report.to_html("outputs/bench_report.html").stat().st_size
        print(f"to_html: {time.perf_counter() - t0:.2f} s ({size / 1e6:.1f} MB)")

    # sessionisation only: vectorised (full data) vs naive groupby-apply (subset, extrapolated)
    times, _, _ = T.resolve_times(s.figures, s.files, time_source=s.time_pattern, tz=s.tz)
    loc, names, _ = T.resolve_locations(s.figures, s.files, s.location_pattern)
    cid = s.figures["figure_cluster_id"].to_numpy(object)
    codes, uniq = pd.factorize(cid)
    gap = pd.Timedelta("30min")
    t0 = time.perf_counter()
    order, first, last = T.sessionize(codes, loc, times, int(gap.value))
    t_vec = time.perf_counter() - t0
    n_vis_all = len(uniq)
    sub = np.isin(codes, np.arange(min(args.baseline_visitors, n_vis_all)))
    frame = pd.DataFrame({"visitor_id": cid[sub], "location": np.asarray(names, dtype=object)[loc[sub]],
                          "time": pd.to_datetime(times[sub], utc=True)})
    t0 = time.perf_counter()
    naive = naive_sessions(frame, gap)
    t_naive_sub = time.perf_counter() - t0
    _, f_sub, _ = T.sessionize(codes[sub], loc[sub], times[sub], int(gap.value))
    assert len(naive) == len(f_sub), (len(naive), len(f_sub))  # same visits on the subset
    n_sub = int(np.unique(codes[sub]).size)
    t_naive = t_naive_sub * n_vis_all / n_sub
    print(f"sessionisation of {n_faces:,} faces into {len(first):,} visits: vectorised {t_vec:.2f} s; naive "
          f"per-visitor groupby-apply {t_naive_sub:.2f} s on {n_sub:,} visitors, extrapolated linearly to "
          f"{n_vis_all:,} visitors: {t_naive:.0f} s -> vectorised is {t_naive / t_vec:,.0f}x faster "
          f"(whole report vs naive sessionisation alone: {t_naive / t_report:,.1f}x)")

    if args.gallery:
        bench_gallery(s, t_report, kwargs, args.baseline_visitors)


def naive_gallery(frame: pd.DataFrame) -> pd.DataFrame:
    """The obvious pandas way: per visitor, pick the best face and join its file names (groupby-apply)."""

    def per_visitor(g: pd.DataFrame) -> pd.Series:
        best = g.sort_values(["face_quality", "area"], ascending=False).iloc[0]
        names = sorted({u.rsplit("/", 1)[-1] for u in g["uri"]})
        return pd.Series({"cover_uri": best["uri"], "files": ", ".join(names), "n_files": len(names)})

    return frame.groupby("visitor_id").apply(per_visitor, include_groups=False)


def bench_gallery(s, t_report: float, kwargs: dict, baseline_visitors: int) -> None:
    """Gallery table vectorised vs naive, and thumbnails per second."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    from imm_analysis.report.gallery import thumbnail_png

    t0 = time.perf_counter()
    with_faces = visitor_report(s.figures, faces=True, **kwargs)
    t_faces = time.perf_counter() - t0
    g = with_faces.gallery
    figs = s.figures
    frame = pd.DataFrame({"visitor_id": figs["figure_cluster_id"].astype(str), "uri": figs["uri"].astype(str),
                          "face_quality": figs["face_quality"].astype(float),
                          "area": (figs["width"] * figs["height"]).astype(float)})
    ids = g["visitor_id"].astype(str).to_numpy()
    sub = frame[frame["visitor_id"].isin(ids[:baseline_visitors])]
    t0 = time.perf_counter()
    naive = naive_gallery(sub)
    t_naive_sub = time.perf_counter() - t0
    assert len(naive) == min(baseline_visitors, len(ids))
    t_naive = t_naive_sub * len(ids) / max(len(naive), 1)
    print(f"gallery of {len(g):,} visitors: visitor_report(faces=True) {t_faces:.2f} s (without faces "
          f"{t_report:.2f} s); naive per-visitor groupby-apply {t_naive_sub:.2f} s on {len(naive):,} visitors, "
          f"extrapolated to {len(ids):,}: {t_naive:.1f} s -> the whole report with its gallery is "
          f"{t_naive / t_faces:,.1f}x faster than the naive gallery alone")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "frame.jpg"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)).save(path, quality=90)
        n = 50
        t0 = time.perf_counter()
        sizes = [len(thumbnail_png(path, (800 + i, 400, 120, 150))) for i in range(n)]
        t_thumb = (time.perf_counter() - t0) / n
    print(f"cover thumbnails from a 1920x1080 JPEG: {1 / t_thumb:.1f} per second ({t_thumb * 1000:.0f} ms each, "
          f"{np.mean(sizes) / 1000:.1f} kB PNG); the HTML cuts at most {100} of them")


if __name__ == "__main__":
    main()
