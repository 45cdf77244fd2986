"""A corpus of what people actually feed a detector: odd but valid images, and hostile files.

`make_corpus(dir)` returns {filename: True if it is a valid image that must be scored}.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width×height pixels, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb(w: int = 48, h: int = 40, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8))


def exif_rotated_jpeg() -> bytes:
    """Landscape pixels (left black, right white) tagged 'rotate 90° CW' (orientation 6)."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, 20:] = 255
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(img, "JPEG", exif=exif.tobytes(), quality=95)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def valid_files() -> dict[str, bytes]:
    g16 = Image.fromarray(np.full((20, 20), 128 * 257, np.uint16))
    i32 = Image.fromarray(np.full((20, 20), 128 * 257, np.int32), mode="I")
    f32 = Image.fromarray(np.full((20, 20), 0.5, np.float32), mode="F")
    pal = rgb(16, 16).convert("P")
    pal.info["transparency"] = 0
    jpeg = _save(rgb(), "JPEG")
    return {
        "plain.png": _save(rgb(), "PNG"),
        "photo.jpg": jpeg,
        "one_pixel.png": _save(rgb(1, 1), "PNG"),
        "one_by_n.png": _save(rgb(1, 300), "PNG"),
        "wide.png": _save(rgb(500, 3), "PNG"),
        "gray16.png": _save(g16, "PNG"),
        "int32.tif": _save(i32, "TIFF"),
        "float32.tif": _save(f32, "TIFF"),
        "cmyk.jpg": _save(Image.new("CMYK", (24, 24), (10, 200, 30, 0)), "JPEG"),
        "palette.png": _save(pal, "PNG", transparency=0),
        "rgba.png": _save(Image.new("RGBA", (20, 20), (255, 0, 0, 0)), "PNG"),
        "la.png": _save(Image.new("LA", (20, 20), (0, 128)), "PNG"),
        "bilevel.png": _save(Image.new("1", (20, 20), 1), "PNG"),
        "animated.gif": animated_gif(),
        "image.webp": _save(rgb(), "WEBP"),
        "bmp.bmp": _save(rgb(), "BMP"),
        "exif_rotated.jpg": exif_rotated_jpeg(),
        "png_named.jpg": _save(rgb(), "PNG"),
        "no_extension": jpeg,
        "name with spaces é ü 画像.jpg": jpeg,
    }


def invalid_files() -> dict[str, bytes]:
    jpeg = _save(rgb(64, 64), "JPEG")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("a.txt", "hello")
    return {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "random.png": np.random.default_rng(1).bytes(2048),
        "text.jpg": b"just some text, not an image\n" * 10,
        "page.png": b"<!doctype html><html><body>hi</body></html>",
        "vector.jpg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "archive.jpg": zbuf.getvalue(),
        "bomb.png": bomb_png(),
    }


def make_corpus(root: Path) -> dict[str, bool]:
    """Write the corpus into `root` (plus a folder named like an image holding one valid image)."""
    root.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, data in valid_files().items():
        (root / name).write_bytes(data)
        expected[name] = True
    for name, data in invalid_files().items():
        (root / name).write_bytes(data)
        expected[name] = False
    folder = root / "folder.jpg"
    folder.mkdir()
    (folder / "inner.png").write_bytes(_save(rgb(), "PNG"))
    expected["folder.jpg/inner.png"] = True
    return expected
