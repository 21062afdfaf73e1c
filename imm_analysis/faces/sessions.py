"""onnxruntime sessions of a model pack, and batching layouts.

A graph exported for one image at a time (batch axis fixed at 1) is made to take any batch in
memory (:func:`_make_batch_dynamic`) and kept so only when a batch of two reproduces two single
runs; :func:`_batch_layouts` finds how each output's rows split into images.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imm_analysis._optional import require
from imm_analysis.faces.pack import DETECTOR

__all__ = ["Session", "resolve_providers", "session_options"]

logger = logging.getLogger(__name__)


def _resolve_providers(providers: Sequence[Any] | str | None) -> tuple[list[Any], bool]:
    ort = require("onnxruntime", purpose="FaceModel")
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
    onnx = require("onnx", purpose="FaceModel")
    numpy_helper = onnx.numpy_helper

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
        onnx = require("onnx", purpose="FaceModel")
        ort = require("onnxruntime", purpose="FaceModel")

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


def session_options(threads: int | None) -> Any:
    """onnxruntime session options: quiet logs, no busy-waiting, ``threads`` intra-op threads.

    Examples
    --------
    >>> session_options(2).intra_op_num_threads  # doctest: +SKIP
    2
    """
    ort = require("onnxruntime", purpose="FaceModel")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # no busy-waiting: decoding threads (and other processes) need the cores between runs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return options


Session = _Session
resolve_providers = _resolve_providers
