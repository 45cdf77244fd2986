"""`fakescope` command line: train, evaluate, predict, models, tune, explain, inspect, serve,
robustness, calibrate, audit, scan, export.

User errors (bad paths, options, files) end in one `error:` line and exit status 2; a predict run
where some files could not be scored exits 1; Ctrl-C exits 130 after the last checkpoint.

This module is the entry point only: the top-level parser, the order of the commands in
`--help`, and how errors become exit statuses. Each command lives in its own module beside it,
with its parser (`add_parser(sub)`, or `add_<command>(sub)` where a module holds a family of
commands) and its work (`run(args)` / `run_<command>(args)`); the option groups several
commands share are declared once, in `fakescope.cli.options`. Command modules import their
heavy dependencies inside `run`, so that building the parser imports no torch.
"""

from __future__ import annotations

import argparse
import os
import sys

from fakescope.cli import explain, export, inspect, measure, models, predict, scan, serve, train
from fakescope.cli.options import Parser, examples
from fakescope.errors import FakescopeError

# The commands in the order `fakescope --help` lists them.
COMMANDS = (
    train.add_train,
    measure.add_evaluate,
    predict.add_parser,
    models.add_models,
    models.add_setup,
    train.add_tune,
    explain.add_parser,
    inspect.add_parser,
    serve.add_parser,
    measure.add_robustness,
    measure.add_calibrate,
    measure.add_audit,
    scan.add_parser,
    export.add_parser,
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


def build_parser() -> argparse.ArgumentParser:
    from fakescope._version import __version__

    p = Parser(
        prog="fakescope",
        description="Detect AI-generated images.",
        epilog="'fakescope COMMAND --help' shows a command's options and examples.\n"
        + examples("fakescope predict examples/cifake-fake.jpg photos/"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fakescope {__version__}")
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command to run:"
    )
    for add in COMMANDS:
        add(sub)
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
        return _missing_module(e)
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


def _missing_module(e: ModuleNotFoundError) -> int:
    """An optional dependency is not installed: one line naming the extra (exit 2); any other
    missing module is a bug, raised as it is."""
    top = (e.name or "").split(".")[0]
    if top in TORCH_EXTRA:
        print(
            "error: this needs the 'torch' extra (PyTorch and its tools): "
            "pip install 'fakescope[torch]'",
            file=sys.stderr,
        )
    elif top in EXTRA_OF:
        print(
            f"error: this needs the '{EXTRA_OF[top]}' extra: "
            f"pip install 'fakescope[{EXTRA_OF[top]}]'",
            file=sys.stderr,
        )
    else:
        raise e
    return 2
