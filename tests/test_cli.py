"""Command line ``imm-analysis report``: IMM exports, the committed sample, a local run, errors and exit codes."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

import imm_analysis
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


def test_python_dash_m_entry_point_and_version():
    res = subprocess.run([sys.executable, "-m", "imm_analysis.cli", "report", "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0
    for option in ("--location-pattern", "--images", "--threshold", "--min-faces", "--faces", "--run"):
        assert option in res.stdout
    res = subprocess.run([sys.executable, "-m", "imm_analysis.cli", "--version"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f"imm-analysis {imm_analysis.__version__}"
    res = subprocess.run([sys.executable, "-m", "imm_analysis.cli", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert all(name in res.stdout for name in ("embed", "cluster", "diagnose", "report"))


def test_debug_shows_the_traceback_other_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", "--files", str(bad), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imm-analysis: error:") and "--debug" in err
    with pytest.raises(Exception) as info:
        main(["report", "--files", str(bad), "-q", "--debug"])
    assert "bad.json" in str(info.value)


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
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(sources, "orjson", counting)
        rc = main(["report", "--clusters", str(sample_dir / "clusters"), "--files", str(sample_dir / "files"),
                   *DEMO_ARGS, "--out", str(out), "-q"])
    return rc, out, parsed, err.getvalue()


def test_demo_on_committed_sample(demo, sample_dir):
    from PIL import Image

    from imm_analysis import load_figures

    rc, out, _, err = demo
    assert rc == 0, err
    quality = pd.read_csv(out / "tables" / "quality.csv").set_index("metric")["value"]
    staff = pd.read_csv(out / "tables" / "staff.csv")
    figures = load_figures(sample_dir / "files")
    clustered = figures.loc[figures["cluster_state"] == "clustered", "figure_cluster_id"]
    assert quality["faces_without_time"] == 0
    assert quality["unique_visitors_lower"] == clustered.nunique() - len(staff)  # every cluster but the staff
    n_ind = int((figures["cluster_state"] == "independent").sum())
    assert quality["unique_visitors_upper"] == quality["unique_visitors_lower"] + n_ind
    html = (out / "report.html").read_text(encoding="utf-8")
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(pngs) == 4  # the four plots, and no faces by default
    for data in pngs:
        assert min(Image.open(io.BytesIO(base64.b64decode(data))).size) >= 200
    lower = int(quality["unique_visitors_lower"])
    assert f"<b>{lower}</b>unique visitors" in html and f"between {lower}" in html


def test_demo_says_what_the_staff_rule_excluded(demo):
    """The sample has no staff: the rule's exclusions are named, with the doubt, and nothing is a Python warning."""
    _, out, _, err = demo
    staff = pd.read_csv(out / "tables" / "staff.csv")
    near = pd.read_csv(out / "tables" / "near_staff.csv")
    assert len(staff) == 4 and len(near) > 0
    assert f"{len(staff)} visitor(s) excluded as staff" in err and "may be loyal customers" in err
    assert (near["share_of_days"] <= 0.5 + 1e-9).all()  # just under the rule's cut-off
    assert all(line.startswith("imm-analysis: warning: ") for line in err.splitlines()), err
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "came closest to it" in html and "may be loyal customers" in html


def test_each_export_file_is_parsed_once(demo, sample_dir):
    _, _, parsed, _ = demo
    pages = sorted((sample_dir / "files").glob("*.json")) + sorted((sample_dir / "clusters").glob("*.json"))
    assert len(pages) >= 2
    assert {p.name: parsed[p.read_bytes()] for p in pages} == {p.name: 1 for p in pages}
    assert sum(parsed.values()) == len(pages)  # nothing else was parsed


def test_cli_output_equals_loading_each_frame_on_its_own(demo, sample_dir, tmp_path):
    """The one-parse CLI gives the tables and HTML of ``load_files`` + ``load_figures`` on the paths."""
    from imm_analysis import load_clusters, load_figures, load_files, visitor_report

    _, out, _, _ = demo
    files_dir = sample_dir / "files"
    run_info = {"input": {"files": str(files_dir.absolute()), "clusters": str((sample_dir / "clusters").absolute())}}
    report = visitor_report(load_figures(files_dir), files=load_files(files_dir),
                            clusters=load_clusters(sample_dir / "clusters"), tz="Asia/Shanghai", location=PATTERN,
                            origin="imm", run_info=run_info)
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



# ------------------------------------------------------------------ checks made before any embedding


@pytest.fixture
def no_embedding(monkeypatch):
    """Make loading a model or embedding fail loudly: the checks under test must stop the run before them."""

    def refuse(*args, **kwargs):
        raise AssertionError("the run went on to load a model or embed")

    monkeypatch.setattr(imm_analysis, "FaceModel", refuse, raising=False)
    monkeypatch.setattr(imm_analysis, "embed_images", refuse, raising=False)


def _png(path: Path, value: int = 128) -> Path:
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), value, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--location-pattern", r"/(shop-\d+)/"], "--location-pattern '/(shop-\\\\d+)/' matched none of the 2 file"),
        (["--time-pattern", r"(\d{8}T\d{6})"], "--time-pattern"),
        (["--location", "nosuchcol"], "--location nosuchcol: no such column"),
        (["--tz", "Mars/Olympus"], "unknown time zone"),
    ],
)
def test_local_options_fail_before_any_embedding(tmp_path, capsys, no_embedding, args, message):
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "a.png")
    _png(images / "b.png")
    rc = main(["report", "--images", str(images), "--models", str(tmp_path), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert rc == 1 and message in err, err
    assert err.count("\n") == 1 and "AssertionError" not in err


def test_no_images_and_unreadable_inputs_are_told_apart(tmp_path, capsys, no_embedding):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert main(["report", "--images", str(empty), "--models", str(tmp_path), "-q"]) == 1
    err = capsys.readouterr().err
    assert "no images or videos found" in err and ".jpg" in err
    assert main(["report", "--images", str(tmp_path / "missing"), "--models", str(tmp_path), "-q"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_location_that_is_not_a_column_of_imm_exports(exported, tmp_path, capsys):
    _, paths = exported
    rc = main(["report", "--files", str(paths["files"]), "--location", "nosuchcol", "-q", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "--location nosuchcol: no such column" in err and "group" not in err
    rc = main(["report", "--files", str(paths["files"]), "--threshold", "0.5", "-q", "--out", str(tmp_path)])
    assert rc == 1 and "local runs only" in capsys.readouterr().err


def test_diagnose_imm_exports(sample_dir, capsys):
    from imm_analysis import diagnose_clustering, load_figures

    assert main(["diagnose", "--files", str(sample_dir / "files"), "-q"]) == 0
    out = capsys.readouterr().out
    want = diagnose_clustering(load_figures(sample_dir / "files"))
    assert out.strip() == str(want).strip() and f"Clustering diagnosis: {want.verdict}" in out


# ------------------------------------------------------------------ local runs on real photos


def _link_photos(faces_dir: Path, folder: Path, people=("person_00", "person_01"), n=4) -> list[Path]:
    folder.mkdir()
    picked = []
    for person in people:
        for p in sorted((faces_dir / "photos" / person).glob("*.jpg"))[:n]:
            (folder / f"{person}_{p.name}").symlink_to(p)  # links only: nothing copied
            picked.append(p)
    return picked


@pytest.fixture(scope="module")
def local_runs(faces_dir, pack_dir, tmp_path_factory):
    """Two people's photos plus a text file named .jpg and an empty .jpg, reported with -q --faces and without."""
    root = tmp_path_factory.mktemp("local")
    images = root / "images"
    _link_photos(faces_dir, images)
    (images / "notes.jpg").write_text("a text file, not a photo")
    (images / "empty.jpg").write_bytes(b"")
    runs = {}
    for name, extra in (("quiet", ["-q", "--faces"]), ("loud", [])):
        err = io.StringIO()
        out = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(["report", "--images", str(images), "--models", str(pack_dir), "--out", str(root / name),
                       "--cache-dir", str(root / "cache"), *extra])
        runs[name] = (rc, root / name, err.getvalue(), out.getvalue())
    return images, runs


@pytest.mark.parametrize("name", ["quiet", "loud"])
def test_local_run_output_names_unreadable_files_without_python_warnings(local_runs, name):
    _, runs = local_runs
    rc, out, err, stdout = runs[name]
    assert rc == 0, err
    assert "notes.jpg" in err and "empty.jpg: empty file (0 bytes)" in err and "2 of 10 file(s)" in err
    assert "Warning:" not in err and not re.search(r"\.py:\d+", err) and "0x7f" not in err and "{'" not in err
    warnings_ = [line for line in err.splitlines() if "warning" in line.lower()]
    assert warnings_ and all(line.startswith("imm-analysis: warning: ") for line in warnings_)
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert bool(progress) == (name == "loud")  # -q silences progress, never warnings
    assert stdout.startswith(f"Report written to {out / 'report.html'}")
    quality = pd.read_csv(out / "tables" / "quality.csv").set_index("metric")
    assert quality.loc["unreadable_files", "value"] == 2
    assert "notes.jpg" in quality.loc["unreadable_files", "description"]
    assert sorted(Path(f).name for f in pd.read_csv(out / "tables" / "unreadable.csv")["file"]) == ["empty.jpg",
                                                                                                  "notes.jpg"]
    assert "independent faces" in (out / "report.html").read_text(encoding="utf-8")
    assert "IMM left out" not in (out / "report.html").read_text(encoding="utf-8")


def test_local_run_finds_the_two_people(local_runs):
    _, runs = local_runs
    _, out, _, _ = runs["quiet"]
    quality = pd.read_csv(out / "tables" / "quality.csv").set_index("metric")["value"]
    assert quality["faces"] >= 7  # one face per portrait (a detector may miss one)
    assert quality["unique_visitors_lower"] == 2
    gallery = pd.read_csv(out / "tables" / "gallery.csv")
    people = [{f.split("_")[0] + "_" + f.split("_")[1] for f in files.split(", ")} for files in gallery["files"]]
    assert sorted(p.pop() for p in people if len(p) == 1) == ["person_00", "person_01"]  # one person per visitor


def test_gallery_off_by_default_on_with_faces(local_runs):
    _, runs = local_runs
    on = (runs["quiet"][1] / "report.html").read_text(encoding="utf-8")
    off = (runs["loud"][1] / "report.html").read_text(encoding="utf-8")
    assert on.count('alt="cover face of') == 2 and "carries face images" in on
    assert 'alt="cover face of' not in off and "carries face images" not in off and "No faces in this report" in off
    assert not (runs["loud"][1] / "tables" / "gallery.csv").exists()
    assert "carries face images" in runs["quiet"][3] and "face" not in runs["loud"][3]


def test_parameters_json_reproduces_the_local_report(local_runs, pack_dir, tmp_path, capsys):
    images, runs = local_runs
    _, out, _, _ = runs["loud"]
    params = orjson.loads((out / "tables" / "parameters.json").read_bytes())["parameters"]
    assert params["input"] == str(images.absolute()) and params["origin"] == "local"
    assert params["model_id"].startswith("mbf128_det500m") and params["min_faces"] == 3
    assert -1 <= params["threshold"] <= 1 and params["threshold_source"].startswith("calibrated")
    assert params["time_source"] == ["produce_time", "file_modified_time"]
    assert params["version"] == imm_analysis.__version__ and params["faces"] is False
    for key in ("hd_rule", "staff_rule", "tz", "session_gap"):
        assert key in params
    again = tmp_path / "again"
    rc = main(["report", "--images", params["input"], "--models", str(pack_dir), "--threshold",
               repr(params["threshold"]), "--min-faces", str(params["min_faces"]), "--tz", params["tz"],
               "--session-gap", params["session_gap"], "--out", str(again), "-q"])
    assert rc == 0, capsys.readouterr().err
    for table in ("daily", "quality"):
        a = pd.read_csv(out / "tables" / f"{table}.csv")
        b = pd.read_csv(again / "tables" / f"{table}.csv")
        if table == "quality":  # the threshold's description differs (given, not calibrated); the counts do not
            a, b = a[["metric", "value"]], b[["metric", "value"]]
        pd.testing.assert_frame_equal(a, b)
    assert orjson.loads((again / "tables" / "parameters.json").read_bytes())["parameters"]["threshold_source"] == \
        "given (--threshold)"


def test_embed_cluster_diagnose_report_from_run_folders(faces_dir, pack_dir, tmp_path, capsys):
    from imm_analysis import load_clusters, load_figures

    images = tmp_path / "images"
    _link_photos(faces_dir, images, n=3)
    run = tmp_path / "run"
    assert main(["embed", str(images), "--models", str(pack_dir), "--out", str(run), "-q"]) == 0
    assert f"embedded to {run}" in capsys.readouterr().out
    figures = pd.read_parquet(run / "figures.parquet")
    emb = np.load(run / "embeddings.npy")
    assert emb.dtype == np.float32 and emb.shape == (len(figures), 128) and len(figures) >= 5
    assert pd.read_parquet(run / "files.parquet")["uri"].str.contains("person_0").all()

    one = tmp_path / "one"  # a single file is accepted, as embed_images accepts it
    assert main(["embed", str(next(images.iterdir())), "--models", str(pack_dir), "--out", str(one), "-q"]) == 0
    assert len(pd.read_parquet(one / "files.parquet")) == 1
    capsys.readouterr()

    assert main(["diagnose", "--run", str(run), "-q", "--threshold", "0.3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Clustering diagnosis: ") and "not_run" in out.splitlines()[0]
    assert "2 new clusters can form" in out  # the embeddings link each person's 3 photos

    clustered = tmp_path / "clustered"
    assert main(["cluster", "--run", str(run), "--threshold", "0.3", "--min-faces", "2", "--seed", "1",
                 "--out", str(clustered), "-q"]) == 0
    assert "2 clusters" in capsys.readouterr().out
    clusters = load_clusters(clustered / "query_figure_clusters.json")
    faces = load_figures(clustered / "simple_query.json")
    assert len(clusters) == 2 and set(faces["figure_id"]) == set(figures["figure_id"])
    assert set(faces["figure_cluster_id"].dropna()) - {"figure-cluster-id-independent"} == set(clusters["cluster_id"])
    strict = tmp_path / "strict"
    assert main(["cluster", "--run", str(run), "--threshold", "0.999", "--out", str(strict), "-q"]) == 0
    assert "0 clusters" in capsys.readouterr().out  # the threshold given is the one used

    names = tmp_path / "names.csv"
    names.write_text(f"cluster_id,name\n{clusters['cluster_id'].iloc[0]},First person\n")
    report = tmp_path / "report"
    assert main(["report", "--run", str(clustered), "--out", str(report), "-q", "--names", str(names)]) == 0
    params = orjson.loads((report / "tables" / "parameters.json").read_bytes())["parameters"]
    assert params["threshold"] == pytest.approx(0.3) and params["min_faces"] == 2
    assert pd.read_csv(report / "tables" / "quality.csv").set_index("metric")["value"]["unique_visitors_lower"] == 2
    visitors = pd.read_csv(report / "tables" / "visitors.csv").set_index("visitor_id")["name"]
    assert visitors[clusters["cluster_id"].iloc[0]] == "First person" and visitors.notna().sum() == 1


def test_images_without_faces_and_unreadable_only(pack_dir, tmp_path, capsys):
    blank = tmp_path / "blank"
    blank.mkdir()
    _png(blank / "grey.png")
    assert main(["report", "--images", str(blank), "--models", str(pack_dir), "-q"]) == 1
    assert "no face found in 1 readable file(s)" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "photo.jpg").write_text("text, not a photo")
    assert main(["report", "--images", str(junk), "--models", str(pack_dir), "-q"]) == 1
    err = capsys.readouterr().err
    assert "photo.jpg: not a readable image" in err and "none of the 1 file(s) could be read" in err
    assert "0x7f" not in err and "{'" not in err


def test_names_csv_names_the_visitors(sample_dir, tmp_path, capsys):
    from imm_analysis import load_figures

    figures = load_figures(sample_dir / "files")
    ids = sorted(figures.loc[figures["cluster_state"] == "clustered", "figure_cluster_id"].astype(str).unique())
    names = tmp_path / "names.csv"
    pd.DataFrame({"visitor_id": [ids[0], ids[1], "Cluster-not-here"], "name": ["Ana <regular>", "Bo", "Nobody"]}
                 ).to_csv(names, index=False)
    out = tmp_path / "o"
    rc = main(["report", "--files", str(sample_dir / "files"), *DEMO_ARGS, "--include-staff", "--names", str(names),
               "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "1 id(s) are no visitor of this input" in err and "Cluster-not-here" in err
    visitors = pd.read_csv(out / "tables" / "visitors.csv").set_index("visitor_id")["name"]
    assert visitors[ids[0]] == "Ana <regular>" and visitors[ids[1]] == "Bo" and visitors.notna().sum() == 2
    assert "Ana &lt;regular&gt;" in (out / "report.html").read_text(encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nx,y\n")
    assert main(["report", "--files", str(sample_dir / "files"), "--names", str(bad), "-q", "--out", str(out)]) == 1
    assert "needs columns visitor_id (or cluster_id) and name" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_special_or_bad_input_files_are_refused_not_read(exported, tmp_path, capsys):
    import os

    _, paths = exported
    fifo = tmp_path / "names.csv"
    os.mkfifo(fifo)  # reading a FIFO without a writer would block for ever
    rc = main(["report", "--files", str(paths["files"]), "--names", str(fifo), "-q", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and f"--names {fifo}: not a regular file (FIFO)" in err, err
    text = tmp_path / "emb.npy"
    text.write_text("not an array")
    rc = main(["cluster", "--files", str(paths["files"]), "--embeddings", str(text), "-q", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 1 and f"--embeddings {text}: not a .npy array" in err and "Traceback" not in err, err
    assert not (tmp_path / "c").exists()


def test_run_folder_with_a_corrupt_record_names_it(tmp_path):
    from imm_analysis.cli._common import UserError
    from imm_analysis.cli._local import LocalRun, read_run, save_run
    from imm_analysis.synth import make_dataset

    ds = make_dataset(5, seed=1)
    emb = np.zeros((len(ds.figures), 8), np.float32)
    save_run(tmp_path, LocalRun(ds.files, ds.figures, emb, pd.DataFrame(), {"input": "x"}))
    assert read_run(str(tmp_path)).info["input"] == "x"
    (tmp_path / "run.json").write_text('{"input": ')
    with pytest.raises(UserError, match=r"run\.json is not valid JSON"):
        read_run(str(tmp_path), "--run")
    (tmp_path / "embeddings.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserError, match=r"--run .*embeddings\.npy: not a \.npy array"):
        read_run(str(tmp_path), "--run")


def test_cluster_of_imm_exports_is_a_run_folder_for_diagnose(tmp_path, capsys):
    from imm_analysis import load_figures

    s = make_visits(12, stores=1, days=2, staff_per_store=0, seed=2)
    paths = s.write_imm(tmp_path / "imm", page_size=150)
    n = len(load_figures(paths["files"]))
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32))
    out = tmp_path / "c"
    assert main(["cluster", "--files", str(paths["files"]), "--embeddings", str(tmp_path / "emb.npy"),
                 "--out", str(out), "-q", "--threshold", "0.5"]) == 0
    capsys.readouterr()
    # its errors.csv has no columns (IMM exports have no unreadable files): was EmptyDataError
    rc = main(["diagnose", "--run", str(out), "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"{n:,}" in captured.out or str(n) in captured.out


def test_convert_into_a_file_is_a_user_error(exported, tmp_path, capsys):
    _, paths = exported
    taken = tmp_path / "taken"
    taken.write_text("x")
    assert main(["convert", str(paths["files"]), str(taken), "-q", "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert f"OUT {taken}: exists and is not a folder" in err and "NotADirectoryError" not in err, err
    assert taken.read_text() == "x"


def test_an_empty_model_pack_is_a_user_error_in_embed_and_index(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "a.png")
    pack = tmp_path / "pack"
    pack.mkdir()
    for argv in (["embed", str(images), "--models", str(pack), "--out", str(tmp_path / "e"), "-q"],
                 ["index", "--images", str(images), "--models", str(pack), "--library", str(tmp_path / "l"), "-q"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"imm-analysis: error: --models {pack}: ") and "no .onnx" in err, err
        assert "PackError" not in err and err.count("\n") == 1
