"""`fakescope scan`: many images scored in parallel workers into a resumable Parquet/CSV table
(`fakescope.scan`: a local process pool or Ray Data)."""

from __future__ import annotations

import sys

from fakescope import argtypes
from fakescope.cli.options import add_common_args, progress, subcommand


def add_parser(sub) -> None:
    s = subcommand(
        sub,
        "scan",
        "score many images in parallel workers into a Parquet/CSV table (resumable)",
        "fakescope scan photos/ archive.zip --output results.parquet",
        "fakescope scan s3-mirror/ --engine ray --address auto --workers 8 --output r.csv",
        details="Rows have the same fields as predict's. A re-run with the same --output "
        "skips the files already in it.",
    )
    s.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="files, folders, globs, zip/tar archives, file:// or other fsspec URLs",
    )
    add_common_args(s)
    s.add_argument("--output", required=True, help="results.parquet or results.csv")
    s.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: a process pool on this machine; ray: Ray Data actors (default: local)",
    )
    s.add_argument(
        "--workers",
        type=argtypes.positive_int,
        help="worker processes / Ray actors (default: cores)",
    )
    s.add_argument(
        "--batch-size",
        type=argtypes.positive_int,
        default=64,
        help="images per worker batch (default: 64)",
    )
    s.add_argument("--address", help="Ray cluster to join (default: start a local Ray)")
    s.add_argument(
        "--flush-every",
        type=argtypes.positive_int,
        default=1000,
        help="rows per part file: the most a kill can lose (default: 1000)",
    )
    s.set_defaults(func=run)


def run(args) -> int:
    from fakescope.scan import scan

    try:
        summary = scan(
            args.sources,
            args.output,
            engine=args.engine,
            model=args.model,
            device=args.device,
            workers=args.workers,
            batch_size=args.batch_size,
            address=args.address,
            flush_every=args.flush_every,
            progress=progress(args),
        )
    except KeyboardInterrupt:
        print("interrupted; run the same command again to go on", file=sys.stderr)
        return 130
    return 0 if summary.errors == 0 else 1
