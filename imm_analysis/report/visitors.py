"""Retail visitor report: unique, new and returning visitors from face clusters.

:func:`visitor_report` turns a figures frame (IMM's, or the local pipeline's after
:func:`imm_analysis.cluster_faces`) into the traffic tables store people-counting products give,
held by a :class:`VisitorReport` that renders itself to HTML, CSV and Parquet.
The computations live in :mod:`imm_analysis.report.tables`, the plots in
:mod:`imm_analysis.report.plots` and the HTML in :mod:`imm_analysis.report.html`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.quality import HDRule, hd_mask
from imm_analysis.report import notes as N
from imm_analysis.report import tables as T
from imm_analysis.report.result import TABLES, VisitorReport, csv_ready
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE, cluster_state

__all__ = ["VisitorReport", "visitor_report", "TABLES", "csv_ready"]


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _location_lists(visits: pd.DataFrame, names: np.ndarray, visitors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per visitor code in ``visitors``: the sorted location names joined by ", ", and their number."""
    key = np.unique(visits["visitor"].to_numpy() * len(names) + visits["loc"].to_numpy())
    v, loc = np.divmod(key, len(names))
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]]) if len(v) else np.zeros(0, np.int64)
    count = np.diff(np.r_[starts, len(v)])
    text = names[loc[starts]].copy()
    for i in np.flatnonzero(count > 1).tolist():  # only visitors seen at several locations need a join
        text[i] = ", ".join(names[loc[starts[i] : starts[i] + count[i]]])
    pos = pd.Index(v[starts]).get_indexer(visitors)  # type: ignore[arg-type]  # pandas-stubs: get_indexer takes any array-like
    found = pos >= 0
    return np.where(found, text[np.maximum(pos, 0)], ""), np.where(found, count[np.maximum(pos, 0)], 0)


def _to_local(ns: np.ndarray, tz: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, np.int64).view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)


def _visitor_attributes(
    figs: pd.DataFrame, use: np.ndarray, vis_codes: np.ndarray, n_vis: int, ids: np.ndarray, clusters: pd.DataFrame | None
) -> pd.DataFrame:
    """name, age and gender per visitor code: from the clusters frame where given, else from the faces."""
    out = pd.DataFrame(index=pd.RangeIndex(n_vis))
    out["name"] = pd.array([None] * n_vis, dtype="string")
    out["age"] = np.nan
    out["gender"] = pd.array([None] * n_vis, dtype="string")
    if "age" in figs.columns:
        age = pd.to_numeric(figs["age"], errors="coerce").to_numpy("float64", na_value=np.nan)[use]
        out["age"] = pd.Series(age).groupby(vis_codes).median().reindex(out.index).to_numpy()
    if "gender" in figs.columns:
        g = pd.DataFrame({"v": vis_codes, "g": figs["gender"].astype("string").to_numpy(object, na_value=None)[use]})  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
        g = g.dropna()
        if len(g):
            counts = g.groupby(["v", "g"]).size().sort_values(ascending=False, kind="stable").reset_index()
            top = counts.drop_duplicates("v").set_index("v")["g"]
            out["gender"] = pd.array(top.reindex(out.index).to_numpy(object), dtype="string")
    if clusters is not None and "cluster_id" in clusters.columns and len(clusters):
        c = clusters.drop_duplicates("cluster_id").set_index(clusters.drop_duplicates("cluster_id")["cluster_id"].astype("string"))
        pos = c.index.get_indexer(pd.Index(ids, dtype="string"))
        found = pos >= 0
        for col, dst in (("name", "name"), ("gender", "gender"), ("average_age", "age")):
            if col not in c.columns:
                continue
            vals = pd.Series(c[col].to_numpy(object, na_value=None) if col != "average_age" else c[col].to_numpy("float64", na_value=np.nan))  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
            take = vals.iloc[np.maximum(pos, 0)].to_numpy()
            keep = found & pd.notna(take)
            cur = out[dst].to_numpy(object if dst != "age" else "float64")
            cur = np.where(keep, take, cur)
            out[dst] = pd.array(cur, dtype="string") if dst != "age" else cur.astype("float64")
    return out


def visitor_report(
    figures: pd.DataFrame,
    *,
    files: pd.DataFrame | None = None,
    clusters: Any = None,
    tz: str = "UTC",
    session_gap: str | pd.Timedelta = "30min",
    location: str | None = None,
    time_source: str | Sequence[str] | None = None,
    exclude_staff: bool = True,
    staff_rule: dict | Callable[[pd.DataFrame], np.ndarray] | None = None,
    returning_scope: str = "location",
    hd_rule: HDRule | dict | None = None,
    title: str = "Visitor report",
    errors: pd.DataFrame | None = None,
    faces: bool = False,
    origin: str | None = None,
    run_info: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
    key: bytes | str | None = None,
    retention: Any = None,
    allow_expired: bool = False,
) -> VisitorReport:
    """Count unique, new and returning visitors from clustered faces.

    Parameters
    ----------
    figures : DataFrame
        Figures frame (``load_figures``, or ``cluster_faces(...)[0]``). Needs
        ``figure_cluster_id`` (or ``cluster_state``) and a time (see ``time_source``).
    files : DataFrame, optional
        Files frame (``load_files``), joined on ``file_id`` for ``file_create_time`` and
        ``custom_labels``.
    clusters : DataFrame or ClusterState, optional
        Clusters frame (``load_clusters``, ``cluster_faces(...)[1]``): names, gender and average
        age of the visitors. A :class:`~imm_analysis.ClusterState` gives its clusters (with the
        names set by ``rename``) and its parameters (threshold, ``min_faces``) to the report.
    tz : str, default="UTC"
        Time zone of the report (dates, hours, weekdays). IMM times such as ``+08:00`` are
        stored in UTC and converted here.
    session_gap : str or Timedelta, default="30min"
        Sightings of a visitor at one location belong to the same visit while consecutive
        sightings are at most this far apart.
    location : str, optional
        ``None``: everything is one location. A column name (of figures or files), a regular
        expression with one group applied to ``uri`` (``r"oss://[^/]+/([^/]+)/"``), or
        ``"custom_labels:KEY"``. Faces the pattern does not match go to ``"(unknown)"``.
    time_source : str or sequence of str, optional
        See :func:`imm_analysis.report.tables.resolve_times`: ``None`` uses ``produce_time``,
        else ``file_create_time``; a regex with one group adds a time parsed from ``uri`` as the
        last fallback. Video faces add their ``timestamp`` offset.
    exclude_staff : bool, default=True
        Remove the visitors the staff rule flags from every table except ``.staff``.
    staff_rule : dict or callable, optional
        See :func:`imm_analysis.report.tables.staff_mask`; default: present on more than half
        of the days (and at least 3), or a median of at least 4 hours a day.
    returning_scope : {"location", "any"}, default="location"
        A visitor is returning at a location on a date when seen on an earlier date at that
        location (or anywhere with ``"any"``).
    hd_rule : HDRule or dict, optional
        The high-definition rule (:class:`imm_analysis.quality.HDRule`, or a dict of its
        thresholds) for the high-definition share; default IMM's.
    title : str, default="Visitor report"
    errors : DataFrame, optional
        Files the local pipeline could not use (``embed_images(...).errors``: ``uri, error,
        reason``): counted in ``.quality`` and listed in ``.unreadable``.
    faces : bool, default=False
        Add the visitor gallery (``.gallery``; a cover face per visitor in the HTML, cut from the
        images through :mod:`imm_analysis.io.media`, and the files each visitor appears in). Off by
        default: a report meant to be shared should not carry faces.
    origin : {"local", "imm"}, optional
        Which words the report uses; by default ``"local"`` for a ClusterState or figures of the
        local pipeline (a ``det_score`` column), else ``"imm"``.
    run_info : mapping, optional
        What made the input, recorded in ``.parameters`` so the report can be rebuilt: for
        example ``input``, ``model_id``, ``threshold``, ``threshold_source``, ``min_faces``.
    pseudonymize : bool, default=False
        Share-ready report (:mod:`imm_analysis.report.pseudonym`): visitor ids are HMAC-SHA-256
        of the cluster ids under ``key``; no name, cluster id, file id, URI or face crop is kept.
    key : bytes or str, optional
        The secret key of ``pseudonymize`` (at least 16 bytes); the same key gives the same ids.
    retention : str, Timedelta or Timestamp, optional
        How long face data may be kept (``"90D"``), or the cut-off time: a face older than that
        raises ``ValueError`` (expire it first: ``ClusterState.expire``, ``expire_cache``).
    allow_expired : bool, default=False
        Report on faces older than ``retention`` anyway (recorded in the parameters).

    Returns
    -------
    VisitorReport

    Notes
    -----
    Visitor = cluster. Independent faces are left out of the tables (the lower bound) and
    counted as one visitor each in ``unique_visitors_upper`` (the upper bound); unavailable
    faces (not yet clustered) are only counted in ``.quality``. Sessionisation is one sort and
    a few vectorised passes: O(n log n) time and O(n) memory for n faces.

    Examples
    --------
    >>> from imm_analysis.synth import make_visits
    >>> s = make_visits(30, stores=2, days=3, staff_per_store=0, seed=2)
    >>> r = visitor_report(s.figures, files=s.files, tz=s.tz, location=s.location_pattern,
    ...                    time_source=s.time_pattern)
    >>> len(r.visits) == len(s.visits)
    True
    """
    tz = T.check_tz(tz)
    gap = T.check_gap(session_gap)
    if pseudonymize:
        from imm_analysis.report.pseudonym import _key_bytes

        _key_bytes(key)  # refuse a missing or short key before any work
        if faces:
            raise ValueError("a pseudonymised report carries no faces: pass faces=False with pseudonymize=True")
    state_params: dict[str, Any] = {}
    if clusters is not None and hasattr(clusters, "params") and hasattr(clusters, "clusters"):  # a ClusterState
        state_params = {k: clusters.params.get(k) for k in ("threshold", "min_faces") if k in clusters.params}
        origin = N.run_origin(figures, clusters, origin)
        clusters = clusters.clusters
    origin = N.run_origin(figures, clusters, origin)
    words = N.WORDS[origin]
    if not isinstance(figures, pd.DataFrame):
        raise TypeError(f"figures must be a DataFrame (load_figures(...)), got {type(figures).__name__}")
    if "figure_cluster_id" not in figures.columns and "cluster_state" not in figures.columns:
        raise ValueError("figures has no figure_cluster_id column: run clustering (cluster_faces) or load IMM results")
    if files is not None and not isinstance(files, pd.DataFrame):
        raise TypeError(f"files must be a DataFrame (load_files(...)), got {type(files).__name__}")
    if returning_scope not in ("location", "any"):
        raise ValueError(f"returning_scope must be 'location' or 'any', got {returning_scope!r}")

    figs = figures.reset_index(drop=True)
    n_input = len(figs)
    n_dup = 0
    if "figure_id" in figs.columns and n_input:
        ids = figs["figure_id"]
        dup = (ids.notna() & ids.duplicated()).to_numpy(bool)
        n_dup = int(dup.sum())
        if n_dup:
            figs = figs[~dup].reset_index(drop=True)
    n = len(figs)

    if "figure_cluster_id" in figs.columns:
        state = cluster_state(figs["figure_cluster_id"])
        cid = figs["figure_cluster_id"].astype("string").to_numpy(object, na_value=None)  # type: ignore[call-overload]  # pandas-stubs: na_value=None is valid
    else:
        state = figs["cluster_state"].astype("category")
        cid = np.full(n, None, dtype=object)
    state_arr = state.astype("string").to_numpy(object, na_value="unavailable")
    clustered = state_arr == "clustered"
    independent = state_arr == "independent"
    unavailable = ~(clustered | independent)

    lookup = T.FileLookup(figs, files)
    times, source, source_labels = T.resolve_times(figs, files, time_source=time_source, tz=tz, lookup=lookup)
    has_time = times != T.NAT
    if retention is not None:
        _check_retention(times[has_time], retention, allow_expired)
    loc, loc_names, loc_kind = T.resolve_locations(figs, files, location, lookup=lookup)
    no_loc = loc < 0
    loc = np.where(no_loc, len(loc_names), loc)
    all_names = [*loc_names, "(unknown)"]

    # sessionise clustered faces with a usable time
    use = clustered & has_time
    vis_codes, vis_ids = _codes(cid[use])
    n_vis = len(vis_ids)
    t_use, l_use = times[use], loc[use]
    order, first, last = T.sessionize(vis_codes, l_use, t_use, int(gap.value))
    t_sorted = t_use[order]
    start_ns, end_ns = t_sorted[first], t_sorted[last]
    v_first, l_first = vis_codes[order][first], l_use[order][first]
    day, hour, weekday = T.local_parts(start_ns, tz)
    visits_c = pd.DataFrame(
        {
            "visitor": v_first, "loc": l_first, "start_ns": start_ns, "end_ns": end_ns,
            "dwell_ns": end_ns - start_ns, "detections": (last - first + 1).astype(np.int64),
            "day": day, "hour": hour, "weekday": weekday,
        }
    )
    s_day, s_hour, s_weekday = T.local_parts(t_use, tz)
    all_days = np.unique(T.local_parts(times[has_time], tz)[0]) if has_time.any() else np.zeros(0, np.int64)
    n_days = len(all_days)

    # staff
    summary = T.visitor_summary(visits_c)
    staff_flag, reasons = T.staff_mask(summary, n_days, staff_rule)
    staff_by_code = np.zeros(n_vis, dtype=bool)
    staff_by_code[summary.index.to_numpy()] = staff_flag
    reason_by_code = np.full(n_vis, "", dtype=object)
    reason_by_code[summary.index.to_numpy()] = reasons
    keep_visit = ~staff_by_code[visits_c["visitor"].to_numpy()] if exclude_staff else np.ones(len(visits_c), bool)
    kept = visits_c[keep_visit]
    keep_sight = ~staff_by_code[vis_codes] if exclude_staff else np.ones(len(vis_codes), bool)
    sightings = pd.DataFrame(
        {"visitor": vis_codes[keep_sight], "day": s_day[keep_sight], "hour": s_hour[keep_sight],
         "weekday": s_weekday[keep_sight]}
    )

    ind_rows = independent & has_time
    ind_frame = pd.DataFrame({"loc": loc[ind_rows], "day": T.local_parts(times[ind_rows], tz)[0]})
    daily = T.daily_table(kept, loc_names, returning_scope=returning_scope, independent=ind_frame)
    hourly = T.hourly_table(kept, sightings)

    # per-visitor tables
    attrs = _visitor_attributes(figs, use, vis_codes, n_vis, vis_ids, clusters)
    names_arr = np.array(all_names, dtype=object)
    per = summary.join(attrs, how="left")
    per["locations"], per["n_locations"] = _location_lists(visits_c, names_arr, per.index.to_numpy())
    per["is_staff"] = staff_by_code[per.index.to_numpy()]
    per["reason"] = reason_by_code[per.index.to_numpy()]
    per["visitor_id"] = pd.array(vis_ids[per.index.to_numpy()], dtype="string")
    per["first_seen"] = _to_local(per["first_ns"].to_numpy(), tz)
    per["last_seen"] = _to_local(per["last_ns"].to_numpy(), tz)
    per = per.sort_values(["visits", "detections", "visitor_id"], ascending=[False, False, True], kind="stable")
    near_staff = N.near_staff_table(per, n_days)
    cols = ["visitor_id", "name", "first_seen", "last_seen", "visits", "days", "detections", "n_locations",
            "locations", "age", "gender", "is_staff"]
    staff_cols = ["visitor_id", "name", "days", "median_daily_hours", "visits", "detections", "locations", "reason"]
    staff_tab = per.loc[per["is_staff"], staff_cols].reset_index(drop=True)
    staff_tab.insert(3, "share_of_days", staff_tab["days"] / max(n_days, 1))
    visitors_tab = per.loc[~per["is_staff"] if exclude_staff else slice(None), cols].reset_index(drop=True)

    visits_tab = pd.DataFrame(
        {
            "visitor_id": pd.array(vis_ids[kept["visitor"].to_numpy()], dtype="string"),
            "name": pd.array(attrs["name"].to_numpy(object)[kept["visitor"].to_numpy()], dtype="string"),
            "location": pd.array(names_arr[kept["loc"].to_numpy()], dtype="string"),
            "start": _to_local(kept["start_ns"].to_numpy(), tz),
            "end": _to_local(kept["end_ns"].to_numpy(), tz),
            "dwell": pd.to_timedelta(kept["dwell_ns"].to_numpy(), unit="ns"),
            "detections": kept["detections"].to_numpy(),
            "date": T.day_to_date(kept["day"].to_numpy()),
        }
    )
    visits_tab = visits_tab.sort_values(["start", "visitor_id", "location"], kind="stable", ignore_index=True)

    # quality
    hd, hd_known, hd_text, hd_param = _hd(figs, hd_rule)
    unreadable = N.unreadable_table(errors)
    n_lower = int((~staff_by_code).sum()) if exclude_staff else n_vis
    n_ind_time = int(ind_rows.sum())
    n_upper = n_lower + n_ind_time
    det_kept = int(kept["detections"].sum())
    n_staff = int(staff_by_code.sum())
    staff_det = int(visits_c.loc[staff_by_code[visits_c["visitor"].to_numpy()], "detections"].sum())
    listed = "; ".join(f"{f.rsplit('/', 1)[-1]}: {r}" for f, r in zip(unreadable["file"][:10],
                                                                       unreadable["reason"][:10], strict=True))
    more = f"; and {len(unreadable) - 10} more (see the unreadable table)" if len(unreadable) > 10 else ""
    src_counts = {lab: int((source == k).sum()) for k, lab in enumerate(source_labels)}
    rows = [
        *([("unreadable_files", len(unreadable), f"files that could not be used ({listed}{more})")]
          if errors is not None else []),
        ("faces", n_input, "face rows given"),
        ("duplicate_faces_dropped", n_dup, "rows whose figure_id repeats an earlier row (e.g. per-cluster SimpleQuery exports)"),
        ("clustered_faces", int(clustered.sum()), "faces in a cluster (a visitor)"),
        ("independent_faces", int(independent.sum()), f"{words['independent']} ({CLUSTER_INDEPENDENT})"),
        ("unavailable_faces", int(unavailable.sum()), f"{words['unavailable']} ({CLUSTER_UNAVAILABLE}); in no count"),
        ("hd_faces", int(hd.sum()), f"faces meeting the high-definition rule ({hd_text})"),
        ("hd_share", float(hd.sum() / hd_known.sum()) if hd_known.any() else np.nan,
         "high-definition faces / faces with size, pose and quality known"),
        ("faces_without_time", int((~has_time).sum()), "faces with no usable time (left out)"),
        *[(f"time_from_{lab}", n_src, f"faces whose time came from the {N.TIME_SOURCE_WORDS.get(lab, lab)}")
          for lab, n_src in src_counts.items()],
        ("faces_without_location", int((no_loc & has_time).sum()), "faces with a time but no location (reported as '(unknown)')"),
        ("staff_visitors", n_staff, "visitors the staff rule flagged" + (" (excluded)" if exclude_staff else " (kept)")),
        ("staff_detections", staff_det, "detections of those visitors"),
        ("unique_visitors_lower", n_lower, "clusters seen (lower bound: independent faces not counted)"),
        ("unique_visitors_upper", n_upper, "lower bound + each independent face with a time as one visitor"),
        ("visits", len(kept), f"visits (sightings at one location with gaps <= {T.format_duration(gap)})"),
        ("detections", det_kept, "clustered face detections in those visits"),
        ("detections_per_visitor", det_kept / n_lower if n_lower else np.nan,
         "detections per unique visitor: the deduplication factor"),
    ]
    quality = pd.DataFrame(rows, columns=["metric", "value", "description"])
    quality["value"] = quality["value"].astype("float64")
    quality["metric"] = quality["metric"].astype("string")
    quality["description"] = quality["description"].astype("string")

    first_day, last_day = (all_days.min(), all_days.max()) if n_days else (None, None)
    period = (
        f"{T.day_to_date(np.array([first_day]))[0]} to {T.day_to_date(np.array([last_day]))[0]}" if n_days else "no dated faces"
    )
    from imm_analysis import __version__

    info = {**state_params, **dict(run_info or {})}
    parameters = {
        "title": title,
        "origin": origin,
        "clustered_by": words["clusterer"],
        "input": info.pop("input", None),
        "model_id": info.pop("model_id", None),
        "threshold": info.pop("threshold", None),
        "threshold_source": info.pop("threshold_source", None),
        "min_faces": info.pop("min_faces", None),
        **info,
        "tz": tz,
        "session_gap": T.format_duration(gap),
        "location": location,
        "location_kind": loc_kind,
        "time_source": time_source if time_source is None or isinstance(time_source, str) else list(time_source),
        "time_sources_used": source_labels,
        "exclude_staff": exclude_staff,
        "staff_rule": "custom callable" if callable(staff_rule) else {**T.DEFAULT_STAFF_RULE, **(staff_rule or {})},
        "returning_scope": returning_scope,
        "hd_rule": hd_param,
        "hd_rule_text": hd_text,
        "faces": bool(faces),
        **({"retention": str(retention), "allow_expired": bool(allow_expired)} if retention is not None else {}),
        "version": __version__,
    }
    returning_any = int((per.loc[~per["is_staff"] if exclude_staff else slice(None), "days"] > 1).sum())
    summary_d = {
        "period": period,
        "days": n_days,
        "locations": len(loc_names),
        "location_names": loc_names,
        "faces": n_input,
        "unique_visitors": n_lower,
        "unique_visitors_upper": n_upper,
        "visits": len(kept),
        "visitors_on_several_days": returning_any,
        "detections_per_visitor": round(det_kept / n_lower, 2) if n_lower else None,
        "staff_excluded": n_staff if exclude_staff else 0,
        "staff_flagged": n_staff,
        "median_dwell": T.format_duration(pd.Timedelta(int(np.median(kept["dwell_ns"])), unit="ns"))
        if len(kept) else None,
        "unreadable_files": len(unreadable),
        "time_sources": {lab: n_src for lab, n_src in src_counts.items() if n_src},
        "visitor_range": N.visitor_range_text(n_lower, n_upper, origin),
    }
    first_ts = pd.Timestamp(T.day_to_date(np.array([first_day]))[0]) if n_days else None
    last_ts = pd.Timestamp(T.day_to_date(np.array([last_day]))[0]) if n_days else None
    notes = N.report_notes(source_counts=src_counts, n_faces_timed=int(has_time.sum()), first_day=first_ts,
                           last_day=last_ts, visits=visits_tab, staff=staff_tab, exclude_staff=exclude_staff)
    gallery = None
    if faces:
        from imm_analysis.report.gallery import gallery_table

        gallery = gallery_table(figs, vis_ids, np.flatnonzero(use), vis_codes, visitors_tab["visitor_id"], clusters)
        gallery.insert(1, "name", visitors_tab["name"].to_numpy())
    report = VisitorReport(
        visits=visits_tab, daily=daily, hourly=hourly, visitors=visitors_tab, staff=staff_tab, quality=quality,
        parameters=parameters, summary=summary_d, near_staff=near_staff, unreadable=unreadable, gallery=gallery,
        notes=notes,
    )
    if pseudonymize:
        from imm_analysis.report.pseudonym import pseudonymize_report

        report = pseudonymize_report(report, key)  # type: ignore[arg-type]
    return report


def _check_retention(times_ns: np.ndarray, retention: Any, allow_expired: bool) -> None:
    """Refuse faces older than the retention period (unless ``allow_expired``)."""
    from imm_analysis.cluster.erase import cutoff_time

    cut = cutoff_time(retention)
    old = times_ns < cut.value
    if old.any() and not allow_expired:
        oldest = pd.Timestamp(int(times_ns.min()), unit="ns", tz="UTC")
        raise ValueError(
            f"{int(old.sum()):,} face(s) are older than the retention ({retention}: before {cut:%Y-%m-%d %H:%M} UTC; "
            f"oldest {oldest:%Y-%m-%d}): expire them first (ClusterState.expire, imm_analysis.privacy.expire_cache) "
            "or pass allow_expired=True"
        )


def _hd(figures: pd.DataFrame, rule: HDRule | dict | None) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """High-definition flag, "size, pose and quality known" flag, the rule in words and as a parameter."""
    r = HDRule.coerce(rule)
    hd, reason = hd_mask(figures, r)
    return hd, reason != 0, r.describe(), r.as_dict()
