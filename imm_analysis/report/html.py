"""Render a :class:`~imm_analysis.report.visitors.VisitorReport` to one self-contained HTML file.

jinja2 with autoescape on: every user-supplied string (cluster names, locations, URIs, file
names, parameters) is escaped. Tables are rendered by :meth:`DataFrame.to_html` with
``escape=True`` before being marked safe; plots are PNGs embedded as base64 ``data:`` URIs, so
the file needs nothing else (no scripts, no external styles or fonts).
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jinja2 import Environment
from markupsafe import Markup

from imm_analysis.report.tables import format_duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from imm_analysis.report.visitors import VisitorReport

__all__ = ["render_html", "render_notebook", "figure_to_png_base64", "table_html"]

#: Rows shown per table in the HTML (the CSV/Parquet outputs have every row).
MAX_ROWS = {"daily": 400, "visitors": 100, "visits": 100, "staff": 200, "hourly": 0, "quality": 100}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.sub{color:#666} .cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.5em} table.tab{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.tab th,table.tab td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
table.tab th{background:#f4f4f4} table.tab td:first-child{text-align:left}
img{max-width:100%} .note{color:#555;font-size:.9em} dl.params dt{font-weight:bold;float:left;clear:left;width:12em}
dl.params dd{margin-left:13em} .wrap{overflow-x:auto}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><style>{{ css }}</style></head>
<body>
<h1>{{ title }}</h1>
<p class="sub">{{ s.period }} &middot; {{ s.locations }} location(s) &middot; times in {{ p.tz }}
&middot; generated {{ generated }}</p>

<div class="cards">
<div class="card"><b>{{ s.unique_visitors }}</b>unique visitors (clusters)</div>
<div class="card"><b>{{ s.unique_visitors_upper }}</b>upper bound (+ independent faces)</div>
<div class="card"><b>{{ s.visits }}</b>visits</div>
<div class="card"><b>{{ s.visitors_on_several_days }}</b>visitors seen on several days</div>
<div class="card"><b>{{ s.detections_per_visitor if s.detections_per_visitor is not none else "-" }}</b>detections per visitor</div>
<div class="card"><b>{{ s.median_dwell or "-" }}</b>median dwell</div>
<div class="card"><b>{{ s.staff_flagged }}</b>staff {{ "excluded" if p.exclude_staff else "flagged (kept)" }}</div>
</div>

<h2>Visitors per day</h2>
<p class="note">Unique visitors per date, summed over locations, split into <i>new</i> (first seen
on that date{{ " at that location" if p.returning_scope == "location" else "" }}) and <i>returning</i>
(seen on an earlier date{{ " at that location" if p.returning_scope == "location" else "" }}).</p>
<img alt="visitors per day" src="data:image/png;base64,{{ plots.daily }}">

<h2>When visitors arrive</h2>
<p class="note">Mean number of visits starting in each hour (local time, {{ p.tz }}) for each weekday:
arrivals divided by the number of such weekdays in the period.</p>
<img alt="arrivals heatmap" src="data:image/png;base64,{{ plots.hourly }}">

<h2>Locations</h2>
<img alt="traffic per location" src="data:image/png;base64,{{ plots.locations }}">

<h2>Dwell</h2>
<p class="note">Dwell is the time from a visit's first to its last sighting; a visit seen once has dwell 0.</p>
<img alt="dwell histogram" src="data:image/png;base64,{{ plots.dwell }}">

<h2>Daily table</h2>{{ tables.daily }}

<h2>Staff</h2>
<p class="note">{% if s.staff_flagged %}{{ s.staff_flagged }} visitor(s) matched the staff rule
({{ staff_rule }}) and {{ "were excluded from every other table" if p.exclude_staff else "were kept in the tables" }}.
{% else %}No visitor matched the staff rule ({{ staff_rule }}).{% endif %}</p>
{{ tables.staff }}

<h2>Data quality</h2>{{ tables.quality }}

<h2>Most frequent visitors</h2>{{ tables.visitors }}

<h2>Visits (first rows)</h2>{{ tables.visits }}

<h2>Parameters</h2>
<dl class="params">{% for k, v in params %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>

<h2>Methodology</h2>
<ul>
<li><b>Visitor</b> = one face cluster (IMM's FigureClusterId, or the local clusterer's label).
Faces clustering left out (<i>independent</i>) cannot be attributed to a person: the tables count
clustered faces only (a lower bound), and <i>unique_visitors_upper</i> counts every independent
face as one more visitor (an upper bound). Faces indexed after the last clustering run
(<i>unavailable</i>) are only counted in the quality table.</li>
<li><b>Time</b> of a face = the file's ProduceTime (capture time), else FileCreateTime, else a
time parsed from the URI when a pattern is given; video faces add their offset in the video.
IMM's offsets (such as +08:00) are honoured; dates, hours and weekdays are local to {{ p.tz }}.
Faces without a usable time are left out (see the quality table).</li>
<li><b>Location</b>: {{ location_text }}.</li>
<li><b>Visit</b>: a visitor's sightings at one location, sorted by time; a new visit starts when
the gap to the previous sighting exceeds {{ p.session_gap }}. A visit belongs to the date it starts.</li>
<li><b>New / returning</b>: a visitor is returning on a date when seen on an earlier date of the
period{{ " at the same location" if p.returning_scope == "location" else " at any location" }}; the
first date of the data therefore has only new visitors.</li>
<li><b>Staff</b>: {{ staff_rule }}. The rule only sees this period.</li>
<li><b>Detections per visitor</b> = face detections in visits / unique visitors: how many times
a naive per-detection count would over-count shoppers.</li>
</ul>
<p class="note">Tables show at most a few hundred rows; to_csv / to_parquet (or the command
line's tables folder) give every row.</p>
</body></html>
"""

_NOTEBOOK = """<div>
<b>{{ title }}</b>: {{ s.period }}, {{ s.locations }} location(s), times in {{ p.tz }}<br>
unique visitors <b>{{ s.unique_visitors }}</b> (upper bound {{ s.unique_visitors_upper }}),
visits <b>{{ s.visits }}</b>, detections per visitor {{ s.detections_per_visitor }},
staff {{ "excluded" if p.exclude_staff else "flagged" }}: {{ s.staff_flagged }}
<details><summary>daily ({{ n_daily }} rows)</summary>{{ daily }}</details>
<details><summary>quality</summary>{{ quality }}</details>
<p style="color:#666">Tables: .visits .daily .hourly .visitors .staff .quality; .to_html(path) writes the full report.</p>
</div>"""

_ENV = Environment(autoescape=True)


def figure_to_png_base64(fig: Figure, dpi: int = 100) -> str:
    """PNG bytes of ``fig`` as base64 text (for ``data:image/png;base64,...``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_timedelta64_dtype(col):
            out[c] = [format_duration(x) for x in col]  # the CSV's rule: nearest second
        elif isinstance(col.dtype, pd.DatetimeTZDtype):
            out[c] = col.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_float_dtype(col):
            out[c] = [("" if not np.isfinite(x) else (f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"))
                      for x in col.to_numpy("float64", na_value=np.nan)]
    return out


def table_html(frame: pd.DataFrame, max_rows: int | None = None) -> Markup:
    """An escaped HTML table of ``frame`` (first ``max_rows`` rows, with a note when cut)."""
    shown = frame if not max_rows or len(frame) <= max_rows else frame.head(max_rows)
    html = _display_frame(shown).to_html(index=False, escape=True, border=0, classes="tab", na_rep="")
    note = ""
    if len(shown) < len(frame):
        note = f'<p class="note">first {len(shown):,} of {len(frame):,} rows</p>'
    return Markup(f'<div class="wrap">{html}</div>{note}')


def _staff_rule_text(rule: Any) -> str:
    if not isinstance(rule, dict):
        return str(rule)
    parts = []
    if rule.get("min_days_share") is not None:
        parts.append(f"present on more than {rule['min_days_share']:.0%} of the days (and on at least "
                     f"{rule.get('min_days') or 0} days)")
    if rule.get("min_hours_per_day") is not None:
        parts.append(f"a median of at least {rule['min_hours_per_day']:g} hours a day in the stores")
    return " or ".join(parts) or "no rule"


def _location_text(p: dict[str, Any]) -> str:
    kind, loc = p["location_kind"], p["location"]
    if kind == "none":
        return "all faces are one location"
    if kind == "pattern":
        return f"the group of the regular expression {loc} applied to each file's URI (no match: '(unknown)')"
    if kind == "custom_labels":
        return f"the file's custom label {loc.split(':', 1)[1]}"
    return f"the column {loc}"


def render_html(report: VisitorReport) -> str:
    """The full report as one HTML document (str)."""
    plots = {}
    for name in ("daily", "hourly", "locations", "dwell"):
        fig = getattr(report, f"plot_{name}")()
        plots[name] = figure_to_png_base64(fig)
    tabs = {name: table_html(frame, MAX_ROWS.get(name)) for name, frame in report.tables().items() if name != "hourly"}
    p = report.parameters
    params = [(k, "None" if v is None else str(v)) for k, v in p.items() if k != "title"]
    return _ENV.from_string(_TEMPLATE).render(
        title=p.get("title", "Visitor report"), css=Markup(_CSS), s=report.summary, p=p, plots=plots, tables=tabs,
        params=params, staff_rule=_staff_rule_text(p["staff_rule"]), location_text=_location_text(p),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def render_notebook(report: VisitorReport) -> str:
    """A short HTML summary for Jupyter (``VisitorReport._repr_html_``)."""
    return _ENV.from_string(_NOTEBOOK).render(
        title=report.parameters.get("title", "Visitor report"), s=report.summary, p=report.parameters,
        daily=table_html(report.daily, 30), quality=table_html(report.quality), n_daily=len(report.daily),
    )
