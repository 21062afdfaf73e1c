"""Recognise IMM response shapes and split them into pages of cluster or file records.

Shapes (all from the IMM API documents):

* QueryFigureClusters / BatchGetFigureCluster: ``{"FigureClusters": [...], "NextToken", "TotalCount"}``
* GetFigureCluster: ``{"FigureCluster": {...}}``
* a bare FigureCluster: ``{"ObjectType": "figure-cluster", "ObjectId": "Cluster-...", ...}``
* SimpleQuery / BatchGetFileMeta: ``{"Files": [...], "Aggregations", "NextToken"}``
* GetFileMeta: ``{"File": {...}}``
* a bare File: ``{"ObjectType": "file", "URI": ..., "Figures": [...], ...}``
* a list of any of these; an SDK ``to_map()`` wrapper ``{"headers", "statusCode", "body": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imm_analysis.io.errors import ErrorLog
from imm_analysis.io.sources import Document

__all__ = ["Page", "EXPECTED_SHAPES", "iter_pages"]

EXPECTED_SHAPES = (
    "QueryFigureClusters or BatchGetFigureCluster response {'FigureClusters': [...]}, "
    "GetFigureCluster response {'FigureCluster': {...}}, "
    "a bare FigureCluster {'ObjectType': 'figure-cluster', ...}, "
    "SimpleQuery or BatchGetFileMeta response {'Files': [...]}, "
    "GetFileMeta response {'File': {...}}, "
    "a bare File {'ObjectType': 'file', 'URI': ..., ...}, "
    "or a list of these"
)
_CLUSTER_HINTS = ("FaceCount", "ImageCount", "VideoCount", "Cover", "AverageAge")
_FILE_HINTS = ("URI", "OSSURI", "Figures", "MediaType", "Filename")


@dataclass
class Page:
    """Records of one kind from one document.

    ``prefix`` names the records' place in the document for error messages
    (``Files`` gives ``Files[3]``; ``""`` is a bare record). ``total`` is the
    response's ``TotalCount`` (or ``TotalHits``, then ``total_key`` says so) when it has one.
    """

    kind: str  # "clusters" or "files"
    items: list
    source: str
    label: str
    prefix: str
    total: int | None = None
    total_key: str = "TotalCount"  # the response's name for ``total``: TotalCount or TotalHits

    def where(self, i: int) -> str:
        """Record label of item ``i``: ``line 3, Files[2]``."""
        if not self.prefix:
            return self.label
        if self.prefix in ("FigureCluster", "File"):
            return f"{self.label}, {self.prefix}"
        return f"{self.label}, {self.prefix}[{i}]"


def iter_pages(docs: Iterator[Document], log: ErrorLog) -> Iterator[Page]:
    """Classify each document; unrecognised documents are reported to ``log``."""
    for source, label, value in docs:
        yield from _pages(source, label, value, log)


def _pages(source: str, label: str, value: Any, log: ErrorLog) -> Iterator[Page]:
    """Pages of one document; nested lists are walked with a stack (no recursion on their depth)."""
    stack = [(label, value)]
    while stack:
        label, value = stack.pop()
        if isinstance(value, list):
            stack.extend((f"{label}, item {i}", item) for i, item in reversed(list(enumerate(value))))
            continue
        yield from _page(source, label, value, log)


def _page(source: str, label: str, value: Any, log: ErrorLog) -> Iterator[Page]:
    if not isinstance(value, dict):
        log.add(source, label, None, f"not an IMM response (a JSON {type(value).__name__}); expected {EXPECTED_SHAPES}")
        return
    if isinstance(value.get("body"), dict) and "statusCode" in value:  # SDK to_map() wrapper
        yield from _pages(source, label, value["body"], log)
        return
    total_key = "TotalCount" if "TotalCount" in value else "TotalHits"  # QueryFigureClusters / SimpleQuery
    total = value.get(total_key)
    if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
        log.add(source, label, total_key, f"expected an integer, got {total!r}")
        total = None
    for key, kind in (("FigureClusters", "clusters"), ("Files", "files")):
        if key in value:
            items = value[key]
            if items is None:
                items = []
            if not isinstance(items, list):
                log.add(source, label, key, f"expected a list, got {type(items).__name__}")
                return
            yield Page(kind, items, source, label, key, total, total_key)
            return
    for key, kind in (("FigureCluster", "clusters"), ("File", "files")):
        if key in value:
            item = value[key]
            if not isinstance(item, dict):
                log.add(source, label, key, f"expected an object, got {type(item).__name__}")
                return
            yield Page(kind, [item], source, label, key)
            return
    bare = _bare_kind(value)
    if bare is None:
        keys = ", ".join(sorted(map(str, value))[:12]) or "none"
        log.add(source, label, None, f"not an IMM response (keys: {keys}); expected {EXPECTED_SHAPES}")
        return
    yield Page(bare, [value], source, label, "")


def _bare_kind(value: dict) -> str | None:
    object_type = value.get("ObjectType")
    if object_type == "figure-cluster":
        return "clusters"
    if object_type == "file":
        return "files"
    if any(k in value for k in _FILE_HINTS):
        return "files"
    if any(k in value for k in _CLUSTER_HINTS) or str(value.get("ObjectId", "")).startswith("Cluster-"):
        return "clusters"
    return None
