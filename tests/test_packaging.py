"""Packaging: the core install runs the main job without any extra; extras and pins are complete."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
HEAVY = {"onnxruntime", "onnx", "opencv-python-headless", "insightface", "ipywidgets", "umap-learn", "faiss-cpu",
         "numba", "alibabacloud-imm20200930", "dask"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_core_dependencies_leave_the_heavy_parts_to_extras():
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not core & HEAVY, sorted(core & HEAVY)
    assert {"numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "tqdm", "jinja2", "orjson"} <= core
    provided = {_name(r) for extra in EXTRAS.values() for r in extra}
    assert HEAVY <= provided, sorted(HEAVY - provided)
    assert set(EXTRAS) >= {"faces", "viz", "widgets", "umap", "imm", "fast", "dask", "all", "dev"}
    everything = re.search(r"\[(.*)\]", EXTRAS["all"][0]).group(1).split(",")
    assert set(everything) == set(EXTRAS) - {"all", "dev"}


def test_constraints_pin_every_requirement():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    wanted = {_name(r).replace("_", "-") for r in PYPROJECT["project"]["dependencies"]}
    wanted |= {_name(r).replace("_", "-") for k, extra in EXTRAS.items() if k != "all" for r in extra}
    assert wanted <= set(pins), sorted(wanted - set(pins))
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values())
    assert "imm-analysis" not in pins  # the package itself stays unpinned


@pytest.mark.slow
def test_the_main_job_runs_without_any_extra(sample_dir, tmp_path):
    """As after a plain ``pip install imm_analysis``: every extra's modules fail to import."""
    script = textwrap.dedent(f"""
        import importlib.abc, os, sys
        BLOCKED = {sorted({"onnxruntime", "onnx", "cv2", "insightface", "umap", "pynndescent", "ipywidgets", "faiss",
                           "numba", "alibabacloud_imm20200930", "alibabacloud_tea_openapi", "dask", "distributed"})!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import imm_analysis as ia

        figures = ia.load_figures({str(sample_dir / "files")!r})
        embeddings = np.load({str(sample_dir / "embeddings.npy")!r})
        figs, clusters = ia.cluster_faces(figures, embeddings, threshold=0.45)
        report = ia.visitor_report(figs, location=r"oss://[^/]+/([^/]+)/", tz="Asia/Shanghai")
        report.to_html({str(tmp_path / "report.html")!r})
        print("clusters", len(clusters), "loaded", sorted(m for m in BLOCKED if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded []" in done.stdout
    # the same clustering as with every extra installed (numba kernels and faiss have numpy fallbacks)
    import numpy as np

    import imm_analysis as ia

    figures = ia.load_figures(sample_dir / "files")
    _, clusters = ia.cluster_faces(figures, np.load(sample_dir / "embeddings.npy"), threshold=0.45)
    assert int(re.search(r"clusters (\d+)", done.stdout).group(1)) == len(clusters) > 0
    assert (tmp_path / "report.html").stat().st_size > 0
