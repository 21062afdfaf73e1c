"""Load an insightface-style model pack from a local directory and run it with onnxruntime.

:class:`FaceModel` never downloads anything and never uses insightface's ``FaceAnalysis`` or its
model router. Its parts live in modules of their own: pack discovery and roles
(:mod:`~imm_analysis.faces.pack`), onnxruntime sessions and batching layouts
(:mod:`~imm_analysis.faces.sessions`), the SCRFD decoder (:mod:`~imm_analysis.faces.scrfd`) and
alignment (:mod:`~imm_analysis.faces.align`). :meth:`FaceModel.analyse` is the one call from
decoded images to face records (:mod:`~imm_analysis.faces.analyse`). The names below stay
importable from here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imm_analysis._optional import require
from imm_analysis.faces.align import ARCFACE_TEMPLATE, _similarity, align, box_crops, cv2_invert
from imm_analysis.faces.pack import (
    DETECTOR,
    GENDERAGE,
    LANDMARK_2D,
    LANDMARK_3D,
    RECOGNIZER,
    ROLES,
    PackError,
    assign_roles,
    classify_onnx,
    find_pack_files,
)
from imm_analysis.faces.scrfd import _anchor_centers, _nms, decode_scrfd, group_outputs, strides_for
from imm_analysis.faces.sessions import (
    _batch_layouts,
    _resolve_providers,
    _Session,
    _split_batch,
    session_options,
)
from imm_analysis.io.media import file_sha256

if TYPE_CHECKING:
    from imm_analysis.faces.analyse import Decoded, FaceRecords

__all__ = ["FaceModel", "PackError", "classify_onnx", "ROLES", "ARCFACE_TEMPLATE"]

# kept importable from here (they moved to the modules named above)
_REEXPORTED = (DETECTOR, GENDERAGE, LANDMARK_2D, LANDMARK_3D, RECOGNIZER, _similarity, cv2_invert,
               _anchor_centers, _nms, _batch_layouts, _split_batch)

logger = logging.getLogger(__name__)


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
        require("onnxruntime", purpose="FaceModel")
        self.pack = Path(pack).expanduser()
        self.name = self.pack.name
        size: Any = (det_size, det_size) if np.isscalar(det_size) else tuple(det_size)  # type: ignore[arg-type]
        self.det_size: tuple[int, int] = (int(size[0]), int(size[1]))
        if not 0.0 < float(det_thresh) < 1.0:
            raise ValueError(f"det_thresh must be in (0, 1), got {det_thresh!r}")
        self.det_thresh = float(det_thresh)
        if det_canvas not in ("fit", "square"):
            raise ValueError(f"det_canvas must be 'fit' or 'square', got {det_canvas!r}")
        self.det_canvas = det_canvas
        self.nms_thresh = 0.4
        self.threads = threads
        files = find_pack_files(self.pack)
        provider_list, cuda_asked = _resolve_providers(providers)
        options = session_options(threads)
        chosen, self.ignored_files = assign_roles(self.pack, files, roles or {}, options)
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
        self._strides, self._anchors = strides_for(n_out)
        self._fmc = len(self._strides)
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
        parts = [f"{self.files[r].stem}@{file_sha256(self.files[r], max_bytes=None)[:10]}" for r in ROLES if r in self.files]
        self.model_id = f"{self.name}:" + "+".join(parts)
        self._meanshape68: np.ndarray | None = None

    def _group_detector_outputs(self) -> tuple[list[int], list[int], list[int]]:
        """Output indices of scores, boxes and keypoints per stride, checked on a blank image."""
        det = self._sessions[DETECTOR]
        w, h = self.det_size
        outs = det.run(np.zeros((1, 3, h, w), np.float32))
        groups = group_outputs(outs)
        for key, idx in zip((1, 4, 10), groups, strict=True):
            for j, s in zip(idx, self._strides, strict=True):
                expected = (h // s) * (w // s) * self._anchors
                if outs[j].reshape(-1, key).shape[0] != expected:
                    raise PackError(f"{det.path}: output {det.output_names[j]} does not match an SCRFD stride-{s} head")
        return groups

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

    # ------------------------------------------------------------------ the one call
    def analyse(self, images: Sequence[np.ndarray | Decoded]) -> list[FaceRecords]:
        """Detect, align and describe every face of a batch of decoded images.

        The one route from pixels to face records: detection (SCRFD), alignment to the ArcFace
        template, pose (68-point 3D landmarks when the pack has them, else the 5 keypoints) and
        age/gender (when the pack has them). Recognition (:meth:`embed`) and scoring come after.

        Parameters
        ----------
        images : sequence of ndarray or Decoded
            RGB ``uint8`` images, or :class:`~imm_analysis.faces.analyse.Decoded` images (a
            reduced JPEG decode with a way to decode finer, and a prepared detector input).

        Returns
        -------
        list of FaceRecords
            One per image, coordinates in original pixels (see
            :class:`~imm_analysis.faces.analyse.FaceRecords`).

        Examples
        --------
        >>> from imm_analysis.io.media import read_image
        >>> model = FaceModel("../shared/models/mbf128_det500m")  # doctest: +SKIP
        >>> rgb, _ = read_image("../shared/faces/group/t1.jpg")  # doctest: +SKIP
        >>> (faces,) = model.analyse([rgb])  # doctest: +SKIP
        >>> len(faces), faces.crops.shape[1:]  # doctest: +SKIP
        (6, (112, 112, 3))
        """
        from imm_analysis.faces.analyse import analyse_image

        return [analyse_image(self, image) for image in images]

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
        cv2 = require("cv2", purpose="FaceModel.detector_input")
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
        if prepared is None:
            if rgb is None:
                raise ValueError("detect needs an image or a prepared detector input")
            prepared = self.detector_input(rgb, det_size=det_size)
        blob, scale, (w, h) = prepared
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
            by_size.setdefault((int(wh[0]), int(wh[1])), []).append(i)
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
        """Boxes, scores and keypoints of one image from the detector's per-stride outputs (:func:`decode_scrfd`)."""
        groups = self._det_groups if (w, h) == self.det_size else group_outputs(outs)
        return decode_scrfd(outs, groups, self._strides, self._anchors, scale=scale, size=(w, h),
                            det_thresh=self.det_thresh, nms_thresh=self.nms_thresh)

    # ------------------------------------------------------------------ alignment and embedding
    align = staticmethod(align)

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

    def _blob(self, role: str, crops: np.ndarray) -> np.ndarray:
        mean, std = (0.0, 1.0) if self._sessions[role].embedded_norm else (127.5, 128.0)
        return np.ascontiguousarray(((crops - mean) / std).transpose(0, 3, 1, 2).astype(np.float32))

    def attributes(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
        """``(n, 2)`` array of age (years) and gender (0 female, 1 male) when the pack has genderage, else None."""
        if GENDERAGE not in self._sessions or not len(boxes):
            return None
        crops, _ = box_crops(rgb, boxes, 96)
        pred = self._sessions[GENDERAGE].run_batched(self._blob(GENDERAGE, crops), 64)
        return np.stack([pred[:, 2] * 100.0, np.argmax(pred[:, :2], axis=1).astype(np.float64)], axis=1)

    def pose_3d(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
        """``(n, 3)`` pitch, roll, yaw from the 68-point 3D landmark model when the pack has one, else None."""
        if LANDMARK_3D not in self._sessions or not len(boxes):
            return None
        from imm_analysis.faces.pose import pose_from_points

        if self._meanshape68 is None:
            import pickle

            insightface = require("insightface", purpose="pose from the 68-point landmark model")

            path = Path(str(insightface.__file__)).parent / "data" / "objects" / "meanshape_68.pkl"
            with open(path, "rb") as fh:  # a file shipped inside the installed insightface package
                self._meanshape68 = np.asarray(pickle.load(fh), dtype=np.float64)
        crops, mats = box_crops(rgb, boxes, 192)
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
