"""IMM against a local run of the same photos, face by face: :func:`audit_against_local`.

The faces are paired with :func:`~imm_analysis.audit.match.match_faces` (same file, overlapping
boxes); then detection (faces one side found and the other did not, by size and pose), quality and
pose (IMM's ``FaceQuality`` / ``HeadPose`` against the local ones, with the high-definition rule's
verdict on both sides) and clustering (:func:`~imm_analysis.evaluate.compare_clusterings` on the
matched faces: splits, merges, pairwise and BCubed agreement) are compared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.audit.match import FaceMatch, _numeric, match_faces
from imm_analysis.evaluate import ClusteringComparison, compare_clusterings
from imm_analysis.quality import hd_mask
from imm_analysis.quality.hd import RuleLike

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["LocalAudit", "audit_against_local", "SIZE_BINS", "POSE_BINS"]

#: Face-size bins (``min(width, height)`` in pixels) of the detection table.
SIZE_BINS = (0, 40, 75, 150, np.inf)
#: Pose bins (largest of ``|pitch|``, ``|roll|``, ``|yaw|`` in degrees).
POSE_BINS = (0, 15, 30, np.inf)
_POSE = ("pitch", "roll", "yaw")


@dataclass
class LocalAudit:
    """What :func:`audit_against_local` returns.

    Attributes
    ----------
    match : FaceMatch
        The face pairs (IMM is side ``a``, local side ``b``).
    detection : DataFrame
        Per face-size bin: ``both``, ``only_imm``, ``only_local``.
    detection_pose : DataFrame
        The same per pose bin.
    unmatched : DataFrame
        The faces found by one side only: ``side``, ``figure_id``, ``uri``, ``size``, ``pose``,
        ``face_quality`` and the box.
    quality : DataFrame
        One row per matched face: both ids, ``iou``, ``face_quality_imm`` / ``_local``,
        ``pitch/roll/yaw_imm`` / ``_local``, ``hd_imm`` / ``hd_local`` and the clusters.
    comparison : ClusteringComparison
        IMM's clusters (A) against the local ones (B) on the matched faces.
    disagreements : DataFrame
        The IMM clusters split or merged by the local run (rows of ``comparison.table``), worst first.
    summary : dict
        ``matched``, ``only_imm``, ``only_local``, ``hd_imm``, ``hd_local``, ``hd_disagree``,
        ``quality_corr``, ``pose_mae`` (mean absolute difference per angle), ``splits``,
        ``merges`` and ``agreement`` (pairwise and BCubed scores of the local clustering against IMM's).

    Examples
    --------
    >>> import pandas as pd
    >>> face = {"figure_id": ["f"], "uri": ["p.jpg"], "left": [0], "top": [0], "width": [90], "height": [90],
    ...         "face_quality": [0.9], "pitch": [0], "roll": [0], "yaw": [0]}
    >>> audit = audit_against_local(pd.DataFrame({**face, "figure_cluster_id": ["C"]}),
    ...                             pd.DataFrame({**face, "figure_cluster_id": ["x"]}))
    >>> type(audit).__name__, audit.summary["matched"], audit.summary["only_imm"], len(audit.quality)
    ('LocalAudit', 1, 0, 1)
    """

    match: FaceMatch
    detection: pd.DataFrame
    detection_pose: pd.DataFrame
    unmatched: pd.DataFrame
    quality: pd.DataFrame
    comparison: ClusteringComparison
    disagreements: pd.DataFrame
    summary: dict[str, Any]
    images: Any = None
    _figures: tuple[pd.DataFrame, pd.DataFrame] = field(default=(pd.DataFrame(), pd.DataFrame()), repr=False)

    def plot(self) -> Figure:
        """Detection, quality and clustering agreement (a matplotlib Figure, not shown)."""
        from imm_analysis.viz.audit_plots import plot_audit

        return plot_audit(self)

    def montages(self, max_clusters: int = 3, images: Any = None) -> dict[str, Figure]:
        """Face montages of the IMM clusters where the two sides disagree most, local cluster per row.

        ``images`` (or the audit's own) maps ``uri`` / ``file_id`` to local images (see
        :func:`imm_analysis.viz.plot_face_montage`); without it, an empty dict.
        """
        images = images if images is not None else self.images
        if images is None or not len(self.disagreements):
            return {}
        from imm_analysis.viz.plots import plot_face_montage

        imm_figs, _ = self._figures
        q = self.quality
        out = {}
        for cluster_id in self.disagreements["cluster_a"].head(max_clusters):
            rows = q.index[q["cluster_imm"] == cluster_id]
            sub = q.loc[rows].sort_values("cluster_local", kind="stable", na_position="last")
            faces = imm_figs.iloc[sub["row_imm"].to_numpy()]
            captions = [f"local {str(c)[-6:]}" if isinstance(c, str) else "local: none" for c in sub["cluster_local"]]
            out[str(cluster_id)] = plot_face_montage(faces, images, captions=captions, title=f"IMM {cluster_id}")
        return out

    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """A self-contained HTML page; written atomically to ``path`` when given."""
        from imm_analysis.report.audit_html import render_audit

        return render_audit(self, path)

    def _repr_html_(self) -> str:
        from imm_analysis.report.audit_html import render_audit

        return render_audit(self, None, fragment=True)

    def __repr__(self) -> str:
        s = self.summary
        return (f"LocalAudit({s['matched']} matched, {s['only_imm']} only IMM, {s['only_local']} only local; "
                f"HD differs on {s['hd_disagree']}; {s['splits']} splits, {s['merges']} merges)")


def _num(frame: pd.DataFrame, col: str, name: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return _numeric(frame, col, name)


def _size(frame: pd.DataFrame, name: str) -> np.ndarray:
    return np.fmin(_num(frame, "width", name), _num(frame, "height", name))


def _pose(frame: pd.DataFrame, name: str) -> np.ndarray:
    if not len(frame):
        return np.empty(0)
    return np.fmax.reduce(np.abs(np.column_stack([_num(frame, c, name) for c in _POSE])), axis=1)


def _binned(values: np.ndarray, bins: tuple[float, ...], unit: str) -> pd.Categorical:
    labels = [f"{lo:g}-{hi:g}{unit}" if np.isfinite(hi) else f">={lo:g}{unit}"
              for lo, hi in zip(bins[:-1], bins[1:], strict=True)]
    return pd.cut(values, bins=list(bins), labels=labels, right=False)


def _table(both: np.ndarray, imm: np.ndarray, local: np.ndarray, bins: tuple[float, ...], unit: str,
           name: str) -> pd.DataFrame:
    parts = {}
    for col, values in (("both", both), ("only_imm", imm), ("only_local", local)):
        parts[col] = pd.Series(_binned(values, bins, unit)).value_counts(sort=False)
    out = pd.DataFrame(parts).rename_axis(name).reset_index()
    out[name] = pd.Categorical(out[name], categories=list(parts["both"].index), ordered=True)
    return out


def _pair(obj: Any, name: str) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    if isinstance(obj, pd.DataFrame):
        return None, obj
    if hasattr(obj, "figures") and hasattr(obj, "clusters") and not isinstance(obj, tuple):
        return obj.clusters, obj.figures
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], pd.DataFrame):
        return obj
    raise TypeError(f"{name} must be a (clusters, figures) pair, a figures frame or a ClusterState")


def audit_against_local(imm: Any, local: Any, *, on: str | tuple[str, str] = "uri", min_iou: float = 0.5,
                        hd_rule: RuleLike = None, images: Any = None) -> LocalAudit:
    """Compare IMM's face clustering with a local run of the same photos, face by face.

    Parameters
    ----------
    imm, local : (clusters, figures) pair, figures frame or ClusterState
        IMM's export (``load_clusters`` / ``load_figures``) and a local run (``embed_images`` then
        ``cluster_faces`` or a :class:`~imm_analysis.ClusterState`) of the same files.
    on : str or (str, str), default="uri"
        The file key (see :func:`~imm_analysis.match_faces`); e.g. ``("uri", "uri")`` after mapping
        IMM's ``oss://`` URIs to the local paths.
    min_iou : float, default=0.5
        Box overlap needed to pair two faces.
    hd_rule : HDRule or dict, optional
        The high-definition rule (:class:`~imm_analysis.quality.HDRule`, or a dict of some of
        ``min_size``, ``max_pose``, ``min_quality``); default IMM's.
    images : ImageSource, optional
        Where the photos are, for :meth:`LocalAudit.montages`.

    Returns
    -------
    LocalAudit
        ``.detection`` / ``.detection_pose`` / ``.unmatched`` (detection agreement), ``.quality``
        (quality, pose and HD verdicts of matched faces), ``.comparison`` / ``.disagreements``
        (clustering agreement), ``.summary``, ``.plot()``, ``.montages()``, ``.to_html()``.

    Examples
    --------
    >>> import pandas as pd
    >>> box = {"top": [0, 0], "width": [100, 100], "height": [100, 100], "face_quality": [0.9, 0.9],
    ...        "pitch": [0, 0], "roll": [0, 0], "yaw": [0, 0], "uri": ["p.jpg", "q.jpg"]}
    >>> imm = pd.DataFrame({"figure_id": ["i1", "i2"], "left": [0, 0], "figure_cluster_id": ["C", "C"], **box})
    >>> loc = pd.DataFrame({"figure_id": ["l1", "l2"], "left": [4, 2], "figure_cluster_id": ["x", "y"], **box})
    >>> a = audit_against_local(imm, loc)
    >>> a.summary["matched"], a.summary["splits"], a.summary["merges"]
    (2, 1, 0)
    """
    _, fi = _pair(imm, "imm")
    _, fl = _pair(local, "local")
    fi, fl = fi.reset_index(drop=True), fl.reset_index(drop=True)
    m = match_faces(fi, fl, on=on, min_iou=min_iou)
    ra, rb = m.pairs["row_a"].to_numpy(), m.pairs["row_b"].to_numpy()
    only_i = np.setdiff1d(np.arange(len(fi)), ra)
    only_l = np.setdiff1d(np.arange(len(fl)), rb)

    size_i, size_l = _size(fi, "imm"), _size(fl, "local")
    pose_i, pose_l = _pose(fi, "imm"), _pose(fl, "local")
    detection = _table(size_i[ra], size_i[only_i], size_l[only_l], SIZE_BINS, "px", "size_bin")
    detection_pose = _table(pose_i[ra], pose_i[only_i], pose_l[only_l], POSE_BINS, "deg", "pose_bin")
    unmatched = pd.concat([
        pd.DataFrame({"side": "imm", "row": only_i}), pd.DataFrame({"side": "local", "row": only_l})
    ], ignore_index=True)
    src = [fi, fl]
    for col in ("figure_id", m.key if m.key in fi.columns else "uri", "left", "top", "width", "height", "face_quality"):
        vals = []
        for side, frame in enumerate(src):
            rows = unmatched["row"][unmatched["side"] == ("imm", "local")[side]].to_numpy()
            vals.append(frame[col].iloc[rows].to_numpy(dtype=object) if col in frame.columns else
                        np.full(len(rows), None, dtype=object))
        unmatched[col] = np.concatenate(vals) if vals else []
    unmatched["size"] = np.concatenate([size_i[only_i], size_l[only_l]])
    unmatched["pose"] = np.concatenate([pose_i[only_i], pose_l[only_l]])
    unmatched["side"] = pd.Categorical(unmatched["side"], categories=["imm", "local"])

    hd_i, hd_l = hd_mask(fi, hd_rule)[0], hd_mask(fl, hd_rule)[0]
    cl_i = fi["figure_cluster_id"].to_numpy(dtype=object) if "figure_cluster_id" in fi else np.full(len(fi), None)
    cl_l = fl["figure_cluster_id"].to_numpy(dtype=object) if "figure_cluster_id" in fl else np.full(len(fl), None)
    quality = pd.DataFrame({
        "figure_id_imm": m.pairs["figure_id_a"], "figure_id_local": m.pairs["figure_id_b"], "iou": m.pairs["iou"],
        "row_imm": ra, "row_local": rb,
        "face_quality_imm": _num(fi, "face_quality", "imm")[ra],
        "face_quality_local": _num(fl, "face_quality", "local")[rb],
        **{f"{c}_imm": _num(fi, c, "imm")[ra] for c in _POSE}, **{f"{c}_local": _num(fl, c, "local")[rb] for c in _POSE},
        "hd_imm": hd_i[ra], "hd_local": hd_l[rb],
        "cluster_imm": cl_i[ra], "cluster_local": cl_l[rb],
    })
    cmp = compare_clusterings(cl_i[ra], cl_l[rb], names=("imm", "local"))
    table = cmp.table
    bad = table[table["status"].isin(["split", "merged"])].copy()
    bad["faces_elsewhere"] = (bad["size_a"] - bad["overlap"].fillna(0).astype(int)).astype(int)
    disagreements = bad.sort_values(["faces_elsewhere", "size_a"], ascending=False, kind="stable").reset_index(drop=True)
    qi, ql = quality["face_quality_imm"].to_numpy(), quality["face_quality_local"].to_numpy()
    both_q = ~np.isnan(qi) & ~np.isnan(ql)
    summary = {
        "matched": len(ra),
        "only_imm": len(only_i),
        "only_local": len(only_l),
        "median_iou": float(np.median(m.pairs["iou"])) if len(ra) else float("nan"),
        "hd_imm": int(hd_i[ra].sum()),
        "hd_local": int(hd_l[rb].sum()),
        "hd_disagree": int((hd_i[ra] != hd_l[rb]).sum()),
        "quality_corr": float(np.corrcoef(qi[both_q], ql[both_q])[0, 1]) if both_q.sum() > 2 else float("nan"),
        "pose_mae": {c: float(np.nanmean(np.abs(quality[f"{c}_imm"] - quality[f"{c}_local"])))
                     if len(ra) and not np.isnan(quality[f"{c}_imm"] - quality[f"{c}_local"]).all() else float("nan")
                     for c in _POSE},
        "splits": cmp.summary["splits"],
        "merges": cmp.summary["merges"],
        "agreement": cmp.summary["agreement"],
    }
    return LocalAudit(m, detection, detection_pose, unmatched, quality, cmp, disagreements, summary, images, (fi, fl))
