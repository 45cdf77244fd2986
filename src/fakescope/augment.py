"""Shortcut-free training augmentation for native-resolution models.

Detectors learn shortcuts when the classes differ in anything but generation: file format, JPEG
quality, image size, resizing ("Fake or JPEG?", Grommelt et al. 2024). So *both* classes go
through the same random pipeline, in the order a photo meets them on the web:

    random rescale (0.5-1.5x, random filter)  ->  mild blur / noise  ->  JPEG re-encode
    (random quality, sometimes none)  ->  random crop at the model's tile size  ->  flip

Per image, on the CPU, with Pillow (the cost is small next to the network's). Seeded through a
`numpy.random.Generator`, so a run is reproducible.
"""

from __future__ import annotations

import io
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
    flip: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """Encode and decode once at `quality` (4:2:0 as most cameras and web pipelines do)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def augment_image(
    x: np.ndarray, crop: int, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray:
    """One H×W×3 uint8 image -> one `crop`×`crop`×3 uint8 training crop."""
    img = Image.fromarray(x)
    w, h = img.size
    if rng.random() < cfg.rescale_p:
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
        img = jpeg(img, int(rng.integers(cfg.jpeg_min, cfg.jpeg_max + 1)))
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
    x: np.ndarray, crop: int, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray:
    """N×H×W×3 uint8 -> N×crop×crop×3 uint8."""
    return np.stack([augment_image(a, crop, rng, cfg) for a in x])
