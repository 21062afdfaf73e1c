"""Shared fixtures. Tests that need ``../shared`` (real models, faces, video) skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMM_SHARED", ROOT.parent / "shared")).resolve()
SAMPLE = ROOT / "data" / "sample"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared models and faces beside the project); not present on this machine")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared``; skips the test when it is absent."""
    return _need(SHARED)


@pytest.fixture(scope="session")
def pack_dir() -> Path:
    """The 128-d test model pack ``../shared/models/mbf128_det500m``."""
    return _need(SHARED / "models" / "mbf128_det500m")


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """``../shared/faces``."""
    return _need(SHARED / "faces")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The committed synthetic sample ``data/sample``."""
    return _need(SAMPLE)


@pytest.fixture(scope="module")
def dask_client():
    """A ``LocalCluster`` of 2 worker processes with 1 thread each, and its client (per test module).

    Skips when ``dask.distributed`` (the ``[dask]`` extra) is not installed.
    """
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client
