"""Column-wise extraction of IMM records (clusters, files, faces) into typed chunks.

A :class:`RecordTable` is built from a schema spec. ``columnise(records, where)`` pulls
every field of a list of record dicts with one list comprehension per column (no
per-field function calls), checks JSON types column by column, puts unknown fields into
``extra`` and reports bad records through the :class:`~imm_analysis.io.errors.ErrorLog`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imm_analysis import schema
from imm_analysis.io.columns import KINDS, convert, take
from imm_analysis.io.errors import ErrorLog

__all__ = ["RecordTable", "CLUSTER_TABLE", "FILE_TABLE", "FIGURE_TABLE", "FILE_CONTEXT_TABLE", "strip_nulls"]

_EMPTY: dict = {}
_NONE = type(None)
Where = Callable[[int], tuple[str, str]]  # row -> (source, record label)


class RecordTable:
    """Fields of one record type: ``(column, kind, IMM path)`` plus keys consumed elsewhere.

    Parameters
    ----------
    fields : list of (column, kind, path)
        ``path`` is a tuple of IMM keys, ``("Boundary", "Left")`` for nested ones.
    consumed : keys that are read by another table (``Figures``, ``Cover``): never in ``extra``.
    extra : whether to collect unknown fields into an ``extra`` column.
    """

    def __init__(self, fields: list[tuple[str, str, tuple[str, ...]]], consumed: tuple[str, ...] = (), extra: bool = True):
        self.fields = fields
        self.kinds = {c: k for c, k, _ in fields}
        if extra:
            self.kinds["extra"] = "object"
        self.extra = extra
        self.known = frozenset(p[0] for _, _, p in fields) | frozenset(consumed)
        self.nested: dict[str, frozenset[str]] = {}
        for _, _, path in fields:
            if len(path) == 2:
                self.nested[path[0]] = self.nested.get(path[0], frozenset()) | {path[1]}
        self.open_nested = [k for k in self.nested if k not in consumed]  # unknown sub-keys go to extra

    def columnise(self, records: list, where: Where, log: ErrorLog) -> tuple[dict[str, Any], np.ndarray | None]:
        """Convert ``records`` to column chunks (one per column, every row).

        Returns ``(chunks, bad)``: ``bad`` is None when every record is good, else a bool
        mask of the rows that were reported to ``log`` (drop them with :func:`keep_rows`).
        """
        n = len(records)
        bad_rows: set[int] = set()

        def report(i: int, field: str | None, reason: str) -> None:
            source, record = where(i)
            log.add(source, record, field, reason)
            bad_rows.add(i)

        if set(map(type, records)) - {dict}:
            for i, r in enumerate(records):
                if not isinstance(r, dict):
                    report(i, None, f"expected an object, got {type(r).__name__}")
            records = [r if isinstance(r, dict) else _EMPTY for r in records]
        containers: dict[str, list] = {}
        for key in self.nested:
            vals = [r.get(key) for r in records]
            if set(map(type, vals)) - {dict, _NONE}:
                for i, v in enumerate(vals):
                    if not isinstance(v, (dict, _NONE)):
                        report(i, key, f"expected an object, got {type(v).__name__}")
            containers[key] = [v if isinstance(v, dict) else _EMPTY for v in vals]
        chunks: dict[str, Any] = {}
        for col, kind, path in self.fields:
            if len(path) == 1:
                key = path[0]
                raw = [r.get(key) for r in records]
            else:
                sub = path[1]
                raw = [c.get(sub) for c in containers[path[0]]]
            chunk, bad = convert(raw, kind)
            for i, reason in bad:
                report(i, ".".join(path), reason)
            chunks[col] = chunk
        if self.extra:
            chunks["extra"] = self._extras(records, containers)
        if not bad_rows:
            return chunks, None
        mask = np.zeros(n, dtype=bool)
        mask[list(bad_rows)] = True
        return chunks, mask

    def keep_rows(self, chunks: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
        """Rows ``keep`` (int indices) of every chunk."""
        return {c: take(chunk, self.kinds[c], keep) for c, chunk in chunks.items()}

    def _extras(self, records: list[dict], containers: dict[str, list]) -> list:
        known = self.known
        flags = list(map(known.issuperset, records))
        sub_flags = {k: list(map(self.nested[k].issuperset, containers[k])) for k in self.open_nested}
        out: list = [None] * len(records)
        odd = [i for i, ok in enumerate(flags) if not ok]
        for k in self.open_nested:
            odd.extend(i for i, ok in enumerate(sub_flags[k]) if not ok)
        for i in sorted(set(odd)):
            r = records[i]
            extra = {k: v for k, v in r.items() if k not in known}
            for k in self.open_nested:
                if not sub_flags[k][i]:
                    sub = self.nested[k]
                    unknown = {s: v for s, v in containers[k][i].items() if s not in sub and v is not None}
                    if unknown:  # a null unknown sub-field is absent (as on the fast path)
                        extra[k] = unknown
            out[i] = strip_nulls(extra) or None
        return out


def strip_nulls(value: Any) -> Any:
    """``value`` with null members of objects removed, recursively (null and absent mean the same in ``extra``)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def _spec_fields(kind: str, special: dict[str, tuple[str, ...]] | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    fields = []
    for col, dtype, imm in schema.SPECS[kind]:
        path = (special or {}).get(col) or (tuple(imm.split(".")) if imm else None)
        if path:
            fields.append((col, KINDS[dtype], path))
    return fields


CLUSTER_TABLE = RecordTable(
    _spec_fields("clusters", {"cover_file_id": ("Cover", "ObjectId"), "cover_uri": ("Cover", "URI")}),
    consumed=("Cover",),
)
FILE_TABLE = RecordTable(_spec_fields("files"), consumed=("Figures",))
#: the faces themselves (``File.Figures[]``)
FIGURE_TABLE = RecordTable(_spec_fields("figures"))
#: the file-level columns repeated on every face
FILE_CONTEXT_TABLE = RecordTable(
    [
        ("file_id", "string", ("ObjectId",)),
        ("uri", "string", ("URI",)),
        ("media_type", "category", ("MediaType",)),
        ("produce_time", "time", ("ProduceTime",)),
    ],
    extra=False,
)
