"""CLIP embeddings of every shared source and split, cached for the transfer experiments.

Training images go through the same random re-encoding in both classes before the encoder
(the photo preset's codec step, `fakescope.training.augment.reencode`: 3 in 4 re-encoded as
JPEG 60-100, often exactly 75 or 100, or WebP: the multisource fakes are PNG, the reals camera
JPEG, the real faces JPEG 100 and the SD 2.1 faces JPEG 75, and a probe must not learn the
format); validation images are embedded as they are. Whole-image sources (`sources.WHOLE`)
are embedded whole, as the Detector's CLIP view sees a user's photo.

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
from fakescope.training.augment import AugmentConfig, reencode
from fakescope.training.config import PRESETS

CODEC = AugmentConfig(**PRESETS["photo"]["augment"])


def views(x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """N×H×W×3 uint8 -> N×224×224×3 encoder views (re-encoded at random when `rng`)."""
    from PIL import Image

    out = np.empty((len(x), clip.SIZE, clip.SIZE, 3), np.uint8)
    for i, a in enumerate(x):
        img = Image.fromarray(a)
        if rng is not None and rng.random() < CODEC.jpeg_p:
            img = reencode(img, rng, CODEC)
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
