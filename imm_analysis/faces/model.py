"""Load an insightface-style model pack from a local directory and run it with onnxruntime.

:class:`FaceModel` never downloads anything and never uses insightface's ``FaceAnalysis`` or its
model router: every ``.onnx`` file of the pack is opened with onnxruntime and given a role from
its input and output shapes (documented in :func:`classify_onnx`), with file-name patterns only
breaking ties between two files that fit the same role. Normalisation is read from the graph's
structure (does the input feed straight into a ``Sub``/``Mul``/``Div``/``Add`` with a constant?),
not guessed from node names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FaceModel", "PackError", "classify_onnx", "ROLES", "ARCFACE_TEMPLATE"]

logger = logging.getLogger(__name__)

DETECTOR = "detector"
RECOGNIZER = "recognizer"
GENDERAGE = "genderage"
LANDMARK_3D = "landmark_3d_68"
LANDMARK_2D = "landmark_2d_106"
#: Roles a pack file can play; the first two are required.
ROLES = (DETECTOR, RECOGNIZER, GENDERAGE, LANDMARK_3D, LANDMARK_2D)

# file-name patterns, used only to choose between two files whose shapes fit the same role
_NAME_HINTS = {
    DETECTOR: re.compile(r"det|scrfd|retina", re.I),
    RECOGNIZER: re.compile(r"w600k|glint|webface|ms1m|arcface|mobilefacenet|mbf|r18|r34|r50|r100|rec", re.I),
    GENDERAGE: re.compile(r"genderage|gender|age", re.I),
    LANDMARK_3D: re.compile(r"3d68|1k3d", re.I),
    LANDMARK_2D: re.compile(r"2d106|106", re.I),
}

#: Where insightface's ArcFace alignment puts the 5 keypoints in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


class PackError(FileNotFoundError):
    """A model pack that is missing, empty or lacks a required role."""


@dataclass(frozen=True)
class _OnnxInfo:
    path: Path
    inputs: tuple[tuple[Any, ...], ...]
    outputs: tuple[tuple[Any, ...], ...]


def _dim(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, np.integer)) and int(v) > 0 else None


def classify_onnx(inputs: Sequence[Sequence[Any]], outputs: Sequence[Sequence[Any]]) -> str | None:
    """Role of an ONNX model from its input and output shapes, or ``None`` when it fits no role.

    Rules (shapes as onnxruntime reports them, symbolic dimensions are strings or None):

    * detector (SCRFD with keypoints): one NCHW input with free or >= 128 spatial size; 9 or 15
      outputs whose last dimensions are 1 (scores), 4 (boxes) and 10 (5 keypoints), one of each per
      stride. SCRFD without keypoints (6 or 10 outputs) is recognised but refused later: alignment
      needs the keypoints.
    * recognizer: input 112x112, one output ``(batch, d)`` with ``d`` in 64..4096.
    * genderage: input 96x96, one output ``(batch, 3)``.
    * landmark_3d_68: input 192x192, one output ``(batch, 3309)``.
    * landmark_2d_106: input 192x192, one output ``(batch, 212)``.
    """
    if len(inputs) != 1 or len(inputs[0]) != 4:
        return None
    h, w = _dim(inputs[0][2]), _dim(inputs[0][3])
    last = [_dim(o[-1]) if len(o) else None for o in outputs]
    if len(outputs) in (6, 9, 10, 15) and (h is None or h >= 128) and set(last) <= {1, 4, 10}:
        return DETECTOR
    if len(outputs) != 1 or len(outputs[0]) != 2 or last[0] is None:
        return None
    d = last[0]
    if (h, w) == (112, 112) and 64 <= d <= 4096:
        return RECOGNIZER
    if (h, w) == (96, 96) and d == 3:
        return GENDERAGE
    if (h, w) == (192, 192) and d == 3309:
        return LANDMARK_3D
    if (h, w) == (192, 192) and d == 212:
        return LANDMARK_2D
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _resolve_providers(providers: Sequence[Any] | str | None) -> tuple[list[Any], bool]:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if providers is None:
        wanted: list[Any] = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
        wanted.append("CPUExecutionProvider")
        return wanted, False
    if isinstance(providers, str):
        providers = [providers]
    aliases = {"cuda": "CUDAExecutionProvider", "gpu": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
    out: list[Any] = []
    cuda_asked = False
    for p in providers:
        name = p[0] if isinstance(p, (tuple, list)) else p
        name = aliases.get(str(name).lower(), str(name))
        cuda_asked |= name.startswith("CUDA") or name.startswith("Tensorrt")
        if name not in available:
            msg = f"execution provider {name!r} is not available in this onnxruntime (available: {sorted(available)})"
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            logger.warning(msg)
            continue
        out.append((name, p[1]) if isinstance(p, (tuple, list)) and len(p) > 1 else name)
    if not any((q[0] if isinstance(q, tuple) else q) == "CPUExecutionProvider" for q in out):
        out.append("CPUExecutionProvider")
    return out, cuda_asked


def _embedded_normalisation(model) -> bool:
    """True when the graph input feeds straight into Sub/Mul/Div/Add with a constant (the model normalises itself)."""
    graph = model.graph
    consts = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    inp = graph.input[0].name
    for node in graph.node:
        if inp in node.input and node.op_type in ("Sub", "Mul", "Div", "Add"):
            others = [x for x in node.input if x != inp]
            if others and all(x in consts for x in others):
                return True
    return False


def _make_batch_dynamic(model) -> bool:
    """Turn a model fixed at batch 1 into one with a free batch axis; True when something changed."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    changed = False
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == 1:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
            changed = True
    if not changed:
        return False
    inits = {i.name: i for i in graph.initializer}
    const_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        name = node.input[1]
        if name in inits:
            arr = numpy_helper.to_array(inits[name]).copy()
            if arr.ndim == 1 and len(arr) and arr[0] == 1:
                arr[0] = 0  # 0 = keep the input's batch size
                inits[name].CopyFrom(numpy_helper.from_array(arr, name))
        elif name in const_nodes:
            for attr in const_nodes[name].attribute:
                if attr.name == "value":
                    arr = numpy_helper.to_array(attr.t).copy()
                    if arr.ndim == 1 and len(arr) and arr[0] == 1:
                        arr[0] = 0
                        attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
    for value in graph.value_info:  # stale intermediate shapes would fix the batch again
        dims = value.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == 1:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    onnx.checker.check_model(model)
    return True


class _Session:
    """An onnxruntime session with its input name, shape and normalisation.

    A graph exported for one image at a time (batch axis fixed at 1) is made to take any batch
    in memory (:func:`_make_batch_dynamic`) and kept so only when a batch of two reproduces two
    single runs; ``layouts`` then says how each output's rows split into images (see
    :func:`_batch_layouts`). Otherwise the original graph runs one image per call
    (``layouts`` is None, ``max_batch`` 1).
    """

    def __init__(self, path: Path, role: str, providers: list[Any], options: Any) -> None:
        import onnx
        import onnxruntime as ort

        self.path = path
        self.role = role
        proto = onnx.load(str(path))
        self.embedded_norm = _embedded_normalisation(proto)
        fixed_batch = proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
        self.session = ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
        self.layouts: list[tuple[str, int]] | None = None
        if fixed_batch and _make_batch_dynamic(proto):
            batched = ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
            self.layouts = _batch_layouts(batched, self.session)
            if self.layouts is not None:
                self.session = batched
            else:
                log = logger.info if role == DETECTOR else logger.warning  # detectors ran one image at a time anyway
                log("%s: batching changes its outputs; running it one image at a time", path.name)
        elif not fixed_batch:
            self.layouts = _batch_layouts(self.session, self.session)
        self.max_batch = None if self.layouts is not None else 1  # None = any batch size
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: blob})

    def run_batched(self, blob: np.ndarray, batch_size: int) -> np.ndarray:
        """The first output for every row of ``blob``, ``batch_size`` rows per call (image after image)."""
        size = max(1, batch_size) if self.layouts is not None and self.layouts[0][0] == "image-major" else 1
        outs = [self.run(blob[i : i + size])[0] for i in range(0, len(blob), size)]
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


class FaceModel:
    """A local insightface-style model pack: detector + recognizer, optional attribute and landmark models.

    Parameters
    ----------
    pack : path-like
        Directory holding the pack's ``.onnx`` files, e.g. insightface's ``buffalo_l``
        (``det_10g.onnx``, ``w600k_r50.onnx``, ``genderage.onnx``, ``2d106det.onnx``,
        ``1k3d68.onnx``) or ``../shared/models/mbf128_det500m`` (``det_500m.onnx``,
        ``mobilefacenet_128d.onnx``). Nothing is ever downloaded.
    det_size : int or (int, int), default=640
        Detector input size (width, height); images are resized to fit inside, keeping their aspect.
    det_thresh : float, default=0.5
        Minimum detector score of a face.
    providers : list of str, optional
        onnxruntime execution providers (``"cuda"``/``"cpu"`` aliases accepted). Default: CUDA when
        available, then CPU. A warning is issued when CUDA is asked for but not used.
    threads : int, optional
        Threads per onnxruntime session (``intra_op_num_threads``); default: onnxruntime's choice.
    roles : mapping, optional
        Explicit ``{role: file name}`` for files whose role cannot be read from their shapes.
    rec_norm : (float, float), optional
        Recognizer input ``(mean, std)`` on 0..255 RGB pixels. Default: ``(0, 1)`` when the graph
        normalises its input itself, else ``(127.5, 127.5)`` (checked on the shared MobileFaceNet:
        same-person cosine 0.63 vs 0.01 for different people on LFW crops).
    det_canvas : {"fit", "square"}, default="fit"
        The detector's input canvas. ``"square"`` pads every image to ``det_size`` as insightface's
        ``SCRFD.detect`` does. ``"fit"`` pads only up to the next multiple of the detector's largest
        stride (32), so a 3:4 portrait runs the detector on 480x640 instead of 640x640: a quarter
        less detector work for the same image scale. Faces cut by the image's right or bottom edge
        may get slightly different scores, since the detector sees less black padding beyond the
        edge (on ``faces/photos``: the same faces in 63 of 64 photos, boxes within 0.2% of the
        image size, one extra edge face at score 0.52 in the last). A detector exported at one
        fixed input size always gets that size.

    Attributes
    ----------
    name : str
        The pack directory's name.
    files : dict
        ``{role: Path}`` of the files in use.
    ignored_files : list of Path
        ``.onnx`` files that fit no role (or a role already taken).
    providers : list of str
        Execution providers actually in use (from ``session.get_providers()``).
    embedding_dim : int
    model_id : str
        ``"<pack name>:<file stem>@<sha256[:10]>+..."`` for the detector, recognizer and any
        optional model in use; embeddings from different ids are never mixed.

    Examples
    --------
    >>> from imm_analysis import FaceModel
    >>> model = FaceModel("../shared/models/mbf128_det500m")  # doctest: +SKIP
    >>> model.embedding_dim, model.providers  # doctest: +SKIP
    (128, ['CPUExecutionProvider'])
    """

    def __init__(
        self,
        pack: str | os.PathLike[str],
        *,
        det_size: int | tuple[int, int] = 640,
        det_thresh: float = 0.5,
        providers: Sequence[Any] | str | None = None,
        threads: int | None = None,
        roles: Mapping[str, str] | None = None,
        rec_norm: tuple[float, float] | None = None,
        det_canvas: str = "fit",
    ) -> None:
        import onnxruntime as ort

        self.pack = Path(pack).expanduser()
        self.name = self.pack.name
        self.det_size = (int(det_size), int(det_size)) if np.isscalar(det_size) else tuple(int(v) for v in det_size)
        if not 0.0 < float(det_thresh) < 1.0:
            raise ValueError(f"det_thresh must be in (0, 1), got {det_thresh!r}")
        self.det_thresh = float(det_thresh)
        if det_canvas not in ("fit", "square"):
            raise ValueError(f"det_canvas must be 'fit' or 'square', got {det_canvas!r}")
        self.det_canvas = det_canvas
        self.nms_thresh = 0.4
        self.threads = threads
        files = self._find_files()
        provider_list, cuda_asked = _resolve_providers(providers)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # no busy-waiting: decoding threads (and other processes) need the cores between runs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        chosen, self.ignored_files = self._assign_roles(files, roles or {}, provider_list, options)
        self.files = {role: info.path for role, info in chosen.items()}
        self._sessions: dict[str, _Session] = {}
        for role, info in chosen.items():
            self._sessions[role] = _Session(info.path, role, provider_list, options)
        det = self._sessions[DETECTOR]
        fixed = det.input_shape[2:]
        self._det_fixed: tuple[int, int] | None = None
        if len(fixed) == 2 and all(isinstance(d, int) and d > 0 for d in fixed):
            self._det_fixed = (int(fixed[1]), int(fixed[0]))  # (w, h) of a graph exported at one size
            if self._det_fixed != self.det_size:
                logger.warning("%s takes only %dx%d inputs; det_size=%s is replaced by it",
                               det.path.name, *self._det_fixed, self.det_size)
                self.det_size = self._det_fixed
        n_out = len(det.output_names)
        if n_out in (6, 10):
            raise PackError(
                f"{det.path}: this detector has no keypoint outputs ({n_out} outputs); "
                "alignment needs SCRFD with 5 keypoints (*_kps / det_*g.onnx)"
            )
        self._fmc = n_out // 3
        self._strides = (8, 16, 32) if self._fmc == 3 else (8, 16, 32, 64, 128)
        self._anchors = 2 if self._fmc == 3 else 1
        self._det_groups = self._group_detector_outputs()
        rec = self._sessions[RECOGNIZER]
        if rec_norm is None:
            rec_norm = (0.0, 1.0) if rec.embedded_norm else (127.5, 127.5)
        self.rec_mean, self.rec_std = float(rec_norm[0]), float(rec_norm[1])
        self.embedding_dim = int(rec.session.get_outputs()[0].shape[-1])
        used: list[str] = []
        for s in self._sessions.values():
            for p in s.session.get_providers():
                if p not in used:
                    used.append(p)
        self.providers = used
        if cuda_asked and "CUDAExecutionProvider" not in used:
            msg = f"CUDA was requested but onnxruntime runs {used} (install onnxruntime-gpu and check the GPU drivers)"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            logger.warning(msg)
        parts = [f"{self.files[r].stem}@{_sha256(self.files[r])[:10]}" for r in ROLES if r in self.files]
        self.model_id = f"{self.name}:" + "+".join(parts)
        self._meanshape68: np.ndarray | None = None

    # ------------------------------------------------------------------ discovery
    def _find_files(self) -> list[Path]:
        if not self.pack.exists():
            raise PackError(f"model pack {self.pack} does not exist (pass a local pack directory; nothing is downloaded)")
        if not self.pack.is_dir():
            raise PackError(f"model pack {self.pack} is not a directory")
        files = sorted(self.pack.glob("*.onnx"))
        if not files:  # a zip unpacked into pack/pack/
            files = sorted(self.pack.glob("*/*.onnx"))
        if not files:
            found = sorted(p.name for p in self.pack.iterdir())
            raise PackError(
                f"model pack {self.pack} has no .onnx files: missing roles detector, recognizer; files found: {found or 'none'}"
            )
        return files

    def _assign_roles(self, files, explicit, providers, options):
        import onnxruntime as ort

        infos: dict[Path, _OnnxInfo] = {}
        unreadable: list[str] = []
        for f in files:
            try:
                s = ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
                unreadable.append(f"{f.name} ({type(exc).__name__})")
                logger.warning("%s: not a loadable ONNX model: %s", f, exc)
                continue
            infos[f] = _OnnxInfo(
                f, tuple(tuple(i.shape) for i in s.get_inputs()), tuple(tuple(o.shape) for o in s.get_outputs())
            )
        by_name = {f.name: f for f in files}
        chosen: dict[str, _OnnxInfo] = {}
        for role, fname in explicit.items():
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; roles are {ROLES}")
            path = by_name.get(fname) or by_name.get(Path(fname).name)
            if path is None or path not in infos:
                raise PackError(f"roles[{role!r}] = {fname!r} is not a loadable file of {self.pack}; files: {sorted(by_name)}")
            chosen[role] = infos[path]
        candidates: dict[str, list[_OnnxInfo]] = {}
        for info in infos.values():
            if any(c.path == info.path for c in chosen.values()):
                continue
            role = classify_onnx(info.inputs, info.outputs)
            if role is not None and role not in chosen:
                candidates.setdefault(role, []).append(info)
        for role, cands in candidates.items():
            if len(cands) > 1:
                hinted = [c for c in cands if _NAME_HINTS[role].search(c.path.name)]
                if len(hinted) != 1:
                    raise PackError(
                        f"model pack {self.pack}: several files fit the {role} role "
                        f"({[c.path.name for c in cands]}); choose one with roles={{{role!r}: ...}}"
                    )
                cands = hinted
            chosen[role] = cands[0]
        missing = [r for r in (DETECTOR, RECOGNIZER) if r not in chosen]
        if missing:
            listing = [f"{p.name} -> {classify_onnx(i.inputs, i.outputs) or 'no role'}" for p, i in infos.items()]
            raise PackError(
                f"model pack {self.pack} is incomplete: missing {' and '.join(missing)}; "
                f"files found: {listing + unreadable or 'none'}"
            )
        used = {i.path for i in chosen.values()}
        return chosen, [f for f in files if f not in used]

    def _group_detector_outputs(self) -> tuple[list[int], list[int], list[int]]:
        """Output indices of scores, boxes and keypoints per stride, checked on a blank image."""
        det = self._sessions[DETECTOR]
        w, h = self.det_size
        outs = det.run(np.zeros((1, 3, h, w), np.float32))
        groups: dict[int, list[int]] = {1: [], 4: [], 10: []}
        for i, o in enumerate(outs):
            groups.setdefault(o.shape[-1], []).append(i)
        sized = []
        for key in (1, 4, 10):
            idx = sorted(groups[key], key=lambda i: -outs[i].reshape(-1, key).shape[0])  # stride 8 first
            for j, s in zip(idx, self._strides, strict=True):
                expected = (h // s) * (w // s) * self._anchors
                if outs[j].reshape(-1, key).shape[0] != expected:
                    raise PackError(f"{det.path}: output {det.output_names[j]} does not match an SCRFD stride-{s} head")
            sized.append(idx)
        return sized[0], sized[1], sized[2]

    # ------------------------------------------------------------------ properties
    @property
    def has_attributes(self) -> bool:
        """Whether the pack has an age and gender model."""
        return GENDERAGE in self._sessions

    @property
    def has_landmarks_3d(self) -> bool:
        """Whether the pack has the 68-point 3D landmark model (then pose comes from it)."""
        return LANDMARK_3D in self._sessions

    def __repr__(self) -> str:
        roles = ", ".join(f"{r}={p.name}" for r, p in self.files.items())
        return f"FaceModel({self.name!r}, {roles}, dim={self.embedding_dim}, providers={self.providers})"

    # ------------------------------------------------------------------ detection
    def detector_input(
        self, rgb: np.ndarray, *, det_size: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, float, tuple[int, int]]:
        """The detector's input for an RGB image: ``(blob, scale, (w, h))``.

        The image is resized to fit inside ``det_size`` (keeping its aspect), put in the top-left
        corner of a black canvas and normalised. The canvas is :attr:`det_size` itself with
        ``det_canvas="square"``; with ``det_canvas="fit"`` it is the smallest multiple of the
        detector's largest stride that holds the resized image (a 3:4 portrait at 640 runs the
        detector on 480x640, a quarter less work). An explicit ``det_size`` is always used as given.
        Thread-safe and free of onnxruntime, so loader threads can prepare the next images while
        the detector runs (see :meth:`detect`).
        """
        import cv2

        w, h = det_size or self.det_size
        ih, iw = rgb.shape[:2]
        scale = min(w / iw, h / ih)
        nw, nh = max(1, int(round(iw * scale))), max(1, int(round(ih * scale)))
        if det_size is None and self.det_canvas == "fit" and self._det_fixed is None:
            m = self._strides[-1]
            w, h = min(w, -(-nw // m) * m), min(h, -(-nh // m) * m)
        elif det_size is None and self._det_fixed is not None:
            w, h = self._det_fixed
        resized = rgb if (nw, nh) == (iw, ih) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if (nw, nh) != (w, h):  # black padding (right and bottom)
            resized = cv2.copyMakeBorder(resized, 0, h - nh, 0, w - nw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        # (pixel - 127.5) / 128 as float32 NCHW, in one pass of OpenCV's (scale * (image - mean))
        blob = cv2.dnn.blobFromImage(resized, 1 / 128.0, None, (127.5, 127.5, 127.5), swapRB=False, crop=False)
        return blob, scale, (w, h)

    def detect(
        self,
        rgb: np.ndarray | None,
        *,
        det_size: tuple[int, int] | None = None,
        prepared: tuple[np.ndarray, float, tuple[int, int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detect faces in an RGB image.

        Parameters
        ----------
        rgb : ndarray of uint8, shape (h, w, 3)
            The image (may be None when ``prepared`` is given).
        det_size : (int, int), optional
            Detector input size; default :attr:`det_size`.
        prepared : tuple, optional
            :meth:`detector_input` of the image, when already made (e.g. in a loader thread).

        Returns
        -------
        boxes : ndarray of float32, shape (n, 5)
            ``x1, y1, x2, y2, score`` in image pixels, sorted by score (descending).
        kps : ndarray of float32, shape (n, 5, 2)
            The 5 keypoints (eyes, nose, mouth corners).
        """
        blob, scale, (w, h) = prepared if prepared is not None else self.detector_input(rgb, det_size=det_size)
        return self._decode_detections(self._sessions[DETECTOR].run(blob), scale, w, h)

    def detect_many(
        self, prepared: Sequence[tuple[np.ndarray, float, tuple[int, int]]], *, batch_size: int = 16
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`detect` on many prepared inputs, inputs of one canvas size run in batches.

        Parameters
        ----------
        prepared : sequence of tuple
            :meth:`detector_input` of each image.
        batch_size : int, default=16
            Images per detector call. A detector exported for one image at a time is patched in
            memory for any batch size and checked at load time against single-image outputs
            (bit-identical on the shared ``det_500m``); when the patch fails, images run one by one.

        Returns
        -------
        list of (boxes, kps)
            As :meth:`detect`, in the order of ``prepared``.
        """
        det = self._sessions[DETECTOR]
        if det.layouts is None or batch_size <= 1:
            return [self.detect(None, prepared=pr) for pr in prepared]
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(prepared)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, (_, _, wh) in enumerate(prepared):
            by_size.setdefault(tuple(wh), []).append(i)
        for (w, h), idx in by_size.items():
            for lo in range(0, len(idx), batch_size):
                part = idx[lo : lo + batch_size]
                if len(part) == 1:
                    out[part[0]] = self.detect(None, prepared=prepared[part[0]])
                    continue
                outs = det.run(np.concatenate([prepared[i][0] for i in part]))
                per_image = [_split_batch(o, len(part), layout) for o, layout in zip(outs, det.layouts, strict=True)]
                for n, i in enumerate(part):
                    out[i] = self._decode_detections([o[n] for o in per_image], prepared[i][1], w, h)
        return out  # type: ignore[return-value]

    def _decode_detections(self, outs: list[np.ndarray], scale: float, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes, scores and keypoints of one image from the detector's per-stride outputs (SCRFD decoding)."""
        s_idx, b_idx, k_idx = self._det_groups if (w, h) == self.det_size else self._groups_for(outs, w, h)
        boxes, points, scores = [], [], []
        for si, bi, ki, stride in zip(s_idx, b_idx, k_idx, self._strides, strict=True):
            sc = outs[si].reshape(-1)
            keep = np.where(sc >= self.det_thresh)[0]
            if not len(keep):
                continue
            centers = _anchor_centers(h // stride, w // stride, stride, self._anchors)[keep]
            d = outs[bi].reshape(-1, 4)[keep] * stride
            boxes.append(np.stack([centers[:, 0] - d[:, 0], centers[:, 1] - d[:, 1],
                                   centers[:, 0] + d[:, 2], centers[:, 1] + d[:, 3]], axis=1))
            k = outs[ki].reshape(-1, 10)[keep] * stride
            points.append(k.reshape(-1, 5, 2) + centers[:, None, :])
            scores.append(sc[keep])
        if not boxes:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        b = np.concatenate(boxes) / scale
        k = np.concatenate(points) / scale
        s = np.concatenate(scores)
        order = _nms(b, s, self.nms_thresh)
        dets = np.hstack([b[order], s[order, None]]).astype(np.float32)
        return dets, k[order].astype(np.float32)

    def _groups_for(self, outs, w, h):
        groups: dict[int, list[int]] = {1: [], 4: [], 10: []}
        for i, o in enumerate(outs):
            groups.setdefault(o.shape[-1], []).append(i)
        return tuple(sorted(groups[key], key=lambda i: -outs[i].size) for key in (1, 4, 10))

    # ------------------------------------------------------------------ alignment and embedding
    @staticmethod
    def align(rgb: np.ndarray, kps: np.ndarray, size: int = 112) -> np.ndarray:
        """Warp each face to insightface's ArcFace 112x112 template (similarity transform on the 5 keypoints).

        Returns an array of shape ``(n, size, size, 3)`` uint8.
        """
        import cv2

        kps = np.asarray(kps, dtype=np.float64).reshape(-1, 5, 2)
        dst = ARCFACE_TEMPLATE * (size / 112.0)
        out = np.empty((len(kps), size, size, 3), np.uint8)
        for i, k in enumerate(kps):
            M = _similarity(k, dst)
            out[i] = cv2.warpAffine(rgb, M, (size, size), borderValue=0.0)
        return out

    def embed(self, crops: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 embeddings of aligned RGB 112x112 crops, run in batches."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:3] != (112, 112):
            raise ValueError(f"crops must have shape (n, 112, 112, 3), got {crops.shape}")
        if not len(crops):
            return np.zeros((0, self.embedding_dim), np.float32)
        rec = self._sessions[RECOGNIZER]
        out = []
        step = max(1, int(batch_size))
        for i in range(0, len(crops), step):
            blob = crops[i : i + step].astype(np.float32)
            if self.rec_mean:
                blob -= self.rec_mean
            if self.rec_std != 1.0:
                blob /= self.rec_std
            out.append(rec.run_batched(np.ascontiguousarray(blob.transpose(0, 3, 1, 2)), step))
        emb = np.concatenate(out).astype(np.float32, copy=False)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    # ------------------------------------------------------------------ optional models
    def _box_crops(self, rgb: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, list[np.ndarray]]:
        import cv2

        crops = np.empty((len(boxes), size, size, 3), np.float32)
        mats = []
        for i, b in enumerate(boxes):
            w, h = b[2] - b[0], b[3] - b[1]
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            s = size / (max(w, h) * 1.5)
            M = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float64)
            crops[i] = cv2.warpAffine(rgb, M, (size, size), borderValue=0.0)
            mats.append(M)
        return crops, mats

    def _blob(self, role: str, crops: np.ndarray) -> np.ndarray:
        mean, std = (0.0, 1.0) if self._sessions[role].embedded_norm else (127.5, 128.0)
        return np.ascontiguousarray(((crops - mean) / std).transpose(0, 3, 1, 2).astype(np.float32))

    def attributes(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
        """``(n, 2)`` array of age (years) and gender (0 female, 1 male) when the pack has genderage, else None."""
        if GENDERAGE not in self._sessions or not len(boxes):
            return None
        crops, _ = self._box_crops(rgb, boxes, 96)
        pred = self._sessions[GENDERAGE].run_batched(self._blob(GENDERAGE, crops), 64)
        return np.stack([pred[:, 2] * 100.0, np.argmax(pred[:, :2], axis=1).astype(np.float64)], axis=1)

    def pose_3d(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
        """``(n, 3)`` pitch, roll, yaw from the 68-point 3D landmark model when the pack has one, else None."""
        if LANDMARK_3D not in self._sessions or not len(boxes):
            return None
        from imm_analysis.faces.pose import pose_from_points

        if self._meanshape68 is None:
            import pickle

            import insightface

            path = Path(insightface.__file__).parent / "data" / "objects" / "meanshape_68.pkl"
            with open(path, "rb") as fh:  # a file shipped inside the installed insightface package
                self._meanshape68 = np.asarray(pickle.load(fh), dtype=np.float64)
        crops, mats = self._box_crops(rgb, boxes, 192)
        pred = self._sessions[LANDMARK_3D].run_batched(self._blob(LANDMARK_3D, crops), 64)
        out = np.full((len(boxes), 3), np.nan)
        for i, (p, M) in enumerate(zip(pred, mats, strict=True)):
            pts = p.reshape(-1, 3)[-68:].astype(np.float64)
            pts[:, :2] = (pts[:, :2] + 1) * 96
            pts[:, 2] *= 96
            IM = cv2_invert(M)
            xy = pts[:, :2] @ IM[:, :2].T + IM[:, 2]
            out[i] = pose_from_points(self._meanshape68, xy)
        return out


def cv2_invert(M: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    A = np.vstack([M, [0, 0, 1]])
    return np.linalg.inv(A)[:2]


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping src points onto dst, as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    R = u @ np.diag(d) @ vt
    var = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var if var > 0 else 1.0
    t = mu_d - scale * R @ mu_s
    return np.hstack([scale * R, t[:, None]])


def _split_batch(out: np.ndarray, n: int, layout: tuple[str, int]) -> np.ndarray:
    """A batched output as ``(n, rows, k)``: one block of rows per image.

    ``("image-major", _)``: image after image, ``(n, ...)`` or ``(n * rows, k)``.
    ``("interleaved", a)``: the graph transposed NCHW to (H, W, N, C) before flattening, so the
    rows run location, image, anchor (``a`` anchors per location), as in insightface's SCRFD exports.
    """
    kind, anchors = layout
    k = out.shape[-1]
    if kind == "interleaved":
        return out.reshape(-1, n, anchors, k).transpose(1, 0, 2, 3).reshape(n, -1, k)
    return out.reshape(n, -1, k)


_LAYOUTS = (("image-major", 1), *(("interleaved", a) for a in (1, 2, 3, 4)))


def _batch_layouts(batched: Any, single: Any) -> list[tuple[str, int]] | None:
    """The layout (:func:`_split_batch`) of each output of ``batched`` that reproduces ``single``.

    A batch of two random inputs through ``batched`` is compared with the same two inputs run
    one at a time through ``single``; None when an output matches no layout (or cannot run).
    """
    inp = single.get_inputs()[0]
    shape = [2] + [int(d) if isinstance(d, int) and d > 0 else 64 for d in inp.shape[1:]]  # 64: a free size, /32
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    try:
        outs = batched.run(None, {inp.name: x})
        ones = [single.run(None, {inp.name: x[i : i + 1]}) for i in range(2)]
    except Exception as exc:  # noqa: BLE001 - batching is an optimisation; one image per call still works
        logger.info("no batched runs (%s: %s)", type(exc).__name__, exc)
        return None
    layouts = []
    for j, out in enumerate(outs):
        want = np.stack([o[j].reshape(-1, o[j].shape[-1]) for o in ones])
        for layout in _LAYOUTS:
            if out.size == want.size and np.allclose(_split_batch(out, 2, layout), want, atol=1e-4, rtol=1e-3):
                layouts.append(layout)
                break
        else:
            return None
    return layouts


_CENTER_CACHE: dict[tuple[int, int, int, int], np.ndarray] = {}


def _anchor_centers(fh: int, fw: int, stride: int, anchors: int) -> np.ndarray:
    key = (fh, fw, stride, anchors)
    c = _CENTER_CACHE.get(key)
    if c is None:
        ys, xs = np.mgrid[:fh, :fw]
        c = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
        if anchors > 1:
            c = np.repeat(c, anchors, axis=0)
        _CENTER_CACHE[key] = c
    return c


def _nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= thresh]
    return np.asarray(keep, dtype=np.int64)
