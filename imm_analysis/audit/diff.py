"""What a clustering run changed: :func:`diff_clusterings` of two snapshots of one dataset.

A snapshot is a ``(clusters, figures)`` pair as the loaders give them (exports taken before and
after an IMM run), a :class:`~imm_analysis.cluster.state.ClusterState`, or the folder of a saved one.
Faces are matched by ``figure_id`` and clusters by ``cluster_id``; everything is vectorised (one
hash join of the face ids, integer codes for the cluster ids, ``bincount`` for the counts), so a
million faces take a few seconds (``benchmarks/bench_diff.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from imm_analysis import schema

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ClusteringDiff", "diff_clusterings", "FACE_CHANGES", "CLUSTER_CHANGES"]

FACE_CHANGES = ("new", "removed", "newly_clustered", "left", "moved", "unchanged")
CLUSTER_CHANGES = ("created", "deleted", "grown", "shrunk", "renamed", "unchanged")
_RESERVED = (schema.CLUSTER_INDEPENDENT, schema.CLUSTER_UNAVAILABLE)


@dataclass
class ClusteringDiff:
    """What :func:`diff_clusterings` returns.

    Attributes
    ----------
    clusters : DataFrame
        One row per cluster id seen in either snapshot: ``cluster_id``, ``change`` (categorical of
        :data:`CLUSTER_CHANGES`), ``renamed`` (bool), ``name_before`` / ``name_after``,
        ``face_count_before`` / ``face_count_after``, ``image_count_before`` / ``image_count_after``,
        ``faces_joined`` / ``faces_left`` (faces that entered or left it) and ``merged_into`` (for a
        deleted cluster whose faces all went to one earlier cluster).
    faces : DataFrame
        One row per face id seen in either snapshot: ``figure_id``, ``file_id``, ``change``
        (categorical of :data:`FACE_CHANGES`), ``cluster_before`` and ``cluster_after`` (categoricals;
        null when independent, unavailable or absent).
    broken : DataFrame
        The rows of :attr:`faces` that break IMM's incremental promise: clustered before, still
        there, and now in another cluster (``moved``) or in none (``left``) although their cluster
        was not merged. ``reason`` says which.
    summary : dict
        Counts of each face and cluster change, ``renamed``, ``broken``, ``merges``, and the number
        of faces and clusters on each side.
    names : (str, str)
        Display names of the two snapshots.

    Examples
    --------
    >>> from imm_analysis.synth import make_runs
    >>> runs = make_runs(30, seed=1)
    >>> d = diff_clusterings(runs.before, runs.after)
    >>> d.summary["broken"], d.summary["merges"]
    (2, 1)
    >>> fig = d.plot()  # a matplotlib Figure, not shown
    >>> html = d.to_html()  # or d.to_html("diff.html"); notebooks call _repr_html_
    """

    clusters: pd.DataFrame
    faces: pd.DataFrame
    broken: pd.DataFrame
    summary: dict[str, Any]
    names: tuple[str, str] = ("before", "after")
    _figs: dict[str, Any] = field(default_factory=dict, repr=False)

    def plot(self, **kwargs: Any) -> Figure:
        """Bar charts of the cluster and face changes (a matplotlib Figure, not shown).

        See :func:`imm_analysis.viz.audit_plots.plot_diff`.
        """
        from imm_analysis.viz.audit_plots import plot_diff

        return plot_diff(self, **kwargs)

    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """A self-contained HTML page (summary, plot, tables); written atomically to ``path`` when given."""
        from imm_analysis.report.audit_html import render_diff

        return render_diff(self, path)

    def _repr_html_(self) -> str:
        from imm_analysis.report.audit_html import render_diff

        return render_diff(self, None, fragment=True)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"ClusteringDiff({s['clusters_before']} -> {s['clusters_after']} clusters: "
            + ", ".join(f"{c} {s['clusters'][c]}" for c in CLUSTER_CHANGES)
            + "; faces: " + ", ".join(f"{c} {s['faces'][c]}" for c in FACE_CHANGES)
            + f"; broken {s['broken']})"
        )


def _snapshot(obj: Any, name: str) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """``(clusters or None, figures)`` from a pair, a ClusterState or a saved state's folder."""
    if isinstance(obj, (str, os.PathLike)):
        from imm_analysis.cluster.store import load_parts

        try:  # the frames only (not the embeddings), from either state layout
            frames, _, _, _ = load_parts(obj, {"clusters": "clusters", "figures": "figures"}, ())
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{name}: {exc}") from None
        return frames["clusters"], frames["figures"]
    if hasattr(obj, "figures") and hasattr(obj, "clusters") and not isinstance(obj, tuple):
        return obj.clusters, obj.figures
    if isinstance(obj, pd.DataFrame):
        return None, obj
    if isinstance(obj, tuple) and len(obj) == 2:
        clusters, figures = obj
        if not isinstance(figures, pd.DataFrame) or not (clusters is None or isinstance(clusters, pd.DataFrame)):
            raise TypeError(f"{name} must be a (clusters, figures) pair of DataFrames")
        return clusters, figures
    raise TypeError(f"{name} must be a (clusters, figures) pair, a ClusterState or a saved state's folder, "
                    f"not {type(obj).__name__}")


def _column(frame: pd.DataFrame | None, col: str, name: str) -> pa.Array:
    """A text column as one Arrow ``large_string`` array (no Python object per row for Arrow-backed text)."""
    if frame is None or not len(frame):
        return pa.array([], pa.large_string())
    if col not in frame.columns:
        raise KeyError(f"{name}: the {'figures' if col != 'cluster_id' else 'clusters'} frame needs a {col!r} column")
    arr = pa.array(frame[col].astype("string"))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _check_ids(ids: pa.Array, name: str) -> None:
    if ids.null_count:
        raise ValueError(f"{name}: a face has no figure_id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))[0].as_py()
        raise ValueError(f"{name}: figure_id {dup!r} appears more than once")


def _encode(parts: list[pa.Array]) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer codes of cluster ids across ``parts`` (-1: missing or reserved) and the ids of the codes."""
    enc = pc.dictionary_encode(pa.concat_arrays(parts))
    values = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    reserved = np.isin(values, _RESERVED)
    remap = np.cumsum(~reserved) - 1
    remap[reserved] = -1
    raw = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes = np.where(raw >= 0, remap[np.maximum(raw, 0)], -1) if len(raw) else raw
    bounds = np.cumsum([len(p) for p in parts])[:-1]
    return np.split(codes, bounds), values[~reserved]


def _as_string(arr: pa.Array) -> pd.arrays.ArrowStringArray:
    return pd.arrays.ArrowStringArray(arr.cast(pa.large_string()))


def diff_clusterings(before: Any, after: Any, *, names: tuple[str, str] = ("before", "after")) -> ClusteringDiff:
    """What a clustering run changed between two snapshots of one dataset.

    Parameters
    ----------
    before, after : (clusters, figures) pair, ClusterState or path
        Each a pair of frames as the loaders give them (``clusters`` may be None: counts then come
        from the faces), a :class:`~imm_analysis.ClusterState`, or the folder of a saved one.
        Faces are matched by ``figure_id``, clusters by ``cluster_id``.
    names : (str, str), default=("before", "after")

    Returns
    -------
    ClusteringDiff
        ``.clusters`` (``created``, ``deleted``, ``grown``, ``shrunk``, ``renamed``, ``unchanged``;
        a cluster renamed and resized says ``grown`` / ``shrunk`` with ``renamed`` True),
        ``.faces`` (``new``, ``removed``, ``newly_clustered``, ``left``, ``moved``, ``unchanged``),
        ``.broken`` (faces whose earlier assignment did not survive although their cluster was not
        merged and their file not removed), ``.summary``, ``.plot()``, ``.to_html()``.

    Notes
    -----
    O(n) in the faces with one hash join; no Python loop over faces or clusters. Face counts come
    from the clusters frames (IMM's ``FaceCount`` / ``ImageCount``) where a cluster has a row, else
    from the faces.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"figure_id": ["f1", "f2", "f3"], "file_id": ["a", "b", "c"],
    ...                   "figure_cluster_id": ["Cluster-1", "Cluster-1", "figure-cluster-id-independent"]})
    >>> a = pd.DataFrame({"figure_id": ["f1", "f2", "f3", "f4"], "file_id": ["a", "b", "c", "d"],
    ...                   "figure_cluster_id": ["Cluster-1", "Cluster-1", "Cluster-1", "Cluster-2"]})
    >>> d = diff_clusterings((None, b), (None, a))
    >>> d.clusters[["cluster_id", "change", "face_count_before", "face_count_after"]]
      cluster_id   change  face_count_before  face_count_after
    0  Cluster-2  created                  0                 1
    1  Cluster-1    grown                  2                 3
    >>> d.faces["change"].tolist()
    ['unchanged', 'unchanged', 'newly_clustered', 'new']
    """
    clusters_b, figs_b = _snapshot(before, names[0])
    clusters_a, figs_a = _snapshot(after, names[1])
    fid_b, fid_a = _column(figs_b, "figure_id", names[0]), _column(figs_a, "figure_id", names[1])
    _check_ids(fid_b, names[0])
    _check_ids(fid_a, names[1])
    # each earlier face in the later snapshot (one Arrow hash join), -1: removed
    pos = pc.index_in(fid_b, value_set=fid_a).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    kept = pos >= 0
    is_new = np.ones(len(fid_a), dtype=bool)
    is_new[pos[kept]] = False
    file_b, file_a = _column(figs_b, "file_id", names[0]), _column(figs_a, "file_id", names[1])

    # every cluster id as one integer code (-1: no cluster)
    (code_b, code_a, code_lb, code_la), uniq = _encode([
        _column(figs_b, "figure_cluster_id", names[0]), _column(figs_a, "figure_cluster_id", names[1]),
        _column(clusters_b, "cluster_id", names[0]), _column(clusters_a, "cluster_id", names[1])])
    n_b, n_a = len(code_b), len(code_a)
    k = len(uniq)

    # faces
    kb, ka = code_b[kept], code_a[pos[kept]]
    change_kept = np.select(
        [(kb < 0) & (ka >= 0), (kb >= 0) & (ka < 0), (kb >= 0) & (ka >= 0) & (kb != ka)], [2, 3, 4], default=5
    )
    face_code = np.full(n_b, 1, dtype=np.int8)  # removed
    face_code[kept] = change_kept
    new_rows = np.flatnonzero(is_new)
    after_of_b = np.full(n_b, -1, dtype=np.int64)
    after_of_b[kept] = ka
    take_new = pa.array(new_rows, pa.int64())
    faces = pd.DataFrame({
        "figure_id": _as_string(pa.concat_arrays([fid_b, fid_a.take(take_new)])),
        "file_id": _as_string(pa.concat_arrays([file_b, file_a.take(take_new)])),
        "change": pd.Categorical.from_codes(np.concatenate([face_code, np.zeros(len(new_rows), np.int8)]),
                                            categories=pd.Index(FACE_CHANGES)),
        "cluster_before": pd.Categorical.from_codes(np.concatenate([code_b, np.full(len(new_rows), -1)]),
                                                    categories=pd.Index(uniq, dtype=object)),
        "cluster_after": pd.Categorical.from_codes(np.concatenate([after_of_b, code_a[new_rows]]),
                                                   categories=pd.Index(uniq, dtype=object)),
    })

    # clusters: counts from the faces, IMM's counts where the clusters frames have them
    faces_b = np.bincount(code_b[code_b >= 0], minlength=k)
    faces_a = np.bincount(code_a[code_a >= 0], minlength=k)
    images_b = _distinct_files(code_b, file_b, k)
    images_a = _distinct_files(code_a, file_a, k)
    fc_b, ic_b, name_b = _listed_counts(clusters_b, code_lb, k, faces_b, images_b)
    fc_a, ic_a, name_a = _listed_counts(clusters_a, code_la, k, faces_a, images_a)
    exists_b = (faces_b > 0) | np.isin(np.arange(k), code_lb)
    exists_a = (faces_a > 0) | np.isin(np.arange(k), code_la)
    # faces that entered / left each cluster (new faces enter; removed faces leave)
    ka_all, kb_all = code_a[pos[kept]], code_b[kept]
    moved = ka_all != kb_all
    joined = np.bincount(ka_all[moved & (ka_all >= 0)], minlength=k) + np.bincount(
        code_a[new_rows][code_a[new_rows] >= 0], minlength=k)
    left = np.bincount(kb_all[moved & (kb_all >= 0)], minlength=k) + np.bincount(
        code_b[~kept][code_b[~kept] >= 0], minlength=k)
    # merges: a deleted cluster whose surviving faces all went to one cluster that existed before
    merged_into = np.full(k, -1, dtype=np.int64)
    src = (kb_all >= 0) & (ka_all >= 0)
    if src.any():
        grp = pd.DataFrame({"b": kb_all[src], "a": ka_all[src]}).groupby("b")["a"].agg(["min", "max"])
        gb, lo, hi = grp.index.to_numpy(), grp["min"].to_numpy(), grp["max"].to_numpy()
        ok = (lo == hi) & (lo != gb) & ~exists_a[gb] & exists_b[lo]
        merged_into[gb[ok]] = lo[ok]
    renamed = exists_b & exists_a & ~_same(name_b, name_a)
    change = np.select(
        [exists_a & ~exists_b, exists_b & ~exists_a, fc_a > fc_b, fc_a < fc_b, renamed], [0, 1, 2, 3, 4], default=5
    )
    order = np.lexsort((np.arange(k), -np.maximum(fc_a, fc_b), change))
    clusters = pd.DataFrame({
        "cluster_id": pd.array(uniq[order].astype(object), dtype="string"),
        "change": pd.Categorical.from_codes(change[order], categories=pd.Index(CLUSTER_CHANGES)),
        "renamed": renamed[order],
        "name_before": pd.array(name_b[order], dtype="string"),
        "name_after": pd.array(name_a[order], dtype="string"),
        "face_count_before": fc_b[order],
        "face_count_after": fc_a[order],
        "image_count_before": ic_b[order],
        "image_count_after": ic_a[order],
        "faces_joined": joined[order],
        "faces_left": left[order],
        "merged_into": pd.array(np.where(merged_into[order] >= 0, uniq[np.maximum(merged_into[order], 0)],
                                         np.full(k, None, dtype=object)), dtype="string"),
    })

    # broken: earlier assignments that did not survive, unless their cluster was merged
    fb = face_code[kept]
    target = np.append(merged_into, -1)[np.where(kb_all >= 0, kb_all, k)]
    bad = ((fb == 3) | (fb == 4)) & ~((fb == 4) & (target == ka_all))
    broken_rows = np.flatnonzero(kept)[bad]
    broken = faces.iloc[broken_rows].reset_index(drop=True)
    broken.insert(3, "reason", pd.Categorical(np.where(fb[bad] == 3, "left", "moved"), categories=["moved", "left"]))

    face_counts = np.bincount(faces["change"].cat.codes.to_numpy(), minlength=len(FACE_CHANGES))
    cluster_counts = np.bincount(change, minlength=len(CLUSTER_CHANGES))
    summary = {
        "names": tuple(names),
        "faces_before": n_b,
        "faces_after": n_a,
        "clusters_before": int(exists_b.sum()),
        "clusters_after": int(exists_a.sum()),
        "faces": {c: int(face_counts[i]) for i, c in enumerate(FACE_CHANGES)},
        "clusters": {c: int(cluster_counts[i]) for i, c in enumerate(CLUSTER_CHANGES)},
        "renamed": int(renamed.sum()),
        "merges": int((merged_into >= 0).sum()),
        "broken": len(broken),
    }
    return ClusteringDiff(clusters, faces, broken, summary, (str(names[0]), str(names[1])))


def _distinct_files(codes: np.ndarray, files: pa.Array, k: int) -> np.ndarray:
    """Distinct files per cluster code."""
    member = codes >= 0
    if not member.any():
        return np.zeros(k, dtype=np.int64)
    fcode = pc.dictionary_encode(files).indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)[member]
    stride = int(fcode.max()) + 2
    pairs = pd.unique(codes[member].astype(np.int64) * stride + fcode + 1)
    return np.bincount(pairs // stride, minlength=k)


def _listed_counts(clusters: pd.DataFrame | None, codes: np.ndarray, k: int, faces: np.ndarray,
                   images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face and image counts (the clusters frame's where listed, else the faces') and names per code."""
    fc, ic = faces.astype(np.int64).copy(), images.astype(np.int64).copy()
    names = np.full(k, None, dtype=object)
    if clusters is None or not len(clusters):
        return fc, ic, names
    ok = codes >= 0
    for col, out in (("face_count", fc), ("image_count", ic)):
        if col in clusters.columns:
            vals = pd.to_numeric(clusters[col]).to_numpy(dtype="float64", na_value=np.nan)
            have = ok & ~np.isnan(vals)
            out[codes[have]] = vals[have].astype(np.int64)
    if "name" in clusters.columns:
        names[codes[ok]] = clusters["name"].astype("string").to_numpy(dtype=object, na_value=None)[ok]  # type: ignore[call-overload]
    return fc, ic, names


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = pd.isna(a), pd.isna(b)
    eq = np.zeros(len(a), dtype=bool)
    both = ~na & ~nb
    eq[both] = a[both] == b[both]
    return eq | (na & nb)
