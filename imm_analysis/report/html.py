"""Render a visitor report to one self-contained HTML file.

jinja2 with autoescape on: every user-supplied string (cluster names, locations, URIs, file
names, parameters) is escaped. Tables are rendered by :meth:`DataFrame.to_html` with
``escape=True`` before being marked safe; plots (and, with ``faces=True``, the gallery's face
thumbnails) are PNGs embedded as base64 ``data:`` URIs, so the file needs nothing else (no
scripts, no external styles or fonts). Long cell text wraps inside its table.

This module knows the report only through :class:`ReportLike` (the attributes it reads), so it
does not import :mod:`imm_analysis.report.result` or :mod:`~imm_analysis.report.visitors`;
they import it when rendering.
"""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from jinja2 import Environment
from markupsafe import Markup

from imm_analysis.report.notes import WORDS
from imm_analysis.report.tables import format_duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ReportLike", "render_html", "render_notebook", "figure_to_png_base64", "table_html"]

#: Rows shown per table in the HTML (the CSV/Parquet outputs have every row).
MAX_ROWS = {"daily": 400, "visitors": 100, "visits": 100, "staff": 200, "hourly": 0, "quality": 100,
            "near_staff": 20, "unreadable": 200, "gallery": 100}


class ReportLike(Protocol):
    """What the renderers read of a :class:`~imm_analysis.report.VisitorReport`."""

    parameters: dict[str, Any]
    summary: dict[str, Any]
    notes: list[str]
    visits: pd.DataFrame
    daily: pd.DataFrame
    quality: pd.DataFrame
    gallery: pd.DataFrame | None

    def tables(self) -> dict[str, pd.DataFrame]: ...  # noqa: D102

    def plot_daily(self) -> Figure: ...  # noqa: D102

    def plot_hourly(self) -> Figure: ...  # noqa: D102

    def plot_locations(self) -> Figure: ...  # noqa: D102

    def plot_dwell(self) -> Figure: ...  # noqa: D102

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.sub{color:#666} .cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.5em}
table.tab{border-collapse:collapse;font-size:.85em;margin:.5em 0;max-width:100%}
table.tab th,table.tab td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
table.tab td{overflow-wrap:anywhere} table.tab th{background:#f4f4f4}
img{max-width:100%} .note{color:#555;font-size:.9em}
dl.params{display:grid;grid-template-columns:minmax(8em,14em) minmax(0,1fr);gap:.2em 1em}
dl.params dt{font-weight:bold;overflow-wrap:anywhere} dl.params dd{margin:0;overflow-wrap:anywhere}
.wrap{max-width:100%} .warn{background:#fff4e5;border:1px solid #f0b45b;border-radius:6px;padding:.4em 1em;margin:1em 0}
.faces{background:#fdecea;border:1px solid #e57373;border-radius:6px;padding:.4em 1em;margin:1em 0}
.gallery{display:flex;flex-wrap:wrap;gap:.6em} .face{width:8.5em;font-size:.8em;text-align:center;overflow-wrap:anywhere}
.face img{display:block;margin:0 auto .2em;max-height:96px;border-radius:4px}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><style>{{ css }}</style></head>
<body>
<h1>{{ title }}</h1>
<p class="sub">{{ s.period }} &middot; {{ s.locations }} location(s) &middot; times in {{ p.tz }}
&middot; clustered by {{ p.clustered_by }} &middot; generated {{ generated }}</p>
{% if gallery is not none %}<div class="faces"><b>This report carries face images</b> ({{ gallery|length }}
visitor thumbnails, cut from the input images). Share it only with people entitled to see them; without
<code>--faces</code> (<code>faces=False</code>) the report has none.</div>{% endif %}
{% if notes %}<div class="warn"><b>Read first</b><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul></div>{% endif %}

<div class="cards">
<div class="card"><b>{{ s.unique_visitors }}</b>unique visitors (clusters)</div>
<div class="card"><b>{{ s.unique_visitors_upper }}</b>upper bound (+ independent faces)</div>
<div class="card"><b>{{ s.visits }}</b>visits</div>
<div class="card"><b>{{ s.visitors_on_several_days }}</b>visitors seen on several days</div>
<div class="card"><b>{{ s.detections_per_visitor if s.detections_per_visitor is not none else "-" }}</b>detections per visitor</div>
<div class="card"><b>{{ s.median_dwell or "-" }}</b>median dwell</div>
<div class="card"><b>{{ s.staff_flagged }}</b>staff {{ "excluded" if p.exclude_staff else "flagged (kept)" }}</div>
{% if s.unreadable_files %}<div class="card"><b>{{ s.unreadable_files }}</b>unreadable files</div>{% endif %}
</div>
<p>{{ s.visitor_range }}</p>

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
<p class="note">Dwell is the time from a visit's first to its last sighting; a visit seen once has dwell 0.
{% if dwell_zero %}<b>Every visit here has dwell 0</b>, so there is no distribution to show.{% endif %}</p>
<img alt="dwell histogram" src="data:image/png;base64,{{ plots.dwell }}">

<h2>Daily table</h2>{{ tables.daily }}

<h2>Staff</h2>
<p class="note">{% if s.staff_flagged %}{{ s.staff_flagged }} visitor(s) matched the staff rule
({{ staff_rule }}) and {{ "were excluded from every other table" if p.exclude_staff else "were kept in the tables" }};
the reason column says which criterion each met.
{% else %}No visitor matched the staff rule ({{ staff_rule }}).{% endif %}</p>
{{ tables.staff }}
<p class="note">The visitors the rule kept who came closest to it (most days, then most hours a day). Regular
customers flagged above, or staff listed here, mean the rule needs adjusting.</p>
{{ tables.near_staff }}

<h2>Data quality</h2>{{ tables.quality }}
{% if s.unreadable_files %}<h3>Unreadable files</h3>
<p class="note">{{ s.unreadable_files }} file(s) could not be used and are in no count.</p>{{ tables.unreadable }}{% endif %}

<h2>Visitor gallery</h2>
{% if gallery is not none %}<div class="gallery">{% for g in gallery %}<div class="face">
{% if g.png %}<img alt="cover face of {{ g.label }}" src="data:image/png;base64,{{ g.png }}">{% else %}<i>no local image</i><br>{% endif %}
{{ g.label }}<br>{{ g.n_files }} file(s)</div>{% endfor %}</div>
<p class="note">Which files each visitor appears in:</p>{{ tables.gallery }}
{% else %}<p class="note">No faces in this report (the default). <code>--faces</code> (<code>faces=True</code>) adds a
cover face per visitor and the files each visitor appears in.</p>{% endif %}

<h2>Most frequent visitors</h2>{{ tables.visitors }}

<h2>Visits (first rows)</h2>{{ tables.visits }}

<h2>Parameters</h2>
<p class="note">Everything the report was built with (also in <code>parameters.json</code> beside the tables).</p>
<dl class="params">{% for k, v in params %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>

<h2>Methodology</h2>
<ul>
<li><b>Visitor</b> = {{ visitor_word }}.
Faces the clustering left out (<i>independent</i>) cannot be attributed to a person: the tables count
clustered faces only (a lower bound), and <i>unique_visitors_upper</i> counts every independent
face as one more visitor (an upper bound). Faces not clustered yet (<i>unavailable</i>) are only
counted in the quality table.</li>
<li><b>Time</b> of a face = {{ time_text }}; video faces add their offset in the video.
Offsets such as +08:00 are honoured; dates, hours and weekdays are local to {{ p.tz }}.
Faces without a usable time are left out (see the quality table, which counts the faces of each time source).</li>
<li><b>Location</b>: {{ location_text }}.</li>
<li><b>Visit</b>: a visitor's sightings at one location, sorted by time; a new visit starts when
the gap to the previous sighting exceeds {{ p.session_gap }}. A visit belongs to the date it starts.</li>
<li><b>New / returning</b>: a visitor is returning on a date when seen on an earlier date of the
period{{ " at the same location" if p.returning_scope == "location" else " at any location" }}; the
first date of the data therefore has only new visitors.</li>
<li><b>Staff</b>: {{ staff_rule }}. The rule only sees this period.</li>
<li><b>Detections per visitor</b> = face detections in visits / unique visitors: how many times
a naive per-detection count would over-count shoppers.</li>
{% if p.pseudonymized %}<li><b>Pseudonymised</b>: {{ p.pseudonymized }}.</li>{% endif %}
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
{% if notes %}<ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
<details><summary>daily ({{ n_daily }} rows)</summary>{{ daily }}</details>
<details><summary>quality</summary>{{ quality }}</details>
<p style="color:#666">Tables: .visits .daily .hourly .visitors .staff .near_staff .quality .unreadable;
.to_html(path) writes the full report.</p>
</div>"""

_ENV = Environment(autoescape=True)
_TH = re.compile(r"(<th[^>]*>)([^<]*)(</th>)")


def figure_to_png_base64(fig: Figure, dpi: int = 100) -> str:
    """PNG bytes of ``fig`` as base64 text (for ``data:image/png;base64,...``).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_to_png_base64(Figure(figsize=(1, 1)))[:8]
    'iVBORw0K'
    """
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
        elif isinstance(col.dtype, pd.StringDtype):
            out[c] = col.fillna("")
        elif pd.api.types.is_float_dtype(col):
            out[c] = [("" if not np.isfinite(x) else (f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"))
                      for x in col.to_numpy("float64", na_value=np.nan)]
    return out


def table_html(frame: pd.DataFrame, max_rows: int | None = None) -> Markup:
    """An escaped HTML table of ``frame`` (first ``max_rows`` rows, with a note when cut).

    Examples
    --------
    >>> str(table_html(pd.DataFrame({"a": ["<b>"]}))).startswith('<div class="wrap"><table')
    True
    >>> "&lt;b&gt;" in table_html(pd.DataFrame({"a": ["<b>"]}))
    True
    """
    shown = frame if not max_rows or len(frame) <= max_rows else frame.head(max_rows)
    html = _display_frame(shown).to_html(index=False, escape=True, border=0, classes="tab", na_rep="")
    html = _TH.sub(lambda m: m.group(1) + m.group(2).replace("_", "_<wbr>") + m.group(3), html)  # headers may wrap
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


def _time_text(p: dict[str, Any]) -> str:
    from imm_analysis.report.notes import TIME_SOURCE_WORDS

    used = p.get("time_sources_used") or ["produce_time", "file_create_time"]
    return ", else the ".join(TIME_SOURCE_WORDS.get(u, u) for u in used).join(["the ", ""])


def _gallery_items(report: ReportLike, limit: int) -> list[dict[str, Any]] | None:
    """Thumbnails (base64 PNG, or None where the image is not local or unreadable) of the first visitors."""
    g = report.gallery
    if g is None:
        return None
    from imm_analysis.report.gallery import thumbnail_png

    items = []
    for row in g.head(limit).itertuples(index=False):
        png = None
        if isinstance(row.cover_path, str) and row.cover_path:
            try:
                box = (float(row.left), float(row.top), float(row.width), float(row.height))  # type: ignore[arg-type]
                png = base64.b64encode(thumbnail_png(row.cover_path, box))
            except (OSError, ValueError):  # MediaError is a ValueError: the card says "no local image"
                png = None
        name = row.name if isinstance(row.name, str) and row.name else None
        items.append({"png": png.decode("ascii") if png else None, "label": name or row.visitor_id,
                      "n_files": row.n_files})
    return items


def render_html(report: ReportLike) -> str:
    """The full report as one HTML document (str).

    Examples
    --------
    >>> from imm_analysis import visitor_report
    >>> from imm_analysis.synth import make_visits
    >>> s = make_visits(10, stores=1, days=2, staff_per_store=0, seed=1)
    >>> html = render_html(visitor_report(s.figures, files=s.files, tz=s.tz))
    >>> html.startswith("<!DOCTYPE html>"), "Methodology" in html
    (True, True)
    """
    plots = {}
    for name in ("daily", "hourly", "locations", "dwell"):
        fig = getattr(report, f"plot_{name}")()
        plots[name] = figure_to_png_base64(fig)
    tabs = {name: table_html(frame.drop(columns=["cover_path"], errors="ignore") if name == "gallery" else frame,
                             MAX_ROWS.get(name))
            for name, frame in report.tables().items() if name != "hourly"}
    p = report.parameters
    params = [(k, "None" if v is None else str(v)) for k, v in p.items() if k != "title"]
    visits = report.visits
    dwell_zero = bool(len(visits)) and not bool((visits["dwell"] > pd.Timedelta(milliseconds=500)).any())
    visitor_word = WORDS.get(str(p.get("origin")), WORDS["imm"])["visitor"]
    return _ENV.from_string(_TEMPLATE).render(
        title=p.get("title", "Visitor report"), css=Markup(_CSS), s=report.summary, p=p, plots=plots, tables=tabs,
        params=params, staff_rule=_staff_rule_text(p["staff_rule"]), location_text=_location_text(p),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), notes=report.notes,
        gallery=_gallery_items(report, MAX_ROWS["gallery"]), dwell_zero=dwell_zero, visitor_word=visitor_word,
        time_text=_time_text(p),
    )


def render_notebook(report: ReportLike) -> str:
    """A short HTML summary for Jupyter (``VisitorReport._repr_html_``).

    Examples
    --------
    >>> from imm_analysis import visitor_report
    >>> from imm_analysis.synth import make_visits
    >>> s = make_visits(10, stores=1, days=2, staff_per_store=0, seed=1)
    >>> "unique visitors" in render_notebook(visitor_report(s.figures, files=s.files, tz=s.tz))
    True
    """
    return _ENV.from_string(_NOTEBOOK).render(
        title=report.parameters.get("title", "Visitor report"), s=report.summary, p=report.parameters,
        daily=table_html(report.daily, 30), quality=table_html(report.quality), n_daily=len(report.daily),
        notes=report.notes,
    )
