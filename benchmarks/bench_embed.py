"""Faces per second of the local pipeline against its limit and against insightface's own loop.

Measured in one process, on the same model pack and the same files:

* ``embed_images`` on ``faces/photos`` (decode + detect + align + embed, no cache) and
  ``embed_crops`` on ``faces/lfw_dev`` (aligned crops; with and without the detector pass);
* the limit: raw onnxruntime sessions of the same detector and recognizer on pre-decoded,
  pre-resized detector inputs and pre-aligned, pre-normalised crops, recognizer batched;
* the baseline: a plain loop over insightface's ``FaceAnalysis.get`` (``FaceAnalysis`` built
  offline on the pack directory itself, which insightface 2.x accepts as ``name``: nothing is
  downloaded), with ``cv2.imread`` per file as users write it. For crops the baseline is
  insightface's per-face recognizer call (``ArcFaceONNX.get_feat`` one crop at a time), since
  ``FaceAnalysis`` has no crop mode.

Targets (2 cores): pipeline >= 85% of the limit, >= 2x the FaceAnalysis loop.

Usage::

    python benchmarks/bench_embed.py                 # all photos, all 3,849 LFW crops
    python benchmarks/bench_embed.py --n-crops 800   # a shorter run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _timeit(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def limit_images(model, rgbs: list[np.ndarray], batch_size: int) -> tuple[float, int]:
    """Raw sessions: detector on pre-built blobs, recognizer on pre-aligned normalised crops, batched."""
    import cv2

    det = model._sessions["detector"]
    rec = model._sessions["recognizer"]
    w, h = model.det_size
    blobs, crops = [], []
    for rgb in rgbs:
        ih, iw = rgb.shape[:2]
        s = min(w / iw, h / ih)
        canvas = np.zeros((h, w, 3), np.float32)
        canvas[: round(ih * s), : round(iw * s)] = cv2.resize(rgb, (round(iw * s), round(ih * s)))
        blobs.append(np.ascontiguousarray(((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]))
        _, kps = model.detect(rgb)
        crops.append(model.align(rgb, kps))
    crops = np.concatenate(crops)
    rec_blob = np.ascontiguousarray(((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))

    def run() -> None:
        for b in blobs:
            det.run(b)
        rec.run_batched(rec_blob, batch_size)

    t, _ = _timeit(run)
    return t, len(crops)


def limit_crops(model, crops: np.ndarray, batch_size: int, detect: bool) -> float:
    import cv2

    det = model._sessions["detector"]
    rec = model._sessions["recognizer"]
    rec_blob = np.ascontiguousarray(((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))
    det_blobs = []
    if detect:
        for c in crops:
            canvas = cv2.copyMakeBorder(c, 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=(0, 0, 0)).astype(np.float32)
            det_blobs.append(np.ascontiguousarray(((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]))

    def run() -> None:
        for b in det_blobs:
            det.run(b)
        rec.run_batched(rec_blob, batch_size)

    t, _ = _timeit(run)
    return t


def baseline_images(pack: Path, paths: list[Path], det_size: int) -> tuple[float, int]:
    import cv2
    from insightface.app import FaceAnalysis

    fa = FaceAnalysis(name=str(pack.resolve()), providers=["CPUExecutionProvider"])  # a local dir: no download
    fa.prepare(ctx_id=-1, det_size=(det_size, det_size))

    def run() -> int:
        n = 0
        for p in paths:
            img = cv2.imread(str(p))
            n += len(fa.get(img))
        return n

    t, n = _timeit(run)
    return t, int(n)


def baseline_crops(pack: Path, paths: list[Path]) -> float:
    import cv2
    from insightface.app import FaceAnalysis

    fa = FaceAnalysis(name=str(pack.resolve()), providers=["CPUExecutionProvider"])
    rec = fa.models["recognition"]

    def run() -> None:
        for p in paths:
            rec.get_feat(cv2.imread(str(p)))

    t, _ = _timeit(run)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path, default=SHARED / "models" / "mbf128_det500m")
    ap.add_argument("--photos", type=Path, default=SHARED / "faces" / "photos")
    ap.add_argument("--lfw", type=Path, default=SHARED / "faces" / "lfw_dev")
    ap.add_argument("--n-crops", type=int, default=0, help="LFW crops to use (0 = all)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--det-size", type=int, default=640)
    args = ap.parse_args()

    import onnxruntime as ort

    from imm_analysis.faces.embed import embed_crops, embed_images
    from imm_analysis.faces.model import FaceModel
    from imm_analysis.io.media import read_image

    if not args.pack.is_dir():
        raise SystemExit(f"needs the model pack {args.pack}")
    model = FaceModel(args.pack, det_size=args.det_size)
    print(f"model {model.model_id} providers={model.providers} onnxruntime {ort.__version__}")
    photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    crops_paths = sorted(args.lfw.rglob("*.jpg"))
    if args.n_crops:
        crops_paths = crops_paths[: args.n_crops]

    # warm-up (session initialisation, thread pools)
    embed_images(photos[:2], model, progress=False)
    embed_crops(crops_paths[:8], model, progress=False)

    print(f"\n== embed_images on {len(photos)} photos ({args.photos})")
    t_pipe, res = _timeit(lambda: embed_images(photos, model, progress=False, batch_size=args.batch_size))
    n = len(res.figures)
    rgbs = [read_image(p)[0] for p in photos]
    t_lim, n_lim = limit_images(model, rgbs, args.batch_size)
    t_base, n_base = baseline_images(args.pack, photos, args.det_size)
    _report(n, t_pipe, n_lim, t_lim, n_base, t_base, "FaceAnalysis.get loop")

    print(f"\n== embed_crops on {len(crops_paths)} aligned LFW crops ({args.lfw})")
    crops = np.stack([read_image(p)[0] for p in crops_paths])
    t_base_c = baseline_crops(args.pack, crops_paths)
    for detect in (False, True):
        t_pipe_c, res_c = _timeit(
            lambda d=detect: embed_crops(crops_paths, model, detect=d, progress=False, batch_size=64)
        )
        t_lim_c = limit_crops(model, crops, 64, detect)
        print(f"-- detect={detect}")
        _report(len(res_c.figures), t_pipe_c, len(crops), t_lim_c, len(crops), t_base_c, "ArcFaceONNX.get_feat loop")


def _report(n, t, n_lim, t_lim, n_base, t_base, base_name) -> None:
    fps, fps_lim, fps_base = n / t, n_lim / t_lim, n_base / t_base
    print(f"pipeline : {n:5d} faces in {t:7.2f} s = {fps:7.1f} faces/s")
    print(f"limit    : {n_lim:5d} faces in {t_lim:7.2f} s = {fps_lim:7.1f} faces/s (raw onnxruntime, batched)")
    print(f"baseline : {n_base:5d} faces in {t_base:7.2f} s = {fps_base:7.1f} faces/s ({base_name})")
    print(f"ratio vs limit    : {fps / fps_lim:5.2f}  (target >= 0.85)")
    print(f"ratio vs baseline : {fps / fps_base:5.2f}  (target >= 2.0)")


if __name__ == "__main__":
    main()
