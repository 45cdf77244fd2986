"""The shared data's sources, as the photo benchmarks see them: names, files, classes, splits.

Each source is one generator family (fakes) or one kind of photo (reals); a source that holds
both classes (aivsreal256, sdv1coco) is held out whole. A fake-only source is tested against
the real photos it is naturally paired with (data/README.md): SD 3.5 and SDXL crops against the
camera crops of the same collection, GAN faces against the people photos of aivsreal256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fakescope.data import load_images

# name -> (train files, validation files, classes held)
SOURCES: dict[str, tuple[list[str], list[str], str]] = {
    "aivsreal256": (
        [
            "aivsreal256/aivsreal256-train-real-1.tar",
            "aivsreal256/aivsreal256-train-real-2.tar",
            "aivsreal256/aivsreal256-train-fake-1.tar",
            "aivsreal256/aivsreal256-train-fake-2.tar",
        ],
        ["aivsreal256/aivsreal256-validation.tar"],
        "both",
    ),
    "sdv1coco": (
        ["sdv1coco/sdv1coco-crops256-train.tar"],
        ["sdv1coco/sdv1coco-crops256-validation.tar"],
        "both",
    ),
    "cameras": (
        ["multisource/multisource-cameras.tar"],
        ["multisource/multisource-cameras.tar"],
        "real",
    ),
    "sd35": (["multisource/multisource-sd35.tar"], ["multisource/multisource-sd35.tar"], "fake"),
    "sdxl": (["multisource/multisource-sdxl.tar"], ["multisource/multisource-sdxl.tar"], "fake"),
    "ganfaces": (["ganfaces/ganfaces.tar"], ["ganfaces/ganfaces.tar"], "fake"),
}
FAKE_SOURCES = ("aivsreal256", "sdv1coco", "sd35", "sdxl", "ganfaces")
# the reals a held-out fake source is tested against (its own, else its natural pair)
PAIRED_REALS = {
    "aivsreal256": "aivsreal256",
    "sdv1coco": "sdv1coco",
    "sd35": "cameras",
    "sdxl": "cameras",
    "ganfaces": "aivsreal256",
}


def train_args(shared: Path) -> list[str]:
    """`fakescope train --data` arguments for every source (NAME=PATH)."""
    return [f"{name}={shared / f}" for name, (files, _, _) in SOURCES.items() for f in files]


def load_split(shared: Path, name: str, split: str, size: int = 256):
    """One source's `train` or `validation` images, decoded as native centre crops."""
    files = SOURCES[name][0 if split == "train" else 1]
    return load_images(
        [shared / f for f in files],
        size=size,
        rule="crop",
        split=split,
        purpose="train" if split == "train" else "eval",
        progress=False,
        one_class=True,
    )


def held_out_test(
    name: str, parts: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of held-out fake source `name` against its paired validation reals,
    from `parts[(source, 'validation')] = (scores, labels)`."""
    fs, fy = parts[(name, "validation")]
    rs, ry = parts[(PAIRED_REALS[name], "validation")]
    fake, real = fs[fy == 1], rs[ry == 0]
    return np.concatenate([real, fake]), np.r_[np.zeros(len(real)), np.ones(len(fake))]
