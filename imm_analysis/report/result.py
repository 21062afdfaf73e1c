""":class:`VisitorReport`: the tables of :func:`~imm_analysis.report.visitor_report` and their outputs.

The report renders itself to HTML (:mod:`imm_analysis.report.html`, imported when needed), CSV
and Parquet; every file is written atomically (:mod:`imm_analysis.io.atomic`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from imm_analysis.io.atomic import atomic_write_bytes
from imm_analysis.report.tables import format_duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["VisitorReport", "TABLES"]

#: The tables every report has, in the order they are written.
TABLES = ("visits", "daily", "hourly", "visitors", "staff", "near_staff", "quality", "unreadable")


class VisitorReport:
    """The result of :func:`~imm_analysis.report.visitor_report`: traffic tables, parameters and renderers.

    Attributes
    ----------
    visits : DataFrame
        One row per visit: ``visitor_id, name, location, start, end, dwell, detections, date``
        (times in the report's time zone; ``date`` is the local date of ``start``).
    daily : DataFrame
        Per date and location: ``date, location, unique_visitors, new_visitors,
        returning_visitors, visits, detections, median_dwell``, plus ``independent_faces`` and
        ``unique_visitors_upper`` (each independent face counted as one more visitor).
    hourly : DataFrame
        7 x 24 rows of hour-by-weekday data (``arrivals_per_day`` is the heatmap value).
    visitors : DataFrame
        Per visitor: ``visitor_id, name, first_seen, last_seen, visits, days, detections,
        n_locations, locations, age, gender, is_staff``.
    staff : DataFrame
        Visitors the staff rule flagged (excluded from the other tables when ``exclude_staff``),
        with ``reason``.
    near_staff : DataFrame
        The visitors the staff rule kept who came closest to it.
    quality : DataFrame
        ``metric, value, description``: unreadable files, high-definition share, independent and
        unavailable faces, time sources, lower/upper visitor counts, detections per visitor.
    unreadable : DataFrame
        ``file, error, reason`` of each file the local pipeline could not use (empty otherwise).
    gallery : DataFrame or None
        With ``faces=True``: cover face and member files per visitor; None otherwise.
    notes : list of str
        Warnings shown at the top of the report (file-modification times, dwell, staff, ...).
    parameters : dict
        Everything needed to rebuild the report (input, model, threshold, rules, version).
    summary : dict
        Headline numbers (period, unique visitors lower/upper, visits, ...).

    Examples
    --------
    >>> from imm_analysis.report import visitor_report
    >>> from imm_analysis.synth import make_visits
    >>> s = make_visits(12, stores=1, days=2, staff_per_store=0, seed=0)
    >>> r = visitor_report(s.figures, files=s.files, tz=s.tz, location=s.location_pattern, time_source=s.time_pattern)
    >>> type(r).__name__, len(r.hourly), r.visitors.columns[:3].tolist()
    ('VisitorReport', 168, ['visitor_id', 'name', 'first_seen'])
    """

    def __init__(
        self, *, visits: pd.DataFrame, daily: pd.DataFrame, hourly: pd.DataFrame, visitors: pd.DataFrame,
        staff: pd.DataFrame, quality: pd.DataFrame, parameters: dict[str, Any], summary: dict[str, Any],
        near_staff: pd.DataFrame | None = None, unreadable: pd.DataFrame | None = None,
        gallery: pd.DataFrame | None = None, notes: list[str] | None = None,
    ) -> None:
        self.visits = visits
        self.daily = daily
        self.hourly = hourly
        self.visitors = visitors
        self.staff = staff
        self.near_staff = near_staff if near_staff is not None else staff.iloc[:0]
        self.quality = quality
        self.unreadable = (unreadable if unreadable is not None else
                           pd.DataFrame({c: pd.Series([], dtype="string") for c in ("file", "error", "reason")}))
        self.gallery = gallery
        self.notes = list(notes or [])
        self.parameters = parameters
        self.summary = summary

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"VisitorReport({s['period']}, {s['locations']} location(s), unique visitors {s['unique_visitors']}"
            f"-{s['unique_visitors_upper']}, {s['visits']} visits, {s['staff_excluded']} staff excluded)"
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name (see :data:`TABLES`), plus ``gallery`` when the report carries faces."""
        out = {name: getattr(self, name) for name in TABLES}
        if self.gallery is not None:
            out["gallery"] = self.gallery
        return out

    # ---- plots (delegating to report.plots; each returns a matplotlib Figure) ----
    def plot_daily(self) -> Figure:
        """New and returning visitors per day (all locations), with the upper bound as a line."""
        from imm_analysis.report.plots import plot_daily

        return plot_daily(self.daily)

    def plot_hourly(self) -> Figure:
        """Heatmap of mean arrivals per hour and weekday."""
        from imm_analysis.report.plots import plot_hourly

        return plot_hourly(self.hourly, tz=self.parameters["tz"])

    def plot_locations(self) -> Figure:
        """Unique visitors and visits per location over the period."""
        from imm_analysis.report.plots import plot_locations

        return plot_locations(self.daily)

    def plot_dwell(self) -> Figure:
        """Distribution of visit dwell times (a note instead of a histogram when every dwell is 0)."""
        from imm_analysis.report.plots import plot_dwell

        return plot_dwell(self.visits)

    # ---- outputs ----
    def to_html(self, path: str | Path) -> Path:
        """Write one self-contained HTML file (embedded PNG plots, tables, parameters, methodology).

        Every user-supplied string (file names, cluster names, labels) is HTML-escaped. The file
        is written atomically. Returns the path written.
        """
        from imm_analysis.report.html import render_html

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, render_html(self).encode("utf-8"))
        return path

    def to_csv(self, directory: str | Path) -> dict[str, Path]:
        """Write each table as ``<name>.csv`` (and ``parameters.json``) in ``directory``."""
        return self._write(directory, "csv")

    def to_parquet(self, directory: str | Path) -> dict[str, Path]:
        """Write each table as ``<name>.parquet`` (and ``parameters.json``) in ``directory``."""
        return self._write(directory, "parquet")

    def _write(self, directory: str | Path, fmt: str) -> dict[str, Path]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        for name, frame in self.tables().items():
            p = d / f"{name}.{fmt}"
            if fmt == "csv":
                data = csv_ready(frame).to_csv(index=False).encode("utf-8")
            else:
                buf = io.BytesIO()
                frame.to_parquet(buf, index=False)
                data = buf.getvalue()
            atomic_write_bytes(p, data)
            out[name] = p
        p = d / "parameters.json"
        doc = {"parameters": self.parameters, "summary": self.summary, "notes": self.notes}
        atomic_write_bytes(p, json.dumps(doc, indent=2, default=str).encode("utf-8"))
        out["parameters"] = p
        return out

    def _repr_html_(self) -> str:
        from imm_analysis.report.html import render_notebook

        return render_notebook(self)


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Durations as ``H:MM:SS`` text (``pd.to_timedelta`` reads them back); the rest unchanged.

    Examples
    --------
    >>> csv_ready(pd.DataFrame({"dwell": pd.to_timedelta([90], unit="s")}))["dwell"].tolist()
    ['0:01:30']
    """
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_timedelta64_dtype(out[c]):
            out[c] = [format_duration(x) for x in out[c]]
    return out
