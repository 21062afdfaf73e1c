"""Small hand-made face collections for the clustering tests (imported by tests/test_cluster_*.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def people(sizes, *, dim=32, noise=0.05, seed=0):
    """Embeddings of ``len(sizes)`` people (orthogonal centres) with ``sizes[i]`` faces each, and labels."""
    rng = np.random.default_rng(seed)
    if len(sizes) <= dim:
        centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][: len(sizes)]
    else:
        centres = rng.normal(size=(len(sizes), dim)) / np.sqrt(dim)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[labels] + noise * rng.normal(size=(len(labels), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def figures_for(n, *, hd=None, files=None, start=0):
    """A figures frame of ``n`` faces: each in its own image unless ``files`` says otherwise."""
    hd = np.ones(n, dtype=bool) if hd is None else np.asarray(hd, dtype=bool)
    files = [f"file-{start + i}" for i in range(n)] if files is None else list(files)
    size = np.where(hd, 120, 40)
    return pd.DataFrame(
        {
            "file_id": files,
            "uri": [f"oss://bucket/{f}.jpg" for f in files],
            "media_type": "image",
            "figure_id": [f"face-{start + i}" for i in range(n)],
            "face_quality": np.where(hd, 0.95, 0.5),
            "width": size,
            "height": size,
            "pitch": 0.0,
            "roll": 0.0,
            "yaw": 0.0,
            "age": 30.0 + np.arange(n) % 7,
            "gender": np.where(np.arange(n) % 3 == 0, "female", "male"),
        }
    )
