"""``imm-analysis report``: the retail visitor report from IMM exports, a run folder or images.

Inputs, one of:

* IMM exports: ``--files PATH`` (SimpleQuery pages: files and their faces) and optionally
  ``--clusters PATH`` (QueryFigureClusters pages: cluster names, gender, age);
* a local run: ``--run DIR`` (from ``imm-analysis embed`` or ``cluster``) or ``--images PATH
  --models PACK``; faces are clustered (``--threshold``, ``--min-faces``) unless the run folder is
  already clustered. A face's time is its EXIF capture time, else ``--time-pattern`` on the file's
  path, else the file's modification time (which the report then warns about).

Writes ``OUT/report.html`` and ``OUT/tables/*.csv`` (with ``parameters.json``: everything needed to
rebuild the report) and prints where the report is.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imm_analysis.cli._common import Progress, UserError, check_out, check_path, common_options, open_input, warn
from imm_analysis.cli._local import add_run_input, check_uri_pattern, has_local_input, local_input

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand."""
    from imm_analysis.cli.cluster import add_cluster_options

    rep = subparsers.add_parser(
        "report", parents=[common_options()],
        help="retail visitor report (unique, new and returning visitors) from face clusters",
        description="Build the retail visitor report from IMM exports (--files [--clusters]), a run folder "
        "(--run) or a folder of images (--images --models).",
    )
    src = rep.add_argument_group("IMM exports")
    src.add_argument("--files", metavar="PATH", help="SimpleQuery JSON: a file, a folder or a glob")
    src.add_argument("--clusters", metavar="PATH", help="QueryFigureClusters JSON: a file, a folder or a glob")
    add_run_input(rep)
    add_cluster_options(rep)
    opt = rep.add_argument_group("report")
    opt.add_argument("--out", metavar="DIR", default="outputs/report", help="output folder (default: %(default)s)")
    opt.add_argument("--tz", default="UTC", help="time zone of the report, e.g. Asia/Shanghai (default: %(default)s)")
    loc = opt.add_mutually_exclusive_group()
    loc.add_argument("--location-pattern", metavar="REGEX",
                     help=r"regex with one group applied to each URI, e.g. 'oss://[^/]+/([^/]+)/'")
    loc.add_argument("--location", metavar="COLUMN",
                     help="location column (of the faces or files), or custom_labels:KEY")
    opt.add_argument("--time-pattern", metavar="REGEX",
                     help=r"regex with one group: capture time in the URI when a file has no capture time, "
                     r"e.g. '(\d{8}T\d{6})'")
    opt.add_argument("--session-gap", default="30min", help="max gap inside one visit (default: %(default)s)")
    opt.add_argument("--include-staff", action="store_true", help="keep visitors the staff rule flags")
    opt.add_argument("--returning-scope", choices=("location", "any"), default="location",
                     help="returning = seen earlier at the same location, or anywhere (default: %(default)s)")
    opt.add_argument("--faces", action="store_true",
                     help="add a visitor gallery (a cover face per visitor and the files each appears in); off by "
                     "default, because a shared report should not carry faces")
    opt.add_argument("--names", metavar="CSV",
                     help="visitor names: a CSV with columns visitor_id (or cluster_id) and name, e.g. written after "
                     "looking at a --faces gallery")
    opt.add_argument("--title", default="Visitor report", help="report title")
    priv = rep.add_argument_group("privacy")
    priv.add_argument("--pseudonymize", action="store_true",
                      help="share-ready report: visitor ids are HMAC-SHA-256 of the cluster ids under a secret key read "
                      "from the environment variable named by --key-env; no names, ids, URIs or faces")
    priv.add_argument("--key-env", metavar="NAME", default="IMM_REPORT_KEY",
                      help="environment variable holding the pseudonymisation key (default: %(default)s); the key "
                      "itself is never taken as an argument")
    priv.add_argument("--retention", metavar="AGE",
                      help="refuse faces older than this (e.g. 90D) unless --allow-expired")
    priv.add_argument("--allow-expired", action="store_true", help="report on faces older than --retention anyway")
    opt.add_argument("--no-tables", action="store_true", help="do not write the CSV tables")
    rep.set_defaults(handler=run)
    return rep


def _check_options(args: argparse.Namespace, local: bool) -> None:
    from imm_analysis.report import tables as T

    if local and (args.files or args.clusters):
        raise UserError("give either --files/--clusters (IMM exports) or --run/--images/--models (a local run), "
                        "not both")
    if not local and not args.files:
        raise UserError("no input: give --files PATH [--clusters PATH] (IMM exports), --run DIR, or --images PATH "
                        "--models PACK")
    if not local and args.threshold is not None:
        raise UserError("--threshold applies to local runs only (IMM exports are clustered already)")
    try:
        T.check_tz(args.tz)
        T.check_gap(args.session_gap)
        for option, pattern in (("--location-pattern", args.location_pattern), ("--time-pattern", args.time_pattern)):
            if pattern is not None:
                T.compile_one_group(pattern, option)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.location is not None and local and not args.location.startswith("custom_labels:"):
        _check_column(args.location, _known_columns())
    if args.names is not None:
        args.names_map = _read_names(args.names)
    args.key = None
    if args.pseudonymize:
        import os

        if args.faces or args.names:
            raise UserError("--pseudonymize leaves faces and names out: drop --faces and --names")
        args.key = os.environ.get(args.key_env)
        if not args.key or len(args.key.encode()) < 16:
            raise UserError(f"--pseudonymize: set the environment variable {args.key_env} to a secret of at least "
                            "16 characters (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    if args.retention is not None:
        from imm_analysis.cluster.erase import cutoff_time

        try:
            cutoff_time(args.retention)
        except ValueError as exc:
            raise UserError(f"--retention {args.retention}: {exc}") from None


def _read_names(path: str) -> dict[str, str]:
    """``visitor_id`` (or ``cluster_id``) -> ``name`` from a CSV; a UserError names what is wrong."""
    import pandas as pd

    check_path(path, "--names")
    try:
        with open_input(path, "--names") as fh:  # a FIFO or device is refused, not read forever
            frame = pd.read_csv(fh, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--names {path}: not a readable CSV ({exc})") from None
    key = next((c for c in ("visitor_id", "cluster_id") if c in frame.columns), None)
    if key is None or "name" not in frame.columns:
        raise UserError(f"--names {path}: needs columns visitor_id (or cluster_id) and name; it has "
                        f"{', '.join(map(str, frame.columns)) or 'none'}")
    frame = frame[frame[key].str.strip() != ""]
    return dict(zip(frame[key].str.strip(), frame["name"], strict=True))


def _apply_names(clusters: Any, figures: Any, names: dict[str, str]) -> Any:
    """Names onto a ClusterState (``rename``) or a clusters frame (made from the faces' ids when absent)."""
    import pandas as pd

    ids = set(figures["figure_cluster_id"].dropna().astype(str)) if "figure_cluster_id" in figures else set()
    unknown = sorted(set(names) - ids)
    if unknown:
        warn(f"--names: {len(unknown)} id(s) are no visitor of this input and are ignored (first: {unknown[0]})")
    known = {k: v for k, v in names.items() if k in ids}
    if hasattr(clusters, "rename") and hasattr(clusters, "clusters"):  # a ClusterState
        for cid, name in known.items():
            clusters.rename(cid, name or None)
        return clusters
    if clusters is None:
        clusters = pd.DataFrame({"cluster_id": pd.array(sorted(ids), dtype="string")})
    clusters = clusters.copy()
    if "name" not in clusters.columns:
        clusters["name"] = pd.array([None] * len(clusters), dtype="string")
    hit = clusters["cluster_id"].astype(str).map(known)
    clusters["name"] = clusters["name"].astype("string").mask(hit.notna().to_numpy(), hit.astype("string"))
    return clusters


def _known_columns(*frames: Any) -> set[str]:
    from imm_analysis import schema

    cols = set(schema.FIGURE_COLUMNS) | set(schema.FILE_COLUMNS) | {"det_score", "timestamp", "frame_index"}
    for f in frames:
        if f is not None:
            cols |= {str(c) for c in f.columns}
    return cols


def _check_column(name: str, known: set[str]) -> None:
    if name not in known:
        near = sorted(c for c in known if "location" in c or "label" in c or "uri" in c)[:6]
        raise UserError(f"--location {name}: no such column in the faces or files (for example: {', '.join(near)}); "
                        "use custom_labels:KEY for a label, or --location-pattern REGEX for a part of the URI")


def _load_imm(args: argparse.Namespace, say: Progress) -> tuple[Any, Any, Any]:
    from imm_analysis import load_clusters, load_files_and_figures

    check_path(args.files, "--files")
    if args.clusters:
        check_path(args.clusters, "--clusters")
    say(f"loading files and faces from {args.files}")
    files, figures = load_files_and_figures(args.files, progress=say.enabled)  # each page parsed once
    clusters = None
    if args.clusters:
        say(f"loading clusters from {args.clusters}")
        clusters = load_clusters(args.clusters, progress=say.enabled)
    say(f"{len(files):,} files, {len(figures):,} faces" + (f", {len(clusters):,} clusters" if clusters is not None else ""))
    if args.location is not None and not args.location.startswith("custom_labels:"):
        _check_column(args.location, {str(c) for c in figures.columns} | {str(c) for c in files.columns})
    return figures, files, clusters


def _already_clustered(local: Any) -> bool:
    ids = local.figures.get("figure_cluster_id")
    if ids is None or "threshold" not in local.info:
        return False
    from imm_analysis.schema import CLUSTER_UNAVAILABLE

    return bool((ids.astype("string").fillna(CLUSTER_UNAVAILABLE) != CLUSTER_UNAVAILABLE).any())


def _local(args: argparse.Namespace, say: Progress) -> tuple[Any, Any, Any, dict[str, Any]]:
    from imm_analysis.cli.cluster import cluster_run

    def check(uris: list[str]) -> None:  # before any embedding
        check_uri_pattern(args.location_pattern, "--location-pattern", uris)
        check_uri_pattern(args.time_pattern, "--time-pattern", uris)

    local = local_input(args, say, check)
    if args.run and _already_clustered(local) and args.threshold is None:
        say(f"using the clustering of {args.run} (threshold {local.info['threshold']:.3f})")
        clusters = None
        cl = Path(args.run) / "clusters.parquet"
        if cl.is_file():
            from imm_analysis.io.parquet import read_frame

            clusters = read_frame(cl, kind="clusters")
        info = {k: local.info.get(k) for k in ("input", "model_id", "threshold", "threshold_source", "min_faces")}
        return local.figures, local.files, clusters, {**info, "errors": local.errors}
    state, info = cluster_run(local, args, say)
    return state.figures, local.files, state, {**local.info, **info, "errors": local.errors}


def run(args: argparse.Namespace) -> int:
    """Build the report and write it; prints where it is, warnings and the headline numbers."""
    from imm_analysis import visitor_report

    say = Progress(not args.quiet)
    local = has_local_input(args)
    _check_options(args, local)
    out = check_out(args.out)
    time_source: Any = args.time_pattern
    run_info: dict[str, Any] = {}
    errors = None
    if local:
        figures, files, clusters, run_info = _local(args, say)
        errors = run_info.pop("errors", None)
        # photos copied off a camera rarely keep EXIF: a path pattern, else the file's modification time
        time_source = ["produce_time", *([args.time_pattern] if args.time_pattern else []), "file_modified_time"]
        run_info["input"] = run_info.get("input") or str(Path(args.run or args.images).absolute())
    else:
        figures, files, clusters = _load_imm(args, say)
        run_info["input"] = {"files": str(Path(args.files).absolute()),
                             "clusters": str(Path(args.clusters).absolute()) if args.clusters else None}
    if args.names is not None:
        clusters = _apply_names(clusters, figures, args.names_map)
        run_info["names"] = str(Path(args.names).absolute())
    say("building the report")
    try:
        report = visitor_report(
            figures, files=files, clusters=clusters, tz=args.tz, session_gap=args.session_gap,
            location=args.location_pattern or args.location, time_source=time_source,
            exclude_staff=not args.include_staff, returning_scope=args.returning_scope, title=args.title,
            errors=errors, faces=args.faces, origin="local" if local else "imm", run_info=run_info,
            pseudonymize=args.pseudonymize, key=args.key, retention=args.retention, allow_expired=args.allow_expired,
        )
    except ValueError as exc:
        if args.retention is not None and "older than the retention" in str(exc):
            raise UserError(f"--retention: {exc} (or --allow-expired)") from None
        raise
    s = report.summary
    if s["days"] == 0:
        warn("no face has a usable time (capture time, file time or --time-pattern): the tables are empty")
    for note in report.notes:
        warn(note)
    html = report.to_html(out / "report.html")
    if not args.no_tables:
        report.to_csv(out / "tables")
    if s["staff_flagged"]:
        verb = "excluded" if not args.include_staff else "flagged (kept)"
        warn(f"{s['staff_flagged']} visitor(s) {verb} as staff by the rule ({_staff_rule(report)}); the report's "
             "staff table lists them with the reason" + ("; --include-staff keeps them" if not args.include_staff
                                                         else ""))
    say(f"{s['period']}: {s['visits']:,} visits; {s['visitor_range']}")
    print(f"Report written to {html}" + ("" if args.no_tables else f" (tables in {out / 'tables'})")
          + (" - it carries face images" if args.faces else ""))
    return 0


def _staff_rule(report: Any) -> str:
    from imm_analysis.report.html import _staff_rule_text

    return _staff_rule_text(report.parameters["staff_rule"])
