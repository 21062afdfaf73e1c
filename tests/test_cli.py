"""Command line ``imm-analysis report``: IMM exports, the committed sample, a local run, errors and exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import pytest

from imm_analysis.cli import main
from imm_analysis.synth import make_visits

ROOT = Path(__file__).resolve().parents[1]
PATTERN = r"oss://[^/]+/([^/]+)/"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small synthetic visit schedule written as IMM JSON pages."""
    s = make_visits(60, stores=2, days=7, staff_per_store=1, seed=21)
    paths = s.write_imm(tmp_path_factory.mktemp("imm"), page_size=150)
    return s, paths


def test_report_from_imm_exports(exported, tmp_path, capsys):
    s, paths = exported
    out = tmp_path / "out"
    rc = main(["report", "--clusters", str(paths["clusters"]), "--files", str(paths["files"]), "--tz", s.tz,
               "--location-pattern", PATTERN, "--time-pattern", s.time_pattern, "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert f"Report written to {out / 'report.html'}" in cap.out
    assert "building the report" in cap.err  # progress goes to stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "store-02" in html
    # IMM JSON has no per-face video offsets, so compare counts (not dwell) with the truth
    daily = pd.read_csv(out / "tables" / "daily.csv")
    truth = s.true_daily()
    cols = ["unique_visitors", "new_visitors", "returning_visitors", "visits", "detections"]
    assert daily[cols].to_numpy().tolist() == truth[cols].to_numpy().tolist()
    assert daily["date"].tolist() == [str(d) for d in truth["date"]]
    staff = pd.read_csv(out / "tables" / "staff.csv")
    assert set(staff["visitor_id"]) == set(s.staff_ids)
    assert pd.to_timedelta(daily["median_dwell"]).notna().all()  # H:MM:SS text reads back


def test_missing_file_exits_1_naming_it(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["report", "--files", str(missing), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "no such file" in err and "Traceback" not in err
    assert main(["report", "--files", str(tmp_path / "*.json")]) == 1
    assert "no file matches" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--location-pattern", "oss://([^/]+"], "not a valid regular expression"),
        (["--location-pattern", "oss://[^/]+/"], "exactly one group"),
        (["--location-pattern", "^s3://([^/]+)/"], "matched none"),
        (["--time-pattern", "(a)(b)"], "exactly one group"),
        (["--tz", "Mars/Olympus"], "unknown time zone"),
        (["--session-gap", "soon"], "not a duration"),
    ],
)
def test_bad_options_exit_1_with_message(exported, tmp_path, capsys, args, message):
    _, paths = exported
    rc = main(["report", "--files", str(paths["files"]), "--out", str(tmp_path / "o"), "-q", *args])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and err.startswith("imm-analysis: error:") and "Traceback" not in err
    assert not (tmp_path / "o" / "report.html").exists()


def test_bad_json_and_input_combinations(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"Files": [{"ObjectId": 3, "Figures": []}]}')
    assert main(["report", "--files", str(bad), "-q"]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "ObjectId" in err
    assert main(["report"]) == 1
    assert "no input" in capsys.readouterr().err
    assert main(["report", "--images", str(tmp_path)]) == 1
    assert "--models" in capsys.readouterr().err
    assert main(["report", "--images", str(tmp_path), "--models", str(tmp_path), "--files", str(bad)]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["report", "--no-such-option"]) == 2
    assert main([]) == 2


def test_python_dash_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "imm_analysis.cli", "report", "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0
    assert "--location-pattern" in res.stdout and "--images" in res.stdout


DEMO_ARGS = ["--tz", "Asia/Shanghai", "--location-pattern", PATTERN]


@pytest.fixture(scope="module")
def demo(sample_dir, tmp_path_factory):
    """``make demo``'s command on the committed sample, counting every JSON parse the loaders make."""
    from imm_analysis.io import sources

    parsed: Counter[bytes] = Counter()

    def loads(data):
        parsed[bytes(data)] += 1
        return orjson.loads(data)

    counting = types.SimpleNamespace(loads=loads, JSONDecodeError=orjson.JSONDecodeError)
    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "orjson", counting)
        rc = main(["report", "--clusters", str(sample_dir / "clusters"), "--files", str(sample_dir / "files"),
                   *DEMO_ARGS, "--out", str(out), "-q"])
    return rc, out, parsed


def test_demo_on_committed_sample(demo):
    rc, out, _ = demo
    assert rc == 0
    quality = pd.read_csv(out / "tables" / "quality.csv").set_index("metric")["value"]
    assert quality["faces_without_time"] == 0 and quality["unique_visitors_lower"] > 0
    assert (out / "report.html").stat().st_size > 10_000


def test_each_export_file_is_parsed_once(demo, sample_dir):
    _, _, parsed = demo
    pages = sorted((sample_dir / "files").glob("*.json")) + sorted((sample_dir / "clusters").glob("*.json"))
    assert len(pages) >= 2
    assert {p.name: parsed[p.read_bytes()] for p in pages} == {p.name: 1 for p in pages}
    assert sum(parsed.values()) == len(pages)  # nothing else was parsed


def test_cli_output_equals_loading_each_frame_on_its_own(demo, sample_dir, tmp_path):
    """The one-parse CLI gives the tables and HTML of ``load_files`` + ``load_figures`` on the paths."""
    from imm_analysis import load_clusters, load_figures, load_files, visitor_report

    _, out, _ = demo
    files_dir = sample_dir / "files"
    report = visitor_report(load_figures(files_dir), files=load_files(files_dir),
                            clusters=load_clusters(sample_dir / "clusters"), tz="Asia/Shanghai", location=PATTERN)
    want = report.to_csv(tmp_path / "tables")
    for name, path in want.items():
        assert (out / "tables" / path.name).read_bytes() == path.read_bytes(), name

    def strip(html: str) -> str:  # the generation time differs; plots are drawn from the tables compared above
        return re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", re.sub(r"generated [^<]*UTC", "", html))

    html = report.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert strip((out / "report.html").read_text(encoding="utf-8")) == strip(html)


def test_bad_record_is_named_by_file_line_and_field(tmp_path, capsys):
    good = {"ObjectId": "f1", "URI": "oss://b/s1/1.jpg", "ProduceTime": "2026-01-05T10:00:00Z",
            "Figures": [{"FigureId": "a", "FigureClusterId": "Cluster-1"}]}
    bad = {**good, "ObjectId": "f2", "Figures": [{"FigureId": "b", "FaceQuality": "high"}]}
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.json").write_text(orjson.dumps({"Files": [good]}).decode())
    lines = [orjson.dumps({"Files": [{**good, "ObjectId": "f3"}]}), orjson.dumps({"Files": [{**good, "ObjectId": "f4"}, bad]})]
    (folder / "b.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert main(["report", "--files", str(folder), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'b.jsonl'}, line 2, Files[1].Figures[0], field 'FaceQuality'" in err, err
    assert "<list>" not in err and "Traceback" not in err
    (folder / "b.jsonl").unlink()
    (folder / "c.json").write_text('"oss://b/not-a-response.json"')  # a JSON string is not read as a path
    assert main(["report", "--files", str(folder), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'c.json'}, document: not an IMM response (a JSON str)" in err, err


@pytest.mark.filterwarnings("ignore:.*random pairs pass the calibrated threshold")
def test_local_run_on_real_photos(faces_dir, pack_dir, tmp_path, capsys):
    photos = faces_dir / "photos"
    images = tmp_path / "images"
    images.mkdir()
    picked = []
    for person in ("person_00", "person_01"):
        for p in sorted((photos / person).glob("*.jpg"))[:4]:
            (images / f"{person}_{p.name}").symlink_to(p)  # links only: nothing copied
            picked.append(p)
    out = tmp_path / "out"
    rc = main(["report", "--images", str(images), "--models", str(pack_dir), "--out", str(out), "-q"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    quality = pd.read_csv(out / "tables" / "quality.csv").set_index("metric")["value"]
    assert quality["faces"] >= len(picked) - 1  # one face per portrait (a detector may miss one)
    assert quality["clustered_faces"] + quality["independent_faces"] == quality["faces"]
    assert quality["faces_without_time"] == 0  # EXIF time, else the file's modification time
    assert quality["unique_visitors_upper"] >= 1
    assert (out / "report.html").exists()
