"""``imm-analysis convert EXPORTS OUT``: IMM JSON exports to a partitioned Parquet dataset."""

from __future__ import annotations

import argparse

from imm_analysis.cli._common import Progress, UserError, check_out, check_path, common_options

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand."""
    p = subparsers.add_parser(
        "convert", parents=[common_options()], help="IMM JSON exports to a Parquet dataset (fast to read back)",
        description="Convert IMM JSON exports (SimpleQuery / QueryFigureClusters pages: a file, a folder or a glob) "
        "into a Parquet dataset OUT with figures/, files/ and clusters/ tables, one partition per input file. "
        "Read it back with load_figures(OUT, columns=..., filters=...) or read_figures_dask(OUT).",
    )
    p.add_argument("exports", metavar="EXPORTS", help="IMM JSON exports: a file, a folder or a glob")
    p.add_argument("out", metavar="OUT", help="dataset folder to create")
    g = p.add_argument_group("convert")
    g.add_argument("--collect", action="store_true",
                   help="skip bad records and list them in OUT/errors.parquet (default: stop at the first)")
    g.add_argument("--workers", type=int, metavar="N", help="local processes (default: the CPU count)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="convert on a Dask cluster (e.g. tcp://10.0.0.5:8786)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Convert ``args.exports`` into the dataset ``args.out``; prints what was written."""
    import json

    from imm_analysis.io.dataset import DATASET_RECORD, exports_to_parquet

    say = Progress(not args.quiet)
    if not any(c in args.exports for c in "*?["):
        check_path(args.exports, "EXPORTS")
    if (check_out(args.out, "OUT") / DATASET_RECORD).exists():
        raise UserError(f"OUT {args.out} already holds a dataset; choose another folder")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    say(f"converting {args.exports}" + (f" on the Dask cluster at {args.scheduler}" if args.scheduler else ""))
    try:
        out = exports_to_parquet(args.exports, args.out, client=args.scheduler or None,
                                 errors="collect" if args.collect else "raise", workers=args.workers,
                                 progress=say.enabled)
    except ConnectionError as exc:
        raise UserError(f"--scheduler {args.scheduler}: {exc}") from None
    except FileNotFoundError as exc:
        raise UserError(f"EXPORTS {args.exports}: {exc}") from None
    record = json.loads((out / DATASET_RECORD).read_text())
    tables = ", ".join(f"{n:,} {t}" for t, n in record["tables"].items())
    print(f"{tables} from {record['partitions']} file(s) written to {out}"
          + (f"; {record['errors']} bad record(s) in {out / 'errors.parquet'}" if record["errors"] else ""))
    return 0
