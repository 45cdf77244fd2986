"""Time of one photo explanation (`Detector.explain`) on the CPU, and where it goes.

Measures the tile map that `explain` draws for a tiled model (the shipped `photo-effnet-lite2`
by default) against what it replaced, Grad-CAM within each of the model's own tiles (`--old`,
re-run here from `fakescope.explain.cam_batch` exactly as the old code called it). The photo is
synthetic (smooth colour fields plus sensor-like noise) so the run needs no data.

    OMP_NUM_THREADS=2 python benchmarks/explain_speed.py --sizes 1024x768 4000x3000 --old
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import hardware
from PIL import Image

from fakescope.detector import Detector
from fakescope.explain import _view_hw, cam_batch, tile_map
from fakescope.images import load_rgb, pad_to
from fakescope.tiles import cut


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 64 + 2, w // 64 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC), float)
    return Image.fromarray(np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype("u1"))


def parts(det: Detector, img: Image.Image, old: bool) -> dict[str, float]:
    """Seconds per stage of one explanation (the stages of `explain_image` for tiles)."""
    t = {}
    t0 = time.perf_counter()
    a = load_rgb(img)
    big = pad_to(a, det.input_size)
    t["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tiles, _ = cut(big, det.tile_rule)
    z = det.logits_arrays(tiles)
    pred = int(det.row("", det.image_logit(z))["prob_fake"] >= det.threshold)
    t["verdict (model's tiles)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, n = tile_map(det, big, pred, a.shape[:2], _view_hw(*a.shape[:2]))
    t[f"tile map ({n} tiles + interpolation)"] = time.perf_counter() - t0
    if old:
        t0 = time.perf_counter()
        cam_batch(det.model, tiles, np.full(len(tiles), pred), det.input_size, "gradcam", 16)
        t[f"old: Grad-CAM in {len(tiles)} tiles"] = time.perf_counter() - t0
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="photo-effnet-lite2")
    p.add_argument("--sizes", nargs="+", default=["1024x768", "4000x3000"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--old", action="store_true", help="also time the Grad-CAM-in-tiles map")
    args = p.parse_args()
    det = Detector.load(args.model, device="cpu")
    if det.rule != "tiles":
        raise SystemExit(f"{args.model} is not a tiled model")
    _ = det.model  # the PyTorch network explain loads once: not part of one explanation
    print(
        f"model {det.name}, backend {det.runner.name}; {hardware(torch.device('cpu'))}; torch "
        f"{torch.__version__}; {time.strftime('%Y-%m-%d')}; median of {args.repeats}"
    )
    print("| photo | stage | seconds |\n|---|---|---|")
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        img = photo(w, h)
        runs = [parts(det, img, args.old and i == 0) for i in range(args.repeats)]
        keys = dict.fromkeys(k for r in runs for k in r)
        for k in keys:
            print(f"| {w}×{h} | {k} | {statistics.median(r[k] for r in runs if k in r):.2f} |")
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            det.explain(img)
        print(
            f"| {w}×{h} | **`Detector.explain`, whole** | "
            f"**{(time.perf_counter() - t0) / args.repeats:.2f}** |"
        )


if __name__ == "__main__":
    main()
