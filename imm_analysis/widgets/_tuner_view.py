"""The ThresholdTuner's ipywidgets UI and its montage of the merges nearest the threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imm_analysis._optional import require
from imm_analysis.widgets._tuner_calc import HD_DEFAULTS
from imm_analysis.widgets._view import View

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets
    from matplotlib.figure import Figure

    from imm_analysis.viz.montage import ImageSource
    from imm_analysis.widgets.tuner import ThresholdTuner

__all__ = ["TunerView", "images_available", "merge_montage"]

_METRICS = ("bcubed_precision", "bcubed_recall", "bcubed_f", "pairwise_f", "nmi", "ari")


def images_available(figures: pd.DataFrame | None, images: ImageSource) -> bool:
    """Whether montages can show faces: ``images`` given, or the first ``uri`` a local file.

    Examples
    --------
    >>> import pandas as pd
    >>> images_available(pd.DataFrame({"uri": ["oss://bucket/a.jpg"]}), None)
    False
    >>> images_available(pd.DataFrame({"uri": ["oss://bucket/a.jpg"]}), "/photos")
    True
    """
    if figures is None or not len(figures):
        return False
    if images is not None:
        return True
    from imm_analysis.viz.montage import _lookup

    return _lookup(None, [figures.iloc[0].get("uri")]) is not None


def merge_montage(
    figures: pd.DataFrame, merges: pd.DataFrame, images: ImageSource, hd_rule: Any, per_side: int
) -> Figure:
    """One montage row per merge: up to ``per_side`` faces of group A, then of group B.

    Examples
    --------
    >>> from imm_analysis.widgets._demo import demo_tuner
    >>> tuner, ds = demo_tuner()
    >>> fig = merge_montage(ds.figures, tuner.closest_merges(1, faces_per_side=2), None, None, 2)
    >>> len(fig.axes) >= 4  # two merges, two faces a side (grey "no image" tiles here)
    True
    """
    from imm_analysis.viz.montage import plot_face_montage

    rows, caps = [], []
    for r in merges.itertuples():
        tag = "joined" if r.joined else "apart"
        for side, ids, size in (("A", r.rows_a, r.size_a), ("B", r.rows_b, r.size_b)):
            members = np.asarray(ids)
            for j in range(per_side):
                rows.append(int(members[j]) if j < len(members) else -1)
                caps.append(f"{side} ({size}) {r.similarity:.3f} {tag}" if j == 0 else side)
    return plot_face_montage(
        figures, images, rows=np.asarray(rows), captions=caps, hd_rule=hd_rule,
        ncols=2 * per_side, max_faces=len(rows),
        title="merges closest to the threshold: group A | group B (size), linkage similarity",
    )


class TunerView(View):
    """Sliders, summary, projection and montages of one :class:`ThresholdTuner`.

    Examples
    --------
    >>> from imm_analysis.widgets._demo import demo_tuner
    >>> tuner, ds = demo_tuner(flat=True)
    >>> TunerView(tuner).widget.children[0].children[0].children[0].description
    'similarity threshold'
    """

    def __init__(self, tuner: ThresholdTuner) -> None:
        super().__init__()
        self.tuner = tuner
        self.controls: dict[str, Any] = {}

    def build(self) -> ipywidgets.VBox:
        w = require("ipywidgets", purpose="ThresholdTuner.widget")
        t = self.tuner
        p = t.params
        style = {"description_width": "9em"}
        layout = w.Layout(width="32em")
        c = {
            "threshold": w.FloatSlider(value=p["threshold"], min=round(max(t.threshold_floor, -1.0), 3), max=1.0,
                                       step=0.005, readout_format=".3f", description="similarity threshold"),
            "min_faces": w.IntSlider(value=p["min_faces"], min=1, max=max(10, p["min_faces"]), description="min_faces"),
            "min_size": w.IntSlider(value=int(p["min_size"]), min=0, max=max(300, int(p["min_size"])),
                                    description="HD min size (px)"),
            "max_pose": w.FloatSlider(value=p["max_pose"], min=0, max=90, step=1, description="HD max |pose| (deg)"),
            "min_quality": w.FloatSlider(value=p["min_quality"], min=0, max=1, step=0.01, description="HD min quality"),
        }
        for name, ctl in c.items():
            ctl.continuous_update = False
            ctl.style = style
            ctl.layout = layout
            ctl.observe(self._on_slider, names="value")
            ctl._tuner_param = name
        if t.figures is None:
            for k in HD_DEFAULTS:
                c[k].disabled = True
        self.controls = c
        self._summary_html = w.HTML()
        self._projection_img = w.Image(format="png", layout=w.Layout(max_width="560px"))
        self._montage_box = w.VBox()
        controls = w.VBox(list(c.values()) + [self._summary_html])
        return w.VBox([w.HBox([controls, self._projection_img]), self._montage_box])

    def _on_slider(self, change: dict) -> None:
        if self._syncing:
            return
        self.tuner.set(**{change["owner"]._tuner_param: change["new"]})

    def sync_controls(self) -> None:
        """Move the sliders to the tuner's parameters (without re-applying them)."""
        with self.syncing():
            p = self.tuner.params
            for k, ctl in self.controls.items():
                if ctl.value != p[k]:
                    ctl.value = p[k]

    def refresh(self) -> None:
        from imm_analysis.widgets._render import figure_png, html_table

        w = require("ipywidgets", purpose="ThresholdTuner.widget")
        t = self.tuner
        s = t.summary
        rows: dict[str, Any] = {
            "clusters": s["n_clusters"],
            "clustered faces": s["n_clustered"],
            "independent faces": s["n_independent"],
            "high-definition faces": s["n_hd"],
            "re-cut (ms)": s["recut_ms"],
        }
        rows.update({k: float(s[k]) for k in _METRICS if k in s})
        self._summary_html.value = html_table(rows, title="at these settings")
        self._projection_img.value = figure_png(t.projection_figure())
        if images_available(t.figures, t.images):
            self._montage_box.children = [w.Image(value=figure_png(f), format="png") for f in t.montage_figures()]
        else:
            self._montage_box.children = [w.HTML("<i>pass images= to see the faces of clusters and merges</i>")]
