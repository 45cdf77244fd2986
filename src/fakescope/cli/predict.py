"""`fakescope predict`: score images (files, folders, globs, http(s) URLs) into a table, CSV or
JSON; the rows and their formats are `fakescope.predict`'s."""

from __future__ import annotations

import sys

from fakescope import argtypes
from fakescope.cli.options import add_backend_arg, add_common_args, progress, subcommand
from fakescope.predict import FORMATS


def add_parser(sub) -> None:
    r = subcommand(
        sub,
        "predict",
        "score images: files, folders, globs, http(s) URLs",
        "fakescope predict examples/cifake-fake.jpg",
        "fakescope predict photos/ 'shots/*.png' --format csv --output results/scores.csv",
    )
    r.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files, folders (walked recursively; non-image files skipped), glob "
        "patterns, or http(s):// URLs; each image is scored once",
    )
    add_common_args(r)
    r.add_argument(
        "--format",
        choices=list(FORMATS),
        help="output format (default: from --output's extension, .csv, .json or .jsonl; "
        "else table)",
    )
    r.add_argument(
        "--output",
        metavar="FILE",
        help="write rows to FILE (parent folders created; replaced when the run ends) instead "
        "of stdout",
    )
    r.add_argument(
        "--threshold",
        type=argtypes.probability,
        help="label fake at prob_fake >= this, 0-1 (higher: fewer false alarms, lower: more "
        "fakes caught; hard verdicts, no uncertain band; default: each model's calibrated "
        "threshold). The scope and metadata rules still hold",
    )
    r.add_argument(
        "--batch-size",
        type=argtypes.positive_int,
        default=256,
        help="images decoded and scored together (default: 256)",
    )
    r.add_argument(
        "--no-metadata",
        action="store_true",
        help="score pixels only: read no provenance evidence (C2PA, IPTC, generator text, EXIF)",
    )
    add_backend_arg(r)
    r.set_defaults(func=run)


def run(args) -> int:
    from fakescope.detector import Detector
    from fakescope.fileio import atomic_path
    from fakescope.predict import Expansion, Tally, format_for, run_predict

    det = Detector.load(
        args.model, device=args.device, backend=args.backend, metadata=not args.no_metadata
    )
    stats = Expansion()
    fmt = format_for(args.format, args.output)

    def score(out) -> Tally:
        return run_predict(
            det, args.paths, fmt, out, args.batch_size, progress(args), stats, args.threshold
        )

    if args.output:
        # rows stream into a temporary file beside --output, which replaces it only when the
        # run ends: an interrupted or failed run never leaves a half-written scores file
        with atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            tally = score(f)
    else:
        tally = score(sys.stdout)
    summary = [tally.line(), *stats.notes()]
    if tally.scored:  # thresholds only where something was judged against them
        summary.append(_threshold_note(det, tally, args.threshold))
    print(", ".join(summary), file=sys.stderr)
    return 0 if tally.errors == 0 else 1


def _threshold_note(det, tally, threshold: float | None) -> str:
    """Which threshold made the labels: the user's, or each scoring model's own."""
    if threshold is not None:
        return f"threshold {threshold:g} (--threshold)"
    members = {d.name: d for d in det.members()}
    used = [n for n in members if tally.models[n]] or list(members)
    shown = "; ".join(f"{n} {members[n].threshold:.4g}" for n in used)
    return (
        f"threshold {shown} (the model's own)"
        if len(used) == 1
        else (f"thresholds {shown} (each model's own)")
    )
