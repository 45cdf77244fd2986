"""`fakescope` command line: train, evaluate, predict, models, tune, explain, export.

User errors (bad paths, options, files) end in one `error:` line and exit status 2; a predict run
where some files could not be scored exits 1; Ctrl-C exits 130 after the last checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from fakescope.errors import FakescopeError


def _subset(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return v


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
        type=_subset,
        metavar="N",
        help="stratified sample: a count (> 1) or a fraction (<= 1)",
    )
    g.add_argument(
        "--cache-dir", help="decoded-image cache (default $FAKESCOPE_CACHE or ~/.cache/fakescope)"
    )
    g.add_argument("--no-cache", action="store_true", help="decode again, write no cache")


def _classes(args):
    from fakescope.data import ClassNames

    d = ClassNames()
    return ClassNames(tuple(args.real_name or d.real), tuple(args.fake_name or d.fake))


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
    )
    return {k: getattr(args, k, None) for k in keys}


def cmd_train(args) -> int:
    from fakescope.config import resolve_config
    from fakescope.runs import DataArgs, log, resume_args, train_run

    if args.resume:
        out = Path(args.resume)
        cfg, data = resume_args(out)
    else:
        if not args.data or not args.out:
            raise FakescopeError("train needs --data and --out (or --resume RUN_DIR)")
        out = Path(args.out)
        cfg = resolve_config(args.preset, args.config, _train_overrides(args))
        c = _classes(args)
        data = DataArgs(
            [str(Path(p).resolve()) for p in args.data],
            args.split,
            [str(Path(p).resolve()) for p in args.test_data or []],
            list(c.real),
            list(c.fake),
            args.cache_dir,
            not args.no_cache,
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

    det = Detector.load(args.model, device=args.device, backend=args.backend)
    m = evaluate(
        det,
        args.data,
        Path(args.out),
        split=args.split,
        subset=args.subset,
        seed=args.seed,
        classes=_classes(args),
        threshold=args.threshold,
        progress=_progress(args),
    )
    print(format_table(m))
    print(f"written: {Path(args.out) / 'metrics.json'}, predictions.csv, plots")
    return 0


def cmd_predict(args) -> int:
    from fakescope.detector import Detector
    from fakescope.predict import run_predict

    det = Detector.load(args.model, device=args.device, backend=args.backend)
    try:
        with contextlib.ExitStack() as stack:
            out = sys.stdout
            if args.output:
                out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline=""))
            scored, fake, errors = run_predict(
                det, args.paths, args.format, out, args.batch_size, progress=_progress(args)
            )
    except OSError as e:
        raise FakescopeError(f"cannot write {args.output}: {e.strerror or e}") from None
    print(
        f"{scored} scored ({fake} fake, {scored - fake} real), {errors} not scored", file=sys.stderr
    )
    return 0 if errors == 0 else 1


def cmd_models(args) -> int:
    import json

    from fakescope.detector import CONFIG, DEFAULT_MODEL, WEIGHTS_DIR, available_models

    for name in available_models():
        cfg = json.loads((WEIGHTS_DIR / name / CONFIG).read_text())
        acc = cfg.get("metrics", {}).get("test", {}).get("accuracy")
        parts = [name, f"arch={cfg['arch']}", f"input={cfg['input_size']}"]
        if acc is not None:
            parts.append(f"cifake_test_accuracy={acc:.4f}")
        if name == DEFAULT_MODEL:
            parts.append("(default)")
        print("  ".join(parts))
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
    from fakescope import __version__

    p = argparse.ArgumentParser(prog="fakescope", description="Detect AI-generated images.")
    p.add_argument("--version", action="version", version=f"fakescope {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, model=True):
        sp.add_argument("--device", default="auto", help="auto, cpu or cuda")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        if model:
            sp.add_argument(
                "--model",
                help="shipped model name or run folder (default: the shipped CIFAKE model)",
            )

    t = sub.add_parser("train", help="train a detector into a run folder")
    _add_data_args(t, required=False)
    t.add_argument("--out", help="run folder")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    t.add_argument(
        "--test-data",
        nargs="+",
        metavar="PATH",
        help="test set scored at the end (official protocol)",
    )
    t.add_argument("--preset", help="reference, fast or cpu (default: fast on a GPU, else cpu)")
    t.add_argument("--config", help="JSON config file (e.g. tune's best_config.json)")
    t.add_argument("--arch")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=["adam", "sgd"])
    t.add_argument("--patience", type=int, help="early-stopping patience (0 = off)")
    t.add_argument("--protocol", choices=["official", "reference"])
    t.add_argument("--amp", choices=["auto", "bf16", "off"])
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto, cpu or cuda")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics, per-image scores and plots on labelled data")
    _add_data_args(e)
    common(e)
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    e.add_argument("--seed", type=int, default=0)
    add_backend_arg(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("predict", help="score images: files, folders, globs")
    r.add_argument("paths", nargs="+", metavar="PATH")
    common(r)
    r.add_argument("--format", choices=["table", "csv", "json", "jsonl"], default="table")
    r.add_argument("--output", help="write rows here instead of stdout")
    r.add_argument("--batch-size", type=int, default=256)
    add_backend_arg(r)
    r.set_defaults(func=cmd_predict)

    m = sub.add_parser("models", help="list shipped models (name first, default marked)")
    m.set_defaults(func=cmd_models)

    u = sub.add_parser("tune", help="search learning rate and batch size with Optuna")
    _add_data_args(u)
    common(u, model=False)
    u.add_argument("--out", required=True)
    u.add_argument("--trials", type=int, default=20)
    u.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    u.add_argument("--preset", default="reference", help="recipe whose lr/batch are searched")
    u.add_argument("--seed", type=int, default=0)
    u.set_defaults(func=cmd_tune)

    x = sub.add_parser("explain", help="Grad-CAM heatmaps: why an image was called fake")
    x.add_argument("paths", nargs="*", metavar="PATH")
    _add_data_args(x, required=False)
    common(x)
    x.add_argument("--out", required=True)
    x.add_argument("--method", default="gradcam", help="gradcam, gradcam++, ...")
    x.add_argument("--per-class", type=int, default=8, help="data-set view: images per gallery")
    x.add_argument(
        "--deletion-sample",
        type=int,
        default=2000,
        help="data-set view: images in the deletion check (random; 0 = all). It scores each "
        "image 4 times, more than the heatmaps cost",
    )
    x.add_argument("--seed", type=int, default=0)
    x.set_defaults(func=cmd_explain)

    o = sub.add_parser("export", help="export a model's network (ONNX) for the torch-free backend")
    o.add_argument("--format", choices=["onnx"], default="onnx")
    o.add_argument(
        "--model", help="shipped model name or run folder (default: the shipped CIFAKE model)"
    )
    o.add_argument(
        "--out",
        help="output file (default: model.onnx in the model's folder, which records it in the "
        "folder's config.json so --backend onnx can use it)",
    )
    o.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    o.add_argument(
        "--exporter",
        choices=["dynamo", "torchscript"],
        default="dynamo",
        help="torch.onnx exporter (default dynamo)",
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
    q.add_argument("--calibration-n", type=int, default=2048, help="images (stratified)")
    q.add_argument(
        "--calibration-method", choices=["minmax", "percentile", "entropy"], default="minmax"
    )
    o.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FakescopeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in TORCH_EXTRA:
            raise
        print(
            f"error: this needs PyTorch and its tools ({e.name} is not installed): "
            "pip install 'fakescope[torch]'",
            file=sys.stderr,
        )
        return 2
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
