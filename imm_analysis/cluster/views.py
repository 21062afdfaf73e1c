"""IMM-shaped answers from a :class:`~imm_analysis.cluster.state.ClusterState`.

The dicts have the shapes of IMM's QueryFigureClusters, GetFigureCluster and SimpleQuery
responses, so code written against IMM works on a local clustering, and
:func:`imm_analysis.load_clusters` / :func:`imm_analysis.load_files` read them back.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis.io.imm_json import to_imm_clusters, to_imm_files

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.cluster.state import ClusterState

__all__ = ["query_figure_clusters", "get_figure_cluster", "simple_query"]

_SORT_FIELDS = {
    "facecount": "face_count",
    "imagecount": "image_count",
    "videocount": "video_count",
    "createtime": "create_time",
    "updatetime": "update_time",
    "name": "name",
    "averageage": "average_age",
}


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _offset(next_token: str | None) -> int:
    if not next_token:
        return 0
    try:
        kind, value = str(next_token).split(":", 1)
        if kind != "offset":
            raise ValueError
        return max(int(value), 0)
    except ValueError:
        raise ValueError(f"invalid next_token {next_token!r} (use the NextToken of a previous answer)") from None


def _page(n: int, max_results: int, next_token: str | None) -> tuple[int, int, str]:
    if not 1 <= int(max_results) <= 1000:
        raise ValueError(f"max_results must be between 1 and 1000, got {max_results}")
    start = _offset(next_token)
    stop = min(start + int(max_results), n)
    return start, stop, f"offset:{stop}" if stop < n else ""


def query_figure_clusters(
    state: ClusterState,
    sort: str = "FaceCount",
    order: str = "desc",
    max_results: int = 100,
    next_token: str | None = None,
) -> dict[str, Any]:
    """List clusters like IMM's QueryFigureClusters.

    Parameters
    ----------
    state : ClusterState
    sort : str, default="FaceCount"
        ``FaceCount``, ``ImageCount``, ``VideoCount``, ``CreateTime``, ``UpdateTime``, ``Name``
        or ``AverageAge`` (snake_case accepted).
    order : {"desc", "asc"}, default="desc"
    max_results : int, default=100
        Clusters per page.
    next_token : str, optional
        ``NextToken`` of the previous page.

    Returns
    -------
    dict
        ``{"FigureClusters": [...], "NextToken": ..., "TotalCount": n, "RequestId": ...}``;
        ``load_clusters`` reads it back.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from imm_analysis.cluster.state import ClusterState
    >>> x = np.repeat(np.eye(4, 16), 3, axis=0)
    >>> figs = pd.DataFrame({"figure_id": [f"f{i}" for i in range(12)], "file_id": [f"i{i}" for i in range(12)]})
    >>> s = ClusterState.from_figures(figs, x, threshold=0.5, hd_rule=lambda f: np.ones(len(f), bool), seed=0)
    >>> page = query_figure_clusters(s, max_results=3)
    >>> len(page["FigureClusters"]), page["TotalCount"], page["NextToken"]
    (3, 4, 'offset:3')
    """
    key = _SORT_FIELDS.get(str(sort).replace("_", "").lower())
    if key is None:
        raise ValueError(f"sort must be one of {sorted(_SORT_FIELDS)} (IMM names or snake_case), got {sort!r}")
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
    clusters = state.clusters.sort_values(
        [key, "cluster_id"], ascending=[order == "asc", True], kind="stable", na_position="last"
    )
    start, stop, token = _page(len(clusters), max_results, next_token)
    out = to_imm_clusters(clusters.iloc[start:stop])
    out["NextToken"] = token
    out["TotalCount"] = len(clusters)
    out["RequestId"] = _request_id()
    return out


def get_figure_cluster(state: ClusterState, cluster_id: str) -> dict[str, Any]:
    """One cluster like IMM's GetFigureCluster: ``{"FigureCluster": {...}, "RequestId": ...}``.

    Raises KeyError for an unknown id.

    Examples
    --------
    >>> from imm_analysis.cluster.state import ClusterState
    >>> from imm_analysis.synth import make_dataset
    >>> ds = make_dataset(4, seed=1)
    >>> state = ClusterState.from_figures(ds.figures, ds.embeddings, threshold=0.45, seed=0)
    >>> cid = state.clusters["cluster_id"].iloc[0]
    >>> cluster = get_figure_cluster(state, cid)["FigureCluster"]
    >>> cluster["ObjectId"] == cid, cluster["FaceCount"] == int(state.clusters["face_count"].iloc[0])
    (True, True)
    """
    hit = state.clusters[(state.clusters["cluster_id"] == cluster_id).to_numpy(bool)]
    if not len(hit):
        raise KeyError(f"unknown cluster_id {cluster_id!r}")
    return {"FigureCluster": to_imm_clusters(hit)["FigureClusters"][0], "RequestId": _request_id()}


_FIELDS = {
    "Figures.FigureClusterId": "figure_cluster_id",
    "Figures.FigureId": "figure_id",
    "ObjectId": "file_id",
    "URI": "uri",
    "MediaType": "media_type",
}


def _match(figures: pd.DataFrame, query: dict[str, Any]) -> np.ndarray:
    """Faces matching one query node (``eq``/``in``/``prefix`` leaves, ``and``/``or``/``not`` nodes)."""
    op = str(query.get("Operation", "")).lower()
    if op in ("and", "or", "not"):
        subs = query.get("SubQueries") or []
        if not subs:
            raise ValueError(f"simple_query: operation {op!r} needs SubQueries")
        parts = [_match(figures, q) for q in subs]
        if op == "and":
            return np.logical_and.reduce(parts)
        if op == "or":
            return np.logical_or.reduce(parts)
        return ~np.logical_or.reduce(parts)
    field = query.get("Field")
    if field not in _FIELDS:
        raise ValueError(f"simple_query: field {field!r} is not supported; use one of {sorted(_FIELDS)}")
    col = _FIELDS[field]
    values = figures[col].astype("string") if col in figures.columns else pd.Series(pd.NA, index=figures.index, dtype="string")
    value = query.get("Value")
    if op == "eq":
        return (values == str(value)).fillna(False).to_numpy(bool)
    if op == "in":
        items = value if isinstance(value, list) else [value]
        return values.isin([str(v) for v in items]).to_numpy(bool)
    if op == "prefix":
        return values.str.startswith(str(value)).fillna(False).to_numpy(bool)
    raise ValueError(f"simple_query: operation {op!r} is not supported (eq, in, prefix, and, or, not)")


def simple_query(
    state: ClusterState,
    query: dict[str, Any] | str,
    *,
    max_results: int = 100,
    next_token: str | None = None,
) -> dict[str, Any]:
    """Files whose faces match ``query``, like IMM's SimpleQuery.

    The typical query lists the images of a cluster:
    ``{"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": cluster_id}``. As in
    IMM, each matching file comes with *all* its faces, including faces of other clusters.
    Supported: fields ``Figures.FigureClusterId``, ``Figures.FigureId``, ``ObjectId``,
    ``URI``, ``MediaType``; operations ``eq``, ``in``, ``prefix`` and ``and``/``or``/``not``
    with ``SubQueries``. ``query`` may be a JSON string, as IMM's API takes it.

    Returns
    -------
    dict
        ``{"Files": [...], "Aggregations": [], "NextToken": ..., "RequestId": ...}``;
        ``load_files`` / ``load_figures`` read it back.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from imm_analysis.cluster.state import ClusterState
    >>> figs = pd.DataFrame({"figure_id": ["a", "b", "c"], "file_id": ["i1", "i2", "i2"]})
    >>> x = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)  # a and b: one person; c: another
    >>> every_face_hd = lambda f: np.ones(len(f), bool)
    >>> state = ClusterState.from_figures(figs, x, threshold=0.5, min_faces=2, hd_rule=every_face_hd, seed=0)
    >>> cid = state.clusters["cluster_id"].iloc[0]
    >>> page = simple_query(state, {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": cid})
    >>> [(f["ObjectId"], [face["FigureId"] for face in f["Figures"]]) for f in page["Files"]]  # c comes with i2
    [('i1', ['a']), ('i2', ['b', 'c'])]
    """
    if isinstance(query, str):
        try:
            query = json.loads(query)
        except json.JSONDecodeError as err:
            raise ValueError(f"simple_query: query is not valid JSON: {err}") from None
    if not isinstance(query, dict):
        raise TypeError(f"simple_query: query must be a dict or JSON string, got {type(query).__name__}")
    figures = state.figures
    hit = _match(figures, query)
    files = pd.unique(figures["file_id"].astype("string")[hit].dropna())
    start, stop, token = _page(len(files), max_results, next_token)
    page_files = set(files[start:stop].tolist())
    rows = figures["file_id"].astype("string").isin(page_files).to_numpy(bool)
    out = to_imm_files(None, figures[rows])
    out["NextToken"] = token
    out["RequestId"] = _request_id()
    return out
