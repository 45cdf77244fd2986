"""CLIP embeddings of every shared source and split, cached for the transfer experiments.

Training images go through the same random re-encoding in both classes before the encoder
(JPEG at quality 60-95 for half of them: the multisource fakes are PNG, the reals camera JPEG,
and a probe must not learn the format); validation images are embedded as they are.

    python benchmarks/clip_features.py --shared ../shared/data --out /work/runs/clipfeat
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sources import SOURCES, load_split

from fakescope import clip
from fakescope.training.augment import jpeg


def views(x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """N×H×W×3 uint8 -> N×224×224×3 encoder views (re-encoded at random when `rng`)."""
    from PIL import Image

    out = np.empty((len(x), clip.SIZE, clip.SIZE, 3), np.uint8)
    for i, a in enumerate(x):
        img = Image.fromarray(a)
        if rng is not None and rng.random() < 0.5:
            img = jpeg(img, int(rng.integers(60, 96)))
        out[i] = clip.view(img)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), help="default: every source")
    ap.add_argument(
        "--splits",
        nargs="+",
        default=["train", "validation"],
        choices=["train", "validation"],
        help="default: both (a remeasure of shipped files needs only validation)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    enc = clip.Encoder()
    for name in args.sources:
        for split in args.splits:
            f = args.out / f"{name}_{split}.npz"
            if f.exists():
                continue
            t0 = time.perf_counter()
            ds = load_split(args.shared, name, split)
            rng = np.random.default_rng(0) if split == "train" else None
            e = np.concatenate(
                [enc.embed(views(ds.x[i : i + 64], rng)) for i in range(0, len(ds), 64)]
            )
            np.savez(f, names=np.array(ds.names), y=ds.y, emb=e)
            print(f"{name} {split}: {len(ds)} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
