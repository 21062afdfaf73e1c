"""Clustering quality on real faces: FigureClusterer (no labels) against oracle-tuned baselines.

Data: ``../shared/faces/lfw_dev`` (3,849 aligned LFW faces of 2,132 people; the folder name is
the identity), embedded by the local pipeline ``embed_crops`` with the 128-d test pack
``mbf128_det500m``. Embeddings are cached under ``.cache/bench_cluster_quality/``.

Engine, default settings, threshold from ``calibrate_threshold`` (labels never seen):

* IMM mode, ``min_faces=3`` (founding at the calibrated threshold, then the join level one
  decade looser in false-match rate; a single-level reference row shows the plain cut);
* free mode, ``min_faces=1``.

Baselines (labels used to pick their best threshold, i.e. an upper bound on what they reach):

* scikit-learn ``AgglomerativeClustering(metric="cosine", linkage="average")``;
* scikit-learn ``DBSCAN(metric="cosine")``, ``min_samples`` in {1, 2, 3};
* Immich's facial recognition (``handleRecognizeFaces`` in immich-app/immich
  ``server/src/services/person.service.ts``): a face whose ``minFaces`` nearest faces (itself
  included) all lie within ``maxDistance`` is a core face; a core face joins the person of the
  nearest of those matches that has one, else the nearest face with a person within
  ``maxDistance``, else founds a new person. Non-core faces are deferred and processed after
  all others: they join the nearest face with a person within ``maxDistance``, else stay
  unassigned. Defaults ``maxDistance=0.5`` (cosine distance), ``minFaces=3``.

"Held to the 3-face rule" means clusters smaller than 3 faces count as independent.

Targets (issue 4): IMM-mode BCubed F >= every baseline held to the 3-face rule; free-mode
BCubed F within 0.01 of the oracle-best agglomerative result.

Run: ``.venv/bin/python benchmarks/bench_cluster_quality.py [--faces DIR] [--pack DIR] [--limit N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GRID = np.round(np.arange(0.25, 0.701, 0.01), 3)  # cosine-similarity thresholds for the oracle sweeps


def load_embeddings(faces: Path, pack: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Embeddings and identities of the face crops, through ``embed_crops`` (cached)."""
    from imm_analysis import FaceModel, embed_crops

    model = FaceModel(pack)
    cache = ROOT / ".cache" / "bench_cluster_quality"
    tag = f"{faces.name}-{model.model_id.replace(':', '_').replace('/', '_')}"
    npz = cache / f"{tag}.npz"
    if npz.exists():
        d = np.load(npz, allow_pickle=False)
        x, y = d["embeddings"], d["labels"]
    else:
        res = embed_crops(faces, model, cache_dir=ROOT / ".cache" / f"embed_{faces.name}", progress=True)
        if len(res.errors):
            print(f"warning: {len(res.errors)} crops failed:\n{res.errors.head()}", file=sys.stderr)
        x = np.ascontiguousarray(res.embeddings, dtype=np.float32)
        y = np.array([Path(str(u)).parent.name for u in res.figures["uri"]])
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(npz, embeddings=x, labels=y)
    if limit and limit < len(x):
        keep = np.sort(np.random.default_rng(0).choice(len(x), limit, replace=False))
        x, y = x[keep], y[keep]
    return x, y, model.model_id


def min_size_rule(labels: np.ndarray, min_faces: int = 3) -> np.ndarray:
    """Clusters with fewer than ``min_faces`` faces become independent (-1)."""
    labels = np.asarray(labels)
    out = labels.copy()
    ok = labels >= 0
    _, inv, cnt = np.unique(labels[ok], return_inverse=True, return_counts=True)
    out[np.flatnonzero(ok)[cnt[inv] < min_faces]] = -1
    return out


# ------------------------------------------------------------------------------------- baselines


def agglomerative_tree(x: np.ndarray) -> np.ndarray:
    """Full average-linkage cosine tree from scikit-learn, as a SciPy linkage matrix (cut many times)."""
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=0.0, compute_full_tree=True
    ).fit(x)
    n = len(x)
    counts = np.ones(2 * n - 1, dtype=np.int64)
    for k, (a, b) in enumerate(model.children_):
        counts[n + k] = counts[a] + counts[b]
    return np.column_stack([model.children_, model.distances_, counts[n:]]).astype(np.float64)


def agglomerative_labels(tree: np.ndarray, threshold: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return fcluster(tree, 1.0 - threshold, criterion="distance").astype(np.int64)


def dbscan_labels(dist: np.ndarray, threshold: float, min_samples: int) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=max(1.0 - threshold, 1e-9), min_samples=min_samples, metric="precomputed").fit(dist).labels_


def immich_labels(order: list[np.ndarray], max_distance: float, min_faces: int = 3) -> np.ndarray:
    """Immich's ``handleRecognizeFaces`` over all faces (queue order = row order, then deferred ones).

    ``order[i]`` lists the faces within ``max_distance`` of face i (itself included), nearest first.
    """
    n = len(order)
    person = np.full(n, -1, dtype=np.int64)
    next_person = 0

    def recognise(i: int, deferred: bool) -> bool:
        nonlocal next_person
        if person[i] >= 0:
            return True  # "already has a person assigned"
        near = order[i]
        matches = near[:min_faces]
        if min_faces > 1 and len(matches) <= 1:
            return True  # only matched itself: skipped for good
        is_core = len(matches) >= min_faces
        if not is_core and not deferred:
            return False  # deferred for later processing
        hit = matches[person[matches] >= 0]
        pid = person[hit[0]] if len(hit) else -1
        if pid < 0:
            with_person = near[person[near] >= 0]
            pid = person[with_person[0]] if len(with_person) else -1
        if pid < 0 and is_core:
            pid, next_person = next_person, next_person + 1
        person[i] = pid
        return True

    deferred = [i for i in range(n) if not recognise(i, False)]
    for i in deferred:
        recognise(i, True)
    return person


def neighbours_within(sim: np.ndarray, max_distance: float) -> list[np.ndarray]:
    out = []
    for row in sim:
        idx = np.flatnonzero(row >= 1.0 - max_distance)
        out.append(idx[np.argsort(-row[idx], kind="stable")])
    return out


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=SHARED / "faces" / "lfw_dev")
    parser.add_argument("--pack", type=Path, default=SHARED / "models" / "mbf128_det500m")
    parser.add_argument("--limit", type=int, default=None, help="use a random subset of this many faces")
    args = parser.parse_args(argv)
    for p in (args.faces, args.pack):
        if not p.exists():
            print(f"needs {p} (the shared faces and models); not present", file=sys.stderr)
            return 2

    from imm_analysis import FigureClusterer, calibrate_threshold, evaluate_clustering

    pd.set_option("display.width", 160)
    t0 = time.perf_counter()
    x, y, model_id = load_embeddings(args.faces, args.pack, args.limit)
    n_people = len(np.unique(y))
    print(f"{len(x)} faces of {n_people} people, dim {x.shape[1]}, model {model_id} ({time.perf_counter() - t0:.1f} s)")

    rows: list[dict] = []

    def add(method: str, mode: str, labels: np.ndarray, threshold: float, note: str, seconds: float = np.nan) -> None:
        m = evaluate_clustering(y, labels)
        rows.append({"method": method, "mode": mode, "threshold": threshold, "note": note, "seconds": seconds, **m})

    # --- engine, no labels
    t = time.perf_counter()
    t_cal, details = calibrate_threshold(x, return_details=True)
    t_calib = time.perf_counter() - t
    print(f"calibrated threshold {t_cal:.4f} (impostor centre {details['centre']:.3f}, upper scale "
          f"{details['scale_upper']:.3f}, target FMR {details['target_fmr']:g}) in {t_calib:.2f} s")
    engines = {}
    for mode, mf in (("imm", 3), ("free", 1)):
        t = time.perf_counter()
        eng = FigureClusterer(min_faces=mf).fit(x)
        sec = time.perf_counter() - t
        engines[mode] = eng
        add("FigureClusterer", mode, eng.labels_, eng.threshold_, "calibrated, no labels", sec)
    print(f"join level {engines['imm'].join_threshold_:.4f} (false-match rate x "
          f"{engines['imm'].join_fmr_factor:g} of the calibrated threshold, same impostor fit)")
    single = FigureClusterer(min_faces=3, join_fmr_factor=1).fit(x, knn=engines["imm"].knn_)
    add("FigureClusterer", "imm", single.labels_, single.threshold_, "single level, join_fmr_factor=1 (reference)")

    # --- agglomerative (sklearn), oracle thresholds
    t = time.perf_counter()
    tree = agglomerative_tree(x)
    t_agg = time.perf_counter() - t
    agg = {th: agglomerative_labels(tree, th) for th in GRID}
    best_free = max(GRID, key=lambda th: evaluate_clustering(y, agg[th])["bcubed_f"])
    best_imm = max(GRID, key=lambda th: evaluate_clustering(y, min_size_rule(agg[th]))["bcubed_f"])
    add("Agglomerative avg", "free", agg[best_free], best_free, "oracle threshold", t_agg)
    add("Agglomerative avg", "imm", min_size_rule(agg[best_imm]), best_imm, "oracle under 3-face rule", t_agg)
    add("Agglomerative avg", "imm", min_size_rule(agg[best_free]), best_free, "free-mode oracle + 3-face rule", t_agg)

    # --- DBSCAN (sklearn), oracle eps and min_samples
    sim = x @ x.T  # 3,849 x 3,849 float32: fine at this size (never do this at 20,000+ rows)
    dist = np.clip(1.0 - sim, 0.0, 2.0).astype(np.float64)
    np.fill_diagonal(dist, 0.0)
    t = time.perf_counter()
    db = {(th, ms): dbscan_labels(dist, th, ms) for th in GRID for ms in (1, 2, 3)}
    t_db = (time.perf_counter() - t) / len(db)
    key_free = max(db, key=lambda k: evaluate_clustering(y, db[k])["bcubed_f"])
    key_imm = max(db, key=lambda k: evaluate_clustering(y, min_size_rule(db[k]))["bcubed_f"])
    add("DBSCAN", "free", db[key_free], key_free[0], f"oracle, min_samples={key_free[1]}", t_db)
    add("DBSCAN", "imm", min_size_rule(db[key_imm]), key_imm[0], f"oracle under 3-face rule, min_samples={key_imm[1]}", t_db)

    # --- Immich, default and oracle max distance (threshold column = 1 - max_distance)
    t = time.perf_counter()
    imm_default = immich_labels(neighbours_within(sim, 0.5), 0.5)
    t_immich = time.perf_counter() - t
    add("Immich", "raw", imm_default, 0.5, "maxDistance=0.5 (default), as Immich leaves it", t_immich)
    add("Immich", "imm", min_size_rule(imm_default), 0.5, "maxDistance=0.5 (default) + 3-face rule", t_immich)
    immich = {th: immich_labels(neighbours_within(sim, 1.0 - th), 1.0 - th) for th in GRID}
    th_imm = max(GRID, key=lambda th: evaluate_clustering(y, min_size_rule(immich[th]))["bcubed_f"])
    add("Immich", "imm", min_size_rule(immich[th_imm]), th_imm, "oracle maxDistance + 3-face rule", t_immich)

    # --- engine references: its own oracle, and the calibrated threshold at other target FMRs
    from imm_analysis.evaluate import sweep_thresholds

    for mode, eng in engines.items():
        sw = sweep_thresholds(x, y, GRID, clusterer=eng)
        best = sw.loc[sw["bcubed_f"].idxmax()]
        add("FigureClusterer", mode, eng.recut(best["threshold"]), float(best["threshold"]), "oracle threshold (reference)")
    for fmr in (1e-4, 3e-5, 1e-6):
        tc = calibrate_threshold(x, target_fmr=fmr)
        for mode, eng in engines.items():
            add("FigureClusterer", mode, eng.recut(tc), tc, f"calibrated at target_fmr={fmr:g} (reference)")

    table = pd.DataFrame(rows)
    cols = ["method", "mode", "threshold", "note", "bcubed_precision", "bcubed_recall", "bcubed_f",
            "pairwise_f", "nmi", "ari", "n_clusters", "n_independent", "seconds"]
    print()
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))

    def f_of(method: str, mode: str, note: str) -> float:
        return float(table[(table["method"] == method) & (table["mode"] == mode) & (table["note"] == note)]["bcubed_f"].iloc[0])

    engine_imm = f_of("FigureClusterer", "imm", "calibrated, no labels")
    engine_free = f_of("FigureClusterer", "free", "calibrated, no labels")
    base_imm = table[(table["mode"] == "imm") & (table["method"] != "FigureClusterer")]
    best_base = base_imm.loc[base_imm["bcubed_f"].idxmax()]
    agg_free = f_of("Agglomerative avg", "free", "oracle threshold")
    ok_imm = engine_imm >= float(best_base["bcubed_f"])
    ok_free = engine_free >= agg_free - 0.01
    print()
    print(f"target IMM mode : engine BCubed F {engine_imm:.4f} >= best 3-face baseline {best_base['bcubed_f']:.4f} "
          f"({best_base['method']}, {best_base['note']}): {'PASS' if ok_imm else 'FAIL'} "
          f"(margin {engine_imm - best_base['bcubed_f']:+.4f})")
    print(f"target free mode: engine BCubed F {engine_free:.4f} >= oracle agglomerative {agg_free:.4f} - 0.01: "
          f"{'PASS' if ok_free else 'FAIL'} (margin {engine_free - agg_free + 0.01:+.4f})")
    print(f"speed: engine fit {table.iloc[0]['seconds']:.2f} s (IMM mode) vs sklearn agglomerative full tree "
          f"{t_agg:.2f} s (ratio {t_agg / table.iloc[0]['seconds']:.2f}x); calibration {t_calib:.2f} s; "
          f"total {time.perf_counter() - t0:.0f} s")
    return 0 if (ok_imm and ok_free) else 1


if __name__ == "__main__":
    sys.exit(main())
