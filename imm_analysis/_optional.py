"""Optional dependencies: import a heavy library, or say which pip extra brings it.

``pip install imm_analysis`` gives the loaders, quality, clustering and the report. The
local face pipeline, plots, widgets, UMAP, the live SDK, FAISS and Dask are extras; a
missing one raises an :class:`ImportError` that names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: import name -> the extra of ``imm_analysis`` that installs it
EXTRAS: dict[str, str] = {
    "onnxruntime": "faces",
    "onnx": "faces",
    "cv2": "faces",
    "insightface": "faces",
    "matplotlib": "viz",
    "ipywidgets": "widgets",
    "umap": "umap",
    "faiss": "fast",
    "alibabacloud_imm20200930": "imm",
    "alibabacloud_tea_openapi": "imm",
    "dask": "dask",
    "distributed": "dask",
}


def require(module: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ImportError naming the extra that installs it.

    Parameters
    ----------
    module : str
        Dotted import name, for example ``"onnxruntime"`` or ``"matplotlib.pyplot"``.
    purpose : str, optional
        What needs it, for the message (``"FaceModel"``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    ImportError
        When the module cannot be imported; the message names ``pip install "imm_analysis[EXTRA]"``.

    Examples
    --------
    >>> from imm_analysis._optional import require
    >>> require("json").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        what = f"{purpose} needs {top}" if purpose else f"{top} is not installed"
        hint = f'pip install "imm_analysis[{extra}]"' if extra else f"pip install {top}"
        raise ImportError(f"{what}: {hint}") from exc
