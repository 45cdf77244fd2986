"""Accuracy, precision, recall and F1 of one model's scores at several thresholds.

Reads the `predictions.csv` that `fakescope evaluate` writes (all rows, leaked ones included),
to show where a published precision/recall pair sits on the same model's curve. It explains an
operating point; it is not a way to choose one (that is `fakescope calibrate`, on validation
data).

    python benchmarks/threshold_sweep.py EVAL_DIR/predictions.csv --thresholds 0.5 0.4 0.3 0.2 \\
        --recall 0.96
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def confusion(y: np.ndarray, p: np.ndarray, t: float) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) calling `p >= t` fake."""
    called = p >= t
    return (
        int((called & y).sum()),
        int((called & ~y).sum()),
        int((~called & y).sum()),
        int((~called & ~y).sum()),
    )


def row(y: np.ndarray, p: np.ndarray, t: float) -> str:
    tp, fp, fn, tn = confusion(y, p, t)
    prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    f1 = 2 * prec * rec / max(prec + rec, 1e-12)
    return f"| {t:.3f} | {(tp + tn) / len(y):.4f} | {prec:.4f} | {rec:.4f} | {f1:.4f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("predictions", type=Path)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.4, 0.3, 0.2])
    ap.add_argument("--recall", type=float, help="also the threshold that reaches this recall")
    args = ap.parse_args()
    with args.predictions.open(newline="") as f:
        rows = list(csv.DictReader(f))
    y = np.array([r["true_label"] == "fake" for r in rows])
    p = np.array([float(r["prob_fake"]) for r in rows])
    print(f"{len(y)} images ({int(y.sum())} fake)")
    print("| threshold on prob_fake | accuracy | precision | recall | F1 |")
    print("|---|---|---|---|---|")
    for t in args.thresholds:
        print(row(y, p, t))
    if args.recall is not None:
        fakes = np.sort(p[y])
        t = float(fakes[int((1 - args.recall) * len(fakes))])
        print(row(y, p, t), f"<- recall {args.recall}")


if __name__ == "__main__":
    main()
