"""IMM identifiers and JSON pages: ``SimpleQuery`` files pages and ``QueryFigureClusters`` pages.

Identifiers look like IMM's (64-hex file ``ObjectId``, uuid4 ``FigureId``, ``Cluster-<uuid4>``),
times are written in IMM's ``+08:00`` local time, and pages carry ``NextToken`` and
``RequestId`` as IMM's answers do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LOCAL_TZ"]

LOCAL_TZ = "Asia/Shanghai"  # IMM answers in +08:00


def _hex_ids(rng: np.random.Generator, n: int, n_bytes: int) -> list[str]:
    h = rng.integers(0, 256, size=n * n_bytes, dtype=np.uint8).tobytes().hex()
    k = 2 * n_bytes
    return [h[i : i + k] for i in range(0, n * k, k)]


def _uuid4s(rng: np.random.Generator, n: int) -> list[str]:
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = b.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, n * 32, 32)
    ]


_FILE_TIMES = {
    "produce_time": "ProduceTime",
    "file_create_time": "FileCreateTime",
    "file_modified_time": "FileModifiedTime",
    "create_time": "CreateTime",
    "update_time": "UpdateTime",
}
_CLUSTER_TIMES = {"create_time": "CreateTime", "update_time": "UpdateTime"}


def _local_iso(values: pd.Series) -> list[str | None]:
    """RFC 3339 strings in +08:00 as IMM writes them (``2026-01-05T10:13:13.078116562+08:00``)."""
    t = pd.to_datetime(values, utc=True).dt.tz_convert(LOCAL_TZ)
    base = t.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
    frac = (t.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view(np.int64) % 1_000_000_000).tolist()
    na = t.isna().tolist()
    return [
        None if m else (f"{b}.{f:09d}".rstrip("0") if f else b) + "+08:00"
        for b, f, m in zip(base, frac, na, strict=True)
    ]


def _localise(records: list[dict], frame: pd.DataFrame, fields: dict[str, str]) -> None:
    """Rewrite the writer's UTC times of ``records`` (one per row of ``frame``) in +08:00."""
    for col, key in fields.items():
        if col in frame.columns:
            for rec, value in zip(records, _local_iso(frame[col]), strict=True):
                if value is not None:
                    rec[key] = value


def _cluster_pages(clusters, covers: dict[str, dict], page_size: int, rng) -> list[dict]:
    """QueryFigureClusters pages: every cluster converted once, then sliced into pages."""
    from imm_analysis.io.imm_json import to_imm_clusters

    if not len(clusters):
        return [{"FigureClusters": [], "NextToken": "", "TotalCount": 0, "RequestId": _request_id(rng)}]
    records = to_imm_clusters(clusters)["FigureClusters"]
    _localise(records, clusters, _CLUSTER_TIMES)
    for rec, cid in zip(records, clusters["cluster_id"].tolist(), strict=True):
        rec["Cover"] = covers[cid]
    total = len(records)
    return _paginate(
        records, page_size, rng, lambda chunk, token: {"FigureClusters": chunk, "NextToken": token, "TotalCount": total}
    )


def _cover_files(clusters, cover_figures: dict[str, str], file_records: list[dict]) -> dict[str, dict]:
    """The Cover of each cluster: its cover file with the cover face only (as IMM returns it).

    ``file_records`` are the SimpleQuery records of all files with all their faces; each
    Cover is a copy of its file's record holding only the cover face, without its cluster fields.
    """
    wanted = {f for f in cover_figures.values() if f}
    if not wanted:
        return {cid: {} for cid in clusters["cluster_id"].tolist()}
    by_figure = {}
    for doc in file_records:
        for fig in doc.get("Figures", ()):
            if fig.get("FigureId") in wanted:
                one = {k: v for k, v in fig.items() if k not in ("FigureClusterId", "FigureClusterConfidence")}
                by_figure[fig["FigureId"]] = _copied(dict(doc, Figures=[one]))
    return {cid: by_figure.get(cover_figures.get(cid), {}) for cid in clusters["cluster_id"].tolist()}


def _copied(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars), several times faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


def _files_response(files: pd.DataFrame, figures: pd.DataFrame) -> dict:
    """``to_imm_files`` with +08:00 times, as IMM writes them."""
    from imm_analysis.io.imm_json import to_imm_files

    page = to_imm_files(files, figures)
    _localise(page["Files"], files, _FILE_TIMES)
    return page


def _file_records(files: pd.DataFrame, figures: pd.DataFrame) -> list[dict]:
    """One SimpleQuery record per file (in the order of ``files``) with its faces, converted once.

    Faces whose file is not in ``files`` are left out.
    """
    if not len(files):
        return []
    known = set(files["file_id"].dropna().tolist())  # a set: Series.isin on arrow strings is 10x slower
    inside = np.fromiter((f in known for f in figures["file_id"].tolist()), bool, len(figures))
    return _files_response(files, figures[inside])["Files"]


def _file_pages(records: list[dict], page_size: int, rng) -> list[dict]:
    """SimpleQuery pages of ``page_size`` files sliced from the converted ``records``."""
    if not records:
        return [{"Files": [], "Aggregations": [], "NextToken": "", "RequestId": _request_id(rng)}]
    return _paginate(records, page_size, rng, lambda chunk, token: {"Files": chunk, "Aggregations": [], "NextToken": token})


def _paginate(records: list[dict], page_size: int, rng, make_page) -> list[dict]:
    """Slice ``records`` into pages: ``make_page(chunk, next_token)`` plus a ``RequestId``.

    ``NextToken`` is empty on the last page; tokens and request ids are drawn from ``rng``
    page by page (token first), so the pages do not depend on how they are built.
    """
    pages = []
    for a in range(0, len(records), page_size):
        token = _token(rng) if a + page_size < len(records) else ""
        page = make_page(records[a : a + page_size], token)
        page["RequestId"] = _request_id(rng)
        pages.append(page)
    return pages


def _token(rng) -> str:
    return _hex_ids(rng, 1, 24)[0]


def _request_id(rng) -> str:
    return _uuid4s(rng, 1)[0].upper()
