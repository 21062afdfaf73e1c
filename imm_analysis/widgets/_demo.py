"""Small synthetic tuners and browsers for the widgets' docstring examples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from imm_analysis.synth.datasets import SynthDataset
    from imm_analysis.widgets.browser import ClusterBrowser
    from imm_analysis.widgets.tuner import ThresholdTuner

__all__ = ["demo_browser", "demo_tuner"]


def demo_tuner(*, flat: bool = False, **params: Any) -> tuple[ThresholdTuner, SynthDataset]:
    """A tuner over 8 synthetic people at threshold 0.45, and its dataset.

    ``flat=True`` gives it all-zero projection coordinates (no UMAP run) and no true labels.

    Examples
    --------
    >>> tuner, ds = demo_tuner()
    >>> tuner.params["threshold"], len(tuner.labels_) == len(ds.figures)
    (0.45, True)
    """
    from imm_analysis.synth import make_dataset
    from imm_analysis.widgets.tuner import ThresholdTuner

    ds = make_dataset(8, seed=1)
    if flat:
        params = {"coords": np.zeros((len(ds.figures), 2)), **params}
    return ThresholdTuner(ds.figures, ds.embeddings, None if flat else ds.labels, threshold=0.45, **params), ds


def demo_browser(page_size: int = 3, **dataset_params: Any) -> ClusterBrowser:
    """A browser over 8 synthetic people clustered at 0.45 (``dataset_params`` go to ``make_dataset``).

    Examples
    --------
    >>> demo_browser(page_size=2).page_size
    2
    """
    from imm_analysis.cluster.state import ClusterState
    from imm_analysis.synth import make_dataset
    from imm_analysis.widgets.browser import ClusterBrowser

    ds = make_dataset(8, seed=1, **dataset_params)
    state = ClusterState.from_figures(ds.figures, ds.embeddings, threshold=0.45, seed=0)
    return ClusterBrowser(state, page_size=page_size)
