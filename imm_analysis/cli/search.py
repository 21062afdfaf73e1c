"""The ``index`` and ``search`` subcommands of ``imm-analysis``.

``imm-analysis index --images DIR --models PACK --library DIR [--fps 2]`` builds a search
library in ``DIR`` (or adds the new files to the library already there);
``imm-analysis search --library DIR --image QUERY.jpg [--max-results N] [--out results.csv]``
prints the matches (or writes them as CSV).

:func:`register_index` and :func:`register_search` add the subcommands to an
:mod:`argparse` subparsers object; each sets ``handler`` (a function of the parsed arguments
returning the exit status) with :meth:`argparse.ArgumentParser.set_defaults`; :func:`register`
adds both. Errors follow the CLI's rules (:func:`imm_analysis.cli.main`): a user error (a
missing folder, a query without a face, an unreadable library) prints one line
``imm-analysis: error: ...`` on stderr and exits 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imm_analysis.cli._common import Progress, common_options, warn
from imm_analysis.cli._common import UserError as _UserError
from imm_analysis.cli._local import load_model

__all__ = ["register", "register_index", "register_search", "run_index", "run_search"]


def register_index(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``index`` to ``subparsers`` (from :meth:`argparse.ArgumentParser.add_subparsers`).

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="imm-analysis")
    >>> _ = register_index(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["index", "--images", "photos", "--models", "pack", "--library", "lib"])
    >>> args.fps, args.handler.__name__
    (2.0, 'run_index')
    """
    p = subparsers.add_parser(
        "index", parents=[common_options()], help="index the faces of photos and videos for search by face",
        description="Detect and embed the faces of a folder of photos and videos, link video faces into tracks, "
        "and save a search library (a folder that later runs extend).",
    )
    p.add_argument("--images", metavar="DIR", required=True, help="folder of photos and videos")
    p.add_argument("--models", metavar="PACK", required=True, help="insightface-style model pack folder")
    p.add_argument("--library", metavar="DIR", required=True, help="library folder (created, or extended)")
    p.add_argument("--fps", type=float, default=2.0, help="video samples per second (default: %(default)s)")
    p.set_defaults(handler=run_index)
    return p


def register_search(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``search`` to ``subparsers`` (from :meth:`argparse.ArgumentParser.add_subparsers`).

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="imm-analysis")
    >>> _ = register_search(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["search", "--library", "lib", "--image", "q.jpg", "--max-results", "3"])
    >>> args.max_results, args.handler.__name__
    (3, 'run_search')
    """
    p = subparsers.add_parser(
        "search", parents=[common_options()], help="find the photos and video clips of the person in an image",
        description="Search a library made by 'index' with the largest face of an image.",
    )
    p.add_argument("--library", metavar="DIR", required=True, help="library folder made by 'index'")
    p.add_argument("--image", metavar="QUERY", required=True, help="image with the person's face (the largest is used)")
    p.add_argument("--max-results", type=int, default=10, help="most matches (default: %(default)s)")
    p.add_argument("--threshold", type=float, help="least cosine similarity (default: the library's calibrated one)")
    p.add_argument("--media-type", choices=("image", "video"), help="only photos or only videos")
    p.add_argument("--models", metavar="PACK", help="model pack (default: the one the library was indexed with)")
    p.add_argument("--out", metavar="CSV", help="write the matches to this CSV file instead of printing them")
    p.set_defaults(handler=run_search)
    return p


def _folder(value: str, option: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise _UserError(f"{option} {value}: no such folder")
    if not path.is_dir():
        raise _UserError(f"{option} {value}: not a folder")
    return path


def run_index(args: argparse.Namespace) -> int:
    """Handler of ``index``: build or extend the library, print what it holds."""
    from imm_analysis.search.library import SearchLibrary, build_search_library

    say = Progress(not args.quiet)
    images = _folder(args.images, "--images")
    if not args.fps > 0:
        raise _UserError(f"--fps {args.fps}: must be > 0")
    model = load_model(args.models, say)
    lib_dir = Path(args.library).expanduser()
    if (lib_dir / "library.json").is_file():
        say(f"adding new files of {images} to the library in {lib_dir}")
        lib = SearchLibrary.load(lib_dir, model=model)
        before = len(lib.media)
        lib.add(images, progress=not args.quiet)
        added = len(lib.media) - before
    else:
        if lib_dir.exists() and any(lib_dir.iterdir()):
            raise _UserError(f"--library {args.library}: the folder exists and is not a search library")
        say(f"indexing {images} at {args.fps:g} samples per second of video")
        lib = build_search_library(images, model, fps=args.fps, path=lib_dir, progress=not args.quiet)
        added = len(lib.media)
    if len(lib.errors):
        first = lib.errors.iloc[0]
        warn(f"{len(lib.errors)} file(s) could not be read (first: {first['uri']}: {first['reason']})")
    n_video = int((lib.media["media_type"] == "video").sum())
    n_tracks = int(lib.items["track_id"].notna().sum())
    t = f"{lib.calibration.threshold:.3f}" if lib.calibration else "none (too few faces: pass --threshold to search)"
    print(f"Library {lib_dir}: {len(lib.media) - n_video} photos, {n_video} videos ({n_tracks} face tracks), "
          f"{len(lib.items)} searchable faces, threshold {t}; {added} file(s) added")
    return 0


def run_search(args: argparse.Namespace) -> int:
    """Handler of ``search``: print the matches, or write them to ``--out``."""
    from imm_analysis.search.library import SearchLibrary

    lib_dir = _folder(args.library, "--library")
    if not (lib_dir / "library.json").is_file():
        raise _UserError(f"--library {args.library}: not a search library (no library.json; run 'index' first)")
    if not Path(args.image).expanduser().is_file():
        raise _UserError(f"--image {args.image}: no such file")
    if args.max_results < 1:
        raise _UserError(f"--max-results {args.max_results}: must be at least 1")
    lib = SearchLibrary.load(lib_dir)
    pack = args.models or lib.model_pack
    if not pack:
        raise _UserError("the library does not record its model pack: pass --models PACK")
    lib._model(load_model(pack, Progress(False)))  # a search prints its matches only
    if args.threshold is None and lib.calibration is None:
        raise _UserError(f"--library {args.library}: too few faces for a calibrated threshold; pass --threshold")
    from imm_analysis.search.query import NoFaceError

    try:
        hits = lib.search(str(Path(args.image).expanduser()), max_results=args.max_results,
                          threshold=args.threshold, media_type=args.media_type)
    except NoFaceError as exc:
        raise _UserError(str(exc)) from None
    if args.out:
        from imm_analysis.io.atomic import atomic_write_bytes

        out = Path(args.out).expanduser()
        if not out.parent.is_dir():
            raise _UserError(f"--out {args.out}: the folder {out.parent} does not exist")
        atomic_write_bytes(out, hits.to_csv(index=False).encode())
        print(f"{len(hits)} match(es) written to {out}")
    else:
        import pandas as pd

        cols = ["media_type", "uri", "start_time", "end_time", "similarity", "score", "label_name"]
        with pd.option_context("display.width", 200, "display.max_colwidth", 60):
            print(hits[cols].to_string(index=False) if len(hits) else "no match above the threshold")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``index`` and ``search`` subcommands (the CLI package's registration hook)."""
    register_index(subparsers)
    register_search(subparsers)
