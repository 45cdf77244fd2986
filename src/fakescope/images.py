"""The one rule that turns any image into model input.

Training data, `Detector.predict`, evaluation and every other entry point call `to_model_input`;
nothing else resizes or converts images, so what the model sees at training time is exactly what
it sees in use (no train/serve skew).

The rule (documented in the README):

1. Open with Pillow; refuse more than `MAX_PIXELS` pixels *before* decoding (decompression bombs).
2. First frame of an animation; EXIF orientation applied (`ImageOps.exif_transpose`).
3. To 8-bit RGB: 16-bit integer modes are scaled by 255/65535; 32-bit integer (`I`) images are
   scaled as 16-bit when every value fits in 0..65535, else min-max scaled; float (`F`) images are
   scaled by 255 when they lie in [0, 1], else min-max scaled. Values are scaled, never clipped.
   Transparency (LA, RGBA, PA, P with a transparent colour) is composited on white.
   Every other mode goes through Pillow's `convert("RGB")` (1, L, P, CMYK, YCbCr, LAB, HSV).
4. Then one of the model's input rules (its `config.json` says which):
   - `resize` (thumbnail models such as the CIFAKE one): to `size`×`size`, unchanged when already
     that size; otherwise centre-cropped to a square on the shorter side and resized with Lanczos
     (`ImageOps.fit`), which antialiases when shrinking (`to_model_input`).
   - `tiles` (native-resolution models): the whole image at its own pixel scale, never resized
     (`load_rgb`); `fakescope.tiles` cuts it into tiles. An image smaller than one tile is
     mirror-padded to the tile size (`pad_to`): padding adds no resampling traces.

Inputs may be paths, bytes, PIL images or numpy arrays (H×W×3 or H×W, uint8, or float in [0, 1]).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fakescope.errors import ImageError

# Pillow's own default (~89.5 MP, e.g. 10,000×8,950); we enforce it ourselves, before decoding.
MAX_PIXELS = int(os.environ.get("FAKESCOPE_MAX_PIXELS", 89_478_485))
BACKGROUND = (255, 255, 255)

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray


def from_array(a: np.ndarray) -> Image.Image:
    """A numpy image -> PIL: H×W or H×W×1/3/4; uint8 as is, bool as 0/255, floats in [0, 1]
    scaled by 255 (other floats and wider integers min-max scaled, as for image files)."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"array of shape {a.shape} is not an image (H×W, H×W×3 or H×W×4)")
    if a.size == 0:
        raise ImageError(f"image has no pixels ({a.shape})")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            finite = a[np.isfinite(a)]
            unit = finite.size and finite.min() >= 0 and finite.max() <= 1
            a = _scale_to_uint8(a, 1.0 if unit else None)
        elif np.issubdtype(a.dtype, np.integer):
            a = _scale_to_uint8(a, 255.0 if a.min() >= 0 and a.max() <= 255 else None)
        else:
            raise ImageError(f"array of dtype {a.dtype} is not an image")
    return Image.fromarray(np.ascontiguousarray(a))


ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def open_image(src: ImageSource) -> Image.Image:
    """Open `src` lazily (header only) and check its pixel count before anything is decoded."""
    if isinstance(src, np.ndarray):
        img = from_array(src)
    elif isinstance(src, Image.Image):
        img = src
    elif not isinstance(src, bytes | str | os.PathLike):
        raise ImageError(f"cannot read an image from a {type(src).__name__}")
    else:
        fp = io.BytesIO(src) if isinstance(src, bytes) else Path(src)
        if isinstance(fp, Path) and fp.is_dir():
            raise ImageError("is a folder, not an image")
        if isinstance(fp, Path) and not fp.exists():
            raise ImageError("no such file")
        if isinstance(fp, Path) and fp.stat().st_size == 0 or isinstance(src, bytes) and not src:
            raise ImageError("empty file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fp)
        except UnidentifiedImageError:
            if isinstance(fp, Path) and fp.name.lower().endswith(ARCHIVES):
                raise ImageError(
                    "an archive, not an image: `fakescope scan` reads zip and tar archives"
                ) from None
            raise ImageError("not an image Pillow can read") from None
        except Image.DecompressionBombError:
            raise ImageError(
                f"over the limit of {MAX_PIXELS:,} pixels (decompression bomb guard)"
            ) from None
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - see _why
            raise ImageError(f"cannot open image: {_why(e)}") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{w}x{h} pixels is over the limit of {MAX_PIXELS:,} (decompression bomb guard)"
        )
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}x{h})")
    return img


def _why(e: Exception) -> str:
    """One line for whatever a decoder raised. Pillow's plugins raise an open set of types on a
    corrupt file (OSError, ValueError, but also TypeError, IndexError, struct.error, KeyError:
    all found by the fuzzer, tests/fuzz), so every exception is a bad image, never a crash."""
    text = " ".join(str(e).split())
    return text or type(e).__name__


def _scale_to_uint8(a: np.ndarray, full_scale: float | None) -> np.ndarray:
    """Scale an array to 0..255 by `full_scale`, or min-max when `full_scale` is None."""
    if full_scale is not None and np.issubdtype(a.dtype, np.integer):
        # integers in 0..full_scale (the callers check): round(a * 255 / full_scale) in integer
        # arithmetic, 4 bytes a pixel instead of float64's several 8-byte copies (a 248-byte
        # TIFF declaring 9x8,388,359 16-bit pixels took 15 s and 2 GB here; tests/fuzz). No
        # value lies exactly halfway for full_scale 255 or 65535, so the result is the same.
        f = int(full_scale)
        wide = a.astype(np.uint64 if f > 65535 else np.uint32)
        return np.minimum((wide * 510 + f) // (2 * f), 255).astype(np.uint8)
    a = a.astype(np.float64)
    if full_scale is None:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    else:
        a = a * (255.0 / full_scale)
    return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB by the rule in the module docstring."""
    mode = img.mode
    if mode.startswith("I;16"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img), 65535.0)).convert("RGB")
    if mode == "I":
        a = np.asarray(img)
        fits16 = a.size and a.min() >= 0 and a.max() <= 65535
        scale = (255.0 if a.max() <= 255 else 65535.0) if fits16 else None
        return Image.fromarray(_scale_to_uint8(a, scale)).convert("RGB")
    if mode == "F":
        a = np.asarray(img)
        finite = a[np.isfinite(a)]
        in_unit = finite.size and finite.min() >= 0 and finite.max() <= 1
        return Image.fromarray(_scale_to_uint8(a, 1.0 if in_unit else None)).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _decoded(img: Image.Image) -> Image.Image:
    """First frame, EXIF orientation, 8-bit RGB."""
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    return to_rgb(ImageOps.exif_transpose(img))


def load_rgb(src: ImageSource) -> np.ndarray:
    """Any image -> H×W×3 uint8 at its own pixel scale (the `tiles` rule); `ImageError` if
    unreadable. Memory: one decoded copy (3 bytes a pixel), bounded by `MAX_PIXELS`."""
    img = open_image(src)
    try:
        return np.asarray(_decoded(img), dtype=np.uint8)
    except (ImageError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - see _why
        raise ImageError(f"cannot decode image: {_why(e)}") from None


def pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """Mirror-pad an H×W×3 image to at least `size`×`size` (bottom and right)."""
    h, w = a.shape[:2]
    if h >= size and w >= size:
        return a
    nh, nw = max(h, size), max(w, size)
    if nh * nw > MAX_PIXELS:
        # a thin strip (a 248-byte TIFF of 9x8,388,359 pixels, tests/fuzz) padded to the tile
        # size would be 25x its own size: 5 GB here, then out of memory
        raise ImageError(
            f"{w}x{h} pixels padded to {nw}x{nh} for {size}-px tiles is over the limit of "
            f"{MAX_PIXELS:,} (decompression bomb guard)"
        )
    return np.pad(a, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="symmetric")


def native_crop(src: ImageSource, size: int) -> np.ndarray:
    """Any image -> its centre `size`×`size` crop at native scale (mirror-padded when smaller):
    how training data for native-resolution models is stored, without any resampling."""
    a = pad_to(load_rgb(src), size)
    h, w = a.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(a[top : top + size, left : left + size])


def to_model_input(src: ImageSource, size: int) -> np.ndarray:
    """Any image -> `size`×`size`×3 uint8 array; raises `ImageError` with one clear message."""
    img = open_image(src)
    try:
        if img.format == "JPEG" and min(img.size) >= 4 * size:
            img.draft("RGB", (2 * size, 2 * size))  # decode at reduced scale: fast, bounded memory
        img = _decoded(img)
        if img.size != (size, size):
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8).copy()
    except (ImageError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - see _why
        raise ImageError(f"cannot decode image: {_why(e)}") from None
