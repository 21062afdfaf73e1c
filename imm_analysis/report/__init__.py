"""Retail visitor report: unique, new and returning visitors from face clusters.

* :mod:`imm_analysis.report.visitors`: :func:`visitor_report` and :class:`VisitorReport`;
* :mod:`imm_analysis.report.tables`: the pure pandas/numpy computations (times, locations,
  sessionisation, daily/hourly/visitor/staff tables);
* :mod:`imm_analysis.report.plots`: matplotlib figures of the tables;
* :mod:`imm_analysis.report.html`: the self-contained, escaped HTML rendering.

The plots and HTML are imported lazily, so ``import imm_analysis.report`` does not import matplotlib.
"""

from imm_analysis.report.visitors import VisitorReport, visitor_report

__all__ = ["VisitorReport", "visitor_report"]
