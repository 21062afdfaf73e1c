"""Shared pieces of the plots: the colour of "no cluster", the scatter limit, a new Axes.

matplotlib is imported only inside the functions that draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

#: Colour of faces that belong to no cluster, and of missing values.
INDEPENDENT_COLOR = (0.62, 0.62, 0.62)
#: Above this many points projections are drawn as a binned image instead of a scatter.
SCATTER_MAX = 200_000


def new_ax(ax: Axes | None, figsize: tuple[float, float] = (6.0, 5.0)) -> Axes:
    """``ax``, or the Axes of a new constrained-layout Figure (never pyplot, so nothing is shown).

    Examples
    --------
    >>> new_ax(None, (3.0, 2.0)).figure.get_size_inches().tolist()
    [3.0, 2.0]
    """
    if ax is not None:
        return ax
    from imm_analysis._optional import require

    Figure = require("matplotlib.figure", purpose="plots").Figure
    return Figure(figsize=figsize, layout="constrained").add_subplot()
