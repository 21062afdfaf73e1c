"""Command line ``imm-analysis report``: IMM exports, the committed sample, a local run, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_demo_on_committed_sample(sample_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["report", "--clusters", str(sample_dir / "clusters"), "--files", str(sample_dir / "files"),
               "--tz", "Asia/Shanghai", "--location-pattern", PATTERN, "--out", str(out), "-q"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    quality = pd.read_csv(out / "tables" / "quality.csv").set_index("metric")["value"]
    assert quality["faces_without_time"] == 0 and quality["unique_visitors_lower"] > 0
    assert (out / "report.html").stat().st_size > 10_000


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
