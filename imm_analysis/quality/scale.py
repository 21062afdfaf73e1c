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

from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["gather_summary_data"]


def gather_summary_data(
    ddf: Any, rows: Callable[..., pd.DataFrame], keys: list[str], *args: Any,
) -> pd.DataFrame:
    """``rows(partition, keys, *args)`` of every partition of ``ddf``, computed in parallel and concatenated.

    ``rows`` is :func:`imm_analysis.quality.summary._summary_data` (passed in, so this module
    imports nothing from the summary).

    Examples
    --------
    >>> import pandas as pd, pytest
    >>> from imm_analysis.quality.summary import _summary_data
    >>> dd = pytest.importorskip("dask.dataframe")  # the [dask] extra
    >>> f = pd.DataFrame({"file_id": ["a", "b", "c"], "width": [80, 60, 100], "height": [90, 90, 120]})
    >>> rows = gather_summary_data(dd.from_pandas(f, npartitions=2), _summary_data, [], None, {})
    >>> len(rows), rows["face_size"].tolist()
    (3, [80.0, 60.0, 100.0])
    """
    meta = rows(ddf._meta, keys, *args)
    parts = ddf.map_partitions(rows, keys, *args, meta=meta)
    data = parts.compute()
    data = data.reset_index(drop=True)
    for i, k in enumerate(keys):  # partitions may carry different categories: the frame's dtype again
        col = f"__by_{i}"
        dtype = ddf._meta[k].dtype
        if isinstance(dtype, pd.CategoricalDtype) and not isinstance(data[col].dtype, pd.CategoricalDtype):
            data[col] = data[col].astype(dtype.categories.dtype if len(dtype.categories) else "string").astype("category")
    return data
