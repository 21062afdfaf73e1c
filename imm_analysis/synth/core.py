"""Synthetic datasets (compatibility module): the names live in modules by job.

* :mod:`imm_analysis.synth.embeddings`: :func:`make_embeddings`.
* :mod:`imm_analysis.synth.datasets`: :class:`SynthDataset`, :func:`make_dataset`.
* :mod:`imm_analysis.synth.imm_pages`: IMM identifiers and JSON pages.
* :mod:`imm_analysis.synth.sample`: :func:`write_sample`.

``from imm_analysis.synth.core import X`` keeps working for each of them.
"""

from __future__ import annotations

# the constants and _embedding_params were importable from here before the split: keep them so
from imm_analysis.synth.datasets import IMAGE_SIZE, OPENING_HOURS, SynthDataset, make_dataset  # noqa: F401
from imm_analysis.synth.embeddings import (  # noqa: F401
    DIFFERENT_PEOPLE_SD,
    SAME_PERSON_MEAN,
    SAME_PERSON_SD,
    _embedding_params,
    make_embeddings,
)
from imm_analysis.synth.imm_pages import LOCAL_TZ  # noqa: F401
from imm_analysis.synth.sample import write_sample

__all__ = ["SynthDataset", "make_dataset", "make_embeddings", "write_sample"]
