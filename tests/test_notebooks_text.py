"""The notebooks read as user documentation: no issue-tracker talk, no module reached by side effect."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_text(path):
    import imm_analysis

    for text in _sources(path):
        assert not re.search(r"\bissues?\b", text, re.I), f"{path.name} mentions the issue tracker: {text[:80]!r}"
        # `ia.io.media.read_image` works only if `media` is a registered submodule of the lazy package
        for pkg, mod in re.findall(r"\bia\.(\w+)\.(\w+)\.\w+", text):
            package = getattr(imm_analysis, pkg)
            lazy = set(getattr(package, "_SUBMODULES", ())) | set(getattr(package, "_EXPORTS", ()))
            assert mod in lazy, f"{path.name}: ia.{pkg}.{mod} is not reachable in a fresh kernel"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 9
