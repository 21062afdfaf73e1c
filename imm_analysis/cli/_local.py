"""Local runs for the subcommands: list the images, check options early, embed, save and read run folders.

A *run folder* is what ``imm-analysis embed`` (and ``cluster``) write: ``files.parquet``,
``figures.parquet``, ``embeddings.npy`` (float32, row-aligned with the figures), ``errors.csv``
(files that could not be used) and ``run.json`` (input, model id, package version, counts).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imm_analysis.cli._common import Progress, UserError, check_path, load_npy, warn

__all__ = ["LocalRun", "list_media", "check_uri_pattern", "embed_local", "save_run", "read_run", "is_run_dir",
           "add_local_options", "report_unreadable"]

#: Files of a run folder.
RUN_FILES = ("files.parquet", "figures.parquet", "embeddings.npy")
#: Unreadable files listed one per line before the rest are summarised.
SHOW_ERRORS = 10


@dataclass
class LocalRun:
    """Frames, embeddings and provenance of a local run (embedded now or read from a run folder)."""

    files: pd.DataFrame
    figures: pd.DataFrame
    embeddings: np.ndarray
    errors: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def add_local_options(group: argparse._ArgumentGroup, *, images_positional: bool = False) -> None:
    """``--models`` and ``--cache-dir`` (and ``--images`` unless it is positional)."""
    if not images_positional:
        group.add_argument("--images", metavar="PATH", help="an image or video, or a folder of them, to embed locally")
    group.add_argument("--models", metavar="PACK", help="insightface-style model pack folder (with images)")
    group.add_argument("--cache-dir", metavar="DIR", help="embedding cache folder (a later run skips cached files)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="embed on a Dask cluster (e.g. tcp://10.0.0.5:8786); needs --cache-dir on storage "
                       "every worker sees")


def list_media(images: str, option: str = "--images") -> list[Path]:
    """The files ``embed_images`` will read: ``images`` itself if a file, else its media files (recursive).

    Raises :class:`UserError` when ``images`` does not exist or a folder holds no image or video.
    """
    from imm_analysis.io.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    check_path(images, option)
    p = Path(images)
    if p.is_file():
        return [p]
    exts = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    found = sorted(f for f in p.rglob("*") if f.suffix.lower() in exts and (f.is_file() or f.is_symlink()))
    if not found:
        raise UserError(f"{option} {images}: no images or videos found (looked for {', '.join(sorted(exts))})")
    return found


def check_uri_pattern(pattern: str | None, option: str, uris: list[str]) -> None:
    """Fail early when a regex with one group matches none of ``uris`` (the local files' URIs)."""
    if pattern is None or not uris:
        return
    rx = re.compile(pattern)
    if not any(rx.search(u) for u in uris):
        raise UserError(f"{option} {pattern!r} matched none of the {len(uris)} file path(s) (first: {uris[0]!r}); "
                        "it needs one group (...) around the part to take")


def report_unreadable(errors: pd.DataFrame, n_listed: int, say: Progress) -> None:
    """Warn about every file that could not be used (name and reason), ``-q`` or not."""
    if errors is None or not len(errors):
        return
    from imm_analysis.report.notes import unreadable_table

    table = unreadable_table(errors)
    warn(f"{len(table)} of {n_listed} file(s) could not be read and are left out:")
    for row in table.head(SHOW_ERRORS).itertuples(index=False):
        warn(f"  {row.file}: {row.reason}")
    if len(table) > SHOW_ERRORS:
        warn(f"  ... and {len(table) - SHOW_ERRORS} more (all in the output's unreadable/errors table)")


def load_model(models: str, say: Progress):
    """A :class:`~imm_analysis.FaceModel` for ``--models`` (checked to be a folder first)."""
    check_path(models, "--models", kind="dir")
    try:
        from imm_analysis import FaceModel
    except ImportError as exc:
        raise UserError(f"the local pipeline is not available: {exc}") from None
    say(f"loading model pack {models}")
    try:
        return FaceModel(models)
    except ImportError as exc:  # onnxruntime / opencv missing
        raise UserError(f"the local pipeline is not available: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:  # PackError: missing or unusable model files
        raise UserError(f"--models {models}: {exc}") from None


def embed_local(images: str, model: Any, *, cache_dir: str | None, say: Progress, n_listed: int,
                scheduler: str | None = None) -> LocalRun:
    """Embed ``images`` with ``model`` (on the Dask cluster at ``scheduler`` if given); unreadable files
    are warned about; no face at all is a UserError."""
    from imm_analysis import embed_images

    if scheduler and not cache_dir:
        raise UserError("--scheduler needs --cache-dir DIR (a folder every Dask worker and this machine see)")
    say(f"detecting and embedding faces in {images}" + (f" on the Dask cluster at {scheduler}" if scheduler else ""))
    try:
        res = embed_images(images, model, cache_dir=cache_dir, progress=say.enabled, client=scheduler or None)
    except ConnectionError as exc:
        raise UserError(f"--scheduler {scheduler}: {exc}") from None
    except FileNotFoundError as exc:  # PackError: workers without the model pack
        if not scheduler:
            raise
        raise UserError(f"--scheduler {scheduler}: {exc}") from None
    report_unreadable(res.errors, n_listed, say)
    n_read = len(res.files)
    if n_read == 0:
        raise UserError(f"--images {images}: none of the {n_listed} file(s) could be read (reasons above)")
    if len(res.figures) == 0:
        raise UserError(f"--images {images}: no face found in {n_read} readable file(s)")
    say(f"{n_read:,} files, {len(res.figures):,} faces")
    info = {"input": str(Path(images).absolute()), "model_id": res.model_id}
    return LocalRun(res.files, res.figures, np.asarray(res.embeddings, dtype=np.float32), res.errors, info)


def save_run(out: Path, run: LocalRun, extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write a run folder (atomically, file by file)."""
    from imm_analysis import __version__
    from imm_analysis.io.atomic import atomic_save_npy, atomic_write_bytes
    from imm_analysis.io.parquet import write_frame

    out.mkdir(parents=True, exist_ok=True)
    paths = {"files": write_frame(run.files, out / "files.parquet"),
             "figures": write_frame(run.figures, out / "figures.parquet")}
    atomic_save_npy(out / "embeddings.npy", np.asarray(run.embeddings, dtype=np.float32))
    paths["embeddings"] = out / "embeddings.npy"
    atomic_write_bytes(out / "errors.csv", run.errors.to_csv(index=False).encode("utf-8"))
    paths["errors"] = out / "errors.csv"
    meta = {**run.info, **(extra or {}), "version": __version__, "files": len(run.files), "faces": len(run.figures),
            "unreadable_files": len(run.errors)}
    atomic_write_bytes(out / "run.json", json.dumps(meta, indent=2, default=str).encode("utf-8"))
    paths["run"] = out / "run.json"
    return paths


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run folder written by ``embed`` or ``cluster``."""
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in RUN_FILES)


def read_run(path: str, option: str = "RUN") -> LocalRun:
    """Read a run folder; a UserError names what is missing."""
    from imm_analysis.io.parquet import read_frame

    check_path(path, option, kind="dir")
    p = Path(path)
    missing = [f for f in RUN_FILES if not (p / f).is_file()]
    if missing:
        raise UserError(f"{option} {path}: not a run folder of 'imm-analysis embed' (missing {', '.join(missing)})")
    files = read_frame(p / "files.parquet", kind="files")
    figures = read_frame(p / "figures.parquet", kind="figures")
    emb = load_npy(p / "embeddings.npy", option)
    if emb.ndim != 2 or len(emb) != len(figures):
        raise UserError(f"{option} {path}: embeddings.npy has shape {emb.shape}, expected ({len(figures)}, dim)")
    errors = pd.DataFrame()
    if (p / "errors.csv").is_file():
        try:
            errors = pd.read_csv(p / "errors.csv", dtype=str)
        except pd.errors.EmptyDataError:  # a run without errors and without their columns (IMM exports)
            pass
    info: Any = {}
    if (p / "run.json").is_file():
        try:
            info = json.loads((p / "run.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{option} {path}: run.json is not valid JSON ({exc})") from None
        if not isinstance(info, dict):
            raise UserError(f"{option} {path}: run.json holds a JSON {type(info).__name__}, not an object")
    return LocalRun(files, figures, emb.astype(np.float32, copy=False), errors, info)


def add_run_input(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The local inputs of cluster/diagnose/report: a run folder (``--run``) or images and a model pack."""
    g = parser.add_argument_group("local input (a run folder, or images and a model pack)")
    g.add_argument("--run", metavar="DIR", help="run folder written by 'imm-analysis embed' or 'cluster'")
    add_local_options(g)
    return g


def has_local_input(args: argparse.Namespace) -> bool:
    """Whether any local input option was given."""
    return any(getattr(args, k, None) for k in ("run", "images", "models"))


def check_local_options(args: argparse.Namespace) -> None:
    """Exactly one local input form: ``--run DIR`` or ``--images PATH --models PACK``."""
    if args.run and (args.images or args.models):
        raise UserError("give either --run DIR or --images PATH --models PACK, not both")
    if not args.run and not (args.images and args.models):
        missing = "--models PACK" if args.images else "--images PATH"
        raise UserError(f"a local run needs both --images PATH and --models PACK ({missing} is missing)")


def local_input(args: argparse.Namespace, say: Progress, check_uris: Any = None) -> LocalRun:
    """Read ``--run`` or embed ``--images`` with ``--models``; ``check_uris(uris)`` runs before any embedding."""
    check_local_options(args)
    if args.run:
        say(f"reading run folder {args.run}")
        run = read_run(args.run, "--run")
        if check_uris is not None:
            check_uris(run.files["uri"].dropna().astype(str).tolist() if "uri" in run.files else [])
        return run
    listed = list_media(args.images)
    if check_uris is not None:
        check_uris([str(p.absolute()) for p in listed])
    model = load_model(args.models, say)
    return embed_local(args.images, model, cache_dir=args.cache_dir, say=say, n_listed=len(listed),
                       scheduler=getattr(args, "scheduler", None))
