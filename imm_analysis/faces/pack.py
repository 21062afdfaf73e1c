"""Model pack discovery: find a pack's ``.onnx`` files and give each a role from its shapes.

Every ``.onnx`` file of the pack is opened with onnxruntime and given a role from its input and
output shapes (:func:`classify_onnx`), with file-name patterns only breaking ties between two
files that fit the same role. Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imm_analysis._optional import require

__all__ = ["PackError", "classify_onnx", "find_pack_files", "assign_roles", "ROLES",
           "DETECTOR", "RECOGNIZER", "GENDERAGE", "LANDMARK_3D", "LANDMARK_2D"]

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


def find_pack_files(pack: Path) -> list[Path]:
    """The ``.onnx`` files of a pack folder (or of the one folder a zip unpacked into).

    Raises
    ------
    PackError
        When the folder is missing, not a folder, or holds no ``.onnx`` file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> find_pack_files(pathlib.Path(tempfile.mkdtemp()))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imm_analysis.faces.pack.PackError: model pack ... has no .onnx files: ...
    """
    if not pack.exists():
        raise PackError(f"model pack {pack} does not exist (pass a local pack directory; nothing is downloaded)")
    if not pack.is_dir():
        raise PackError(f"model pack {pack} is not a directory")
    files = sorted(pack.glob("*.onnx"))
    if not files:  # a zip unpacked into pack/pack/
        files = sorted(pack.glob("*/*.onnx"))
    if not files:
        found = sorted(p.name for p in pack.iterdir())
        raise PackError(
            f"model pack {pack} has no .onnx files: missing roles detector, recognizer; files found: {found or 'none'}"
        )
    return files


def assign_roles(
    pack: Path, files: Sequence[Path], explicit: Mapping[str, str], options: Any
) -> tuple[dict[str, _OnnxInfo], list[Path]]:
    """``({role: info}, ignored files)``: each file's role from its shapes, ``explicit`` first.

    Raises :class:`PackError` when a required role is missing or two files fit one role and
    their names do not tell them apart.

    Examples
    --------
    >>> from imm_analysis.faces.pack import assign_roles, find_pack_files  # doctest: +SKIP
    >>> pack = Path("../shared/models/mbf128_det500m")  # doctest: +SKIP
    >>> sorted(assign_roles(pack, find_pack_files(pack), {}, None)[0])  # doctest: +SKIP
    ['detector', 'recognizer']
    """
    ort = require("onnxruntime", purpose="FaceModel")

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
            raise PackError(f"roles[{role!r}] = {fname!r} is not a loadable file of {pack}; files: {sorted(by_name)}")
        chosen[role] = infos[path]
    candidates: dict[str, list[_OnnxInfo]] = {}
    for info in infos.values():
        if any(c.path == info.path for c in chosen.values()):
            continue
        found = classify_onnx(info.inputs, info.outputs)
        if found is not None and found not in chosen:
            candidates.setdefault(found, []).append(info)
    for role, cands in candidates.items():
        if len(cands) > 1:
            hinted = [c for c in cands if _NAME_HINTS[role].search(c.path.name)]
            if len(hinted) != 1:
                raise PackError(
                    f"model pack {pack}: several files fit the {role} role "
                    f"({[c.path.name for c in cands]}); choose one with roles={{{role!r}: ...}}"
                )
            cands = hinted
        chosen[role] = cands[0]
    missing = [r for r in (DETECTOR, RECOGNIZER) if r not in chosen]
    if missing:
        listing = [f"{p.name} -> {classify_onnx(i.inputs, i.outputs) or 'no role'}" for p, i in infos.items()]
        raise PackError(
            f"model pack {pack} is incomplete: missing {' and '.join(missing)}; "
            f"files found: {listing + unreadable or 'none'}"
        )
    used = {i.path for i in chosen.values()}
    return chosen, [f for f in files if f not in used]
