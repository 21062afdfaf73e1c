"""Pseudonymous reports on the committed sample: no id, URI or name in any output; keyed ids; retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imm_analysis import visitor_report
from imm_analysis.cli import main
from imm_analysis.schema import CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE

KEY = "a-test-key-that-is-long-enough"
LOC = r"oss://[^/]+/([^/]+)/"


@pytest.fixture(scope="module")
def sample(sample_dir):
    from imm_analysis import load_clusters, load_files_and_figures

    files, figures = load_files_and_figures(sample_dir / "files", progress=False)
    clusters = load_clusters(sample_dir / "clusters", progress=False)
    clusters = clusters.copy()
    clusters["name"] = pd.array([f"Customer Name {i:03d}" for i in range(len(clusters))], dtype="string")
    return files, figures, clusters


def _secrets(files: pd.DataFrame, figures: pd.DataFrame, clusters: pd.DataFrame) -> set[str]:
    ids = set(figures["figure_cluster_id"].dropna().astype(str)) - {CLUSTER_INDEPENDENT, CLUSTER_UNAVAILABLE}
    ids |= set(clusters["cluster_id"].astype(str)) | set(clusters["name"].dropna().astype(str))
    ids |= set(files["file_id"].dropna().astype(str)) | set(figures["figure_id"].dropna().astype(str))
    ids |= set(files["uri"].dropna().astype(str)) | set(figures["uri"].dropna().astype(str))
    return ids


def _scan(folder: Path, secrets: set[str]) -> list[tuple[str, str]]:
    found = []
    for p in folder.rglob("*"):
        if p.is_file():
            text = p.read_bytes().decode("utf-8", errors="replace")
            found += [(p.name, s) for s in secrets if s in text]
    return found


def _write(report, folder: Path) -> None:
    report.to_html(folder / "report.html")
    report.to_csv(folder / "csv")
    report.to_parquet(folder / "parquet")


def test_pseudonymised_outputs_hold_no_id_uri_or_name(sample, tmp_path):
    files, figures, clusters = sample
    secrets = _secrets(files, figures, clusters)
    plain = visitor_report(figures, files=files, clusters=clusters, location=LOC, tz="Asia/Shanghai")
    _write(plain, tmp_path / "plain")
    assert _scan(tmp_path / "plain", secrets)  # the scan finds them in an ordinary report
    r = visitor_report(figures, files=files, clusters=clusters, location=LOC, tz="Asia/Shanghai",
                       pseudonymize=True, key=KEY)
    _write(r, tmp_path / "pseudo")
    assert _scan(tmp_path / "pseudo", secrets) == []
    html = (tmp_path / "pseudo" / "report.html").read_text(encoding="utf-8")
    assert "HMAC-SHA-256" in html and "Pseudonymised" in html
    # the counts are the plain report's
    assert r.summary["unique_visitors"] == plain.summary["unique_visitors"]
    pd.testing.assert_frame_equal(r.daily, plain.daily)
    assert len(r.visitors) == len(plain.visitors) and r.visitors["visitor_id"].str.match(r"^v-[0-9a-f]{20}$").all()


def test_same_key_same_ids_two_keys_disjoint(sample):
    files, figures, clusters = sample
    a = visitor_report(figures, files=files, clusters=clusters, pseudonymize=True, key=KEY)
    b = visitor_report(figures, files=files, clusters=clusters, pseudonymize=True, key=KEY)
    c = visitor_report(figures, files=files, clusters=clusters, pseudonymize=True, key=KEY + "-other")
    pd.testing.assert_frame_equal(a.visits, b.visits)
    ids_a, ids_c = set(a.visitors["visitor_id"]), set(c.visitors["visitor_id"])
    assert len(ids_a) == len(a.visitors) > 10 and not ids_a & ids_c
    # a week later, with the same key, a visitor keeps its id
    half = figures["produce_time"] < figures["produce_time"].median()
    full = visitor_report(figures, files=files, clusters=clusters, pseudonymize=True, key=KEY, exclude_staff=False)
    d = visitor_report(figures[half], files=files, clusters=clusters, pseudonymize=True, key=KEY, exclude_staff=False)
    assert 0 < len(d.visitors) and set(d.visitors["visitor_id"]) <= set(full.visitors["visitor_id"])


@pytest.mark.parametrize("kwargs, message", [
    ({"pseudonymize": True}, "needs key"),
    ({"pseudonymize": True, "key": "short"}, "at least 16"),
    ({"pseudonymize": True, "key": KEY, "faces": True}, "carries no faces"),
])
def test_pseudonymize_refuses_bad_keys_and_faces(sample, kwargs, message):
    files, figures, clusters = sample
    with pytest.raises(ValueError, match=message):
        visitor_report(figures, files=files, clusters=clusters, **kwargs)


def test_retention_refuses_old_data_unless_told(sample):
    files, figures, clusters = sample
    newest = pd.to_datetime(figures["produce_time"], utc=True).max()
    with pytest.raises(ValueError, match="older than the retention"):
        visitor_report(figures, files=files, clusters=clusters, retention="1D")
    r = visitor_report(figures, files=files, clusters=clusters, retention="1D", allow_expired=True)
    assert r.parameters["retention"] == "1D" and r.parameters["allow_expired"] is True
    # a cut-off before every face: nothing to refuse
    ok = visitor_report(figures, files=files, clusters=clusters, retention=newest - pd.Timedelta(days=365))
    assert ok.summary["faces"] == len(figures)


def test_cli_pseudonymize_reads_the_key_from_the_environment(sample, sample_dir, tmp_path, monkeypatch, capsys):
    files, figures, clusters = sample
    out = tmp_path / "out"
    args = ["report", "--files", str(sample_dir / "files"), "--clusters", str(sample_dir / "clusters"),
            "--location-pattern", LOC, "--out", str(out), "-q", "--pseudonymize"]
    monkeypatch.delenv("IMM_REPORT_KEY", raising=False)
    assert main(args) == 1
    assert "IMM_REPORT_KEY" in capsys.readouterr().err
    monkeypatch.setenv("IMM_REPORT_KEY", KEY)
    assert main(args) == 0
    assert _scan(out, _secrets(files, figures, clusters)) == []
    assert KEY not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    ids = pd.read_csv(out / "tables" / "visitors.csv")["visitor_id"]
    api = visitor_report(figures, files=files, clusters=clusters, pseudonymize=True, key=KEY, location=LOC)
    assert set(ids) == set(api.visitors["visitor_id"])
    assert main([*args, "--faces"]) == 1
    assert main([*args, "--retention", "30D"]) == 1
    assert "older than the retention" in capsys.readouterr().err
    assert main([*args, "--retention", "30D", "--allow-expired"]) == 0


def test_expire_state_and_cache_on_synthetic_times(tmp_path):
    """``ClusterState.expire`` and ``expire_cache`` drop exactly the faces captured before the cut-off."""
    from imm_analysis import ClusterState
    from imm_analysis.faces.cache import EmbeddingCache
    from imm_analysis.faces.result import ERROR_COLUMNS
    from imm_analysis.privacy import expire_cache
    from imm_analysis.schema import coerce_frame

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 16))
    n = 40
    person = np.arange(n) % 4
    x = (centres[person] + 0.1 * rng.normal(size=(n, 16))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    times = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    figs = pd.DataFrame({"figure_id": [f"{i:032x}-0-0" for i in range(n)], "file_id": [f"{i:032x}" for i in range(n)],
                         "produce_time": times, "left": 5, "top": 5, "width": 90, "height": 90, "pitch": 0.0,
                         "roll": 0.0, "yaw": 0.0, "face_quality": 0.9})
    cut = pd.Timestamp("2025-02-01", tz="UTC")
    old = np.asarray(times < cut)
    state = ClusterState.from_figures(figs, x, threshold=0.5, min_faces=2, seed=0)
    state.expire(cut)
    assert state.last_expire["faces"] == old.sum()
    assert set(state.figures["figure_id"]) == set(figs.loc[~old, "figure_id"])
    assert int(state.clusters["face_count"].sum()) == int((state.figures["cluster_state"] == "clustered").sum())
    # an age instead of a time; the same faces, offered again, stay out
    state2 = ClusterState.from_figures(figs, x, threshold=0.5, min_faces=2, seed=0)
    state2.expire("31D", now=pd.Timestamp("2025-03-04", tz="UTC"))
    assert set(state2.figures["figure_id"]) == set(state.figures["figure_id"])
    state2.save(tmp_path / "state")
    state3 = ClusterState.load(tmp_path / "state").update(figs, x)
    assert state3.last_update["new_faces"] == 0

    # the cache: one chunk per 10 files
    cache = EmbeddingCache(tmp_path / "cache", "pack:s@1", 16, {})
    f = figs.assign(cache_key=[f"k{i}" for i in range(n)], frame_index=pd.NA)
    for s in range(0, n, 10):
        part = f.iloc[s : s + 10]
        files = part[["cache_key", "file_id", "produce_time"]].assign(figure_count=1)
        cache.write_chunk(part["cache_key"].tolist(), coerce_frame(files, "files"), coerce_frame(part, "figures"),
                          x[s : s + 10], pd.DataFrame(columns=[*ERROR_COLUMNS, "cache_key"]).astype("string"))
    debris = cache.dir / "part-00000000000000000001-99999999-abcdef.npy"  # a dead writer's part
    debris.write_bytes(b"partial")
    dry = expire_cache(tmp_path / "cache", cut, dry_run=True)
    assert dry == {"files": int(old.sum()), "faces": int(old.sum()), "chunks": 4}
    assert debris.exists()  # a dry run changes nothing on disk
    assert expire_cache(tmp_path / "cache", cut) == dry
    kept = {fig["figure_id"] for e in EmbeddingCache(tmp_path / "cache", "pack:s@1", 16, {}).load().values()
            for fig in e.figures}
    assert kept == set(figs.loc[~old, "figure_id"])
    assert expire_cache(tmp_path / "cache", cut)["faces"] == 0  # nothing left to expire
