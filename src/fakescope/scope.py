"""Is this a photo at all? A cheap test for graphics, screenshots, charts, icons and text.

The photo models learned camera photos against generated photos; a chart or a screenshot is
neither, and their flat, noise-free areas look to a tile model like a generator's smoothness
(icons scored ~0.9 "fake"). Rather than guess, such an image is marked out of scope: the row's
label is `uncertain` and `note` says why; `prob_fake` stays the pixel score.

Statistics on a copy of at most 512 px a side (numpy and Pillow, a few milliseconds):

- `flat`: the share of pixels whose right and lower neighbours are identical in every channel.
  Sensor noise makes that rare in photos, even in smooth skies; drawings, UI and text on plain
  backgrounds are mostly flat, and JPEG re-encoding keeps large flat areas flat. (A photo's
  clipped highlights are flat too; the palette test keeps most of them in scope.)
- `palette`: the share of pixels covered by the 16 most frequent colours (5 bits a channel).
- `sharp`: among horizontal neighbours that differ at all, the share that differ by more than
  96 grey levels: drawn edges and text are steps, a photo's edges are ramps.

Photos with a black or white studio background or a heavy filter are flat and few-coloured
too, but their edges are soft. So an image is out of scope when `palette >= PALETTE` and either
`flat >= FLAT_ALONE`, or `flat >= FLAT` with `sharp >= SHARP`.

An image with no texture at all at its own pixel scale (`detail` under `NO_DETAIL`: the mean
difference between luma and its Gaussian blur, `fakescope.tiles.detail`; a colour gradient
scores 0.0, every shared real photo 0.008 or more) is out of scope too: a smooth render, or a
photo blurred or enlarged far beyond its content, carries no pixel evidence either way.

A weaker test, `graphic_like` (`palette >= LIKE_PALETTE` and `flat >= LIKE_FLAT`), catches most
of the JPEG re-encoded icons, line charts and text that slip under the first one, but also a
few photos on a plain background (0.3% of the shared real photos, 0.7% of the fakes). Its
flat areas are what a tile model mistakes for a generator's smoothness, so such an image is
never *called fake* on its pixels: a `fake` verdict becomes `uncertain` with a `note` (`real`
stands). The thresholds and their measured rates (real and generated photos of every shared
source, and made-up graphics) are in BENCHMARKS.md ("Out of scope"), from
`benchmarks/scope_check.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from fakescope.tiles import detail

FLAT = 0.35  # with sharp edges
FLAT_ALONE = 0.75  # without
PALETTE = 0.5
SHARP = 0.1
NO_DETAIL = 0.005  # texture below this: nothing at the pixel level to judge
LIKE_PALETTE = 0.8  # the weaker test: no `fake` verdict
LIKE_FLAT = 0.35
MAX_SIDE = 512


@dataclass(frozen=True)
class Scope:
    flat: float
    palette: float
    sharp: float = 0.0
    detail: float = float("inf")

    @property
    def smooth(self) -> bool:
        return self.detail < NO_DETAIL

    @property
    def out_of_scope(self) -> bool:
        if self.smooth:
            return True
        if self.palette < PALETTE:
            return False
        return self.flat >= FLAT_ALONE or (self.flat >= FLAT and self.sharp >= SHARP)

    @property
    def graphic_like(self) -> bool:
        return self.palette >= LIKE_PALETTE and self.flat >= LIKE_FLAT

    @property
    def note(self) -> str:
        """Why the image is out of scope ("" when it is a photo)."""
        if not self.out_of_scope:
            return ""
        if self.smooth:
            return (
                "out of scope: no texture at the pixel level (a smooth render, or blurred or "
                "enlarged far beyond its content), nothing for a photo model to judge"
            )
        return (
            "out of scope: looks like a graphic, screenshot or text, not a photo "
            f"({self.flat:.0%} flat pixels, 16 colours cover {self.palette:.0%})"
        )

    @property
    def caution(self) -> str:
        """Why a `fake` verdict is withheld ("" unless `graphic_like` and in scope)."""
        if self.out_of_scope or not self.graphic_like:
            return ""
        return (
            "not called fake: few colours and large flat areas, as in a graphic or a photo "
            f"on a plain background ({self.flat:.0%} flat pixels, 16 colours cover "
            f"{self.palette:.0%}), which the photo model misreads"
        )


def measure(image: Image.Image | np.ndarray) -> Scope:
    """The statistics of one RGB image (uint8 array or PIL image)."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    step = -(-max(a.shape[:2]) // MAX_SIDE)  # nearest-neighbour subsampling keeps flat areas flat
    small = a[::step, ::step]
    a = small.astype(np.int16)
    if a.shape[0] < 2 or a.shape[1] < 2:
        return Scope(0.0, 0.0)
    core = a[:-1, :-1]
    same = (core == a[:-1, 1:]).all(-1) & (core == a[1:, :-1]).all(-1)
    flat = float(same.mean())
    luma = a.mean(-1)
    step = np.abs(luma[:, 1:] - luma[:, :-1])
    sharp = float((step > 96).sum()) / max(1, int((step > 2).sum()))
    q = (a >> 3).reshape(-1, 3)
    codes = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    counts = np.bincount(codes, minlength=1 << 15)
    top = np.sort(counts)[-16:].sum()
    return Scope(flat, float(top) / len(codes), sharp, detail(small.astype(np.uint8, copy=False)))
