"""Why does face clustering not generate any clusters? One small check per verdict.

* :mod:`~imm_analysis.cluster.diagnose.core`: :func:`diagnose_clustering` and :class:`Diagnosis`;
* :mod:`~imm_analysis.cluster.diagnose.checks`: the checks (``name``, ``description``) in order;
* :mod:`~imm_analysis.cluster.diagnose.facts`: the counts and groups they read.
"""

from __future__ import annotations

from imm_analysis.cluster.diagnose.checks import CHECKS, Check
from imm_analysis.cluster.diagnose.core import Diagnosis, diagnose_clustering

__all__ = ["CHECKS", "Check", "Diagnosis", "diagnose_clustering"]
