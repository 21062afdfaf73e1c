"""Retail visitor report: unique, new and returning visitors from face clusters.

* :mod:`imm_analysis.report.visitors`: :func:`visitor_report`;
* :mod:`imm_analysis.report.result`: :class:`VisitorReport` and its CSV/Parquet/HTML outputs;
* :mod:`imm_analysis.report.tables`: the pure pandas/numpy computations (times, locations,
  sessionisation, daily/hourly/visitor/staff tables);
* :mod:`imm_analysis.report.notes`: provenance words, warnings, the unreadable-files and
  near-staff tables;
* :mod:`imm_analysis.report.gallery`: the optional visitor gallery (cover faces, member files);
* :mod:`imm_analysis.report.plots`: matplotlib figures of the tables;
* :mod:`imm_analysis.report.html`: the self-contained, escaped HTML rendering.

Imports go one way: ``visitors -> result -> html -> notes, tables``. The plots and HTML are
imported lazily, so ``import imm_analysis.report`` does not import matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "visitor_report": "imm_analysis.report.visitors",
    "VisitorReport": "imm_analysis.report.result",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.report.result import VisitorReport
    from imm_analysis.report.visitors import visitor_report

__getattr__, __dir__ = attach(__name__, _EXPORTS)
