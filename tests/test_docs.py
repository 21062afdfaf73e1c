"""Every public function and class (each package's ``_EXPORTS``) documents itself with a runnable example.

The examples themselves run under ``pytest --doctest-modules imm_analysis``; this test checks
that each exported callable has a numpydoc ``Examples`` section holding at least one ``>>>``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import imm_analysis

_SECTION = re.compile(r"^Examples\n-{8,}\n(?P<body>.*?)(?=^\w[^\n]*\n-{3,}\n|\Z)", re.M | re.S)


def _packages_with_exports() -> list[str]:
    names = ["imm_analysis"]
    for info in pkgutil.walk_packages(imm_analysis.__path__, "imm_analysis."):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # a package behind a missing optional extra
            continue
        if isinstance(getattr(module, "_EXPORTS", None), dict):
            names.append(info.name)
    return names


def _exported() -> list[tuple[str, str]]:
    """(package, name) of every exported function and class (constants have no examples to give)."""
    out = []
    for package in _packages_with_exports():
        module = importlib.import_module(package)
        for name in sorted(module._EXPORTS):
            try:
                obj = getattr(module, name)
            except ImportError:  # behind a missing optional extra
                continue
            if inspect.isclass(obj) or inspect.isroutine(obj):
                out.append((package, name))
    return out


def test_the_walk_finds_the_packages_and_their_callables():
    found = set(_packages_with_exports())
    assert {"imm_analysis", "imm_analysis.io", "imm_analysis.cluster", "imm_analysis.quality",
            "imm_analysis.evaluate", "imm_analysis.widgets"} <= found
    names = {name for _, name in _exported()}
    assert {"load_figures", "FigureClusterer", "HDRule", "ThresholdTuner"} <= names
    assert "HD_RULE" not in names  # a constant


def test_a_missing_example_is_detected():
    def documented():
        """Do a thing.

        Examples
        --------
        >>> 1 + 1
        2
        """

    def undocumented():
        """Do a thing, without an example.

        Returns
        -------
        None
        """

    assert _example(documented) == ">>> 1 + 1\n2"
    assert _example(undocumented) is None


def _example(obj: object) -> str | None:
    doc = inspect.getdoc(obj) or ""
    m = _SECTION.search(doc)
    if m is None or ">>>" not in m.group("body"):
        return None
    return m.group("body").strip()


@pytest.mark.parametrize(("package", "name"), _exported(), ids=lambda v: v)
def test_every_public_callable_has_an_example(package, name):
    obj = getattr(importlib.import_module(package), name)
    assert _example(obj) is not None, (
        f"{package}.{name} ({obj.__module__}) has no numpydoc Examples section with a >>> example"
    )
