"""Quality on a ``dask.dataframe`` of figures (:func:`imm_analysis.io.read_figures_dask`).

:func:`imm_analysis.quality.quality_summary` and :func:`imm_analysis.quality.hd_faces` accept a dask
dataframe. ``hd_faces`` stays lazy (the rule partition by partition). ``quality_summary`` applies
the rule and computes the measures partition by partition (in parallel, on the cluster when a
client is active) and combines only what the group statistics need: per face the group keys, the
file id, the HD flags and the six measures, about 100 bytes per face (5 GB at 50 million faces),
never the figures frame itself. Percentiles are exact, as in pandas, so the answer equals
``quality_summary(ddf.compute())``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from imm_analysis.quality.summary import _summary_data

__all__ = ["gather_summary_data"]


def gather_summary_data(
    ddf: Any, keys: list[str], rule: Any, min_size: float | None, max_pose: float | None,
    min_quality: float | None,
) -> pd.DataFrame:
    """The per-face summary rows of every partition of ``ddf``, computed in parallel and concatenated.

    Examples
    --------
    >>> from imm_analysis.io import read_figures_dask
    >>> rows = gather_summary_data(read_figures_dask("ds"), [], None, None, None, None)  # doctest: +SKIP
    """
    args = (keys, rule, min_size, max_pose, min_quality)
    meta = _summary_data(ddf._meta, *args)
    parts = ddf.map_partitions(_summary_data, *args, meta=meta)
    data = parts.compute()
    data = data.reset_index(drop=True)
    for i, k in enumerate(keys):  # partitions may carry different categories: the frame's dtype again
        col = f"__by_{i}"
        dtype = ddf._meta[k].dtype
        if isinstance(dtype, pd.CategoricalDtype) and not isinstance(data[col].dtype, pd.CategoricalDtype):
            data[col] = data[col].astype(dtype.categories.dtype if len(dtype.categories) else "string").astype("category")
    return data
