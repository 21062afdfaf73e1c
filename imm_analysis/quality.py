"""Face quality and head pose: IMM's high-definition face rule, summaries and diagnosis.

Pure computation on figures frames (see :mod:`imm_analysis.schema`); nothing here plots
(the plots are in :mod:`imm_analysis.viz.quality_plots`).

* :func:`hd_faces` / :func:`hd_mask`: IMM's high-definition face rule;
* :func:`quality_summary`: faces, images, HD share, failure reasons and percentiles of quality,
  sharpness, face size and head pose, for the whole frame or per group;
* :func:`diagnose_clustering`: IMM's FAQ "why does face clustering not generate any clusters",
  answered from the frame.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE

__all__ = [
    "HD_RULE",
    "describe_hd_rule",
    "HD_FAIL_REASONS",
    "SUMMARY_MEASURES",
    "Diagnosis",
    "diagnose_clustering",
    "hd_faces",
    "hd_mask",
    "quality_summary",
]

#: IMM's high-definition face rule as :func:`hd_mask` keyword arguments.
HD_RULE: dict[str, float] = {"min_size": 75, "max_pose": 30, "min_quality": 0.8}

#: Values of the ``hd_fail`` column, in the order the criteria are checked.
HD_FAIL_REASONS = ("missing", "too_small", "extreme_pose", "low_quality")


def _col(figures: pd.DataFrame, name: str) -> np.ndarray:
    if name not in figures.columns:
        return np.full(len(figures), np.nan)
    return pd.to_numeric(figures[name], errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def describe_hd_rule(rule: dict[str, float] | None = None) -> str:
    """The rule in words, IMM's defaults overridden by ``rule``.

    >>> describe_hd_rule({"min_quality": 0.9})
    'width and height > 75 px, |pitch|, |roll|, |yaw| < 30, face_quality > 0.9'
    """
    r = {**HD_RULE, **(rule or {})}
    return (f"width and height > {r['min_size']:g} px, |pitch|, |roll|, |yaw| < {r['max_pose']:g}, "
            f"face_quality > {r['min_quality']:g}")


def hd_mask(
    figures: pd.DataFrame, *, min_size: float = 75, max_pose: float = 30, min_quality: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised core of :func:`hd_faces`.

    Returns
    -------
    is_hd : ndarray of bool, shape (n,)
    reason : ndarray of int8, shape (n,)
        -1 where the face is high-definition, else the index into :data:`HD_FAIL_REASONS`
        of the first criterion it fails.
    """
    w, h = _col(figures, "width"), _col(figures, "height")
    pose = np.column_stack([_col(figures, c) for c in ("pitch", "roll", "yaw")]) if len(figures) else np.empty((0, 3))
    q = _col(figures, "face_quality")
    missing = np.isnan(w) | np.isnan(h) | np.isnan(pose).any(axis=1) | np.isnan(q)
    with np.errstate(invalid="ignore"):
        too_small = ~((w > min_size) & (h > min_size))
        extreme = ~(np.abs(pose) < max_pose).all(axis=1)
        low = ~(q > min_quality)
    reason = np.full(len(figures), -1, dtype=np.int8)
    for code, failed in reversed(list(enumerate((missing, too_small, extreme, low)))):
        reason[failed] = code
    return reason < 0, reason


def hd_faces(
    figures: pd.DataFrame, *, min_size: float = 75, max_pose: float = 30, min_quality: float = 0.8
) -> pd.DataFrame:
    """Apply IMM's high-definition face rule.

    A face is high-definition when ``width > min_size`` and ``height > min_size``, each of
    ``|pitch|``, ``|roll|``, ``|yaw|`` is below ``max_pose``, and ``face_quality >
    min_quality`` (all strict, as in IMM's face-clustering guide). Only high-definition
    faces can found a cluster.

    Parameters
    ----------
    figures : DataFrame
        A figures frame (``load_figures``, ``embed_images(...).figures``).
    min_size : float, default=75
        Face width and height must both be greater than this, in pixels.
    max_pose : float, default=30
        Each absolute head-pose angle must be less than this, in degrees.
    min_quality : float, default=0.8
        ``face_quality`` must be greater than this.

    Returns
    -------
    DataFrame
        A copy of ``figures`` with ``is_hd`` (bool) and ``hd_fail`` (categorical: the first
        failed criterion, ``missing`` when a value is absent; null for HD faces).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"width": [80, 60], "height": [80, 90], "pitch": [0, 0],
    ...                   "roll": [0, 0], "yaw": [10, 0], "face_quality": [0.9, 0.95]})
    >>> hd_faces(f)[["is_hd", "hd_fail"]].values.tolist()
    [[True, nan], [False, 'too_small']]
    """
    is_hd, reason = hd_mask(figures, min_size=min_size, max_pose=max_pose, min_quality=min_quality)
    out = figures.copy()
    out["is_hd"] = is_hd
    out["hd_fail"] = pd.Categorical.from_codes(reason, categories=list(HD_FAIL_REASONS))
    return out


# ----------------------------------------------------------------------------- summary

#: Measures summarised by :func:`quality_summary` (``face_size`` is ``min(width, height)``).
SUMMARY_MEASURES = ("face_quality", "sharpness", "face_size", "pitch", "roll", "yaw")


def quality_summary(
    figures: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    percentiles: Sequence[float] = (5, 25, 50, 75, 95),
    min_size: float = 75,
    max_pose: float = 30,
    min_quality: float = 0.8,
) -> pd.DataFrame:
    """Face counts, high-definition share, failure reasons and quality/pose percentiles.

    Parameters
    ----------
    figures : DataFrame
        A figures frame.
    by : str or list of str, optional
        Column(s) to group by (for example ``"figure_cluster_id"``, ``"cluster_state"``,
        ``"media_type"``). None: one row (index ``"all"``) for the whole frame.
    percentiles : sequence of float, default=(5, 25, 50, 75, 95)
        Percentiles (0-100, linear interpolation as :func:`numpy.percentile`), missing
        values ignored.
    min_size, max_pose, min_quality : float
        The high-definition rule (see :func:`hd_faces`).

    Returns
    -------
    DataFrame
        One row per group (index: the group keys, or ``"all"`` named ``scope``), columns:

        * ``faces``; ``images`` and ``videos``: distinct files of each media type (every
          file counts as an image when there is no ``media_type`` column);
        * ``hd_faces``, ``hd_share`` (0-1);
        * ``fail_missing``, ``fail_too_small``, ``fail_extreme_pose``, ``fail_low_quality``:
          faces whose first failed criterion is that one;
        * ``<measure>_p<q>`` for each measure in :data:`SUMMARY_MEASURES` (``face_quality``,
          ``sharpness``, ``face_size`` = ``min(width, height)`` in pixels, ``pitch``, ``roll``,
          ``yaw`` in degrees) and each percentile, for example ``face_quality_p50``.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"file_id": ["a", "a", "b"], "width": [80, 60, 100], "height": [90, 90, 120],
    ...                   "pitch": [0, 0, 40], "roll": [0, 0, 0], "yaw": [0, 0, 0],
    ...                   "face_quality": [0.9, 0.9, 0.95], "sharpness": [1.0, 0.5, 0.8]})
    >>> s = quality_summary(f)
    >>> s[["faces", "images", "hd_faces", "fail_too_small", "fail_extreme_pose", "face_size_p50"]].iloc[0].tolist()
    [3.0, 2.0, 1.0, 1.0, 1.0, 80.0]
    """
    pcts = [float(p) for p in percentiles]
    if any(not 0 <= p <= 100 for p in pcts):
        raise ValueError(f"percentiles must be in [0, 100], got {list(percentiles)}")
    keys = [by] if isinstance(by, str) else list(by or [])
    missing_cols = [k for k in keys if k not in figures.columns]
    if missing_cols:
        raise KeyError(f"quality_summary: by column(s) {missing_cols} not in the figures frame")

    is_hd, reason = hd_mask(figures, min_size=min_size, max_pose=max_pose, min_quality=min_quality)
    n = len(figures)
    file_id = figures["file_id"] if "file_id" in figures.columns else pd.Series(np.arange(n), index=figures.index)
    if "media_type" in figures.columns:
        video = (figures["media_type"].astype("string") == "video").fillna(False).to_numpy(bool)
    else:
        video = np.zeros(n, bool)
    w, h = _col(figures, "width"), _col(figures, "height")
    data = pd.DataFrame(
        {
            "_image": file_id.where(~video).to_numpy(),
            "_video": file_id.where(video).to_numpy(),
            "hd_faces": is_hd.astype(np.int64),
            **{f"fail_{r}": (reason == i).astype(np.int64) for i, r in enumerate(HD_FAIL_REASONS)},
            "face_quality": _col(figures, "face_quality"),
            "sharpness": _col(figures, "sharpness"),
            "face_size": np.where(np.isnan(w) | np.isnan(h), np.nan, np.fmin(w, h)),
            "pitch": _col(figures, "pitch"),
            "roll": _col(figures, "roll"),
            "yaw": _col(figures, "yaw"),
        }
    )
    if keys:
        group_keys = [figures[k].reset_index(drop=True) for k in keys]
    else:
        group_keys = [pd.Series(np.full(n, "all", dtype=object), name="scope")]
    g = data.groupby(group_keys, observed=True, dropna=False, sort=True)
    counts = pd.DataFrame(
        {
            "faces": g.size(),
            "images": g["_image"].nunique(),
            "videos": g["_video"].nunique(),
        }
    )
    sums = g[["hd_faces", *[f"fail_{r}" for r in HD_FAIL_REASONS]]].sum()
    out = counts.join(sums)
    out.insert(4, "hd_share", out["hd_faces"] / out["faces"])
    if n:
        q = g[list(SUMMARY_MEASURES)].quantile([p / 100 for p in pcts])
        q = q.unstack(-1)
        q.columns = [
            f"{m}_p{_pct_name(p)}"
            for m, p in zip(q.columns.get_level_values(0), q.columns.get_level_values(1) * 100, strict=True)
        ]
        out = out.join(q)
    else:
        for m in SUMMARY_MEASURES:
            for p in pcts:
                out[f"{m}_p{_pct_name(p)}"] = pd.Series([], dtype="float64")
    int_cols = ["faces", "images", "videos", "hd_faces", *[f"fail_{r}" for r in HD_FAIL_REASONS]]
    out[int_cols] = out[int_cols].astype("int64")
    out.columns.name = None
    return out


def _pct_name(p: float) -> str:
    p = round(float(p), 6)
    return str(int(p)) if p == int(p) else str(p).replace(".", "_")


# ----------------------------------------------------------------------------- diagnosis


@dataclass
class Diagnosis:
    """The answer of :func:`diagnose_clustering`.

    Attributes
    ----------
    verdict : str
        One of ``no_faces``, ``not_run``, ``no_hd_faces``, ``too_few_images``,
        ``no_same_person``, ``could_form`` (clustering has not seen faces that could make a
        cluster) and ``clustered`` (clusters exist).
    findings : list of str
        Plain-language findings, most important first.
    counts : dict
        The numbers behind them (faces, unavailable, independent, clustered, clusters,
        hd_faces, candidate_faces, candidate_hd_faces, candidate_hd_images, fail_* and,
        with identities or embeddings, possible_clusters).
    """

    verdict: str
    findings: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        """The one-sentence answer."""
        return self.findings[0] if self.findings else ""

    @property
    def text(self) -> str:
        """The findings as plain text, one per line."""
        return "\n".join(f"- {f}" for f in self.findings)

    def __str__(self) -> str:
        return f"Clustering diagnosis: {self.verdict}\n{self.text}"

    def _repr_markdown_(self) -> str:
        return f"**Clustering diagnosis: `{self.verdict}`**\n\n" + "\n".join(f"- {f}" for f in self.findings)

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(f)}</li>" for f in self.findings)
        return f"<div><b>Clustering diagnosis: <code>{html.escape(self.verdict)}</code></b><ul>{items}</ul></div>"


def diagnose_clustering(
    figures: pd.DataFrame,
    *,
    min_faces: int = 3,
    labels: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    threshold: float = 0.5,
    block_size: int = 4096,
    n_neighbors: int = 30,
    progress: bool = False,
    **hd_kwargs: float,
) -> Diagnosis:
    """Answer IMM's FAQ "why does face clustering not generate any clusters?" for a figures frame.

    IMM forms a cluster only from at least ``min_faces`` (3) high-definition faces of one
    person in distinct images; once it exists, poorer faces of that person may join it. The
    diagnosis checks, in order:

    1. whether any face was indexed at all;
    2. whether clustering has run: ``figure-cluster-id-unavailable`` faces were indexed after
       the last CreateFigureClusteringTask;
    3. how many faces not in a cluster (independent or unavailable: the *candidates*) are
       high-definition, and why the others are not;
    4. whether a cluster could form under the 3-image rule: the number of distinct images
       holding a candidate high-definition face. Which of them show the same person cannot
       be known from IMM's metadata; pass ``labels`` (known identities) or ``embeddings``
       (nearest neighbours linked at cosine similarity >= ``threshold``) to estimate how
       many clusters could form.

    Parameters
    ----------
    figures : DataFrame
        A figures frame (``load_figures``), before or after clustering.
    min_faces : int, default=3
        High-definition faces in distinct images needed to found a cluster.
    labels : array-like of int, shape (n,), optional
        Known identity of each face (row-aligned; negative = unknown, never grouped).
    embeddings : ndarray, shape (n, dim), optional
        Face embeddings row-aligned with ``figures``; used when ``labels`` is None. One
        k-nearest-neighbour search (:func:`imm_analysis.cluster.knn.build_knn`) runs over the
        candidate high-definition faces only; two of them are linked when one is among the
        other's ``n_neighbors`` nearest candidate high-definition faces **and** their cosine
        similarity is >= ``threshold``. Groups are the connected components of these links
        (see Notes for how this relates to linking all pairs).
    threshold : float, default=0.5
        Cosine similarity for ``embeddings``. Model-specific: 0.5 suits the 128-d test
        model and the synthetic embeddings; calibrate yours.
    block_size : int, default=4096
        Query rows per block of the exact neighbour search (memory about ``block_size x m``
        for m candidate high-definition faces); unused by the FAISS search.
    n_neighbors : int, default=30
        Neighbours searched per candidate high-definition face (as ``FigureClusterer``).
    progress : bool, default=False
        Show the neighbour search's progress bar.
    **hd_kwargs
        ``min_size``, ``max_pose``, ``min_quality`` of the high-definition rule.

    Returns
    -------
    Diagnosis
        ``verdict``, ``findings`` (plain language), ``counts``; renders in notebooks.

    Notes
    -----
    With ``embeddings`` the cost is that of one ``build_knn`` over the m candidate
    high-definition faces: exact blockwise search up to
    :data:`~imm_analysis.cluster.knn.EXACT_MAX_N` faces (O(m^2 dim) time in blocks, memory
    O(block_size m)), FAISS IVF above (about O(m^1.5 dim), approximate: it finds about 99% of
    same-person neighbours). No m x m matrix is built; the links take O(m n_neighbors) memory.

    What is measured: the groups of the graph "``j`` is among the ``n_neighbors`` nearest of
    ``i`` (or ``i`` of ``j``) and similarity >= ``threshold``". With the exact search it equals
    grouping *all* pairs at >= ``threshold`` (single linkage), except that a link between ``i``
    and ``j`` is missed when neither is among the other's nearest, which needs both faces to
    have at least ``n_neighbors`` other candidates at >= ``threshold``: only people with more
    than ``n_neighbors`` candidate faces (or a threshold so low that strangers match) can be
    split into several groups. Raise ``n_neighbors`` to rule that out (``n_neighbors >= m - 1``
    links all pairs, at O(m^2) memory).

    Examples
    --------
    >>> from imm_analysis.synth import make_dataset
    >>> ds = make_dataset(5, seed=1)
    >>> diagnose_clustering(ds.figures).verdict
    'not_run'
    """
    unknown = set(hd_kwargs) - {"min_size", "max_pose", "min_quality"}
    if unknown:
        raise TypeError(f"diagnose_clustering got unexpected keyword arguments {sorted(unknown)}")
    if min_faces < 1:
        raise ValueError(f"min_faces must be >= 1, got {min_faces}")
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    n = len(figures)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have one entry per face ({n}), got shape {labels.shape}")
    if embeddings is not None and labels is None:
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[0] != n:
            raise ValueError(f"embeddings must have shape ({n}, dim) aligned with figures, got {embeddings.shape}")

    rule = {**HD_RULE, **hd_kwargs}
    is_hd, reason = hd_mask(figures, **rule)
    if "figure_cluster_id" in figures.columns:
        cid = figures["figure_cluster_id"].astype("string").fillna(CLUSTER_UNAVAILABLE).to_numpy(dtype=object)
    else:
        cid = np.full(n, CLUSTER_UNAVAILABLE, dtype=object)
    unavailable = cid == CLUSTER_UNAVAILABLE
    independent = cid == CLUSTER_INDEPENDENT
    clustered = ~(unavailable | independent)
    candidate = ~clustered
    file_id = (
        figures["file_id"].astype("string").to_numpy(dtype=object) if "file_id" in figures.columns else np.arange(n)
    )
    cand_hd = candidate & is_hd
    counts: dict[str, Any] = {
        "faces": n,
        "unavailable": int(unavailable.sum()),
        "independent": int(independent.sum()),
        "clustered": int(clustered.sum()),
        "clusters": int(len(set(cid[clustered]))),
        "hd_faces": int(is_hd.sum()),
        "candidate_faces": int(candidate.sum()),
        "candidate_hd_faces": int(cand_hd.sum()),
        "candidate_hd_images": int(len(set(file_id[cand_hd]))),
    }
    fails = {r: int(((reason == i) & candidate).sum()) for i, r in enumerate(HD_FAIL_REASONS)}
    counts.update({f"fail_{r}": v for r, v in fails.items()})
    groups = None
    if labels is not None or embeddings is not None:
        groups = _possible_groups(
            cand_hd, file_id, labels, embeddings, threshold, min_faces, block_size, n_neighbors, progress
        )
        counts["possible_clusters"] = len(groups)
        counts["possible_cluster_sizes"] = sorted((len(g) for g in groups), reverse=True)

    rule_text = (
        f"high-definition means width and height > {rule['min_size']:g} px, |pitch|, |roll|, |yaw| < "
        f"{rule['max_pose']:g} degrees and face_quality > {rule['min_quality']:g}"
    )
    verdict, findings = _explain(counts, fails, groups, min_faces, rule_text, labels is not None)
    return Diagnosis(verdict, findings, counts)


def _possible_groups(
    cand_hd, file_id, labels, embeddings, threshold, min_faces, block_size, n_neighbors=30, progress=False
) -> list[np.ndarray]:
    """Groups of candidate HD faces (row indices) that reach ``min_faces`` distinct files."""
    rows = np.flatnonzero(cand_hd)
    if labels is not None:
        lab = np.asarray(labels)[rows]
        keep = lab >= 0
        rows, comp = rows[keep], lab[keep]
    else:
        comp = _embedding_components(np.asarray(embeddings)[rows], rows, threshold, block_size, n_neighbors, progress)
    frame = pd.DataFrame({"g": comp, "row": rows, "file": file_id[rows]})
    n_files = frame.groupby("g")["file"].nunique()
    ok = n_files.index[n_files >= min_faces]
    return [grp["row"].to_numpy() for _, grp in frame[frame["g"].isin(ok)].groupby("g")]


def _embedding_components(x, rows, threshold, block_size, n_neighbors, progress) -> np.ndarray:
    """Component id per row of ``x``: kNN links at similarity >= ``threshold`` (see diagnose_clustering)."""
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"embeddings must be numeric, got dtype {x.dtype}")
    finite = np.isfinite(x).all(axis=1) if x.size else np.ones(len(x), bool)
    if not finite.all():
        raise ValueError(f"embeddings row {int(rows[np.flatnonzero(~finite)[0]])} contains NaN or infinity")
    m = len(x)
    if m < 2:
        return np.arange(m)
    # lazy: the cluster package sits beside quality in the computation layer
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from imm_analysis.cluster.knn import build_knn

    graph = build_knn(x, min(int(n_neighbors), m - 1), block_size=block_size, progress=progress)
    i, j, _ = graph.edges(threshold)
    links = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(m, m))
    return connected_components(links, directed=False)[1]


def _plural(k: int, word: str) -> str:
    return f"{k:,} {word}{'' if k == 1 else 's'}"


def _explain(c, fails, groups, min_faces, rule_text, by_labels) -> tuple[str, list[str]]:
    n, cand, cand_hd, cand_img = c["faces"], c["candidate_faces"], c["candidate_hd_faces"], c["candidate_hd_images"]
    if n == 0:
        return "no_faces", [
            "No faces were indexed, so there is nothing to cluster. Check that IndexFileMeta or CreateBinding "
            "indexed the images and that the images show faces (GetFileMeta lists Figures)."
        ]
    findings: list[str] = []
    reasons = ", ".join(f"{v:,} {r.replace('_', ' ')}" for r, v in sorted(fails.items(), key=lambda kv: -kv[1]) if v)
    hd_line = f"Of the {_plural(cand, 'face')} not in any cluster, {cand_hd:,} are high-definition ({rule_text})" + (
        f"; the others fail on: {reasons}." if reasons else "."
    )
    if cand_img >= min_faces:
        rule_line = (
            f"Those high-definition faces are in {_plural(cand_img, 'distinct image')}: enough for a cluster only "
            f"if at least {min_faces} of them show the same person (IMM needs {min_faces} high-definition faces "
            f"of one person in distinct images)."
        )
    else:
        rule_line = (
            f"Those high-definition faces are in only {_plural(cand_img, 'distinct image')}, fewer than the {min_faces} "
            f"that IMM needs for one person, so no new cluster can form."
        )
    if groups is not None:
        how = "known identities" if by_labels else "their embeddings"
        sizes = ", ".join(str(len(g)) for g in sorted(groups, key=len, reverse=True)[:10])
        rule_line += (
            f" Grouping them by {how}, {_plural(len(groups), 'group')} reach{'es' if len(groups) == 1 else ''} "
            f"{min_faces} distinct images" + (f" (faces per group: {sizes})." if groups else ".")
        )

    if c["clusters"]:
        verdict = "clustered"
        findings.append(
            f"Clustering has run: {_plural(c['clusters'], 'cluster')} hold {_plural(c['clustered'], 'face')} of {n:,}; "
            f"{c['independent']:,} faces are independent (in no cluster)."
        )
    elif c["unavailable"] == n:
        verdict = "not_run"
        findings.append(
            f"Clustering has not run on these faces: all {n:,} are figure-cluster-id-unavailable. Call "
            "CreateFigureClusteringTask (it is incremental), wait for it to finish (usually seconds, up to 180 s), "
            "then wait about 10 s before QueryFigureClusters or SimpleQuery."
        )
    elif cand_hd == 0:
        verdict = "no_hd_faces"
        findings.append(
            "No cluster: clustering has run but none of the faces is high-definition, and IMM founds a cluster "
            f"only on {min_faces} high-definition faces of one person."
        )
    elif cand_img < min_faces:
        verdict = "too_few_images"
        findings.append(
            f"No cluster: only {_plural(cand_img, 'image')} holds a high-definition face, fewer than the "
            f"{min_faces} images of one person IMM needs."
        )
    elif groups is not None and not groups:
        verdict = "no_same_person"
        findings.append(
            f"No cluster: there are enough high-definition faces, but no person has {min_faces} of them in "
            "distinct images; add more good photos of the same people."
        )
    else:
        verdict = "could_form" if c["unavailable"] else "no_same_person"
        findings.append(
            "No cluster yet: some faces are figure-cluster-id-unavailable (indexed after the last run); run "
            "CreateFigureClusteringTask again."
            if c["unavailable"]
            else f"No cluster: clustering has run; the high-definition faces probably show different people (fewer "
            f"than {min_faces} images of any one person)."
        )
    if c["unavailable"] and verdict != "not_run":
        findings.append(
            f"{_plural(c['unavailable'], 'face')} {'is' if c['unavailable'] == 1 else 'are'} "
            "figure-cluster-id-unavailable: indexed after the last CreateFigureClusteringTask; run it again to "
            "cluster them."
        )
    findings.append(hd_line)
    findings.append(rule_line)
    if verdict in ("not_run", "could_form") and groups is not None:
        findings.append(f"Once clustering runs, about {_plural(len(groups), 'new cluster')} can form from these faces.")
    if verdict == "clustered" and c["clustered"]:
        findings.append(
            "Faces that are not high-definition may still join an existing cluster; independent faces are people "
            f"seen fewer than {min_faces} times with a high-definition face, or faces too poor to match."
        )
    return verdict, findings
