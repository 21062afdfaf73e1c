"""Small helpers shared by the widgets: Figure -> PNG bytes, HTML tables."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["figure_png", "html_table"]


def figure_png(fig: Figure, *, dpi: int = 80) -> bytes:
    """Render a matplotlib Figure to PNG bytes with the Agg canvas (no display, no pyplot).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(1, 1))
    >>> _ = fig.add_subplot().plot([0, 1])
    >>> figure_png(fig)[1:4]  # the PNG signature
    b'PNG'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def html_table(rows: Mapping[str, Any], *, title: str | None = None) -> str:
    """A two-column HTML table of ``name: value`` (floats to 3 decimals, ints with separators).

    Examples
    --------
    >>> html_table({"faces": 1200, "F": 0.91234}, title="run")  # doctest: +ELLIPSIS
    "<b>run</b><table><tr>...faces</td>...1,200</td></tr><tr>...F</td>...0.912</td></tr></table>"
    """

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:.3f}"
        return html.escape(str(v))

    body = "".join(
        f"<tr><td style='padding-right:1em'>{html.escape(str(k))}</td><td style='text-align:right'>{fmt(v)}</td></tr>"
        for k, v in rows.items()
    )
    head = f"<b>{html.escape(title)}</b>" if title else ""
    return f"{head}<table>{body}</table>"
