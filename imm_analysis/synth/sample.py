"""Write a synthetic dataset as IMM JSON pages plus ground truth, like the committed ``data/sample``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes
from imm_analysis.quality import hd_mask
from imm_analysis.synth.datasets import SynthDataset, make_dataset
from imm_analysis.synth.imm_pages import LOCAL_TZ

__all__ = ["write_sample"]


def write_sample(out: str | Path, dataset: SynthDataset | None = None, *, page_size: int = 100, **params: Any) -> Path:
    """Write a dataset as IMM JSON pages plus ground truth, like the committed ``data/sample``.

    Layout: ``clusters/page-NNN.json`` (QueryFigureClusters), ``files/page-NNN.json``
    (SimpleQuery after clustering), ``before/page-NNN.json`` (SimpleQuery before any
    clustering run), ``embeddings.npy`` (float32, row-aligned with
    ``load_figures(out / "files")``), ``truth.csv`` (``figure_id, person_id``, same rows)
    and ``README.md``.

    Parameters
    ----------
    out : path
        Folder to (re)write; its ``clusters``, ``files`` and ``before`` pages are replaced.
    dataset : SynthDataset, optional
        Default: ``make_dataset(**params)``.
    page_size : int, default=100
    **params
        Passed to :func:`make_dataset` when ``dataset`` is None.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from imm_analysis import load_figures
    >>> out = write_sample(tempfile.mkdtemp(), n_people=3, n_strangers=2, seed=1)
    >>> len(load_figures(out / "files")) == len(np.load(out / "embeddings.npy"))
    True
    """
    ds = dataset if dataset is not None else make_dataset(**params)
    out = Path(out)
    after = ds.to_imm_pages(True, page_size)
    listings = {"clusters": after["clusters"], "files": after["files"], "before": ds.to_imm_pages(False, page_size)["files"]}
    for sub, pages in listings.items():
        folder = out / sub
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("page-*.json"):
            old.unlink()
        for i, page in enumerate(pages):
            text = json.dumps(page, ensure_ascii=False, separators=(",", ":"))
            atomic_write_bytes(folder / f"page-{i:03d}.json", (text + "\n").encode("utf-8"))
    atomic_save_npy(out / "embeddings.npy", ds.embeddings)
    atomic_write_bytes(out / "truth.csv", ds.truth().to_csv(index=False).encode("utf-8"))
    atomic_write_bytes(out / "README.md", _readme(ds, params, page_size).encode("utf-8"))
    return out


def _readme(ds: SynthDataset, params: dict, page_size: int) -> str:
    figures, clusters = ds.clustered()
    is_hd = hd_mask(figures)[0]
    media = ds.files["media_type"].astype(str)
    args = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "defaults"
    t = ds.files["produce_time"].dt.tz_convert(LOCAL_TZ)
    return f"""# data/sample: a small synthetic IMM dataset

Made by `python -m imm_analysis.synth --out data/sample` (`imm_analysis.synth.make_dataset({args})`,
pages of {page_size}). Everything here is synthetic: no real person, image or model output.

- {len(ds.people)} people ({int((~ds.people["stranger"]).sum())} regular customers, \
{int(ds.people["stranger"].sum())} strangers seen once), {len(figures)} faces \
({int(is_hd.sum())} high-definition), {len(ds.files)} files ({int((media == "image").sum())} images, \
{int((media == "video").sum())} videos), captured {t.min():%Y-%m-%d} to {t.max():%Y-%m-%d} (+08:00) in \
{ds.files["custom_labels"].map(lambda d: d["store"]).nunique()} stores, 2 cameras each.
- {len(clusters)} clusters after clustering; {int((figures["cluster_state"] == "independent").sum())} independent faces.

| path | what |
|---|---|
| `clusters/page-*.json` | QueryFigureClusters pages (`FigureClusters`, `NextToken`, `TotalCount`) |
| `files/page-*.json` | SimpleQuery pages (`Files` with `Figures`) after clustering |
| `before/page-*.json` | the same SimpleQuery pages before any clustering run (`figure-cluster-id-unavailable`) |
| `embeddings.npy` | float32 [{len(figures)}, {ds.embeddings.shape[1]}], L2-normalised |
| `truth.csv` | `figure_id, person_id`: the true person of each face |

**Row alignment.** Row *i* of `embeddings.npy` and of `truth.csv` is row *i* of
`imm_analysis.load_figures("data/sample/files")` (files in page order, faces in file order);
`before/` loads in the same order. Join on `figure_id` when in doubt.
"""
