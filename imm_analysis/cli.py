"""Command line: ``imm-analysis report`` (also ``python -m imm_analysis.cli report``).

Two kinds of input:

* IMM exports: ``--files PATH`` (SimpleQuery JSON pages: files and their faces) and optionally
  ``--clusters PATH`` (QueryFigureClusters pages: cluster names, gender, age);
* a local run: ``--images DIR --models PACK`` embeds the faces with the model pack, clusters
  them with default settings, then reports (a face's time: EXIF capture time, else the file's
  modification time, else ``--time-pattern``).

Writes ``OUT/report.html`` and ``OUT/tables/*.csv``; prints where the report is. User errors
(missing files, bad patterns, unknown time zones) print one line naming the problem and exit
with status 1 (2 for bad arguments); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "UserError"]

PROG = "imm-analysis"


class UserError(Exception):
    """A problem with the user's input: reported as one line, without a traceback."""


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Look inside face clustering (IMM or local).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rep = sub.add_parser(
        "report",
        help="retail visitor report (unique, new and returning visitors) from face clusters",
        description="Build the retail visitor report from IMM exports (--files [--clusters]) or from a folder "
        "of images (--images --models).",
    )
    src = rep.add_argument_group("input (IMM exports, or a local run)")
    src.add_argument("--files", metavar="PATH", help="SimpleQuery JSON: a file, a folder or a glob")
    src.add_argument("--clusters", metavar="PATH", help="QueryFigureClusters JSON: a file, a folder or a glob")
    src.add_argument("--images", metavar="DIR", help="folder of images/videos to embed and cluster locally")
    src.add_argument("--models", metavar="PACK", help="insightface-style model pack folder (with --images)")
    src.add_argument("--cache-dir", metavar="DIR", help="embedding cache folder for --images")
    opt = rep.add_argument_group("report")
    opt.add_argument("--out", metavar="DIR", default="outputs/report", help="output folder (default: %(default)s)")
    opt.add_argument("--tz", default="UTC", help="time zone of the report, e.g. Asia/Shanghai (default: %(default)s)")
    loc = opt.add_mutually_exclusive_group()
    loc.add_argument("--location-pattern", metavar="REGEX",
                     help=r"regex with one group applied to each URI, e.g. 'oss://[^/]+/([^/]+)/'")
    loc.add_argument("--location", metavar="COLUMN",
                     help="location column (figures or files), or custom_labels:KEY")
    opt.add_argument("--time-pattern", metavar="REGEX",
                     help=r"regex with one group: capture time in the URI when a file has no ProduceTime or "
                     r"FileCreateTime, e.g. '(\d{8}T\d{6})'")
    opt.add_argument("--session-gap", default="30min", help="max gap inside one visit (default: %(default)s)")
    opt.add_argument("--include-staff", action="store_true", help="keep visitors the staff rule flags")
    opt.add_argument("--returning-scope", choices=("location", "any"), default="location",
                     help="returning = seen earlier at the same location, or anywhere (default: %(default)s)")
    opt.add_argument("--title", default="Visitor report", help="report title")
    opt.add_argument("--no-tables", action="store_true", help="do not write the CSV tables")
    opt.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    opt.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _check_path(value: str, option: str) -> str:
    if glob.has_magic(value):
        if not glob.glob(value):
            raise UserError(f"{option} {value}: no file matches this pattern")
    elif not Path(value).exists():
        raise UserError(f"{option} {value}: no such file or folder")
    return value


def _load_imm(args: argparse.Namespace, say: _Progress):
    from imm_analysis.io.imm_json import load_clusters, load_files_and_figures

    _check_path(args.files, "--files")
    if args.clusters:
        _check_path(args.clusters, "--clusters")
    say(f"loading files and faces from {args.files}")
    files, figures = load_files_and_figures(args.files, progress=say.enabled)  # each page parsed once
    clusters = None
    if args.clusters:
        say(f"loading clusters from {args.clusters}")
        clusters = load_clusters(args.clusters, progress=say.enabled)
    say(f"{len(files):,} files, {len(figures):,} faces" + (f", {len(clusters):,} clusters" if clusters is not None else ""))
    return figures, files, clusters


def _run_local(args: argparse.Namespace, say: _Progress):
    _check_path(args.images, "--images")
    _check_path(args.models, "--models")
    if not Path(args.images).is_dir():
        raise UserError(f"--images {args.images}: not a folder")
    try:
        from imm_analysis.cluster.clusterer import cluster_faces
        from imm_analysis.faces.embed import embed_images
        from imm_analysis.faces.model import FaceModel
    except ImportError as exc:
        raise UserError(f"the local pipeline is not available: {exc}") from None
    say(f"loading model pack {args.models}")
    model = FaceModel(args.models)
    say(f"detecting and embedding faces in {args.images}")
    result = embed_images(args.images, model, cache_dir=args.cache_dir, progress=say.enabled)
    errors = getattr(result, "errors", None)
    if errors is not None and len(errors):
        say(f"warning: {len(errors)} file(s) could not be read (first: {_first_error(errors)})")
    if len(result.figures) == 0:
        raise UserError(f"--images {args.images}: no face found in {len(result.files):,} file(s)")
    say(f"{len(result.files):,} files, {len(result.figures):,} faces; clustering")
    figures, clusters = cluster_faces(result.figures, result.embeddings)
    return figures, result.files, clusters


def _first_error(errors) -> str:
    try:
        row = errors.iloc[0] if hasattr(errors, "iloc") else errors[0]
        return str(dict(row)) if not isinstance(row, str) else row
    except Exception:  # noqa: BLE001 - only for a message
        return "?"


def _report(args: argparse.Namespace) -> int:
    from imm_analysis.report import tables as T

    say = _Progress(not args.quiet)
    local = args.images is not None or args.models is not None
    if local and (args.files or args.clusters):
        raise UserError("give either --files/--clusters (IMM exports) or --images/--models (local run), not both")
    if local and not (args.images and args.models):
        raise UserError("a local run needs both --images DIR and --models PACK")
    if not local and not args.files:
        raise UserError("no input: give --files PATH [--clusters PATH] (IMM exports) or --images DIR --models PACK")
    try:
        T.check_tz(args.tz)
        T.check_gap(args.session_gap)
        for option, pattern in (("--location-pattern", args.location_pattern), ("--time-pattern", args.time_pattern)):
            if pattern is not None:
                T.compile_one_group(pattern, option)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    figures, files, clusters = _run_local(args, say) if local else _load_imm(args, say)

    from imm_analysis.report.visitors import visitor_report

    time_source: str | list[str] | None = args.time_pattern
    if local:  # photos copied off a camera rarely keep EXIF: fall back on the file's modification time
        time_source = ["produce_time", "file_create_time", "file_modified_time"]
        time_source += [args.time_pattern] if args.time_pattern else []
        say("local run: a face's time is the photo's EXIF capture time, else the file's modification time")
    say("building the report")
    report = visitor_report(
        figures, files=files, clusters=clusters, tz=args.tz, session_gap=args.session_gap,
        location=args.location_pattern or args.location, time_source=time_source,
        exclude_staff=not args.include_staff, returning_scope=args.returning_scope, title=args.title,
    )
    s = report.summary
    if s["days"] == 0:
        say("warning: no face has a usable time (ProduceTime, FileCreateTime or --time-pattern): the tables are empty")
    out = Path(args.out)
    html = report.to_html(out / "report.html")
    if not args.no_tables:
        report.to_csv(out / "tables")
    say(
        f"{s['period']}: {s['unique_visitors']:,} unique visitors (upper bound {s['unique_visitors_upper']:,}), "
        f"{s['visits']:,} visits, {s['staff_flagged']} staff {'excluded' if not args.include_staff else 'flagged'}"
    )
    print(f"Report written to {html}" + ("" if args.no_tables else f" (tables in {out / 'tables'})"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imm-analysis``. Returns the exit status (0 on success)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _report(args)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if args.debug:
            raise
        name = type(exc).__name__
        print(f"{PROG}: error: {exc if str(exc) else name} ({name}; --debug shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
