"""Pure pandas/numpy computations behind the visitor report (no plotting, no HTML).

Every function works on plain arrays or frames so it can be tested and reused on its own:

* :func:`resolve_times`: one capture time per face (``produce_time``, else ``file_create_time``,
  else a time parsed from the URI), plus video ``timestamp`` offsets;
* :func:`resolve_locations`: one location per face (a column, ``custom_labels:KEY`` or a regex on ``uri``);
* :func:`sessionize`: vectorised split of sightings into visits;
* :func:`daily_table`, :func:`hourly_table`, :func:`visitor_summary`, :func:`staff_mask`.

Times are int64 nanoseconds since the epoch in UTC inside this module; ``NaT`` is ``NAT``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_STAFF_RULE",
    "FileLookup",
    "TIME_SOURCES",
    "check_tz",
    "check_gap",
    "format_duration",
    "resolve_times",
    "resolve_locations",
    "sessionize",
    "local_parts",
    "daily_table",
    "hourly_table",
    "visitor_summary",
    "staff_mask",
]

NAT = np.iinfo(np.int64).min
_NS_DAY = 86_400 * 1_000_000_000
_NS_HOUR = 3_600 * 1_000_000_000
#: Labels of the time sources, in the order of the codes :func:`resolve_times` returns (-1: none).
TIME_SOURCES = ("produce_time", "file_create_time", "uri")
#: Default staff rule: present on more than half of the report's days (and on at least 3 days),
#: or a median of at least 4 hours a day in the stores.
DEFAULT_STAFF_RULE: dict[str, float] = {"min_days_share": 0.5, "min_days": 3, "min_hours_per_day": 4.0}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def check_tz(tz: str) -> str:
    """Return ``tz`` if it is a known IANA time zone, else raise ValueError."""
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}: use an IANA name such as 'UTC' or 'Asia/Shanghai'") from None
    return str(tz)


def check_gap(session_gap: str | pd.Timedelta) -> pd.Timedelta:
    """Parse ``session_gap`` (``"30min"``, ``"1h"``, a Timedelta) and require it to be positive."""
    try:
        gap = pd.Timedelta(session_gap)
    except (ValueError, TypeError):
        raise ValueError(f"session_gap {session_gap!r} is not a duration (examples: '30min', '2h', '900s')") from None
    if pd.isna(gap) or gap <= pd.Timedelta(0):
        raise ValueError(f"session_gap must be positive, got {session_gap!r}")
    return gap


def compile_one_group(pattern: str, what: str) -> re.Pattern:
    """Compile a regular expression that must have exactly one group; ``ValueError`` naming ``what`` if not."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression: {exc}") from None
    if rx.groups != 1:
        raise ValueError(f"{what} {pattern!r} must have exactly one group (...), it has {rx.groups}")
    return rx


def format_duration(value: pd.Timedelta | np.timedelta64 | None) -> str:
    """A duration as ``H:MM:SS`` text: the one rule every report output (HTML, CSV, summary) uses.

    Rounded to the nearest second, an exact half to the even second as Python's ``round`` does
    (a median of two whole-second dwells often ends in ``.5``: ``7:26.5`` gives ``0:07:26``,
    ``7:27.5`` gives ``0:07:28``, so halves do not drift up); days count as hours (``26:00:00``);
    negative durations get a leading ``-``; missing (``NaT``, None) gives ``""``.
    ``pd.to_timedelta`` reads the text back.

    Examples
    --------
    >>> format_duration(pd.Timedelta("1h 4min 59.6s"))
    '1:05:00'
    >>> format_duration(pd.Timedelta("7min 26.5s")), format_duration(pd.Timedelta("7min 27.5s"))
    ('0:07:26', '0:07:28')
    >>> format_duration(pd.Timedelta(days=1, hours=2)), format_duration(pd.NaT)
    ('26:00:00', '')
    """
    if value is None or pd.isna(value):
        return ""
    ns = pd.Timedelta(value).value  # integer nanoseconds: no float rounding error
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    secs, rest = divmod(ns, 1_000_000_000)
    if rest > 500_000_000 or (rest == 500_000_000 and secs % 2):
        secs += 1
    return f"{sign}{secs // 3600:d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


class FileLookup:
    """Join file-level columns (``files``) onto figures rows through ``file_id``; the hash index is built once."""

    def __init__(self, figures: pd.DataFrame, files: pd.DataFrame | None) -> None:
        self.figures, self.files = figures, files
        self._index: pd.Index | None = None
        self._first: np.ndarray | None = None

    def has(self, column: str) -> bool:
        f = self.files
        return f is not None and column in f.columns and "file_id" in f.columns and "file_id" in self.figures

    def _build(self) -> None:
        assert self.files is not None  # has() checked it
        idx = pd.Index(self.files["file_id"].to_numpy(object, na_value=None))  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
        if idx.is_unique:
            self._index, self._first = idx, np.arange(len(idx))
        else:
            keep = ~idx.duplicated()
            self._index, self._first = idx[keep], np.flatnonzero(keep)

    def get(self, column: str, rows: np.ndarray | None = None) -> pd.Series | None:
        """``files[column]`` for every figures row (or the positions ``rows``); null where the file is unknown."""
        if not self.has(column):
            return None
        if self._index is None:
            self._build()
        assert self._index is not None and self._first is not None and self.files is not None
        ids = self.figures["file_id"] if rows is None else self.figures["file_id"].iloc[rows]
        pos = self._index.get_indexer(ids.to_numpy(object, na_value=None))  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
        values = self.files[column].iloc[self._first[np.maximum(pos, 0)]].reset_index(drop=True)
        missing = pd.Series(pos < 0)
        return values.mask(missing) if missing.any() else values


def _as_ns(series: pd.Series) -> np.ndarray:
    s = pd.to_datetime(series, utc=True, errors="coerce")
    return s.dt.as_unit("ns").to_numpy("datetime64[ns]").view(np.int64).copy()


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions where a new run of equal consecutive values starts, and each row's run index.

    Faces of one file are adjacent in loaded frames, so per-file work (a regex on the URI) is
    done once per run instead of once per face, without hashing every string.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.ones(n, dtype=bool)
    new[1:] = values[1:] != values[:-1]
    starts = np.flatnonzero(new)
    return starts, np.cumsum(new) - 1


def _extract(uris: np.ndarray, rx: re.Pattern) -> np.ndarray:
    """The group of ``rx`` in each URI (object array, None where it does not match)."""
    starts, run = _runs(uris)
    search = rx.search
    found = [
        (m.group(1) if (m := search(u)) is not None else None) if isinstance(u, str) else None for u in uris[starts]
    ]
    return np.asarray(found, dtype=object)[run] if len(run) else np.zeros(0, dtype=object)


def _uri_times(uris: np.ndarray, rx: re.Pattern, tz: str) -> np.ndarray:
    text = pd.Series(_extract(uris, rx), dtype="string")
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if parsed.isna().all() and text.notna().any():
        parsed = pd.to_datetime(text, format="mixed", errors="coerce")
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return _as_ns(parsed)


def resolve_times(
    figures: pd.DataFrame, files: pd.DataFrame | None = None, *, time_source: str | Sequence[str] | None = None,
    tz: str = "UTC", lookup: FileLookup | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One UTC capture time per face, and where it came from.

    Parameters
    ----------
    figures : DataFrame
        Figures frame.
    files : DataFrame, optional
        Files frame, joined on ``file_id`` for file-level times (``file_create_time``).
    time_source : str or sequence of str, optional
        ``None``: ``produce_time``, else ``file_create_time``. A regular expression with one group
        (not a column name): that chain, then the group's text in ``uri`` parsed as a time
        (ISO 8601, basic ``20260105T143012`` or extended; a time without offset is local to ``tz``).
        A column name: that column only. A sequence: those sources, in order.
    tz : str
        Time zone of URI times that carry no offset.
    lookup : FileLookup, optional
        A join of ``files`` onto ``figures`` to reuse (built here when absent).

    Returns
    -------
    times : ndarray of int64
        Nanoseconds since the epoch (UTC), :data:`NAT` where no source gives a time. Video faces
        (finite ``timestamp`` column) have their offset in seconds added.
    source : ndarray of int8
        Index into ``labels`` of the source used, -1 where none.
    labels : list of str
        The source names.

    Notes
    -----
    Each source is only consulted for the faces the earlier ones left without a time.
    """
    if time_source is None:
        chain = ["produce_time", "file_create_time"]
    elif isinstance(time_source, str):
        known = set(figures.columns) | (set(files.columns) if files is not None else set())
        chain = [time_source] if time_source in known else ["produce_time", "file_create_time", time_source]
    else:
        chain = list(time_source)
    lookup = lookup or FileLookup(figures, files)
    n = len(figures)
    times = np.full(n, NAT, dtype=np.int64)
    source = np.full(n, -1, dtype=np.int8)
    labels: list[str] = []
    for k, entry in enumerate(chain):
        rows = np.flatnonzero(times == NAT)
        in_files = files is not None and entry in files.columns
        if entry in figures.columns or in_files:
            label = entry
            if entry in figures.columns:
                t = _as_ns(figures[entry].iloc[rows])
                take = t != NAT
                times[rows[take]], source[rows[take]] = t[take], k
                rows = rows[~take]
            looked = lookup.get(entry, rows) if in_files and len(rows) else None
            if looked is not None:
                t = _as_ns(looked)
                take = t != NAT
                times[rows[take]], source[rows[take]] = t[take], k
        elif entry in ("produce_time", "file_create_time"):
            label = entry  # a standard column this input lacks
        else:
            rx = compile_one_group(entry, "time pattern")
            if "uri" not in figures.columns:
                raise ValueError(f"time pattern {entry!r} needs a 'uri' column in figures")
            label = "uri"
            if len(rows):
                t = _uri_times(figures["uri"].iloc[rows].to_numpy(object, na_value=None), rx, tz)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
                take = t != NAT
                times[rows[take]], source[rows[take]] = t[take], k
        labels.append(label)
    if "timestamp" in figures.columns:
        off = pd.to_numeric(figures["timestamp"], errors="coerce").to_numpy("float64", na_value=np.nan)
        add = np.isfinite(off) & (times != NAT)
        times[add] += np.rint(off[add] * 1e9).astype(np.int64)
    return times, source, labels


def resolve_locations(
    figures: pd.DataFrame, files: pd.DataFrame | None = None, location: str | None = None, *,
    lookup: FileLookup | None = None,
) -> tuple[np.ndarray, list[str], str]:
    """One location per face.

    Parameters
    ----------
    location : str or None
        ``None``: one location, ``"all"``. A column of ``figures`` (or of ``files``, joined on
        ``file_id``). ``"custom_labels:KEY"``: the ``KEY`` entry of the files' (or figures')
        ``custom_labels`` dicts. Anything else: a regular expression with one group applied to
        ``uri`` (``r"oss://[^/]+/([^/]+)/"`` gives the first folder of the bucket).

    Returns
    -------
    codes : ndarray of int64
        Index into ``names``, -1 where the face has no location.
    names : list of str
        Location names, sorted.
    kind : str
        ``"none"``, ``"column"``, ``"custom_labels"`` or ``"pattern"``.

    Raises
    ------
    ValueError
        If the pattern is invalid, has not exactly one group, or matches none of the URIs.
    """
    n = len(figures)
    lookup = lookup or FileLookup(figures, files)
    if location is None:
        return np.zeros(n, dtype=np.int64), ["all"], "none"
    if not isinstance(location, str):
        raise ValueError(f"location must be a column name, 'custom_labels:KEY', a regex or None, got {location!r}")
    values: pd.Series | np.ndarray
    if location.startswith("custom_labels:"):
        key = location.split(":", 1)[1]
        labels: pd.Series | None
        if "custom_labels" in figures.columns:
            labels = figures["custom_labels"].reset_index(drop=True)
        else:
            labels = lookup.get("custom_labels")
            if labels is None:
                raise ValueError(f"location {location!r} needs files with a custom_labels column (pass files=...)")
        values = pd.Series([d.get(key) if isinstance(d, dict) else None for d in labels], dtype="string")
        if values.isna().all():
            raise ValueError(f"location {location!r}: no file has the custom label {key!r}")
        kind = "custom_labels"
    elif location in figures.columns:
        values, kind = figures[location].reset_index(drop=True).astype("string"), "column"
    elif files is not None and location in files.columns:
        joined = lookup.get(location)
        assert joined is not None  # location is a files column
        values, kind = joined.astype("string"), "column"
    else:
        if re.fullmatch(r"\w+", location):  # a column name, not a pattern
            raise ValueError(f"location {location!r}: no such column in figures or files; give a column name, "
                             "'custom_labels:KEY' or a regular expression with one group (...) applied to uri")
        rx = compile_one_group(location, "location pattern")
        if "uri" not in figures.columns:
            raise ValueError(f"location pattern {location!r} needs a 'uri' column in figures")
        uris = figures["uri"].to_numpy(object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
        found = _extract(uris, rx)
        if n and pd.isna(found).all():
            first = next((u for u in uris if u is not None), None)
            raise ValueError(
                f"location pattern {location!r} matched none of the {n} URIs (first: {first!r}); "
                "it needs one group (...) around the store or camera part"
            )
        values, kind = found, "pattern"
    arr = values if isinstance(values, np.ndarray) else values.to_numpy(object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
    codes, names = pd.factorize(arr, sort=True)
    return codes.astype(np.int64), [str(x) for x in names], kind


def sessionize(
    visitor: np.ndarray, location: np.ndarray, times: np.ndarray, gap_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split sightings into visits, vectorised.

    Sightings are sorted by visitor, location and time; a new visit starts where the visitor
    or the location changes or the time gap to the previous sighting exceeds ``gap_ns``.

    Returns
    -------
    order : ndarray of int64
        The sort order of the sightings.
    first, last : ndarray of int64
        Positions in ``order`` of each visit's first and last sighting.

    Examples
    --------
    >>> import numpy as np
    >>> o, a, b = sessionize(np.array([0, 0, 0]), np.array([0, 0, 0]), np.array([0, 10, 100]), 50)
    >>> a.tolist(), b.tolist()
    ([0, 2], [1, 2])
    """
    order = np.lexsort((times, location, visitor))
    n = len(order)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return order.astype(np.int64), empty, empty
    v, loc, t = visitor[order], location[order], times[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (loc[1:] != loc[:-1]) | (np.diff(t) > gap_ns)
    first = np.flatnonzero(new)
    last = np.append(first[1:], n) - 1
    return order.astype(np.int64), first.astype(np.int64), last.astype(np.int64)


def local_parts(times: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local day number (days since 1970-01-01 in ``tz``), hour (0-23) and weekday (0 = Monday)."""
    idx = pd.DatetimeIndex(times.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    local = idx.as_unit("ns").asi8
    day = np.floor_divide(local, _NS_DAY)
    hour = np.floor_divide(local - day * _NS_DAY, _NS_HOUR)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    return day, hour, weekday


def day_to_date(day: np.ndarray) -> np.ndarray:
    """Local day numbers to ``datetime.date`` objects."""
    return pd.to_datetime(np.asarray(day, dtype=np.int64), unit="D").date


def daily_table(
    visits: pd.DataFrame, location_names: Sequence[str], *, returning_scope: str = "location",
    independent: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per date and location: unique, new and returning visitors, visits, detections, median dwell.

    Parameters
    ----------
    visits : DataFrame
        Integer-coded visits with ``visitor, loc, day, dwell_ns, detections``.
    returning_scope : {"location", "any"}
        A visitor is *returning* at a location on a date when seen on an earlier date at that
        location (``"location"``) or anywhere (``"any"``); otherwise *new*.
    independent : DataFrame, optional
        ``loc, day`` of independent faces with a usable time: each counts as one more visitor in
        the upper bound ``unique_visitors_upper``.
    """
    if returning_scope not in ("location", "any"):
        raise ValueError(f"returning_scope must be 'location' or 'any', got {returning_scope!r}")
    triples = visits[["day", "loc", "visitor"]].drop_duplicates()
    key = ["visitor", "loc"] if returning_scope == "location" else ["visitor"]
    first_day = triples.groupby(key, sort=False)["day"].transform("min")
    triples = triples.assign(new=(triples["day"] == first_day).to_numpy())
    g = triples.groupby(["day", "loc"], sort=True)
    out = pd.DataFrame({"unique_visitors": g.size(), "new_visitors": g["new"].sum()})
    out["returning_visitors"] = out["unique_visitors"] - out["new_visitors"]
    gv = visits.groupby(["day", "loc"], sort=True)
    out["visits"] = gv.size()
    out["detections"] = gv["detections"].sum()
    out["median_dwell"] = pd.to_timedelta(gv["dwell_ns"].median().round().astype(np.int64), unit="ns")
    if independent is not None:
        ind = independent.groupby(["day", "loc"]).size()
        out = out.join(ind.rename("independent_faces"), how="outer")
    else:
        out["independent_faces"] = 0
    for c in ("unique_visitors", "new_visitors", "returning_visitors", "visits", "detections", "independent_faces"):
        out[c] = out[c].fillna(0).astype(np.int64)
    out["unique_visitors_upper"] = out["unique_visitors"] + out["independent_faces"]
    out = out.reset_index()
    names = np.array(list(location_names) + ["(unknown)"], dtype=object)
    out.insert(0, "date", day_to_date(out.pop("day").to_numpy()))
    out.insert(1, "location", pd.array(names[out.pop("loc").to_numpy()], dtype="string"))
    return out


def hourly_table(visits: pd.DataFrame, sightings: pd.DataFrame) -> pd.DataFrame:
    """Hour-by-weekday data: 7 x 24 rows (every cell present, zeros included).

    Columns: ``weekday`` (0 = Monday), ``weekday_name``, ``hour``, ``days`` (dates of that
    weekday in the period), ``arrivals`` (visits starting in the hour), ``visitors`` (distinct
    visitor-dates seen in the hour, summed over dates), ``detections``, and
    ``arrivals_per_day`` (= arrivals / days, the heatmap value).
    """
    cells = pd.MultiIndex.from_product([range(7), range(24)], names=["weekday", "hour"])
    out = pd.DataFrame(index=cells)
    out["arrivals"] = visits.groupby(["weekday", "hour"]).size()
    out["detections"] = sightings.groupby(["weekday", "hour"]).size()
    present = sightings[["visitor", "day", "hour", "weekday"]].drop_duplicates()
    out["visitors"] = present.groupby(["weekday", "hour"]).size()
    out = out.fillna(0).astype(np.int64)
    all_days = np.unique(sightings["day"].to_numpy()) if len(sightings) else np.zeros(0, np.int64)
    days_per_weekday = np.bincount((all_days + 3) % 7, minlength=7)
    out = out.reset_index()
    out["days"] = days_per_weekday[out["weekday"].to_numpy()]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["arrivals_per_day"] = np.where(out["days"] > 0, out["arrivals"] / np.maximum(out["days"], 1), 0.0)
    out.insert(1, "weekday_name", pd.Categorical(np.array(WEEKDAYS)[out["weekday"]], categories=list(WEEKDAYS)))  # type: ignore[arg-type]  # pandas-stubs: insert takes a Categorical
    return out[["weekday", "weekday_name", "hour", "days", "arrivals", "visitors", "detections", "arrivals_per_day"]]


def visitor_summary(visits: pd.DataFrame) -> pd.DataFrame:
    """Per visitor code: first/last seen (ns), visits, days present, detections, median daily dwell hours."""
    g = visits.groupby("visitor", sort=True)
    out = pd.DataFrame(
        {
            "first_ns": g["start_ns"].min(),
            "last_ns": g["end_ns"].max(),
            "visits": g.size(),
            "days": g["day"].nunique(),
            "detections": g["detections"].sum(),
        }
    )
    per_day = visits.groupby(["visitor", "day"], sort=False)["dwell_ns"].sum()
    out["median_daily_hours"] = per_day.groupby(level=0).median() / _NS_HOUR
    return out


def staff_mask(
    summary: pd.DataFrame, n_days: int, rule: dict | Callable[[pd.DataFrame], np.ndarray] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Which visitors look like staff, and why.

    Parameters
    ----------
    summary : DataFrame
        :func:`visitor_summary` output (``days``, ``median_daily_hours``, ...).
    n_days : int
        Number of dates in the report's period.
    rule : dict or callable, optional
        A dict with any of ``min_days_share`` (staff when present on more than this share of the
        days), ``min_days`` (and on at least this many days) and ``min_hours_per_day`` (or when
        the median daily time in the stores is at least this many hours; ``None`` disables a
        criterion); defaults :data:`DEFAULT_STAFF_RULE`. A callable gets ``summary`` with
        ``share_of_days`` added and returns a bool array.

    Returns
    -------
    mask : ndarray of bool
    reasons : list of str
        Per visitor, why it is staff ("" where it is not).
    """
    s = summary.assign(share_of_days=summary["days"] / max(n_days, 1))
    if callable(rule):
        mask = np.asarray(rule(s), dtype=bool)
        return mask, ["custom rule" if m else "" for m in mask]
    r = {**DEFAULT_STAFF_RULE, **(rule or {})}
    unknown = set(r) - set(DEFAULT_STAFF_RULE)
    if unknown:
        raise ValueError(f"unknown staff_rule keys {sorted(unknown)}; known: {sorted(DEFAULT_STAFF_RULE)}")
    by_days = np.zeros(len(s), dtype=bool)
    if r["min_days_share"] is not None:
        by_days = (s["share_of_days"].to_numpy() > r["min_days_share"]) & (s["days"].to_numpy() >= (r["min_days"] or 0))
    by_hours = np.zeros(len(s), dtype=bool)
    if r["min_hours_per_day"] is not None:
        by_hours = s["median_daily_hours"].to_numpy() >= r["min_hours_per_day"]
    mask = by_days | by_hours
    reasons = [""] * len(s)
    days, hours = s["days"].to_numpy(), s["median_daily_hours"].to_numpy()
    for i in np.flatnonzero(mask).tolist():
        parts = [f"present on {days[i]} of {n_days} days"] if by_days[i] else []
        if by_hours[i]:
            parts.append(f"{hours[i]:.1f} h a day in the stores")
        reasons[i] = "; ".join(parts)
    return mask, reasons
