"""``imm-analysis diagnose``: "why does clustering give no (or few) clusters?", in words."""

from __future__ import annotations

import argparse
from typing import Any

from imm_analysis.cli._common import Progress, UserError, check_path, common_options
from imm_analysis.cli._local import add_run_input, has_local_input, local_input

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``diagnose`` subcommand."""
    from imm_analysis.cli.cluster import threshold_arg

    p = subparsers.add_parser(
        "diagnose", parents=[common_options()], help="why clustering gave no (or few) clusters, in words",
        description="Explain the clustering of IMM exports (--files) or of a local run (--run, or --images "
        "--models): faces indexed, clustering run or not, high-definition faces and why the others fail, and "
        "(with embeddings) how many clusters could form.",
    )
    imm = p.add_argument_group("IMM exports")
    imm.add_argument("--files", metavar="PATH", help="SimpleQuery JSON: a file, a folder or a glob")
    add_run_input(p)
    g = p.add_argument_group("diagnosis")
    g.add_argument("--min-faces", type=int, default=3, metavar="N",
                   help="high-definition faces in distinct images needed to found a cluster (default: %(default)s)")
    g.add_argument("--threshold", type=threshold_arg, metavar="SIM",
                   help="similarity linking two faces, for local runs (default: the run's threshold, else "
                   "calibrated from the embeddings)")
    p.set_defaults(handler=run)
    return p


def _threshold(args: argparse.Namespace, local: Any, say: Progress) -> float:
    if args.threshold is not None:
        return float(args.threshold)
    if local.info.get("threshold") is not None:
        return float(local.info["threshold"])
    from imm_analysis import calibrate_threshold

    say("calibrating the similarity threshold from the embeddings")
    return float(calibrate_threshold(local.embeddings))


def run(args: argparse.Namespace) -> int:
    """Print the diagnosis of the input's clustering."""
    from imm_analysis import diagnose_clustering

    say = Progress(not args.quiet)
    if args.min_faces < 1:
        raise UserError(f"--min-faces must be at least 1, got {args.min_faces}")
    if args.files and has_local_input(args):
        raise UserError("give either --files PATH (IMM exports) or --run/--images (a local run), not both")
    if args.files:
        from imm_analysis import load_figures

        check_path(args.files, "--files")
        say(f"loading faces from {args.files}")
        diagnosis = diagnose_clustering(load_figures(args.files, progress=say.enabled), min_faces=args.min_faces)
    elif has_local_input(args):
        local = local_input(args, say)
        threshold = _threshold(args, local, say)
        diagnosis = diagnose_clustering(local.figures, min_faces=args.min_faces, embeddings=local.embeddings,
                                        threshold=threshold)
    else:
        raise UserError("no input: give --files PATH (IMM exports), --run DIR or --images PATH --models PACK")
    print(diagnosis)
    return 0
