"""Training speed: recipes side by side in one process on one device.

For each recipe and seed: training seconds (validation and test scoring excluded) until the
test accuracy first reaches 95% and 98%, final test accuracy / precision / recall / F1 / AUC
(through `Detector`, with the recipe's test-time augmentation), training images per second and
peak GPU memory. Prints a Markdown table (means over seeds) and writes the raw rows as JSON.

    python benchmarks/train_speed.py --data ../shared/data/cifake/cifake-train.tar.xz \
        --test-data ../shared/data/cifake/cifake-test.tar.xz --recipes reference fast --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import hardware

from fakescope.data import load_images, make_splits
from fakescope.detector import Detector
from fakescope.metrics import compute_metrics
from fakescope.model_dir import model_config
from fakescope.models import resolve_device
from fakescope.training.config import resolve_config
from fakescope.training.loop import fit

TARGETS = (0.95, 0.98)


def parse_recipe(recipe: str) -> tuple[str, dict]:
    """`preset` or `preset:key=value,key=value` (a variant: `fast:ema=0.999,epochs=16`); values
    are JSON (numbers, true/false) or else strings."""
    preset, _, rest = recipe.partition(":")
    over = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            over[key] = json.loads(value)
        except json.JSONDecodeError:
            over[key] = value
    return preset, over


def run_recipe(recipe: str, seed: int, data, test, args) -> dict:
    preset, over = parse_recipe(recipe)
    over.update({"seed": seed, "device": args.device})
    if args.epochs:
        over["epochs"] = args.epochs
    cfg = resolve_config(preset, overrides=over)
    device = resolve_device(cfg.device)
    idx = make_splits(data.y, "official", cfg.val_fraction, seed)
    tr, va = data.take(idx["train"]), data.take(idx["val"])
    reached: dict[float, float | None] = {t: None for t in TARGETS}
    seconds = {"train": 0.0}

    def on_epoch(epoch, row, model):
        seconds["train"] += row["seconds"]
        det = Detector(model, model_config(cfg.to_dict()), device)
        acc = compute_metrics(test.y, det.score_arrays(test.x))["accuracy"]
        row["test_acc"] = acc
        for t in TARGETS:
            if reached[t] is None and acc >= t:
                reached[t] = seconds["train"]
        print(
            f"  {recipe} seed {seed} epoch {epoch}: test acc {acc:.4f} ({seconds['train']:.1f}s)",
            file=sys.stderr,
        )

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        model, state = fit(
            cfg,
            tr.x,
            tr.y,
            va.x,
            va.y,
            Path(run_dir),
            progress=False,
            log=lambda _: None,
            on_epoch=on_epoch,
        )
        wall = time.perf_counter() - t0
    det = Detector(model, model_config(cfg.to_dict()), device)
    m = compute_metrics(test.y, det.score_arrays(test.x))
    return {
        "recipe": recipe,
        "seed": seed,
        "arch": cfg.arch,
        "epochs": state.epoch,
        "train_seconds": state.train_seconds,
        "wall_seconds": wall,
        **{f"seconds_to_{int(t * 100)}": reached[t] for t in TARGETS},
        **{k: m[k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc")},
        "images_per_second": state.epoch * len(tr) / state.train_seconds,
        "peak_gpu_gb": (torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None),
        "n_train": len(tr),
        "n_test": len(test),
    }


def table(rows: list[dict]) -> str:
    def fmt(v, f="{:.1f}"):
        return "not reached" if v is None else f.format(v)

    out = [
        "| recipe | arch | seeds | epochs | train s | s to 95% | s to 98% | accuracy | "
        "precision | recall | F1 | AUC | img/s | peak GPU GB |",
        "|" + "---|" * 14,
    ]
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r for r in rows if r["recipe"] == recipe]

        def mean(k, rs=rs):
            vals = [r[k] for r in rs]
            return None if any(v is None for v in vals) else float(np.mean(vals))

        def spread(k, rs=rs) -> str:
            """mean ± sample standard deviation over seeds (the mean alone for one seed)."""
            vals = [r[k] for r in rs]
            sd = f" ± {np.std(vals, ddof=1):.4f}" if len(vals) > 1 else ""
            return f"{np.mean(vals):.4f}{sd}"

        gpu_gb = "n/a (CPU)" if mean("peak_gpu_gb") is None else f"{mean('peak_gpu_gb'):.2f}"
        out.append(
            f"| {recipe} | {rs[0]['arch']} | {len(rs)} | {mean('epochs'):.1f} | "
            f"{mean('train_seconds'):.1f} | {fmt(mean('seconds_to_95'))} | "
            f"{fmt(mean('seconds_to_98'))} | {spread('accuracy')} | {mean('precision'):.4f} | "
            f"{mean('recall'):.4f} | {mean('f1'):.4f} | {spread('roc_auc')} | "
            f"{mean('images_per_second'):.0f} | {gpu_gb} |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+")
    p.add_argument("--test-data", nargs="+")
    p.add_argument(
        "--recipes",
        nargs="+",
        default=["reference", "fast"],
        help="presets, or variants as preset:key=value,... (e.g. fast:ema=0.999)",
    )
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--subset", type=float, help="stratified training subset")
    p.add_argument("--test-subset", type=float)
    p.add_argument("--epochs", type=int, help="override every recipe's epoch count")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default="train_speed.json", help="raw rows are written here")
    p.add_argument("--table-from", metavar="JSON", help="only print the table of saved rows")
    args = p.parse_args()
    if args.table_from:
        print(table(json.loads(Path(args.table_from).read_text())))
        return
    if not args.data or not args.test_data:
        p.error("--data and --test-data are required")
    data = load_images(args.data, subset=args.subset, progress=False)
    test = load_images(args.test_data, purpose="eval", subset=args.test_subset, progress=False)
    rows = []
    for recipe in args.recipes:
        for seed in range(args.seeds):
            rows.append(run_recipe(recipe, seed, data, test, args))
            Path(args.json).write_text(json.dumps(rows, indent=2))  # a cut run keeps these
    dev = resolve_device(args.device)
    hw = hardware(dev)
    print(
        f"device: {dev} ({hw}); torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; "
        f"train {rows[0]['n_train']} images, test {rows[0]['n_test']}"
    )
    print(table(rows))
    Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
