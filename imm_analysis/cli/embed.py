"""``imm-analysis embed IMAGES --models PACK --out DIR``: detect, align and embed faces into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from imm_analysis.cli._common import Progress, check_out, common_options
from imm_analysis.cli._local import add_local_options, embed_local, list_media, load_model, save_run

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``embed`` subcommand."""
    p = subparsers.add_parser(
        "embed", parents=[common_options()], help="detect, align and embed faces (a run folder for cluster/report)",
        description="Detect, align and embed every face of IMAGES (an image, a video or a folder) with a model "
        "pack. Writes OUT/files.parquet, figures.parquet, embeddings.npy (float32, one row per face), errors.csv "
        "(files that could not be used) and run.json.",
    )
    p.add_argument("images", metavar="IMAGES", help="an image or video, or a folder of them (searched recursively)")
    g = p.add_argument_group("embedding")
    add_local_options(g, images_positional=True)
    g.add_argument("--out", metavar="DIR", default="outputs/embed", help="run folder to write (default: %(default)s)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Embed ``args.images`` and write the run folder; prints where it is."""
    say = Progress(not args.quiet)
    from imm_analysis.cli._common import UserError

    if not args.models:
        raise UserError("embed needs --models PACK (an insightface-style model pack folder)")
    listed = list_media(args.images, "IMAGES")
    out = check_out(args.out)
    model = load_model(args.models, say)
    local = embed_local(args.images, model, cache_dir=args.cache_dir, say=say, n_listed=len(listed),
                        scheduler=args.scheduler)
    save_run(Path(out), local)
    print(f"{len(local.figures):,} faces in {len(local.files):,} files embedded to {out}"
          + (f"; {len(local.errors)} unreadable file(s) in {out / 'errors.csv'}" if len(local.errors) else ""))
    return 0
