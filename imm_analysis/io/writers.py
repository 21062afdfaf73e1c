"""Write frames back as IMM JSON: :func:`to_imm_clusters` (QueryFigureClusters) and :func:`to_imm_files` (SimpleQuery).

Loading what they write gives equal frames. Times are written in UTC (``...Z``) with nanoseconds.
Also importable from :mod:`imm_analysis.io.imm_json` and :mod:`imm_analysis.io`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis import schema

__all__ = ["to_imm_clusters", "to_imm_files"]

_ZERO_FRACTION = "000000000"


def _rfc3339(values: pd.Series) -> list[str | None]:
    """UTC RFC 3339 strings with up to nine fraction digits (``2022-01-14T02:10:52.83948013Z``)."""
    times = pd.to_datetime(values, utc=True).dt.tz_convert("UTC").astype(schema.TIME)
    ns = times.dt.tz_localize(None).to_numpy().astype("M8[ns]").view(np.int64)
    base = times.dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = np.mod(ns, 1_000_000_000)
    out: list[str | None] = []
    for b, f, na in zip(base.tolist(), frac.tolist(), times.isna().to_numpy().tolist(), strict=True):
        if na:
            out.append(None)
        elif f:
            out.append(f"{b}.{f:09d}".rstrip("0") + "Z")
        else:
            out.append(f"{b}Z")
    return out


def _json_values(series: pd.Series, dtype: str) -> list:
    """Column values as JSON-ready Python objects, None where missing."""
    if dtype == schema.TIME:
        return _rfc3339(series)
    if dtype == schema.OBJECT:
        return series.tolist()
    na = series.isna().to_numpy()
    values: list[Any]
    if dtype == schema.INT:
        values = series.astype("Int64").to_numpy(dtype=np.int64, na_value=0).tolist()
    elif dtype == schema.FLOAT:
        values = series.astype(np.float64).to_numpy().tolist()
    else:
        values = series.astype(schema.STRING).to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
    return [None if m else v for v, m in zip(values, na.tolist(), strict=True)]


def _records(frame: pd.DataFrame, spec: Iterable[tuple[str, str, str | None]], paths: dict[str, str]) -> list[dict]:
    """One IMM dict per row: CamelCase (nested where the path has a dot), missing values left out."""
    fields: list[tuple[str, str, str]] = []
    for col, dtype, imm in spec:
        imm_path = paths.get(col, imm)
        if imm_path and col in frame:
            fields.append((col, imm_path, dtype))
    columns = [(path.split("."), _json_values(frame[col], dtype)) for col, path, dtype in fields]
    extras = frame["extra"].tolist() if "extra" in frame else [None] * len(frame)
    out = []
    for i in range(len(frame)):
        record: dict[str, Any] = {}
        for path, values in columns:
            v = values[i]
            if v is None or (isinstance(v, float) and v != v):
                continue
            if len(path) == 1:
                record[path[0]] = v
            else:
                record.setdefault(path[0], {})[path[1]] = v
        extra = extras[i]
        if isinstance(extra, dict):
            _merge(record, extra)
        out.append(record)
    return out


def _merge(record: dict, extra: dict) -> None:
    """Merge ``extra`` into ``record``; containers are copied, so editing the document leaves the frame as it was."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(record.get(k), dict):
            _merge(record[k], v)
        else:
            record[k] = copy.deepcopy(v) if isinstance(v, (dict, list)) else v


def to_imm_clusters(clusters: pd.DataFrame) -> dict[str, Any]:
    """Write a clusters frame as one QueryFigureClusters response.

    Columns become IMM fields (``face_count`` -> ``FaceCount``; ``cover_file_id`` and
    ``cover_uri`` -> ``Cover.ObjectId`` / ``Cover.URI``), missing values are left out,
    the ``extra`` dict is merged back in, and times are written in UTC
    (``2022-01-14T02:10:52.83948013Z``, nanoseconds kept). ``load_clusters`` of the result
    gives an equal frame.

    Parameters
    ----------
    clusters : pandas.DataFrame
        A clusters frame (as returned by :func:`load_clusters`).

    Returns
    -------
    dict
        ``{"FigureClusters": [...], "NextToken": "", "TotalCount": n}``.

    Examples
    --------
    >>> from imm_analysis import load_clusters, to_imm_clusters
    >>> clusters = load_clusters({"FigureCluster": {"ObjectId": "Cluster-1", "FaceCount": 4}})
    >>> to_imm_clusters(clusters)["FigureClusters"]
    [{'ObjectId': 'Cluster-1', 'FaceCount': 4}]
    """
    paths = {"cover_file_id": "Cover.ObjectId", "cover_uri": "Cover.URI"}
    records = _records(clusters, schema.CLUSTER_SPEC, paths)
    return {"FigureClusters": records, "NextToken": "", "TotalCount": len(records)}


def to_imm_files(files: pd.DataFrame | None, figures: pd.DataFrame | None = None) -> dict[str, Any]:
    """Write a files frame and its faces as one SimpleQuery response.

    Each file gets its faces (rows of ``figures`` with its ``file_id``, in frame order) as
    ``Figures``, with ``Boundary`` and ``HeadPose`` nested again. Faces whose file is not
    in ``files`` get a minimal file built from their ``file_id``, ``uri``, ``media_type``
    and ``produce_time``. ``cluster_state`` is not written (it is derived from
    ``figure_cluster_id``); columns outside the schema are not written. Times are written in
    UTC with nanoseconds. ``load_files`` / ``load_figures`` of the result give equal frames
    (figures ordered by file, as the loaders produce them).

    Parameters
    ----------
    files : pandas.DataFrame or None
        A files frame (as returned by :func:`load_files`); None builds the files from ``figures``.
    figures : pandas.DataFrame, optional
        A figures frame (as returned by :func:`load_figures`).

    Returns
    -------
    dict
        ``{"Files": [...], "Aggregations": [], "NextToken": ""}``.

    Examples
    --------
    >>> from imm_analysis import load_figures, to_imm_files
    >>> page = {"Files": [{"ObjectId": "f1", "URI": "oss://b/1.jpg",
    ...                    "Figures": [{"FigureId": "a", "HeadPose": {"Yaw": 9.5}}]}]}
    >>> to_imm_files(None, load_figures(page))["Files"]
    [{'ObjectId': 'f1', 'URI': 'oss://b/1.jpg', 'Figures': [{'FigureId': 'a', 'HeadPose': {'Yaw': 9.5}}]}]
    """
    if files is None:
        files = schema.empty_frame("files")
    file_records = _records(files, schema.FILE_SPEC, {})
    if figures is None or not len(figures):
        return {"Files": file_records, "Aggregations": [], "NextToken": ""}
    face_spec = [(c, d, imm) for c, d, imm in schema.FIGURE_SPEC if imm]
    face_records = _records(figures, face_spec, {})
    by_file: dict[Any, list[dict]] = {}
    file_ids = figures["file_id"].astype(schema.STRING).to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
    for fid, rec in zip(file_ids, face_records, strict=True):
        by_file.setdefault(fid, []).append(rec)
    known = files["file_id"].astype(schema.STRING).to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
    for fid, rec in zip(known, file_records, strict=True):
        if fid in by_file:
            rec["Figures"] = by_file.pop(fid)
    if by_file:
        context = [(c, d, imm) for c, d, imm in schema.FILE_SPEC if c in ("file_id", "uri", "media_type", "produce_time")]
        first = figures.drop_duplicates("file_id", keep="first")
        first = first[first["file_id"].isin(list(by_file))]
        for fid, rec in zip(first["file_id"].tolist(), _records(first, context, {}), strict=True):
            rec["Figures"] = by_file.pop(fid if fid is not pd.NA else None, [])
            file_records.append(rec)
    return {"Files": file_records, "Aggregations": [], "NextToken": ""}
