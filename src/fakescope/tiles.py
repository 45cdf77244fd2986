"""Native-resolution tiling and aggregation (numpy only: shared by every backend).

A photo is never shrunk to a thumbnail: shrinking erases the traces generators leave (B-Free,
CVPR 2025, never resizes and averages over crops). Instead the model scores `tile`×`tile` crops
at the image's own pixel scale and the image's logit aggregates the tiles' logits.

Grid: along each axis, the fewest tile positions that cover the image with at least `overlap`
(a fraction of the tile) between neighbours, spread evenly from edge to edge. When the grid holds
more than `budget` tiles, a coarser grid of at most `budget` tiles is spread evenly over the whole
image instead (gaps between tiles, but every region of the photo is sampled), so time and memory
stay bounded for any image size.

Few tiles, less evidence: the mean of n tile logits varies between images as
sigma_b^2 + sigma_w^2 / n (between images, within an image), so an image of one tile (a 128-px
photo) is scored more extremely than the 4-tile photos the threshold was set on, and more of its
reals cross the threshold. With `few_tiles` = n_ref (the calibration photos' tile count), an
image of n < n_ref tiles has its logit pulled toward `few_centre` (the class midpoint) by the
ratio of the two variances, (1 + r / n_ref) / (1 + r / n) with r = sigma_w^2 / sigma_b^2: the
slope a Gaussian model of the two classes gives for n tiles against n_ref (fitted on held-out
photos by `fit_few_tiles`). Images of n_ref tiles or more are untouched, so a large photo is
never scored more confidently than the calibration photos.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TileRule:
    """How an image of any size becomes tiles, and how tile logits become one logit."""

    tile: int = 128
    overlap: float = 0.0  # fraction of a tile shared by neighbours (0 = touching)
    budget: int = 48  # at most this many tiles per image
    aggregate: str = "mean"  # mean | topk (mean of the top `topk` fraction of tile logits)
    topk: float = 0.25
    # Halve an image whose pixels carry no detail at their own scale (an enlargement far beyond
    # its content, see `restore_scale`) before tiling; 0 = off.
    detail_floor: float = 0.0
    # Images with fewer tiles than `few_tiles` are scored less confidently (module docstring);
    # 0 = off.
    few_tiles: int = 0
    few_ratio: float = 0.0  # r = within-image / between-image variance of tile logits
    few_centre: float = 0.0  # the logit they are pulled toward

    def to_dict(self) -> dict:
        return asdict(self)


def _positions(length: int, tile: int, step: float) -> np.ndarray:
    """Start offsets of tiles covering [0, length) with neighbours at most `step` apart."""
    if length <= tile:
        return np.zeros(1, dtype=int)
    n = math.ceil((length - tile) / step) + 1
    return np.round(np.linspace(0, length - tile, n)).astype(int)


def grid(h: int, w: int, rule: TileRule) -> list[tuple[int, int]]:
    """(top, left) of every tile for an h×w image, row by row."""
    step = max(1.0, rule.tile * (1.0 - rule.overlap))
    ys, xs = _positions(h, rule.tile, step), _positions(w, rule.tile, step)
    if len(ys) * len(xs) > rule.budget:
        # Shrink both axes by the same factor so the sample stays spread over the whole image.
        f = math.sqrt(rule.budget / (len(ys) * len(xs)))
        ny, nx = max(1, int(len(ys) * f)), max(1, int(len(xs) * f))
        while ny * nx > rule.budget:  # rounding guard
            ny, nx = (ny - 1, nx) if ny >= nx else (ny, nx - 1)
        ys = np.round(np.linspace(0, max(0, h - rule.tile), ny)).astype(int)
        xs = np.round(np.linspace(0, max(0, w - rule.tile), nx)).astype(int)
    return [(int(y), int(x)) for y in ys for x in xs]


def cut(image: np.ndarray, rule: TileRule) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """H×W×3 uint8 -> (T×tile×tile×3 tiles, their positions). The image must be at least one
    tile in each direction (smaller images are scored whole; see `fakescope.images`)."""
    h, w = image.shape[:2]
    pos = grid(h, w, rule)
    t = rule.tile
    tiles = np.stack([image[y : y + t, x : x + t] for y, x in pos])
    return tiles, pos


def aggregate(logits: np.ndarray, rule: TileRule) -> float:
    """One image logit from its tiles' logits; independent of tile order.

    `mean`: the average logit (a product of tile likelihood ratios: every tile is evidence).
    `topk`: the mean of the highest `topk` fraction, for fakes that are only partly generated.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if rule.aggregate == "mean":
        z = float(logits.mean())
    elif rule.aggregate == "topk":
        k = max(1, math.ceil(rule.topk * len(logits)))
        z = float(np.sort(logits)[-k:].mean())
    else:
        raise ValueError(f"unknown aggregation {rule.aggregate!r} (mean or topk)")
    return rule.few_centre + (z - rule.few_centre) * few_tiles_factor(len(logits), rule)


def evidence(h: int, w: int, n: int, rule: TileRule) -> float:
    """How many tiles' worth of pixels an h×w image (padded to at least one tile a side) gives
    its n tiles: its area in tiles, at most n. Overlapping tiles share pixels, so the four
    tiles of a 141-px image carry little more than one tile's evidence, not four."""
    return float(min(n, h * w / rule.tile**2))


def few_tiles_factor(n: int, rule: TileRule) -> float:
    """How much of an n-tile image's logit deviation is kept (1 at `few_tiles` and above)."""
    if n >= rule.few_tiles:
        return 1.0
    return (1 + rule.few_ratio / rule.few_tiles) / (1 + rule.few_ratio / n)


def fit_few_tiles(tile_logits: list[np.ndarray], y: np.ndarray) -> dict:
    """`few_tiles`, `few_ratio`, `few_centre` from held-out images' per-tile logits (each
    image n_ref tiles or more, n_ref = the smallest count; labels `y`, 0 real / 1 fake):
    the pooled within-image variance, the between-image variance of the means within each
    class, and the midpoint of the two class means."""
    n_ref = min(len(t) for t in tile_logits)
    if n_ref < 2:
        raise ValueError("every held-out image needs at least two tiles")
    means = np.array([np.mean(t) for t in tile_logits])
    within = float(np.mean([np.var(t, ddof=1) for t in tile_logits]))
    n_mean = float(np.mean([len(t) for t in tile_logits]))
    between_of_means = float(
        sum(np.var(means[y == c], ddof=1) * (np.sum(y == c) - 1) for c in (0, 1)) / (len(y) - 2)
    )
    between = max(between_of_means - within / n_mean, 1e-6)
    centre = float((means[y == 0].mean() + means[y == 1].mean()) / 2)
    return {"few_tiles": int(n_ref), "few_ratio": within / between, "few_centre": centre}


def detail(a: np.ndarray) -> float:
    """Mean |luma - Gaussian blur (sigma 1) of luma| over the centre (at most 1024 px): a
    camera's or a generator's pixels keep some (the 1st percentile of every shared source's
    photos is 0.09 or more); an image enlarged 8x or more has almost none (< 0.05, JPEG
    re-encoded or not; BENCHMARKS.md)."""
    from PIL import Image, ImageFilter

    h, w = a.shape[:2]
    t, le = max(0, (h - 1024) // 2), max(0, (w - 1024) // 2)
    g = Image.fromarray(np.ascontiguousarray(a[t : t + 1024, le : le + 1024])).convert("L")
    x = np.asarray(g, np.float32)
    b = np.asarray(g.filter(ImageFilter.GaussianBlur(1.0)), np.float32)
    return float(np.abs(x - b)[2:-2, 2:-2].mean()) if min(x.shape) > 4 else float("inf")


def restore_scale(a: np.ndarray, rule: TileRule) -> tuple[np.ndarray, int]:
    """(image, factor): while the image's `detail` is under `rule.detail_floor` and it is at
    least four tiles on its shorter side, halve it (2×2 box average). Resampling is not
    generation: a photo enlarged far beyond its content is scored near the scale its detail
    has, the range the model was trained on (reals resampled 0.25-4x), instead of as tiles of
    blur. Images with detail, and every image under four tiles a side, are left as they are."""
    factor = 1
    if not rule.detail_floor:
        return a, factor
    from PIL import Image

    while min(a.shape[:2]) >= 4 * rule.tile and detail(a) < rule.detail_floor:
        a = np.asarray(Image.fromarray(a).reduce(2))
        factor *= 2
    return a, factor
