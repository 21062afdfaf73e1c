"""Synthetic IMM datasets with ground truth, for tests, notebooks, benchmarks and the demo.

* :mod:`imm_analysis.synth.embeddings`: embeddings like a real face model's.
* :mod:`imm_analysis.synth.datasets`: people, faces, images, videos with ground truth
  (their random draws in :mod:`imm_analysis.synth.draws`).
* :mod:`imm_analysis.synth.imm_pages`: IMM identifiers and JSON pages.
* :mod:`imm_analysis.synth.sample`: the committed sample's writer.
* :mod:`imm_analysis.synth.core`: the names above, as imported before the split.
* :mod:`imm_analysis.synth.visits`: a retail visit schedule (visitors, stores, days, dwell).
* :mod:`imm_analysis.synth.runs`: a dataset clustered, then grown and clustered again (two runs' exports).

``python -m imm_analysis.synth --out data/sample`` regenerates the committed sample.
"""

from imm_analysis.synth.core import *  # noqa: F401,F403
from imm_analysis.synth.core import __all__ as _core_all
from imm_analysis.synth.runs import SynthRuns, make_runs  # noqa: E402 (after the names it uses)
from imm_analysis.synth.visits import *  # noqa: F401,F403
from imm_analysis.synth.visits import __all__ as _visits_all

__all__ = [*_core_all, *_visits_all, "SynthRuns", "make_runs"]
