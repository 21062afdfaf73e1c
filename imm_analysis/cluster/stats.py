"""Cluster statistics as IMM's FigureCluster reports them, computed from a figures frame."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from imm_analysis import schema

__all__ = ["new_cluster_ids", "cluster_table", "labelled_frames", "ordered_clusters"]


def new_cluster_ids(n: int, rng: np.random.Generator | None = None) -> list[str]:
    """``n`` ids of the form ``Cluster-<uuid4>`` (reproducible when ``rng`` is seeded)."""
    if rng is None:
        return [f"Cluster-{uuid.uuid4()}" for _ in range(n)]
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [f"Cluster-{uuid.UUID(bytes=row.tobytes(), version=4)}" for row in raw]


def cluster_table(
    figures: pd.DataFrame,
    hd: np.ndarray,
    *,
    previous: pd.DataFrame | None = None,
    changed: set[str] | None = None,
    cover_locked: dict[str, str] | None = None,
    now: pd.Timestamp | None = None,
    project_name: str | None = None,
    dataset_name: str | None = None,
) -> pd.DataFrame:
    """One row per cluster of ``figures`` with IMM's FigureCluster statistics.

    ``face_count``; ``image_count`` / ``video_count`` (distinct files by ``media_type``);
    ``average_age`` / ``min_age`` / ``max_age`` over faces with an age; ``gender`` (the most
    frequent, ties alphabetical); ``cover_file_id`` / ``cover_uri``: the file of the cluster's
    best high-definition face (highest ``face_quality``, then largest area; any face when the
    cluster has no HD face) unless a cover was set by hand. ``create_time``, ``name`` and
    ``custom_labels`` are kept from ``previous``; ``update_time`` is ``now`` for new clusters
    and those in ``changed``. Rows are ordered by ``face_count`` descending, then id.
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    cid = figures["figure_cluster_id"].astype("string")
    member = (cid.notna() & (cid != schema.CLUSTER_INDEPENDENT) & (cid != schema.CLUSTER_UNAVAILABLE)).to_numpy(bool)
    f = figures.loc[member].copy()
    f["_cid"] = cid[member].astype(str).to_numpy()
    f["_hd"] = np.asarray(hd, dtype=bool)[member]
    if not len(f):
        return schema.coerce_frame(schema.empty_frame("clusters"), "clusters")
    g = f.groupby("_cid", sort=True)
    out = pd.DataFrame({"face_count": g.size()})
    out.index.name = None
    media = f["media_type"].astype("string") if "media_type" in f.columns else pd.Series("image", index=f.index)
    is_video = (media == "video").fillna(False).to_numpy(bool)
    file_id = f["file_id"].astype("string") if "file_id" in f.columns else pd.Series(f.index.astype(str), index=f.index)
    files = pd.DataFrame({"_cid": f["_cid"].to_numpy(), "file": file_id.to_numpy(), "video": is_video})
    counts = files.drop_duplicates(["_cid", "file"]).groupby(["_cid", "video"]).size().unstack(fill_value=0)
    out["image_count"] = counts.get(False, pd.Series(dtype="int64")).reindex(out.index, fill_value=0)
    out["video_count"] = counts.get(True, pd.Series(dtype="int64")).reindex(out.index, fill_value=0)
    if "age" in f.columns:
        age = pd.to_numeric(f["age"], errors="coerce").astype("float64")
        ga = age.groupby(f["_cid"])
        out["average_age"], out["min_age"], out["max_age"] = ga.mean(), ga.min(), ga.max()
    if "gender" in f.columns:
        gender = f["gender"].astype("string")
        gf = pd.DataFrame({"_cid": f["_cid"], "g": gender}).dropna()
        if len(gf):
            top = gf.groupby(["_cid", "g"]).size().rename("k").reset_index()
            top = top.sort_values(["_cid", "k", "g"], ascending=[True, False, True]).drop_duplicates("_cid")
            out["gender"] = top.set_index("_cid")["g"].reindex(out.index)
    # cover: best HD face
    quality = pd.to_numeric(f["face_quality"], errors="coerce") if "face_quality" in f.columns else pd.Series(np.nan, index=f.index)
    area = (
        pd.to_numeric(f["width"], errors="coerce").astype("float64") * pd.to_numeric(f["height"], errors="coerce").astype("float64")
        if {"width", "height"} <= set(f.columns)
        else pd.Series(np.nan, index=f.index)
    )
    rank = pd.DataFrame(
        {
            "_cid": f["_cid"].to_numpy(),
            "hd": f["_hd"].to_numpy(),
            "q": quality.astype("float64").fillna(-1.0).to_numpy(),
            "area": area.astype("float64").fillna(-1.0).to_numpy(),
            "file": file_id.to_numpy(),
            "uri": (f["uri"].astype("string") if "uri" in f.columns else pd.Series(pd.NA, index=f.index, dtype="string")).to_numpy(),
        }
    )
    best = rank.sort_values(["_cid", "hd", "q", "area"], ascending=[True, False, False, False], kind="stable").drop_duplicates("_cid")
    best = best.set_index("_cid")
    out["cover_file_id"] = best["file"].reindex(out.index)
    out["cover_uri"] = best["uri"].reindex(out.index)
    for c_id, file in (cover_locked or {}).items():
        if c_id in out.index:
            hit = rank[(rank["_cid"] == c_id) & (rank["file"] == file)]
            if len(hit):
                out.loc[c_id, "cover_file_id"] = file
                out.loc[c_id, "cover_uri"] = hit["uri"].iloc[0]
    out["object_type"] = "figure-cluster"
    if project_name is not None:
        out["project_name"] = project_name
    if dataset_name is not None:
        out["dataset_name"] = dataset_name
    out["create_time"] = now
    out["update_time"] = now
    if previous is not None and len(previous):
        prev = previous.set_index(previous["cluster_id"].astype(str))
        known = out.index.intersection(prev.index)
        for col in ("create_time", "update_time", "name", "custom_labels", "custom_id", "extra"):
            if col in prev.columns:
                if col not in out.columns:
                    out[col] = pd.Series([None] * len(out), index=out.index, dtype=object)
                values = prev.loc[known, col]
                if col == "update_time":
                    keep = [k for k in known if k not in (changed or set())]
                    out.loc[keep, col] = prev.loc[keep, col]
                else:
                    out.loc[known, col] = values
    out.insert(0, "cluster_id", out.index.astype(str))
    return ordered_clusters(out)


def ordered_clusters(clusters: pd.DataFrame) -> pd.DataFrame:
    """A clusters frame in :func:`cluster_table`'s order (largest first, then by id), typed by the schema."""
    out = clusters.sort_values(["face_count", "cluster_id"], ascending=[False, True], kind="stable")
    return schema.coerce_frame(out.reset_index(drop=True), "clusters")


def labelled_frames(
    figures: pd.DataFrame,
    labels: np.ndarray,
    hd: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    now: pd.Timestamp | None = None,
    project_name: str | None = None,
    dataset_name: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IMM-shaped frames for a fresh clustering: ``figures`` with ids filled in, and the clusters.

    Label ``i >= 0`` becomes a new ``Cluster-<uuid4>`` id (drawn from ``rng``), -1
    ``figure-cluster-id-independent``. Shared by :func:`~imm_analysis.cluster.cluster_faces`
    and :meth:`~imm_analysis.cluster.ClusterState.from_figures`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> figs = pd.DataFrame({"figure_id": ["a", "b", "c"], "file_id": ["x", "y", "z"]})
    >>> f, c = labelled_frames(figs, np.array([0, 0, -1]), np.ones(3, bool), rng=np.random.default_rng(0))
    >>> f["cluster_state"].tolist(), c["face_count"].tolist()
    (['clustered', 'clustered', 'independent'], [2])
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_new = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    table = np.array([*new_cluster_ids(n_new, rng), schema.CLUSTER_INDEPENDENT], dtype=object)
    ids = pd.array(table[np.where(labels >= 0, labels, n_new)], dtype="string")
    out = figures.copy(deep=False)
    out["figure_cluster_id"] = ids
    out["cluster_state"] = schema.cluster_state(pd.Series(ids, index=out.index)).to_numpy()
    out = schema.coerce_frame(out, "figures")
    clusters = cluster_table(out, hd, now=now, project_name=project_name, dataset_name=dataset_name)
    return out, clusters
