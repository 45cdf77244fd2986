"""The shared data's sources, as the photo benchmarks see them: names, files, classes, splits.

Each source is one generator family (fakes) or one kind of photo (reals); a source that holds
both classes (aivsreal256, sdv1coco) is held out whole. A fake-only source is tested against
the real photos it is naturally paired with (data/README.md): SD 3.5 and SDXL crops against the
camera crops of the same collection, GAN faces against the people photos of aivsreal256.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fakescope.data import load_images

# name -> (train files, validation files, classes held)
SOURCES: dict[str, tuple[list[str], list[str], str]] = {
    "aivsreal256": (
        [
            "aivsreal256/aivsreal256-train-real-1.tar",
            "aivsreal256/aivsreal256-train-fake-1.tar",
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
    "faces-real": (["faces/faces-real.tar"], ["faces/faces-real.tar"], "real"),
    "faces-sd21": (["faces/faces-sd21.tar"], ["faces/faces-sd21.tar"], "fake"),
    "hardreals": (["hardreals/hardreals-crops.tar"], ["hardreals/hardreals-crops.tar"], "real"),
    "hardreals-web": (["hardreals/hardreals-web.tar"], ["hardreals/hardreals-web.tar"], "real"),
    "mj7": (["newgens/newgens-mj7.tar"], ["newgens/newgens-mj7.tar"], "fake"),
    "whisk": (["newgens/newgens-whisk.tar"], ["newgens/newgens-whisk.tar"], "fake"),
    "newgens-web": (["newgens/newgens-web.tar"], ["newgens/newgens-web.tar"], "fake"),
}
FAKE_SOURCES = (
    "aivsreal256",
    "sdv1coco",
    "sd35",
    "sdxl",
    "ganfaces",
    "faces-sd21",
    "mj7",
    "whisk",
    "newgens-web",
)
# the sources of real photos only (their false-positive rate is what a photographer meets)
REAL_SOURCES = ("cameras", "faces-real", "hardreals", "hardreals-web")
# whole images (long side 640): loaded as they are, never cropped
WHOLE = ("hardreals-web", "newgens-web")
ART_PREFIX = "art-"
# the reals a held-out fake source is tested against (its own, else its natural pair)
PAIRED_REALS = {
    "aivsreal256": "aivsreal256",
    "sdv1coco": "sdv1coco",
    "sd35": "cameras",
    "sdxl": "cameras",
    "ganfaces": "aivsreal256",
    "faces-sd21": "faces-real",
    "mj7": "hardreals",
    "whisk": "hardreals",
    "newgens-web": "hardreals-web",
}


def train_args(shared: Path) -> list[str]:
    """`fakescope train --data` arguments for every source (NAME=PATH)."""
    return [f"{name}={shared / f}" for name, (files, _, _) in SOURCES.items() for f in files]


@dataclass
class WholeSet:
    """Whole images of different sizes: `x` an object array of H×W×3 uint8 arrays (so that
    `ds.x[mask]` works as on an `ImageSet`), `y` 0 real / 1 fake, `names` `TAR::MEMBER`."""

    x: np.ndarray
    y: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.y)


def load_whole(files: list[Path], split: str) -> WholeSet:
    """A split of tars laid out `SPLIT/real|fake/FILE`, each image decoded whole by the
    Detector's rule (`fakescope.images`: first frame, EXIF orientation, RGB), never resized."""
    from fakescope.images import load_rgb

    x, y, names = [], [], []
    for f in files:
        with tarfile.open(f) as tar:
            for m in sorted(tar.getmembers(), key=lambda m: m.name):
                parts = m.name.split("/")
                if not m.isfile() or len(parts) != 3 or parts[0] != split:
                    continue
                if parts[1] not in ("real", "fake"):
                    continue
                data = tar.extractfile(m).read()  # type: ignore[union-attr]
                x.append(load_rgb(data))
                y.append(int(parts[1] == "fake"))
                names.append(f"{f}::{m.name}")
    arr = np.empty(len(x), dtype=object)
    arr[:] = x
    return WholeSet(arr, np.array(y, np.int64), names)


def is_art(name: str) -> bool:
    """A human-made artwork of the hard reals (not a photo)."""
    return Path(name.split("::")[-1]).name.startswith(ART_PREFIX)


def load_split(shared: Path, name: str, split: str, size: int = 256):
    """One source's `train` or `validation` images, decoded as native centre crops (whole,
    as a `WholeSet`, for the whole-image sources)."""
    files = SOURCES[name][0 if split == "train" else 1]
    if name in WHOLE:
        return load_whole([shared / f for f in files], split)
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
