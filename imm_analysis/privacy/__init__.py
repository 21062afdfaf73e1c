"""Privacy: forget a person everywhere, retention, and what pseudonymous reports rely on.

* :func:`forget` (:mod:`~imm_analysis.privacy.forget`): erase a person, faces or files from a
  ClusterState, an embedding cache, search libraries and report folders, with tombstones so that
  nothing comes back, and an :class:`ErasureReceipt` (:mod:`~imm_analysis.privacy.receipt`) that
  verifies it.
* :func:`expire_cache` (:mod:`~imm_analysis.privacy.retention`): the embedding cache's
  retention, beside :meth:`ClusterState.expire <imm_analysis.ClusterState.expire>`.
* Pseudonymous reports: ``visitor_report(..., pseudonymize=True, key=...)``
  (:mod:`imm_analysis.report.pseudonym`).

This package sits with the report and the command line (it reads and rewrites stores of every
layer below it). Names are loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imm_analysis._lazy import attach

_EXPORTS = {
    "forget": "imm_analysis.privacy.forget",
    "ErasureReceipt": "imm_analysis.privacy.receipt",
    "expire_cache": "imm_analysis.privacy.retention",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.privacy.forget import forget
    from imm_analysis.privacy.receipt import ErasureReceipt
    from imm_analysis.privacy.retention import expire_cache

__getattr__, __dir__ = attach(__name__, _EXPORTS)
