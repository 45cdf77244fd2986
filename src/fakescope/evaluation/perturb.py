"""The perturbation grid of the robustness report: what happens to an image on its way through
the web (re-compression, resizing, blur, noise, crops, colour edits), as pure PIL -> PIL functions.

Every perturbation works on an upright 8-bit RGB image (`decode_rgb`: the file's first frame,
EXIF orientation applied, converted by `fakescope.images.to_rgb`) and returns a new PIL image at
the size it states; the Detector then brings it to the model's input exactly as it does a clean
file. Random perturbations (noise, colour jitter) draw from a generator derived from
(seed, perturbation name, image index), so a report is reproducible and independent of the order
or subset of perturbations run.

Severity levels (the grid of issue 9):

| family | levels | what it does |
| --- | --- | --- |
| jpeg | q95, q75, q50, q30 | re-encode as JPEG at that quality (Pillow/libjpeg, 4:2:0) |
| webp | q75 | re-encode as lossy WebP at quality 75 |
| downup | 0.75x, 0.5x | shrink each side by the factor (Lanczos), back to the original (bicubic) |
| down | 0.5x | shrink each side by the factor (Lanczos) and keep it small |
| blur | sigma 0.5, 1, 2 | Gaussian blur of that standard deviation in pixels (scipy.ndimage) |
| noise | sigma 2, 5, 10 | add Gaussian noise of that std on the 0-255 scale, round, clip |
| crop | 90%, 75% | centre crop keeping that fraction of each side |
| jitter | 1 | brightness, contrast and saturation each scaled by a factor in [0.8, 1.2] |
| hflip | 1 | mirror left-right |
| web | 1 | longest side at most 768 px (Lanczos), then JPEG quality 60 |
| hard | 1 | longest side at most 512 px (Lanczos), then JPEG quality 40 |
| resampled | 0.25x, 0.5x, 2x, 4x | resize by the factor (filter drawn per image), JPEG q90 |

`resampled`: bilinear, bicubic or Lanczos; an enlargement stops at 4096 px on the longer side.
Resampling is not generation: a resized real photo must stay real.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from fakescope.errors import FakescopeError, ImageError
from fakescope.images import ImageSource, open_image, to_rgb

PerturbFn = Callable[[Image.Image, np.random.Generator], Image.Image]


@dataclass(frozen=True)
class Perturbation:
    """One named, parametrised perturbation; `level` is its label within the family (for plots,
    ordered from mild to severe)."""

    name: str
    family: str
    level: str
    fn: PerturbFn

    def __call__(self, img: Image.Image, seed: int = 0, index: int = 0) -> Image.Image:
        return self.fn(img, image_rng(seed, self.name, index))


def image_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """A generator for one (seed, perturbation, image): crc32 keeps it stable across processes
    (Python's `hash` of a string is salted per run)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


def decode_rgb(src: ImageSource) -> Image.Image:
    """A file as an upright 8-bit RGB image at its own size: the base every perturbation starts
    from (the same mode and orientation rules as `fakescope.images.to_model_input`)."""
    img = open_image(src)
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img = ImageOps.exif_transpose(img)
        out = to_rgb(img)
        out.load()
        return out
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode image: {e}") from None


# ---- the building blocks ------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, quality: int) -> Image.Image:
    """Re-encode in memory and decode again (what a re-upload does to the pixels)."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=quality)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


def jpeg(quality: int) -> PerturbFn:
    return lambda img, rng: encode(img, "JPEG", quality)


def webp(quality: int) -> PerturbFn:
    return lambda img, rng: encode(img, "WEBP", quality)


def _scaled(img: Image.Image, factor: float) -> tuple[int, int]:
    return max(1, round(img.width * factor)), max(1, round(img.height * factor))


def down(factor: float) -> PerturbFn:
    return lambda img, rng: img.resize(_scaled(img, factor), Image.Resampling.LANCZOS)


def down_up(factor: float) -> PerturbFn:
    def fn(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        small = img.resize(_scaled(img, factor), Image.Resampling.LANCZOS)
        return small.resize(img.size, Image.Resampling.BICUBIC)

    return fn


def blur(sigma: float) -> PerturbFn:
    """Exact Gaussian (scipy.ndimage): Pillow's GaussianBlur approximates it with box blurs,
    which is off for sub-pixel sigmas."""

    def fn(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        from scipy.ndimage import gaussian_filter

        a = np.asarray(img, dtype=np.float32)
        b = gaussian_filter(a, sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)
        return Image.fromarray(np.clip(np.rint(b), 0, 255).astype(np.uint8))

    return fn


def noise(sigma: float) -> PerturbFn:
    def fn(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        a = np.asarray(img, dtype=np.float32)
        a = a + rng.normal(0.0, sigma, a.shape).astype(np.float32)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))

    return fn


def centre_crop(fraction: float) -> PerturbFn:
    def fn(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = _scaled(img, fraction)
        left, top = (img.width - w) // 2, (img.height - h) // 2
        return img.crop((left, top, left + w, top + h))

    return fn


def colour_jitter(strength: float = 0.2) -> PerturbFn:
    def fn(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
        img = ImageEnhance.Brightness(img).enhance(b)
        img = ImageEnhance.Contrast(img).enhance(c)
        return ImageEnhance.Color(img).enhance(s)

    return fn


def hflip(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(img)


def fit_within(img: Image.Image, longest: int) -> Image.Image:
    """Shrink (never enlarge) so the longest side is at most `longest` px, keeping the aspect."""
    if max(img.size) <= longest:
        return img
    f = longest / max(img.size)
    size = (max(1, min(longest, round(img.width * f))), max(1, min(longest, round(img.height * f))))
    return img.resize(size, Image.Resampling.LANCZOS)


RESAMPLE_FILTERS = (
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
)
MAX_RESAMPLED = 4096


def resampled(factor: float) -> PerturbFn:
    def fn(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        f = factor
        if f > 1:
            f = min(f, max(1.0, MAX_RESAMPLED / max(img.size)))
        flt = RESAMPLE_FILTERS[int(rng.integers(len(RESAMPLE_FILTERS)))]
        return encode(img.resize(_scaled(img, f), flt), "JPEG", 90)

    return fn


def chain(longest: int, quality: int) -> PerturbFn:
    return lambda img, rng: encode(fit_within(img, longest), "JPEG", quality)


# ---- the grid -----------------------------------------------------------------------------


def _grid() -> list[Perturbation]:
    P = Perturbation
    return [
        *(P(f"jpeg-q{q}", "jpeg", f"q{q}", jpeg(q)) for q in (95, 75, 50, 30)),
        P("webp-q75", "webp", "q75", webp(75)),
        *(P(f"downup-{f}x", "downup", f"{f}x", down_up(f)) for f in (0.75, 0.5)),
        P("down-0.5x", "down", "0.5x", down(0.5)),
        *(P(f"blur-{s:g}", "blur", f"sigma {s:g}", blur(s)) for s in (0.5, 1.0, 2.0)),
        *(P(f"noise-{s}", "noise", f"sigma {s}", noise(s)) for s in (2, 5, 10)),
        *(P(f"crop-{p}", "crop", f"{p}%", centre_crop(p / 100)) for p in (90, 75)),
        P("jitter", "jitter", "±20%", colour_jitter(0.2)),
        P("hflip", "hflip", "flip", hflip),
        P("web", "web", "<=768px q60", chain(768, 60)),
        P("hard", "hard", "<=512px q40", chain(512, 40)),
        *(P(f"resampled-{f:g}x", "resampled", f"{f:g}x", resampled(f)) for f in (0.25, 0.5, 2, 4)),
    ]


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in _grid()}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(p.family for p in PERTURBATIONS.values()))


def select(spec: str | None) -> list[Perturbation]:
    """Perturbations by comma-separated names or family names (None/'all': the whole grid)."""
    if not spec or spec.strip() == "all":
        return list(PERTURBATIONS.values())
    chosen: dict[str, Perturbation] = {}
    for part in (s.strip() for s in spec.split(",")):
        if not part:
            continue
        if part in PERTURBATIONS:
            chosen[part] = PERTURBATIONS[part]
        elif part in FAMILIES:
            chosen.update({p.name: p for p in PERTURBATIONS.values() if p.family == part})
        else:
            raise FakescopeError(
                f"unknown perturbation {part!r}; choose from: {', '.join(PERTURBATIONS)} "
                f"or a family ({', '.join(FAMILIES)})"
            )
    if not chosen:
        raise FakescopeError("--perturbations names none")
    return list(chosen.values())
