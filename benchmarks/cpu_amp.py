"""Training steps per second on the CPU with bf16 autocast vs fp32 (why the `cpu` preset uses bf16).

Synthetic batches (speed does not depend on pixel values), the `cpu` preset's model, batch size
and memory format; the two settings alternate in every round so machine drift hits both alike.

    python benchmarks/cpu_amp.py --rounds 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import hardware

from fakescope.models import autocast, build_model
from fakescope.training.config import resolve_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="training steps per measurement")
    args = p.parse_args()
    cfg = resolve_config("cpu")
    dev = torch.device("cpu")
    torch.manual_seed(0)
    model = build_model(cfg.arch).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(cfg.batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(cfg.batch_size) > 0.5).float()
    speed: dict[str, list[float]] = {"bf16": [], "off": []}
    for _ in range(args.rounds):
        for amp in speed:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                with autocast(dev, amp):
                    logits = model(x).float()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            speed[amp].append(args.steps * cfg.batch_size / (time.perf_counter() - t0))
    ratio = np.array(speed["bf16"]) / np.array(speed["off"])
    print(
        f"{hardware(dev)}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; "
        f"{cfg.arch}, batch {cfg.batch_size}"
    )
    print("| precision | training images/s (median) |\n|---|---|")
    print(f"| bf16 autocast | {np.median(speed['bf16']):.0f} |")
    print(f"| fp32 | {np.median(speed['off']):.0f} |")
    print(f"bf16 / fp32 per round: {np.round(ratio, 2).tolist()}")


if __name__ == "__main__":
    main()
