"""Two clustering runs of one synthetic dataset: clustered, then grown and clustered again, with the truth.

:func:`make_runs` plays IMM's incremental ``CreateFigureClusteringTask`` twice on a
:func:`~imm_analysis.synth.make_dataset` dataset. The first run sees the earliest files; before the
second, more files are indexed and a few are removed, and the operator merges two clusters and names
one. Run 2 keeps every earlier assignment (IMM's incremental promise) except for ``broken`` faces
that are deliberately moved or made independent, so a diff can be checked against a known answer
for every category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.quality import hd_mask
from imm_analysis.schema import CLUSTER_INDEPENDENT, coerce_frame, empty_frame
from imm_analysis.synth import SynthDataset, make_dataset

__all__ = ["SynthRuns", "make_runs"]


@dataclass
class SynthRuns:
    """What :func:`make_runs` returns.

    Attributes
    ----------
    dataset : SynthDataset
        The whole dataset (every file ever indexed).
    before, after : (clusters, figures)
        The exports after run 1 and after run 2 (``load_clusters`` / ``load_figures`` columns).
    truth : dict
        ``faces``: change -> set of figure ids (``new``, ``removed``, ``newly_clustered``, ``left``,
        ``moved``, ``unchanged``); ``clusters``: change -> set of cluster ids (``created``,
        ``deleted``, ``grown``, ``shrunk``, ``renamed``, ``unchanged``); ``renamed``: cluster ids
        whose name changed; ``broken``: figure ids that break the incremental promise; ``merged``:
        absorbed cluster id -> the cluster it was merged into; ``removed_files``: file ids.
    """

    dataset: SynthDataset
    before: tuple[pd.DataFrame, pd.DataFrame]
    after: tuple[pd.DataFrame, pd.DataFrame]
    truth: dict[str, Any] = field(default_factory=dict)


def _qualifies(people: np.ndarray, files: np.ndarray, hd: np.ndarray, min_faces: int) -> np.ndarray:
    """People with at least ``min_faces`` high-definition faces in distinct files (IMM's founding rule)."""
    pairs = pd.DataFrame({"p": people[hd], "f": files[hd]}).drop_duplicates()
    counts = pairs.groupby("p").size()
    return counts.index[counts >= min_faces].to_numpy()


def _clusters(figures: pd.DataFrame, names: dict[str, str], project: str, dataset: str) -> pd.DataFrame:
    member = figures[figures["cluster_state"] == "clustered"]
    if not len(member):
        return empty_frame("clusters")
    g = member.groupby(member["figure_cluster_id"].astype(str), sort=True)
    out = pd.DataFrame({"face_count": g.size(), "image_count": g["file_id"].nunique()})
    out = out.rename_axis("cluster_id").reset_index()
    out["name"] = out["cluster_id"].map(names)
    out["project_name"], out["dataset_name"], out["object_type"] = project, dataset, "figure-cluster"
    out = out.sort_values(["face_count", "cluster_id"], ascending=[False, True], kind="stable")
    return coerce_frame(out.reset_index(drop=True), "clusters")


def make_runs(
    n_people: int = 40,
    *,
    grow_share: float = 0.3,
    removed_files: int = 3,
    broken: int = 2,
    min_faces: int = 3,
    seed: int = 0,
    **dataset_params: Any,
) -> SynthRuns:
    """A dataset clustered, then grown and clustered again (IMM's incremental run), with the truth.

    Parameters
    ----------
    n_people : int, default=40
        Regular customers (see :func:`~imm_analysis.synth.make_dataset`).
    grow_share : float, default=0.3
        Share of the files (the latest captured) indexed between the two runs.
    removed_files : int, default=3
        Files of run 1 removed before run 2: every file of one clustered person (its cluster is
        deleted) plus more files when this asks for more.
    broken : int, default=2
        Faces clustered in run 1 that run 2 moves to another cluster (the first is made independent
        instead): the faces that break the incremental promise.
    min_faces : int, default=3
        IMM's founding rule: a person becomes a cluster with this many high-definition faces.
    seed : int, default=0
    **dataset_params
        More :func:`~imm_analysis.synth.make_dataset` arguments.

    Returns
    -------
    SynthRuns
        ``before`` and ``after`` exports and the ``truth`` of every change. The operator also
        merges the second-largest run-1 cluster into the largest and names a third cluster.

    Examples
    --------
    >>> runs = make_runs(30, seed=1)
    >>> clusters_before, figures_before = runs.before
    >>> sorted(runs.truth["faces"])
    ['left', 'moved', 'new', 'newly_clustered', 'removed', 'unchanged']
    """
    if not 0.0 < grow_share < 1.0:
        raise ValueError(f"grow_share must be in (0, 1), got {grow_share}")
    ds = make_dataset(n_people, seed=seed, **dataset_params)
    rng = np.random.default_rng([seed, 14])
    figs = ds.figures.reset_index(drop=True)
    people = ds.labels.astype(np.int64)
    file_ids = figs["file_id"].astype(str).to_numpy()
    fig_ids = figs["figure_id"].astype(str).to_numpy()
    hd = hd_mask(figs)[0]
    order = ds.files["file_id"].astype(str).tolist()  # files by capture time
    cut = int(round(len(order) * (1 - grow_share)))
    early = np.isin(file_ids, order[:cut])

    clustered1 = _qualifies(people[early], file_ids[early], hd[early], min_faces)
    sizes = pd.Series(people[early & np.isin(people, clustered1)]).value_counts()
    if len(sizes) < 5:
        raise ValueError("too few clusters in run 1 for every change; use more people")
    later = pd.Series(people[~early]).value_counts()
    x, y = sizes.index[0], sizes.index[1]  # y is merged into x
    # the person whose cluster is deleted: clustered in run 1, never seen again, fewest files
    candidates = [p for p in sizes.index[::-1] if p not in (x, y) and later.get(p, 0) == 0]
    if not candidates:
        raise ValueError("no run-1 cluster without later faces to delete; use a smaller grow_share or more people")
    gone = candidates[0]
    drop_files = set(file_ids[people == gone])
    others = [f for f in order[:cut] if f not in drop_files]
    extra = max(0, removed_files - len(drop_files))
    drop_files |= set(rng.choice(others, size=extra, replace=False).tolist()) if extra else set()
    kept_early = early & ~np.isin(file_ids, list(drop_files))
    visible2 = ~np.isin(file_ids, list(drop_files))
    clustered2 = np.union1d(clustered1, _qualifies(people[visible2], file_ids[visible2], hd[visible2], min_faces))

    uuids = rng.integers(0, 2**63, size=(people.max() + 1, 2))
    cid = np.array([f"Cluster-{a:016x}-{b:016x}" for a, b in uuids], dtype=object)
    before_ids = np.where(np.isin(people, clustered1), cid[people], CLUSTER_INDEPENDENT)
    after_person = np.where(people == y, x, people)
    after_ids = np.where(np.isin(people, clustered2), cid[after_person], CLUSTER_INDEPENDENT)
    # a renamed cluster: untouched by the run otherwise, when there is one
    touched = set(people[~early]) | set(people[np.isin(file_ids, list(drop_files))]) | {x, y, gone}
    calm = [p for p in sizes.index if p not in touched]
    renamed_person = calm[0] if calm else sizes.index[2]
    # broken faces: earlier assignments run 2 does not keep
    pool = np.flatnonzero(kept_early & np.isin(people, clustered1) & ~np.isin(people, [x, y, gone, renamed_person]))
    broken_rows = rng.choice(pool, size=min(broken, len(pool)), replace=False) if broken else np.empty(0, np.int64)
    for i, r in enumerate(broken_rows):
        after_ids[r] = CLUSTER_INDEPENDENT if i == 0 else cid[x]

    names_after = {cid[renamed_person]: "Store manager"}
    f1 = coerce_frame(figs.loc[early].assign(figure_cluster_id=before_ids[early]), "figures").reset_index(drop=True)
    f2 = coerce_frame(figs.loc[visible2].assign(figure_cluster_id=after_ids[visible2]), "figures").reset_index(drop=True)
    c1 = _clusters(f1, {}, ds.project_name, ds.dataset_name)
    c2 = _clusters(f2, names_after, ds.project_name, ds.dataset_name)

    # the truth, from the people and the operations (not from the ids)
    indep_b = ~np.isin(people, clustered1)
    indep_a = np.array([a == CLUSTER_INDEPENDENT for a in after_ids])
    both = kept_early
    moved_rows = set(broken_rows[1:].tolist()) | set(np.flatnonzero(both & (people == y)).tolist())
    faces = {
        "new": set(fig_ids[~early]),
        "removed": set(fig_ids[early & ~visible2]),
        "newly_clustered": set(fig_ids[both & indep_b & ~indep_a]),
        "left": set(fig_ids[both & ~indep_b & indep_a]),
        "moved": set(fig_ids[sorted(moved_rows)]),
    }
    faces["unchanged"] = set(fig_ids[both]) - set().union(*(faces[k] for k in ("newly_clustered", "left", "moved")))
    count_b = pd.Series(before_ids[early]).value_counts()
    count_a = pd.Series(after_ids[visible2]).value_counts()
    clusters: dict[str, set[str]] = {k: set() for k in ("created", "deleted", "grown", "shrunk", "renamed", "unchanged")}
    for p in np.union1d(clustered1, clustered2):
        c = cid[p]
        nb, na = int(count_b.get(c, 0)), int(count_a.get(c, 0))
        if p in (y, gone):
            clusters["deleted"].add(c)
        elif p not in clustered1:
            clusters["created"].add(c)
        elif na != nb:
            clusters["grown" if na > nb else "shrunk"].add(c)
        elif p == renamed_person:
            clusters["renamed"].add(c)
        else:
            clusters["unchanged"].add(c)
    truth = {
        "faces": faces,
        "clusters": clusters,
        "renamed": {cid[renamed_person]},
        "broken": set(fig_ids[broken_rows]),
        "merged": {cid[y]: cid[x]},
        "removed_files": drop_files,
    }
    return SynthRuns(ds, (c1, f1), (c2, f2), truth)
