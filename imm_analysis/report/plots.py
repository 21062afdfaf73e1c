"""Plots of the visitor report. Each function takes a report table and returns a matplotlib Figure.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state), so they can be
embedded in HTML or returned as the last expression of a notebook cell without being shown twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_daily", "plot_hourly", "plot_locations", "plot_dwell"]

_NEW, _RET, _UP = "#4C72B0", "#DD8452", "#55A868"


def _figure(w: float = 8.0, h: float = 3.6) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_daily(daily: pd.DataFrame) -> Figure:
    """Stacked bars of new and returning visitors per date (summed over locations).

    The upper bound (``unique_visitors_upper``: independent faces as one visitor each) is drawn
    as a line when it differs from the lower bound.
    """
    fig = _figure()
    ax = fig.add_subplot()
    if daily.empty:
        _empty(ax, "visits")
        return fig
    d = daily.groupby("date", sort=True)[["new_visitors", "returning_visitors", "unique_visitors_upper",
                                          "unique_visitors"]].sum()
    x = np.arange(len(d))
    ax.bar(x, d["new_visitors"], color=_NEW, label="new")
    ax.bar(x, d["returning_visitors"], bottom=d["new_visitors"], color=_RET, label="returning")
    if (d["unique_visitors_upper"] != d["unique_visitors"]).any():
        ax.plot(x, d["unique_visitors_upper"], color=_UP, marker="o", label="upper bound (independent faces)")
    step = max(1, len(d) // 15)
    ax.set_xticks(x[::step], [str(v) for v in d.index[::step]], rotation=45, ha="right")
    ax.set_ylabel("unique visitors (sum over locations)")
    ax.set_title("Visitors per day: new and returning")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_hourly(hourly: pd.DataFrame, *, tz: str = "") -> Figure:
    """Heatmap of mean arrivals (visits starting) per hour of the day and weekday."""
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    grid = hourly.pivot(index="weekday", columns="hour", values="arrivals_per_day").reindex(index=range(7),
                                                                                          columns=range(24))
    im = ax.imshow(grid.fillna(0).to_numpy(), aspect="auto", cmap="viridis")
    ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel(f"hour of day ({tz})" if tz else "hour of day")
    ax.set_title("Mean arrivals per hour and weekday")
    fig.colorbar(im, ax=ax, label="arrivals per day")
    return fig


def plot_locations(daily: pd.DataFrame, *, top: int = 30) -> Figure:
    """Horizontal bars per location: visits and the sum of daily unique visitors (the ``top`` busiest)."""
    per = daily.groupby("location", sort=False)[["unique_visitors", "visits"]].sum().sort_values("visits")
    per = per.iloc[-top:]
    fig = _figure(8.0, max(2.5, 0.3 * len(per) + 1.2))
    ax = fig.add_subplot()
    if per.empty:
        _empty(ax, "visits")
        return fig
    y = np.arange(len(per))
    ax.barh(y + 0.2, per["visits"], height=0.4, color=_RET, label="visits")
    ax.barh(y - 0.2, per["unique_visitors"], height=0.4, color=_NEW, label="daily unique visitors (summed)")
    ax.set_yticks(y, [str(s) for s in per.index])
    ax.set_title("Traffic per location")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_dwell(visits: pd.DataFrame) -> Figure:
    """Histogram of visit dwell times in minutes (a single sighting has dwell 0).

    When every dwell rounds to 0 s (as the tables show it) the figure holds a note instead of a histogram (no axis of zeros).

    Examples
    --------
    >>> fig = plot_dwell(pd.DataFrame({"dwell": pd.to_timedelta([0, 0], unit="s")}))
    >>> fig.axes[0].texts[0].get_text().startswith("every one of the 2 visits has dwell 0")
    True
    """
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    if visits.empty:
        _empty(ax, "visits")
        return fig
    minutes = visits["dwell"].dt.total_seconds().to_numpy() / 60
    if not (minutes > 0.5 / 60).any():  # 0:00:00 everywhere (whole seconds): a histogram would draw a meaningless axis
        ax.text(0.5, 0.5, f"every one of the {len(minutes):,} visits has dwell 0\n(its sightings share one time)",
                ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("Visit dwell")
        return fig
    ax.hist(minutes, bins=min(60, max(10, int(np.sqrt(len(minutes))))), color=_NEW)
    med = float(np.median(minutes))
    ax.axvline(med, color="black", linestyle="--", label=f"median {med:.1f} min")
    ax.set_xlabel("dwell (minutes, first to last sighting)")
    ax.set_ylabel("visits")
    ax.set_title("Visit dwell")
    ax.legend(frameon=False)
    return fig
