"""Widgets layer: interactive threshold tuning and cluster browsing in Jupyter.

Both widgets are drivable headless (tests, scripts): their methods change the state and
return summaries; ``.widget`` builds the ipywidgets UI. ipywidgets and matplotlib are
imported only when a widget is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ThresholdTuner": "imm_analysis.widgets.tuner",
    "ClusterBrowser": "imm_analysis.widgets.browser",
}

__all__ = ["ClusterBrowser", "ThresholdTuner"]

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.widgets.browser import ClusterBrowser
    from imm_analysis.widgets.tuner import ThresholdTuner


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'imm_analysis.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
