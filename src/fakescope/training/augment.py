"""Shortcut-free training augmentation for native-resolution models.

Detectors learn shortcuts when the classes differ in anything but generation: file format, JPEG
quality, image size, resizing ("Fake or JPEG?", Grommelt et al. 2024). So *both* classes go
through the same random pipeline, in the order a photo meets them on the web:

    [reals only, optionally: resample 0.25-4x] or random rescale (0.5-1.5x, random filter)
    ->  mild blur / noise  ->  re-encode (JPEG at a random quality, WebP, or none: PNG)
    ->  random crop at the model's tile size  ->  flip

Per image, on the CPU, with Pillow (the cost is small next to the network's). Seeded through a
`numpy.random.Generator`, so a run is reproducible.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageFilter

RESAMPLE = (
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
)


@dataclass
class AugmentConfig:
    """Probabilities and ranges of each step (all applied alike to both classes)."""

    rescale_p: float = 0.5
    rescale_min: float = 0.5
    rescale_max: float = 1.5
    blur_p: float = 0.1
    blur_max: float = 1.0  # Gaussian sigma, pixels
    noise_p: float = 0.1
    noise_max: float = 3.0  # Gaussian sigma on 0..255
    jpeg_p: float = 0.6
    jpeg_min: int = 50
    jpeg_max: int = 100
    # Codec shortcuts (a source saved at one quality, PNG fakes vs camera JPEG reals): a share of
    # the re-encodes is WebP (quality jpeg_min..jpeg_max) instead of JPEG, and a share of the
    # JPEG ones uses one of `jpeg_exact` (e.g. 75 and 100, the two qualities the faces sources
    # were saved at), so that no quality or codec belongs to one class. 0 / () = JPEG only.
    webp_share: float = 0.0
    jpeg_exact: tuple[int, ...] = ()
    jpeg_exact_share: float = 0.0
    flip: bool = True
    # Resampling is not generation: reals only, resized by a random factor in
    # [real_resample_min, real_resample_max] (log-uniform, a random filter) before the rest of
    # the pipeline, so upscaled and downscaled photos are learned as real. Fakes keep the
    # symmetric rescale above. 0 = off (the recipe of the first photo releases).
    real_resample_p: float = 0.0
    real_resample_min: float = 0.25
    real_resample_max: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """Encode and decode once at `quality` (4:2:0 as most cameras and web pipelines do)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def webp(img: Image.Image, quality: int) -> Image.Image:
    """Encode and decode once as lossy WebP at `quality`."""
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def reencode(img: Image.Image, rng: np.random.Generator, cfg: AugmentConfig) -> Image.Image:
    """The codec step, the same for both classes: JPEG (a random quality, sometimes one of
    `jpeg_exact`) or WebP, as configured; the caller decides whether to re-encode at all."""
    quality = int(rng.integers(cfg.jpeg_min, cfg.jpeg_max + 1))
    if cfg.webp_share and rng.random() < cfg.webp_share:
        return webp(img, quality)
    if cfg.jpeg_exact and rng.random() < cfg.jpeg_exact_share:
        quality = int(cfg.jpeg_exact[rng.integers(len(cfg.jpeg_exact))])
    return jpeg(img, quality)


def _resample(img: Image.Image, crop: int, lo: float, hi: float, rng) -> Image.Image:
    """Resize by a log-uniform factor in [lo, hi], never below one crop; an upscale is cut to
    about two crops around a random point first (the rest would be thrown away)."""
    w, h = img.size
    lo = max(lo, crop / min(w, h))
    s = float(np.exp(rng.uniform(np.log(lo), np.log(max(lo, hi)))))
    if s > 1:
        cw, ch = min(w, math.ceil(2 * crop / s) + 2), min(h, math.ceil(2 * crop / s) + 2)
        left, top = int(rng.integers(w - cw + 1)), int(rng.integers(h - ch + 1))
        img, w, h = img.crop((left, top, left + cw, top + ch)), cw, ch
    size = (max(crop, round(w * s)), max(crop, round(h * s)))
    return img.resize(size, RESAMPLE[rng.integers(len(RESAMPLE))])


def augment_image(
    x: np.ndarray,
    crop: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    label: float | None = None,
) -> np.ndarray:
    """One H×W×3 uint8 image -> one `crop`×`crop`×3 uint8 training crop (`label` 0 = real
    enables the reals-only resampling step)."""
    img = Image.fromarray(x)
    w, h = img.size
    real = label is not None and label < 0.5
    if cfg.real_resample_p and real and rng.random() < cfg.real_resample_p:
        img = _resample(img, crop, cfg.real_resample_min, cfg.real_resample_max, rng)
        w, h = img.size
    elif rng.random() < cfg.rescale_p:
        lo = max(cfg.rescale_min, crop / min(w, h))  # never smaller than one crop
        s = float(np.exp(rng.uniform(np.log(lo), np.log(max(lo, cfg.rescale_max)))))
        size = (max(crop, round(w * s)), max(crop, round(h * s)))
        img = img.resize(size, RESAMPLE[rng.integers(len(RESAMPLE))])
    if rng.random() < cfg.blur_p:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.1, cfg.blur_max))))
    if rng.random() < cfg.noise_p:
        a = np.asarray(img, dtype=np.float32)
        a = a + rng.normal(0, rng.uniform(0.5, cfg.noise_max), a.shape).astype(np.float32)
        img = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    if rng.random() < cfg.jpeg_p:
        img = reencode(img, rng, cfg)
    a = np.asarray(img)
    h, w = a.shape[:2]
    if h < crop or w < crop:  # only when the source itself is smaller than a crop
        a = np.pad(a, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="reflect")
        h, w = a.shape[:2]
    top, left = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    a = a[top : top + crop, left : left + crop]
    if cfg.flip and rng.random() < 0.5:
        a = a[:, ::-1]
    return np.ascontiguousarray(a)


def augment_batch(
    x: np.ndarray,
    crop: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """N×H×W×3 uint8 -> N×crop×crop×3 uint8."""
    if labels is None:
        return np.stack([augment_image(a, crop, rng, cfg) for a in x])
    return np.stack(
        [augment_image(a, crop, rng, cfg, float(t)) for a, t in zip(x, labels, strict=True)]
    )
