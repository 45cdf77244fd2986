"""The reference recipe, faster at identical math: plain eager PyTorch with a DataLoader vs
fakescope's training loop, measured side by side in one process on one device.

Every path trains the reference network (torchvision ResNet-18) with the reference math: fp32,
BCE-with-logits, Adam lr 5e-4, batch 16, random horizontal flips. What differs is only how
the steps are fed and launched:

- `eager + DataLoader`: the plain script (a Dataset of decoded images, a shuffling DataLoader
  with worker processes and pinned memory, each batch copied to the device);
- `fakescope loop`: `fakescope.training.loop.train_one_epoch` (images uint8 on the device, the
  epoch's order and flips drawn at once, batches gathered and flipped there);
- `fakescope loop + compile`: the same with `torch.compile` (`--compile reduce-overhead`:
  CUDA graphs, which is what a launch-bound batch of 16 needs on a GPU).

Each path trains for one warm-up pass (compilation, cuDNN autotuning, worker start-up) and then
one timed pass over the same `--images` training images; images per second of the timed pass
and the ratio to the plain path are printed as a Markdown table, the raw rows written as JSON.
A bf16 row can be added (`--bf16`): faster, but not the same math, so reported apart.

    python benchmarks/reference_speed.py --data ../shared/data/cifake/cifake-train.tar.xz \
        --images 16000 --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import hardware
from torch import nn

from fakescope.data import load_images
from fakescope.models import build_model, resolve_device
from fakescope.training.config import resolve_config
from fakescope.training.loop import FullBatchCompiled, make_optimizer, train_one_epoch


class Decoded(torch.utils.data.Dataset):
    """Decoded uint8 H×W×3 images as a plain script would serve them: float CHW, flipped at
    random."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y.astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        img = torch.from_numpy(self.x[i]).permute(2, 0, 1).float().div_(255)
        if torch.rand(()) < 0.5:
            img = img.flip(2)
        return img, self.y[i]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_pass(model, opt, loader, device) -> float:
    """One pass of the plain eager loop; returns its mean loss."""
    model.train()
    total, n = torch.zeros((), device=device), 0
    for xb, yb in loader:
        xb = xb.to(device, non_blocking=True)
        yb = yb.to(device, non_blocking=True)
        loss = nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(yb)
        n += len(yb)
    return total.item() / n


def run_path(name: str, x: np.ndarray, y: np.ndarray, args, device) -> dict:
    amp = "bf16" if name.endswith("bf16") else "off"
    cfg = resolve_config("reference", overrides={"amp": amp, "device": str(device), "seed": 0})
    torch.manual_seed(0)
    model = build_model(cfg.arch).to(device)
    opt = make_optimizer(model, cfg)
    if name.startswith("eager"):
        loader = torch.utils.data.DataLoader(
            Decoded(x, y),
            batch_size=cfg.batch_size,
            shuffle=True,
            num_workers=args.workers,
            pin_memory=device.type == "cuda",
            persistent_workers=args.workers > 0,
        )

        def one_pass() -> float:
            return plain_pass(model, opt, loader, device)
    else:
        net = model
        if "compile" in name:
            net = FullBatchCompiled(model, cfg.batch_size, args.compile)
        xd = torch.from_numpy(x).to(device)
        yd = torch.from_numpy(y.astype(np.float32)).to(device)
        gen = torch.Generator().manual_seed(0)

        def one_pass() -> float:
            row = train_one_epoch(net, opt, None, xd, yd, gen, cfg, device, False, "", 0)
            return row["train_loss"]

    t0 = time.perf_counter()
    one_pass()  # warm-up
    sync(device)
    warm = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    loss = one_pass()
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        "path": name,
        "amp": amp,
        "images": len(x),
        "warmup_seconds": warm,
        "seconds": seconds,
        "images_per_second": len(x) / seconds,
        "second_pass_loss": loss,
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
    }


def table(rows: list[dict]) -> str:
    base = rows[0]["images_per_second"]
    out = [
        "| path | math | warm-up s | timed s | images/s | × plain | loss (2nd pass) "
        "| peak GPU GB |",
        "|" + "---|" * 8,
    ]
    for r in rows:
        gb = "n/a" if r["peak_gpu_gb"] is None else f"{r['peak_gpu_gb']:.2f}"
        math = "fp32 (reference)" if r["amp"] == "off" else "bf16 (not identical)"
        out.append(
            f"| {r['path']} | {math} | {r['warmup_seconds']:.1f} | {r['seconds']:.1f} | "
            f"{r['images_per_second']:.0f} | {r['images_per_second'] / base:.2f} | "
            f"{r['second_pass_loss']:.4f} | {gb} |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="CIFAKE training data")
    p.add_argument("--images", type=int, default=16000, help="training images per pass")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the plain path")
    p.add_argument(
        "--compile",
        default="reduce-overhead",
        choices=["default", "reduce-overhead", "max-autotune"],
        help="torch.compile mode of the compiled path",
    )
    p.add_argument("--bf16", action="store_true", help="add the compiled loop in bf16")
    p.add_argument("--json", default="reference_speed.json", help="raw rows are written here")
    args = p.parse_args()
    device = resolve_device(args.device)
    data = load_images(args.data, subset=args.images, progress=False)
    paths = ["eager + DataLoader", "fakescope loop", "fakescope loop + compile"]
    if args.bf16:
        paths.append("fakescope loop + compile, bf16")
    if device.type != "cuda":  # torch's CPU compiler crashed on training steps (training.py)
        paths = [p for p in paths if "compile" not in p]
    rows = [run_path(name, data.x, data.y, args, device) for name in paths]
    print(
        f"device: {device} ({hardware(device)}); torch {torch.__version__}; "
        f"{time.strftime('%Y-%m-%d')}; reference recipe (ResNet-18, batch 16, Adam 5e-4), "
        f"{len(data)} images per pass, compile mode {args.compile}"
    )
    print(table(rows))
    Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
