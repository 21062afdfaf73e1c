"""The ``imm-analysis`` command line (also ``python -m imm_analysis.cli``).

Subcommands, each a thin shell over the public functions:

* ``embed IMAGES --models PACK --out DIR``: detect, align and embed faces
  (:func:`imm_analysis.embed_images`); writes a *run folder* (frames as Parquet, embeddings as
  ``.npy``, unreadable files as CSV);
* ``cluster RUN | --images ... --models ... | --files ... --embeddings ...``: cluster with IMM's
  semantics (:func:`imm_analysis.cluster_faces`, ``--threshold``, ``--min-faces``); writes IMM-shaped
  JSON (:func:`~imm_analysis.to_imm_clusters`, :func:`~imm_analysis.to_imm_files`) and Parquet;
* ``diagnose``: "why no clusters?" (:func:`imm_analysis.diagnose_clustering`) for IMM exports or a
  local run;
* ``report``: the retail visitor report (:func:`imm_analysis.visitor_report`) from IMM exports, a
  run folder or a folder of images;
* ``convert EXPORTS OUT``: IMM JSON exports to a partitioned Parquet dataset
  (:func:`imm_analysis.io.exports_to_parquet`), locally or on a Dask cluster (``--scheduler``).

The commands that embed take ``--scheduler ADDRESS`` (with ``--cache-dir``) to embed on a Dask cluster.

Every subcommand follows the same rules (:mod:`imm_analysis.cli._common`): input errors print
one line ``imm-analysis: error: ...`` and exit 1 (``--debug`` shows tracebacks), warnings print
as one-line ``imm-analysis: warning: ...`` messages with or without ``-q``, and every input
option is checked before embedding starts. ``--version`` prints the package version.

Adding a subcommand
-------------------
Write ``imm_analysis/cli/<name>.py`` with a function ``register(subparsers)`` that adds its
parser (``subparsers.add_parser(name, parents=[common_options()], ...)``) and sets its handler
with ``parser.set_defaults(handler=run)``; ``run(args) -> int`` returns the exit status and
raises :class:`UserError` for problems with the input. Then add ``<name>`` to
:data:`SUBCOMMANDS`. Nothing else changes: :func:`main` handles errors, warnings and exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from imm_analysis.cli._common import PROG, UserError, captured_warnings, one_line

__all__ = ["main", "build_parser", "UserError", "SUBCOMMANDS"]

#: Subcommand modules of this package, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = ("embed", "cluster", "diagnose", "report", "search", "convert")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`SUBCOMMANDS` registered.

    Examples
    --------
    >>> p = build_parser()
    >>> p.parse_args(["report", "--files", "x.json"]).command
    'report'
    """
    from imm_analysis import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Look inside face clustering (Alibaba Cloud IMM exports or a local run).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"imm_analysis.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imm-analysis``. Returns the exit status (0 on success, 1 on errors, 2 on usage).

    Examples
    --------
    >>> main(["report"])  # no input given: one error line on stderr
    1
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help and --version exit 0
        return int(exc.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        with captured_warnings():
            return int(args.handler(args))
    except UserError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        name = type(exc).__name__
        text = one_line(exc) or name
        print(f"{PROG}: error: {text} ({name}; --debug shows the traceback)", file=sys.stderr)
        return 1
