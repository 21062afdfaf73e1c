"""The HTML report in a real browser: headless Chromium loads every image and no text overflows its table.

Skips, with the reason, where Chromium is not installed (``.ci/run`` installs Debian's ``chromium``
when it runs as root). The report itself has no scripts; the test adds one to a copy of it that
writes what it measured into the page, which ``--dump-dom`` returns.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imm_analysis import visitor_report
from imm_analysis.synth import make_visits

_PROBE = """<script>
window.addEventListener('load', () => {
  const text = el => (el.textContent || '').trim().slice(0, 80);
  const images = [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0}));
  const overflow = [];
  for (const el of document.querySelectorAll('td, th, dt, dd, .wrap, .face, .card')) {
    if (el.scrollWidth > el.clientWidth + 1) overflow.push(el.tagName + ': ' + text(el));
  }
  const right = document.body.getBoundingClientRect().right;
  for (const t of document.querySelectorAll('table, img, .gallery, dl')) {
    if (t.getBoundingClientRect().right > right + 1) overflow.push('past the page: ' + t.tagName + ': ' + text(t));
  }
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({images, overflow, page_fits: document.documentElement.scrollWidth <= window.innerWidth});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("needs Chromium for the browser test (Debian: apt-get install chromium); not installed here")


def _probe(report_html: Path, tmp_path: Path, width: int) -> dict:
    page = tmp_path / f"probe-{width}.html"
    page.write_text(report_html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    args = [_chromium(), "--headless", "--disable-gpu", "--no-first-run", f"--window-size={width},900",
            "--virtual-time-budget=10000", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert found, f"Chromium gave no result (exit {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def long_report(tmp_path_factory):
    """A report with long names, locations and reasons, many visitors and a face gallery."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("browser")
    s = make_visits(40, stores=3, days=4, staff_per_store=1, seed=4)
    figures = s.figures.copy()
    image = tmp / "frame.png"
    Image.fromarray(np.full((240, 320, 3), 90, np.uint8)).save(image)
    figures["uri"] = figures["uri"].str.replace("oss://", "oss://a-very-long-bucket-name-without-any-break-" * 3)
    figures["extra"] = [{"path": str(image)}] * len(figures)
    figures[["left", "top", "width", "height"]] = [40, 30, 120, 140]
    clusters = s.clusters.copy()
    clusters["name"] = ["Name-without-spaces-" * 6 + str(i) for i in range(len(clusters))]
    errors = pd.DataFrame({"uri": ["/data/" + "deeply/nested/" * 12 + "broken.jpg"], "error": ["MediaError"],
                           "reason": ["not a readable image (" + "x" * 300 + ")"]})
    r = visitor_report(figures, files=s.files, clusters=clusters, tz=s.tz, location=s.location_pattern,
                       time_source=s.time_pattern, faces=True, errors=errors, title="Quarterly " * 12)
    assert len(r.gallery) >= 30
    return r.to_html(tmp / "report.html"), len(r.gallery)


@pytest.mark.parametrize("width", [1280, 760])
def test_every_image_loads_and_no_text_overflows(long_report, tmp_path, width):
    path, n_visitors = long_report
    probe = _probe(path, tmp_path, width)
    assert len(probe["images"]) == 4 + n_visitors  # four plots and a cover face per visitor
    assert [i["alt"] for i in probe["images"] if not i["loaded"]] == []
    assert probe["overflow"] == []
    assert probe["page_fits"]


def test_the_probe_sees_a_broken_image_and_an_overflow(tmp_path):
    """The check can fail: a broken image and a nowrap cell wider than its table are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body style="width:300px"><img alt="broken" src="data:image/png;base64,AAAA">'
                   '<table style="table-layout:fixed;width:100px"><tr><td style="white-space:nowrap;overflow:hidden">'
                   + "x" * 200 + "</td></tr></table></body></html>")
    probe = _probe(bad, tmp_path, 800)
    assert [i["alt"] for i in probe["images"] if not i["loaded"]] == ["broken"]
    assert probe["overflow"] and probe["overflow"][0].startswith("TD")
