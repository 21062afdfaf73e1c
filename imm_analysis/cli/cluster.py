"""``imm-analysis cluster``: cluster faces with IMM's semantics; IMM-shaped JSON and Parquet out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from imm_analysis.cli._common import Progress, UserError, check_out, check_path, common_options, load_npy
from imm_analysis.cli._local import LocalRun, add_run_input, has_local_input, local_input, save_run

__all__ = ["register", "run", "add_cluster_options", "cluster_run", "threshold_arg"]


def threshold_arg(text: str) -> float:
    """argparse type of ``--threshold``: a cosine similarity in [-1, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a cosine similarity is between -1 and 1, got {value:g}")
    return value


def _min_faces_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--threshold``, ``--min-faces`` and ``--seed`` (shared with ``report``)."""
    g = parser.add_argument_group("clustering (local runs)")
    g.add_argument("--threshold", type=threshold_arg, metavar="SIM",
                   help="cosine similarity at which faces belong together (model-specific; default: calibrated "
                   "from the data)")
    g.add_argument("--min-faces", type=_min_faces_arg, default=3, metavar="N",
                   help="high-definition faces, in as many images, needed to found a cluster (IMM: %(default)s)")
    g.add_argument("--seed", type=int, default=None, help="seed of the Cluster-<uuid> ids (random by default)")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``cluster`` subcommand."""
    p = subparsers.add_parser(
        "cluster", parents=[common_options()], help="cluster faces (IMM semantics) from a run folder or images",
        description="Cluster the faces of a run folder (--run, from 'imm-analysis embed'), of images (--images "
        "--models) or of IMM exports with embeddings (--files --embeddings). Writes OUT/query_figure_clusters.json "
        "and OUT/simple_query.json (IMM's response shapes), clusters.parquet and a run folder of the clustered "
        "faces that 'report --run' and 'diagnose --run' read.",
    )
    add_run_input(p)
    imm = p.add_argument_group("IMM exports with embeddings")
    imm.add_argument("--files", metavar="PATH", help="SimpleQuery JSON: a file, a folder or a glob")
    imm.add_argument("--embeddings", metavar="NPY", help=".npy of embeddings row-aligned with the faces of --files")
    add_cluster_options(p)
    p.add_argument("--out", metavar="DIR", default="outputs/cluster", help="output folder (default: %(default)s)")
    p.set_defaults(handler=run)
    return p


def imm_input(files: str, embeddings: str, say: Progress) -> LocalRun:
    """IMM exports (``--files``) with row-aligned ``--embeddings``."""
    from imm_analysis import load_files_and_figures

    check_path(files, "--files")
    check_path(embeddings, "--embeddings")
    emb = load_npy(embeddings, "--embeddings")  # checked before the exports are parsed
    say(f"loading files and faces from {files}")
    f, figures = load_files_and_figures(files, progress=say.enabled)
    if emb.ndim != 2 or len(emb) != len(figures):
        raise UserError(f"--embeddings {embeddings}: shape {emb.shape}, expected ({len(figures)}, dim): one row per "
                        "face of --files, in load_figures order")
    import pandas as pd

    return LocalRun(f, figures, emb.astype(np.float32, copy=False), pd.DataFrame(),
                    {"input": str(Path(files).absolute()), "embeddings": str(Path(embeddings).absolute())})


def cluster_run(local: LocalRun, args: argparse.Namespace, say: Progress) -> tuple[Any, dict[str, Any]]:
    """Cluster a local run: a :class:`~imm_analysis.ClusterState` and the parameters that reproduce it."""
    from imm_analysis import ClusterState

    say(f"clustering {len(local.figures):,} faces"
        + ("" if args.threshold is not None else " (calibrating the threshold from the data)"))
    state = ClusterState.from_figures(local.figures, local.embeddings, threshold=args.threshold,
                                      min_faces=args.min_faces, seed=args.seed)
    info = {
        "threshold": float(state.params["threshold"]),
        "threshold_source": "given (--threshold)" if args.threshold is not None else
        "calibrated from the data (calibrate_threshold)",
        "min_faces": int(args.min_faces),
        "seed": args.seed,
    }
    return state, info


def _summary(state: Any) -> str:
    figs = state.figures
    n_ind = int((figs["cluster_state"].astype(str) == "independent").sum())
    return (f"{len(figs):,} faces: {len(state.clusters):,} clusters, {n_ind:,} independent faces "
            f"(threshold {state.params['threshold']:.3f})")


def run(args: argparse.Namespace) -> int:
    """Cluster and write the outputs; prints a one-line summary."""
    from imm_analysis import to_imm_clusters, to_imm_files
    from imm_analysis.io.atomic import atomic_write_bytes
    from imm_analysis.io.parquet import write_frame

    say = Progress(not args.quiet)
    if bool(args.files) != bool(args.embeddings):
        raise UserError("IMM exports need both --files PATH and --embeddings NPY")
    if args.files and has_local_input(args):
        raise UserError("give either --files/--embeddings (IMM exports) or --run/--images (a local run), not both")
    if not args.files and not has_local_input(args):
        raise UserError("no input: give --run DIR, --images PATH --models PACK, or --files PATH --embeddings NPY")
    out = check_out(args.out)
    local = imm_input(args.files, args.embeddings, say) if args.files else local_input(args, say)
    state, info = cluster_run(local, args, say)
    clustered = LocalRun(local.files, state.figures, local.embeddings, local.errors, {**local.info, **info})
    save_run(Path(out), clustered)
    write_frame(state.clusters, Path(out) / "clusters.parquet")
    for name, doc in (("query_figure_clusters.json", to_imm_clusters(state.clusters)),
                      ("simple_query.json", to_imm_files(local.files, state.figures))):
        atomic_write_bytes(Path(out) / name, json.dumps(doc, indent=1, default=str, ensure_ascii=False).encode())
    print(f"{_summary(state)}; written to {out}")
    return 0
