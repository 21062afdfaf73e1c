"""Each package declares its public names once: ``__all__``, the lazy table and the
type-checking imports agree, and every name resolves."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGES = ["imm_analysis", "imm_analysis.io", "imm_analysis.cluster", "imm_analysis.quality", "imm_analysis.evaluate", "imm_analysis.viz", "imm_analysis.widgets", "imm_analysis.search", "imm_analysis.audit", "imm_analysis.report", "imm_analysis.privacy"]


def _type_checking_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in ast.walk(node):
                if isinstance(imp, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in imp.names)
    return names


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_agree(name):
    pkg = importlib.import_module(name)
    exports = set(pkg._EXPORTS)
    subs = set(getattr(pkg, "_SUBMODULES", ()))
    assert set(pkg.__all__) == exports | subs
    checked = _type_checking_names(Path(pkg.__file__))
    if checked:  # a package that lists type-checking imports lists every export
        assert checked == exports, sorted(checked ^ exports)
    for export, module in pkg._EXPORTS.items():
        assert getattr(importlib.import_module(module), export) is not None
        assert export in dir(pkg)


def test_missing_extra_names_it():
    from imm_analysis._optional import require

    with pytest.raises(ImportError, match=r'imm_analysis\[dask\]'):
        require("dask.no_such_module_here", purpose="read_figures_dask")
