"""Regenerate the committed sample: ``python -m imm_analysis.synth --out data/sample``."""

from __future__ import annotations

import argparse
import sys

from imm_analysis.synth.sample import write_sample

#: The arguments the committed ``data/sample`` was made with.
SAMPLE_PARAMS = {"n_people": 40, "n_strangers": 60, "seed": 0}


def main(argv: list[str] | None = None) -> int:
    """Run the command line (``argv`` as in ``sys.argv[1:]``); returns the exit status.

    Examples
    --------
    >>> import tempfile
    >>> main(["--out", tempfile.mkdtemp(), "--n-people", "3", "--n-strangers", "1"])  # doctest: +ELLIPSIS
    wrote ...
    0
    """
    parser = argparse.ArgumentParser(prog="python -m imm_analysis.synth", description=__doc__)
    parser.add_argument("--out", default="data/sample", help="output folder (default: data/sample)")
    parser.add_argument("--n-people", type=int, default=SAMPLE_PARAMS["n_people"], help="regular customers")
    parser.add_argument("--n-strangers", type=int, default=SAMPLE_PARAMS["n_strangers"], help="people seen once")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension")
    parser.add_argument("--page-size", type=int, default=100, help="files or clusters per JSON page")
    parser.add_argument("--seed", type=int, default=SAMPLE_PARAMS["seed"])
    args = parser.parse_args(argv)
    params = {"n_people": args.n_people, "n_strangers": args.n_strangers, "seed": args.seed}
    if args.days != 7:
        params["days"] = args.days
    if args.dim != 128:
        params["dim"] = args.dim
    out = write_sample(args.out, page_size=args.page_size, **params)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
