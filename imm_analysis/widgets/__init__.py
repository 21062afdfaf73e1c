"""Widgets layer: interactive threshold tuning and cluster browsing in Jupyter.

Both widgets are drivable headless (tests, scripts): their methods change the state and
return summaries; ``.widget`` builds the ipywidgets UI. ipywidgets and matplotlib are
imported only when a widget is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS: dict[str, str] = {
    "ThresholdTuner": "imm_analysis.widgets.tuner",
    "ClusterBrowser": "imm_analysis.widgets.browser",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.widgets.browser import ClusterBrowser
    from imm_analysis.widgets.tuner import ThresholdTuner


__getattr__, __dir__ = attach(__name__, _EXPORTS)
