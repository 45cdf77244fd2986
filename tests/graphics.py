"""Made-up graphics for the out-of-scope check: charts, icons, text, UI, diagrams, posters.

Drawn with Pillow alone (its built-in font), seeded, at sizes from 128 to 1600 px; half of them
JPEG re-encoded as they would be after an upload. Used by tests and `benchmarks/scope_check.py`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KINDS = ("bars", "lines", "pie", "icon", "text", "ui", "diagram", "poster")


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _font(size: int):
    return ImageFont.load_default(size=max(8, size))


def _bars(d, w, h, rng):
    d.line([(40, h - 40), (w - 20, h - 40)], fill="black", width=2)
    d.line([(40, 20), (40, h - 40)], fill="black", width=2)
    n = int(rng.integers(3, 9))
    bw = (w - 80) / n
    for i in range(n):
        top = int(rng.integers(30, h - 60))
        d.rectangle([40 + i * bw + 5, top, 40 + (i + 1) * bw - 5, h - 41], fill=_colour(rng))
        d.text((40 + i * bw + 5, h - 35), f"Q{i + 1}", fill="black", font=_font(h // 25))


def _lines(d, w, h, rng):
    for y in range(30, h - 30, max(10, h // 8)):
        d.line([(30, y), (w - 10, y)], fill=(220, 220, 220), width=1)
    for _ in range(int(rng.integers(1, 4))):
        ys = np.cumsum(rng.normal(0, h / 20, 12)) + h / 2
        pts = [(30 + i * (w - 40) / 11, float(np.clip(y, 30, h - 30))) for i, y in enumerate(ys)]
        d.line(pts, fill=_colour(rng), width=3)
    d.text((35, 5), "Revenue by month", fill="black", font=_font(h // 20))


def _pie(d, w, h, rng):
    parts = rng.dirichlet(np.ones(int(rng.integers(3, 7)))) * 360
    start, box = 0.0, [w * 0.15, h * 0.15, w * 0.85, h * 0.85]
    for p in parts:
        d.pieslice(box, start, start + p, fill=_colour(rng), outline="white", width=2)
        start += p


def _icon(d, w, h, rng):
    d.rounded_rectangle([w * 0.1, h * 0.1, w * 0.9, h * 0.9], radius=w // 6, fill=_colour(rng))
    d.ellipse([w * 0.3, h * 0.25, w * 0.7, h * 0.65], fill=_colour(rng))
    d.polygon([(w * 0.5, h * 0.45), (w * 0.25, h * 0.8), (w * 0.75, h * 0.8)], fill=_colour(rng))


def _text(d, w, h, rng):
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "generated",
        "images",
        "spread",
    ]
    size = int(rng.integers(12, 28))
    y = 10
    while y < h - size:
        line = " ".join(rng.choice(words, int(rng.integers(4, 12))))
        d.text((10, y), line, fill=(20, 20, 20), font=_font(size))
        y += int(size * 1.5)


def _ui(d, w, h, rng):
    d.rectangle([0, 0, w, 32], fill=(45, 45, 48))
    for i, c in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        d.ellipse([10 + 20 * i, 10, 22 + 20 * i, 22], fill=c)
    d.rectangle([0, 32, w // 4, h], fill=(240, 240, 243))
    for i in range(8):
        d.text((12, 50 + 28 * i), f"Item {i + 1}", fill=(60, 60, 60), font=_font(14))
    for i in range(3):
        x0 = w // 4 + 20 + i * (w * 3 // 4 - 30) // 3
        d.rounded_rectangle([x0, 60, x0 + (w * 3 // 4 - 60) // 3, 100], 8, fill=_colour(rng))
        d.text((x0 + 10, 72), "Button", fill="white", font=_font(14))


def _diagram(d, w, h, rng):
    boxes = []
    for _ in range(int(rng.integers(3, 7))):
        x, y = int(rng.integers(10, max(11, w - 120))), int(rng.integers(10, max(11, h - 60)))
        boxes.append((x, y))
        d.rectangle([x, y, x + 110, y + 50], outline="black", fill=(250, 250, 210), width=2)
        d.text((x + 8, y + 18), "step", fill="black", font=_font(14))
    for (x0, y0), (x1, y1) in zip(boxes, boxes[1:], strict=False):
        d.line([(x0 + 55, y0 + 50), (x1 + 55, y1)], fill="black", width=2)


def _poster(d, w, h, rng):
    for i in range(int(rng.integers(4, 9))):
        c = _colour(rng)
        if i % 2:
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = int(rng.integers(20, max(21, min(w, h) // 2)))
            d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=c)
        else:
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            d.rectangle([x0, y0, x0 + int(rng.integers(20, w)), y0 + int(rng.integers(20, h))], c)
    d.text((w // 10, h // 2), "SALE 50%", fill="white", font=_font(max(12, h // 8)))


DRAW = dict(zip(KINDS, (_bars, _lines, _pie, _icon, _text, _ui, _diagram, _poster), strict=True))


def make_graphic(kind: str, seed: int) -> Image.Image:
    """One RGB graphic of `kind`, 128-1600 px a side; every other seed JPEG re-encoded."""
    rng = np.random.default_rng([KINDS.index(kind), seed])
    w, h = int(rng.integers(128, 1601)), int(rng.integers(128, 1201))
    if kind == "icon":
        h = w = int(rng.integers(128, 513))
    bg = (255, 255, 255) if rng.random() < 0.7 else _colour(rng)
    img = Image.new("RGB", (w, h), bg)
    DRAW[kind](ImageDraw.Draw(img), w, h, rng)
    if seed % 2:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(70, 95)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def make_graphics(per_kind: int = 8, first_seed: int = 0) -> list[tuple[str, Image.Image]]:
    """`per_kind` graphics of every kind: (kind, image). The out-of-scope rule was designed on
    seeds 0-7; other seeds are graphics it has never seen."""
    seeds = range(first_seed, first_seed + per_kind)
    return [(k, make_graphic(k, s)) for k in KINDS for s in seeds]
