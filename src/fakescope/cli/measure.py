"""The commands that measure on labelled data: `evaluate` (metrics, per-image scores, plots),
`robustness` (the same under perturbations), `calibrate` (a threshold and calibration fitted on
held-out data) and `audit` (duplicates, leakage, shortcut cues in the data itself). They share
the data options (`fakescope.cli.options.add_data_args`); the work is in `fakescope.evaluation`
(`evaluate`, `robustness`, `calibrate`, `audit`)."""

from __future__ import annotations

import sys
from pathlib import Path

from fakescope import argtypes
from fakescope.cli.options import (
    add_backend_arg,
    add_common_args,
    add_data_args,
    add_quiet_arg,
    add_seed_arg,
    data_options,
    progress,
    subcommand,
)


def add_evaluate(sub) -> None:
    e = subcommand(
        sub,
        "evaluate",
        "metrics, per-image scores and plots on labelled data",
        "fakescope evaluate --data archive.zip --out eval/shipped",
        "fakescope evaluate --data cifake-test.tar.xz --subset 1000 --model runs/mine "
        "--out eval/mine",
    )
    add_data_args(e)
    add_common_args(e)
    e.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created): metrics.json, predictions.csv, plots",
    )
    e.add_argument(
        "--threshold",
        type=argtypes.probability,
        help="decision threshold on prob_fake, 0-1 (default: the model's)",
    )
    e.add_argument(
        "--dedupe-against",
        nargs="+",
        metavar="TRAIN",
        help="training data: leave test files byte-identical to its files (leaked into "
        "training) out of the metrics; they are marked in predictions.csv",
    )
    add_seed_arg(e, 0, "--subset")
    add_backend_arg(e)
    e.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    from fakescope.detector import Detector
    from fakescope.evaluation.evaluate import evaluate
    from fakescope.metrics import format_table

    det = Detector.load(
        args.model, device=args.device, backend=args.backend, metadata=False
    )  # measure the pixels
    m = evaluate(
        det,
        args.data,
        Path(args.out),
        **data_options(args),
        threshold=args.threshold,
        dedupe_against=args.dedupe_against,
        progress=progress(args),
    )
    print(format_table(m))
    if "deduplicated" in m:
        print(
            f"left out {m['deduplicated']['removed']} test files byte-identical to training files"
        )
    print(f"written: {Path(args.out) / 'metrics.json'}, predictions.csv, plots")
    return 0


def add_robustness(sub) -> None:
    rb = subcommand(
        sub,
        "robustness",
        "metrics under JPEG, WebP, resizing, blur, noise, crops, colour jitter, flips",
        "fakescope robustness --data cifake-test.tar.xz --subset 2000 --out robustness/",
        "fakescope robustness --data photos/ --perturbations jpeg,web,hard --out rb/",
        details="Every image of both classes is scored as its file and after each "
        "perturbation (made in memory, scored through the same Detector path); per "
        "perturbation: accuracy, ROC-AUC, false-positive rate on reals, detection rate on "
        "fakes, verdict flips. Writes robustness.json, report.md, robustness_<family>.png.",
    )
    add_data_args(rb)
    add_common_args(rb)
    rb.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    rb.add_argument(
        "--perturbations",
        metavar="A,B,...",
        help="perturbation or family names, comma-separated (default: the whole grid: "
        "jpeg, webp, downup, down, blur, noise, crop, jitter, hflip, web, hard)",
    )
    add_seed_arg(rb, 0, "--subset and the random perturbations (noise, jitter)")
    rb.add_argument(
        "--batch-size",
        type=argtypes.positive_int,
        default=64,
        help="perturbed images scored together, about as many held in memory (default: 64; "
        "lower it for large photos)",
    )
    rb.set_defaults(func=run_robustness)


def run_robustness(args) -> int:
    from fakescope.detector import Detector
    from fakescope.evaluation.robustness import format_results
    from fakescope.evaluation.robustness import run_robustness as measure

    det = Detector.load(args.model, device=args.device, metadata=False)  # measure the pixels
    rep = measure(
        det,
        args.data,
        Path(args.out),
        **data_options(args),
        perturbations=args.perturbations,
        batch_size=args.batch_size,
        progress=progress(args),
    )
    print(format_results(rep["results"]))
    print(f"written: {Path(args.out) / 'robustness.json'}, report.md, robustness_*.png")
    return 0


def add_calibrate(sub) -> None:
    c = subcommand(
        sub,
        "calibrate",
        "fit calibration and a threshold on held-out data; write a calibrated model copy",
        "fakescope calibrate --data runs/mine/heldout --model runs/mine --out runs/mine-cal",
        "fakescope calibrate --data val/ --model photo-effnet-lite2 --target-fpr 0.01 "
        "--uncertain-band 0.1 --out cal/",
        details="prob_fake becomes a calibrated probability (temperature, Platt or isotonic; "
        "auto picks by cross-validated NLL); the threshold is the smallest whose false-positive "
        "rate on the real images is at most --target-fpr. The copy (weights untouched) works "
        "with every command's --model. See README: Scores you can trust.",
    )
    add_data_args(c)
    add_common_args(c)
    c.add_argument("--out", required=True, metavar="DIR", help="folder for the calibrated copy")
    c.add_argument(
        "--target-fpr",
        type=argtypes.probability,
        default=0.05,
        help="false-positive rate on real images the threshold is chosen for (default: 0.05)",
    )
    c.add_argument(
        "--uncertain-band",
        type=argtypes.probability,
        metavar="W",
        help="label prob_fake within W/2 of the threshold 'uncertain' (e.g. 0.1; default: none)",
    )
    c.add_argument(
        "--method",
        default="auto",
        choices=["auto", "temperature", "platt", "isotonic"],
        help="auto: the lowest 5-fold cross-validated NLL on the data (default: auto)",
    )
    add_seed_arg(c, 0, "--subset and the cross-validation folds")
    c.set_defaults(func=run_calibrate)


def run_calibrate(args) -> int:
    from fakescope.evaluation.calibrate import run_calibrate as fit

    cfg = fit(
        args.model,
        args.data,
        Path(args.out),
        **data_options(args),
        target_fpr=args.target_fpr,
        band_width=args.uncertain_band,
        method=args.method,
        device=args.device,
        progress=progress(args),
    )
    r = cfg["calibration_report"]
    print(
        f"method {r['method']}; threshold {cfg['threshold']:.6g} (false-positive rate "
        f"{r['false_positive_rate']:.4f} on {r['images']['real']} real images, detection rate "
        f"{r['detection_rate']:.4f}); uncertain band {cfg['uncertain']}"
    )
    for key in ("ece", "brier", "nll"):
        print(f"{key:<6} before {r['before'][key]:.4f}  after {r['after'][key]:.4f}")
    print(f"written: calibrated model {args.out} (use --model {args.out}), report.md")
    return 0


def add_audit(sub) -> None:
    a = subcommand(
        sub,
        "audit",
        "duplicates, train/test leakage and shortcut cues in a labelled data set",
        "fakescope audit --data cifake-train.tar.xz cifake-test.tar.xz --out audit/",
        "fakescope audit --data archive.zip --exact-only",
        details="Exact duplicates (SHA-256) within and across splits and classes, "
        "near-duplicates (perceptual hash), and cues that separate the classes on their own "
        "(size, format, JPEG quality, file size, EXIF, colour), each with its AUC.",
    )
    add_data_args(a)
    a.add_argument("--out", metavar="DIR", help="folder for report.md and audit.json")
    a.add_argument(
        "--near-distance",
        type=argtypes.non_negative_int,
        default=4,
        help="pHash Hamming distance (of 64 bits) that counts as a near-duplicate (default: 4)",
    )
    a.add_argument(
        "--exact-only", action="store_true", help="byte duplicates only: hash, do not decode"
    )
    a.add_argument(
        "--workers", type=argtypes.positive_int, help="decoding processes (default: all cores)"
    )
    add_seed_arg(a, 0, "--subset")
    add_quiet_arg(a)
    a.set_defaults(func=run_audit)


def run_audit(args) -> int:
    import json

    from fakescope.evaluation.audit import format_report
    from fakescope.evaluation.audit import run_audit as audit
    from fakescope.fileio import ensure_writable_dir, write_json, write_text

    if args.out:
        ensure_writable_dir(args.out)
    rep = audit(
        args.data,
        **data_options(args, split="all"),
        near_distance=args.near_distance,
        exact_only=args.exact_only,
        workers=args.workers,
        progress=progress(args),
    )
    text = format_report(rep)
    print(text, end="")
    if args.out:
        write_text(Path(args.out) / "report.md", text)
        write_json(Path(args.out) / "audit.json", json.loads(json.dumps(rep)))
        print(f"written: {Path(args.out) / 'report.md'}, audit.json", file=sys.stderr)
    return 0
