"""Pseudonymous visitor reports: keyed-hash visitor ids, and nothing that names a face, file or person.

:func:`pseudonymize_report` (used by ``visitor_report(..., pseudonymize=True, key=...)``) turns a
:class:`~imm_analysis.report.result.VisitorReport` into one that can be shared:

* each visitor id becomes ``v-`` + the first 20 hex digits of HMAC-SHA-256(key, cluster id):
  the same key gives the same ids across reports (visitors can be followed from week to week),
  and without the key an id cannot be linked to a cluster (nor to another key's ids);
* the ``name`` columns, the visitor gallery (face crops and file lists), the names of unreadable
  files and their reasons, and the input paths in the parameters are left out;
* ``parameters["pseudonymized"]`` says what was done, and the HTML methodology repeats it.

The key is a secret of at least 16 bytes (``secrets.token_hex(32)``); keep it out of command
lines, notebooks and logs (the command line reads it from an environment variable).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import pandas as pd

from imm_analysis.report.result import VisitorReport

__all__ = ["PSEUDONYM_TEXT", "pseudonymize_ids", "pseudonymize_report"]

#: What a pseudonymised report says about itself (parameters and methodology).
PSEUDONYM_TEXT = (
    "visitor ids are keyed hashes (HMAC-SHA-256, first 20 hex digits) of the cluster ids under a secret key: "
    "stable across reports made with the same key, unlinkable without it; cluster ids, names, file ids, URIs, "
    "file names and face crops are left out"
)
_WITHHELD = "(withheld)"
_ID_TABLES = ("visits", "visitors", "staff", "near_staff")


def _key_bytes(key: bytes | str | None) -> bytes:
    if key is None:
        raise ValueError("pseudonymize=True needs key= (a secret of at least 16 bytes, e.g. secrets.token_hex(32))")
    k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(k) < 16:
        raise ValueError(f"the pseudonymisation key is {len(k)} bytes; use at least 16 (e.g. secrets.token_hex(32))")
    return k


def pseudonymize_ids(ids: Iterable[Any], key: bytes | str) -> list[str | None]:
    """Keyed-hash pseudonyms of ``ids`` (None stays None).

    Examples
    --------
    >>> a = pseudonymize_ids(["Cluster-1", None], "k" * 16)
    >>> a[0].startswith("v-"), len(a[0]), a[1]
    (True, 22, None)
    >>> a[0] == pseudonymize_ids(["Cluster-1"], "k" * 16)[0] != pseudonymize_ids(["Cluster-1"], "j" * 16)[0]
    True
    """
    k = _key_bytes(key)
    return [None if v is None or (not isinstance(v, str) and pd.isna(v))
            else "v-" + hmac.new(k, str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:20] for v in ids]


def _swap_ids(frame: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    out = frame.drop(columns=["name"], errors="ignore").copy()
    if "visitor_id" in out.columns:
        out["visitor_id"] = pd.array([mapping.get(str(v), None) if not pd.isna(v) else None
                                      for v in out["visitor_id"]], dtype="string")
    return out


def _scrub_text(text: Any, mapping: dict[str, str]) -> Any:
    if not isinstance(text, str):
        return text
    for raw, pseudo in mapping.items():
        text = text.replace(raw, pseudo)
    return text


def pseudonymize_report(report: VisitorReport, key: bytes | str) -> VisitorReport:
    """A copy of ``report`` with keyed-hash visitor ids and no names, crops, file names or input paths.

    Examples
    --------
    >>> from imm_analysis import visitor_report
    >>> from imm_analysis.synth import make_visits
    >>> s = make_visits(10, stores=1, days=2, staff_per_store=0, seed=1)
    >>> r = visitor_report(s.figures, files=s.files, tz=s.tz)
    >>> p = pseudonymize_report(r, "a secret key of 16+ bytes")
    >>> bool(p.visitors["visitor_id"].str.startswith("v-").all()), "name" in p.visitors.columns
    (True, False)
    """
    raw = set()
    for name in _ID_TABLES:
        raw |= set(getattr(report, name)["visitor_id"].dropna().astype(str))
    raw_sorted = sorted(raw, key=len, reverse=True)  # longer ids first when replacing inside text
    mapping = dict(zip(raw_sorted, pseudonymize_ids(raw_sorted, key), strict=True))
    tables = {name: _swap_ids(getattr(report, name), mapping) for name in _ID_TABLES}
    unreadable = report.unreadable.copy()
    for col in ("file", "reason"):
        if col in unreadable.columns:
            unreadable[col] = pd.array([_WITHHELD] * len(unreadable), dtype="string")
    quality = report.quality.copy()
    is_unread = quality["metric"].astype(str).eq("unreadable_files").to_numpy(bool)
    if is_unread.any():
        quality["description"] = quality["description"].mask(
            is_unread, "files that could not be used (names withheld: pseudonymised report)")
    params = {k: (_WITHHELD if k in ("input", "names") and v is not None else v)
              for k, v in report.parameters.items()}
    params["faces"] = False
    params["pseudonymized"] = PSEUDONYM_TEXT
    notes = [_scrub_text(n, mapping) for n in report.notes]
    summary = {k: _scrub_text(v, mapping) for k, v in report.summary.items()}
    return VisitorReport(
        visits=tables["visits"], daily=report.daily, hourly=report.hourly, visitors=tables["visitors"],
        staff=tables["staff"], quality=quality, parameters=params, summary=summary,
        near_staff=tables["near_staff"], unreadable=unreadable, gallery=None, notes=notes,
    )

