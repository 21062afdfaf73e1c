"""The ClusterBrowser's ipywidgets UI: page list, montage, and the edit controls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imm_analysis._optional import require
from imm_analysis.widgets._view import View

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets

    from imm_analysis.widgets.browser import ClusterBrowser

__all__ = ["BrowserView"]


def _label(r: Any) -> str:
    name = r.name if isinstance(r.name, str) and r.name else ""
    return f"{int(r.face_count):>4} faces  {name or r.cluster_id}"


class BrowserView(View):
    """Buttons, lists and the montage of one :class:`ClusterBrowser`; every edit goes through it.

    Examples
    --------
    >>> from imm_analysis.widgets._demo import demo_browser
    >>> view = BrowserView(demo_browser())
    >>> view.widget.children[0].children[0].description
    '< prev'
    """

    def __init__(self, browser: ClusterBrowser) -> None:
        super().__init__()
        self.browser = browser
        self.ui: dict[str, Any] = {}

    def build(self) -> ipywidgets.VBox:
        w = require("ipywidgets", purpose="ClusterBrowser.widget")
        b = self.browser
        ui = {
            "prev": w.Button(description="< prev", layout=w.Layout(width="7em")),
            "next": w.Button(description="next >", layout=w.Layout(width="7em")),
            "page": w.HTML(),
            "clusters": w.Select(description="clusters", rows=8, layout=w.Layout(width="30em")),
            "montage": w.Image(format="png"),
            "faces": w.SelectMultiple(description="faces", rows=8, layout=w.Layout(width="30em")),
            "eject": w.Button(description="eject selected faces", button_style="warning"),
            "name": w.Text(description="name", placeholder="person's name"),
            "rename": w.Button(description="rename"),
            "cover": w.Dropdown(description="cover file"),
            "set_cover": w.Button(description="set cover"),
            "others": w.SelectMultiple(description="merge in", rows=6, layout=w.Layout(width="30em")),
            "merge": w.Button(description="merge into this cluster", button_style="info"),
            "status": w.HTML(),
        }
        ui["prev"].on_click(lambda _: self.guard(b.prev_page))
        ui["next"].on_click(lambda _: self.guard(b.next_page))
        ui["clusters"].observe(self._on_select, names="value")
        ui["eject"].on_click(lambda _: self.guard(b.eject, list(ui["faces"].value)))
        ui["rename"].on_click(lambda _: self.guard(b.rename, None, ui["name"].value or None))
        ui["set_cover"].on_click(lambda _: self.guard(b.set_cover, None, ui["cover"].value))
        ui["merge"].on_click(lambda _: self.guard(b.merge, [b.selected, *ui["others"].value], into=b.selected))
        self.ui = ui
        edit = w.VBox([
            ui["faces"], ui["eject"], w.HBox([ui["name"], ui["rename"]]), w.HBox([ui["cover"], ui["set_cover"]]),
            ui["others"], ui["merge"], ui["status"],
        ])
        return w.VBox([w.HBox([ui["prev"], ui["page"], ui["next"]]), w.HBox([ui["clusters"], edit]), ui["montage"]])

    def status(self, html: str) -> None:
        if self.ui:
            self.ui["status"].value = html

    def _on_select(self, change: dict) -> None:
        if self._syncing or change["new"] is None:
            return
        self.browser.selected = change["new"]
        self.refresh()

    def refresh(self) -> None:
        from imm_analysis.widgets._render import figure_png

        b, ui = self.browser, self.ui
        with self.syncing():
            c = b.clusters_by_size()
            on_page = c.iloc[b.page * b.page_size : (b.page + 1) * b.page_size]
            ui["page"].value = f"&nbsp;page {b.page + 1} of {b.n_pages} ({len(c):,} clusters)&nbsp;"
            ui["clusters"].options = [(_label(r), str(r.cluster_id)) for r in on_page.itertuples()]
            ui["clusters"].value = b.selected if b.selected in on_page["cluster_id"].astype(str).tolist() else None
            others = c[c["cluster_id"].astype(str) != b.selected]
            ui["others"].options = [(_label(r), str(r.cluster_id)) for r in others.itertuples()]
            if b.selected is None:
                ui["faces"].options, ui["cover"].options = [], []
                ui["montage"].value = b""
                return
            faces = b.faces()
            ui["faces"].options = [
                (f"{str(r.figure_id)[:12]}  q={r.face_quality:.2f}{'' if r.is_hd else '  not HD'}", r.figure_id)
                for r in faces.itertuples()
            ]
            files = list(dict.fromkeys(faces["file_id"].astype(str)))
            ui["cover"].options = files
            summary = b.summary
            cover = summary["cover_file_id"]
            ui["cover"].value = cover if cover in files else (files[0] if files else None)
            ui["name"].value = summary["name"] or ""
            ui["montage"].value = figure_png(b.montage())
