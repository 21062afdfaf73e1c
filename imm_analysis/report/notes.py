"""What the visitor report says about itself: provenance, wording, warnings and side tables.

Pure pandas/numpy (no plotting, no HTML), used by :func:`imm_analysis.report.visitor_report`:

* :func:`run_origin` and :data:`WORDS`: a local run speaks of "the clusterer", an IMM run of IMM;
* :func:`unreadable_table`: files the local pipeline could not read, with a clean reason;
* :func:`near_staff_table`: the visitors closest to the staff cut-off;
* :func:`report_notes`: the plain-language warnings (file-modification times, a period spanning
  years, dwell zero everywhere, staff that look like loyal customers);
* :func:`visitor_range_text`: the one sentence on the lower and upper visitor counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "WORDS",
    "TIME_SOURCE_WORDS",
    "run_origin",
    "clean_reason",
    "unreadable_table",
    "near_staff_table",
    "report_notes",
    "visitor_range_text",
]

#: Words for each kind of run: who clustered, and what a face left out of every cluster is.
WORDS: dict[str, dict[str, str]] = {
    "local": {
        "clusterer": "the local clusterer (cluster_faces)",
        "independent": "faces the local clusterer left out of every cluster (too few look-alike high-definition "
        "faces in distinct images)",
        "unavailable": "faces not clustered yet",
        "visitor": "one cluster of the local clusterer",
    },
    "imm": {
        "clusterer": "IMM (CreateFigureClusteringTask)",
        "independent": "faces IMM left out of every cluster",
        "unavailable": "faces indexed after IMM's last clustering run",
        "visitor": "one IMM face cluster (FigureClusterId)",
    },
}

#: Plain words for the sources :func:`imm_analysis.report.tables.resolve_times` reports.
TIME_SOURCE_WORDS: dict[str, str] = {
    "produce_time": "capture time (EXIF / ProduceTime)",
    "file_create_time": "file creation time (FileCreateTime)",
    "file_modified_time": "file modification time",
    "uri": "time pattern in the URI",
}

_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def run_origin(figures: pd.DataFrame, clusters: Any = None, origin: str | None = None) -> str:
    """``"local"`` or ``"imm"``: given, else from a ClusterState or the local pipeline's ``det_score`` column.

    Examples
    --------
    >>> run_origin(pd.DataFrame({"det_score": [0.9]}))
    'local'
    >>> run_origin(pd.DataFrame({"figure_id": ["a"]}))
    'imm'
    """
    if origin is not None:
        if origin not in WORDS:
            raise ValueError(f"origin must be one of {sorted(WORDS)}, got {origin!r}")
        return origin
    if clusters is not None and hasattr(clusters, "params") and hasattr(clusters, "clusters"):
        return "local"
    return "local" if "det_score" in getattr(figures, "columns", ()) else "imm"


def clean_reason(reason: object) -> str:
    """An error reason on one line, without Python object addresses.

    Examples
    --------
    >>> clean_reason("cannot identify image file <_io.BytesIO object at 0x7f3a2b>\\n")
    'cannot identify image file (file data)'
    """
    text = _ADDRESS.sub("(file data)", str(reason) if reason is not None else "")
    return " ".join(text.split())


def unreadable_table(errors: pd.DataFrame | None) -> pd.DataFrame:
    """The files that could not be used: ``file, error, reason`` (from ``embed_images(...).errors``).

    Examples
    --------
    >>> e = pd.DataFrame({"uri": ["/p/a.jpg"], "error": ["MediaError"], "reason": ["empty file (0 bytes)"]})
    >>> unreadable_table(e).to_dict("records")
    [{'file': '/p/a.jpg', 'error': 'MediaError', 'reason': 'empty file (0 bytes)'}]
    """
    cols = {"file": "string", "error": "string", "reason": "string"}
    if errors is None or not len(errors):
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in cols.items()})
    name = errors["uri"] if "uri" in errors.columns else errors.get("path", pd.Series([""] * len(errors)))
    out = pd.DataFrame(
        {
            "file": name.astype("string").to_numpy(object, na_value=""),
            "error": errors["error"].astype("string").to_numpy(object, na_value="") if "error" in errors else "",
            "reason": [clean_reason(r) for r in (errors["reason"] if "reason" in errors else [""] * len(errors))],
        }
    )
    return out.astype(cols)


def near_staff_table(per: pd.DataFrame, n_days: int, top: int = 5) -> pd.DataFrame:
    """The ``top`` visitors the staff rule kept who came closest to it (most days, then most hours a day).

    ``per`` is the per-visitor frame of :func:`~imm_analysis.report.visitor_report` (``is_staff``,
    ``days``, ``median_daily_hours``, ...). A wrong cut-off shows here as regular customers just
    under it, or as staff-like people just under it.
    """
    keep = per.loc[~per["is_staff"]]
    keep = keep.assign(share_of_days=keep["days"] / max(n_days, 1))
    keep = keep.sort_values(["share_of_days", "median_daily_hours", "visitor_id"], ascending=[False, False, True],
                            kind="stable")
    cols = ["visitor_id", "name", "days", "share_of_days", "median_daily_hours", "visits", "detections"]
    return keep.loc[:, cols].head(top).reset_index(drop=True)


def visitor_range_text(lower: int, upper: int, origin: str) -> str:
    """One sentence on the range of unique visitors and what narrows it.

    Examples
    --------
    >>> visitor_range_text(30, 30, "imm")
    'Unique visitors: 30 (every face with a time is in a cluster, so the count is exact up to clustering errors).'
    """
    if upper == lower:
        return (f"Unique visitors: {lower:,} (every face with a time is in a cluster, so the count is exact up to "
                "clustering errors).")
    narrow = ("more photos per person, larger and frontal faces, or a lower --min-faces (min_faces) let the "
              "clusterer place more of them" if origin == "local" else
              "more high-definition faces per person, or rerunning IMM's clustering, place more of them")
    return (f"Unique visitors: between {lower:,} (clustered faces only) and {upper:,} (each of the {upper - lower:,} "
            f"independent faces counted as its own visitor). The truth is nearer the lower number when independent "
            f"faces are extra sightings of clustered people (typical for cameras) and nearer the upper one when "
            f"most people are seen once; {narrow}, which narrows the range.")


def report_notes(
    *, source_counts: Mapping[str, int], n_faces_timed: int, first_day: pd.Timestamp | None,
    last_day: pd.Timestamp | None, visits: pd.DataFrame, staff: pd.DataFrame, exclude_staff: bool,
) -> list[str]:
    """Warnings a reader must see before trusting the numbers (shown at the top of the report).

    Parameters
    ----------
    source_counts : mapping of str to int
        Faces per time source label (``produce_time``, ``file_modified_time``, ``uri``, ...).
    n_faces_timed : int
        Faces with a usable time.
    first_day, last_day : Timestamp or None
        The period.
    visits : DataFrame
        The visits table (``dwell``).
    staff : DataFrame
        The staff table (``reason``, ``median_daily_hours``).
    exclude_staff : bool

    Returns
    -------
    list of str

    Examples
    --------
    >>> v = pd.DataFrame({"dwell": pd.to_timedelta([0, 0], unit="s")})
    >>> s = pd.DataFrame({"reason": [], "median_daily_hours": []})
    >>> report_notes(source_counts={"produce_time": 2}, n_faces_timed=2, first_day=None, last_day=None,
    ...              visits=v, staff=s, exclude_staff=True)[0][:33]
    'Dwell is 0 for every visit: each '
    """
    notes: list[str] = []
    n_mtime = int(source_counts.get("file_modified_time", 0))
    if n_mtime:
        notes.append(
            f"{n_mtime:,} of {n_faces_timed:,} faces are dated by their file's modification time (no capture time "
            "in the file): that is when the file was last copied or saved, not when the photo was taken, so dates, "
            "hours, visits and dwell may not describe real visits."
        )
    if first_day is not None and last_day is not None and (last_day - first_day) > pd.Timedelta(days=366):
        notes.append(
            f"The faces span {first_day.date()} to {last_day.date()} "
            f"({(last_day - first_day).days / 365.25:.0f} years): check that the time source is right "
            "before reading the daily tables."
        )
    if len(visits) and not (visits["dwell"] > pd.Timedelta(milliseconds=500)).any():  # the tables show whole seconds
        notes.append(
            "Dwell is 0 for every visit: each visit's sightings share one time (a single photo, or photos with "
            "the same time stamp). Dwell needs several sightings per visit at different times, such as video or "
            "frequent camera captures."
        )
    if len(staff):
        by_days_only = ~staff["reason"].astype(str).str.contains("h a day")
        short = staff["median_daily_hours"].to_numpy("float64", na_value=np.nan) < 1.0
        k = int((by_days_only.to_numpy() & short).sum())
        if k:
            verb = "excluded" if exclude_staff else "flagged"
            notes.append(
                f"{k} of the {len(staff)} visitor(s) {verb} as staff were flagged only for coming on many days and "
                "stay under an hour a day: they may be loyal customers. Check the staff table; keep them with "
                "exclude_staff=False (--include-staff) or change staff_rule."
            )
    return notes
