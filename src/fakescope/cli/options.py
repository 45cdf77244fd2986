"""The option groups several commands share, declared once, and the helpers that read them.

- `add_data_args`: the labelled-data group (`--data`, `--split`, class names, `--subset`, cache);
  `classes` and `data_options` turn it into the arguments the data loaders take;
- `add_common_args`: `--device`, `-q/--quiet` and `--model` (a shipped name or a folder);
- `add_backend_arg`, `add_device_arg`, `add_seed_arg`, `add_quiet_arg`: single options with one
  wording everywhere.

Building a parser imports no torch (the light install's `predict` builds them all); the names
shown in `--help` come from `fakescope.choices`, `fakescope.training.config` and
`fakescope.model_dir`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from fakescope import argtypes


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `error:` line like every other user error (the usage
    block is one `--help` away). Subparsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def examples(*lines: str) -> str:
    """An epilog of example command lines (shown at the end of a subcommand's --help)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def subcommand(
    sub, name: str, help: str, *example_lines: str, details: str = ""
) -> argparse.ArgumentParser:
    """A subparser whose --help ends with examples, kept as written (RawDescription)."""
    description = " ".join(x for x in (help[0].upper() + help[1:] + ".", details) if x)
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog=examples(*example_lines) if example_lines else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def progress(args) -> bool:
    """Progress bars on stderr only for a person watching a terminal."""
    return not args.quiet and sys.stderr.isatty()


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
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


def classes(args):
    """The `ClassNames` that --real-name / --fake-name give (defaults where not given)."""
    from fakescope.data import ClassNames

    d = ClassNames()
    return ClassNames(tuple(args.real_name or d.real), tuple(args.fake_name or d.fake))


def data_options(args, split: str | None = None) -> dict:
    """The labelled-data options that evaluate, robustness, calibrate and audit share (the
    `data` group of their parsers); `split` is the default where --split is not given."""
    return {
        "split": args.split or split,
        "subset": args.subset,
        "seed": args.seed,
        "classes": classes(args),
    }


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    """`--backend` for every command that loads a Detector (shared by predict, evaluate, serve,
    inspect, scan, ...); pass `args.backend` to `Detector.load`."""
    from fakescope.detector import BACKENDS

    p.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="auto",
        help="network runtime: onnx (ONNX Runtime on the CPU, no PyTorch needed; same scores "
        "as torch), onnx-int8 (the int8-quantised graph: fastest on the CPU), torch, or auto "
        "(the fastest ONNX graph the model folder has, when onnxruntime is installed, unless "
        "a GPU is asked for or present; else torch)",
    )


def add_device_arg(sp: argparse.ArgumentParser, default: str | None = "auto") -> None:
    sp.add_argument(
        "--device",
        type=argtypes.device,
        default=default,
        metavar="{" + ",".join(argtypes.DEVICES) + "}",
        help="where the model runs: auto (a CUDA GPU when there is one, else the CPU), cpu, "
        "cuda or cuda:N" + (" (default: auto)" if default else ""),
    )


def add_seed_arg(sp: argparse.ArgumentParser, default: int | None, what: str) -> None:
    sp.add_argument(
        "--seed",
        type=argtypes.non_negative_int,
        default=default,
        help=f"random seed for {what}" + (f" (default: {default})" if default is not None else ""),
    )


def add_quiet_arg(sp: argparse.ArgumentParser, help: str = "no progress bars") -> None:
    sp.add_argument("-q", "--quiet", action="store_true", help=help)


def add_common_args(sp: argparse.ArgumentParser, model: bool = True) -> None:
    """--device, -q/--quiet and (with `model`) --model, for the commands that run a model."""
    from fakescope.model_dir import available_models

    add_device_arg(sp)
    add_quiet_arg(sp)
    if model:
        shipped = ", ".join(available_models()) or "none"
        sp.add_argument(
            "--model",
            help=f"shipped model name ({shipped}) or run folder (default: auto, which "
            "sends images of at most 64 px a side to the CIFAKE model and larger ones to "
            "the photo model)",
        )
