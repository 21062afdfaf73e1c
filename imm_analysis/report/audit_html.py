"""HTML pages of clustering audits (:class:`~imm_analysis.audit.diff.ClusteringDiff`,
:class:`~imm_analysis.audit.local.LocalAudit`): summary cards, the plot and the tables.

jinja2 with autoescape: cluster ids, names and URIs are escaped; plots are embedded PNGs, so a page
needs nothing else. Pages are written atomically.
"""

from __future__ import annotations

import os
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from imm_analysis.io.atomic import atomic_write_bytes
from imm_analysis.report.html import _CSS, figure_to_png_base64, table_html

__all__ = ["render_diff", "render_audit"]

_ENV = Environment(autoescape=True)
_PAGE = _ENV.from_string("""{% if not fragment %}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css }}</style></head><body>
{% endif %}<div class="imm-audit">
<h2>{{ title }}</h2>
<div class="cards">{% for label, value in cards %}<div class="card"><b>{{ value }}</b>{{ label }}</div>{% endfor %}</div>
{% if png %}<img alt="{{ title }}" src="data:image/png;base64,{{ png }}">{% endif %}
{% for heading, table in tables %}<h3>{{ heading }}</h3>{{ table }}{% endfor %}
</div>{% if not fragment %}</body></html>{% endif %}
""")


def _render(title: str, cards: list[tuple[str, Any]], fig: Any, tables: list[tuple[str, Markup]],
            path: str | os.PathLike | None, fragment: bool) -> str:
    png = None
    if fig is not None:
        png = figure_to_png_base64(fig, dpi=80)
    html = _PAGE.render(title=title, css=_CSS, cards=cards, png=png, tables=tables, fragment=fragment)
    if path is not None:
        atomic_write_bytes(path, html.encode("utf-8"))
    return html


def _plot_or_none(obj: Any) -> Any:
    try:
        return obj.plot()
    except ImportError:  # matplotlib missing: the page has no picture
        return None


def render_diff(diff: Any, path: str | os.PathLike | None = None, *, fragment: bool = False,
                max_rows: int = 50) -> str:
    """HTML of a :class:`~imm_analysis.audit.diff.ClusteringDiff` (written atomically to ``path`` when given).

    Examples
    --------
    >>> import pandas as pd
    >>> from imm_analysis import diff_clusterings
    >>> b = pd.DataFrame({"figure_id": ["a"], "file_id": ["x"], "figure_cluster_id": ["<C1>"]})
    >>> a = pd.DataFrame({"figure_id": ["a", "b"], "file_id": ["x", "y"], "figure_cluster_id": ["<C1>", "<C1>"]})
    >>> html = render_diff(diff_clusterings((None, b), (None, a)))
    >>> "&lt;C1&gt;" in html and "<C1>" not in html
    True
    """
    s = diff.summary
    cards = [(f"clusters {k}", f"{v:,}") for k, v in s["clusters"].items() if v] + [
        (f"faces {k}", f"{v:,}") for k, v in s["faces"].items() if v] + [("broken promises", f"{s['broken']:,}")]
    changed = diff.clusters[diff.clusters["change"] != "unchanged"]
    tables = [("clusters that changed", table_html(changed, max_rows)),
              ("broken: earlier assignments that did not survive", table_html(diff.broken, max_rows)),
              ("faces that moved, left or joined", table_html(
                  diff.faces[diff.faces["change"].isin(["moved", "left", "newly_clustered"])], max_rows))]
    title = f"What the run changed: {diff.names[0]} -> {diff.names[1]}"
    return _render(title, cards, _plot_or_none(diff), tables, path, fragment)


def render_audit(audit: Any, path: str | os.PathLike | None = None, *, fragment: bool = False,
                 max_rows: int = 50) -> str:
    """HTML of a :class:`~imm_analysis.audit.local.LocalAudit` (written atomically to ``path`` when given).

    Examples
    --------
    >>> import pandas as pd
    >>> from imm_analysis import audit_against_local
    >>> face = {"figure_id": ["f"], "uri": ["p.jpg"], "left": [0], "top": [0], "width": [90], "height": [90],
    ...         "face_quality": [0.9], "pitch": [0], "roll": [0], "yaw": [0], "figure_cluster_id": ["<C>"]}
    >>> html = render_audit(audit_against_local(pd.DataFrame(face), pd.DataFrame(face)))
    >>> "&lt;C&gt;" in html and "<C>" not in html
    True
    """
    s = audit.summary
    agree = s.get("agreement", {})
    cards = [("faces matched", f"{s['matched']:,}"), ("only IMM", f"{s['only_imm']:,}"),
             ("only local", f"{s['only_local']:,}"), ("HD verdicts differ", f"{s['hd_disagree']:,}"),
             ("splits", f"{s['splits']:,}"), ("merges", f"{s['merges']:,}"),
             ("pairwise F", f"{agree.get('pairwise_f', float('nan')):.3f}"),
             ("BCubed F", f"{agree.get('bcubed_f', float('nan')):.3f}")]
    tables = [("detection by face size", table_html(audit.detection)),
              ("faces found on one side only", table_html(audit.unmatched, max_rows)),
              ("where the clusterings disagree most", table_html(audit.disagreements, max_rows)),
              ("quality and pose of matched faces", table_html(audit.quality, max_rows))]
    extra = []
    for cluster_id, fig in audit.montages(max_clusters=3).items():
        extra.append((f"montage: {cluster_id}", Markup(
            f'<img alt="montage" src="data:image/png;base64,{figure_to_png_base64(fig, dpi=60)}">')))
    return _render("IMM against a local run", cards, _plot_or_none(audit), tables + extra, path, fragment)
