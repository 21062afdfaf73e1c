"""Retail visitor report (imm_analysis.report): exact on synthetic visits, hand-computed edge cases, outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imm_analysis import visitor_report
from imm_analysis.report.tables import sessionize
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE, coerce_frame
from imm_analysis.synth import make_visits

COUNTS = ["unique_visitors", "new_visitors", "returning_visitors", "visits", "detections"]


@pytest.fixture(scope="module")
def sched():
    # video visits, files without produce_time, files whose time is only in the URI
    return make_visits(150, stores=3, days=7, staff_per_store=1, video_share=0.2, no_produce_time_share=0.1,
                       uri_time_only_share=0.1, seed=11)


@pytest.fixture(scope="module")
def report(sched):
    return visitor_report(sched.figures, files=sched.files, clusters=sched.clusters, tz=sched.tz,
                          location=sched.location_pattern, time_source=sched.time_pattern)


def _visit_keys(frame: pd.DataFrame) -> set:
    return set(zip(frame["visitor_id"].astype(str), frame["location"].astype(str),
                   frame["start"].dt.tz_convert("UTC"), frame["end"].dt.tz_convert("UTC"),
                   frame["detections"].astype(int), strict=True))


# ------------------------------------------------------------------ exactness on known visits


def test_reproduces_true_visits_exactly(sched, report):
    true = sched.visits[~sched.visits["is_staff"]]
    assert len(report.visits) == len(true)
    assert _visit_keys(report.visits) == _visit_keys(true)
    got = report.visits.set_index(["visitor_id", "start"])["dwell"].sort_index()
    want = true.assign(start=true["start"].dt.tz_convert(sched.tz)).set_index(["visitor_id", "start"])["dwell"]
    assert (got.to_numpy() == want.sort_index().to_numpy()).all()
    assert set(report.visitors["visitor_id"]) == set(true["visitor_id"])
    assert report.summary["unique_visitors"] == true["visitor_id"].nunique()


@pytest.mark.parametrize("scope", ["location", "any"])
def test_daily_new_and_returning_match_truth(sched, scope):
    r = visitor_report(sched.figures, files=sched.files, tz=sched.tz, location=sched.location_pattern,
                       time_source=sched.time_pattern, returning_scope=scope)
    truth = sched.true_daily(returning_scope=scope)
    got = r.daily[["date", "location", *COUNTS]].astype({"location": str})
    pd.testing.assert_frame_equal(got.reset_index(drop=True), truth.astype({"location": str}), check_dtype=False)
    assert (r.daily["new_visitors"] + r.daily["returning_visitors"] == r.daily["unique_visitors"]).all()
    assert r.daily["returning_visitors"].sum() > 0


def test_staff_found_and_excluded(sched, report):
    assert set(report.staff["visitor_id"]) == set(sched.staff_ids)
    assert report.staff["reason"].str.len().gt(0).all()
    assert not set(report.visits["visitor_id"]) & set(sched.staff_ids)
    assert report.staff["name"].str.startswith("staff").all()  # names come from the clusters frame
    kept = visitor_report(sched.figures, files=sched.files, tz=sched.tz, location=sched.location_pattern,
                          time_source=sched.time_pattern, exclude_staff=False)
    assert len(kept.visits) == len(sched.visits)
    assert set(kept.visitors.loc[kept.visitors["is_staff"], "visitor_id"]) == set(sched.staff_ids)
    none = visitor_report(sched.figures, files=sched.files, tz=sched.tz, time_source=sched.time_pattern,
                          staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert none.staff.empty and none.summary["unique_visitors"] == len(kept.visitors)


def test_custom_staff_rule_flags_exactly_what_it_selects(sched):
    """A callable rule gets the per-visitor summary; what it selects is the staff, and only that."""
    everyone = visitor_report(sched.figures, files=sched.files, tz=sched.tz, time_source=sched.time_pattern,
                              exclude_staff=False, staff_rule={"min_days_share": None, "min_hours_per_day": None})
    top = everyone.visitors["detections"].max()
    want = set(everyone.visitors.loc[everyone.visitors["detections"] == top, "visitor_id"])
    custom = visitor_report(sched.figures, files=sched.files, tz=sched.tz, time_source=sched.time_pattern,
                            staff_rule=lambda s: s["detections"].to_numpy() >= s["detections"].max())
    assert set(custom.staff["visitor_id"]) == want
    assert (custom.staff["reason"] == "custom rule").all()
    assert not want & set(custom.visitors["visitor_id"])
    assert len(custom.visitors) == len(everyone.visitors) - len(want)
    assert custom.parameters["staff_rule"] == "custom callable"


def test_location_forms_agree(sched, report):
    by_label = visitor_report(sched.figures, files=sched.files, tz=sched.tz, location="custom_labels:store",
                              time_source=sched.time_pattern)
    pd.testing.assert_frame_equal(by_label.daily, report.daily)
    figs = sched.figures.assign(store=sched.figures["uri"].str.extract(sched.location_pattern, expand=False))
    by_col = visitor_report(figs, files=sched.files, tz=sched.tz, location="store", time_source=sched.time_pattern)
    pd.testing.assert_frame_equal(by_col.daily, report.daily)
    one = visitor_report(sched.figures, files=sched.files, tz=sched.tz, time_source=sched.time_pattern)
    assert set(one.daily["location"]) == {"all"}
    assert one.summary["unique_visitors"] == report.summary["unique_visitors"]


def test_time_fallbacks_and_quality(sched, report):
    uri_only = sched.files["produce_time"].isna() & sched.files["file_create_time"].isna()
    n_uri_faces = int(sched.figures["file_id"].isin(sched.files.loc[uri_only, "file_id"]).sum())
    assert n_uri_faces > 0
    without = visitor_report(sched.figures, files=sched.files, tz=sched.tz, location=sched.location_pattern)
    q = without.quality.set_index("metric")["value"]
    assert q["faces_without_time"] == n_uri_faces
    q2 = report.quality.set_index("metric")["value"]
    assert q2["faces_without_time"] == 0 and q2["time_from_uri"] == n_uri_faces
    no_files = visitor_report(sched.figures, tz=sched.tz, location=sched.location_pattern)
    n_no_produce = int(sched.figures["produce_time"].isna().sum())
    assert no_files.quality.set_index("metric")["value"]["faces_without_time"] == n_no_produce
    hd = ((sched.figures["width"] > 75) & (sched.figures["height"] > 75) & (sched.figures["face_quality"] > 0.8)
          & (sched.figures[["pitch", "roll", "yaw"]].abs() < 30).all(axis=1))
    assert q2["hd_faces"] == hd.sum()
    det = report.visits["detections"].sum()
    assert q2["detections_per_visitor"] == pytest.approx(det / report.summary["unique_visitors"])


def test_independent_faces_lower_and_upper_bounds():
    s = make_visits(80, stores=2, days=5, staff_per_store=0, independent_share=0.15, seed=5)
    r = visitor_report(s.figures, files=s.files, tz=s.tz, location=s.location_pattern, time_source=s.time_pattern,
                       exclude_staff=False)
    clustered = s.figures["figure_cluster_id"] != CLUSTER_INDEPENDENT
    n_ind = int((~clustered).sum())
    assert n_ind > 0
    assert r.summary["unique_visitors"] == s.figures.loc[clustered, "figure_cluster_id"].nunique()
    assert r.summary["unique_visitors_upper"] == r.summary["unique_visitors"] + n_ind
    assert r.daily["independent_faces"].sum() == n_ind
    assert (r.daily["unique_visitors_upper"] == r.daily["unique_visitors"] + r.daily["independent_faces"]).all()
    assert r.visits["detections"].sum() == clustered.sum()


# ------------------------------------------------------------------ hand-computed cases


def _faces(rows: list[tuple], **extra) -> pd.DataFrame:
    cols = ["figure_id", "figure_cluster_id", "uri", "produce_time"]
    return coerce_frame(pd.DataFrame(rows, columns=cols).assign(**extra), "figures")


def test_imm_offsets_and_report_time_zone():
    # 23:30 and 00:10 local (+08:00) are one UTC date (15:30Z, 16:10Z) but two Shanghai dates
    f = _faces([("a", "C1", "oss://b/s1/x.jpg", "2026-01-05T23:30:00+08:00"),
                ("b", "C1", "oss://b/s1/y.jpg", "2026-01-06T00:10:00+08:00")])
    sh = visitor_report(f, tz="Asia/Shanghai", staff_rule={"min_days_share": None, "min_hours_per_day": None})
    utc = visitor_report(f, tz="UTC", staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert [str(d) for d in sh.daily["date"]] == ["2026-01-05", "2026-01-06"]
    assert sh.daily["new_visitors"].tolist() == [1, 0] and sh.daily["returning_visitors"].tolist() == [0, 1]
    assert [str(d) for d in utc.daily["date"]] == ["2026-01-05"]
    assert utc.daily["unique_visitors"].tolist() == [1] and utc.daily["visits"].tolist() == [2]  # 40 min > 30 min
    assert sh.visits["start"].iloc[0] == pd.Timestamp("2026-01-05 23:30", tz="Asia/Shanghai")
    h = sh.hourly.set_index(["weekday", "hour"])
    assert h.loc[(0, 23), "arrivals"] == 1 and h.loc[(1, 0), "arrivals"] == 1  # Monday 23h, Tuesday 0h
    assert h["arrivals"].sum() == 2 and len(sh.hourly) == 7 * 24


def test_session_gap_boundary_and_video_offsets():
    t0 = "2026-01-05T10:00:00Z"
    f = _faces([("a", "C1", "oss://b/s1/v.mp4", t0), ("b", "C1", "oss://b/s1/v.mp4", t0),
                ("c", "C1", "oss://b/s1/v.mp4", t0)], timestamp=[0.0, 1800.0, 3601.0])
    r = visitor_report(f, session_gap="30min", staff_rule={"min_days_share": None, "min_hours_per_day": None})
    # 0 -> 1800 s is exactly the gap (same visit); 1800 -> 3601 s is more (new visit)
    assert r.visits["detections"].tolist() == [2, 1]
    assert r.visits["dwell"].tolist() == [pd.Timedelta("30min"), pd.Timedelta(0)]
    assert r.daily["median_dwell"].iloc[0] == pd.Timedelta("15min")
    r2 = visitor_report(f, session_gap="2h", staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert r2.visits["detections"].tolist() == [3] and r2.visits["dwell"].iloc[0] == pd.Timedelta(seconds=3601)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 200)), min_size=0, max_size=60),
       st.integers(1, 50))
def test_sessionize_matches_naive_loop(rows, gap):
    v = np.array([r[0] for r in rows], dtype=np.int64)
    loc = np.array([r[1] for r in rows], dtype=np.int64)
    t = np.array([r[2] for r in rows], dtype=np.int64)
    order, first, last = sessionize(v, loc, t, gap)
    got = sorted((int(v[order][a]), int(loc[order][a]), int(t[order][a]), int(t[order][b]), int(b - a + 1))
                 for a, b in zip(first, last, strict=True))
    want = []
    for key in sorted(set(zip(v.tolist(), loc.tolist(), strict=True))):
        times = sorted(tt for vv, ll, tt in zip(v, loc, t, strict=True) if (vv, ll) == key)
        start = prev = times[0]
        n = 1
        for tt in times[1:]:
            if tt - prev > gap:
                want.append((*key, start, prev, n))
                start, n = tt, 0
            prev, n = tt, n + 1
        want.append((*key, start, prev, n))
    assert got == sorted(want)


def test_unavailable_duplicates_and_empty():
    f = _faces([("a", "C1", "oss://b/s1/x.jpg", "2026-01-05T10:00:00Z"),
                ("b", CLUSTER_UNAVAILABLE, "oss://b/s1/y.jpg", "2026-01-05T10:01:00Z"),
                ("c", CLUSTER_INDEPENDENT, "oss://b/s1/z.jpg", None)])
    r = visitor_report(pd.concat([f, f.iloc[[0]]], ignore_index=True))
    q = r.quality.set_index("metric")["value"]
    assert q["duplicate_faces_dropped"] == 1 and q["unavailable_faces"] == 1 and q["independent_faces"] == 1
    assert q["faces_without_time"] == 1 and q["unique_visitors_upper"] == 1  # the independent face has no time
    assert r.visits["detections"].tolist() == [1]
    empty = visitor_report(f.iloc[1:])  # nothing clustered
    assert empty.visits.empty and empty.daily.empty and empty.summary["unique_visitors"] == 0
    assert len(empty.hourly) == 7 * 24 and empty.hourly["arrivals"].sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"location": "oss://([^/]+"}, "not a valid regular expression"),
        ({"location": r"oss://[^/]+/[^/]+/"}, "exactly one group"),
        ({"location": r"^s3://([^/]+)/"}, "matched none"),
        ({"time_source": r"(\d+)(\d+)"}, "exactly one group"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"session_gap": "soon"}, "not a duration"),
        ({"session_gap": "-5min"}, "must be positive"),
        ({"returning_scope": "ever"}, "returning_scope"),
        ({"location": "custom_labels:store"}, "custom_labels"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    f = _faces([("a", "C1", "oss://b/s1/x.jpg", "2026-01-05T10:00:00Z")])
    with pytest.raises(ValueError, match=message):
        visitor_report(f, **kwargs)


def test_bad_staff_rule_key_and_input_type():
    f = _faces([("a", "C1", "oss://b/s1/x.jpg", "2026-01-05T10:00:00Z")])
    with pytest.raises(ValueError, match="unknown staff_rule keys"):
        visitor_report(f, staff_rule={"min_day": 3})
    with pytest.raises(TypeError, match="DataFrame"):
        visitor_report(f.to_dict("records"))


# ------------------------------------------------------------------ outputs


def test_html_is_self_contained_and_escaped(tmp_path, sched):
    evil = "<script>alert(1)</script>"
    clusters = sched.clusters.copy()
    clusters.loc[clusters["cluster_id"] == sched.staff_ids[0], "name"] = evil  # staff are always listed
    files = sched.files.copy()
    files["custom_labels"] = [{"store": "<img src=x onerror=alert(2)>"} if i == 0 else d
                              for i, d in enumerate(files["custom_labels"])]
    r = visitor_report(sched.figures, files=files, clusters=clusters, tz=sched.tz, location="custom_labels:store",
                       time_source=sched.time_pattern, title="Q1 <b>traffic</b>")
    html = r.to_html(tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<b>traffic</b>" not in html and "Q1 &lt;b&gt;traffic&lt;/b&gt;" in html
    assert html.count("data:image/png;base64,") == 4
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    for needle in ("Methodology", "Parameters", "Asia/Shanghai", "0:30:00", "staff"):
        assert needle in html
    nb = r._repr_html_()
    assert evil not in nb and "unique visitors" in nb


def test_csv_and_parquet_round_trip(tmp_path, report):
    csv = report.to_csv(tmp_path / "csv")
    pq = report.to_parquet(tmp_path / "pq")
    assert set(csv) == set(pq) == {"visits", "daily", "hourly", "visitors", "staff", "near_staff", "quality",
                                   "unreadable", "parameters"}
    daily = pd.read_parquet(pq["daily"])
    assert daily[COUNTS].equals(report.daily[COUNTS])
    assert (daily["median_dwell"] == report.daily["median_dwell"]).all()
    visits = pd.read_parquet(pq["visits"])
    assert (visits["start"] == report.visits["start"]).all() and str(visits["start"].dt.tz) == "Asia/Shanghai"
    back = pd.read_csv(csv["daily"])
    assert back[COUNTS].to_numpy().tolist() == report.daily[COUNTS].to_numpy().tolist()


def _html_tables(html: str) -> list[list[list[str]]]:
    """Every ``<table>`` of ``html`` as rows of cell texts (header row first), with the standard library."""
    from html.parser import HTMLParser

    tables: list[list[list[str]]] = []

    class Reader(HTMLParser):
        cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                tables.append([])
            elif tag == "tr":
                tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                tables[-1][-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    Reader().feed(html)
    return tables


def test_html_and_csv_show_the_same_durations(tmp_path):
    # one visitor per video; the last face's offset sets the dwell: 205.7 s is 3:25 truncated but 3:26 rounded,
    # and the exact halves 60.5 s and 61.5 s go to the even second (as the CSV always did)
    t0 = "2026-01-05T10:00:00Z"
    rows, offsets = [], []
    for visitor, last in (("C1", 205.7), ("C2", 60.5), ("C3", 61.5)):
        rows += [(f"{visitor}a", visitor, f"oss://b/s1/{visitor}.mp4", t0), (f"{visitor}b", visitor,
                 f"oss://b/s1/{visitor}.mp4", t0)]
        offsets += [0.0, last]
    r = visitor_report(_faces(rows, timestamp=offsets), staff_rule={"min_days_share": None, "min_hours_per_day": None})
    want = {"C1": "0:03:26", "C2": "0:01:00", "C3": "0:01:02"}

    html = r.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    (visits,) = [t for t in _html_tables(html) if t and "dwell" in t[0] and "visitor_id" in t[0]]
    head = visits[0]
    html_dwell = {row[head.index("visitor_id")]: row[head.index("dwell")] for row in visits[1:]}
    csv = pd.read_csv(r.to_csv(tmp_path / "tables")["visits"], dtype=str)
    csv_dwell = dict(zip(csv["visitor_id"], csv["dwell"], strict=True))
    assert html_dwell == csv_dwell == want
    # the daily median (61.5 s, a half) and the summary agree with them too
    (daily,) = [t for t in _html_tables(html) if t and "median_dwell" in t[0]]
    csv_daily = pd.read_csv(tmp_path / "tables" / "daily.csv", dtype=str)
    assert daily[1][daily[0].index("median_dwell")] == csv_daily["median_dwell"].iloc[0] == "0:01:02"
    assert r.summary["median_dwell"] == "0:01:02"


def test_format_duration_rule():
    from imm_analysis.report.tables import format_duration

    cases = {"0s": "0:00:00", "0.4999s": "0:00:00", "0.5s": "0:00:00", "0.5001s": "0:00:01", "1.5s": "0:00:02",
             "2.5s": "0:00:02", "59.6s": "0:01:00", "1h 59min 59.5s": "2:00:00", "1D 2h": "26:00:00",
             "-5.7s": "-0:00:06"}
    for text, want in cases.items():
        got = format_duration(pd.Timedelta(text))
        assert got == want, text
        assert abs(pd.to_timedelta(got) - pd.Timedelta(text)) <= pd.Timedelta("0.5s")  # reads back
    assert format_duration(pd.NaT) == format_duration(None) == ""
    assert format_duration(np.timedelta64(90, "s")) == "0:01:30"


def test_plots_draw_the_tables(report):
    """Each plot draws its table's numbers (bar heights, heatmap cells, histogram counts)."""
    ax = report.plot_daily().axes[0]
    per_day = report.daily.groupby("date")[["new_visitors", "returning_visitors"]].sum()
    new, ret = ax.containers[0], ax.containers[1]
    assert [b.get_height() for b in new] == per_day["new_visitors"].tolist()
    assert [b.get_height() for b in ret] == per_day["returning_visitors"].tolist()
    assert [b.get_y() for b in ret] == per_day["new_visitors"].tolist()  # stacked on the new visitors

    grid = report.plot_hourly().axes[0].images[0].get_array()
    want = report.hourly.pivot(index="weekday", columns="hour", values="arrivals_per_day").to_numpy()
    np.testing.assert_allclose(np.asarray(grid), want, rtol=0, atol=1e-12)

    ax = report.plot_locations().axes[0]
    visits = {t.get_text(): b.get_width() for t, b in zip(ax.get_yticklabels(), ax.containers[0], strict=True)}
    assert visits == report.daily.groupby("location")["visits"].sum().astype(float).to_dict()

    ax = report.plot_dwell().axes[0]
    assert sum(p.get_height() for p in ax.patches) == len(report.visits)
    assert "median" in ax.get_legend().get_texts()[0].get_text()


def test_dwell_zero_everywhere_gets_a_note_not_an_axis(tmp_path):
    f = _faces([("a", "C1", "oss://b/s1/x.jpg", "2026-01-05T10:00:00Z"),
                ("b", "C2", "oss://b/s1/y.jpg", "2026-01-05T11:00:00Z")])
    r = visitor_report(f, staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert (r.visits["dwell"] == pd.Timedelta(0)).all()
    ax = r.plot_dwell().axes[0]
    assert not ax.patches and "dwell 0" in ax.texts[0].get_text()
    assert any(n.startswith("Dwell is 0 for every visit") for n in r.notes)
    html = r.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Every visit here has dwell 0" in html and "Dwell is 0 for every visit" in html
    # one visit with a real dwell: no note
    g = _faces([("a", "C1", "oss://b/s1/x.jpg", "2026-01-05T10:00:00Z"),
                ("b", "C1", "oss://b/s1/y.jpg", "2026-01-05T10:05:00Z")])
    r2 = visitor_report(g, staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert not any("Dwell is 0" in n for n in r2.notes) and r2.plot_dwell().axes[0].patches


def test_on_committed_sample(sample_dir):
    from imm_analysis import load_clusters, load_figures, load_files

    figures, files = load_figures(sample_dir / "files"), load_files(sample_dir / "files")
    clusters = load_clusters(sample_dir / "clusters") if (sample_dir / "clusters").exists() else None
    r = visitor_report(figures, files=files, clusters=clusters, tz="Asia/Shanghai", location=r"oss://[^/]+/([^/]+)/")
    q = r.quality.set_index("metric")["value"]
    assert q["faces"] == len(figures)
    assert (r.daily["new_visitors"] + r.daily["returning_visitors"] == r.daily["unique_visitors"]).all()
    assert r.daily["visits"].sum() == len(r.visits)
    assert r.summary["unique_visitors"] == len(r.visitors)


def test_quality_table_counts_and_describes_the_hd_rule_used(sample_dir):
    from imm_analysis import hd_faces, load_figures

    figures = load_figures(sample_dir / "files")
    row = visitor_report(figures, hd_rule={"min_quality": 0.9}).quality.set_index("metric").loc["hd_faces"]
    assert row["value"] == hd_faces(figures, min_quality=0.9)["is_hd"].sum()
    assert "face_quality > 0.9" in row["description"] and "0.8" not in row["description"]


# ------------------------------------------------------------------ what the report says about itself


def _photo_faces(tmp_path, n_people=2, per_person=3):
    """Clustered local-looking faces on real image files (flat colours drawn with PIL), one face per file."""
    from PIL import Image

    rows, emb = [], []
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(n_people, 16))
    for p in range(n_people):
        for k in range(per_person):
            path = tmp_path / f"p{p}_{k}.png"
            Image.fromarray(np.full((120, 160, 3), 40 * (p + 1), np.uint8)).save(path)
            rows.append({"figure_id": f"f{p}{k}", "file_id": f"file{p}{k}", "uri": str(path),
                         "produce_time": pd.Timestamp("2026-01-05T10:00:00Z") + pd.Timedelta(minutes=5 * k + 60 * p),
                         "left": 40, "top": 20, "width": 80, "height": 90, "face_quality": 0.9, "yaw": 0.0,
                         "pitch": 0.0, "roll": 0.0, "det_score": 0.9})
            emb.append(centres[p] + 0.01 * rng.normal(size=16))
    figs = coerce_frame(pd.DataFrame(rows), "figures").assign(det_score=0.9)
    return figs, np.asarray(emb, dtype=np.float32)


def test_parameters_hold_what_rebuilds_the_report(tmp_path):
    """A ClusterState gives threshold, min_faces and names; run_info and the version are recorded."""
    import json

    from imm_analysis import ClusterState, __version__

    figs, emb = _photo_faces(tmp_path)
    state = ClusterState.from_figures(figs, emb, threshold=0.6, min_faces=2, seed=0)
    assert len(state.clusters) == 2
    cid = state.clusters["cluster_id"].iloc[0]
    state.rename(cid, "Ana <VIP>")
    r = visitor_report(state.figures, clusters=state, run_info={"input": "/photos", "model_id": "pack@abc",
                                                                "threshold_source": "given"})
    p = r.parameters
    assert p["threshold"] == pytest.approx(0.6) and p["min_faces"] == 2 and p["threshold_source"] == "given"
    assert p["input"] == "/photos" and p["model_id"] == "pack@abc" and p["version"] == __version__
    assert p["origin"] == "local" and p["hd_rule"] == {"min_size": 75, "max_pose": 30, "min_quality": 0.8}
    assert p["time_sources_used"] == ["produce_time", "file_create_time"] and p["faces"] is False
    named = r.visitors.set_index("visitor_id")["name"]
    assert named[cid] == "Ana <VIP>" and named.isna().sum() == 1
    assert set(r.visits.loc[r.visits["visitor_id"] == cid, "name"]) == {"Ana <VIP>"}
    doc = json.loads(r.to_csv(tmp_path / "t")["parameters"].read_text())
    for key in ("input", "model_id", "threshold", "threshold_source", "min_faces", "hd_rule", "staff_rule",
                "time_source", "time_sources_used", "version", "tz", "session_gap", "location"):
        assert key in doc["parameters"], key
    html = r.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Ana &lt;VIP&gt;" in html and "pack@abc" in html and "calibrated" not in html


def test_local_and_imm_runs_use_their_own_words(sched, tmp_path):
    figs, emb = _photo_faces(tmp_path)
    from imm_analysis import cluster_faces

    local_figs, _ = cluster_faces(figs, emb, threshold=0.6, min_faces=2, seed=0)
    local = visitor_report(local_figs)
    imm = visitor_report(sched.figures, files=sched.files, tz=sched.tz, time_source=sched.time_pattern)
    ind = {r.parameters["origin"]: r.quality.set_index("metric").loc["independent_faces", "description"]
           for r in (local, imm)}
    assert "local clusterer" in ind["local"] and "IMM" not in ind["local"]
    assert "IMM" in ind["imm"]
    assert "local clusterer" in local.to_html(tmp_path / "l.html").read_text(encoding="utf-8")


def test_unreadable_files_are_counted_and_listed(tmp_path):
    figs, emb = _photo_faces(tmp_path)
    from imm_analysis import cluster_faces

    clustered, _ = cluster_faces(figs, emb, threshold=0.6, min_faces=2, seed=0)
    errors = pd.DataFrame({"uri": ["/in/notes.jpg", "/in/empty.jpg"], "error": ["MediaError", "MediaError"],
                           "reason": ["not a readable image (cannot identify image file <_io.BytesIO object at "
                                      "0x7f3a9c>)", "empty file (0 bytes)"]})
    r = visitor_report(clustered, errors=errors)
    assert r.unreadable["file"].tolist() == ["/in/notes.jpg", "/in/empty.jpg"]
    assert "0x7f" not in " ".join(r.unreadable["reason"]) and r.summary["unreadable_files"] == 2
    row = r.quality.set_index("metric").loc["unreadable_files"]
    assert row["value"] == 2 and "notes.jpg" in row["description"] and "empty.jpg: empty file" in row["description"]
    csv = pd.read_csv(r.to_csv(tmp_path / "t")["quality"]).set_index("metric")
    assert "notes.jpg" in csv.loc["unreadable_files", "description"]
    html = r.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Unreadable files" in html and "/in/empty.jpg" in html
    assert "unreadable_files" not in visitor_report(clustered).quality["metric"].tolist()  # no list given


def test_gallery_off_by_default_and_on_with_faces(tmp_path):
    from PIL import Image

    figs, emb = _photo_faces(tmp_path)
    from imm_analysis import cluster_faces

    clustered, clusters = cluster_faces(figs, emb, threshold=0.6, min_faces=2, seed=0)
    off = visitor_report(clustered, clusters=clusters)
    assert off.gallery is None and "gallery" not in off.tables()
    html_off = off.to_html(tmp_path / "off.html").read_text(encoding="utf-8")
    assert html_off.count("data:image/png;base64,") == 4 and "carries face images" not in html_off

    on = visitor_report(clustered, clusters=clusters, faces=True)
    g = on.gallery.set_index("visitor_id")
    assert len(g) == 2 and on.parameters["faces"] is True
    for vid, files in g["files"].items():
        person = {f.split("_")[0] for f in files.split(", ")}
        assert len(person) == 1 and g.loc[vid, "n_files"] == 3  # one person's three files
    html = on.to_html(tmp_path / "on.html").read_text(encoding="utf-8")
    assert "carries face images" in html
    thumbs = __import__("re").findall(r'alt="cover face of [^"]*" src="data:image/png;base64,([^"]+)"', html)
    assert len(thumbs) == 2
    import base64
    import io

    for t in thumbs:
        im = Image.open(io.BytesIO(base64.b64decode(t)))
        assert max(im.size) <= 96 and im.size[0] > 20  # the face box with its margin, shrunk
        assert im.getpixel((im.size[0] // 2, im.size[1] // 2))[0] in (40, 80)  # cut from that person's image
    assert (tmp_path / "g").exists() is False
    assert "gallery" in {p.stem for p in on.to_csv(tmp_path / "g").values()}


def test_file_time_and_long_period_notes(tmp_path):
    f = _faces([("a", "C1", "oss://b/s1/x.jpg", None), ("b", "C2", "oss://b/s1/y.jpg", "2011-03-01T10:00:00Z")])
    f = f.assign(file_modified_time=pd.to_datetime(["2026-01-05T10:00:00Z", None], utc=True))
    r = visitor_report(f, time_source=["produce_time", "file_modified_time"],
                       staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert r.summary["time_sources"] == {"produce_time": 1, "file_modified_time": 1}
    assert any("1 of 2 faces are dated by their file's modification time" in n for n in r.notes)
    assert any(n.startswith("The faces span 2011-03-01 to 2026-01-05") for n in r.notes)
    html = r.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.index("Read first") < html.index("Visitors per day")  # at the top
    ok = visitor_report(f.iloc[[1]], staff_rule={"min_days_share": None, "min_hours_per_day": None})
    assert not any("modification time" in n or "span" in n for n in ok.notes)


def test_staff_that_look_like_customers_are_pointed_out():
    """Present every day for a few minutes: flagged by the days rule, and the report says it may be wrong."""
    rows = []
    for day in range(5):
        rows.append((f"r{day}", "Regular", "oss://b/s1/x.jpg", f"2026-01-0{day + 5}T10:00:00Z"))
        rows.append((f"o{day}", f"Once{day}", "oss://b/s1/y.jpg", f"2026-01-0{day + 5}T11:00:00Z"))
    r = visitor_report(_faces(rows))
    assert r.staff["visitor_id"].tolist() == ["Regular"]
    assert any("may be loyal customers" in n for n in r.notes)
    assert len(r.near_staff) == 5 and (r.near_staff["days"] == 1).all()
    assert not set(r.near_staff["visitor_id"]) & set(r.staff["visitor_id"])
