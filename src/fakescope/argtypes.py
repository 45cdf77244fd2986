"""argparse `type=` functions: every numeric option is checked when the command line is parsed.

A bad value stops the command before any work with argparse's own message, e.g.
`fakescope predict: error: argument --batch-size: must be a whole number >= 1, got '0'` (exit 2).
Every subcommand (and every new one) should take its numbers through these.
"""

from __future__ import annotations

import argparse
import math
import re


def _number(value: str, kind: type) -> float:
    try:
        v = kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {value!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value!r}")
    return v


def positive_int(value: str) -> int:
    """A count that must be at least 1 (--batch-size, --epochs, --trials)."""
    v = int(_number(value, int))
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value!r}")
    return v


def non_negative_int(value: str) -> int:
    """A count or seed where 0 means something (--patience 0 = off, --seed 0)."""
    v = int(_number(value, int))
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {value!r}")
    return v


def positive_float(value: str) -> float:
    """A rate that must be above 0 (--lr)."""
    v = _number(value, float)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value!r}")
    return v


def probability(value: str) -> float:
    """A probability threshold in [0, 1] (--threshold)."""
    v = _number(value, float)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value!r}")
    return v


def subset(value: str) -> float:
    """A fraction in (0, 1] or a whole count >= 2 (--subset 0.1, --subset 5000)."""
    v = _number(value, float)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1] or a count, got {value!r}")
    if v > 1 and v != int(v):
        raise argparse.ArgumentTypeError(
            f"a count must be a whole number (or give a fraction <= 1), got {value!r}"
        )
    return v


DEVICES = ("auto", "cpu", "cuda", "cuda:N")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def device(value: str) -> str:
    """auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N."""
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(DEVICES)}, got {value!r}")
    return value
