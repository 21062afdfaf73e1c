"""diagnose_clustering: IMM's FAQ "why does face clustering not generate any clusters?", answered."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from imm_analysis.cluster.diagnose.checks import CHECKS, plural, run_advice
from imm_analysis.cluster.diagnose.facts import Facts, gather_facts
from imm_analysis.cluster.knn import KNNGraph
from imm_analysis.quality.hd import HDRule, RuleLike

__all__ = ["Diagnosis", "diagnose_clustering"]


@dataclass
class Diagnosis:
    """The answer of :func:`diagnose_clustering`.

    Attributes
    ----------
    verdict : str
        The ``name`` of the first check of :data:`~imm_analysis.cluster.diagnose.checks.CHECKS`
        that applies: ``no_faces``, ``clustered``, ``not_run``, ``no_hd_faces``,
        ``too_few_images``, ``no_same_person`` or ``could_form``.
    findings : list of str
        Plain-language findings, most important first.
    counts : dict
        The numbers behind them (faces, unavailable, independent, clustered, clusters,
        hd_faces, candidate_faces, candidate_hd_faces, candidate_hd_images, fail_* and,
        with identities, embeddings or a graph, possible_clusters).

    Examples
    --------
    >>> d = Diagnosis("no_faces", ["Nothing to cluster."])
    >>> d.headline
    'Nothing to cluster.'
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
    knn: KNNGraph | None = None,
    threshold: float | None = None,
    rule: RuleLike = None,
    source: Literal["auto", "imm", "local"] = "auto",
    block_size: int = 4096,
    n_neighbors: int = 30,
    progress: bool = False,
    **hd_kwargs: float,
) -> Diagnosis:
    """Answer IMM's FAQ "why does face clustering not generate any clusters?" for a figures frame.

    A cluster forms only from at least ``min_faces`` (3) high-definition faces of one
    person in distinct images; once it exists, poorer faces of that person may join it. Each
    verdict is one small check (:data:`~imm_analysis.cluster.diagnose.checks.CHECKS`, each
    with a ``name`` and ``description``), tried in order:

    1. ``no_faces``: no face was indexed;
    2. ``clustered``: clusters exist;
    3. ``not_run``: every face is ``figure-cluster-id-unavailable``;
    4. ``no_hd_faces`` / ``too_few_images``: the faces not in a cluster (the *candidates*)
       hold no high-definition face, or hold them in fewer than ``min_faces`` images;
    5. ``no_same_person`` / ``could_form``: whether the candidates could found a cluster.
       Which of them show the same person cannot be known from IMM's metadata; pass
       ``labels`` (known identities), ``embeddings`` or a ``knn`` graph (neighbours linked at
       cosine similarity >= ``threshold``) to count how many clusters could form.

    Parameters
    ----------
    figures : DataFrame
        A figures frame (``load_figures``, ``embed_images(...).figures``).
    min_faces : int, default=3
        High-definition faces in distinct images needed to found a cluster.
    labels : array-like of int, shape (n,), optional
        Known identity of each face (row-aligned; negative = unknown, never grouped).
    embeddings : ndarray, shape (n, dim), optional
        Face embeddings row-aligned with ``figures``; used when ``labels`` is None. Two
        candidate high-definition faces are linked when one is among the other's
        ``n_neighbors`` nearest candidate high-definition faces **and** their cosine
        similarity is >= ``threshold``; groups are the connected components.
    knn : KNNGraph, optional
        A precomputed graph over all ``n`` faces (``FigureClusterer.knn_``, ``build_knn``):
        no neighbour search runs; it is restricted to the candidate high-definition faces.
    threshold : float, optional
        Cosine similarity linking two faces. None: calibrated from ``embeddings`` by
        :func:`~imm_analysis.cluster.calibrate.calibrate_threshold`, as ``FigureClusterer``
        does (with only ``knn`` a threshold must be given).
    rule : HDRule or mapping, optional
        The high-definition rule; default IMM's (:class:`~imm_analysis.quality.HDRule`).
    source : {"auto", "imm", "local"}, default="auto"
        Where the faces come from, for the advice: ``"local"`` suggests
        :func:`~imm_analysis.cluster.cluster_faces`, ``"imm"`` CreateFigureClusteringTask.
        ``"auto"``: local when ``embeddings`` or ``knn`` are given (IMM exports none).
    block_size : int, default=4096
        Query rows per block of the exact neighbour search.
    n_neighbors : int, default=30
        Neighbours searched per candidate high-definition face (as ``FigureClusterer``).
    progress : bool, default=False
        Show the neighbour search's progress bar.
    **hd_kwargs
        ``min_size``, ``max_pose``, ``min_quality``: override single thresholds of ``rule``.

    Returns
    -------
    Diagnosis
        ``verdict``, ``findings`` (plain language), ``counts``; renders in notebooks.

    Notes
    -----
    With ``embeddings`` the cost is one ``build_knn`` over the m candidate
    high-definition faces: exact blockwise search up to
    :data:`~imm_analysis.cluster.knn.EXACT_MAX_N` faces (memory O(block_size m)), FAISS IVF
    above. No m x m matrix is built. With the exact search the groups equal grouping *all*
    pairs at >= ``threshold`` (single linkage), except that a link is missed when neither face
    is among the other's nearest, which needs more than ``n_neighbors`` candidates of one
    person at >= ``threshold``; raise ``n_neighbors`` to rule that out. A ``knn`` graph over all
    faces keeps only neighbours that are candidates, so it may link fewer pairs.

    Examples
    --------
    >>> from imm_analysis.synth import make_dataset
    >>> ds = make_dataset(5, seed=1)
    >>> diagnose_clustering(ds.figures).verdict
    'not_run'
    >>> d = diagnose_clustering(ds.figures, embeddings=ds.embeddings, threshold=0.5)
    >>> d.verdict, "cluster_faces" in d.headline
    ('not_run', True)
    """
    unknown = set(hd_kwargs) - {"min_size", "max_pose", "min_quality"}
    if unknown:
        raise TypeError(f"diagnose_clustering got unexpected keyword arguments {sorted(unknown)}")
    hd_rule = HDRule.coerce(rule, **hd_kwargs)
    if min_faces < 1:
        raise ValueError(f"min_faces must be >= 1, got {min_faces}")
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if source not in ("auto", "imm", "local"):
        raise ValueError(f"source must be 'auto', 'imm' or 'local', got {source!r}")
    n = len(figures)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have one entry per face ({n}), got shape {labels.shape}")
    if embeddings is not None and labels is None:
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[0] != n:
            raise ValueError(f"embeddings must have shape ({n}, dim) aligned with figures, got {embeddings.shape}")
    if knn is not None and knn.n_samples != n:
        raise ValueError(f"knn has {knn.n_samples} rows but figures have {n}")
    local = source == "local" or (source == "auto" and (embeddings is not None or knn is not None))
    facts = gather_facts(
        figures, hd_rule, min_faces=min_faces, labels=labels, embeddings=embeddings, knn=knn,
        threshold=threshold, block_size=block_size, n_neighbors=n_neighbors, progress=progress, local=local,
    )
    check = next(c for c in CHECKS if c.applies(facts))
    findings = [check.headline(facts)]
    if check.name != "no_faces":
        findings += _context(facts, check.name)
    return Diagnosis(check.name, findings, facts.counts)


def _context(facts: Facts, verdict: str) -> list[str]:
    """The findings after the headline: unclustered faces, the HD rule, the image rule."""
    c, min_faces, groups = facts.counts, facts.min_faces, facts.groups
    out: list[str] = []
    if c["unavailable"] and verdict != "not_run":
        out.append(
            f"{plural(c['unavailable'], 'face')} {'is' if c['unavailable'] == 1 else 'are'} "
            f"figure-cluster-id-unavailable: added after the last clustering run; {run_advice(facts)} to "
            "cluster them."
        )
    reasons = ", ".join(
        f"{v:,} {r.replace('_', ' ')}" for r, v in sorted(facts.fails.items(), key=lambda kv: -kv[1]) if v
    )
    rule_text = (
        f"high-definition means width and height > {facts.rule.min_size:g} px, |pitch|, |roll|, |yaw| < "
        f"{facts.rule.max_pose:g} degrees and face_quality > {facts.rule.min_quality:g}"
    )
    out.append(
        f"Of the {plural(c['candidate_faces'], 'face')} not in any cluster, {c['candidate_hd_faces']:,} are "
        f"high-definition ({rule_text})" + (f"; the others fail on: {reasons}." if reasons else ".")
    )
    cand_img = c["candidate_hd_images"]
    if cand_img >= min_faces:
        line = (
            f"Those high-definition faces are in {plural(cand_img, 'distinct image')}: enough for a cluster only "
            f"if at least {min_faces} of them show the same person ({min_faces} high-definition faces of one "
            "person in distinct images are needed)."
        )
    else:
        line = (
            f"Those high-definition faces are in only {plural(cand_img, 'distinct image')}, fewer than the "
            f"{min_faces} needed for one person, so no new cluster can form."
        )
    if groups is not None:
        how = "known identities" if facts.by_labels else "their embeddings"
        sizes = ", ".join(str(len(g)) for g in sorted(groups, key=len, reverse=True)[:10])
        line += (
            f" Grouping them by {how}, {plural(len(groups), 'group')} reach{'es' if len(groups) == 1 else ''} "
            f"{min_faces} distinct images" + (f" (faces per group: {sizes})." if groups else ".")
        )
    out.append(line)
    if verdict in ("not_run", "could_form") and groups is not None:
        out.append(f"Once clustering runs, about {plural(len(groups), 'new cluster')} can form from these faces.")
    if verdict == "clustered" and c["clustered"]:
        out.append(
            "Faces that are not high-definition may still join an existing cluster; independent faces are people "
            f"seen fewer than {min_faces} times with a high-definition face, or faces too poor to match."
        )
    return out
